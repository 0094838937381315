//! Handles (DNS hostnames used as account names), per the atproto handle spec.

use crate::error::{show_char, SyntaxError, SyntaxKind};

/// Longest handle accepted.
pub const HANDLE_MAX_LEN: usize = 253;
/// Longest single handle segment (DNS label).
pub const HANDLE_SEGMENT_MAX_LEN: usize = 63;

/// Top-level domains that are syntactically valid but must never be
/// registered or resolved as handles.
pub const DISALLOWED_TLDS: &[&str] = &[
    "alt",
    "arpa",
    "example",
    "internal",
    "invalid",
    "local",
    "localhost",
    "onion",
];

/// A syntactically valid handle, e.g. `alice.bsky.social`.
///
/// Rules: ASCII only, at most 253 characters, at least two `.`-separated
/// segments of 1 to 63 letters, digits or hyphens, no segment starting or
/// ending with a hyphen, and the last segment (TLD) not starting with a digit.
/// Handles are case-insensitive: the original casing is kept verbatim (and
/// compared verbatim by `Eq`); use [`Handle::normalized`] for the canonical
/// lowercase form. Disallowed TLDs (`.local`, `.onion`, ...) are valid syntax;
/// see [`Handle::is_disallowed_tld`].
#[derive(Clone)]
pub struct Handle(String);

string_newtype!(Handle);
string_eq_ord!(Handle);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::Handle, reason)
}

/// Check one hostname-style label (shared with NSID authority segments).
/// `what` names the label in messages, e.g. "handle segment".
pub(crate) fn check_label(label: &str, what: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err(format!("{what} is empty (leading, trailing or double '.')"));
    }
    if label.len() > HANDLE_SEGMENT_MAX_LEN {
        return Err(format!(
            "{what} longer than {HANDLE_SEGMENT_MAX_LEN} characters ({})",
            label.len()
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(format!(
            "{what} may only contain ASCII letters, digits and hyphens, found {}",
            show_char(c)
        ));
    }
    if label.starts_with('-') {
        return Err(format!("{what} may not start with a hyphen"));
    }
    if label.ends_with('-') {
        return Err(format!("{what} may not end with a hyphen"));
    }
    Ok(())
}

pub(crate) fn check(s: &str) -> Result<(), SyntaxError> {
    if s.is_empty() {
        return Err(err("handle is empty"));
    }
    if s.len() > HANDLE_MAX_LEN {
        return Err(err(format!(
            "handle longer than {HANDLE_MAX_LEN} characters ({})",
            s.len()
        )));
    }
    let mut count = 0usize;
    let mut last = "";
    for label in s.split('.') {
        check_label(label, "handle segment").map_err(err)?;
        count += 1;
        last = label;
    }
    if count < 2 {
        return Err(err("handle needs at least two segments separated by '.'"));
    }
    if last.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(err(
            "handle top-level domain (last segment) may not start with a digit",
        ));
    }
    Ok(())
}

impl Handle {
    /// The special value used when an account has no valid handle.
    pub const INVALID: &'static str = "handle.invalid";

    fn from_string(s: String) -> Result<Self, SyntaxError> {
        check(&s)?;
        Ok(Handle(s))
    }

    /// The handle exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The handle string, consuming the value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// The lowercase-normalised handle (ASCII `A-Z` to `a-z`).
    pub fn normalized(&self) -> Handle {
        Handle(self.0.to_ascii_lowercase())
    }

    /// Whether the handle is already in normalised (lowercase) form.
    pub fn is_normalized(&self) -> bool {
        !self.0.bytes().any(|b| b.is_ascii_uppercase())
    }

    /// The top-level domain (last segment), as given.
    pub fn tld(&self) -> &str {
        match self.0.rfind('.') {
            Some(i) => &self.0[i + 1..],
            None => &self.0,
        }
    }

    /// The segments (labels), in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }

    /// Whether the TLD is one that must never be registered or resolved
    /// (`.alt`, `.arpa`, `.example`, `.internal`, `.invalid`, `.local`,
    /// `.localhost`, `.onion`), compared case-insensitively.
    pub fn is_disallowed_tld(&self) -> bool {
        let tld = self.tld();
        DISALLOWED_TLDS.iter().any(|d| d.eq_ignore_ascii_case(tld))
    }

    /// Whether this is the special `handle.invalid` value (case-insensitive).
    pub fn is_invalid_marker(&self) -> bool {
        self.0.eq_ignore_ascii_case(Self::INVALID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_examples() {
        for s in [
            "jay.bsky.social",
            "8.cn",
            "name.t--t",
            "XX.LCS.MIT.EDU",
            "a.co",
            "xn--notarealidn.com",
            "xn--fiqa61au8b7zsevnm8ak20mc4a87e.xn--fiqs8s",
            "example.t",
            "laptop.local",
            "blah.arpa",
        ] {
            assert!(s.parse::<Handle>().is_ok(), "{s}");
        }
    }

    #[test]
    fn invalid_examples() {
        for s in [
            "jo@hn.test",
            "💩.test",
            "john..test",
            "xn--bcher-.tld",
            "john.0",
            "cn.8",
            "www.masełkowski.pl.com",
            "org",
            "name.org.",
            "",
            ".",
        ] {
            assert!(s.parse::<Handle>().is_err(), "{s}");
        }
    }

    #[test]
    fn segment_length_reason() {
        let s = format!("short.{}.test", "o".repeat(64));
        let e = s.parse::<Handle>().unwrap_err();
        assert_eq!(
            e.reason(),
            "handle segment longer than 63 characters (64)",
            "{e}"
        );
        assert!(format!("short.{}.test", "o".repeat(63))
            .parse::<Handle>()
            .is_ok());
    }

    #[test]
    fn normalization() {
        let h: Handle = "Alice.BSKY.Social".parse().unwrap();
        assert!(!h.is_normalized());
        let n = h.normalized();
        assert_eq!(n.as_str(), "alice.bsky.social");
        assert!(n.is_normalized());
        // the original is kept verbatim
        assert_eq!(h.as_str(), "Alice.BSKY.Social");
        assert_ne!(h, n);
        assert_eq!(h.normalized(), n);
    }

    #[test]
    fn disallowed_tlds() {
        for s in [
            "laptop.local",
            "blah.arpa",
            "handle.invalid",
            "a.localhost",
            "a.internal",
            "a.example",
            "a.alt",
            "expyuzz4wqqyqhjn.onion",
            "laptop.LOCAL",
        ] {
            let h: Handle = s.parse().unwrap();
            assert!(h.is_disallowed_tld(), "{s}");
        }
        for s in ["alice.test", "bsky.app", "example.com", "local.com"] {
            let h: Handle = s.parse().unwrap();
            assert!(!h.is_disallowed_tld(), "{s}");
        }
        let h: Handle = "Handle.Invalid".parse().unwrap();
        assert!(h.is_invalid_marker());
        assert_eq!(h.tld(), "Invalid");
    }

    #[test]
    fn serde_keeps_case() {
        let h: Handle = serde_json::from_str("\"Alice.Test\"").unwrap();
        assert_eq!(serde_json::to_string(&h).unwrap(), "\"Alice.Test\"");
        assert!(serde_json::from_str::<Handle>("\"alice\"").is_err());
    }
}
