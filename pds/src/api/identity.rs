//! `com.atproto.identity`: handle resolution and updates, and the PLC
//! operation flow (recommended credentials, emailed signature token,
//! signing and submitting operations), as the reference PDS.
//!
//! `resolveDid`, `resolveIdentity` and `refreshIdentity` are AppView
//! methods the reference PDS does not serve itself; they stay unmounted.

use atproto_types::lexicons::com::atproto::identity::{
    get_recommended_did_credentials, request_plc_operation_signature, resolve_handle,
    sign_plc_operation, submit_plc_operation, update_handle, ComAtprotoIdentity,
};
use atproto_types::syntax::Did;
use atproto_types::xrpc::http::StatusCode;
use atproto_types::xrpc::{NoAuth, NotImplemented, XrpcError, XrpcRequest};
use pds_notify::{Channel, Message};
use pds_repo::events::identity_event;
use pds_store::password::token_hash;
use pds_store::{AccountStatus, StoreError, TokenPurpose};
use serde_json::{json, Value as Json};

use crate::auth::{
    AccessFullDeactivatedOk, AccessFullTakendownOk, AccessStandard, AccessStandardDeactivatedOk,
};
use crate::error::ApiError;
use crate::handle::{self, HandleError};
use crate::identity::{self, account_signing_key};
use crate::plc::{self, OpFields};
use crate::rate_limit::{self, Key};
use crate::state::AppState;

/// How long an emailed PLC-operation token is valid (the reference's).
pub const PLC_TOKEN_TTL_MS: i64 = 15 * 60 * 1000;

fn bad<E>(name: &'static str, message: impl Into<String>) -> XrpcError<E> {
    XrpcError::new(StatusCode::BAD_REQUEST, name, Some(message.into()))
}

/// Normalises and checks a handle an account asks for (the reference's
/// `normalizeAndValidateHandle` with a DID): service-domain handles follow
/// the service's rules (reserved names only with `allow_reserved`); any
/// other must resolve (DNS TXT or HTTPS) to `did`.
async fn validate_handle_for<E>(
    state: &AppState,
    requested: &str,
    did: &str,
    allow_reserved: bool,
) -> Result<String, XrpcError<E>> {
    match handle::normalize_and_validate(requested, &state.config.handle_domains) {
        Ok(h) => Ok(h),
        Err(HandleError::Reserved) if allow_reserved => Ok(requested.to_ascii_lowercase()),
        Err(HandleError::Invalid(m)) => Err(bad("InvalidHandle", m)),
        Err(HandleError::Reserved) => Err(bad("HandleNotAvailable", "Reserved handle")),
        Err(HandleError::UnsupportedDomain) => {
            let h = requested.to_ascii_lowercase();
            match state.identity.resolve_handle(&h).await {
                Some(resolved) if resolved == did => Ok(h),
                _ => Err(XrpcError::invalid_request(
                    "External handle did not resolve to DID",
                )),
            }
        }
    }
}

/// The fields of the DID's last PLC operation and that operation's CID;
/// `Err` "Did is tombstoned" for a tombstone.
pub(crate) async fn last_op_fields<E>(
    state: &AppState,
    did: &str,
) -> Result<(OpFields, String), XrpcError<E>> {
    let last = state.plc.last_op(did).await.map_err(ApiError::from)?;
    let fields =
        OpFields::of(&last).ok_or_else(|| XrpcError::invalid_request("Did is tombstoned"))?;
    let prev = plc::op_cid(&last).map_err(ApiError::from)?;
    Ok((fields, prev))
}

/// Whether `v` is a JSON object whose values are all strings.
fn is_string_map(v: &Json) -> bool {
    v.as_object()
        .is_some_and(|m| m.values().all(Json::is_string))
}

/// Whether `v` is a JSON object of `{type, endpoint}` string pairs.
fn is_services_map(v: &Json) -> bool {
    v.as_object().is_some_and(|m| {
        m.values().all(|s| {
            s.get("type").is_some_and(Json::is_string)
                && s.get("endpoint").is_some_and(Json::is_string)
        })
    })
}

fn is_string_array(v: &Json) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(Json::is_string))
}

/// Whether `op` has the shape of a signed `plc_operation` (the reference's
/// `check.is(op, plc.def.operation)`).
pub fn is_plc_operation(op: &Json) -> bool {
    op.get("type").and_then(Json::as_str) == Some("plc_operation")
        && op.get("rotationKeys").is_some_and(is_string_array)
        && op.get("verificationMethods").is_some_and(is_string_map)
        && op.get("alsoKnownAs").is_some_and(is_string_array)
        && op.get("services").is_some_and(is_services_map)
        && op.get("prev").is_some_and(|p| p.is_null() || p.is_string())
        && op.get("sig").is_some_and(Json::is_string)
}

/// Gives account `did` the handle `requested` (`updateHandle`, and the
/// admin's `updateAccountHandle` with `allow_reserved`): checks it, updates
/// the DID document (did:plc) or checks it names the handle (did:web),
/// stores it and sequences `#identity`. Asking for the account's current
/// handle only announces it again.
pub async fn set_handle<E>(
    state: &AppState,
    did: &str,
    requested: &str,
    allow_reserved: bool,
) -> Result<(), XrpcError<E>> {
    let handle = validate_handle_for(state, requested, did, allow_reserved).await?;
    let accounts = state.store.accounts();
    let holder = accounts
        .get_by_handle(&handle)
        .await
        .map_err(ApiError::from)?
        .filter(|a| a.status != AccountStatus::Deleted);
    match holder {
        Some(a) if a.did != did => {
            return Err(XrpcError::invalid_request(format!(
                "Handle already taken: {handle}"
            )))
        }
        Some(_) => {
            // Already this account's: announce it again.
            state
                .store
                .sequencer()
                .append(identity_event(did, Some(&handle)))
                .await
                .map_err(ApiError::from)?;
            return Ok(());
        }
        None => {}
    }
    if did.starts_with("did:plc:") {
        let (mut fields, prev) = last_op_fields(state, did).await?;
        let aka = format!("at://{handle}");
        fields
            .also_known_as
            .retain(|a| a.as_str().is_some_and(|s| !s.starts_with("at://")));
        fields.also_known_as.insert(0, Json::String(aka));
        let op = plc::update_op(&fields, &prev, &state.plc_rotation_key).map_err(ApiError::from)?;
        state.plc.submit(did, &op).await.map_err(ApiError::from)?;
    } else {
        let data = state
            .identity
            .resolve_atproto_data(did, true)
            .await
            .ok()
            .flatten();
        if data.and_then(|d| d.handle).as_deref() != Some(handle.as_str()) {
            return Err(XrpcError::invalid_request(
                "DID is not properly configured for handle",
            ));
        }
    }
    state.identity.invalidate(did);
    match accounts
        .update_handle(did, &handle, vec![identity_event(did, Some(&handle))])
        .await
    {
        Ok(_) => {}
        Err(StoreError::HandleTaken) => {
            return Err(XrpcError::invalid_request(format!(
                "Handle already taken: {handle}"
            )))
        }
        Err(e) => return Err(ApiError::from(e).into()),
    }
    tracing::info!(did, %handle, "handle updated");
    Ok(())
}

impl ComAtprotoIdentity for AppState {
    type GetRecommendedDidCredentialsAuth = AccessStandardDeactivatedOk;
    type RefreshIdentityAuth = NotImplemented;
    type RequestPlcOperationSignatureAuth = AccessFullTakendownOk;
    type ResolveDidAuth = NotImplemented;
    type ResolveHandleAuth = NoAuth;
    type ResolveIdentityAuth = NotImplemented;
    type SignPlcOperationAuth = AccessFullTakendownOk;
    type SubmitPlcOperationAuth = AccessFullDeactivatedOk;
    type UpdateHandleAuth = AccessStandard;

    async fn resolve_handle(
        &self,
        _: NoAuth,
        req: XrpcRequest<resolve_handle::Params, ()>,
    ) -> Result<resolve_handle::Output, XrpcError<resolve_handle::Error>> {
        let handle = req.params.handle.as_str().to_ascii_lowercase();
        let local = self
            .store
            .accounts()
            .get_by_handle(&handle)
            .await
            .map_err(ApiError::from)?
            .filter(|a| a.status == AccountStatus::Active);
        let did = match local {
            Some(account) => Some(account.did),
            // A handle of ours that no account holds: not found.
            None if identity::is_service_handle(&handle, &self.config.handle_domains) => None,
            None => self.identity.resolve_handle(&handle).await,
        };
        let did = did.ok_or_else(|| XrpcError::invalid_request("Unable to resolve handle"))?;
        Ok(resolve_handle::Output {
            did: did
                .parse::<Did>()
                .map_err(|_| XrpcError::invalid_request("Unable to resolve handle"))?,
            extra_data: Default::default(),
        })
    }

    async fn update_handle(
        &self,
        auth: AccessStandard,
        req: XrpcRequest<update_handle::Params, update_handle::Input>,
    ) -> Result<(), XrpcError<update_handle::Error>> {
        let did = auth.did.as_str();
        let limits = rate_limit::UPDATE_HANDLE;
        rate_limit::consume(self, req.extensions(), limits, Key::Did(did), 1).await?;
        set_handle(self, did, req.input.handle.as_str(), false).await
    }

    async fn get_recommended_did_credentials(
        &self,
        auth: AccessStandardDeactivatedOk,
        _: XrpcRequest<get_recommended_did_credentials::Params, ()>,
    ) -> Result<
        get_recommended_did_credentials::Output,
        XrpcError<get_recommended_did_credentials::Error>,
    > {
        let key = account_signing_key(self, &auth.did).await?;
        let mut rotation_keys = vec![self.plc_rotation_key.did_key()];
        if let Some(k) = &self.config.recovery_did_key {
            rotation_keys.insert(0, k.clone());
        }
        let to_value = |j: Json| {
            atproto_types::data::Value::from_json(&j)
                .map_err(|e| ApiError::Internal(format!("credentials: {e}")))
        };
        Ok(get_recommended_did_credentials::Output {
            also_known_as: auth
                .account
                .handle
                .as_ref()
                .map(|h| vec![format!("at://{h}")]),
            rotation_keys: Some(rotation_keys),
            verification_methods: Some(to_value(json!({ "atproto": key.did_key() }))?),
            services: Some(to_value(json!({
                "atproto_pds": {
                    "type": "AtprotoPersonalDataServer",
                    "endpoint": self.config.public_url,
                }
            }))?),
            extra_data: Default::default(),
        })
    }

    async fn request_plc_operation_signature(
        &self,
        auth: AccessFullTakendownOk,
        _: XrpcRequest<request_plc_operation_signature::Params, ()>,
    ) -> Result<(), XrpcError<request_plc_operation_signature::Error>> {
        let Some(email) = auth.account.email.clone() else {
            return Err(XrpcError::invalid_request(
                "account does not have an email address",
            ));
        };
        let token = crate::random::token();
        self.store
            .accounts()
            .put_token(TokenPurpose::PlcOperation, &auth.did, &token_hash(&token))
            .await
            .map_err(ApiError::from)?;
        self.notifier
            .enqueue(Channel::Email, &email, &Message::PlcOperation { token })
            .await
            .map_err(|e| ApiError::Internal(format!("queueing the PLC operation email: {e}")))?;
        Ok(())
    }

    async fn sign_plc_operation(
        &self,
        auth: AccessFullTakendownOk,
        req: XrpcRequest<sign_plc_operation::Params, sign_plc_operation::Input>,
    ) -> Result<sign_plc_operation::Output, XrpcError<sign_plc_operation::Error>> {
        let did = auth.did.as_str();
        let input = req.input;
        let Some(token) = input
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return Err(XrpcError::invalid_request(
                "email confirmation token required to sign PLC operations",
            ));
        };
        let hash = token_hash(&token.to_ascii_uppercase());
        let accounts = self.store.accounts();
        let stored = accounts
            .get_token(TokenPurpose::PlcOperation, did)
            .await
            .map_err(ApiError::from)?;
        match stored {
            Some(t) if t.token_hash == hash => {
                let not_before = pds_store::now_ms() - PLC_TOKEN_TTL_MS;
                if t.requested_at < not_before {
                    return Err(bad("ExpiredToken", "Token is expired"));
                }
                if !accounts
                    .consume_token(TokenPurpose::PlcOperation, did, &hash, not_before)
                    .await
                    .map_err(ApiError::from)?
                {
                    return Err(bad("InvalidToken", "Token is invalid"));
                }
            }
            _ => return Err(bad("InvalidToken", "Token is invalid")),
        }
        // The requested changes, each checked for its shape.
        let verification_methods = input.verification_methods.map(|v| v.to_json());
        if verification_methods
            .as_ref()
            .is_some_and(|v| !is_string_map(v))
        {
            return Err(XrpcError::invalid_request(
                "verificationMethods must map names to did:key strings",
            ));
        }
        let services = input.services.map(|v| v.to_json());
        if services.as_ref().is_some_and(|v| !is_services_map(v)) {
            return Err(XrpcError::invalid_request(
                "services must map names to {type, endpoint}",
            ));
        }
        let (mut fields, prev) = last_op_fields(self, did).await?;
        if let Some(keys) = input.rotation_keys {
            fields.rotation_keys = keys.into_iter().map(Json::String).collect();
        }
        if let Some(aka) = input.also_known_as {
            fields.also_known_as = aka.into_iter().map(Json::String).collect();
        }
        if let Some(v) = verification_methods {
            fields.verification_methods = v;
        }
        if let Some(s) = services {
            fields.services = s;
        }
        let op = plc::update_op(&fields, &prev, &self.plc_rotation_key).map_err(ApiError::from)?;
        Ok(sign_plc_operation::Output {
            operation: atproto_types::data::Value::from_json(&op)
                .map_err(|e| ApiError::Internal(format!("signed operation: {e}")))?,
            extra_data: Default::default(),
        })
    }

    async fn submit_plc_operation(
        &self,
        auth: AccessFullDeactivatedOk,
        req: XrpcRequest<submit_plc_operation::Params, submit_plc_operation::Input>,
    ) -> Result<(), XrpcError<submit_plc_operation::Error>> {
        let did = auth.did.as_str();
        let op = req.input.operation.to_json();
        if !is_plc_operation(&op) {
            return Err(XrpcError::invalid_request("Invalid operation"));
        }
        let ours = self.plc_rotation_key.did_key();
        if !op["rotationKeys"]
            .as_array()
            .is_some_and(|keys| keys.iter().any(|k| k.as_str() == Some(ours.as_str())))
        {
            return Err(XrpcError::invalid_request(
                "Rotation keys do not include server's rotation key",
            ));
        }
        let pds = &op["services"]["atproto_pds"];
        if pds["type"].as_str() != Some("AtprotoPersonalDataServer") {
            return Err(XrpcError::invalid_request(
                "Incorrect type on atproto_pds service",
            ));
        }
        if pds["endpoint"].as_str() != Some(self.config.public_url.as_str()) {
            return Err(XrpcError::invalid_request(
                "Incorrect endpoint on atproto_pds service",
            ));
        }
        let key = account_signing_key(self, did).await?;
        if op["verificationMethods"]["atproto"].as_str() != Some(key.did_key().as_str()) {
            return Err(XrpcError::invalid_request("Incorrect signing key"));
        }
        if let Some(h) = &auth.account.handle {
            if op["alsoKnownAs"][0].as_str() != Some(format!("at://{h}").as_str()) {
                return Err(XrpcError::invalid_request(
                    "Incorrect handle in alsoKnownAs",
                ));
            }
        }
        self.plc.submit(did, &op).await.map_err(ApiError::from)?;
        self.identity.invalidate(did);
        self.store
            .sequencer()
            .append(identity_event(did, None))
            .await
            .map_err(ApiError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_shape() {
        let op = json!({
            "type": "plc_operation",
            "rotationKeys": ["did:key:a"],
            "verificationMethods": {"atproto": "did:key:b"},
            "alsoKnownAs": ["at://alice.test"],
            "services": {"atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": "https://x"}},
            "prev": "bafy",
            "sig": "abc",
        });
        assert!(is_plc_operation(&op));
        for (k, v) in [
            ("type", json!("plc_tombstone")),
            ("rotationKeys", json!([1])),
            ("verificationMethods", json!({"atproto": 1})),
            ("alsoKnownAs", json!("at://x")),
            ("services", json!({"atproto_pds": {"type": "x"}})),
            ("prev", json!(5)),
            ("sig", json!(null)),
        ] {
            let mut bad = op.clone();
            bad[k] = v;
            assert!(!is_plc_operation(&bad), "{k}");
        }
    }
}
