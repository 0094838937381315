//! Sessions: password login, token issue, refresh-token rotation with a
//! grace period and reuse detection.

use pds_store::password::{hash_password, verify_password, KdfParams};
use pds_store::{now_ms, Account, AccountStatus, RefreshToken, RotateOutcome};

use crate::error::ApiError;
use atproto_types::crypto::PublicKey;

use crate::jwt::{new_token_id, Scope, SessionTokenAlg, ACCESS_TOKEN_TTL, REFRESH_TOKEN_TTL};
use crate::state::AppState;

/// A new session's tokens.
#[derive(Debug, Clone)]
pub struct SessionTokens {
    pub access_jwt: String,
    pub refresh_jwt: String,
}

/// A successful password check.
#[derive(Debug, Clone)]
pub struct Login {
    pub account: Account,
    /// Set when an app password matched (its name and privileged flag).
    pub app_password: Option<(String, bool)>,
}

/// Why a login failed.
#[derive(Debug)]
pub enum LoginError {
    /// Unknown identifier or wrong password (the same answer for both).
    BadCredentials,
    /// The server failed.
    Internal(ApiError),
}

impl From<ApiError> for LoginError {
    fn from(e: ApiError) -> Self {
        LoginError::Internal(e)
    }
}

/// Hashes a new password (Argon2id) off the async threads.
pub async fn hash(password: &str) -> Result<String, ApiError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password, KdfParams::default()))
        .await?
        .map_err(ApiError::from)
}

/// Checks `password` against a stored hash, off the async threads.
pub async fn verify(password: &str, phc: &str) -> Result<bool, ApiError> {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await?
        .map_err(ApiError::from)
}

/// Checks `password` for the account `identifier` names (an email when it
/// contains `@`, a DID when it starts with `did:`, else a handle). Unknown
/// accounts still cost one Argon2 verification, so both failures take
/// about the same time. A taken-down account cannot log in with an app
/// password.
pub async fn login(
    state: &AppState,
    identifier: &str,
    password: &str,
) -> Result<Login, LoginError> {
    let identifier = identifier.trim().to_lowercase();
    let accounts = state.store.accounts();
    let found = if identifier.contains('@') {
        accounts.get_by_email(&identifier).await
    } else if identifier.starts_with("did:") {
        accounts.get(&identifier).await
    } else {
        accounts.get_by_handle(&identifier).await
    }
    .map_err(ApiError::from)?
    .filter(|a| a.status != AccountStatus::Deleted);

    let Some(account) = found else {
        let _ = verify(password, &state.dummy_password_hash).await?;
        return Err(LoginError::BadCredentials);
    };
    let account_ok = match &account.password_hash {
        Some(phc) => verify(password, phc).await?,
        None => {
            let _ = verify(password, &state.dummy_password_hash).await?;
            false
        }
    };
    if account_ok {
        return Ok(Login {
            account,
            app_password: None,
        });
    }
    if account.status == AccountStatus::Takendown {
        return Err(LoginError::BadCredentials);
    }
    let app_passwords = accounts
        .list_app_passwords(&account.did)
        .await
        .map_err(ApiError::from)?;
    for ap in app_passwords {
        if verify(password, &ap.password_hash).await? {
            return Ok(Login {
                account,
                app_password: Some((ap.name, ap.privileged)),
            });
        }
    }
    Err(LoginError::BadCredentials)
}

/// The access scope of a session made with (or without) an app password.
pub fn scope_for(app_password: Option<&(String, bool)>) -> Scope {
    match app_password {
        None => Scope::Access,
        Some((_, true)) => Scope::AppPassPrivileged,
        Some((_, false)) => Scope::AppPass,
    }
}

/// Issues a new session: an access token with `scope` and a stored
/// refresh token.
pub async fn create_session(
    state: &AppState,
    did: &str,
    scope: Scope,
    app_password_name: Option<String>,
) -> Result<SessionTokens, ApiError> {
    let now = now_ms();
    let ttl_ms = i64::try_from(REFRESH_TOKEN_TTL.as_millis()).unwrap_or(i64::MAX);
    let record = RefreshToken {
        id: new_token_id(),
        did: did.to_owned(),
        app_password_name,
        created_at: now,
        expires_at: now.saturating_add(ttl_ms),
        next_id: None,
    };
    state.store.sessions().create(&record).await?;
    tokens_for(state, did, scope, &record).await
}

/// The tokens of a session, signed as `PDS_SESSION_TOKEN_ALG` says: with
/// `PDS_JWT_SECRET` (HS256), or with the account's signing key (ES256K).
async fn tokens_for(
    state: &AppState,
    did: &str,
    scope: Scope,
    record: &RefreshToken,
) -> Result<SessionTokens, ApiError> {
    let exp = record.expires_at / 1000;
    let (access, refresh) = match state.tokens.alg() {
        SessionTokenAlg::Hs256 => (
            state.tokens.access_token(did, scope, ACCESS_TOKEN_TTL)?,
            state.tokens.refresh_token(did, &record.id, exp)?,
        ),
        SessionTokenAlg::Es256k => {
            let key = crate::identity::account_signing_key(state, did).await?;
            state.tokens.cache_key(did, key.public_key());
            (
                state
                    .tokens
                    .access_token_es256k(&key, did, scope, ACCESS_TOKEN_TTL)?,
                state
                    .tokens
                    .refresh_token_es256k(&key, did, &record.id, exp)?,
            )
        }
    };
    Ok(SessionTokens {
        access_jwt: access.jwt,
        refresh_jwt: refresh.jwt,
    })
}

/// The outcome of [`rotate`].
#[derive(Debug)]
pub enum Rotation {
    /// New (or, within the grace period, re-issued) tokens.
    Tokens(SessionTokens),
    /// The token is unknown, expired or revoked.
    Revoked,
}

/// Rotates refresh token `token_id` of `did`: the old token stays usable
/// for the grace period (and yields the same successor); a use after it
/// revokes the whole chain of tokens rotated from it (a stolen token was
/// probably used).
pub async fn rotate(state: &AppState, did: &str, token_id: &str) -> Result<Rotation, ApiError> {
    let sessions = state.store.sessions();
    let now = now_ms();
    let ttl_ms = i64::try_from(REFRESH_TOKEN_TTL.as_millis()).unwrap_or(i64::MAX);
    let grace_ms = i64::try_from(state.config.refresh_grace_period.as_millis()).unwrap_or(i64::MAX);
    let next = RefreshToken {
        id: new_token_id(),
        did: did.to_owned(),
        app_password_name: None,
        created_at: now,
        expires_at: now.saturating_add(ttl_ms),
        next_id: None,
    };
    let successor = match sessions.rotate(token_id, &next, now, grace_ms).await? {
        RotateOutcome::Rotated(t) | RotateOutcome::AlreadyRotated(t) => t,
        RotateOutcome::Invalid => {
            if let Some(old) = sessions.get(token_id).await? {
                if old.did == did && old.next_id.is_some() {
                    tracing::warn!(
                        did,
                        "refresh token reused after its grace period; revoking the session"
                    );
                    sessions.delete(token_id).await?;
                }
            }
            return Ok(Rotation::Revoked);
        }
    };
    let app_password = match &successor.app_password_name {
        None => None,
        Some(name) => {
            let privileged = state
                .store
                .accounts()
                .list_app_passwords(did)
                .await?
                .into_iter()
                .find(|ap| &ap.name == name)
                .map(|ap| ap.privileged);
            match privileged {
                Some(p) => Some((name.clone(), p)),
                // The app password was revoked since: so is the session.
                None => {
                    sessions.delete(&successor.id).await?;
                    return Ok(Rotation::Revoked);
                }
            }
        }
    };
    let scope = scope_for(app_password.as_ref());
    Ok(Rotation::Tokens(
        tokens_for(state, did, scope, &successor).await?,
    ))
}

/// The public signing key of account `did` (ES256K session tokens are
/// verified with it), read from the store and cached; `None` when the
/// account has no key (it does not exist).
pub async fn account_public_key(
    state: &AppState,
    did: &str,
) -> Result<Option<PublicKey>, ApiError> {
    let Some(sealed) = state.store.accounts().signing_key(did).await? else {
        return Ok(None);
    };
    let key = state.key_cipher.open(did, &sealed)?.public_key();
    state.tokens.cache_key(did, key.clone());
    Ok(Some(key))
}
