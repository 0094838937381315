//! AT identifiers: a DID or a handle.

use crate::did::Did;
use crate::error::{SyntaxError, SyntaxKind};
use crate::handle::Handle;

/// Either a [`Did`] or a [`Handle`].
///
/// The two never overlap: a DID always starts with `did:` and a handle can
/// not contain `:`. A value starting with `did:` is therefore parsed as a DID,
/// anything else as a handle.
#[derive(Clone)]
pub enum AtIdentifier {
    Did(Did),
    Handle(Handle),
}

string_newtype!(AtIdentifier);
string_eq_ord!(AtIdentifier);

impl AtIdentifier {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        if s.starts_with("did:") {
            Did::try_from(s)
                .map(AtIdentifier::Did)
                .map_err(|e| e.within(SyntaxKind::AtIdentifier, "not a valid DID"))
        } else {
            Handle::try_from(s)
                .map(AtIdentifier::Handle)
                .map_err(|e| e.within(SyntaxKind::AtIdentifier, "not a valid handle"))
        }
    }

    /// The identifier exactly as given.
    pub fn as_str(&self) -> &str {
        match self {
            AtIdentifier::Did(d) => d.as_str(),
            AtIdentifier::Handle(h) => h.as_str(),
        }
    }

    /// The identifier string, consuming the value.
    pub fn into_inner(self) -> String {
        match self {
            AtIdentifier::Did(d) => d.into_inner(),
            AtIdentifier::Handle(h) => h.into_inner(),
        }
    }

    /// The DID, if this is one.
    pub fn as_did(&self) -> Option<&Did> {
        match self {
            AtIdentifier::Did(d) => Some(d),
            AtIdentifier::Handle(_) => None,
        }
    }

    /// The handle, if this is one.
    pub fn as_handle(&self) -> Option<&Handle> {
        match self {
            AtIdentifier::Did(_) => None,
            AtIdentifier::Handle(h) => Some(h),
        }
    }

    /// Whether this is a DID.
    pub fn is_did(&self) -> bool {
        matches!(self, AtIdentifier::Did(_))
    }

    /// Whether this is a handle.
    pub fn is_handle(&self) -> bool {
        matches!(self, AtIdentifier::Handle(_))
    }
}

impl From<Did> for AtIdentifier {
    fn from(d: Did) -> Self {
        AtIdentifier::Did(d)
    }
}

impl From<Handle> for AtIdentifier {
    fn from(h: Handle) -> Self {
        AtIdentifier::Handle(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_variant() {
        let a: AtIdentifier = "did:plc:abc".parse().unwrap();
        assert!(a.is_did());
        assert_eq!(a.as_did().map(Did::method), Some("plc"));
        let b: AtIdentifier = "alice.test".parse().unwrap();
        assert!(b.is_handle());
        assert_eq!(b.as_handle().map(Handle::as_str), Some("alice.test"));
    }

    #[test]
    fn invalid() {
        for s in [
            "did:thing.test",
            "did:thing",
            "DID:method:val",
            "email@example.com",
            "@handle",
            "blah",
            "",
        ] {
            let e = s.parse::<AtIdentifier>().unwrap_err();
            assert_eq!(e.kind(), SyntaxKind::AtIdentifier, "{s}");
        }
        let e = "did:method:".parse::<AtIdentifier>().unwrap_err();
        assert!(e.reason().starts_with("not a valid DID: "), "{e}");
    }

    #[test]
    fn serde_round_trip() {
        for s in ["\"did:web:example.com\"", "\"Alice.Test\""] {
            let a: AtIdentifier = serde_json::from_str(s).unwrap();
            assert_eq!(serde_json::to_string(&a).unwrap(), s);
        }
    }
}
