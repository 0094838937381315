//! AT-URIs (`at://authority/collection/rkey`), in the restricted syntax used
//! by the Lexicon `at-uri` format.

use crate::at_identifier::AtIdentifier;
use crate::error::{show_char, SyntaxError, SyntaxKind};
use crate::nsid::Nsid;
use crate::record_key::RecordKey;

/// Longest AT-URI accepted (8 KiB).
pub const AT_URI_MAX_LEN: usize = 8192;

/// A valid AT-URI in the restricted (Lexicon) syntax:
/// `at://AUTHORITY[/COLLECTION[/RKEY]]`.
///
/// The authority is a DID or handle, the collection an NSID, the rkey a record
/// key. Query and fragment parts, trailing slashes, empty segments and extra
/// path segments are rejected; the whole URI is at most 8 KiB. The original
/// string is kept verbatim.
#[derive(Clone)]
pub struct AtUri {
    raw: String,
    authority: AtIdentifier,
    collection: Option<Nsid>,
    rkey: Option<RecordKey>,
}

string_newtype!(AtUri);
string_eq_ord!(AtUri);

fn err(reason: impl Into<std::borrow::Cow<'static, str>>) -> SyntaxError {
    SyntaxError::new(SyntaxKind::AtUri, reason)
}

type Parts = (AtIdentifier, Option<Nsid>, Option<RecordKey>);

fn parse_parts(s: &str) -> Result<Parts, SyntaxError> {
    if s.len() > AT_URI_MAX_LEN {
        return Err(err(format!(
            "AT-URI longer than {AT_URI_MAX_LEN} characters ({})",
            s.len()
        )));
    }
    let Some(rest) = s.strip_prefix("at://") else {
        return Err(err("AT-URI must start with \"at://\""));
    };
    if rest.contains('#') {
        return Err(err("AT-URI fragments ('#') are not allowed"));
    }
    if rest.contains('?') {
        return Err(err("AT-URI query parts ('?') are not allowed"));
    }
    if let Some(c) = rest.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(format!(
            "AT-URI may not contain whitespace or control characters, found {}",
            show_char(c)
        )));
    }
    let mut segments = rest.split('/');
    let authority_str = segments.next().unwrap_or("");
    if authority_str.is_empty() {
        return Err(err("AT-URI authority is empty"));
    }
    let authority = AtIdentifier::try_from(authority_str)
        .map_err(|e| e.within(SyntaxKind::AtUri, "authority is not a DID or handle"))?;
    let collection = match segments.next() {
        None => None,
        Some("") => {
            return Err(err(
                "AT-URI path has an empty segment (trailing or double '/')",
            ))
        }
        Some(c) => Some(
            Nsid::try_from(c)
                .map_err(|e| e.within(SyntaxKind::AtUri, "collection is not a valid NSID"))?,
        ),
    };
    let rkey = match segments.next() {
        None => None,
        Some("") => {
            return Err(err(
                "AT-URI path has an empty segment (trailing or double '/')",
            ))
        }
        Some(r) => Some(
            RecordKey::try_from(r)
                .map_err(|e| e.within(SyntaxKind::AtUri, "record key is not valid"))?,
        ),
    };
    if segments.next().is_some() {
        return Err(err(
            "AT-URI path has more than two segments (only /collection/rkey is allowed)",
        ));
    }
    Ok((authority, collection, rkey))
}

impl AtUri {
    fn from_string(s: String) -> Result<Self, SyntaxError> {
        let (authority, collection, rkey) = parse_parts(&s)?;
        Ok(AtUri {
            raw: s,
            authority,
            collection,
            rkey,
        })
    }

    /// Build `at://authority[/collection[/rkey]]` from parts. Fails only when
    /// an rkey is given without a collection.
    pub fn new(
        authority: AtIdentifier,
        collection: Option<Nsid>,
        rkey: Option<RecordKey>,
    ) -> Result<Self, SyntaxError> {
        let mut raw = format!("at://{authority}");
        match (&collection, &rkey) {
            (None, Some(_)) => {
                return Err(err("AT-URI with a record key needs a collection"));
            }
            (Some(c), Some(r)) => {
                raw.push('/');
                raw.push_str(c.as_str());
                raw.push('/');
                raw.push_str(r.as_str());
            }
            (Some(c), None) => {
                raw.push('/');
                raw.push_str(c.as_str());
            }
            (None, None) => {}
        }
        Ok(AtUri {
            raw,
            authority,
            collection,
            rkey,
        })
    }

    /// The URI of a record: `at://authority/collection/rkey`.
    pub fn for_record(authority: AtIdentifier, collection: Nsid, rkey: RecordKey) -> Self {
        let raw = format!("at://{authority}/{collection}/{rkey}");
        AtUri {
            raw,
            authority,
            collection: Some(collection),
            rkey: Some(rkey),
        }
    }

    /// The URI exactly as given.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The URI string, consuming the value.
    pub fn into_inner(self) -> String {
        self.raw
    }

    /// The repository identity (DID or handle).
    pub fn authority(&self) -> &AtIdentifier {
        &self.authority
    }

    /// The collection NSID, when the path has one.
    pub fn collection(&self) -> Option<&Nsid> {
        self.collection.as_ref()
    }

    /// The record key, when the path has one.
    pub fn rkey(&self) -> Option<&RecordKey> {
        self.rkey.as_ref()
    }

    /// The parts, consuming the value.
    pub fn into_parts(self) -> (AtIdentifier, Option<Nsid>, Option<RecordKey>) {
        (self.authority, self.collection, self.rkey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let u: AtUri = "at://did:plc:asdf123/com.atproto.feed.post/3jzfcijpj2z2a"
            .parse()
            .unwrap();
        assert_eq!(u.authority().as_str(), "did:plc:asdf123");
        assert!(u.authority().is_did());
        assert_eq!(
            u.collection().map(Nsid::as_str),
            Some("com.atproto.feed.post")
        );
        assert_eq!(u.rkey().map(RecordKey::as_str), Some("3jzfcijpj2z2a"));

        let u: AtUri = "at://alice.test/app.bsky.feed.post".parse().unwrap();
        assert!(u.authority().is_handle());
        assert_eq!(u.collection().map(Nsid::name), Some("post"));
        assert!(u.rkey().is_none());

        let u: AtUri = "at://alice.test".parse().unwrap();
        assert!(u.collection().is_none() && u.rkey().is_none());
    }

    #[test]
    fn builder() {
        let did: AtIdentifier = "did:plc:abc".parse().unwrap();
        let nsid: Nsid = "app.bsky.feed.post".parse().unwrap();
        let rkey: RecordKey = "self".parse().unwrap();
        let u = AtUri::new(did.clone(), Some(nsid.clone()), Some(rkey.clone())).unwrap();
        assert_eq!(u.as_str(), "at://did:plc:abc/app.bsky.feed.post/self");
        assert_eq!(u, u.as_str().parse::<AtUri>().unwrap());
        assert_eq!(
            AtUri::for_record(did.clone(), nsid.clone(), rkey.clone()),
            u
        );
        let u = AtUri::new(did.clone(), Some(nsid), None).unwrap();
        assert_eq!(u.as_str(), "at://did:plc:abc/app.bsky.feed.post");
        let u = AtUri::new(did.clone(), None, None).unwrap();
        assert_eq!(u.as_str(), "at://did:plc:abc");
        assert!(AtUri::new(did, None, Some(rkey)).is_err());
    }

    #[test]
    fn invalid() {
        for s in [
            "at://foo.com/",
            "at://user:pass@foo.com",
            "at://foo.com/example/123",
            "at://computer",
            "at://example.com:3000",
            "at://did:plc:asdf123#",
            "at://did:plc:asdf123/com.atproto.feed.post/a/b",
            "at://did:plc:asdf123//com.atproto.feed.post",
            "at://did:plc:asdf123?x=1",
            "AT://did:plc:asdf123",
            "at://",
        ] {
            let e = s.parse::<AtUri>().unwrap_err();
            assert_eq!(e.kind(), SyntaxKind::AtUri, "{s}");
        }
        let e = "at://did:plc:a/com.example.foo/%23"
            .parse::<AtUri>()
            .unwrap_err();
        assert!(e.reason().starts_with("record key is not valid: "), "{e}");
    }

    #[test]
    fn serde_round_trip() {
        let s = "\"at://Alice.Test/com.example.fooBar/Self\"";
        let u: AtUri = serde_json::from_str(s).unwrap();
        assert_eq!(serde_json::to_string(&u).unwrap(), s);
        assert!(serde_json::from_str::<AtUri>("\"at://alice.test/\"").is_err());
    }
}
