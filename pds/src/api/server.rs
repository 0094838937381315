//! `com.atproto.server`: server description, sessions, invite codes,
//! account creation.

use atproto_types::data::Value;
use atproto_types::lexicons::com::atproto::server::defs::{InviteCode, InviteCodeUse};
use atproto_types::lexicons::com::atproto::server::{
    activate_account, check_account_status, confirm_email, create_account, create_app_password,
    create_invite_code, create_invite_codes, create_session, deactivate_account, delete_account,
    delete_session, describe_server, get_account_invite_codes, get_service_auth, get_session,
    list_app_passwords, refresh_session, request_account_delete, request_email_confirmation,
    request_email_update, request_password_reset, reserve_signing_key, reset_password,
    revoke_app_password, update_email, ComAtprotoServer,
};
use atproto_types::syntax::{Datetime, Did, Handle};
use atproto_types::xrpc::http::StatusCode;
use atproto_types::xrpc::{NoAuth, XrpcError, XrpcRequest};
use pds_store::{Account, AccountStatus, NewInviteCode};

use super::{account_status, app_password, email, signing};
use crate::auth::{
    AccessFull, AccessFullDeactivatedOk, AccessStandardDeactivatedOk, AccessTakendownOk, AdminAuth,
    OptionalServiceAuth, RefreshAuth, RefreshAuthExpiredOk,
};
use crate::error::ApiError;
use crate::jwt::Scope;
use crate::rate_limit::{self, Key};
use crate::session::{self, LoginError, Rotation};
use crate::state::AppState;

/// The handle sessions report for an account whose handle is unusable.
const INVALID_HANDLE: &str = "handle.invalid";

pub(crate) fn handle_of(account: &Account) -> Result<Handle, ApiError> {
    let text = account.handle.as_deref().unwrap_or(INVALID_HANDLE);
    text.parse::<Handle>()
        .or_else(|_| INVALID_HANDLE.parse::<Handle>())
        .map_err(|e| ApiError::Internal(format!("handle: {e}")))
}

/// Milliseconds since the epoch as an atproto datetime.
pub(crate) fn datetime(ms: i64) -> Result<Datetime, ApiError> {
    let text = pds_repo::events::format_time(ms);
    text.parse::<Datetime>()
        .map_err(|e| ApiError::Internal(format!("datetime {text:?}: {e}")))
}

/// Most invite codes one `createInviteCodes` call makes per account, and
/// most accounts it names.
pub const MAX_INVITE_CODES_PER_CALL: i64 = 1000;

/// Most unused earned invite codes an account holds at a time.
const MAX_OPEN_EARNED_CODES: i64 = 5;

/// How many invite codes an account earns now, and how many earned
/// (not admin-given) codes it then has (the reference's rule): one per
/// `interval` of the account's age counted from `epoch`, minus those
/// already made since `epoch`, with at most
/// [`MAX_OPEN_EARNED_CODES`] unused at a time. Times in ms.
pub fn invite_codes_to_create(
    codes: &[pds_store::InviteCode],
    created_at: i64,
    epoch: i64,
    interval: i64,
    now: i64,
) -> (i64, i64) {
    let interval = interval.max(1);
    let earned: Vec<&pds_store::InviteCode> =
        codes.iter().filter(|c| c.created_by != "admin").collect();
    let unused = earned
        .iter()
        .filter(|c| !c.disabled && c.available_uses > c.uses.len() as i64)
        .count() as i64;
    let lifespan = now.saturating_sub(created_at).max(0);
    let could_create = if created_at >= epoch {
        lifespan / interval
    } else {
        lifespan / interval - epoch.saturating_sub(created_at) / interval
    };
    let since_epoch = earned.iter().filter(|c| c.created_at > epoch).count() as i64;
    let to_create = (MAX_OPEN_EARNED_CODES - unused).min(could_create - since_epoch);
    (to_create, earned.len() as i64 + to_create)
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

impl ComAtprotoServer for AppState {
    type ActivateAccountAuth = AccessFullDeactivatedOk;
    type CheckAccountStatusAuth = AccessStandardDeactivatedOk;
    type ConfirmEmailAuth = AccessStandardDeactivatedOk;
    type CreateAccountAuth = OptionalServiceAuth;
    type CreateAppPasswordAuth = AccessFull;
    type CreateInviteCodeAuth = AdminAuth;
    type CreateInviteCodesAuth = AdminAuth;
    type CreateSessionAuth = NoAuth;
    type DeactivateAccountAuth = AccessFullDeactivatedOk;
    type DeleteAccountAuth = NoAuth;
    type DeleteSessionAuth = RefreshAuthExpiredOk;
    type DescribeServerAuth = NoAuth;
    type GetAccountInviteCodesAuth = AccessFull;
    type GetServiceAuthAuth = AccessTakendownOk;
    type GetSessionAuth = AccessStandardDeactivatedOk;
    type ListAppPasswordsAuth = AccessFull;
    type RefreshSessionAuth = RefreshAuth;
    type RequestAccountDeleteAuth = AccessFullDeactivatedOk;
    type RequestEmailConfirmationAuth = AccessStandardDeactivatedOk;
    type RequestEmailUpdateAuth = AccessStandardDeactivatedOk;
    type RequestPasswordResetAuth = NoAuth;
    type ReserveSigningKeyAuth = NoAuth;
    type ResetPasswordAuth = NoAuth;
    type RevokeAppPasswordAuth = AccessFull;
    type UpdateEmailAuth = AccessFullDeactivatedOk;

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
        rate_limit::consume(
            self,
            req.extensions(),
            rate_limit::CREATE_SESSION,
            Key::IdentifierAndIp(&req.input.identifier),
            1,
        )
        .await?;
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
        let code = crate::random::invite_code(&self.config.hostname);
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

    async fn create_invite_codes(
        &self,
        _: AdminAuth,
        req: XrpcRequest<create_invite_codes::Params, create_invite_codes::Input>,
    ) -> Result<create_invite_codes::Output, XrpcError<create_invite_codes::Error>> {
        let input = req.input;
        if input.use_count < 1 {
            return Err(XrpcError::invalid_request("useCount must be at least 1"));
        }
        if !(1..=MAX_INVITE_CODES_PER_CALL).contains(&input.code_count) {
            return Err(XrpcError::invalid_request(format!(
                "codeCount must be between 1 and {MAX_INVITE_CODES_PER_CALL}"
            )));
        }
        let accounts: Vec<String> = match input.for_accounts {
            Some(list) if !list.is_empty() => list.iter().map(|d| d.as_str().to_owned()).collect(),
            _ => vec!["admin".to_owned()],
        };
        if accounts.len() as i64 > MAX_INVITE_CODES_PER_CALL {
            return Err(XrpcError::invalid_request(format!(
                "forAccounts may name at most {MAX_INVITE_CODES_PER_CALL} accounts"
            )));
        }
        let mut rows = Vec::new();
        let mut out = Vec::with_capacity(accounts.len());
        for account in accounts {
            let codes: Vec<String> = (0..input.code_count)
                .map(|_| crate::random::invite_code(&self.config.hostname))
                .collect();
            rows.extend(codes.iter().map(|code| NewInviteCode {
                code: code.clone(),
                available_uses: input.use_count,
                for_account: account.clone(),
                created_by: "admin".to_owned(),
            }));
            out.push(create_invite_codes::AccountCodes {
                account,
                codes,
                extra_data: Default::default(),
            });
        }
        self.store
            .accounts()
            .create_invite_codes(&rows)
            .await
            .map_err(ApiError::from)?;
        Ok(create_invite_codes::Output {
            codes: out,
            extra_data: Default::default(),
        })
    }

    async fn get_account_invite_codes(
        &self,
        auth: AccessFull,
        req: XrpcRequest<get_account_invite_codes::Params, ()>,
    ) -> Result<get_account_invite_codes::Output, XrpcError<get_account_invite_codes::Error>> {
        let include_used = req.params.include_used.unwrap_or(true);
        let create_available = req.params.create_available.unwrap_or(true);
        let did = auth.did.as_str();
        let accounts = self.store.accounts();
        let mut stored = accounts
            .invite_codes_for_account(did)
            .await
            .map_err(ApiError::from)?;
        let interval = self
            .config
            .invite_interval_ms
            .filter(|_| create_available && self.config.invite_required);
        if let Some(interval) = interval {
            let (to_create, total) = invite_codes_to_create(
                &stored,
                auth.account.created_at,
                self.config.invite_epoch_ms,
                interval,
                pds_store::now_ms(),
            );
            if to_create > 0 {
                let codes: Vec<String> = (0..to_create)
                    .map(|_| crate::random::invite_code(&self.config.hostname))
                    .collect();
                let rows: Vec<NewInviteCode> = codes
                    .iter()
                    .map(|code| NewInviteCode {
                        code: code.clone(),
                        available_uses: 1,
                        for_account: did.to_owned(),
                        created_by: did.to_owned(),
                    })
                    .collect();
                accounts
                    .create_invite_codes(&rows)
                    .await
                    .map_err(ApiError::from)?;
                // Made for bookkeeping even when the account may not invite.
                if auth.account.invites_disabled {
                    accounts
                        .disable_invite_codes(&codes, &[])
                        .await
                        .map_err(ApiError::from)?;
                }
                stored = accounts
                    .invite_codes_for_account(did)
                    .await
                    .map_err(ApiError::from)?;
                let routine = stored.iter().filter(|c| c.created_by != "admin").count();
                if routine as i64 > total {
                    accounts
                        .disable_invite_codes(&codes, &[])
                        .await
                        .map_err(ApiError::from)?;
                    return Err(
                        XrpcError::from(get_account_invite_codes::Error::DuplicateCreate)
                            .with_message(
                                "attempted to create additional codes in another request",
                            ),
                    );
                }
            }
        }
        let mut codes = Vec::new();
        for c in stored {
            if c.disabled {
                continue;
            }
            if !include_used && c.uses.len() as i64 >= c.available_uses {
                continue;
            }
            let mut uses = Vec::with_capacity(c.uses.len());
            for u in &c.uses {
                uses.push(InviteCodeUse {
                    used_at: datetime(u.used_at)?,
                    used_by: did_of(&u.used_by)?,
                    extra_data: Default::default(),
                });
            }
            codes.push(InviteCode {
                available: c.available_uses,
                code: c.code,
                created_at: datetime(c.created_at)?,
                created_by: c.created_by,
                disabled: c.disabled,
                for_account: c.for_account,
                uses,
                extra_data: Default::default(),
            });
        }
        Ok(get_account_invite_codes::Output {
            codes,
            extra_data: Default::default(),
        })
    }

    async fn create_app_password(
        &self,
        auth: AccessFull,
        req: XrpcRequest<create_app_password::Params, create_app_password::Input>,
    ) -> Result<create_app_password::Output, XrpcError<create_app_password::Error>> {
        app_password::create(self, &auth.did, req.input).await
    }

    async fn list_app_passwords(
        &self,
        auth: AccessFull,
        _: XrpcRequest<list_app_passwords::Params, ()>,
    ) -> Result<list_app_passwords::Output, XrpcError<list_app_passwords::Error>> {
        app_password::list(self, &auth.did).await
    }

    async fn revoke_app_password(
        &self,
        auth: AccessFull,
        req: XrpcRequest<revoke_app_password::Params, revoke_app_password::Input>,
    ) -> Result<(), XrpcError<revoke_app_password::Error>> {
        app_password::revoke(self, &auth.did, req.input).await
    }

    async fn activate_account(
        &self,
        auth: AccessFullDeactivatedOk,
        _: XrpcRequest<activate_account::Params, ()>,
    ) -> Result<(), XrpcError<activate_account::Error>> {
        account_status::activate(self, &auth.account).await
    }

    async fn deactivate_account(
        &self,
        auth: AccessFullDeactivatedOk,
        req: XrpcRequest<deactivate_account::Params, deactivate_account::Input>,
    ) -> Result<(), XrpcError<deactivate_account::Error>> {
        account_status::deactivate(self, &auth.account, req.input).await
    }

    async fn check_account_status(
        &self,
        auth: AccessStandardDeactivatedOk,
        _: XrpcRequest<check_account_status::Params, ()>,
    ) -> Result<check_account_status::Output, XrpcError<check_account_status::Error>> {
        account_status::check(self, &auth.account).await
    }

    async fn get_service_auth(
        &self,
        auth: AccessTakendownOk,
        req: XrpcRequest<get_service_auth::Params, ()>,
    ) -> Result<get_service_auth::Output, XrpcError<get_service_auth::Error>> {
        signing::get_service_auth(self, &auth, req.params).await
    }

    async fn reserve_signing_key(
        &self,
        _: NoAuth,
        req: XrpcRequest<reserve_signing_key::Params, reserve_signing_key::Input>,
    ) -> Result<reserve_signing_key::Output, XrpcError<reserve_signing_key::Error>> {
        signing::reserve_signing_key(self, req.input).await
    }

    async fn request_email_confirmation(
        &self,
        auth: AccessStandardDeactivatedOk,
        req: XrpcRequest<request_email_confirmation::Params, ()>,
    ) -> Result<(), XrpcError<request_email_confirmation::Error>> {
        let limits = rate_limit::REQUEST_EMAIL_CONFIRMATION;
        rate_limit::consume(self, req.extensions(), limits, Key::Did(&auth.did), 1).await?;
        email::request_confirmation(self, &auth.account).await
    }

    async fn confirm_email(
        &self,
        auth: AccessStandardDeactivatedOk,
        req: XrpcRequest<confirm_email::Params, confirm_email::Input>,
    ) -> Result<(), XrpcError<confirm_email::Error>> {
        email::confirm(self, &auth.account, req.input).await
    }

    async fn request_email_update(
        &self,
        auth: AccessStandardDeactivatedOk,
        req: XrpcRequest<request_email_update::Params, ()>,
    ) -> Result<request_email_update::Output, XrpcError<request_email_update::Error>> {
        let limits = rate_limit::REQUEST_EMAIL_UPDATE;
        rate_limit::consume(self, req.extensions(), limits, Key::Did(&auth.did), 1).await?;
        email::request_update(self, &auth.account).await
    }

    async fn update_email(
        &self,
        auth: AccessFullDeactivatedOk,
        req: XrpcRequest<update_email::Params, update_email::Input>,
    ) -> Result<(), XrpcError<update_email::Error>> {
        email::update(self, &auth.account, req.input).await
    }

    async fn request_password_reset(
        &self,
        _: NoAuth,
        req: XrpcRequest<request_password_reset::Params, request_password_reset::Input>,
    ) -> Result<(), XrpcError<request_password_reset::Error>> {
        let limits = rate_limit::REQUEST_PASSWORD_RESET;
        rate_limit::consume(self, req.extensions(), limits, Key::Ip, 1).await?;
        email::request_password_reset(self, &req.input.email).await
    }

    async fn reset_password(
        &self,
        _: NoAuth,
        req: XrpcRequest<reset_password::Params, reset_password::Input>,
    ) -> Result<(), XrpcError<reset_password::Error>> {
        rate_limit::consume(
            self,
            req.extensions(),
            rate_limit::RESET_PASSWORD,
            Key::Ip,
            1,
        )
        .await?;
        email::reset_password(self, req.input).await
    }

    async fn request_account_delete(
        &self,
        auth: AccessFullDeactivatedOk,
        req: XrpcRequest<request_account_delete::Params, ()>,
    ) -> Result<(), XrpcError<request_account_delete::Error>> {
        let limits = rate_limit::REQUEST_ACCOUNT_DELETE;
        rate_limit::consume(self, req.extensions(), limits, Key::Did(&auth.did), 1).await?;
        email::request_account_delete(self, &auth.account).await
    }

    async fn delete_account(
        &self,
        _: NoAuth,
        req: XrpcRequest<delete_account::Params, delete_account::Input>,
    ) -> Result<(), XrpcError<delete_account::Error>> {
        rate_limit::consume(
            self,
            req.extensions(),
            rate_limit::DELETE_ACCOUNT,
            Key::Ip,
            1,
        )
        .await?;
        email::delete_account(self, req.input).await
    }

    async fn create_account(
        &self,
        auth: OptionalServiceAuth,
        req: XrpcRequest<create_account::Params, create_account::Input>,
    ) -> Result<create_account::Output, XrpcError<create_account::Error>> {
        rate_limit::consume(
            self,
            req.extensions(),
            rate_limit::CREATE_ACCOUNT,
            Key::Ip,
            1,
        )
        .await?;
        let requester = auth.0.as_ref().map(|c| c.issuer_did());
        super::account::create_account(self, req.input, requester).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(created_by: &str, created_at: i64, used: bool) -> pds_store::InviteCode {
        pds_store::InviteCode {
            code: format!("c{created_at}"),
            available_uses: 1,
            disabled: false,
            for_account: "did:plc:a".into(),
            created_by: created_by.into(),
            created_at,
            uses: if used {
                vec![pds_store::InviteCodeUse {
                    used_by: "did:plc:b".into(),
                    used_at: created_at,
                }]
            } else {
                Vec::new()
            },
        }
    }

    #[test]
    fn earned_invite_codes() {
        const DAY: i64 = 86_400_000;
        // Ten days old, one code a week: one earned.
        assert_eq!(invite_codes_to_create(&[], 0, 0, 7 * DAY, 10 * DAY), (1, 1));
        // Already made: none more; admin-given codes do not count.
        let made = [code("did:plc:a", DAY, false), code("admin", DAY, false)];
        assert_eq!(
            invite_codes_to_create(&made, 0, 0, 7 * DAY, 10 * DAY),
            (0, 1)
        );
        // At most five unused at a time.
        assert_eq!(invite_codes_to_create(&[], 0, 0, DAY, 100 * DAY), (5, 5));
        let used: Vec<_> = (1..=5).map(|i| code("did:plc:a", i, true)).collect();
        assert_eq!(invite_codes_to_create(&used, 0, 0, DAY, 100 * DAY), (5, 10));
        // Created before the epoch: intervals of its whole age, less those
        // completed before the epoch.
        assert_eq!(
            invite_codes_to_create(&[], 0, 20 * DAY, 7 * DAY, 22 * DAY),
            (1, 1)
        );
        assert_eq!(
            invite_codes_to_create(&[], 0, 20 * DAY, 7 * DAY, 29 * DAY),
            (2, 2)
        );
    }
}
