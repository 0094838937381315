//! Vectors for crypto: signature verification (with did:key and with the
//! fixture's legacy bare multibase key), and private key -> did:key.

use atproto_types::crypto::{Algorithm, PrivateKey, PublicKey};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::Value;

use super::common::read_json;

/// Base64 with or without padding, standard or URL-safe alphabet.
fn b64(s: &str) -> Result<Vec<u8>, String> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(s)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(s))
        .map_err(|e| format!("bad base64 {s:?}: {e}"))
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {name}"))
}

fn entries(rel: &str) -> Vec<Value> {
    match read_json(rel) {
        Value::Array(items) if !items.is_empty() => items,
        other => panic!("{rel}: expected a non-empty array, got {other}"),
    }
}

fn base58(s: &str) -> Result<Vec<u8>, String> {
    // Decode via the crate's own multibase parser would hide bugs behind
    // itself; this small decoder is independent of it.
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out: Vec<u8> = Vec::new();
    for c in s.bytes() {
        let mut carry = ALPHABET
            .iter()
            .position(|&a| a == c)
            .ok_or_else(|| format!("bad base58 character {:?}", char::from(c)))?;
        for byte in out.iter_mut().rev() {
            carry += usize::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = s.bytes().take_while(|&c| c == b'1').count();
    let mut result = vec![0u8; zeros];
    result.extend(out);
    Ok(result)
}

#[test]
fn signature_fixtures() {
    let fixtures = entries("crypto/signature-fixtures.json");
    let mut failures = Vec::new();
    for (i, fx) in fixtures.iter().enumerate() {
        let outcome = (|| -> Result<(), String> {
            let alg_name = field(fx, "algorithm")?;
            let alg = Algorithm::from_jwt_name(alg_name)
                .ok_or_else(|| format!("unknown algorithm {alg_name}"))?;
            let message = b64(field(fx, "messageBase64")?)?;
            let signature = b64(field(fx, "signatureBase64")?)?;
            let expected = fx
                .get("validSignature")
                .and_then(Value::as_bool)
                .ok_or("missing validSignature")?;

            let did = field(fx, "publicKeyDid")?;
            let by_did = PublicKey::from_did_key(did).map_err(|e| format!("did:key: {e}"))?;
            if by_did.algorithm() != alg {
                return Err(format!(
                    "did:key is {}, fixture says {alg}",
                    by_did.algorithm()
                ));
            }
            if by_did.to_did_key() != did {
                return Err(format!("did:key re-encodes as {}", by_did.to_did_key()));
            }

            // The fixture's publicKeyMultibase is the legacy DID document
            // form, with the algorithm given by `didDocSuite`.
            let suite = field(fx, "didDocSuite")?;
            let suite_alg = Algorithm::from_legacy_verification_method_type(suite)
                .ok_or_else(|| format!("unknown didDocSuite {suite}"))?;
            if suite_alg != alg {
                return Err(format!("didDocSuite {suite} does not match {alg}"));
            }
            let multibase = field(fx, "publicKeyMultibase")?;
            let by_multibase = PublicKey::from_legacy_multibase(alg, multibase)
                .map_err(|e| format!("multibase: {e}"))?;
            let by_either = PublicKey::parse_with_algorithm(alg, multibase)
                .map_err(|e| format!("multibase with algorithm: {e}"))?;
            if by_multibase != by_did || by_either != by_did {
                return Err("did:key and multibase name different keys".to_owned());
            }
            // The Multikey form of the same key parses back to it.
            if PublicKey::from_multibase(&by_did.to_multibase()).as_ref() != Ok(&by_did) {
                return Err("Multikey round trip failed".to_owned());
            }

            let mut problems = Vec::new();
            for (form, key) in [("did:key", &by_did), ("multibase", &by_multibase)] {
                let result = key.verify(&message, &signature);
                if result.is_ok() != expected {
                    problems.push(format!("{form}: expected valid={expected}, got {result:?}"));
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        })();
        if let Err(e) = outcome {
            let comment = fx.get("comment").and_then(Value::as_str).unwrap_or("");
            failures.push(format!("#{i} ({comment}): {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} signature fixtures failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

fn check_w3c(rel: &str, alg: Algorithm, secret: impl Fn(&Value) -> Result<Vec<u8>, String>) {
    let fixtures = entries(rel);
    let mut failures = Vec::new();
    for (i, fx) in fixtures.iter().enumerate() {
        let outcome = (|| -> Result<(), String> {
            let expected = field(fx, "publicDidKey")?;
            let bytes = secret(fx)?;
            let key =
                PrivateKey::from_bytes(alg, &bytes).map_err(|e| format!("private key: {e}"))?;
            let did = key.did_key();
            if did != expected {
                return Err(format!("private key gives {did}, expected {expected}"));
            }
            let public =
                PublicKey::from_did_key(expected).map_err(|e| format!("parsing did:key: {e}"))?;
            if public.algorithm() != alg {
                return Err(format!("did:key parsed as {}", public.algorithm()));
            }
            if public.to_did_key() != expected {
                return Err(format!("did:key round trips to {}", public.to_did_key()));
            }
            if public != key.public_key() {
                return Err("parsed did:key differs from the derived public key".to_owned());
            }
            let sig = key.sign(b"interop");
            public
                .verify(b"interop", &sig)
                .map_err(|e| format!("own signature: {e}"))
        })();
        if let Err(e) = outcome {
            failures.push(format!("#{i}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{rel}: {} of {} failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

#[test]
fn w3c_didkey_k256() {
    check_w3c("crypto/w3c_didkey_K256.json", Algorithm::K256, |fx| {
        let hex = field(fx, "privateKeyBytesHex")?;
        PrivateKey::from_hex(Algorithm::K256, hex)
            .map(|k| k.to_bytes().to_vec())
            .map_err(|e| format!("privateKeyBytesHex: {e}"))
    });
}

#[test]
fn w3c_didkey_p256() {
    check_w3c("crypto/w3c_didkey_P256.json", Algorithm::P256, |fx| {
        base58(field(fx, "privateKeyBytesBase58")?)
    });
}
