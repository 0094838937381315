//! Authentication policies as types: each implements
//! [`XrpcAuth<AppState>`], and a method's auth type says who may call it.
//!
//! | type | accepts |
//! | --- | --- |
//! | [`AccessFull`] | an access token from the account password (`com.atproto.access`) of an active account |
//! | [`AccessPrivileged`] | also privileged app-password tokens |
//! | [`AccessStandard`] | also app-password tokens |
//! | [`AccessFullDeactivatedOk`], [`AccessStandardDeactivatedOk`] | the same, deactivated accounts too |
//! | [`AccessTakendownOk`] | standard or taken-down session tokens, of accounts in any state |
//! | [`OptionalAccess`] | no credentials, or a valid standard access token |
//! | [`RefreshAuth`] | a live refresh token |
//! | [`RefreshAuthExpiredOk`] | a refresh token, expired or not (logout) |
//! | [`AdminAuth`] | HTTP basic `admin:PDS_ADMIN_PASSWORD` |
//! | [`AccessFullTakendownOk`] | full-scope or taken-down sessions, accounts in any state |
//! | [`OptionalServiceAuth`] | no credentials, or an inter-service JWT for this service and method |
//!
//! Failures answer as the reference: no credentials → 401
//! `AuthMissing`; a malformed header, unknown scheme, bad signature, wrong
//! type or scope → 400 `InvalidToken`; a token past `exp` → 400
//! `ExpiredToken`; a taken-down account → 401 `AccountTakedown`; a
//! deactivated one → 401 `AccountDeactivated`; an account that no longer
//! exists → 403 `AccountNotFound`; bad admin credentials → 401
//! `AuthenticationRequired`.

use std::marker::PhantomData;

use atproto_types::xrpc::http::request::Parts;
use atproto_types::xrpc::http::StatusCode;
use atproto_types::xrpc::{XrpcAuth, XrpcError};
use base64::Engine;
use pds_store::{Account, AccountStatus};

use crate::jwt::{
    Scope, SessionTokenAlg, TokenError, TokenSigner, VerifiedToken, ACCESS_TYP, REFRESH_TYP,
};
use crate::state::AppState;

/// The authorization schemes the server recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Basic,
    Bearer,
    DPoP,
}

/// The `Authorization` header: `None` when absent; `Err` when malformed
/// or of an unknown scheme (400 `InvalidToken`, as the reference).
fn parse_authorization(parts: &Parts) -> Result<Option<(Scheme, String)>, XrpcError> {
    let Some(value) = parts.headers.get("authorization") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        XrpcError::new(
            StatusCode::BAD_REQUEST,
            "InvalidToken",
            Some("Malformed authorization header".into()),
        )
    })?;
    if text.is_empty() {
        return Ok(None);
    }
    let mut pieces = text.split(' ');
    let (Some(kind), Some(token), None) = (pieces.next(), pieces.next(), pieces.next()) else {
        return Err(invalid_token("Malformed authorization header"));
    };
    let scheme = match kind.to_ascii_uppercase().as_str() {
        "BASIC" => Scheme::Basic,
        "BEARER" => Scheme::Bearer,
        "DPOP" => Scheme::DPoP,
        _ => {
            return Err(invalid_token(&format!(
                "Unsupported authorization type: {kind}"
            )))
        }
    };
    Ok(Some((scheme, token.to_owned())))
}

fn invalid_token(message: &str) -> XrpcError {
    XrpcError::new(
        StatusCode::BAD_REQUEST,
        "InvalidToken",
        Some(message.to_owned()),
    )
}

fn auth_missing() -> XrpcError {
    XrpcError::new(
        StatusCode::UNAUTHORIZED,
        "AuthMissing",
        Some("Authentication Required".into()),
    )
}

fn token_error(e: TokenError) -> XrpcError {
    match e {
        TokenError::Expired => XrpcError::expired_token("Token has expired"),
        TokenError::Invalid(m) => invalid_token(m),
    }
}

fn internal(e: pds_store::StoreError) -> XrpcError {
    tracing::error!(error = %e, "account lookup failed during authentication");
    XrpcError::internal(e.to_string())
}

/// The access-token rules of one policy.
pub trait AccessPolicy: Send + Sync + 'static {
    /// Scopes accepted.
    const SCOPES: &'static [Scope];
    /// Whether deactivated accounts pass.
    const ALLOW_DEACTIVATED: bool;
    /// Whether taken-down accounts pass.
    const ALLOW_TAKENDOWN: bool;
}

const FULL: &[Scope] = &[Scope::Access];
const PRIVILEGED: &[Scope] = &[Scope::Access, Scope::AppPassPrivileged];
const STANDARD: &[Scope] = &[Scope::Access, Scope::AppPassPrivileged, Scope::AppPass];
const TAKENDOWN_OK: &[Scope] = &[
    Scope::Access,
    Scope::AppPassPrivileged,
    Scope::AppPass,
    Scope::Takendown,
];

const FULL_TAKENDOWN_OK: &[Scope] = &[Scope::Access, Scope::Takendown];

macro_rules! policy {
    ($(#[$doc:meta])* $name:ident, $scopes:expr, $deactivated:expr, $takendown:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub enum $name {}
        impl AccessPolicy for $name {
            const SCOPES: &'static [Scope] = $scopes;
            const ALLOW_DEACTIVATED: bool = $deactivated;
            const ALLOW_TAKENDOWN: bool = $takendown;
        }
    };
}

policy!(
    /// Account-password sessions of active accounts.
    Full, FULL, false, false
);
policy!(
    /// Account-password or privileged app-password sessions of active accounts.
    Privileged, PRIVILEGED, false, false
);
policy!(
    /// Any session of an active account.
    Standard, STANDARD, false, false
);
policy!(
    /// Account-password sessions; deactivated accounts too.
    FullDeactivatedOk, FULL, true, false
);
policy!(
    /// Any session; deactivated accounts too.
    StandardDeactivatedOk, STANDARD, true, false
);
policy!(
    /// Any session including taken-down ones; any account state.
    TakendownOk, TAKENDOWN_OK, true, true
);
policy!(
    /// Account-password or taken-down sessions; any account state (the
    /// PLC operation signature flow).
    FullTakendownOk, FULL_TAKENDOWN_OK, true, true
);

/// A verified access token of an account, under policy `P`.
pub struct Access<P: AccessPolicy> {
    /// The account's DID (`sub`).
    pub did: String,
    /// The token's scope.
    pub scope: Scope,
    /// The account, as read while authenticating.
    pub account: Account,
    _policy: PhantomData<fn() -> P>,
}

impl<P: AccessPolicy> std::fmt::Debug for Access<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("did", &self.did)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<P: AccessPolicy> Access<P> {
    /// Whether the session may do privileged things (full or privileged
    /// app password).
    pub fn is_privileged(&self) -> bool {
        matches!(self.scope, Scope::Access | Scope::AppPassPrivileged)
    }
}

/// Full-scope access of an active account.
pub type AccessFull = Access<Full>;
/// Full or privileged app-password access of an active account.
pub type AccessPrivileged = Access<Privileged>;
/// Any access token of an active account (app passwords included).
pub type AccessStandard = Access<Standard>;
/// Full-scope access; deactivated accounts allowed (e.g. activateAccount).
pub type AccessFullDeactivatedOk = Access<FullDeactivatedOk>;
/// Any access token; deactivated accounts allowed (e.g. checkAccountStatus, getSession).
pub type AccessStandardDeactivatedOk = Access<StandardDeactivatedOk>;
/// Any access token including taken-down sessions; any account state.
pub type AccessTakendownOk = Access<TakendownOk>;
/// Full-scope or taken-down sessions; any account state.
pub type AccessFullTakendownOk = Access<FullTakendownOk>;

/// Verifies a session token of type `typ` in the server's mode: HS256
/// with the JWT secret, or ES256K with the key of the account the token
/// names (cached; looked up again once when the cached key does not
/// verify, as after a key change). Each mode refuses the other's `alg`.
async fn verify_token(
    state: &AppState,
    token: &str,
    typ: &str,
    allow_expired: bool,
) -> Result<VerifiedToken, XrpcError> {
    match state.tokens.alg() {
        SessionTokenAlg::Hs256 => state
            .tokens
            .verify(token, typ, allow_expired)
            .map_err(token_error),
        SessionTokenAlg::Es256k => {
            let unverified = TokenSigner::decode_es256k(token).map_err(token_error)?;
            let Some(did) = unverified.sub.clone().filter(|s| s.starts_with("did:")) else {
                return Err(invalid_token("Malformed token"));
            };
            const UNVERIFIED: TokenError = TokenError::Invalid("Token could not be verified");
            let cached = state.tokens.cached_key(&did);
            if let Some(key) = &cached {
                let result = state
                    .tokens
                    .verify_es256k(&unverified, key, typ, allow_expired);
                if result != Err(UNVERIFIED) {
                    return result.map_err(token_error);
                }
            }
            let key = crate::session::account_public_key(state, &did)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "account key lookup failed during authentication");
                    XrpcError::internal(e.to_string())
                })?;
            match key {
                // The cached key was current: the signature is bad.
                Some(key) if cached.as_ref() != Some(&key) => state
                    .tokens
                    .verify_es256k(&unverified, &key, typ, allow_expired)
                    .map_err(token_error),
                _ => Err(token_error(UNVERIFIED)),
            }
        }
    }
}

/// Verifies the bearer access token of a request against `scopes`.
async fn verify_access(
    parts: &Parts,
    state: &AppState,
    scopes: &[Scope],
) -> Result<VerifiedToken, XrpcError> {
    let token = match parse_authorization(parts)? {
        None => return Err(auth_missing()),
        Some((Scheme::Bearer, token)) => token,
        Some((Scheme::DPoP, _)) => {
            return Err(invalid_token(
                "DPoP-bound (OAuth) access tokens are not accepted by this server",
            ))
        }
        Some((Scheme::Basic, _)) => return Err(invalid_token("Unexpected authorization type")),
    };
    let verified = verify_token(state, &token, ACCESS_TYP, false).await?;
    if !scopes.contains(&verified.scope) {
        return Err(invalid_token("Bad token scope"));
    }
    Ok(verified)
}

/// Reads the token's account and applies the status rules.
async fn account_for(
    state: &AppState,
    did: &str,
    allow_deactivated: bool,
    allow_takendown: bool,
) -> Result<Account, XrpcError> {
    let account = state.store.accounts().get(did).await.map_err(internal)?;
    let Some(account) = account.filter(|a| a.status != AccountStatus::Deleted) else {
        return Err(XrpcError::new(
            StatusCode::FORBIDDEN,
            "AccountNotFound",
            Some("Account not found".into()),
        ));
    };
    match account.status {
        AccountStatus::Takendown if !allow_takendown => Err(XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AccountTakedown",
            Some("Account has been taken down".into()),
        )),
        AccountStatus::Deactivated if !allow_deactivated => Err(XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AccountDeactivated",
            Some("Account is deactivated".into()),
        )),
        _ => Ok(account),
    }
}

impl<P: AccessPolicy> XrpcAuth<AppState> for Access<P> {
    async fn authenticate(
        parts: &mut Parts,
        state: &AppState,
        _nsid: &'static str,
    ) -> Result<Self, XrpcError> {
        let verified = verify_access(parts, state, P::SCOPES).await?;
        let account = account_for(
            state,
            &verified.did,
            P::ALLOW_DEACTIVATED,
            P::ALLOW_TAKENDOWN,
        )
        .await?;
        Ok(Access {
            did: verified.did,
            scope: verified.scope,
            account,
            _policy: PhantomData,
        })
    }
}

/// No credentials, or a valid standard access token (its account's state
/// is not checked: the handler decides what a viewer may see).
#[derive(Debug, Clone)]
pub struct OptionalAccess(pub Option<VerifiedToken>);

impl XrpcAuth<AppState> for OptionalAccess {
    async fn authenticate(
        parts: &mut Parts,
        state: &AppState,
        _nsid: &'static str,
    ) -> Result<Self, XrpcError> {
        if parse_authorization(parts)?.is_none() {
            return Ok(OptionalAccess(None));
        }
        verify_access(parts, state, STANDARD)
            .await
            .map(|v| OptionalAccess(Some(v)))
    }
}

/// A verified refresh token.
#[derive(Debug, Clone)]
pub struct RefreshCredentials {
    /// The account (`sub`).
    pub did: String,
    /// The token id (`jti`).
    pub token_id: String,
}

async fn verify_refresh(
    parts: &Parts,
    state: &AppState,
    allow_expired: bool,
) -> Result<RefreshCredentials, XrpcError> {
    let token = match parse_authorization(parts)? {
        None => return Err(auth_missing()),
        Some((Scheme::Bearer, token)) => token,
        Some(_) => return Err(invalid_token("Unexpected authorization type")),
    };
    let verified = verify_token(state, &token, REFRESH_TYP, allow_expired).await?;
    if verified.scope != Scope::Refresh {
        return Err(invalid_token("Bad token scope"));
    }
    let Some(token_id) = verified.jti else {
        return Err(XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "MissingTokenId",
            Some("Unexpected missing refresh token id".into()),
        ));
    };
    Ok(RefreshCredentials {
        did: verified.did,
        token_id,
    })
}

/// A live refresh token (refreshSession).
#[derive(Debug, Clone)]
pub struct RefreshAuth(pub RefreshCredentials);

impl XrpcAuth<AppState> for RefreshAuth {
    async fn authenticate(
        parts: &mut Parts,
        state: &AppState,
        _nsid: &'static str,
    ) -> Result<Self, XrpcError> {
        verify_refresh(parts, state, false).await.map(RefreshAuth)
    }
}

/// A refresh token, expired or not (deleteSession: logging out with an
/// expired token still revokes it).
#[derive(Debug, Clone)]
pub struct RefreshAuthExpiredOk(pub RefreshCredentials);

impl XrpcAuth<AppState> for RefreshAuthExpiredOk {
    async fn authenticate(
        parts: &mut Parts,
        state: &AppState,
        _nsid: &'static str,
    ) -> Result<Self, XrpcError> {
        verify_refresh(parts, state, true)
            .await
            .map(RefreshAuthExpiredOk)
    }
}

/// HTTP basic auth as `admin` with `PDS_ADMIN_PASSWORD`.
#[derive(Debug, Clone, Copy)]
pub struct AdminAuth;

/// Compares in time independent of where the inputs first differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    // Hash both to fixed length so the comparison time does not depend on
    // the length of the guess either.
    let (x, y) = (Sha256::digest(a), Sha256::digest(b));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

impl XrpcAuth<AppState> for AdminAuth {
    async fn authenticate(
        parts: &mut Parts,
        state: &AppState,
        _nsid: &'static str,
    ) -> Result<Self, XrpcError> {
        let denied = || XrpcError::authentication_required("Authentication Required");
        let Some((Scheme::Basic, b64)) = parse_authorization(parts)? else {
            return Err(denied());
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|_| denied())?;
        let text = String::from_utf8(decoded).map_err(|_| denied())?;
        let Some((user, password)) = text.split_once(':') else {
            return Err(denied());
        };
        let ok_password = constant_time_eq(password.as_bytes(), state.admin_password.as_bytes());
        if user == "admin" && ok_password {
            Ok(AdminAuth)
        } else {
            Err(denied())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_types::xrpc::http::Request;

    fn parts(auth: Option<&str>) -> Parts {
        let mut b = Request::builder().uri("/xrpc/x");
        if let Some(a) = auth {
            b = b.header("authorization", a);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn authorization_header_parsing() {
        assert!(parse_authorization(&parts(None)).unwrap().is_none());
        assert_eq!(
            parse_authorization(&parts(Some("Bearer abc"))).unwrap(),
            Some((Scheme::Bearer, "abc".to_owned()))
        );
        assert_eq!(
            parse_authorization(&parts(Some("bearer abc"))).unwrap(),
            Some((Scheme::Bearer, "abc".to_owned()))
        );
        assert_eq!(
            parse_authorization(&parts(Some("Basic eA=="))).unwrap(),
            Some((Scheme::Basic, "eA==".to_owned()))
        );
        for bad in ["Bearer", "Bearer a b", "Token abc"] {
            let e = parse_authorization(&parts(Some(bad))).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(e.error_name(), "InvalidToken", "{bad}");
        }
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}

/// No credentials, or a bearer inter-service JWT (see
/// [`crate::service_auth`]) whose issuer's DID document holds the key
/// that signed it, addressed to this service (`aud`) for the method being
/// called (`lxm`): the reference's `userServiceAuthOptional`. Refusals
/// are 401 with the reference's names (`BadJwt`, `BadJwtSignature`,
/// `JwtExpired`, `BadJwtAudience`, `BadJwtLexiconMethod`).
#[derive(Debug, Clone)]
pub struct OptionalServiceAuth(pub Option<crate::service_auth::Claims>);

fn service_auth_error(name: &'static str, message: String) -> XrpcError {
    XrpcError::new(StatusCode::UNAUTHORIZED, name, Some(message))
}

impl XrpcAuth<AppState> for OptionalServiceAuth {
    async fn authenticate(
        parts: &mut Parts,
        state: &AppState,
        nsid: &'static str,
    ) -> Result<Self, XrpcError> {
        use crate::service_auth::{decode, Expect};
        let token = match parse_authorization(parts)? {
            Some((Scheme::Bearer, token)) => token,
            _ => return Ok(OptionalServiceAuth(None)),
        };
        let unverified =
            decode(&token).map_err(|e| service_auth_error(e.xrpc_name(), e.to_string()))?;
        let iss = unverified.claims.issuer_did().to_owned();
        let aud = [state.config.service_did.as_str()];
        let expect = Expect {
            aud: Some(&aud),
            lxm: Some(nsid),
        };
        // The issuer's key, refreshed once when the cached one does not
        // verify (the key may have been rotated).
        let mut last_err = None;
        for force_refresh in [false, true] {
            let data = match state
                .identity
                .resolve_atproto_data(&iss, force_refresh)
                .await
            {
                Ok(Some(d)) => d,
                Ok(None) => {
                    return Err(service_auth_error(
                        "AuthenticationRequired",
                        "could not resolve iss did".into(),
                    ))
                }
                Err(e) => {
                    tracing::info!(iss, error = %e, "service auth issuer unresolvable");
                    return Err(service_auth_error(
                        "AuthenticationRequired",
                        "missing or bad key in did doc".into(),
                    ));
                }
            };
            let key = atproto_types::crypto::PublicKey::from_did_key(&data.signing_key).map_err(
                |_| {
                    service_auth_error(
                        "AuthenticationRequired",
                        "missing or bad key in did doc".into(),
                    )
                },
            )?;
            match unverified.clone().verify(&key, &expect) {
                Ok(claims) => return Ok(OptionalServiceAuth(Some(claims))),
                Err(e @ crate::service_auth::ServiceAuthError::BadSignature) => last_err = Some(e),
                Err(e) => return Err(service_auth_error(e.xrpc_name(), e.to_string())),
            }
        }
        let e = last_err.unwrap_or(crate::service_auth::ServiceAuthError::BadSignature);
        Err(service_auth_error(e.xrpc_name(), e.to_string()))
    }
}
