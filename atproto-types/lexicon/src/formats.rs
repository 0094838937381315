//! String formats, grapheme counting and MIME patterns.

use std::str::FromStr;

use atproto_syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, SyntaxError,
    Tid, Uri,
};
use unicode_segmentation::UnicodeSegmentation;

use crate::model::StringFormat;

/// Check `s` against a string format with the `atproto-syntax` types.
/// [`StringFormat::Other`] accepts everything.
pub fn check_format(format: &StringFormat, s: &str) -> Result<(), SyntaxError> {
    fn ok<T>(r: Result<T, SyntaxError>) -> Result<(), SyntaxError> {
        r.map(|_| ())
    }
    match format {
        StringFormat::AtIdentifier => ok(AtIdentifier::from_str(s)),
        StringFormat::AtUri => ok(AtUri::from_str(s)),
        StringFormat::Cid => ok(CidString::from_str(s)),
        StringFormat::Datetime => ok(Datetime::from_str(s)),
        StringFormat::Did => ok(Did::from_str(s)),
        StringFormat::Handle => ok(Handle::from_str(s)),
        StringFormat::Nsid => ok(Nsid::from_str(s)),
        StringFormat::Tid => ok(Tid::from_str(s)),
        StringFormat::RecordKey => ok(RecordKey::from_str(s)),
        StringFormat::Uri => ok(Uri::from_str(s)),
        StringFormat::Language => ok(Language::from_str(s)),
        StringFormat::Other(_) => Ok(()),
    }
}

/// Number of extended grapheme clusters in `s`, counting no further than
/// `limit` (the result is at most `limit`).
pub fn grapheme_count_upto(s: &str, limit: usize) -> usize {
    s.graphemes(true).take(limit).count()
}

/// Number of extended grapheme clusters in `s`.
pub fn grapheme_count(s: &str) -> usize {
    s.graphemes(true).count()
}

/// Whether `pattern` is a valid `accept` entry of a blob schema:
/// `type/subtype`, `type/*` or `*/*`. Partial globs (`text/ht*`) and a lone
/// `*` are not.
pub fn is_valid_accept_pattern(pattern: &str) -> bool {
    if pattern == "*/*" {
        return true;
    }
    let Some((ty, sub)) = pattern.split_once('/') else {
        return false;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    token(ty) && (sub == "*" || token(sub))
}

/// Whether a MIME type matches an `accept` pattern (`*/*`, `type/*` or an
/// exact type; ASCII case-insensitive; parameters after `;` ignored).
pub fn mime_matches(pattern: &str, mime_type: &str) -> bool {
    let essence = mime_type.split(';').next().unwrap_or("").trim();
    if pattern == "*/*" {
        return essence.contains('/');
    }
    match pattern.strip_suffix("/*") {
        Some(ty) => essence
            .split_once('/')
            .is_some_and(|(t, sub)| t.eq_ignore_ascii_case(ty) && !sub.is_empty()),
        None => essence.eq_ignore_ascii_case(pattern),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphemes() {
        assert_eq!(grapheme_count(""), 0);
        assert_eq!(grapheme_count("abc"), 3);
        // Flags, ZWJ sequences and skin tones are one cluster each.
        assert_eq!(grapheme_count("🇩🇪"), 1);
        assert_eq!(grapheme_count("🏳️‍🌈"), 1);
        assert_eq!(grapheme_count("👩‍👩‍👦‍👦"), 1);
        assert_eq!(grapheme_count("👍🏽"), 1);
        // Combining marks join their base.
        assert_eq!(grapheme_count("e\u{301}"), 1);
        assert_eq!(grapheme_count("a\u{300}\u{316}b"), 2);
        // Hangul jamo compose.
        assert_eq!(grapheme_count("\u{1100}\u{1161}\u{11A8}"), 1);
        // CRLF is a single cluster.
        assert_eq!(grapheme_count("\r\n"), 1);
        assert_eq!(grapheme_count_upto("abcdef", 3), 3);
        assert_eq!(grapheme_count_upto("ab", 3), 2);
    }

    #[test]
    fn accept_patterns() {
        for ok in [
            "*/*",
            "image/*",
            "image/png",
            "application/vnd.ipld.car",
            "text/x-c++",
        ] {
            assert!(is_valid_accept_pattern(ok), "{ok}");
        }
        for bad in [
            "*", "image", "text/ht*", "*/png", "", "image/", "/png", "a/b/c",
        ] {
            assert!(!is_valid_accept_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn mime_matching() {
        assert!(mime_matches("*/*", "text/plain"));
        assert!(mime_matches("image/*", "image/png"));
        assert!(mime_matches("image/*", "IMAGE/PNG"));
        assert!(!mime_matches("image/*", "text/plain"));
        assert!(!mime_matches("image/*", "image/"));
        assert!(!mime_matches("image/*", "imagex/png"));
        assert!(mime_matches("image/png", "image/png"));
        assert!(mime_matches("text/plain", "text/plain; charset=utf-8"));
        assert!(!mime_matches("image/png", "image/jpeg"));
        assert!(!mime_matches("*/*", "nonsense"));
    }

    #[test]
    fn formats() {
        assert!(check_format(&StringFormat::Did, "did:web:example.com").is_ok());
        assert!(check_format(&StringFormat::Did, "123").is_err());
        assert!(check_format(&StringFormat::Handle, "alice.example.com").is_ok());
        assert!(check_format(&StringFormat::Handle, "123").is_err());
        assert!(check_format(&StringFormat::Nsid, "com.example.thing").is_ok());
        assert!(check_format(&StringFormat::Nsid, "123").is_err());
        assert!(check_format(&StringFormat::AtIdentifier, "did:plc:abc").is_ok());
        assert!(check_format(&StringFormat::AtIdentifier, "123").is_err());
        assert!(check_format(&StringFormat::AtUri, "at://did:plc:abc/a.b.c/x").is_ok());
        assert!(check_format(&StringFormat::AtUri, "123").is_err());
        assert!(check_format(&StringFormat::Tid, "3kznmn7xqxl22").is_ok());
        assert!(check_format(&StringFormat::Tid, "000").is_err());
        assert!(check_format(&StringFormat::RecordKey, "simple").is_ok());
        assert!(check_format(&StringFormat::RecordKey, ".").is_err());
        assert!(check_format(&StringFormat::Datetime, "2023-10-30T22:25:23Z").is_ok());
        assert!(check_format(&StringFormat::Datetime, "123").is_err());
        assert!(check_format(&StringFormat::Language, "pt-BR").is_ok());
        assert!(check_format(&StringFormat::Language, "123").is_err());
        assert!(check_format(&StringFormat::Uri, "https://example.com/x").is_ok());
        assert!(check_format(&StringFormat::Uri, "123").is_err());
        let cid = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";
        assert!(check_format(&StringFormat::Cid, cid).is_ok());
        assert!(check_format(&StringFormat::Cid, "123").is_err());
        assert!(check_format(&StringFormat::Other("future".into()), "anything").is_ok());
    }
}
