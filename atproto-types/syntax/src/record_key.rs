//! Record keys (rkeys), per the atproto record-key spec.

use crate::error::{show_char, SyntaxError, SyntaxKind};
use crate::tid::Tid;

/// Longest record key accepted.
pub const RECORD_KEY_MAX_LEN: usize = 512;

/// A syntactically valid record key (the general "any" syntax).
///
/// Rules: 1 to 512 characters from ASCII letters, digits and `.-_:~`, and
/// not exactly `.` or `..`. Case-sensitive, kept verbatim.
#[derive(Clone)]
pub struct RecordKey(String);

string_newtype!(RecordKey);
string_eq_ord!(RecordKey);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::RecordKey, reason)
}

pub(crate) fn check(s: &str) -> Result<(), SyntaxError> {
    if s.is_empty() {
        return Err(err("record key is empty"));
    }
    if s.len() > RECORD_KEY_MAX_LEN {
        return Err(err(format!(
            "record key longer than {RECORD_KEY_MAX_LEN} characters ({})",
            s.len()
        )));
    }
    if let Some(c) = s
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '~')))
    {
        return Err(err(format!(
            "record key may only contain ASCII letters, digits and . - _ : ~, found {}",
            show_char(c)
        )));
    }
    if s == "." || s == ".." {
        return Err(err("record key may not be \".\" or \"..\""));
    }
    Ok(())
}

impl RecordKey {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        check(&s)?;
        Ok(RecordKey(s))
    }

    /// The record key exactly as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The record key string, consuming the value.
    pub fn into_inner(self) -> String {
        self.0
    }

    /// This key as a TID, if it has TID syntax.
    pub fn as_tid(&self) -> Option<Tid> {
        self.0.parse().ok()
    }
}

impl From<Tid> for RecordKey {
    fn from(tid: Tid) -> Self {
        // TID syntax (13 base32-sortable characters) is a subset of rkey syntax.
        RecordKey(tid.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_examples() {
        for s in [
            "3jui7kd54zh2y",
            "self",
            "example.com",
            "~1.2-3_",
            "dHJ1ZQ",
            "pre:fix",
            "_",
            "...",
        ] {
            assert!(s.parse::<RecordKey>().is_ok(), "{s}");
        }
        assert!("o".repeat(512).parse::<RecordKey>().is_ok());
    }

    #[test]
    fn invalid_examples() {
        for s in [
            "alpha/beta",
            ".",
            "..",
            "#extra",
            "@handle",
            "any space",
            "any+space",
            "number[3]",
            "number(3)",
            "\"quote\"",
            "dHJ1ZQ==",
            "",
        ] {
            assert!(s.parse::<RecordKey>().is_err(), "{s}");
        }
        let e = "o".repeat(513).parse::<RecordKey>().unwrap_err();
        assert!(e.reason().contains("longer than 512"), "{e}");
    }

    #[test]
    fn tid_conversion() {
        let tid: Tid = "3jzfcijpj2z2a".parse().unwrap();
        let rk = RecordKey::from(tid.clone());
        assert_eq!(rk.as_str(), "3jzfcijpj2z2a");
        assert_eq!(rk.as_tid(), Some(tid));
        assert_eq!(RecordKey::try_from("self").unwrap().as_tid(), None);
    }
}
