//! `com.atproto.admin`: the operator's methods (the `pdsadmin` script,
//! Ozone), all behind HTTP basic `admin:PDS_ADMIN_PASSWORD`
//! ([`AdminAuth`]), as the reference PDS serves them.
//!
//! Takedowns (`updateSubjectStatus`) work on three subjects: an account
//! (`#repoRef`: takedown and deactivation; the account's status, its
//! sessions and an `#account` event follow), a record
//! (`com.atproto.repo.strongRef`: hidden from reads) and a blob
//! (`#repoBlobRef`: no longer served). What a taken-down account may no
//! longer do (log in, write, be synced) is enforced where those requests
//! are served, from the stored status.

use atproto_types::data::Cid;
use atproto_types::lexicons::com::atproto::admin::defs::{
    AccountView, RepoBlobRef, RepoRef, StatusAttr,
};
use atproto_types::lexicons::com::atproto::admin::{
    delete_account, disable_account_invites, disable_invite_codes, enable_account_invites,
    get_account_info, get_account_infos, get_invite_codes, get_subject_status, search_accounts,
    send_email, update_account_email, update_account_handle, update_account_password,
    update_account_signing_key, update_subject_status, ComAtprotoAdmin,
};
use atproto_types::lexicons::com::atproto::repo::strong_ref;
use atproto_types::lexicons::com::atproto::server::defs::{InviteCode, InviteCodeUse};
use atproto_types::syntax::{AtUri, CidString, Did};
use atproto_types::xrpc::http::StatusCode;
use atproto_types::xrpc::{XrpcError, XrpcRequest};
use pds_notify::Message;
use pds_repo::events::{account_event, identity_event};
use pds_store::{Account, AccountStatus, InviteCodeCursor, InviteCodeSort, StoreError};
use serde_json::Value as Json;

use super::account::{is_valid_email, PASSWORD_MAX_LENGTH};
use super::server::{datetime, handle_of};
use super::{email, identity};
use crate::api::repo::find_account;
use crate::auth::AdminAuth;
use crate::error::ApiError;
use crate::plc;
use crate::session;
use crate::state::AppState;

/// Default and largest page of `getInviteCodes` (the lexicon's bounds).
const INVITE_PAGE_DEFAULT: i64 = 100;
const INVITE_PAGE_MAX: i64 = 500;
/// Default and largest page of `searchAccounts`.
const SEARCH_PAGE_DEFAULT: i64 = 50;
const SEARCH_PAGE_MAX: i64 = 100;
/// The subject line of `sendEmail` when the moderator gives none (the
/// reference's).
const DEFAULT_EMAIL_SUBJECT: &str = "Message from Bluesky moderator";

fn not_found<E>(message: impl Into<String>) -> XrpcError<E> {
    XrpcError::new(StatusCode::BAD_REQUEST, "NotFound", Some(message.into()))
}

fn did_of(did: &str) -> Result<Did, ApiError> {
    did.parse::<Did>()
        .map_err(|e| ApiError::Internal(format!("stored DID {did:?}: {e}")))
}

/// An account that exists (in any state but deleted).
async fn existing(state: &AppState, did: &str) -> Result<Option<Account>, ApiError> {
    Ok(state
        .store
        .accounts()
        .get(did)
        .await?
        .filter(|a| a.status != AccountStatus::Deleted))
}

async fn require_account<E>(state: &AppState, did: &str) -> Result<Account, XrpcError<E>> {
    existing(state, did)
        .await?
        .ok_or_else(|| XrpcError::invalid_request(format!("Account not found: {did}")))
}

/// A stored invite code as the lexicon's `InviteCode`.
pub(crate) fn invite_code_view(c: pds_store::InviteCode) -> Result<InviteCode, ApiError> {
    let mut uses = Vec::with_capacity(c.uses.len());
    for u in &c.uses {
        uses.push(InviteCodeUse {
            used_at: datetime(u.used_at)?,
            used_by: did_of(&u.used_by)?,
            extra_data: Default::default(),
        });
    }
    Ok(InviteCode {
        available: c.available_uses,
        code: c.code,
        created_at: datetime(c.created_at)?,
        created_by: c.created_by,
        disabled: c.disabled,
        for_account: c.for_account,
        uses,
        extra_data: Default::default(),
    })
}

/// The admin view of an account (the reference's `formatAccountInfo`;
/// this server manages its own invites).
async fn account_view(state: &AppState, account: Account) -> Result<AccountView, ApiError> {
    let accounts = state.store.accounts();
    let invites = accounts
        .invite_codes_for_account(&account.did)
        .await?
        .into_iter()
        .map(invite_code_view)
        .collect::<Result<Vec<_>, _>>()?;
    let invited_by = accounts
        .invite_code_used_by(&account.did)
        .await?
        .map(invite_code_view)
        .transpose()?;
    Ok(AccountView {
        did: did_of(&account.did)?,
        handle: handle_of(&account)?,
        email: account.email.clone(),
        email_confirmed_at: account.email_confirmed_at.map(datetime).transpose()?,
        indexed_at: datetime(account.created_at)?,
        deactivated_at: account.deactivated_at.map(datetime).transpose()?,
        invited_by,
        invites: Some(invites),
        invites_disabled: Some(account.invites_disabled),
        invite_note: None,
        related_records: None,
        threat_signatures: None,
        extra_data: Default::default(),
    })
}

/// The reference of an applied takedown: the one given, or the time.
fn takedown_ref(attr: &StatusAttr) -> Option<String> {
    attr.applied.then(|| {
        attr.ref_
            .clone()
            .unwrap_or_else(|| pds_repo::events::format_time(pds_store::now_ms()))
    })
}

fn status_attr(reference: Option<&str>) -> StatusAttr {
    StatusAttr {
        applied: reference.is_some(),
        ref_: reference.map(str::to_owned),
        extra_data: Default::default(),
    }
}

/// Applies an account takedown and/or deactivation (either may be
/// absent: that side is kept), then sequences the account's `#account`
/// event, as the reference does for every `#repoRef` update. A takedown
/// ends the account's sessions.
async fn update_account_status(
    state: &AppState,
    did: &str,
    takedown: Option<&StatusAttr>,
    deactivated: Option<&StatusAttr>,
) -> Result<(), XrpcError<update_subject_status::Error>> {
    let account = require_account(state, did).await?;
    let takedown_ref = match takedown {
        Some(attr) => takedown_ref(attr),
        None => account.takedown_ref.clone(),
    };
    let deactivated = match deactivated {
        Some(attr) => attr.applied,
        None => account.deactivated_at.is_some(),
    };
    let status = if takedown_ref.is_some() {
        AccountStatus::Takendown
    } else if deactivated {
        AccountStatus::Deactivated
    } else {
        AccountStatus::Active
    };
    let active = status == AccountStatus::Active;
    let event = account_event(did, active, (!active).then_some(status.as_str()));
    // A deactivation the admin did not touch keeps its scheduled deletion.
    let delete_after = match status {
        AccountStatus::Deactivated if account.status == AccountStatus::Deactivated => {
            account.delete_after
        }
        _ => None,
    };
    state
        .store
        .accounts()
        .set_status(
            did,
            status,
            takedown_ref.as_deref(),
            delete_after,
            vec![event],
        )
        .await
        .map_err(ApiError::from)?;
    if takedown.is_some_and(|t| t.applied) {
        state
            .store
            .sessions()
            .delete_for_account(did)
            .await
            .map_err(ApiError::from)?;
    }
    tracing::info!(did, %status, "account status updated by admin");
    Ok(())
}

/// The DID of an at-uri's authority (a handle is looked up locally).
async fn uri_did(state: &AppState, uri: &AtUri) -> Result<Option<String>, ApiError> {
    let authority = uri.authority().as_str();
    if authority.starts_with("did:") {
        return Ok(Some(authority.to_owned()));
    }
    Ok(state
        .store
        .accounts()
        .get_by_handle(authority)
        .await?
        .map(|a| a.did))
}

/// `(did, collection, rkey)` of a record's at-uri.
async fn record_key<E>(
    state: &AppState,
    uri: &AtUri,
) -> Result<Option<(String, String, String)>, XrpcError<E>> {
    let (Some(collection), Some(rkey)) = (uri.collection(), uri.rkey()) else {
        return Err(XrpcError::invalid_request(format!(
            "Not a record URI: {}",
            uri.as_str()
        )));
    };
    Ok(uri_did(state, uri).await?.map(|did| {
        (
            did,
            collection.as_str().to_owned(),
            rkey.as_str().to_owned(),
        )
    }))
}

fn parse_cid<E>(cid: &CidString) -> Result<Cid, XrpcError<E>> {
    Cid::try_from(cid.as_str()).map_err(|e| XrpcError::invalid_request(format!("Invalid CID: {e}")))
}

fn cid_string(cid: &Cid) -> Result<CidString, ApiError> {
    cid.to_string()
        .parse()
        .map_err(|e| ApiError::Internal(format!("CID: {e}")))
}

/// Parses a `getInviteCodes` cursor: `<key>::<code>`.
fn parse_invite_cursor<E>(cursor: &str) -> Result<InviteCodeCursor, XrpcError<E>> {
    let malformed = || XrpcError::invalid_request("Malformed cursor");
    let (key, code) = cursor.split_once("::").ok_or_else(malformed)?;
    Ok(InviteCodeCursor {
        key: key.parse().map_err(|_| malformed())?,
        code: code.to_owned(),
    })
}

impl ComAtprotoAdmin for AppState {
    type DeleteAccountAuth = AdminAuth;
    type DisableAccountInvitesAuth = AdminAuth;
    type DisableInviteCodesAuth = AdminAuth;
    type EnableAccountInvitesAuth = AdminAuth;
    type GetAccountInfoAuth = AdminAuth;
    type GetAccountInfosAuth = AdminAuth;
    type GetInviteCodesAuth = AdminAuth;
    type GetSubjectStatusAuth = AdminAuth;
    type SearchAccountsAuth = AdminAuth;
    type SendEmailAuth = AdminAuth;
    type UpdateAccountEmailAuth = AdminAuth;
    type UpdateAccountHandleAuth = AdminAuth;
    type UpdateAccountPasswordAuth = AdminAuth;
    type UpdateAccountSigningKeyAuth = AdminAuth;
    type UpdateSubjectStatusAuth = AdminAuth;

    async fn delete_account(
        &self,
        _: AdminAuth,
        req: XrpcRequest<delete_account::Params, delete_account::Input>,
    ) -> Result<(), XrpcError<delete_account::Error>> {
        let did = req.input.did.as_str();
        require_account(self, did).await?;
        email::purge_account(self, did).await?;
        tracing::info!(did, "account deleted by admin");
        Ok(())
    }

    async fn disable_account_invites(
        &self,
        _: AdminAuth,
        req: XrpcRequest<disable_account_invites::Params, disable_account_invites::Input>,
    ) -> Result<(), XrpcError<disable_account_invites::Error>> {
        let did = req.input.account.as_str();
        require_account(self, did).await?;
        self.store
            .accounts()
            .set_invites_disabled(did, true)
            .await
            .map_err(ApiError::from)?;
        Ok(())
    }

    async fn enable_account_invites(
        &self,
        _: AdminAuth,
        req: XrpcRequest<enable_account_invites::Params, enable_account_invites::Input>,
    ) -> Result<(), XrpcError<enable_account_invites::Error>> {
        let did = req.input.account.as_str();
        require_account(self, did).await?;
        self.store
            .accounts()
            .set_invites_disabled(did, false)
            .await
            .map_err(ApiError::from)?;
        Ok(())
    }

    async fn disable_invite_codes(
        &self,
        _: AdminAuth,
        req: XrpcRequest<disable_invite_codes::Params, disable_invite_codes::Input>,
    ) -> Result<(), XrpcError<disable_invite_codes::Error>> {
        let codes = req.input.codes.unwrap_or_default();
        let accounts = req.input.accounts.unwrap_or_default();
        if accounts.iter().any(|a| a == "admin") {
            return Err(XrpcError::invalid_request(
                "cannot disable admin invite codes",
            ));
        }
        self.store
            .accounts()
            .disable_invite_codes(&codes, &accounts)
            .await
            .map_err(ApiError::from)?;
        Ok(())
    }

    async fn get_invite_codes(
        &self,
        _: AdminAuth,
        req: XrpcRequest<get_invite_codes::Params, ()>,
    ) -> Result<get_invite_codes::Output, XrpcError<get_invite_codes::Error>> {
        let params = req.params;
        let sort = match params.sort.as_ref().map(|s| s.as_str()).unwrap_or("recent") {
            "recent" => InviteCodeSort::Recent,
            "usage" => InviteCodeSort::Usage,
            other => {
                return Err(XrpcError::invalid_request(format!(
                    "unknown sort method: {other}"
                )))
            }
        };
        let limit = params
            .limit
            .unwrap_or(INVITE_PAGE_DEFAULT)
            .clamp(1, INVITE_PAGE_MAX);
        let after = params
            .cursor
            .as_deref()
            .map(parse_invite_cursor)
            .transpose()?;
        let rows = self
            .store
            .accounts()
            .list_invite_codes(sort, after.as_ref(), u32::try_from(limit).unwrap_or(100))
            .await
            .map_err(ApiError::from)?;
        let cursor = rows.last().map(|c| {
            let key = match sort {
                InviteCodeSort::Recent => c.created_at,
                InviteCodeSort::Usage => c.uses.len() as i64,
            };
            format!("{key}::{}", c.code)
        });
        let codes = rows
            .into_iter()
            .map(invite_code_view)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(get_invite_codes::Output {
            codes,
            cursor,
            extra_data: Default::default(),
        })
    }

    async fn get_account_info(
        &self,
        _: AdminAuth,
        req: XrpcRequest<get_account_info::Params, ()>,
    ) -> Result<get_account_info::Output, XrpcError<get_account_info::Error>> {
        let did = req.params.did.as_str();
        let account = existing(self, did)
            .await?
            .ok_or_else(|| not_found("Account not found"))?;
        Ok(account_view(self, account).await?)
    }

    async fn get_account_infos(
        &self,
        _: AdminAuth,
        req: XrpcRequest<get_account_infos::Params, ()>,
    ) -> Result<get_account_infos::Output, XrpcError<get_account_infos::Error>> {
        let mut infos = Vec::new();
        for did in &req.params.dids {
            if let Some(account) = existing(self, did.as_str()).await? {
                infos.push(account_view(self, account).await?);
            }
        }
        Ok(get_account_infos::Output {
            infos,
            extra_data: Default::default(),
        })
    }

    async fn search_accounts(
        &self,
        _: AdminAuth,
        req: XrpcRequest<search_accounts::Params, ()>,
    ) -> Result<search_accounts::Output, XrpcError<search_accounts::Error>> {
        let params = req.params;
        let limit = params
            .limit
            .unwrap_or(SEARCH_PAGE_DEFAULT)
            .clamp(1, SEARCH_PAGE_MAX);
        let query = params
            .email
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty());
        let found = self
            .store
            .accounts()
            .search(
                query,
                params.cursor.as_deref(),
                u32::try_from(limit).unwrap_or(50),
            )
            .await
            .map_err(ApiError::from)?;
        let cursor = (found.len() as i64 == limit)
            .then(|| found.last().map(|a| a.did.clone()))
            .flatten();
        let mut accounts = Vec::with_capacity(found.len());
        for account in found {
            accounts.push(account_view(self, account).await?);
        }
        Ok(search_accounts::Output {
            accounts,
            cursor,
            extra_data: Default::default(),
        })
    }

    async fn get_subject_status(
        &self,
        _: AdminAuth,
        req: XrpcRequest<get_subject_status::Params, ()>,
    ) -> Result<get_subject_status::Output, XrpcError<get_subject_status::Error>> {
        use get_subject_status::{Output, OutputSubject};
        let params = req.params;
        if let Some(blob) = &params.blob {
            let Some(did) = &params.did else {
                return Err(XrpcError::invalid_request(
                    "Must provide a did to request blob state",
                ));
            };
            let cid = parse_cid(blob)?;
            let meta = self
                .store
                .blobs()
                .get_meta(did.as_str(), &cid)
                .await
                .map_err(ApiError::from)?
                .ok_or_else(|| not_found("Subject not found"))?;
            return Ok(Output {
                subject: OutputSubject::RepoBlobRef(RepoBlobRef {
                    did: did.clone(),
                    cid: blob.clone(),
                    record_uri: None,
                    extra_data: Default::default(),
                }),
                takedown: Some(status_attr(meta.takedown_ref.as_deref())),
                deactivated: None,
                extra_data: Default::default(),
            });
        }
        if let Some(uri) = &params.uri {
            let key = record_key(self, uri).await?;
            let record = match key {
                Some((did, collection, rkey)) => self
                    .store
                    .repo()
                    .get_record(&did, &collection, &rkey)
                    .await
                    .map_err(ApiError::from)?,
                None => None,
            };
            let record = record.ok_or_else(|| not_found("Subject not found"))?;
            return Ok(Output {
                subject: OutputSubject::StrongRef(strong_ref::Main {
                    uri: uri.clone(),
                    cid: cid_string(&record.cid)?,
                    extra_data: Default::default(),
                }),
                takedown: Some(status_attr(record.takedown_ref.as_deref())),
                deactivated: None,
                extra_data: Default::default(),
            });
        }
        if let Some(did) = &params.did {
            let account = existing(self, did.as_str())
                .await?
                .ok_or_else(|| not_found("Subject not found"))?;
            return Ok(Output {
                subject: OutputSubject::RepoRef(RepoRef {
                    did: did.clone(),
                    extra_data: Default::default(),
                }),
                takedown: Some(status_attr(account.takedown_ref.as_deref())),
                deactivated: Some(StatusAttr {
                    applied: account.deactivated_at.is_some(),
                    ref_: None,
                    extra_data: Default::default(),
                }),
                extra_data: Default::default(),
            });
        }
        Err(XrpcError::invalid_request("No provided subject"))
    }

    async fn update_subject_status(
        &self,
        _: AdminAuth,
        req: XrpcRequest<update_subject_status::Params, update_subject_status::Input>,
    ) -> Result<update_subject_status::Output, XrpcError<update_subject_status::Error>> {
        use update_subject_status::{InputSubject, OutputSubject};
        let input = req.input;
        let takedown = input.takedown.as_ref();
        let subject = match input.subject {
            InputSubject::RepoRef(r) => {
                update_account_status(self, r.did.as_str(), takedown, input.deactivated.as_ref())
                    .await?;
                OutputSubject::RepoRef(r)
            }
            InputSubject::StrongRef(r) => {
                if let Some(attr) = takedown {
                    // A record that is not (or no longer) here: nothing to do.
                    if let Some((did, collection, rkey)) = record_key(self, &r.uri).await? {
                        self.store
                            .repo()
                            .set_record_takedown(
                                &did,
                                &collection,
                                &rkey,
                                takedown_ref(attr).as_deref(),
                            )
                            .await
                            .map_err(ApiError::from)?;
                    }
                }
                OutputSubject::StrongRef(r)
            }
            InputSubject::RepoBlobRef(r) => {
                if let Some(attr) = takedown {
                    let cid = parse_cid(&r.cid)?;
                    self.store
                        .blobs()
                        .set_takedown(r.did.as_str(), &cid, takedown_ref(attr).as_deref())
                        .await
                        .map_err(ApiError::from)?;
                }
                OutputSubject::RepoBlobRef(r)
            }
            InputSubject::Unknown(v) => {
                let ty = v.type_name().unwrap_or("").to_owned();
                return Err(XrpcError::invalid_request(format!(
                    "Invalid subject ({ty})"
                )));
            }
        };
        Ok(update_subject_status::Output {
            subject,
            takedown: input.takedown,
            extra_data: Default::default(),
        })
    }

    async fn send_email(
        &self,
        _: AdminAuth,
        req: XrpcRequest<send_email::Params, send_email::Input>,
    ) -> Result<send_email::Output, XrpcError<send_email::Error>> {
        let input = req.input;
        let account = existing(self, input.recipient_did.as_str())
            .await?
            .ok_or_else(|| XrpcError::invalid_request("Recipient not found"))?;
        let Some(to) = account.email.as_deref() else {
            return Err(XrpcError::invalid_request(
                "account does not have an email address",
            ));
        };
        if self.config.email.is_none() {
            tracing::warn!(
                did = %account.did,
                "sendEmail: no email transport configured (PDS_EMAIL_SMTP_URL); not sent"
            );
            return Ok(send_email::Output {
                sent: false,
                extra_data: Default::default(),
            });
        }
        let message = Message::Moderation {
            subject: input
                .subject
                .clone()
                .unwrap_or_else(|| DEFAULT_EMAIL_SUBJECT.to_owned()),
            content: input.content,
        };
        email::send_mail(self, to, &message).await?;
        tracing::info!(
            recipient = %account.did,
            sender = %input.sender_did,
            comment = input.comment.as_deref().unwrap_or(""),
            "moderation email queued"
        );
        Ok(send_email::Output {
            sent: true,
            extra_data: Default::default(),
        })
    }

    async fn update_account_email(
        &self,
        _: AdminAuth,
        req: XrpcRequest<update_account_email::Params, update_account_email::Input>,
    ) -> Result<(), XrpcError<update_account_email::Error>> {
        let input = req.input;
        let accounts = self.store.accounts();
        let who = input.account.as_str();
        let account = find_account(self, &input.account)
            .await?
            .ok_or_else(|| XrpcError::invalid_request(format!("Account does not exist: {who}")))?;
        let email = input.email.trim().to_lowercase();
        if !is_valid_email(&email) {
            return Err(XrpcError::invalid_request(
                "This email address is not supported, please use a different email.",
            ));
        }
        match accounts.update_email(&account.did, Some(&email)).await {
            Ok(()) => Ok(()),
            Err(StoreError::EmailTaken) => Err(XrpcError::invalid_request(
                "This email address is already in use, please use a different email.",
            )),
            Err(e) => Err(ApiError::from(e).into()),
        }
    }

    async fn update_account_handle(
        &self,
        _: AdminAuth,
        req: XrpcRequest<update_account_handle::Params, update_account_handle::Input>,
    ) -> Result<(), XrpcError<update_account_handle::Error>> {
        let did = req.input.did.as_str();
        require_account(self, did).await?;
        identity::set_handle(self, did, req.input.handle.as_str(), true).await
    }

    async fn update_account_password(
        &self,
        _: AdminAuth,
        req: XrpcRequest<update_account_password::Params, update_account_password::Input>,
    ) -> Result<(), XrpcError<update_account_password::Error>> {
        let input = req.input;
        let did = input.did.as_str();
        let length = input.password.chars().count();
        if length == 0 || length > PASSWORD_MAX_LENGTH {
            return Err(XrpcError::invalid_request("Invalid password length."));
        }
        require_account(self, did).await?;
        let hash = session::hash(&input.password).await?;
        self.store
            .accounts()
            .update_password(did, &hash, true)
            .await
            .map_err(ApiError::from)?;
        tracing::info!(did, "password set by admin; sessions revoked");
        Ok(())
    }

    async fn update_account_signing_key(
        &self,
        _: AdminAuth,
        req: XrpcRequest<update_account_signing_key::Params, update_account_signing_key::Input>,
    ) -> Result<(), XrpcError<update_account_signing_key::Error>> {
        let input = req.input;
        let did = input.did.as_str();
        let key = input.signing_key.as_str();
        if atproto_types::crypto::PublicKey::from_did_key(key).is_err() {
            return Err(XrpcError::invalid_request(format!(
                "Not a did:key signing key: {key}"
            )));
        }
        require_account(self, did).await?;
        if !did.starts_with("did:plc:") {
            return Err(XrpcError::invalid_request(
                "Only a did:plc's signing key can be updated by this server",
            ));
        }
        let (mut fields, prev) = identity::last_op_fields(self, did).await?;
        if !fields.verification_methods.is_object() {
            fields.verification_methods = Json::Object(Default::default());
        }
        fields.verification_methods["atproto"] = Json::String(key.to_owned());
        let op = plc::update_op(&fields, &prev, &self.plc_rotation_key).map_err(ApiError::from)?;
        self.plc.submit(did, &op).await.map_err(ApiError::from)?;
        self.identity.invalidate(did);
        self.store
            .sequencer()
            .append(identity_event(did, None))
            .await
            .map_err(ApiError::from)?;
        tracing::info!(did, key, "DID document signing key updated by admin");
        Ok(())
    }
}
