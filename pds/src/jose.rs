//! JWS compact serialization (`header.claims.signature`, each part
//! base64url without padding) for tokens signed with atproto keys (ES256K,
//! ES256), which `jsonwebtoken` cannot make: service-auth tokens and
//! per-account session tokens. Parsing checks only the shape; what a
//! token's signature and claims must satisfy is its caller's business.

use atproto_types::crypto::PrivateKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The JOSE header fields atproto tokens use.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Header {
    pub alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// A token split into its parts; nothing in it is trusted yet.
#[derive(Debug, Clone)]
pub struct Compact<C> {
    pub header: Header,
    pub claims: C,
    /// `header.claims` as received: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact token: exactly three parts, a JSON header
/// with `alg`, JSON claims of type `C`, a base64url signature. `None` for
/// anything else.
pub fn decode<C: DeserializeOwned>(token: &str) -> Option<Compact<C>> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let header: Header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let claims: C = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
    Some(Compact {
        header,
        claims,
        signing_input: format!("{h}.{c}"),
        signature,
    })
}

/// Signs `claims` with `key` (alg from the key: ES256K or ES256), with
/// header `typ` if given.
pub fn sign<C: Serialize>(key: &PrivateKey, typ: Option<&str>, claims: &C) -> String {
    let header = Header {
        alg: key.algorithm().jwt_name().to_owned(),
        typ: typ.map(str::to_owned),
    };
    // Serialising a header and plain claim structs cannot fail.
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let claims = serde_json::to_vec(claims).unwrap_or_default();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_types::crypto::Algorithm;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        sub: String,
    }

    #[test]
    fn round_trip_and_shape() {
        let key = PrivateKey::generate(Algorithm::K256);
        let token = sign(&key, Some("JWT"), &Claims { sub: "x".into() });
        let c: Compact<Claims> = decode(&token).expect("decodes");
        assert_eq!(c.header.alg, "ES256K");
        assert_eq!(c.header.typ.as_deref(), Some("JWT"));
        assert_eq!(c.claims, Claims { sub: "x".into() });
        key.public_key()
            .verify(c.signing_input.as_bytes(), &c.signature)
            .expect("signature covers header.claims");
        for bad in ["", "a.b", "a.b.c.d", &format!("{token}.x"), "e30.e30.!!"] {
            assert!(decode::<Claims>(bad).is_none(), "{bad:?}");
        }
        // Claims of the wrong shape.
        let other = sign(&key, None, &serde_json::json!({"sub": 1}));
        assert!(decode::<Claims>(&other).is_none());
        assert_eq!(
            decode::<serde_json::Value>(&other).expect("any").header.typ,
            None
        );
    }
}
