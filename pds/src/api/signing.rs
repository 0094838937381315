//! `getServiceAuth` (inter-service JWTs signed with the account's key) and
//! `reserveSigningKey` (a K256 key kept for an account that is to be
//! created or migrated here).

use atproto_types::crypto::{Algorithm, PrivateKey};
use atproto_types::lexicons::com::atproto::server::{get_service_auth, reserve_signing_key};
use atproto_types::syntax::Did;
use atproto_types::xrpc::XrpcError;

use crate::auth::AccessTakendownOk;
use crate::error::ApiError;
use crate::jwt::Scope;
use crate::service_auth::{self, NewToken};
use crate::state::AppState;

/// Latest expiry a client may ask for, seconds ahead.
pub const MAX_EXP_SECS: i64 = 60 * 60;
/// Latest expiry of a token not bound to a method, seconds ahead.
pub const MAX_METHODLESS_EXP_SECS: i64 = 60;

/// Account-management methods that must be called directly: never with a
/// service token, never proxied (the reference's list).
pub const PROTECTED_METHODS: &[&str] = &[
    "com.atproto.admin.sendEmail",
    "com.atproto.identity.requestPlcOperationSignature",
    "com.atproto.identity.signPlcOperation",
    "com.atproto.identity.updateHandle",
    "com.atproto.server.activateAccount",
    "com.atproto.server.confirmEmail",
    "com.atproto.server.createAppPassword",
    "com.atproto.server.deactivateAccount",
    "com.atproto.server.getAccountInviteCodes",
    "com.atproto.server.getSession",
    "com.atproto.server.listAppPasswords",
    "com.atproto.server.requestAccountDelete",
    "com.atproto.server.requestEmailConfirmation",
    "com.atproto.server.requestEmailUpdate",
    "com.atproto.server.revokeAppPassword",
    "com.atproto.server.updateEmail",
];

/// Methods a non-privileged app-password session may neither get service
/// tokens for nor call through the proxy (the reference's list).
pub const PRIVILEGED_METHODS: &[&str] = &[
    "chat.bsky.actor.deleteAccount",
    "chat.bsky.actor.exportAccountData",
    "chat.bsky.convo.deleteMessageForSelf",
    "chat.bsky.convo.getConvo",
    "chat.bsky.convo.getConvoForMembers",
    "chat.bsky.convo.getLog",
    "chat.bsky.convo.getMessages",
    "chat.bsky.convo.leaveConvo",
    "chat.bsky.convo.listConvos",
    "chat.bsky.convo.muteConvo",
    "chat.bsky.convo.sendMessage",
    "chat.bsky.convo.sendMessageBatch",
    "chat.bsky.convo.unmuteConvo",
    "chat.bsky.convo.updateRead",
    "com.atproto.server.createAccount",
];

/// The method a taken-down session may get a token for (moving the
/// account elsewhere).
const TAKENDOWN_METHOD: &str = "com.atproto.server.createAccount";

fn bad_expiration(message: &str) -> XrpcError<get_service_auth::Error> {
    XrpcError::from(get_service_auth::Error::BadExpiration).with_message(message)
}

/// Checks a request's `exp` (seconds) and `lxm` against the reference's
/// rules, at time `now` (seconds).
pub fn check_request(
    exp: Option<i64>,
    lxm: Option<&str>,
    scope: Scope,
    now: i64,
) -> Result<(), XrpcError<get_service_auth::Error>> {
    if let Some(exp) = exp {
        let ahead = exp.saturating_sub(now);
        if ahead < 0 {
            return Err(bad_expiration("expiration is in past"));
        }
        if ahead > MAX_EXP_SECS {
            return Err(bad_expiration(
                "cannot request a token with an expiration more than an hour in the future",
            ));
        }
        if lxm.is_none() && ahead > MAX_METHODLESS_EXP_SECS {
            return Err(bad_expiration(
                "cannot request a method-less token with an expiration more than a minute in the future",
            ));
        }
    }
    if let Some(lxm) = lxm {
        if PROTECTED_METHODS.contains(&lxm) {
            return Err(XrpcError::invalid_request(format!(
                "cannot request a service auth token for the following protected method: {lxm}"
            )));
        }
        // A taken-down session comes from the account password.
        let privileged = matches!(
            scope,
            Scope::Access | Scope::AppPassPrivileged | Scope::Takendown
        );
        if !privileged && PRIVILEGED_METHODS.contains(&lxm) {
            return Err(XrpcError::invalid_request(format!(
                "insufficient access to request a service auth token for the following method: {lxm}"
            )));
        }
    }
    if scope == Scope::Takendown && lxm != Some(TAKENDOWN_METHOD) {
        return Err(XrpcError::invalid_request(format!(
            "a taken-down account may only request a service auth token for {TAKENDOWN_METHOD}"
        )));
    }
    Ok(())
}

/// `com.atproto.server.getServiceAuth`.
pub async fn get_service_auth(
    state: &AppState,
    auth: &AccessTakendownOk,
    params: get_service_auth::Params,
) -> Result<get_service_auth::Output, XrpcError<get_service_auth::Error>> {
    let aud = params.aud.trim();
    // A service DID, optionally with a `#service` fragment.
    let aud_did = aud.split_once('#').map_or(aud, |(d, _)| d);
    if aud_did.parse::<Did>().is_err() {
        return Err(XrpcError::invalid_request(format!(
            "aud must be a DID: {aud:?}"
        )));
    }
    let lxm = params.lxm.as_ref().map(|n| n.as_str());
    check_request(params.exp, lxm, auth.scope, service_auth::now_secs())?;
    let did = auth.did.as_str();
    let key = crate::identity::account_signing_key(state, did).await?;
    let token = service_auth::sign(
        &key,
        &NewToken {
            iss: did,
            aud,
            lxm,
            exp: params.exp,
        },
    );
    Ok(get_service_auth::Output {
        token,
        extra_data: Default::default(),
    })
}

/// `com.atproto.server.reserveSigningKey`: a new K256 key, or for a DID
/// that already has one reserved, that same key.
pub async fn reserve_signing_key(
    state: &AppState,
    input: reserve_signing_key::Input,
) -> Result<reserve_signing_key::Output, XrpcError<reserve_signing_key::Error>> {
    let did = input.did.as_ref().map(|d| d.as_str());
    let accounts = state.store.accounts();
    if let Some(did) = did {
        if let Some(existing) = accounts
            .reserved_key_for_did(did)
            .await
            .map_err(ApiError::from)?
        {
            return Ok(reserve_signing_key::Output {
                signing_key: existing.key_did,
                extra_data: Default::default(),
            });
        }
    }
    let key = PrivateKey::generate(Algorithm::K256);
    let key_did = key.did_key();
    // Sealed under its own did:key, which is how it is looked up again.
    let sealed = state
        .key_cipher
        .seal(&key_did, &key)
        .map_err(ApiError::from)?;
    accounts
        .reserve_key(&key_did, did, &sealed)
        .await
        .map_err(ApiError::from)?;
    Ok(reserve_signing_key::Output {
        signing_key: key_did,
        extra_data: Default::default(),
    })
}

/// Takes (removes and returns) the reserved key `key_did`, for an account
/// created with a reserved signing key; `None` if there is none or it was
/// reserved for another DID.
pub async fn take_reserved_key(
    state: &AppState,
    did: &str,
    key_did: &str,
) -> Result<Option<PrivateKey>, ApiError> {
    let accounts = state.store.accounts();
    match accounts.get_reserved_key(key_did).await? {
        Some(k) if k.did.as_deref().is_none_or(|d| d == did) => {}
        _ => return Ok(None),
    }
    let Some(reserved) = accounts.take_reserved_key(key_did).await? else {
        return Ok(None);
    };
    Ok(Some(state.key_cipher.open(
        &reserved.key_did,
        &reserved.private_key_ciphertext,
    )?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn name(r: Result<(), XrpcError<get_service_auth::Error>>) -> String {
        r.err()
            .map(|e| e.error_name().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn expiration_rules() {
        let m = Some("app.bsky.feed.getFeedSkeleton");
        assert_eq!(name(check_request(None, None, Scope::Access, NOW)), "");
        assert_eq!(
            name(check_request(Some(NOW + 3600), m, Scope::Access, NOW)),
            ""
        );
        assert_eq!(
            name(check_request(Some(NOW + 3601), m, Scope::Access, NOW)),
            "BadExpiration"
        );
        assert_eq!(
            name(check_request(Some(NOW - 1), m, Scope::Access, NOW)),
            "BadExpiration"
        );
        assert_eq!(
            name(check_request(Some(NOW + 60), None, Scope::Access, NOW)),
            ""
        );
        assert_eq!(
            name(check_request(Some(NOW + 61), None, Scope::Access, NOW)),
            "BadExpiration"
        );
    }

    #[test]
    fn method_rules() {
        let create = Some("com.atproto.server.createAccount");
        assert_eq!(
            name(check_request(
                None,
                Some("com.atproto.server.updateEmail"),
                Scope::Access,
                NOW
            )),
            "InvalidRequest"
        );
        assert_eq!(name(check_request(None, create, Scope::Access, NOW)), "");
        assert_eq!(
            name(check_request(None, create, Scope::AppPassPrivileged, NOW)),
            ""
        );
        assert_eq!(
            name(check_request(None, create, Scope::AppPass, NOW)),
            "InvalidRequest"
        );
        assert_eq!(name(check_request(None, create, Scope::Takendown, NOW)), "");
        assert_eq!(
            name(check_request(
                None,
                Some("app.bsky.feed.getTimeline"),
                Scope::Takendown,
                NOW
            )),
            "InvalidRequest"
        );
    }
}
