//! Identity: resolving DIDs (did:plc, did:web) and handles (DNS TXT,
//! HTTPS well-known), reading the atproto parts of DID documents, and the
//! checks this server makes of an account's DID document.

pub mod doc;
pub mod resolver;
pub mod well_known;

use atproto_types::crypto::PrivateKey;
use pds_store::AccountStatus;

pub use doc::{AtprotoData, DocError, DocParts};
pub use resolver::{IdentityResolver, ResolveError, ResolverConfig};

use crate::error::ApiError;
use crate::state::AppState;

/// Why an account's DID document does not point at this server (the
/// reference's `assertValidDidDocumentForService` messages; each is a 400
/// `InvalidRequest`).
#[derive(Debug, thiserror::Error)]
pub enum ServiceDocError {
    #[error("Could not resolve DID")]
    Unresolvable,
    #[error("Server rotation key not included in PLC DID data")]
    RotationKey,
    #[error("DID document atproto_pds service endpoint does not match PDS public url")]
    Endpoint,
    #[error("DID document verification method does not match expected signing key")]
    SigningKey,
    /// The server's own failure.
    #[error(transparent)]
    Internal(#[from] ApiError),
}

/// The account's repository signing key.
pub async fn account_signing_key(state: &AppState, did: &str) -> Result<PrivateKey, ApiError> {
    let sealed = state
        .store
        .accounts()
        .signing_key(did)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("no signing key stored for {did}")))?;
    Ok(state.key_cipher.open(did, &sealed)?)
}

/// Checks that `did`'s current DID document names this server as its PDS
/// and the account's stored key as its signing key (and, for did:plc,
/// includes the server's rotation key): what activating a migrated
/// account requires.
pub async fn check_did_doc_for_service(state: &AppState, did: &str) -> Result<(), ServiceDocError> {
    let (pds, signing_key, rotation_keys) = if did.starts_with("did:plc:") {
        let data = state
            .plc
            .data(did)
            .await
            .map_err(ApiError::from)?
            .ok_or(ServiceDocError::Unresolvable)?;
        let pds = data["services"]["atproto_pds"]["endpoint"]
            .as_str()
            .map(str::to_owned);
        let key = data["verificationMethods"]["atproto"]
            .as_str()
            .map(str::to_owned);
        let rotation: Vec<String> = data["rotationKeys"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        (pds, key, Some(rotation))
    } else {
        let resolved = state
            .identity
            .resolve_did(did, true)
            .await
            .map_err(|e| {
                tracing::info!(did, error = %e, "DID document unresolvable");
                ServiceDocError::Unresolvable
            })?
            .ok_or(ServiceDocError::Unresolvable)?;
        let parts = doc::parts(did, &resolved).map_err(|_| ServiceDocError::Unresolvable)?;
        (parts.pds, parts.signing_key, None)
    };
    if let Some(keys) = rotation_keys {
        if !keys.contains(&state.plc_rotation_key.did_key()) {
            return Err(ServiceDocError::RotationKey);
        }
    }
    if pds.as_deref() != Some(state.config.public_url.as_str()) {
        return Err(ServiceDocError::Endpoint);
    }
    let key = account_signing_key(state, did).await?;
    if signing_key.as_deref() != Some(key.did_key().as_str()) {
        return Err(ServiceDocError::SigningKey);
    }
    Ok(())
}

/// The DID of a local account by handle (deleted accounts excluded).
pub async fn local_did_for_handle(
    state: &AppState,
    handle: &str,
) -> Result<Option<String>, ApiError> {
    Ok(state
        .store
        .accounts()
        .get_by_handle(handle)
        .await?
        .filter(|a| a.status != AccountStatus::Deleted)
        .map(|a| a.did))
}

/// Whether `handle` is under one of the service's handle domains (or is
/// the bare domain), as the reference's `supportedHandle` check.
pub fn is_service_handle(handle: &str, domains: &[String]) -> bool {
    domains
        .iter()
        .any(|d| handle.ends_with(d.as_str()) || handle == d.trim_start_matches('.'))
}
