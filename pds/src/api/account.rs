//! `com.atproto.server.createAccount`: a new did:plc on this server's
//! handle domains, or an existing DID migrating in.
//!
//! Order (the reference's checks and answers): no `plcOp`; password at
//! most 256 characters; an invite code when required; an email, well
//! formed; the handle's rules; the invite code still usable; handle and
//! email free. Then a K256 signing key is made, the did:plc genesis
//! operation signed with the server's rotation key and posted to the PLC
//! directory, and the account, its encrypted signing key, its first
//! (empty) repository commit and the `#identity`, `#account`, `#commit`,
//! `#sync` events are stored in one transaction.
//!
//! A `did` of `did:web:<handle>` with a service-domain handle asks for a
//! did:web hosted here (beyond the reference): no PLC operation, the
//! document is served by `/.well-known/did.json` on the handle's host.
//!
//! Migration (the reference's): with any other `did`, the request must carry a
//! service JWT issued by that DID for this service and method (see
//! [`crate::auth::OptionalServiceAuth`]); the handle may then be an
//! external one that resolves to the DID. No PLC operation is sent: the
//! account is created deactivated with the signing key reserved for the DID
//! by `reserveSigningKey` (else a new one) and an empty
//! repository, and no events are sequenced until it is activated (when
//! its DID document must point here: [`crate::identity::check_did_doc_for_service`]).

use atproto_types::crypto::{Algorithm, PrivateKey, PublicKey};
use atproto_types::data::Value;
use atproto_types::lexicons::com::atproto::server::create_account::{Error, Input, Output};
use atproto_types::xrpc::XrpcError;
use pds_repo::events::{account_event, identity_event};
use pds_store::{AccountStatus, NewAccount, StoreError};

use crate::error::ApiError;
use crate::handle::{self, HandleError};
use crate::identity::{doc, is_service_handle};
use crate::jwt::Scope;
use crate::plc::{self, GenesisInput};
use crate::session;
use crate::state::AppState;

/// Longest password accepted (the reference's).
pub const PASSWORD_MAX_LENGTH: usize = 256;

type Res<T> = Result<T, XrpcError<Error>>;

fn named(e: Error, message: impl Into<String>) -> XrpcError<Error> {
    XrpcError::from(e).with_message(message)
}

/// A plausible email address: one `@`, a non-empty local part of allowed
/// characters, a domain of valid labels with a dot.
pub fn is_valid_email(email: &str) -> bool {
    if email.len() > 254 {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// Handles `com.atproto.server.createAccount`.
///
/// `requester` is the DID of the request's verified service JWT, if any.
pub async fn create_account(
    state: &AppState,
    input: Input,
    requester: Option<&str>,
) -> Res<Output> {
    let config = &state.config;
    if input.plc_op.is_some() {
        return Err(XrpcError::invalid_request("Unsupported input: \"plcOp\""));
    }
    if let Some(pw) = &input.password {
        if pw.chars().count() > PASSWORD_MAX_LENGTH {
            return Err(XrpcError::invalid_request(format!(
                "Password too long. Maximum length is {PASSWORD_MAX_LENGTH} characters."
            )));
        }
    }
    let invite_code = input.invite_code.as_deref().filter(|c| !c.is_empty());
    if config.invite_required && invite_code.is_none() {
        return Err(named(Error::InvalidInviteCode, "No invite code provided"));
    }
    let email = match input.email.as_deref().map(str::trim) {
        None | Some("") => return Err(XrpcError::invalid_request("Email is required")),
        Some(e) if !is_valid_email(e) => {
            return Err(XrpcError::invalid_request(
                "This email address is not supported, please use a different email.",
            ))
        }
        Some(e) => e.to_lowercase(),
    };
    let handle = match handle::normalize_and_validate(input.handle.as_str(), &config.handle_domains)
    {
        Ok(h) => h,
        Err(HandleError::Invalid(m)) => return Err(named(Error::InvalidHandle, m)),
        Err(HandleError::UnsupportedDomain) => match &input.did {
            // A migrating account may keep an external handle that
            // resolves to its DID.
            Some(did) => {
                let h = input.handle.as_str().to_ascii_lowercase();
                if state.identity.resolve_handle(&h).await.as_deref() != Some(did.as_str()) {
                    return Err(XrpcError::invalid_request(
                        "External handle did not resolve to DID",
                    ));
                }
                h
            }
            None => {
                return Err(named(
                    Error::UnsupportedDomain,
                    "Not a supported handle domain",
                ))
            }
        },
        Err(HandleError::Reserved) => {
            return Err(named(Error::HandleNotAvailable, "Reserved handle"))
        }
    };
    let accounts = state.store.accounts();
    if config.invite_required {
        if let Some(code) = invite_code {
            let usable = accounts
                .get_invite_code(code)
                .await
                .map_err(ApiError::from)?
                .is_some_and(|c| !c.disabled && (c.uses.len() as i64) < c.available_uses);
            if !usable {
                return Err(named(
                    Error::InvalidInviteCode,
                    "Provided invite code not available",
                ));
            }
        }
    }
    if accounts
        .get_by_handle(&handle)
        .await
        .map_err(ApiError::from)?
        .is_some_and(|a| a.status != AccountStatus::Deleted)
    {
        return Err(XrpcError::invalid_request(format!(
            "Handle already taken: {handle}"
        )));
    }
    if accounts
        .get_by_email(&email)
        .await
        .map_err(ApiError::from)?
        .is_some_and(|a| a.status != AccountStatus::Deleted)
    {
        return Err(XrpcError::invalid_request(format!(
            "Email already taken: {email}"
        )));
    }
    // A did:web named after a service-domain handle is hosted here: this
    // server answers `https://<handle>/.well-known/did.json` itself, so it
    // needs no proof of control.
    let hosted_web = input
        .did
        .as_ref()
        .map(|d| d.as_str())
        .filter(|d| requester != Some(*d) && is_hosted_did_web(d, &handle, &config.handle_domains))
        .map(str::to_owned);
    if let Some(did) = input.did.as_ref().filter(|_| hosted_web.is_none()) {
        if requester != Some(did.as_str()) {
            return Err(XrpcError::authentication_required(format!(
                "Missing auth to create account with did: {}",
                did.as_str()
            )));
        }
        let password_hash = match &input.password {
            Some(pw) => Some(session::hash(pw).await?),
            None => None,
        };
        return create_migrating(
            state,
            Migrating {
                did: did.as_str(),
                handle: &handle,
                email: &email,
                password_hash,
                invite_code,
            },
        )
        .await;
    }
    let mut rotation_keys = Vec::new();
    if let Some(k) = input.recovery_key.as_ref().filter(|_| hosted_web.is_none()) {
        if !k.starts_with("did:key:") || PublicKey::from_did_key(k).is_err() {
            return Err(XrpcError::invalid_request(
                "recoveryKey must be a did:key of a P-256 or secp256k1 key",
            ));
        }
        rotation_keys.push(k.clone());
    }
    if let Some(k) = &config.recovery_did_key {
        rotation_keys.push(k.clone());
    }
    rotation_keys.push(state.plc_rotation_key.did_key());

    let password_hash = match &input.password {
        Some(pw) => Some(session::hash(pw).await?),
        None => None,
    };
    let signing_key = PrivateKey::generate(Algorithm::K256);
    let signing_did_key = signing_key.did_key();
    let genesis_input = GenesisInput {
        signing_key: &signing_did_key,
        rotation_keys: &rotation_keys,
        handle: &handle,
        pds_endpoint: &config.public_url,
    };
    let (did, did_doc, plc_op) = match hosted_web {
        Some(did) => {
            let doc = doc::build(&did, Some(&handle), &signing_did_key, &config.public_url);
            (did, doc, None)
        }
        None => {
            let op = plc::genesis(&genesis_input, &state.plc_rotation_key);
            let doc = plc::did_document(&op.did, &genesis_input);
            (op.did, doc, Some(op.op))
        }
    };

    let sealed = state
        .key_cipher
        .seal(&did, &signing_key)
        .map_err(ApiError::from)?;
    let genesis = state
        .repo
        .prepare_genesis(&did, &signing_key, Vec::new())
        .map_err(ApiError::from)?;
    let sync = genesis.sync_event();
    let mut data = genesis.data;
    let commit_events = std::mem::take(&mut data.events);
    let mut events = vec![
        identity_event(&did, Some(&handle)),
        account_event(&did, true, None),
    ];
    events.extend(commit_events);
    events.push(sync);
    data.events = events;

    if let Some(op) = &plc_op {
        state.plc.submit(&did, op).await.map_err(ApiError::from)?;
    }

    let new_account = NewAccount {
        did: did.clone(),
        handle: handle.clone(),
        email: Some(email.clone()),
        password_hash,
        signing_key_ciphertext: Some(sealed),
        invite_code: if config.invite_required {
            invite_code.map(str::to_owned)
        } else {
            None
        },
        status: AccountStatus::Active,
    };
    accounts
        .create(new_account, Some(data))
        .await
        .map_err(|e| create_error(e, &did, &handle, &email))?;
    tracing::info!(%did, %handle, "account created");

    let tokens = session::create_session(state, &did, Scope::Access, None).await?;
    Ok(Output {
        access_jwt: tokens.access_jwt,
        refresh_jwt: tokens.refresh_jwt,
        did: did
            .parse()
            .map_err(|e| ApiError::Internal(format!("new DID {did}: {e}")))?,
        did_doc: Value::from_json(&did_doc).ok(),
        handle: handle
            .parse()
            .map_err(|e| ApiError::Internal(format!("new handle {handle}: {e}")))?,
        extra_data: Default::default(),
    })
}

/// The answer to a store refusal of a new account (a race lost to another
/// creation since the checks: the reference's messages).
fn create_error(e: StoreError, did: &str, handle: &str, email: &str) -> XrpcError<Error> {
    match e {
        StoreError::HandleTaken => {
            XrpcError::invalid_request(format!("Handle already taken: {handle}"))
        }
        StoreError::EmailTaken => {
            XrpcError::invalid_request(format!("Email already taken: {email}"))
        }
        StoreError::DidTaken => {
            XrpcError::invalid_request(format!("Account already exists: {did}"))
        }
        StoreError::InviteCodeUnavailable => named(
            Error::InvalidInviteCode,
            "Provided invite code not available",
        ),
        e => ApiError::from(e).into(),
    }
}

/// Whether `did` is the did:web this server hosts for `handle`:
/// `did:web:<handle>` with the handle on one of the service's domains.
fn is_hosted_did_web(did: &str, handle: &str, domains: &[String]) -> bool {
    did.strip_prefix("did:web:") == Some(handle) && is_service_handle(handle, domains)
}

/// A migrating account's checked inputs.
struct Migrating<'a> {
    did: &'a str,
    handle: &'a str,
    email: &'a str,
    password_hash: Option<String>,
    invite_code: Option<&'a str>,
}

/// The key reserved for `did` by `com.atproto.server.reserveSigningKey`,
/// taken (a reserved key serves one account), or a new K256 key when none
/// is reserved.
async fn reserved_or_new_key(state: &AppState, did: &str) -> Result<PrivateKey, ApiError> {
    let reserved = state.store.accounts().reserved_key_for_did(did).await?;
    if let Some(reserved) = reserved {
        if let Some(key) = super::signing::take_reserved_key(state, did, &reserved.key_did).await? {
            return Ok(key);
        }
    }
    Ok(PrivateKey::generate(Algorithm::K256))
}

/// Creates a deactivated account for an existing DID (account migration):
/// the signing key reserved for the DID (or a new one), an empty
/// repository, no events.
async fn create_migrating(state: &AppState, m: Migrating<'_>) -> Res<Output> {
    let did = m.did;
    let handle = m.handle;
    let email = m.email;
    // As the reference: the key reserved for this DID with
    // reserveSigningKey (the one the migration's PLC operation names), else
    // a new one.
    let signing_key = reserved_or_new_key(state, did).await?;
    let sealed = state
        .key_cipher
        .seal(did, &signing_key)
        .map_err(ApiError::from)?;
    let genesis = state
        .repo
        .prepare_genesis(did, &signing_key, Vec::new())
        .map_err(ApiError::from)?;
    let mut data = genesis.data;
    // A deactivated account announces nothing until it is activated.
    data.events.clear();
    let new_account = NewAccount {
        did: did.to_owned(),
        handle: handle.to_owned(),
        email: Some(email.to_owned()),
        password_hash: m.password_hash,
        signing_key_ciphertext: Some(sealed),
        invite_code: if state.config.invite_required {
            m.invite_code.map(str::to_owned)
        } else {
            None
        },
        status: AccountStatus::Deactivated,
    };
    state
        .store
        .accounts()
        .create(new_account, Some(data))
        .await
        .map_err(|e| create_error(e, did, handle, email))?;
    tracing::info!(%did, %handle, "migrating account created (deactivated)");
    let did_doc = match state.identity.resolve_did(did, true).await {
        Ok(doc) => doc.and_then(|d| Value::from_json(&d).ok()),
        Err(e) => {
            tracing::warn!(%did, error = %e, "could not resolve a migrating account's DID");
            None
        }
    };
    let tokens = session::create_session(state, did, Scope::Access, None).await?;
    Ok(Output {
        access_jwt: tokens.access_jwt,
        refresh_jwt: tokens.refresh_jwt,
        did: did
            .parse()
            .map_err(|e| ApiError::Internal(format!("DID {did}: {e}")))?,
        did_doc,
        handle: handle
            .parse()
            .map_err(|e| ApiError::Internal(format!("handle {handle}: {e}")))?,
        extra_data: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "alice@example.com",
            "a.b+tag@sub.example.org",
            "x_y-z@example.co",
        ] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@example",
            "alice@@example.com",
            "al ice@example.com",
            "alice@exa mple.com",
            ".alice@example.com",
            "alice..b@example.com",
            "alice@-example.com",
            "alice@example.c0m",
            "alice@example..com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
