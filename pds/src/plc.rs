//! did:plc: building and signing genesis operations, submitting them to the
//! PLC directory, and the DID document they describe (per the did:plc
//! v0.1 specification).
//!
//! The DID of a genesis operation is `did:plc:` followed by the first 24
//! characters of the lower-case base32 of the SHA-256 of the signed
//! operation's DAG-CBOR. The signature is ECDSA (low-S) over the DAG-CBOR
//! of the unsigned operation, base64url without padding.

use std::time::Duration;

use atproto_types::crypto::{sha256, PrivateKey, PublicKey};
use atproto_types::data::{to_dag_cbor, Value};
use base64::Engine;

/// Errors talking to the PLC directory.
#[derive(Debug, thiserror::Error)]
pub enum PlcError {
    /// The directory answered with an error.
    #[error("HTTP {status}: {message}")]
    Rejected { status: u16, message: String },
    /// The directory could not be reached or answered nonsense.
    #[error("{0}")]
    Unreachable(String),
}

/// A signed did:plc genesis operation and its DID.
#[derive(Debug, Clone, PartialEq)]
pub struct Genesis {
    pub did: String,
    /// The signed operation (JSON, as posted to the directory).
    pub op: serde_json::Value,
}

/// What a new identity says.
#[derive(Debug, Clone)]
pub struct GenesisInput<'a> {
    /// did:key of the account's repo signing key.
    pub signing_key: &'a str,
    /// did:key rotation keys, highest priority first.
    pub rotation_keys: &'a [String],
    pub handle: &'a str,
    /// The PDS's public URL.
    pub pds_endpoint: &'a str,
}

fn unsigned_op(input: &GenesisInput<'_>) -> Value {
    let s = |v: &str| Value::String(v.to_owned());
    Value::map_from_iter([
        ("type", s("plc_operation")),
        (
            "rotationKeys",
            Value::array_from_iter(input.rotation_keys.iter().map(|k| s(k))),
        ),
        (
            "verificationMethods",
            Value::map_from_iter([("atproto", s(input.signing_key))]),
        ),
        (
            "alsoKnownAs",
            Value::array_from_iter([s(&format!("at://{}", input.handle))]),
        ),
        (
            "services",
            Value::map_from_iter([(
                "atproto_pds",
                Value::map_from_iter([
                    ("type", s("AtprotoPersonalDataServer")),
                    ("endpoint", s(input.pds_endpoint)),
                ]),
            )]),
        ),
        ("prev", Value::Null),
    ])
}

/// Builds and signs a genesis operation with `rotation_key` (which must be
/// one of `input.rotation_keys`).
pub fn genesis(input: &GenesisInput<'_>, rotation_key: &PrivateKey) -> Genesis {
    let unsigned = unsigned_op(input);
    let sig = rotation_key.sign(&to_dag_cbor(&unsigned));
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
    let mut signed = unsigned;
    if let Value::Map(m) = &mut signed {
        m.insert("sig".to_owned(), Value::String(sig));
    }
    let hash = sha256(&to_dag_cbor(&signed));
    let b32 = data_encoding::BASE32_NOPAD
        .encode(&hash)
        .to_ascii_lowercase();
    let did = format!("did:plc:{}", b32.get(..24).unwrap_or(&b32));
    Genesis {
        did,
        op: signed.to_json(),
    }
}

/// Signs `unsigned` (an operation without `sig`) with `key`: the signed
/// operation as JSON.
fn sign_op(unsigned: Value, key: &PrivateKey) -> serde_json::Value {
    let sig = key.sign(&to_dag_cbor(&unsigned));
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
    let mut signed = unsigned;
    if let Value::Map(m) = &mut signed {
        m.insert("sig".to_owned(), Value::String(sig));
    }
    signed.to_json()
}

/// The CID (`dag-cbor`, sha-256) of a signed operation: what the next
/// operation's `prev` names.
pub fn op_cid(op: &serde_json::Value) -> Result<String, PlcError> {
    let value = Value::from_json(op)
        .map_err(|e| PlcError::Unreachable(format!("bad PLC operation: {e}")))?;
    Ok(atproto_types::data::cid_for_dag_cbor(&to_dag_cbor(&value)).to_string())
}

/// The fields of a `plc_operation` an update may change.
#[derive(Debug, Clone, PartialEq)]
pub struct OpFields {
    pub rotation_keys: Vec<serde_json::Value>,
    pub verification_methods: serde_json::Value,
    pub also_known_as: Vec<serde_json::Value>,
    pub services: serde_json::Value,
}

impl OpFields {
    /// The fields of a signed `plc_operation` (or legacy `create`), as the
    /// directory's `/log/last` returns it; `None` for a tombstone or
    /// anything else.
    pub fn of(op: &serde_json::Value) -> Option<OpFields> {
        match op.get("type").and_then(|t| t.as_str()) {
            Some("plc_operation") => Some(OpFields {
                rotation_keys: op.get("rotationKeys")?.as_array()?.clone(),
                verification_methods: op.get("verificationMethods")?.clone(),
                also_known_as: op.get("alsoKnownAs")?.as_array()?.clone(),
                services: op.get("services")?.clone(),
            }),
            // The legacy genesis form.
            Some("create") => {
                let s = |k: &str| op.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                let handle = s("handle")?;
                Some(OpFields {
                    rotation_keys: vec![
                        serde_json::Value::String(s("recoveryKey")?),
                        serde_json::Value::String(s("signingKey")?),
                    ],
                    verification_methods: serde_json::json!({ "atproto": s("signingKey")? }),
                    also_known_as: vec![serde_json::Value::String(format!("at://{handle}"))],
                    services: serde_json::json!({
                        "atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": s("service")?}
                    }),
                })
            }
            _ => None,
        }
    }
}

/// Signs a `plc_operation` with `fields` following the operation whose
/// CID is `prev`.
pub fn update_op(
    fields: &OpFields,
    prev: &str,
    rotation_key: &PrivateKey,
) -> Result<serde_json::Value, PlcError> {
    let unsigned = serde_json::json!({
        "type": "plc_operation",
        "rotationKeys": fields.rotation_keys,
        "verificationMethods": fields.verification_methods,
        "alsoKnownAs": fields.also_known_as,
        "services": fields.services,
        "prev": prev,
    });
    let unsigned = Value::from_json(&unsigned)
        .map_err(|e| PlcError::Unreachable(format!("bad PLC operation: {e}")))?;
    Ok(sign_op(unsigned, rotation_key))
}

/// The DID document of `did` as created by `input` (what the directory
/// serves for it).
pub fn did_document(did: &str, input: &GenesisInput<'_>) -> serde_json::Value {
    let multibase = PublicKey::from_did_key(input.signing_key)
        .map(|k| k.to_multibase())
        .unwrap_or_else(|_| input.signing_key.trim_start_matches("did:key:").to_owned());
    serde_json::json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1"
        ],
        "id": did,
        "alsoKnownAs": [format!("at://{}", input.handle)],
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": multibase,
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": input.pds_endpoint,
        }],
    })
}

/// A client of one PLC directory.
#[derive(Debug, Clone)]
pub struct PlcClient {
    http: reqwest::Client,
    base: String,
}

impl PlcClient {
    /// A client of the directory at `base` (no trailing slash).
    pub fn new(http: reqwest::Client, base: &str) -> PlcClient {
        PlcClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The directory's URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Submits an operation for `did` (`POST /{did}`).
    pub async fn submit(&self, did: &str, op: &serde_json::Value) -> Result<(), PlcError> {
        let res = self
            .http
            .post(format!("{}/{}", self.base, did))
            .timeout(Duration::from_secs(15))
            .json(op)
            .send()
            .await
            .map_err(|e| PlcError::Unreachable(e.to_string()))?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let body = res.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.chars().take(300).collect());
        Err(PlcError::Rejected {
            status: status.as_u16(),
            message,
        })
    }

    /// The last operation of `did` (`GET /{did}/log/last`).
    pub async fn last_op(&self, did: &str) -> Result<serde_json::Value, PlcError> {
        self.get_json(&format!("{}/{}/log/last", self.base, did))
            .await?
            .ok_or_else(|| PlcError::Rejected {
                status: 404,
                message: format!("DID not registered: {did}"),
            })
    }

    /// The current state of `did` (`GET /{did}/data`): `rotationKeys`,
    /// `verificationMethods`, `alsoKnownAs`, `services`.
    pub async fn data(&self, did: &str) -> Result<Option<serde_json::Value>, PlcError> {
        self.get_json(&format!("{}/{}/data", self.base, did)).await
    }

    /// The DID document of `did`, or `None` when the directory does not
    /// know it.
    pub async fn resolve(&self, did: &str) -> Result<Option<serde_json::Value>, PlcError> {
        self.get_json(&format!("{}/{}", self.base, did)).await
    }

    /// A JSON answer of the directory; `None` on 404 or 410.
    async fn get_json(&self, url: &str) -> Result<Option<serde_json::Value>, PlcError> {
        let res = self
            .http
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| PlcError::Unreachable(e.to_string()))?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(PlcError::Rejected {
                status: status.as_u16(),
                message: res
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
            });
        }
        res.json()
            .await
            .map(Some)
            .map_err(|e| PlcError::Unreachable(format!("bad answer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_types::crypto::Algorithm;
    use atproto_types::data::from_dag_cbor;

    #[test]
    fn genesis_is_signed_and_addressed_by_its_hash() {
        let rotation = PrivateKey::generate(Algorithm::K256);
        let signing = PrivateKey::generate(Algorithm::K256);
        let keys = vec!["did:key:zQ3shRecovery".to_owned(), rotation.did_key()];
        let input = GenesisInput {
            signing_key: &signing.did_key(),
            rotation_keys: &keys,
            handle: "alice.test",
            pds_endpoint: "https://pds.example.com",
        };
        let g = genesis(&input, &rotation);
        assert!(g.did.starts_with("did:plc:"));
        assert_eq!(g.did.len(), "did:plc:".len() + 24);
        assert!(g.did["did:plc:".len()..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(g.op["type"], "plc_operation");
        assert_eq!(g.op["prev"], serde_json::Value::Null);
        assert_eq!(g.op["alsoKnownAs"][0], "at://alice.test");
        assert_eq!(g.op["rotationKeys"][1], rotation.did_key());
        assert_eq!(g.op["verificationMethods"]["atproto"], signing.did_key());
        assert_eq!(
            g.op["services"]["atproto_pds"]["endpoint"],
            "https://pds.example.com"
        );
        // The signature verifies over the unsigned operation's DAG-CBOR.
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(g.op["sig"].as_str().unwrap())
            .unwrap();
        let unsigned = to_dag_cbor(&unsigned_op(&input));
        rotation.public_key().verify(&unsigned, &sig).unwrap();
        // The DID is the hash of the signed operation.
        let signed = Value::from_json(&g.op).unwrap();
        let bytes = to_dag_cbor(&signed);
        assert_eq!(from_dag_cbor(&bytes).unwrap(), signed);
        let b32 = data_encoding::BASE32_NOPAD
            .encode(&sha256(&bytes))
            .to_ascii_lowercase();
        assert_eq!(g.did, format!("did:plc:{}", &b32[..24]));
        // Deterministic signatures: the same input gives the same DID.
        assert_eq!(genesis(&input, &rotation).did, g.did);
        let doc = did_document(&g.did, &input);
        assert_eq!(doc["id"], g.did.as_str());
        assert_eq!(
            doc["verificationMethod"][0]["publicKeyMultibase"],
            signing.public_key().to_multibase()
        );
        assert_eq!(
            doc["service"][0]["serviceEndpoint"],
            "https://pds.example.com"
        );
    }

    #[test]
    fn update_ops_chain_to_their_predecessor() {
        let rotation = PrivateKey::generate(Algorithm::K256);
        let signing = PrivateKey::generate(Algorithm::K256);
        let keys = vec![rotation.did_key()];
        let input = GenesisInput {
            signing_key: &signing.did_key(),
            rotation_keys: &keys,
            handle: "alice.test",
            pds_endpoint: "https://pds.example.com",
        };
        let g = genesis(&input, &rotation);
        let mut fields = OpFields::of(&g.op).expect("fields of a plc_operation");
        assert_eq!(
            fields.also_known_as,
            vec![serde_json::json!("at://alice.test")]
        );
        fields.also_known_as = vec![serde_json::json!("at://bob.test")];
        let prev = op_cid(&g.op).unwrap();
        assert!(prev.starts_with("bafyrei"), "{prev}");
        let op = update_op(&fields, &prev, &rotation).unwrap();
        assert_eq!(op["prev"], prev.as_str());
        assert_eq!(op["alsoKnownAs"][0], "at://bob.test");
        assert_eq!(op["rotationKeys"][0], rotation.did_key());
        // The signature covers the operation without `sig`.
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(op["sig"].as_str().unwrap())
            .unwrap();
        let mut unsigned = op.clone();
        unsigned.as_object_mut().unwrap().remove("sig");
        let bytes = to_dag_cbor(&Value::from_json(&unsigned).unwrap());
        rotation.public_key().verify(&bytes, &sig).unwrap();
        // Tombstones and nonsense have no fields.
        assert_eq!(
            OpFields::of(&serde_json::json!({"type": "plc_tombstone", "prev": prev})),
            None
        );
        assert_eq!(
            OpFields::of(&serde_json::json!({"type": "plc_operation"})),
            None
        );
    }
}
