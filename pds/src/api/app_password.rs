//! App passwords: `createAppPassword`, `listAppPasswords`,
//! `revokeAppPassword` (account-password sessions only: the handlers take
//! [`AccessFull`](crate::auth::AccessFull)).
//!
//! A password is 16 random base32 characters shown as `xxxx-xxxx-xxxx-xxxx`;
//! only its Argon2id hash is stored. Names are unique per account. Logging
//! in with one gives a `com.atproto.appPass` session (or
//! `com.atproto.appPassPrivileged` when created with `privileged`);
//! revoking it deletes the refresh tokens of those sessions.

use atproto_types::lexicons::com::atproto::server::{
    create_app_password, list_app_passwords, revoke_app_password,
};
use atproto_types::xrpc::XrpcError;
use pds_store::StoreError;

use super::server::datetime;
use crate::error::ApiError;
use crate::session;
use crate::state::AppState;

/// Longest app-password name accepted.
pub const NAME_MAX_LENGTH: usize = 256;

/// `com.atproto.server.createAppPassword`.
pub async fn create(
    state: &AppState,
    did: &str,
    input: create_app_password::Input,
) -> Result<create_app_password::Output, XrpcError<create_app_password::Error>> {
    let name = input.name.trim();
    if name.is_empty() {
        return Err(XrpcError::invalid_request(
            "App password name must not be empty",
        ));
    }
    if name.chars().count() > NAME_MAX_LENGTH {
        return Err(XrpcError::invalid_request(format!(
            "App password name too long. Maximum length is {NAME_MAX_LENGTH} characters."
        )));
    }
    let privileged = input.privileged.unwrap_or(false);
    let password = crate::random::app_password();
    let hash = session::hash(&password).await?;
    let created = match state
        .store
        .accounts()
        .create_app_password(did, name, &hash, privileged)
        .await
    {
        Ok(c) => c,
        Err(StoreError::AppPasswordExists) => {
            return Err(XrpcError::invalid_request(format!(
                "could not create app-specific password: the name {name:?} is already in use"
            )))
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    Ok(create_app_password::AppPassword {
        created_at: datetime(created.created_at)?,
        name: created.name,
        password,
        privileged: Some(privileged),
        extra_data: Default::default(),
    })
}

/// `com.atproto.server.listAppPasswords`.
pub async fn list(
    state: &AppState,
    did: &str,
) -> Result<list_app_passwords::Output, XrpcError<list_app_passwords::Error>> {
    let stored = state
        .store
        .accounts()
        .list_app_passwords(did)
        .await
        .map_err(ApiError::from)?;
    let mut passwords = Vec::with_capacity(stored.len());
    for ap in stored {
        passwords.push(list_app_passwords::AppPassword {
            created_at: datetime(ap.created_at)?,
            name: ap.name,
            privileged: Some(ap.privileged),
            extra_data: Default::default(),
        });
    }
    Ok(list_app_passwords::Output {
        passwords,
        extra_data: Default::default(),
    })
}

/// `com.atproto.server.revokeAppPassword`: revoking an unknown name is not
/// an error (as in the reference).
pub async fn revoke(
    state: &AppState,
    did: &str,
    input: revoke_app_password::Input,
) -> Result<(), XrpcError<revoke_app_password::Error>> {
    let removed = state
        .store
        .accounts()
        .delete_app_password(did, input.name.trim())
        .await
        .map_err(ApiError::from)?;
    if removed {
        tracing::info!(did, name = %input.name.trim(), "app password revoked");
    }
    Ok(())
}
