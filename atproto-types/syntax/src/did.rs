//! DIDs (`did:method:identifier`), per the atproto DID spec.

use crate::error::{show_char, SyntaxError, SyntaxKind};

/// Longest DID accepted in atproto.
pub const DID_MAX_LEN: usize = 2048;

/// A syntactically valid DID, of any method.
///
/// Rules (atproto DID syntax): starts with lowercase `did:`; the method is one
/// or more lowercase ASCII letters followed by `:`; the identifier is
/// non-empty and made of ASCII letters, digits and `._:%-`; it may not end
/// with `:` or `%`; at most 2048 characters in all. Query and fragment parts
/// are not allowed. Percent-encoding is not decoded or checked (the spec
/// leaves that to resolution).
#[derive(Clone)]
pub struct Did(String);

string_newtype!(Did);
string_eq_ord!(Did);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::Did, reason)
}

/// Check DID syntax; `Ok` carries the length of the method name.
pub(crate) fn check(s: &str) -> Result<usize, SyntaxError> {
    if s.len() > DID_MAX_LEN {
        return Err(err(format!(
            "DID longer than {DID_MAX_LEN} characters ({})",
            s.len()
        )));
    }
    let Some(rest) = s.strip_prefix("did:") else {
        return Err(err("DID must start with lowercase \"did:\""));
    };
    let Some(colon) = rest.find(':') else {
        return Err(err(
            "DID needs a method and an identifier separated by ':' (did:method:identifier)",
        ));
    };
    let method = &rest[..colon];
    if method.is_empty() {
        return Err(err("DID method is empty"));
    }
    if let Some(c) = method.chars().find(|c| !c.is_ascii_lowercase()) {
        return Err(err(format!(
            "DID method may only contain lowercase letters a-z, found {}",
            show_char(c)
        )));
    }
    let ident = &rest[colon + 1..];
    if ident.is_empty() {
        return Err(err("DID identifier is empty"));
    }
    if let Some(c) = ident
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '%' | '-')))
    {
        return Err(err(format!(
            "DID identifier may only contain letters, digits and . _ : % -, found {}",
            show_char(c)
        )));
    }
    if ident.ends_with(':') {
        return Err(err("DID may not end with ':'"));
    }
    if ident.ends_with('%') {
        return Err(err("DID may not end with '%'"));
    }
    Ok(method.len())
}

impl Did {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        check(&s)?;
        Ok(Did(s))
    }

    /// The DID exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The DID string, consuming the value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The method name, e.g. `plc` in `did:plc:abc`.
    pub fn method(&self) -> &str {
        let rest = &self.0[4..];
        match rest.find(':') {
            Some(i) => &rest[..i],
            None => rest,
        }
    }

    /// The method-specific identifier, e.g. `abc` in `did:plc:abc`.
    pub fn identifier(&self) -> &str {
        let rest = &self.0[4..];
        match rest.find(':') {
            Some(i) => &rest[i + 1..],
            None => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_examples() {
        for s in [
            "did:plc:z72i7hdynmk6r22z27h6tvur",
            "did:web:blueskyweb.xyz",
            "did:method:val:two",
            "did:m:v",
            "did:method::::val",
            "did:method:-:_:.",
            "did:web:localhost%3A1234",
        ] {
            assert!(s.parse::<Did>().is_ok(), "{s}");
        }
    }

    #[test]
    fn invalid_examples() {
        for s in [
            "did:METHOD:val",
            "did:m123:val",
            "DID:method:val",
            "did:method:",
            "did:method:val/two",
            "did:method:val?two",
            "did:method:val#two",
            "did:method:val%",
            "did::val",
            "did:method",
            "",
        ] {
            assert!(s.parse::<Did>().is_err(), "{s}");
        }
    }

    #[test]
    fn length_limit() {
        let ok = format!("did:m:{}", "v".repeat(DID_MAX_LEN - 6));
        assert!(ok.parse::<Did>().is_ok());
        let long = format!("did:m:{}", "v".repeat(DID_MAX_LEN - 5));
        let e = long.parse::<Did>().unwrap_err();
        assert!(e.reason().contains("longer than 2048"), "{e}");
    }

    #[test]
    fn parts() {
        let d: Did = "did:plc:abc:def".parse().unwrap();
        assert_eq!(d.method(), "plc");
        assert_eq!(d.identifier(), "abc:def");
    }

    #[test]
    fn errors_say_why() {
        let e = "did:METHOD:val".parse::<Did>().unwrap_err();
        assert_eq!(e.kind(), SyntaxKind::Did);
        assert!(e.reason().contains("lowercase"), "{e}");
        assert!(e.to_string().starts_with("invalid DID: "), "{e}");
        let e = "did:m:a\r".parse::<Did>().unwrap_err();
        assert!(e.reason().contains("'\\r'"), "{e}");
    }

    #[test]
    fn serde_round_trip() {
        let d: Did = serde_json::from_str("\"did:plc:abc\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"did:plc:abc\"");
        assert!(serde_json::from_str::<Did>("\"did:plc:\"").is_err());
        assert!(serde_json::from_str::<Did>("12").is_err());
    }
}
