//! Session tokens: HS256 JWTs signed with `PDS_JWT_SECRET`, with the
//! reference PDS's header and claims, so tokens stay valid across a switch
//! between the two implementations sharing a secret. With
//! `PDS_SESSION_TOKEN_ALG=ES256K` the same tokens are instead signed with
//! the account's own secp256k1 signing key (compact low-S signature over
//! `base64url(header).base64url(claims)`) and verified against it; each
//! mode accepts only its own `alg`. [`crate::session`] picks the mode and
//! finds the keys.
//!
//! * access: header `typ: at+jwt`; claims `scope` (one of [`Scope`]),
//!   `sub` (DID), `aud` (service DID), `iat`, `exp` (+120 minutes);
//! * refresh: header `typ: refresh+jwt`; `scope: com.atproto.refresh`,
//!   `sub`, `aud`, `jti` (the id the server stores), `iat`, `exp`
//!   (+90 days).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use atproto_types::crypto::{Algorithm as KeyAlgorithm, PrivateKey, PublicKey};
use base64::Engine;
use jsonwebtoken::{decode, decode_header, encode, Algorithm, DecodingKey, EncodingKey, Header};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::jose;

/// Lifetime of access tokens (the reference's 120 minutes).
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(120 * 60);
/// Lifetime of refresh tokens (the reference's 90 days).
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// `typ` header of access tokens.
pub const ACCESS_TYP: &str = "at+jwt";
/// `typ` header of refresh tokens.
pub const REFRESH_TYP: &str = "refresh+jwt";

/// How session tokens are signed (`PDS_SESSION_TOKEN_ALG`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionTokenAlg {
    /// HS256 with `PDS_JWT_SECRET` (the reference's).
    #[default]
    Hs256,
    /// ES256K with each account's own signing key.
    Es256k,
}

impl std::str::FromStr for SessionTokenAlg {
    type Err = ();
    fn from_str(s: &str) -> Result<SessionTokenAlg, ()> {
        match s.to_ascii_uppercase().as_str() {
            "HS256" => Ok(SessionTokenAlg::Hs256),
            "ES256K" => Ok(SessionTokenAlg::Es256k),
            _ => Err(()),
        }
    }
}

/// The `scope` claim of a session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `com.atproto.access`: a full session (account password).
    Access,
    /// `com.atproto.appPass`: an app-password session.
    AppPass,
    /// `com.atproto.appPassPrivileged`: a privileged app-password session.
    AppPassPrivileged,
    /// `com.atproto.refresh`: a refresh token.
    Refresh,
    /// `com.atproto.signupQueued`: an account waiting in the signup queue.
    SignupQueued,
    /// `com.atproto.takendown`: a taken-down account's narrow session.
    Takendown,
}

impl Scope {
    /// The claim value.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Access => "com.atproto.access",
            Scope::AppPass => "com.atproto.appPass",
            Scope::AppPassPrivileged => "com.atproto.appPassPrivileged",
            Scope::Refresh => "com.atproto.refresh",
            Scope::SignupQueued => "com.atproto.signupQueued",
            Scope::Takendown => "com.atproto.takendown",
        }
    }

    /// The scope of a claim value.
    pub fn parse(s: &str) -> Option<Scope> {
        Some(match s {
            "com.atproto.access" => Scope::Access,
            "com.atproto.appPass" => Scope::AppPass,
            "com.atproto.appPassPrivileged" => Scope::AppPassPrivileged,
            "com.atproto.refresh" => Scope::Refresh,
            "com.atproto.signupQueued" => Scope::SignupQueued,
            "com.atproto.takendown" => Scope::Takendown,
            _ => return None,
        })
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is past its `exp` (400 `ExpiredToken`).
    #[error("Token has expired")]
    Expired,
    /// Bad signature, wrong type, malformed claims (400 `InvalidToken`).
    #[error("{0}")]
    Invalid(&'static str),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
    exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cnf: Option<serde_json::Value>,
}

/// A verified token's claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `sub`: the account.
    pub did: String,
    pub scope: Scope,
    /// `jti` (refresh tokens).
    pub jti: Option<String>,
    /// `exp`, seconds since the epoch.
    pub exp: i64,
}

/// A freshly signed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedToken {
    pub jwt: String,
    /// Expiry in milliseconds since the epoch.
    pub expires_at_ms: i64,
}

/// Signs and verifies session tokens.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    service_did: String,
    alg: SessionTokenAlg,
    /// ES256K mode: account public keys by DID.
    key_cache: std::sync::Mutex<std::collections::HashMap<String, PublicKey>>,
}

/// An ES256K session token split into its parts, its claims not yet
/// trusted: [`TokenSigner::decode_es256k`] reads its subject, whose key
/// then verifies it ([`TokenSigner::verify_es256k`]).
#[derive(Debug, Clone)]
pub struct UnverifiedEs256k {
    /// The `sub` claim, if it is a string.
    pub sub: Option<String>,
    typ: Option<String>,
    claims: Claims,
    signing_input: String,
    signature: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("service_did", &self.service_did)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// A new refresh token id: 32 random bytes, base64url.
pub fn new_token_id() -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

impl TokenSigner {
    /// A signer for `secret` (its UTF-8 bytes are the HS256 key) issuing
    /// tokens for audience `service_did`.
    pub fn new(secret: &str, service_did: &str) -> TokenSigner {
        TokenSigner {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            service_did: service_did.to_owned(),
            alg: SessionTokenAlg::Hs256,
            key_cache: Default::default(),
        }
    }

    /// The same signer in mode `alg`.
    pub fn with_alg(mut self, alg: SessionTokenAlg) -> TokenSigner {
        self.alg = alg;
        self
    }

    /// How this signer signs session tokens.
    pub fn alg(&self) -> SessionTokenAlg {
        self.alg
    }

    fn sign(&self, typ: &str, claims: &Claims) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(typ.to_owned());
        encode(&header, claims, &self.encoding).map_err(|_| TokenError::Invalid("signing failed"))
    }

    fn access_claims(&self, did: &str, scope: Scope, ttl: Duration) -> Claims {
        let iat = now_secs();
        Claims {
            scope: Some(scope.as_str().to_owned()),
            sub: Some(did.to_owned()),
            aud: Some(serde_json::Value::String(self.service_did.clone())),
            jti: None,
            iat: Some(iat),
            exp: iat.saturating_add(secs(ttl)),
            cnf: None,
        }
    }

    fn refresh_claims(&self, did: &str, jti: &str, exp_secs: i64) -> Claims {
        Claims {
            scope: Some(Scope::Refresh.as_str().to_owned()),
            sub: Some(did.to_owned()),
            aud: Some(serde_json::Value::String(self.service_did.clone())),
            jti: Some(jti.to_owned()),
            iat: Some(now_secs()),
            exp: exp_secs,
            cnf: None,
        }
    }

    /// An access token for `did` with `scope`, valid for `ttl` (HS256).
    pub fn access_token(
        &self,
        did: &str,
        scope: Scope,
        ttl: Duration,
    ) -> Result<SignedToken, TokenError> {
        let claims = self.access_claims(did, scope, ttl);
        let jwt = self.sign(ACCESS_TYP, &claims)?;
        Ok(SignedToken {
            jwt,
            expires_at_ms: claims.exp.saturating_mul(1000),
        })
    }

    /// A refresh token for `did` with id `jti`, expiring at `exp_secs`
    /// (HS256).
    pub fn refresh_token(
        &self,
        did: &str,
        jti: &str,
        exp_secs: i64,
    ) -> Result<SignedToken, TokenError> {
        let jwt = self.sign(REFRESH_TYP, &self.refresh_claims(did, jti, exp_secs))?;
        Ok(SignedToken {
            jwt,
            expires_at_ms: exp_secs.saturating_mul(1000),
        })
    }

    fn sign_es256k(key: &PrivateKey, typ: &str, claims: &Claims) -> Result<String, TokenError> {
        if key.algorithm() != KeyAlgorithm::K256 {
            return Err(TokenError::Invalid("the account key is not secp256k1"));
        }
        Ok(jose::sign(key, Some(typ), claims))
    }

    /// An access token for `did` signed (ES256K) with the account's `key`.
    pub fn access_token_es256k(
        &self,
        key: &PrivateKey,
        did: &str,
        scope: Scope,
        ttl: Duration,
    ) -> Result<SignedToken, TokenError> {
        let claims = self.access_claims(did, scope, ttl);
        let jwt = Self::sign_es256k(key, ACCESS_TYP, &claims)?;
        Ok(SignedToken {
            jwt,
            expires_at_ms: claims.exp.saturating_mul(1000),
        })
    }

    /// A refresh token for `did` signed (ES256K) with the account's `key`.
    pub fn refresh_token_es256k(
        &self,
        key: &PrivateKey,
        did: &str,
        jti: &str,
        exp_secs: i64,
    ) -> Result<SignedToken, TokenError> {
        let claims = self.refresh_claims(did, jti, exp_secs);
        let jwt = Self::sign_es256k(key, REFRESH_TYP, &claims)?;
        Ok(SignedToken {
            jwt,
            expires_at_ms: exp_secs.saturating_mul(1000),
        })
    }

    /// Splits an ES256K token, refusing any other `alg`; nothing is
    /// trusted yet.
    pub fn decode_es256k(token: &str) -> Result<UnverifiedEs256k, TokenError> {
        const BAD: TokenError = TokenError::Invalid("Token could not be verified");
        let token: jose::Compact<Claims> = jose::decode(token).ok_or(BAD)?;
        if token.header.alg != KeyAlgorithm::K256.jwt_name() {
            return Err(BAD);
        }
        let jose::Compact {
            header,
            claims,
            signing_input,
            signature,
        } = token;
        Ok(UnverifiedEs256k {
            sub: claims.sub.clone(),
            typ: header.typ,
            claims,
            signing_input,
            signature,
        })
    }

    /// Verifies a decoded ES256K token of type `typ` against the account
    /// key `key`, then the claims as [`TokenSigner::verify`] does.
    pub fn verify_es256k(
        &self,
        token: &UnverifiedEs256k,
        key: &PublicKey,
        typ: &str,
        allow_expired: bool,
    ) -> Result<VerifiedToken, TokenError> {
        if key.algorithm() != KeyAlgorithm::K256
            || key
                .verify(token.signing_input.as_bytes(), &token.signature)
                .is_err()
        {
            return Err(TokenError::Invalid("Token could not be verified"));
        }
        if !allow_expired && token.claims.exp <= now_secs() {
            return Err(TokenError::Expired);
        }
        self.check_claims(token.typ.as_deref(), token.claims.clone(), typ)
    }

    /// The cached public key of `did` (ES256K mode).
    pub fn cached_key(&self, did: &str) -> Option<PublicKey> {
        self.key_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(did)
            .cloned()
    }

    /// Caches the public key of `did` (ES256K mode).
    pub fn cache_key(&self, did: &str, key: PublicKey) {
        self.key_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(did.to_owned(), key);
    }

    /// Verifies a token of type `typ` (`at+jwt` or `refresh+jwt`), the way
    /// the reference does: HS256 signature, `exp` (unless `allow_expired`),
    /// the `typ` header when present, `sub` a DID, `aud` (when present)
    /// this service's DID, no `cnf`, and a known scope.
    pub fn verify(
        &self,
        token: &str,
        typ: &str,
        allow_expired: bool,
    ) -> Result<VerifiedToken, TokenError> {
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_exp = !allow_expired;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.required_spec_claims.insert("exp".to_owned());
        let data =
            decode::<Claims>(token, &self.decoding, &validation).map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid("Token could not be verified"),
            })?;
        // The header was checked by `decode`; read its `typ`.
        let header =
            decode_header(token).map_err(|_| TokenError::Invalid("Token could not be verified"))?;
        self.check_claims(header.typ.as_deref(), data.claims, typ)
    }

    /// The checks after the signature: the `typ` header when present,
    /// `sub` a DID, `aud` (when present) this service's DID, no `cnf`, a
    /// known scope.
    fn check_claims(
        &self,
        header_typ: Option<&str>,
        claims: Claims,
        typ: &str,
    ) -> Result<VerifiedToken, TokenError> {
        if let Some(t) = header_typ {
            if t != typ {
                return Err(TokenError::Invalid("Invalid token type"));
            }
        }
        let did = match claims.sub {
            Some(s) if s.starts_with("did:") => s,
            _ => return Err(TokenError::Invalid("Malformed token")),
        };
        match &claims.aud {
            None => {}
            Some(serde_json::Value::String(aud))
                if aud.starts_with("did:") && aud != &self.service_did =>
            {
                return Err(TokenError::Invalid("Token could not be verified"));
            }
            Some(serde_json::Value::String(aud)) if aud.starts_with("did:") => {}
            Some(_) => return Err(TokenError::Invalid("Malformed token")),
        }
        if claims.cnf.is_some() {
            return Err(TokenError::Invalid("Malformed token"));
        }
        let scope = claims
            .scope
            .as_deref()
            .and_then(Scope::parse)
            .ok_or(TokenError::Invalid("Bad token scope"))?;
        Ok(VerifiedToken {
            did,
            scope,
            jti: claims.jti,
            exp: claims.exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const DID: &str = "did:plc:alice";

    fn signer() -> TokenSigner {
        TokenSigner::new("secret", "did:web:pds.test")
    }

    #[test]
    fn access_round_trip() {
        let s = signer();
        let t = s
            .access_token(DID, Scope::AppPass, ACCESS_TOKEN_TTL)
            .unwrap();
        let v = s.verify(&t.jwt, ACCESS_TYP, false).unwrap();
        assert_eq!(v.did, DID);
        assert_eq!(v.scope, Scope::AppPass);
        assert_eq!(v.jti, None);
        let header = decode_header(&t.jwt).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.alg, Algorithm::HS256);
        assert!((v.exp - now_secs() - 7200).abs() <= 2);
        // An access token is not a refresh token.
        assert_eq!(
            s.verify(&t.jwt, REFRESH_TYP, false).unwrap_err(),
            TokenError::Invalid("Invalid token type")
        );
    }

    #[test]
    fn refresh_round_trip() {
        let s = signer();
        let exp = now_secs() + secs(REFRESH_TOKEN_TTL);
        let t = s.refresh_token(DID, "abc", exp).unwrap();
        let v = s.verify(&t.jwt, REFRESH_TYP, false).unwrap();
        assert_eq!(v.scope, Scope::Refresh);
        assert_eq!(v.jti.as_deref(), Some("abc"));
        assert_eq!(v.exp, exp);
        assert_eq!(t.expires_at_ms, exp * 1000);
    }

    #[test]
    fn refusals() {
        let s = signer();
        let expired = s.refresh_token(DID, "x", now_secs() - 10).unwrap();
        assert_eq!(
            s.verify(&expired.jwt, REFRESH_TYP, false).unwrap_err(),
            TokenError::Expired
        );
        assert!(s.verify(&expired.jwt, REFRESH_TYP, true).is_ok());
        let other = TokenSigner::new("other", "did:web:pds.test");
        let t = other
            .access_token(DID, Scope::Access, ACCESS_TOKEN_TTL)
            .unwrap();
        assert_eq!(
            s.verify(&t.jwt, ACCESS_TYP, false).unwrap_err(),
            TokenError::Invalid("Token could not be verified")
        );
        let other_aud = TokenSigner::new("secret", "did:web:elsewhere.test");
        let t = other_aud
            .access_token(DID, Scope::Access, ACCESS_TOKEN_TTL)
            .unwrap();
        assert!(s.verify(&t.jwt, ACCESS_TYP, false).is_err());
        assert!(s.verify("not.a.jwt", ACCESS_TYP, false).is_err());
        assert!(s.verify("", ACCESS_TYP, false).is_err());

        // Claims checked like the reference.
        let sign = |claims: serde_json::Value| {
            let mut h = Header::new(Algorithm::HS256);
            h.typ = Some("at+jwt".into());
            encode(&h, &claims, &EncodingKey::from_secret(b"secret")).unwrap()
        };
        let exp = now_secs() + 60;
        let bad_scope = sign(serde_json::json!({"scope": "com.example", "sub": DID, "exp": exp}));
        assert_eq!(
            s.verify(&bad_scope, ACCESS_TYP, false).unwrap_err(),
            TokenError::Invalid("Bad token scope")
        );
        let bad_sub =
            sign(serde_json::json!({"scope": "com.atproto.access", "sub": "alice", "exp": exp}));
        assert_eq!(
            s.verify(&bad_sub, ACCESS_TYP, false).unwrap_err(),
            TokenError::Invalid("Malformed token")
        );
        let pop = sign(
            serde_json::json!({"scope": "com.atproto.access", "sub": DID, "exp": exp, "cnf": {"jkt": "x"}}),
        );
        assert_eq!(
            s.verify(&pop, ACCESS_TYP, false).unwrap_err(),
            TokenError::Invalid("Malformed token")
        );
        let no_exp = sign(serde_json::json!({"scope": "com.atproto.access", "sub": DID}));
        assert!(s.verify(&no_exp, ACCESS_TYP, false).is_err());
        // No aud (historical tokens) is accepted.
        let no_aud =
            sign(serde_json::json!({"scope": "com.atproto.access", "sub": DID, "exp": exp}));
        assert_eq!(s.verify(&no_aud, ACCESS_TYP, false).unwrap().did, DID);
        // HS512 or other algorithms are refused.
        let mut h = Header::new(Algorithm::HS512);
        h.typ = Some("at+jwt".into());
        let hs512 = encode(
            &h,
            &serde_json::json!({"scope": "com.atproto.access", "sub": DID, "exp": exp}),
            &EncodingKey::from_secret(b"secret"),
        )
        .unwrap();
        assert!(s.verify(&hs512, ACCESS_TYP, false).is_err());
    }

    #[test]
    fn es256k_round_trip_and_refusals() {
        let s = signer();
        let key = PrivateKey::generate(KeyAlgorithm::K256);
        let other = PrivateKey::generate(KeyAlgorithm::K256);
        let t = s
            .access_token_es256k(&key, DID, Scope::AppPass, ACCESS_TOKEN_TTL)
            .unwrap();
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "ES256K", "typ": "at+jwt"})
        );
        let u = TokenSigner::decode_es256k(&t.jwt).unwrap();
        assert_eq!(u.sub.as_deref(), Some(DID));
        let v = s
            .verify_es256k(&u, &key.public_key(), ACCESS_TYP, false)
            .unwrap();
        assert_eq!((v.did.as_str(), v.scope), (DID, Scope::AppPass));
        // Another key, the wrong type, another audience.
        let bad = TokenError::Invalid("Token could not be verified");
        assert_eq!(
            s.verify_es256k(&u, &other.public_key(), ACCESS_TYP, false),
            Err(bad.clone())
        );
        assert_eq!(
            s.verify_es256k(&u, &key.public_key(), REFRESH_TYP, false),
            Err(TokenError::Invalid("Invalid token type"))
        );
        let elsewhere = TokenSigner::new("secret", "did:web:elsewhere.test");
        assert!(elsewhere
            .verify_es256k(&u, &key.public_key(), ACCESS_TYP, false)
            .is_err());
        // A P-256 key neither signs nor verifies session tokens.
        let p256 = PrivateKey::generate(KeyAlgorithm::P256);
        assert!(s
            .access_token_es256k(&p256, DID, Scope::Access, ACCESS_TOKEN_TTL)
            .is_err());
        assert!(s
            .verify_es256k(&u, &p256.public_key(), ACCESS_TYP, false)
            .is_err());
        // No alg confusion: HS256 tokens are not ES256K ones and back.
        let hs = s
            .access_token(DID, Scope::Access, ACCESS_TOKEN_TTL)
            .unwrap();
        assert_eq!(TokenSigner::decode_es256k(&hs.jwt).unwrap_err(), bad);
        assert!(s.verify(&t.jwt, ACCESS_TYP, false).is_err());
        // Expiry and refresh tokens.
        let r = s
            .refresh_token_es256k(&key, DID, "jti1", now_secs() - 1)
            .unwrap();
        let u = TokenSigner::decode_es256k(&r.jwt).unwrap();
        assert_eq!(
            s.verify_es256k(&u, &key.public_key(), REFRESH_TYP, false),
            Err(TokenError::Expired)
        );
        let v = s
            .verify_es256k(&u, &key.public_key(), REFRESH_TYP, true)
            .unwrap();
        assert_eq!(v.jti.as_deref(), Some("jti1"));
        // A tampered payload.
        let mut parts: Vec<String> = t.jwt.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({"scope": "com.atproto.access", "sub": DID, "exp": now_secs() + 60}))
                .unwrap(),
        );
        let u = TokenSigner::decode_es256k(&parts.join(".")).unwrap();
        assert_eq!(
            s.verify_es256k(&u, &key.public_key(), ACCESS_TYP, false),
            Err(bad)
        );
    }

    #[test]
    fn token_ids_are_unique() {
        let a = new_token_id();
        assert_eq!(a.len(), 43);
        assert_ne!(a, new_token_id());
    }
}
