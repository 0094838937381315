//! `activateAccount`, `deactivateAccount`, `checkAccountStatus`.
//!
//! Deactivating sequences `#account` (`active: false`, `status:
//! deactivated`) and stores the optional `deleteAfter`. Activating first
//! checks that the account's DID document names this server and the
//! account's signing key (as the reference does, so a migrating account is
//! not served before its identity points here), then sequences `#account`
//! (`active: true`), `#identity` and `#sync` (the current commit), as the
//! reference does.

use atproto_types::crypto::{Algorithm, PublicKey};
use atproto_types::lexicons::com::atproto::server::{check_account_status, deactivate_account};
use atproto_types::syntax::CidString;
use atproto_types::xrpc::XrpcError;
use pds_repo::events::{account_event, identity_event, sync_event};
use pds_store::{Account, AccountStatus};
use std::time::Duration;

use crate::error::ApiError;
use crate::state::AppState;

/// The account's decrypted signing key's did:key.
async fn signing_did_key(state: &AppState, did: &str) -> Result<Option<String>, ApiError> {
    let Some(sealed) = state.store.accounts().signing_key(did).await? else {
        return Ok(None);
    };
    Ok(Some(state.key_cipher.open(did, &sealed)?.did_key()))
}

/// Fetches the DID document (did:plc from the PLC directory, did:web from
/// its host). `Err` holds why it could not be had.
async fn fetch_did_doc(state: &AppState, did: &str) -> Result<serde_json::Value, String> {
    if did.starts_with("did:plc:") {
        return match state.plc.resolve(did).await {
            Ok(Some(doc)) => Ok(doc),
            Ok(None) => Err(format!("DID not found in the PLC directory: {did}")),
            Err(e) => Err(format!("could not resolve {did}: {e}")),
        };
    }
    if let Some(rest) = did.strip_prefix("did:web:") {
        if rest.contains(':') {
            return Err(format!("unsupported did:web with a path: {did}"));
        }
        let host = rest.replace("%3A", ":").replace("%3a", ":");
        let scheme = if host.starts_with("localhost") || host.starts_with("127.0.0.1") {
            "http"
        } else {
            "https"
        };
        let url = format!("{scheme}://{host}/.well-known/did.json");
        let res = state
            .http
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| format!("could not fetch {url}: {e}"))?;
        if !res.status().is_success() {
            return Err(format!("{url} answered {}", res.status()));
        }
        return res
            .json()
            .await
            .map_err(|e| format!("{url} is not a DID document: {e}"));
    }
    Err(format!("unsupported DID method: {did}"))
}

/// The public key of a DID document verification method (`Multikey`, or
/// a legacy typed key).
fn method_key(method: &serde_json::Value) -> Option<PublicKey> {
    let multibase = method["publicKeyMultibase"].as_str()?;
    match method["type"].as_str()? {
        "Multikey" => PublicKey::from_multibase(multibase).ok(),
        legacy => {
            let alg = Algorithm::from_legacy_verification_method_type(legacy)?;
            PublicKey::from_legacy_multibase(alg, multibase).ok()
        }
    }
}

/// Why the account's DID document does not make this server its PDS with
/// the account's signing key; `None` when it does.
pub async fn did_doc_problem(state: &AppState, did: &str) -> Result<Option<String>, ApiError> {
    let doc = match fetch_did_doc(state, did).await {
        Ok(d) => d,
        Err(why) => return Ok(Some(why)),
    };
    let public_url = state.config.public_url.trim_end_matches('/');
    let pds_ok = doc["service"].as_array().is_some_and(|services| {
        services.iter().any(|s| {
            s["id"]
                .as_str()
                .is_some_and(|id| id.ends_with("#atproto_pds"))
                && s["serviceEndpoint"]
                    .as_str()
                    .is_some_and(|e| e.trim_end_matches('/') == public_url)
        })
    });
    if !pds_ok {
        return Ok(Some(
            "DID document services does not match PDS endpoint".to_owned(),
        ));
    }
    let Some(expected) = signing_did_key(state, did).await? else {
        return Ok(Some("account has no signing key on this server".to_owned()));
    };
    let key_ok = doc["verificationMethod"].as_array().is_some_and(|methods| {
        methods.iter().any(|m| {
            m["id"].as_str().is_some_and(|id| id.ends_with("#atproto"))
                && method_key(m).is_some_and(|k| k.to_did_key() == expected)
        })
    });
    if !key_ok {
        return Ok(Some(format!(
            "DID document verification method does not match the account's signing key {expected}: {}",
            doc["verificationMethod"]
        )));
    }
    Ok(None)
}

/// `com.atproto.server.activateAccount`.
pub async fn activate<E>(state: &AppState, account: &Account) -> Result<(), XrpcError<E>> {
    let did = account.did.as_str();
    if let Some(problem) = did_doc_problem(state, did).await? {
        return Err(XrpcError::invalid_request(problem));
    }
    let mut events = vec![
        account_event(did, true, None),
        identity_event(did, account.handle.as_deref()),
    ];
    let repo = state.store.repo();
    if let Some(root) = repo.get_root(did).await.map_err(ApiError::from)? {
        let block = repo
            .get_block(did, &root.cid)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::Internal(format!("commit block of {did} missing")))?;
        events.push(sync_event(did, root.cid, &block, &root.rev));
    }
    state
        .store
        .accounts()
        .set_status(did, AccountStatus::Active, None, None, events)
        .await
        .map_err(ApiError::from)?;
    tracing::info!(did, "account activated");
    Ok(())
}

/// `com.atproto.server.deactivateAccount`.
pub async fn deactivate(
    state: &AppState,
    account: &Account,
    input: deactivate_account::Input,
) -> Result<(), XrpcError<deactivate_account::Error>> {
    let did = account.did.as_str();
    let delete_after = input.delete_after.map(|d| d.to_utc().timestamp_millis());
    state
        .store
        .accounts()
        .set_status(
            did,
            AccountStatus::Deactivated,
            None,
            delete_after,
            vec![account_event(did, false, Some("deactivated"))],
        )
        .await
        .map_err(ApiError::from)?;
    tracing::info!(did, ?delete_after, "account deactivated");
    Ok(())
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `com.atproto.server.checkAccountStatus`.
pub async fn check(
    state: &AppState,
    account: &Account,
) -> Result<check_account_status::Output, XrpcError<check_account_status::Error>> {
    let did = account.did.as_str();
    let store = &state.store;
    let root = store
        .repo()
        .get_root(did)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| XrpcError::invalid_request(format!("Repo not found: {did}")))?;
    let repo_commit: CidString = root
        .cid
        .to_string()
        .parse()
        .map_err(|e| ApiError::Internal(format!("commit CID: {e}")))?;
    let (blocks, _) = store
        .repo()
        .block_stats(did)
        .await
        .map_err(ApiError::from)?;
    let records = store
        .repo()
        .record_count(did)
        .await
        .map_err(ApiError::from)?;
    let prefs = store
        .accounts()
        .preference_count(did)
        .await
        .map_err(ApiError::from)?;
    let expected_blobs = store
        .blobs()
        .referenced_count(did)
        .await
        .map_err(ApiError::from)?;
    let (imported_blobs, _) = store.blobs().stats(did).await.map_err(ApiError::from)?;
    let valid_did = did_doc_problem(state, did).await?.is_none();
    Ok(check_account_status::Output {
        activated: account.status == AccountStatus::Active,
        valid_did,
        repo_commit,
        repo_rev: root.rev,
        repo_blocks: count(blocks),
        indexed_records: count(records),
        private_state_values: count(prefs),
        expected_blobs: count(expected_blobs),
        imported_blobs: count(imported_blobs),
        extra_data: Default::default(),
    })
}
