//! Routes outside XRPC that prove identities, answered by the `Host` of
//! the request:
//!
//! * `GET /.well-known/atproto-did`: the DID of the account whose handle is
//!   the host (a service-domain handle), as text; 404 `User not found`
//!   otherwise (the reference's).
//! * `GET /.well-known/did.json`: the DID document of `did:web:<host>`:
//!   the service's own (its `#atproto_pds` endpoint), or that of an
//!   account hosted here whose DID is that did:web (its handle, signing
//!   key and this PDS); 404 otherwise.

use atproto_types::xrpc::http::header::{self, HeaderValue};
use atproto_types::xrpc::http::{HeaderMap, StatusCode};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use pds_store::AccountStatus;

use super::doc;
use crate::state::AppState;

/// The request's host, lower-cased, with its port if any.
fn host(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
}

/// A host without its port (`[::1]:80` stays bracketed).
fn hostname(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map_or(host, |h| &host[..=h.len()]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn not_found(message: &str) -> Response {
    text(StatusCode::NOT_FOUND, message.to_owned())
}

/// `GET /.well-known/atproto-did`.
pub async fn atproto_did(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(host) = host(&headers) else {
        return not_found("User not found");
    };
    let handle = hostname(&host);
    if !super::is_service_handle(handle, &state.config.handle_domains) {
        return not_found("User not found");
    }
    match state.store.accounts().get_by_handle(handle).await {
        Ok(Some(a)) if a.status == AccountStatus::Active => text(StatusCode::OK, a.did),
        Ok(_) => not_found("User not found"),
        Err(e) => {
            tracing::error!(error = %e, "atproto-did lookup failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error".into(),
            )
        }
    }
}

/// `GET /.well-known/did.json`.
pub async fn did_json(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(host) = host(&headers) else {
        return not_found("DID not found");
    };
    let config = &state.config;
    let with_port = doc::did_web_for_host(&host);
    let without_port = doc::did_web_for_host(hostname(&host));
    if config.service_did == with_port || config.service_did == without_port {
        return Json(serde_json::json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": config.service_did,
            "service": [{
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": config.public_url,
            }],
        }))
        .into_response();
    }
    let account = match state.store.accounts().get(&with_port).await {
        Ok(Some(a)) if a.status != AccountStatus::Deleted => a,
        Ok(_) => return not_found("DID not found"),
        Err(e) => {
            tracing::error!(error = %e, "did.json lookup failed");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error".into(),
            );
        }
    };
    let key = match super::account_signing_key(&state, &account.did).await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(did = %account.did, error = %e, "did.json: no signing key");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error".into(),
            );
        }
    };
    Json(doc::build(
        &account.did,
        account.handle.as_deref(),
        &key.did_key(),
        &config.public_url,
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert_eq!(hostname("alice.test"), "alice.test");
        assert_eq!(hostname("alice.test:2583"), "alice.test");
        assert_eq!(hostname("[::1]:80"), "[::1]");
        assert_eq!(hostname("[::1]"), "[::1]");
    }
}
