//! Namespaced identifiers (NSIDs), per the atproto NSID spec.

use crate::error::{show_char, SyntaxError, SyntaxKind};
use crate::handle::check_label;

/// Longest NSID accepted.
pub const NSID_MAX_LEN: usize = 317;
/// Longest name (final) segment.
pub const NSID_NAME_MAX_LEN: usize = 63;

/// A syntactically valid NSID, e.g. `com.example.fooBar`.
///
/// Rules: ASCII only, at most 317 characters, at least three `.`-separated
/// segments. The domain-authority segments (all but the last) are
/// hostname labels: 1 to 63 letters, digits or hyphens, not starting or ending
/// with a hyphen, and the first segment may not start with a digit. The name
/// (last segment) is 1 to 63 ASCII letters and digits, starting with a letter.
/// NSIDs are case-sensitive and kept verbatim.
#[derive(Clone)]
pub struct Nsid {
    raw: String,
    /// Byte index of the `.` before the name.
    name_dot: usize,
}

string_newtype!(Nsid);
string_eq_ord!(Nsid);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::Nsid, reason)
}

/// Check NSID syntax; `Ok` carries the byte index of the last `.`.
pub(crate) fn check(s: &str) -> Result<usize, SyntaxError> {
    if s.is_empty() {
        return Err(err("NSID is empty"));
    }
    if s.len() > NSID_MAX_LEN {
        return Err(err(format!(
            "NSID longer than {NSID_MAX_LEN} characters ({})",
            s.len()
        )));
    }
    let Some(name_dot) = s.rfind('.') else {
        return Err(err(
            "NSID needs at least three segments separated by '.' (authority and name)",
        ));
    };
    let authority = &s[..name_dot];
    let name = &s[name_dot + 1..];
    let mut count = 0usize;
    for label in authority.split('.') {
        check_label(label, "NSID domain segment").map_err(err)?;
        if count == 0 && label.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err("NSID first segment may not start with a digit"));
        }
        count += 1;
    }
    if count < 2 {
        return Err(err(
            "NSID needs at least three segments separated by '.' (authority and name)",
        ));
    }
    if name.is_empty() {
        return Err(err("NSID name (last segment) is empty"));
    }
    if name.len() > NSID_NAME_MAX_LEN {
        return Err(err(format!(
            "NSID name longer than {NSID_NAME_MAX_LEN} characters ({})",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(err(format!(
            "NSID name may only contain ASCII letters and digits, found {}",
            show_char(c)
        )));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(err("NSID name must start with a letter"));
    }
    Ok(name_dot)
}

impl Nsid {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        let name_dot = check(&s)?;
        Ok(Nsid { raw: s, name_dot })
    }

    /// The NSID exactly as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The NSID string, consuming the value.
    pub fn into_inner(self) -> String {
        self.raw
    }

    /// The name (final segment), e.g. `fooBar` in `com.example.fooBar`.
    pub fn name(&self) -> &str {
        &self.raw[self.name_dot + 1..]
    }

    /// The domain authority as it appears in the NSID (reverse domain order),
    /// e.g. `com.example` in `com.example.fooBar`.
    pub fn authority_prefix(&self) -> &str {
        &self.raw[..self.name_dot]
    }

    /// The domain authority as a hostname (segments reversed), e.g.
    /// `example.com` for `com.example.fooBar`. Casing is kept as given.
    pub fn authority(&self) -> String {
        let mut labels: Vec<&str> = self.authority_prefix().split('.').collect();
        labels.reverse();
        labels.join(".")
    }

    /// All segments in order, the name last.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.raw.split('.')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_examples() {
        for s in [
            "com.example.fooBar",
            "net.users.bob.ping",
            "a-0.b-1.c",
            "a.b.c",
            "cn.8.lex.stuff",
            "com.example.f00",
            "com.atproto.feed.postV2",
        ] {
            assert!(s.parse::<Nsid>().is_ok(), "{s}");
        }
    }

    #[test]
    fn invalid_examples() {
        for s in [
            "com.exa💩ple.thing",
            "com.example",
            "com.example.foo.*",
            "a-0.b-1.c-3",
            "1.0.0.127.record",
            "com.example.fooBar.2",
            "one.two..three",
            "com.example-.foo",
            "",
            "a.",
        ] {
            assert!(s.parse::<Nsid>().is_err(), "{s}");
        }
    }

    #[test]
    fn parts() {
        let n: Nsid = "app.bsky.feed.post".parse().unwrap();
        assert_eq!(n.name(), "post");
        assert_eq!(n.authority_prefix(), "app.bsky.feed");
        assert_eq!(n.authority(), "feed.bsky.app");
        assert_eq!(
            n.segments().collect::<Vec<_>>(),
            ["app", "bsky", "feed", "post"]
        );
    }

    #[test]
    fn serde_round_trip() {
        let n: Nsid = serde_json::from_str("\"com.Example.fooBar\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"com.Example.fooBar\"");
        assert!(serde_json::from_str::<Nsid>("\"com.example\"").is_err());
    }
}
