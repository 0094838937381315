//! `com.atproto.server`: server description, sessions, invite codes,
//! account creation.

use atproto_types::data::Value;
use atproto_types::lexicons::com::atproto::server::{
    create_account, create_invite_code, create_session, delete_session, describe_server,
    get_session, refresh_session, ComAtprotoServer,
};
use atproto_types::syntax::{Did, Handle};
use atproto_types::xrpc::http::StatusCode;
use atproto_types::xrpc::{NoAuth, NotImplemented, XrpcError, XrpcRequest};
use pds_store::{Account, AccountStatus, NewInviteCode};
use rand::Rng;

use crate::auth::{
    AccessStandardDeactivatedOk, AdminAuth, OptionalServiceAuth, RefreshAuth, RefreshAuthExpiredOk,
};
use crate::error::ApiError;
use crate::jwt::Scope;
use crate::session::{self, LoginError, Rotation};
use crate::state::AppState;

/// The handle sessions report for an account whose handle is unusable.
const INVALID_HANDLE: &str = "handle.invalid";

fn handle_of(account: &Account) -> Result<Handle, ApiError> {
    let text = account.handle.as_deref().unwrap_or(INVALID_HANDLE);
    text.parse::<Handle>()
        .or_else(|_| INVALID_HANDLE.parse::<Handle>())
        .map_err(|e| ApiError::Internal(format!("handle: {e}")))
}

fn did_of(did: &str) -> Result<Did, ApiError> {
    did.parse::<Did>()
        .map_err(|e| ApiError::Internal(format!("stored DID {did:?}: {e}")))
}

/// `active` and `status` of session responses (the reference's
/// `formatAccountStatus`).
fn status_of(account: &Account) -> (bool, Option<&'static str>) {
    match account.status {
        AccountStatus::Active => (true, None),
        AccountStatus::Deactivated => (false, Some("deactivated")),
        AccountStatus::Takendown => (false, Some("takendown")),
        AccountStatus::Deleted => (false, None),
    }
}

/// The DID document for session responses, when
/// `PDS_ENABLE_DID_DOC_WITH_SESSION` is set (best effort: a resolution
/// failure leaves it out).
async fn did_doc_for_session(state: &AppState, did: &str) -> Option<Value> {
    if !state.config.enable_did_doc_with_session || !did.starts_with("did:plc:") {
        return None;
    }
    match state.plc.resolve(did).await {
        Ok(Some(doc)) => Value::from_json(&doc).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(did, error = %e, "could not resolve DID document for session");
            None
        }
    }
}

/// A random invite code: `<hostname with dashes>-xxxxx-xxxxx` (base32).
fn new_invite_code(hostname: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut rng = rand::thread_rng();
    let mut part = || -> String {
        (0..5)
            .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
            .collect()
    };
    let a = part();
    let b = part();
    format!("{}-{a}-{b}", hostname.replace('.', "-"))
}

impl ComAtprotoServer for AppState {
    type ActivateAccountAuth = NotImplemented;
    type CheckAccountStatusAuth = NotImplemented;
    type ConfirmEmailAuth = NotImplemented;
    type CreateAccountAuth = OptionalServiceAuth;
    type CreateAppPasswordAuth = NotImplemented;
    type CreateInviteCodeAuth = AdminAuth;
    type CreateInviteCodesAuth = NotImplemented;
    type CreateSessionAuth = NoAuth;
    type DeactivateAccountAuth = NotImplemented;
    type DeleteAccountAuth = NotImplemented;
    type DeleteSessionAuth = RefreshAuthExpiredOk;
    type DescribeServerAuth = NoAuth;
    type GetAccountInviteCodesAuth = NotImplemented;
    type GetServiceAuthAuth = NotImplemented;
    type GetSessionAuth = AccessStandardDeactivatedOk;
    type ListAppPasswordsAuth = NotImplemented;
    type RefreshSessionAuth = RefreshAuth;
    type RequestAccountDeleteAuth = NotImplemented;
    type RequestEmailConfirmationAuth = NotImplemented;
    type RequestEmailUpdateAuth = NotImplemented;
    type RequestPasswordResetAuth = NotImplemented;
    type ReserveSigningKeyAuth = NotImplemented;
    type ResetPasswordAuth = NotImplemented;
    type RevokeAppPasswordAuth = NotImplemented;
    type UpdateEmailAuth = NotImplemented;

    async fn describe_server(
        &self,
        _: NoAuth,
        _: XrpcRequest<describe_server::Params, ()>,
    ) -> Result<describe_server::Output, XrpcError<describe_server::Error>> {
        let c = &self.config;
        let uri = |u: &Option<String>| u.as_deref().and_then(|u| u.parse().ok());
        Ok(describe_server::Output {
            did: did_of(&c.service_did)?,
            available_user_domains: c.handle_domains.clone(),
            invite_code_required: Some(c.invite_required),
            phone_verification_required: Some(false),
            links: Some(describe_server::Links {
                privacy_policy: uri(&c.privacy_policy_url),
                terms_of_service: uri(&c.terms_of_service_url),
                extra_data: Default::default(),
            }),
            contact: Some(describe_server::Contact {
                email: c.contact_email_address.clone(),
                extra_data: Default::default(),
            }),
            blob_upload_limit: None,
            extra_data: Default::default(),
        })
    }

    async fn create_session(
        &self,
        _: NoAuth,
        req: XrpcRequest<create_session::Params, create_session::Input>,
    ) -> Result<create_session::Output, XrpcError<create_session::Error>> {
        let input = req.input;
        let login = match session::login(self, &input.identifier, &input.password).await {
            Ok(l) => l,
            Err(LoginError::BadCredentials) => {
                return Err(XrpcError::authentication_required(
                    "Invalid identifier or password",
                ))
            }
            Err(LoginError::Internal(e)) => return Err(e.into()),
        };
        let account = login.account;
        let takendown = account.status == AccountStatus::Takendown;
        if takendown && input.allow_takendown != Some(true) {
            return Err(XrpcError::new(
                StatusCode::UNAUTHORIZED,
                "AccountTakedown",
                Some("Account has been taken down".into()),
            ));
        }
        let scope = if takendown {
            Scope::Takendown
        } else {
            session::scope_for(login.app_password.as_ref())
        };
        let app_password_name = login.app_password.map(|(name, _)| name);
        let tokens = session::create_session(self, &account.did, scope, app_password_name).await?;
        let did_doc = did_doc_for_session(self, &account.did).await;
        let (active, status) = status_of(&account);
        Ok(create_session::Output {
            access_jwt: tokens.access_jwt,
            refresh_jwt: tokens.refresh_jwt,
            did: did_of(&account.did)?,
            did_doc,
            handle: handle_of(&account)?,
            email: account.email.clone(),
            email_confirmed: Some(account.email_confirmed_at.is_some()),
            email_auth_factor: None,
            active: Some(active),
            status: status.map(create_session::OutputStatus::from),
            extra_data: Default::default(),
        })
    }

    async fn get_session(
        &self,
        auth: AccessStandardDeactivatedOk,
        _: XrpcRequest<get_session::Params, ()>,
    ) -> Result<get_session::Output, XrpcError<get_session::Error>> {
        let account = &auth.account;
        let did_doc = did_doc_for_session(self, &account.did).await;
        let (active, status) = status_of(account);
        Ok(get_session::Output {
            did: did_of(&account.did)?,
            did_doc,
            handle: handle_of(account)?,
            email: account.email.clone(),
            email_confirmed: Some(account.email_confirmed_at.is_some()),
            email_auth_factor: None,
            active: Some(active),
            status: status.map(get_session::OutputStatus::from),
            extra_data: Default::default(),
        })
    }

    async fn refresh_session(
        &self,
        auth: RefreshAuth,
        _: XrpcRequest<refresh_session::Params, ()>,
    ) -> Result<refresh_session::Output, XrpcError<refresh_session::Error>> {
        let did = &auth.0.did;
        let account = self
            .store
            .accounts()
            .get(did)
            .await
            .map_err(ApiError::from)?
            .filter(|a| a.status != AccountStatus::Deleted)
            .ok_or_else(|| {
                XrpcError::invalid_request(format!("Could not find user info for account: {did}"))
            })?;
        if account.status == AccountStatus::Takendown {
            return Err(XrpcError::new(
                StatusCode::UNAUTHORIZED,
                "AccountTakedown",
                Some("Account has been taken down".into()),
            ));
        }
        let tokens = match session::rotate(self, did, &auth.0.token_id).await? {
            Rotation::Tokens(t) => t,
            Rotation::Revoked => {
                return Err(XrpcError::from(refresh_session::Error::ExpiredToken)
                    .with_message("Token has been revoked"))
            }
        };
        let did_doc = did_doc_for_session(self, did).await;
        let (active, status) = status_of(&account);
        Ok(refresh_session::Output {
            access_jwt: tokens.access_jwt,
            refresh_jwt: tokens.refresh_jwt,
            did: did_of(&account.did)?,
            did_doc,
            handle: handle_of(&account)?,
            email: account.email.clone(),
            email_confirmed: Some(account.email_confirmed_at.is_some()),
            email_auth_factor: None,
            active: Some(active),
            status: status.map(refresh_session::OutputStatus::from),
            extra_data: Default::default(),
        })
    }

    async fn delete_session(
        &self,
        auth: RefreshAuthExpiredOk,
        _: XrpcRequest<delete_session::Params, ()>,
    ) -> Result<(), XrpcError<delete_session::Error>> {
        self.store
            .sessions()
            .delete(&auth.0.token_id)
            .await
            .map_err(ApiError::from)?;
        Ok(())
    }

    async fn create_invite_code(
        &self,
        _: AdminAuth,
        req: XrpcRequest<create_invite_code::Params, create_invite_code::Input>,
    ) -> Result<create_invite_code::Output, XrpcError<create_invite_code::Error>> {
        let input = req.input;
        if input.use_count < 1 {
            return Err(XrpcError::invalid_request("useCount must be at least 1"));
        }
        let code = new_invite_code(&self.config.hostname);
        self.store
            .accounts()
            .create_invite_codes(&[NewInviteCode {
                code: code.clone(),
                available_uses: input.use_count,
                for_account: input
                    .for_account
                    .map(|d| d.as_str().to_owned())
                    .unwrap_or_else(|| "admin".to_owned()),
                created_by: "admin".to_owned(),
            }])
            .await
            .map_err(ApiError::from)?;
        Ok(create_invite_code::Output {
            code,
            extra_data: Default::default(),
        })
    }

    async fn create_account(
        &self,
        auth: OptionalServiceAuth,
        req: XrpcRequest<create_account::Params, create_account::Input>,
    ) -> Result<create_account::Output, XrpcError<create_account::Error>> {
        let requester = auth.0.as_ref().map(|c| c.issuer_did());
        super::account::create_account(self, req.input, requester).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invite_codes() {
        let code = new_invite_code("pds.example.com");
        assert!(code.starts_with("pds-example-com-"), "{code}");
        let rest = &code["pds-example-com-".len()..];
        assert_eq!(rest.len(), 11);
        assert_eq!(&rest[5..6], "-");
        assert_ne!(code, new_invite_code("pds.example.com"));
    }
}
