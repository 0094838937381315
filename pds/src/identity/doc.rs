//! The atproto parts of a DID document (per the atproto DID spec): the
//! handle (first `at://` entry of `alsoKnownAs`), the repository signing
//! key (verification method `#atproto`: `Multikey`, or the legacy
//! `EcdsaSecp256k1VerificationKey2019` / `EcdsaSecp256r1VerificationKey2019`
//! types), and the PDS endpoint (service `#atproto_pds` of type
//! `AtprotoPersonalDataServer`).

use atproto_types::crypto::{Algorithm, PublicKey};
use serde_json::Value;

/// Why a DID document is not usable for atproto.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocError {
    #[error("DID document is not a JSON object")]
    NotAnObject,
    #[error("DID document id {found:?} does not match {expected}")]
    WrongId { expected: String, found: String },
    #[error("DID document has no atproto signing key")]
    NoSigningKey,
    #[error("DID document has an unparseable atproto signing key: {0}")]
    BadSigningKey(String),
    #[error("DID document has no atproto PDS endpoint")]
    NoPds,
}

/// The atproto view of a DID document; each part is `None` when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocParts {
    pub did: String,
    /// The claimed handle, lower-cased (not verified bi-directionally).
    pub handle: Option<String>,
    /// The `#atproto` key as a did:key, when present and parseable.
    pub signing_key: Option<String>,
    pub pds: Option<String>,
}

/// The atproto view of a document, with every part present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtprotoData {
    pub did: String,
    pub handle: Option<String>,
    /// did:key of the repository signing key.
    pub signing_key: String,
    pub pds: String,
}

/// Whether an `id` (`#atproto`, `did:...#atproto`) names `fragment` of `did`.
fn id_matches(id: &str, did: &str, fragment: &str) -> bool {
    match id.split_once('#') {
        Some(("", f)) => f == fragment,
        Some((d, f)) => d == did && f == fragment,
        None => false,
    }
}

/// The handle claimed by a document: the first `at://` alias.
pub fn handle(doc: &Value) -> Option<String> {
    doc.get("alsoKnownAs")?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|aka| aka.strip_prefix("at://"))
        .map(str::to_ascii_lowercase)
}

/// The `#atproto` signing key of a document, as a did:key.
pub fn signing_key(doc: &Value, did: &str) -> Result<Option<String>, DocError> {
    let Some(methods) = doc.get("verificationMethod").and_then(Value::as_array) else {
        return Ok(None);
    };
    let Some(method) = methods.iter().find(|m| {
        m.get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| id_matches(id, did, "atproto"))
    }) else {
        return Ok(None);
    };
    let Some(multibase) = method.get("publicKeyMultibase").and_then(Value::as_str) else {
        return Err(DocError::BadSigningKey("no publicKeyMultibase".into()));
    };
    let ty = method.get("type").and_then(Value::as_str).unwrap_or("");
    let key = if ty == "Multikey" {
        PublicKey::from_multibase(multibase)
    } else if let Some(alg) = Algorithm::from_legacy_verification_method_type(ty) {
        PublicKey::from_legacy_multibase(alg, multibase)
    } else {
        return Err(DocError::BadSigningKey(format!(
            "unsupported verification method type {ty:?}"
        )));
    };
    key.map(|k| Some(k.to_did_key()))
        .map_err(|e| DocError::BadSigningKey(e.to_string()))
}

/// The `serviceEndpoint` of the `service` entry `#fragment` (`id`
/// `#fragment` or `<did>#fragment`), if its `type` is `ty` (any type for
/// `None`).
fn entry_endpoint<'a>(
    doc: &'a Value,
    did: &str,
    fragment: &str,
    ty: Option<&str>,
) -> Option<&'a str> {
    doc.get("service")?
        .as_array()?
        .iter()
        .find(|s| {
            s.get("id")
                .and_then(Value::as_str)
                .is_some_and(|id| id_matches(id, did, fragment))
                && ty.is_none_or(|t| s.get("type").and_then(Value::as_str) == Some(t))
        })?
        .get("serviceEndpoint")?
        .as_str()
}

/// The `#atproto_pds` endpoint of a document.
pub fn pds_endpoint(doc: &Value, did: &str) -> Option<String> {
    entry_endpoint(doc, did, "atproto_pds", Some("AtprotoPersonalDataServer")).map(str::to_owned)
}

/// The http(s) endpoint of service `service_id` (`#name`, as an
/// `atproto-proxy` header names it) in `did`'s document, of any type.
pub fn service_endpoint(doc: &Value, did: &str, service_id: &str) -> Option<String> {
    let fragment = service_id.strip_prefix('#')?;
    entry_endpoint(doc, did, fragment, None)
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(str::to_owned)
}

/// Reads the atproto parts of `doc`, which must be the document of `did`.
pub fn parts(did: &str, doc: &Value) -> Result<DocParts, DocError> {
    if !doc.is_object() {
        return Err(DocError::NotAnObject);
    }
    let id = doc.get("id").and_then(Value::as_str).unwrap_or("");
    if id != did {
        return Err(DocError::WrongId {
            expected: did.to_owned(),
            found: id.to_owned(),
        });
    }
    Ok(DocParts {
        did: did.to_owned(),
        handle: handle(doc),
        signing_key: signing_key(doc, did)?,
        pds: pds_endpoint(doc, did),
    })
}

/// Reads the atproto parts of `doc`, requiring a signing key and a PDS.
pub fn atproto_data(did: &str, doc: &Value) -> Result<AtprotoData, DocError> {
    let p = parts(did, doc)?;
    Ok(AtprotoData {
        did: p.did,
        handle: p.handle,
        signing_key: p.signing_key.ok_or(DocError::NoSigningKey)?,
        pds: p.pds.ok_or(DocError::NoPds)?,
    })
}

/// A DID document in the shape the PLC directory serves.
pub fn build(did: &str, handle: Option<&str>, signing_key: &str, pds: &str) -> Value {
    let multibase = PublicKey::from_did_key(signing_key)
        .map(|k| k.to_multibase())
        .unwrap_or_else(|_| signing_key.trim_start_matches("did:key:").to_owned());
    let aka: Vec<String> = handle.map(|h| format!("at://{h}")).into_iter().collect();
    serde_json::json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1"
        ],
        "id": did,
        "alsoKnownAs": aka,
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": multibase,
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": pds,
        }],
    })
}

/// The URL of a did:web's document: `https://<host>/.well-known/did.json`
/// (percent-decoded host, `%3A` for a port); `http` for `localhost` and
/// `127.0.0.1` (as the reference, for local development). DIDs with a
/// path (`did:web:host:path`) are not supported by atproto.
pub fn did_web_url(did: &str) -> Option<String> {
    let rest = did.strip_prefix("did:web:")?;
    if rest.is_empty() || rest.contains(':') || rest.contains('/') {
        return None;
    }
    let host = rest.replace("%3A", ":").replace("%3a", ":");
    if host.contains('%') || host.contains('@') || host.contains('?') || host.contains('#') {
        return None;
    }
    let name = host.split(':').next().unwrap_or("");
    if name.is_empty() {
        return None;
    }
    let scheme = if name == "localhost" || name == "127.0.0.1" {
        "http"
    } else {
        "https"
    };
    Some(format!("{scheme}://{host}/.well-known/did.json"))
}

/// The did:web of a host (`Host` header value): `:` of a port becomes `%3A`.
pub fn did_web_for_host(host: &str) -> String {
    format!("did:web:{}", host.to_ascii_lowercase().replace(':', "%3A"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_types::crypto::PrivateKey;
    use serde_json::json;

    #[test]
    fn multikey_document() {
        let key = PrivateKey::generate(Algorithm::K256);
        let doc = build(
            "did:plc:abc",
            Some("Alice.Test"),
            &key.did_key(),
            "https://pds.example",
        );
        let data = atproto_data("did:plc:abc", &doc).unwrap();
        assert_eq!(data.handle.as_deref(), Some("alice.test"));
        assert_eq!(data.signing_key, key.did_key());
        assert_eq!(data.pds, "https://pds.example");
        // Another DID's document is refused.
        assert!(matches!(
            atproto_data("did:plc:other", &doc),
            Err(DocError::WrongId { .. })
        ));
    }

    #[test]
    fn legacy_key_types_and_full_ids() {
        for alg in [Algorithm::K256, Algorithm::P256] {
            let key = PrivateKey::generate(alg);
            let point = key.public_key().to_compressed_bytes();
            let legacy = format!("z{}", bs58_encode(&point));
            let doc = json!({
                "id": "did:web:example.com",
                "alsoKnownAs": ["https://elsewhere", "at://bob.example.com"],
                "verificationMethod": [
                    {"id": "did:web:example.com#other", "type": "Multikey", "publicKeyMultibase": "zzz"},
                    {"id": "did:web:example.com#atproto", "type": alg.legacy_verification_method_type(), "publicKeyMultibase": legacy}
                ],
                "service": [
                    {"id": "#atproto_pds", "type": "Other", "serviceEndpoint": "https://wrong"},
                    {"id": "did:web:example.com#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example"}
                ]
            });
            let data = atproto_data("did:web:example.com", &doc).unwrap();
            assert_eq!(data.handle.as_deref(), Some("bob.example.com"));
            assert_eq!(data.signing_key, key.did_key());
            assert_eq!(data.pds, "https://pds.example");
        }
    }

    fn bs58_encode(bytes: &[u8]) -> String {
        // base58btc, enough for a test.
        const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
        let mut digits: Vec<u8> = vec![0];
        for &b in bytes {
            let mut carry = u32::from(b);
            for d in digits.iter_mut() {
                carry += u32::from(*d) << 8;
                *d = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let zeros = bytes.iter().take_while(|b| **b == 0).count();
        let mut out = "1".repeat(zeros);
        out.extend(
            digits
                .iter()
                .rev()
                .skip_while(|d| **d == 0)
                .map(|d| ALPHABET[*d as usize] as char),
        );
        out
    }

    #[test]
    fn missing_parts() {
        let doc = json!({"id": "did:plc:x", "alsoKnownAs": []});
        let p = parts("did:plc:x", &doc).unwrap();
        assert_eq!((p.handle, p.signing_key, p.pds), (None, None, None));
        assert_eq!(atproto_data("did:plc:x", &doc), Err(DocError::NoSigningKey));
        let bad_key = json!({"id": "did:plc:x", "verificationMethod": [{"id": "#atproto", "type": "Multikey", "publicKeyMultibase": "znotakey"}]});
        assert!(matches!(
            parts("did:plc:x", &bad_key),
            Err(DocError::BadSigningKey(_))
        ));
        assert_eq!(parts("did:plc:x", &json!([1])), Err(DocError::NotAnObject));
    }

    #[test]
    fn did_web_urls() {
        assert_eq!(
            did_web_url("did:web:example.com").as_deref(),
            Some("https://example.com/.well-known/did.json")
        );
        assert_eq!(
            did_web_url("did:web:localhost%3A2583").as_deref(),
            Some("http://localhost:2583/.well-known/did.json")
        );
        assert_eq!(
            did_web_url("did:web:127.0.0.1%3A80").as_deref(),
            Some("http://127.0.0.1:80/.well-known/did.json")
        );
        for bad in [
            "did:web:",
            "did:web:example.com:user:alice",
            "did:web:a%2Fb",
            "did:plc:abc",
            "did:web:%3A80",
        ] {
            assert_eq!(did_web_url(bad), None, "{bad}");
        }
        assert_eq!(
            did_web_for_host("LocalHost:8080"),
            "did:web:localhost%3A8080"
        );
    }
}
