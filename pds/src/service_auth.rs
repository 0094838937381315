//! Inter-service authentication: short-lived JWTs signed with an account's
//! (or the server's) atproto signing key, as the reference's
//! `createServiceJwt` / `verifyJwt` make and check them.
//!
//! * header: `typ: JWT`, `alg: ES256K` (secp256k1) or `ES256` (P-256);
//! * claims: `iss` (a DID, possibly with a `#service` fragment), `aud` (the
//!   receiving service's DID, possibly with a fragment), `exp`, `iat`,
//!   `lxm` (the one XRPC method the token may call; optional), `jti`
//!   (random, 16 bytes hex);
//! * signature: 64 bytes of compact `r || s` over the SHA-256 of
//!   `base64url(header) "." base64url(claims)`, base64url without padding.
//!
//! [`sign`] makes a token; [`decode`] reads the claims without trusting
//! them (to learn which DID's key to resolve), and [`verify`] checks the
//! signature against that key and the time, audience and method rules.

use std::time::{SystemTime, UNIX_EPOCH};

use atproto_types::crypto::{Algorithm, PrivateKey, PublicKey};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::jose;

/// Default lifetime of a service token (the reference's 60 seconds).
pub const DEFAULT_TTL_SECS: i64 = 60;

/// The claims of a service token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lxm: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl Claims {
    /// The issuer's DID without a `#service` fragment.
    pub fn issuer_did(&self) -> &str {
        self.iss.split('#').next().unwrap_or(&self.iss)
    }
}

/// Why a service token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceAuthError {
    #[error("poorly formatted jwt")]
    Malformed,
    #[error("unsupported jwt algorithm {0:?}")]
    Algorithm(String),
    #[error("jwt algorithm {token} does not match the issuer's {key} key")]
    AlgorithmMismatch { token: String, key: &'static str },
    #[error("jwt signature does not match jwt issuer")]
    BadSignature,
    #[error("jwt expired")]
    Expired,
    #[error("jwt audience does not match service did")]
    BadAudience,
    #[error("missing jwt lexicon method (\"lxm\")")]
    MissingMethod,
    #[error("bad jwt lexicon method (\"lxm\"): {0}")]
    BadMethod(String),
}

impl ServiceAuthError {
    /// The XRPC error name the reference answers with.
    pub fn xrpc_name(&self) -> &'static str {
        match self {
            ServiceAuthError::Malformed
            | ServiceAuthError::Algorithm(_)
            | ServiceAuthError::AlgorithmMismatch { .. } => "BadJwt",
            ServiceAuthError::BadSignature => "BadJwtSignature",
            ServiceAuthError::Expired => "JwtExpired",
            ServiceAuthError::BadAudience => "BadJwtAudience",
            ServiceAuthError::MissingMethod | ServiceAuthError::BadMethod(_) => {
                "BadJwtLexiconMethod"
            }
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What to put in a new token.
#[derive(Clone, Debug)]
pub struct NewToken<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    pub lxm: Option<&'a str>,
    /// Expiry, seconds since the epoch; `None` is now + [`DEFAULT_TTL_SECS`].
    pub exp: Option<i64>,
}

/// Signs a service token with `key`.
pub fn sign(key: &PrivateKey, token: &NewToken<'_>) -> String {
    let now = now_secs();
    let mut jti = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut jti);
    let claims = Claims {
        iss: token.iss.to_owned(),
        aud: token.aud.to_owned(),
        exp: token.exp.unwrap_or(now + DEFAULT_TTL_SECS),
        iat: Some(now),
        lxm: token.lxm.map(str::to_owned),
        jti: Some(jti.iter().map(|b| format!("{b:02x}")).collect()),
    };
    jose::sign(key, Some("JWT"), &claims)
}

/// A token split into its parts; the claims are not yet trusted.
#[derive(Debug, Clone)]
pub struct Unverified {
    pub claims: Claims,
    alg: String,
    signing_input: String,
    signature: Vec<u8>,
}

/// Parses a token without checking anything but its shape.
pub fn decode(token: &str) -> Result<Unverified, ServiceAuthError> {
    let token: jose::Compact<Claims> = jose::decode(token).ok_or(ServiceAuthError::Malformed)?;
    // Tokens for other purposes (session and refresh tokens) are not
    // service tokens, whatever their signature.
    if matches!(
        token.header.typ.as_deref(),
        Some("at+jwt" | "refresh+jwt" | "dpop+jwt")
    ) {
        return Err(ServiceAuthError::Malformed);
    }
    Ok(Unverified {
        claims: token.claims,
        alg: token.header.alg,
        signing_input: token.signing_input,
        signature: token.signature,
    })
}

/// What a receiver requires of a token.
#[derive(Clone, Debug)]
pub struct Expect<'a> {
    /// Accepted audiences (the service DID, with or without a fragment);
    /// `None` accepts any.
    pub aud: Option<&'a [&'a str]>,
    /// The method being called; when set, `lxm` must be present and equal.
    pub lxm: Option<&'a str>,
}

impl Unverified {
    /// Checks the signature against `key` (the issuer's signing key from
    /// its DID document) and the expiry, audience and method rules.
    pub fn verify(self, key: &PublicKey, expect: &Expect<'_>) -> Result<Claims, ServiceAuthError> {
        let expected_alg = key.algorithm().jwt_name();
        if Algorithm::from_jwt_name(&self.alg).is_none() {
            return Err(ServiceAuthError::Algorithm(self.alg));
        }
        if self.alg != expected_alg {
            return Err(ServiceAuthError::AlgorithmMismatch {
                token: self.alg,
                key: expected_alg,
            });
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| ServiceAuthError::BadSignature)?;
        check_claims(&self.claims, expect, now_secs())?;
        Ok(self.claims)
    }
}

fn check_claims(claims: &Claims, expect: &Expect<'_>, now: i64) -> Result<(), ServiceAuthError> {
    if now > claims.exp {
        return Err(ServiceAuthError::Expired);
    }
    if let Some(auds) = expect.aud {
        if !auds.contains(&claims.aud.as_str()) {
            return Err(ServiceAuthError::BadAudience);
        }
    }
    if let Some(lxm) = expect.lxm {
        match claims.lxm.as_deref() {
            None => return Err(ServiceAuthError::MissingMethod),
            Some(got) if got != lxm => return Err(ServiceAuthError::BadMethod(got.to_owned())),
            Some(_) => {}
        }
    }
    Ok(())
}

/// Decodes and verifies in one step, when the key is already known.
pub fn verify(
    token: &str,
    key: &PublicKey,
    expect: &Expect<'_>,
) -> Result<Claims, ServiceAuthError> {
    decode(token)?.verify(key, expect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn token(key: &PrivateKey, lxm: Option<&str>, exp: Option<i64>) -> String {
        sign(
            key,
            &NewToken {
                iss: "did:plc:issuer",
                aud: "did:web:pds.example",
                lxm,
                exp,
            },
        )
    }

    const AUD: &[&str] = &["did:web:pds.example"];

    #[test]
    fn round_trip_both_curves() {
        for alg in [Algorithm::K256, Algorithm::P256] {
            let key = PrivateKey::generate(alg);
            let t = token(&key, Some("com.atproto.server.createAccount"), None);
            let header: serde_json::Value = serde_json::from_slice(
                &URL_SAFE_NO_PAD
                    .decode(t.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(header["alg"], alg.jwt_name());
            assert_eq!(header["typ"], "JWT");
            let claims = verify(
                &t,
                &key.public_key(),
                &Expect {
                    aud: Some(AUD),
                    lxm: Some("com.atproto.server.createAccount"),
                },
            )
            .unwrap();
            assert_eq!(claims.iss, "did:plc:issuer");
            assert_eq!(claims.jti.as_deref().map(str::len), Some(32));
            assert!(claims.exp - claims.iat.unwrap() == DEFAULT_TTL_SECS);
        }
    }

    #[test]
    fn refusals_name_the_reference_errors() {
        let key = PrivateKey::generate(Algorithm::K256);
        let other = PrivateKey::generate(Algorithm::K256);
        let p256 = PrivateKey::generate(Algorithm::P256);
        let t = token(&key, Some("a.b.c"), None);
        let any = Expect {
            aud: None,
            lxm: None,
        };
        let err = |t: &str, k: &PrivateKey, e: &Expect<'_>| {
            verify(t, &k.public_key(), e).unwrap_err().xrpc_name()
        };
        assert_eq!(err(&t, &other, &any), "BadJwtSignature");
        assert_eq!(err(&t, &p256, &any), "BadJwt");
        assert_eq!(
            err(
                &t,
                &key,
                &Expect {
                    aud: Some(&["did:web:other"]),
                    lxm: None
                }
            ),
            "BadJwtAudience"
        );
        assert_eq!(
            err(
                &t,
                &key,
                &Expect {
                    aud: None,
                    lxm: Some("x.y.z")
                }
            ),
            "BadJwtLexiconMethod"
        );
        let no_lxm = token(&key, None, None);
        assert_eq!(
            err(
                &no_lxm,
                &key,
                &Expect {
                    aud: None,
                    lxm: Some("a.b.c")
                }
            ),
            "BadJwtLexiconMethod"
        );
        let expired = token(&key, None, Some(now_secs() - 5));
        assert_eq!(err(&expired, &key, &any), "JwtExpired");
        assert_eq!(err("a.b", &key, &any), "BadJwt");
        assert_eq!(err("not.a.jwt", &key, &any), "BadJwt");
        // A tampered claim breaks the signature.
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = URL_SAFE_NO_PAD
            .encode(br#"{"iss":"did:plc:someone","aud":"did:web:pds.example","exp":9999999999}"#);
        parts[1] = &forged;
        assert_eq!(err(&parts.join("."), &key, &any), "BadJwtSignature");
    }

    #[test]
    fn issuer_fragment_is_dropped() {
        let c = Claims {
            iss: "did:plc:abc#atproto_labeler".into(),
            aud: "x".into(),
            exp: 0,
            iat: None,
            lxm: None,
            jti: None,
        };
        assert_eq!(c.issuer_did(), "did:plc:abc");
    }
}
