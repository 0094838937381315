//! The crate-wide error type.

use std::borrow::Cow;
use std::fmt;

/// Which syntax was being checked when a [`SyntaxError`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SyntaxKind {
    Did,
    Handle,
    Nsid,
    AtUri,
    AtIdentifier,
    Tid,
    RecordKey,
    Datetime,
    Language,
    Cid,
    Uri,
}

impl SyntaxKind {
    /// A short human-readable name of the kind, as used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            SyntaxKind::Did => "DID",
            SyntaxKind::Handle => "handle",
            SyntaxKind::Nsid => "NSID",
            SyntaxKind::AtUri => "AT-URI",
            SyntaxKind::AtIdentifier => "AT identifier",
            SyntaxKind::Tid => "TID",
            SyntaxKind::RecordKey => "record key",
            SyntaxKind::Datetime => "datetime",
            SyntaxKind::Language => "language tag",
            SyntaxKind::Cid => "CID string",
            SyntaxKind::Uri => "URI",
        }
    }
}

impl fmt::Display for SyntaxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value failed a syntax check: says which kind of value and why.
///
/// The `Display` form is `invalid <kind>: <reason>`; [`SyntaxError::reason`]
/// alone is a human-readable sentence fragment such as
/// `handle segment longer than 63 characters`. Reasons never contain raw
/// control characters: any offending character is shown escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct SyntaxError {
    kind: SyntaxKind,
    reason: Cow<'static, str>,
}

impl SyntaxError {
    /// A new error of the given kind.
    pub fn new(kind: SyntaxKind, reason: impl Into<Cow<'static, str>>) -> Self {
        SyntaxError {
            kind,
            reason: reason.into(),
        }
    }

    /// Which kind of value failed.
    pub fn kind(&self) -> SyntaxKind {
        self.kind
    }

    /// Why it failed, without the kind prefix.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The same reason, attributed to another kind (used when a value embeds
    /// another, e.g. the authority of an AT-URI).
    pub(crate) fn within(self, kind: SyntaxKind, context: &str) -> Self {
        SyntaxError::new(kind, format!("{context}: {}", self.reason))
    }
}

/// Describe a character for an error message, escaping anything invisible.
pub(crate) fn show_char(c: char) -> String {
    format!("{c:?}")
}
