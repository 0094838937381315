//! Emailed single-use tokens and the flows built on them:
//! `requestEmailConfirmation`/`confirmEmail`,
//! `requestEmailUpdate`/`updateEmail`,
//! `requestPasswordReset`/`resetPassword`,
//! `requestAccountDelete`/`deleteAccount`.
//!
//! A token is 10 random base32 characters shown as `XXXXX-XXXXX` (the
//! reference's form), valid for 15 minutes and once; only its SHA-256 is
//! stored, one per account and purpose (a new request replaces the old
//! token). Mail goes through the persistent notification queue
//! ([`pds_notify::Notifier`]); without an email transport configured the
//! request still succeeds and the server logs that nothing was sent.

use atproto_types::lexicons::com::atproto::server::{
    confirm_email, delete_account, request_email_update, reset_password, update_email,
};
use atproto_types::xrpc::XrpcError;
use pds_notify::{Channel, Message};
use pds_repo::events::account_event;
use pds_store::{now_ms, Account, AccountStatus, EmailToken, StoreError, TokenPurpose};
use sha2::{Digest, Sha256};

use super::account::{is_valid_email, PASSWORD_MAX_LENGTH};
use crate::error::ApiError;
use crate::session;
use crate::state::AppState;

/// How long an emailed token stays valid.
pub const TOKEN_TTL_MS: i64 = 15 * 60 * 1000;

/// The stored form of a token as a user may type it (surrounding space and
/// case do not matter).
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.trim().to_uppercase().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a presented token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// No such token (wrong, used, or replaced by a newer request).
    Invalid,
    /// Older than [`TOKEN_TTL_MS`].
    Expired,
}

impl TokenRejection {
    /// As the method's XRPC error (`InvalidToken` / `ExpiredToken`, 400).
    fn into_error<E>(self) -> XrpcError<E> {
        match self {
            TokenRejection::Invalid => XrpcError::invalid_token("Token is invalid"),
            TokenRejection::Expired => XrpcError::expired_token("Token is expired"),
        }
    }
}

/// Makes and stores a new token of `did` for `purpose` (replacing any
/// previous one); returns it.
pub async fn issue_token(
    state: &AppState,
    purpose: TokenPurpose,
    did: &str,
) -> Result<String, ApiError> {
    let token = crate::random::token();
    state
        .store
        .accounts()
        .put_token(purpose, did, &token_hash(&token))
        .await?;
    Ok(token)
}

/// Judges a presented token (by its hash) against the stored one at time
/// `now` (ms).
pub fn judge(
    stored: Option<&EmailToken>,
    presented_hash: &str,
    now: i64,
) -> Result<(), TokenRejection> {
    match stored {
        Some(t) if t.token_hash == presented_hash => {
            if t.requested_at < now.saturating_sub(TOKEN_TTL_MS) {
                Err(TokenRejection::Expired)
            } else {
                Ok(())
            }
        }
        _ => Err(TokenRejection::Invalid),
    }
}

/// Checks `did`'s token for `purpose` without using it up.
pub async fn check_token(
    state: &AppState,
    purpose: TokenPurpose,
    did: &str,
    token: &str,
) -> Result<Result<(), TokenRejection>, ApiError> {
    let stored = state.store.accounts().get_token(purpose, did).await?;
    Ok(judge(stored.as_ref(), &token_hash(token), now_ms()))
}

/// Checks and uses up `did`'s token for `purpose` (atomically: of two
/// concurrent uses one wins).
pub async fn consume_token(
    state: &AppState,
    purpose: TokenPurpose,
    did: &str,
    token: &str,
) -> Result<Result<(), TokenRejection>, ApiError> {
    if let Err(r) = check_token(state, purpose, did, token).await? {
        return Ok(Err(r));
    }
    let consumed = state
        .store
        .accounts()
        .consume_token(
            purpose,
            did,
            &token_hash(token),
            now_ms().saturating_sub(TOKEN_TTL_MS),
        )
        .await?;
    Ok(if consumed {
        Ok(())
    } else {
        Err(TokenRejection::Invalid)
    })
}

/// Queues `message` for `to`, or logs that no transport is configured.
pub async fn send_mail(state: &AppState, to: &str, message: &Message) -> Result<(), ApiError> {
    if state.config.email.is_none() {
        tracing::info!(
            kind = message.kind(),
            "no email transport configured (PDS_EMAIL_SMTP_URL); email not sent"
        );
        return Ok(());
    }
    state
        .notifier
        .enqueue(Channel::Email, to, message)
        .await
        .map_err(|e| ApiError::Internal(format!("queueing email: {e}")))?;
    Ok(())
}

fn email_of<E>(account: &Account) -> Result<&str, XrpcError<E>> {
    account
        .email
        .as_deref()
        .ok_or_else(|| XrpcError::invalid_request("account does not have an email address"))
}

/// `com.atproto.server.requestEmailConfirmation`.
pub async fn request_confirmation<E>(
    state: &AppState,
    account: &Account,
) -> Result<(), XrpcError<E>> {
    let email = email_of(account)?;
    let token = issue_token(state, TokenPurpose::ConfirmEmail, &account.did).await?;
    send_mail(state, email, &Message::ConfirmEmail { token }).await?;
    Ok(())
}

/// `com.atproto.server.confirmEmail`.
pub async fn confirm(
    state: &AppState,
    account: &Account,
    input: confirm_email::Input,
) -> Result<(), XrpcError<confirm_email::Error>> {
    let email = account.email.as_deref().unwrap_or_default();
    if email.is_empty() || email != input.email.trim().to_lowercase() {
        return Err(
            XrpcError::from(confirm_email::Error::InvalidEmail).with_message("invalid email")
        );
    }
    if let Err(r) = consume_token(
        state,
        TokenPurpose::ConfirmEmail,
        &account.did,
        &input.token,
    )
    .await?
    {
        return Err(r.into_error());
    }
    state
        .store
        .accounts()
        .confirm_email(&account.did, now_ms())
        .await
        .map_err(ApiError::from)?;
    Ok(())
}

/// `com.atproto.server.requestEmailUpdate`: a token is needed (and mailed
/// to the current address) only when the current address is confirmed.
pub async fn request_update(
    state: &AppState,
    account: &Account,
) -> Result<request_email_update::Output, XrpcError<request_email_update::Error>> {
    let email = email_of(account)?;
    let token_required = account.email_confirmed_at.is_some();
    if token_required {
        let token = issue_token(state, TokenPurpose::UpdateEmail, &account.did).await?;
        send_mail(state, email, &Message::UpdateEmail { token }).await?;
    }
    Ok(request_email_update::Output {
        token_required,
        extra_data: Default::default(),
    })
}

/// `com.atproto.server.updateEmail`: the new address is unconfirmed.
pub async fn update(
    state: &AppState,
    account: &Account,
    input: update_email::Input,
) -> Result<(), XrpcError<update_email::Error>> {
    let email = input.email.trim().to_lowercase();
    if !is_valid_email(&email) {
        return Err(XrpcError::invalid_request(
            "This email address is not supported, please use a different email.",
        ));
    }
    let accounts = state.store.accounts();
    let taken = accounts
        .get_by_email(&email)
        .await
        .map_err(ApiError::from)?
        .is_some_and(|a| a.did != account.did && a.status != AccountStatus::Deleted);
    if taken {
        return Err(XrpcError::invalid_request(
            "This email address is already in use, please use a different email.",
        ));
    }
    if account.email_confirmed_at.is_some() {
        let Some(token) = input.token.as_deref().filter(|t| !t.trim().is_empty()) else {
            return Err(XrpcError::from(update_email::Error::TokenRequired)
                .with_message("confirmation token required"));
        };
        if let Err(r) = consume_token(state, TokenPurpose::UpdateEmail, &account.did, token).await?
        {
            return Err(r.into_error());
        }
    }
    if account.email.as_deref() == Some(email.as_str()) {
        return Ok(());
    }
    match accounts.update_email(&account.did, Some(&email)).await {
        Ok(()) => Ok(()),
        Err(StoreError::EmailTaken) => Err(XrpcError::invalid_request(
            "This email address is already in use, please use a different email.",
        )),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// `com.atproto.server.requestPasswordReset`: answers the same whether or
/// not the address belongs to an account.
pub async fn request_password_reset<E>(state: &AppState, email: &str) -> Result<(), XrpcError<E>> {
    let email = email.trim().to_lowercase();
    let account = state
        .store
        .accounts()
        .get_by_email(&email)
        .await
        .map_err(ApiError::from)?
        .filter(|a| a.status != AccountStatus::Deleted);
    let Some(account) = account else {
        return Ok(());
    };
    let Some(to) = account.email.as_deref() else {
        return Ok(());
    };
    let token = issue_token(state, TokenPurpose::ResetPassword, &account.did).await?;
    let identifier = account.handle.clone().unwrap_or_else(|| to.to_owned());
    send_mail(state, to, &Message::ResetPassword { identifier, token }).await?;
    Ok(())
}

/// `com.atproto.server.resetPassword`: sets the password and ends every
/// session of the account.
pub async fn reset_password(
    state: &AppState,
    input: reset_password::Input,
) -> Result<(), XrpcError<reset_password::Error>> {
    if input.password.chars().count() > PASSWORD_MAX_LENGTH {
        return Err(XrpcError::invalid_request("Invalid password length."));
    }
    let accounts = state.store.accounts();
    let found = accounts
        .find_token(TokenPurpose::ResetPassword, &token_hash(&input.token))
        .await
        .map_err(ApiError::from)?;
    let Some(found) = found else {
        return Err(TokenRejection::Invalid.into_error());
    };
    if let Err(r) =
        consume_token(state, TokenPurpose::ResetPassword, &found.did, &input.token).await?
    {
        return Err(r.into_error());
    }
    let hash = session::hash(&input.password).await?;
    accounts
        .update_password(&found.did, &hash, true)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(did = %found.did, "password reset; sessions revoked");
    Ok(())
}

/// `com.atproto.server.requestAccountDelete`.
pub async fn request_account_delete<E>(
    state: &AppState,
    account: &Account,
) -> Result<(), XrpcError<E>> {
    let email = email_of(account)?;
    let token = issue_token(state, TokenPurpose::DeleteAccount, &account.did).await?;
    send_mail(state, email, &Message::DeleteAccount { token }).await?;
    Ok(())
}

/// `com.atproto.server.deleteAccount`: with the account password (not an
/// app password) and the emailed token, deletes the account's repository,
/// records, blob references and blobs, credentials and sessions, and
/// sequences `#account` (`active: false`, `status: deleted`); earlier
/// events of the account are invalidated. The DID itself is not touched
/// (the reference does not tombstone it either).
pub async fn delete_account(
    state: &AppState,
    input: delete_account::Input,
) -> Result<(), XrpcError<delete_account::Error>> {
    let did = input.did.as_str();
    let accounts = state.store.accounts();
    let account = accounts
        .get(did)
        .await
        .map_err(ApiError::from)?
        .filter(|a| a.status != AccountStatus::Deleted)
        .ok_or_else(|| XrpcError::invalid_request("account not found"))?;
    let password_ok = match &account.password_hash {
        Some(phc) => session::verify(&input.password, phc).await?,
        None => {
            let _ = session::verify(&input.password, &state.dummy_password_hash).await?;
            false
        }
    };
    if !password_ok {
        return Err(XrpcError::authentication_required(
            "Invalid did or password",
        ));
    }
    if let Err(r) = consume_token(state, TokenPurpose::DeleteAccount, did, &input.token).await? {
        return Err(r.into_error());
    }
    purge_account(state, did).await?;
    Ok(())
}

/// Deletes account `did` for good (after `deleteAccount`'s checks, or by
/// the admin's `com.atproto.admin.deleteAccount`): its repository, records,
/// blob references, credentials and sessions go, `#account` (`active:
/// false`, `status: deleted`) is sequenced, its earlier events are
/// invalidated and its blobs removed from the blob store.
pub async fn purge_account(state: &AppState, did: &str) -> Result<(), ApiError> {
    let accounts = state.store.accounts();
    let before = state.store.sequencer().current_seq().await?;
    let blobs = accounts
        .delete(did, vec![account_event(did, false, Some("deleted"))])
        .await?;
    // The account's earlier events are superseded by its deletion.
    if let Err(e) = state
        .store
        .sequencer()
        .invalidate_events(did, before.saturating_add(1))
        .await
    {
        tracing::warn!(did, error = %e, "could not invalidate a deleted account's events");
    }
    for cid in &blobs {
        if let Err(e) = state.blobstore.delete(did, cid).await {
            tracing::warn!(did, %cid, error = %e, "could not delete a deleted account's blob");
        }
    }
    tracing::info!(did, blobs = blobs.len(), "account deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_format_and_hash() {
        let t = crate::random::token();
        assert_eq!(
            token_hash(&t),
            token_hash(&format!(" {} ", t.to_lowercase()))
        );
        assert_ne!(token_hash("AAAAA-AAAAA"), token_hash("AAAAA-AAAAB"));
        assert_eq!(token_hash("x").len(), 64);
    }

    #[test]
    fn token_judgement() {
        let now = 1_700_000_000_000;
        let stored = EmailToken {
            did: "did:plc:x".into(),
            token_hash: token_hash("AAAAA-BBBBB"),
            requested_at: now - TOKEN_TTL_MS,
        };
        let h = token_hash("aaaaa-bbbbb");
        assert_eq!(judge(Some(&stored), &h, now), Ok(()));
        assert_eq!(
            judge(Some(&stored), &h, now + 1),
            Err(TokenRejection::Expired)
        );
        assert_eq!(
            judge(Some(&stored), &token_hash("AAAAA-BBBBC"), now),
            Err(TokenRejection::Invalid)
        );
        assert_eq!(judge(None, &h, now), Err(TokenRejection::Invalid));
    }
}
