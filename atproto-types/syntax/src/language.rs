//! Language tags (BCP 47 / RFC 5646), as used by the Lexicon `language`
//! format.

use crate::error::{show_char, SyntaxError, SyntaxKind};

/// Grandfathered tags (RFC 5646 section 2.2.8): irregular ones, which do not
/// fit the normal grammar, and regular ones, which do.
const GRANDFATHERED: &[&str] = &[
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
    "art-lojban",
    "cel-gaulish",
    "no-bok",
    "no-nyn",
    "zh-guoyu",
    "zh-hakka",
    "zh-min",
    "zh-min-nan",
    "zh-xiang",
];

/// A valid language tag, e.g. `en`, `pt-BR`, `hy-Latn-IT-arevela`.
///
/// The tag must be well-formed per RFC 5646 (language, up to three extlangs,
/// script, region, variants, extensions, private use; or a grandfathered or
/// private-use-only tag), with the atproto restriction that the primary
/// language subtag is a lowercase two- or three-letter ISO 639 code (so `JA`
/// and `jaja` are rejected). Other subtags are case-insensitive. Tags that
/// repeat a variant or an extension singleton (compared case-insensitively)
/// are rejected too, as RFC 5646 section 2.2.9 makes them invalid. Kept
/// verbatim.
#[derive(Clone)]
pub struct Language(String);

string_newtype!(Language);
string_eq_ord!(Language);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::Language, reason)
}

fn is_alpha(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn is_digit(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit())
}

/// Check `x-...` private-use subtags (after the `x`).
fn check_private_use<'a>(rest: impl Iterator<Item = &'a str>) -> Result<(), SyntaxError> {
    let mut count = 0;
    for t in rest {
        if t.len() > 8 {
            return Err(err(format!(
                "private-use subtag {t:?} longer than 8 characters"
            )));
        }
        count += 1;
    }
    if count == 0 {
        return Err(err("private-use 'x' needs at least one subtag after it"));
    }
    Ok(())
}

pub(crate) fn check(s: &str) -> Result<(), SyntaxError> {
    if s.is_empty() {
        return Err(err("language tag is empty"));
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(err(format!(
            "language tag may only contain ASCII letters, digits and '-', found {}",
            show_char(c)
        )));
    }
    let subtags: Vec<&str> = s.split('-').collect();
    if subtags.iter().any(|t| t.is_empty()) {
        return Err(err(
            "language tag has an empty subtag (leading, trailing or double '-')",
        ));
    }
    if let Some(t) = subtags.iter().find(|t| t.len() > 8) {
        return Err(err(format!("subtag {t:?} longer than 8 characters")));
    }
    let first = subtags[0];
    if first.eq_ignore_ascii_case("x") {
        return check_private_use(subtags[1..].iter().copied());
    }
    if !first.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(err(format!(
            "primary language subtag {first:?} must be lowercase letters (an ISO 639 code)"
        )));
    }
    if GRANDFATHERED.iter().any(|g| g.eq_ignore_ascii_case(s)) {
        return Ok(());
    }
    match first.len() {
        2 | 3 => {}
        1 => {
            return Err(err(format!(
                "language tag must start with a 2 or 3 letter language code, not the singleton {first:?}"
            )))
        }
        _ => {
            return Err(err(format!(
                "primary language subtag {first:?} must be a 2 or 3 letter ISO 639 code"
            )))
        }
    }

    // Stages: 0 extlang, 1 script, 2 region, 3 variants, 4 extensions.
    let mut stage = 0u8;
    let mut extlangs = 0;
    let mut variants: Vec<String> = Vec::new();
    let mut singletons: Vec<u8> = Vec::new();
    let mut i = 1;
    while i < subtags.len() {
        let t = subtags[i];
        let len = t.len();
        if len == 1 {
            let single = t.as_bytes()[0].to_ascii_lowercase();
            if single == b'x' {
                return check_private_use(subtags[i + 1..].iter().copied());
            }
            if singletons.contains(&single) {
                return Err(err(format!("extension singleton {t:?} is repeated")));
            }
            singletons.push(single);
            let start = i + 1;
            let mut j = start;
            while j < subtags.len() && subtags[j].len() >= 2 {
                j += 1;
            }
            if j == start {
                return Err(err(format!(
                    "extension {t:?} needs at least one subtag of 2-8 characters"
                )));
            }
            stage = 4;
            i = j;
            continue;
        }
        if stage == 4 {
            return Err(err(format!("subtag {t:?} not allowed after an extension")));
        }
        if stage == 0 && len == 3 && is_alpha(t) && extlangs < 3 {
            extlangs += 1;
        } else if stage <= 1 && len == 4 && is_alpha(t) {
            stage = 2;
        } else if stage <= 2 && ((len == 2 && is_alpha(t)) || (len == 3 && is_digit(t))) {
            stage = 3;
        } else if (5..=8).contains(&len) || (len == 4 && t.as_bytes()[0].is_ascii_digit()) {
            let lower = t.to_ascii_lowercase();
            if variants.contains(&lower) {
                return Err(err(format!("variant subtag {t:?} is repeated")));
            }
            variants.push(lower);
            stage = 3;
        } else {
            return Err(err(format!(
                "subtag {t:?} does not fit here (expected extlang, script, region, variant, extension or private use)"
            )));
        }
        i += 1;
    }
    Ok(())
}

impl Language {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        check(&s)?;
        Ok(Language(s))
    }

    /// The tag exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag string, consuming the value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The first subtag: the language code (or `x`/`i` for private-use and
    /// grandfathered tags).
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or("")
    }

    /// All subtags, in order.
    pub fn subtags(&self) -> impl Iterator<Item = &str> {
        self.0.split('-')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid() {
        for s in [
            "ja",
            "ban",
            "pt-BR",
            "hy-Latn-IT-arevela",
            "en-GB",
            "zh-Hant",
            "sgn-BE-NL",
            "es-419",
            "en-GB-boont-r-extended-sequence-x-private",
            "zh-hakka",
            "i-default",
            "i-navajo",
            "de-CH-1901",
            "qaa-Qaaa-QM-x-southern",
            "X-fr-CH",
            "x-whatever",
            "de-X-foo",
            "sl-rozaj-biske",
            "en-u-co-phonebk-t-en-US",
            "zh-yue-HK",
            "zh-min-nan",
            "en-GB-oed",
        ] {
            assert!(s.parse::<Language>().is_ok(), "{s}");
        }
    }

    #[test]
    fn invalid() {
        for s in [
            "jaja",
            ".",
            "123",
            "JA",
            "j",
            "ja-",
            "a-DE",
            "",
            "en--GB",
            "en-a",
            "en-x",
            "x",
            "i-foo",
            "de-DE-1901-1901",
            "en-rozaj-ROZAJ",
            "en-a-foo-a-bar",
            "en-u-co-phonebk-U-ca-buddhist",
            "en-toolongsubtag",
            "en-GB-US",
        ] {
            assert!(s.parse::<Language>().is_err(), "{s}");
        }
    }

    #[test]
    fn reasons() {
        let e = "de-DE-1901-1901".parse::<Language>().unwrap_err();
        assert!(e.reason().contains("variant"), "{e}");
        let e = "en-a-foo-A-bar".parse::<Language>().unwrap_err();
        assert!(e.reason().contains("singleton"), "{e}");
        let e = "JA".parse::<Language>().unwrap_err();
        assert!(e.reason().contains("lowercase"), "{e}");
    }

    #[test]
    fn parts_and_serde() {
        let l: Language = serde_json::from_str("\"pt-BR\"").unwrap();
        assert_eq!(l.primary(), "pt");
        assert_eq!(l.subtags().collect::<Vec<_>>(), ["pt", "BR"]);
        assert_eq!(serde_json::to_string(&l).unwrap(), "\"pt-BR\"");
        assert!(serde_json::from_str::<Language>("\"JA\"").is_err());
    }
}
