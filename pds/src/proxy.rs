//! The service proxy: every XRPC method this server does not serve itself
//! (app.bsky.*, chat.bsky.*, com.atproto.moderation.createReport, ...) is
//! forwarded to another service on behalf of the caller, as the reference
//! PDS's `proxyHandler` does (atproto XRPC spec, "Service Proxying").
//!
//! * Target: the `atproto-proxy: <did>#<service id>` header, resolved
//!   through the DID's document (the configured appview is used directly
//!   for `<appview did>#bsky_appview`); without the header, the method's
//!   default service: the report service for
//!   `com.atproto.moderation.createReport`, none for `chat.bsky.*` and
//!   `tools.ozone.*` (they need the header), the appview for the rest.
//!   No service → 501 `MethodNotImplemented` naming the method.
//! * Auth: an access token of the account (full session or app
//!   password). [`PROTECTED_METHODS`] are never proxied; non-privileged
//!   app passwords may not call [`PRIVILEGED_METHODS`]. The upstream gets
//!   `authorization: Bearer <service JWT>` signed with the account's key:
//!   `iss` the account DID, `aud` the service DID (no fragment, as the
//!   reference), `lxm` the method, 60 s lifetime.
//! * Request: method, path and query as received; only the reference's
//!   forwarded headers; the body streamed, within the server's body limit.
//! * Response: status, the reference's forwarded headers and the body,
//!   streamed. Upstream errors come back with their status (500 becomes
//!   502 `UpstreamFailure`) and `{error, message}`; an unreachable
//!   upstream is 502 `UpstreamFailure`.
//!
//! Locally implemented methods are served locally whatever the header
//! says (routes are matched before this fallback, as in the reference).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use atproto_types::xrpc::http::header::{HeaderMap, HeaderName, HeaderValue};
use atproto_types::xrpc::http::{Method, StatusCode};
use atproto_types::xrpc::{self, XrpcAuth, XrpcError, XrpcState};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::auth::AccessStandard;
use crate::config::ServiceRef;
use crate::identity::doc::service_endpoint;
use crate::service_auth::{self, NewToken};
use crate::state::{AppState, JSON_BODY_LIMIT};

pub use crate::api::signing::{PRIVILEGED_METHODS, PROTECTED_METHODS};

/// Request headers passed to the upstream (besides the body headers of a
/// POST).
const FORWARDED_REQUEST_HEADERS: &[&str] = &[
    "accept-language",
    "atproto-accept-labelers",
    "x-bsky-topics",
];

/// Body headers passed to the upstream with a POST.
const FORWARDED_BODY_HEADERS: &[&str] = &["content-type", "content-encoding", "content-length"];

/// Response headers passed back to the client on success.
const FORWARDED_RESPONSE_HEADERS: &[&str] = &[
    "content-length",
    "content-encoding",
    "content-type",
    "content-language",
    "atproto-repo-rev",
    "atproto-content-labelers",
    "retry-after",
];

/// Response headers passed back with an upstream error.
const FORWARDED_ERROR_HEADERS: &[&str] = &[
    "atproto-repo-rev",
    "atproto-content-labelers",
    "retry-after",
];

/// Most of an upstream error body read to find its `error` and `message`.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The NSID handed to the access-token extractor (its policies do not
/// depend on the method).
const PROXY_AUTH_NSID: &str = "com.atproto.proxy";

/// Why a request could not be proxied. Each maps to one XRPC error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("XRPC requests only supports GET and POST")]
    HttpMethod,
    #[error("no did specified in proxy header")]
    HeaderNoDid,
    #[error("no service id specified in proxy header")]
    HeaderNoServiceId,
    #[error("invalid proxy header format")]
    HeaderFormat,
    #[error("proxy header cannot contain spaces")]
    HeaderSpaces,
    #[error("could not resolve proxy did")]
    Unresolvable,
    #[error("could not resolve proxy did service url")]
    NoServiceEndpoint,
    /// No header and no default service for the method.
    #[error("No service configured for {0}")]
    NoService(String),
    /// A protected method, or a privileged one with a non-privileged app
    /// password.
    #[error("Bad token method")]
    BadTokenMethod,
    #[error("request entity too large")]
    TooLarge,
    #[error("Upstream service unreachable")]
    Unreachable,
    /// The server could not sign the service token.
    #[error("signing the service token: {0}")]
    Signing(String),
}

impl From<ProxyError> for XrpcError {
    fn from(e: ProxyError) -> XrpcError {
        let message = e.to_string();
        match e {
            ProxyError::HttpMethod
            | ProxyError::HeaderNoDid
            | ProxyError::HeaderNoServiceId
            | ProxyError::HeaderFormat
            | ProxyError::HeaderSpaces
            | ProxyError::Unresolvable
            | ProxyError::NoServiceEndpoint => XrpcError::invalid_request(message),
            ProxyError::NoService(_) => XrpcError::new(
                StatusCode::NOT_IMPLEMENTED,
                "MethodNotImplemented",
                Some(message),
            ),
            ProxyError::BadTokenMethod => XrpcError::invalid_token(message),
            ProxyError::TooLarge => XrpcError::payload_too_large(message),
            ProxyError::Unreachable => XrpcError::upstream_failure(message),
            ProxyError::Signing(m) => XrpcError::internal(m),
        }
    }
}

/// A parsed `atproto-proxy` header: `<did>#<service id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The service's DID.
    pub did: String,
    /// The service id, with its `#` (`#bsky_appview`).
    pub service_id: String,
}

impl ProxyHeader {
    /// Parses a header value with the reference's checks.
    pub fn parse(value: &str) -> Result<ProxyHeader, ProxyError> {
        let Some(hash) = value.find('#') else {
            return Err(ProxyError::HeaderNoServiceId);
        };
        if hash == 0 {
            return Err(ProxyError::HeaderNoDid);
        }
        if hash == value.len() - 1 {
            return Err(ProxyError::HeaderNoServiceId);
        }
        if value[hash + 1..].contains('#') {
            return Err(ProxyError::HeaderFormat);
        }
        if value.contains(' ') {
            return Err(ProxyError::HeaderSpaces);
        }
        Ok(ProxyHeader {
            did: value[..hash].to_owned(),
            service_id: value[hash..].to_owned(),
        })
    }
}

/// Where a request goes: the service's base URL and DID (the token's `aud`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub did: String,
}

impl From<&ServiceRef> for Target {
    fn from(s: &ServiceRef) -> Target {
        Target {
            url: s.url.clone(),
            did: s.did.clone(),
        }
    }
}

/// The service a method goes to when the request names none.
pub fn default_target(state: &AppState, nsid: &str) -> Option<Target> {
    if nsid == "com.atproto.moderation.createReport" {
        return state.config.report_service.as_ref().map(Target::from);
    }
    // The chat service and the moderation service are addressed with the
    // header (this server has no default for them).
    if nsid.starts_with("chat.bsky.") || nsid.starts_with("tools.ozone.") {
        return None;
    }
    state.config.bsky_app_view.as_ref().map(Target::from)
}

/// Resolves the target named by an `atproto-proxy` header.
async fn header_target(state: &AppState, header: &ProxyHeader) -> Result<Target, ProxyError> {
    if let Some(appview) = &state.config.bsky_app_view {
        if header.did == appview.did && header.service_id == "#bsky_appview" {
            return Ok(Target::from(appview));
        }
    }
    let doc = match state.identity.resolve_did(&header.did, false).await {
        Ok(Some(doc)) => doc,
        Ok(None) => return Err(ProxyError::Unresolvable),
        Err(e) => {
            tracing::info!(did = %header.did, error = %e, "proxy DID unresolvable");
            return Err(ProxyError::Unresolvable);
        }
    };
    let url = service_endpoint(&doc, &header.did, &header.service_id)
        .ok_or(ProxyError::NoServiceEndpoint)?;
    Ok(Target {
        url,
        did: header.did.clone(),
    })
}

/// The router fallback: proxies XRPC requests no route took; answers
/// other paths 404.
pub async fn fallback(State(state): State<AppState>, req: Request) -> Response {
    let nsid = match xrpc::nsid_from_path(req.uri().path()) {
        None => return XrpcError::<xrpc::NoNamedError>::not_found("Not Found").into_response(),
        Some(Err(e)) => return e.into_response(),
        Some(Ok(nsid)) => nsid.to_owned(),
    };
    match proxy(&state, &nsid, req).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// Proxies one XRPC request for method `nsid`.
async fn proxy(state: &AppState, nsid: &str, req: Request) -> Result<Response, XrpcError> {
    let method = req.method().clone();
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        return Err(ProxyError::HttpMethod.into());
    }
    // A known method called with the wrong verb.
    xrpc::check_method(state.catalog(), nsid, &method)?;
    if PROTECTED_METHODS.contains(&nsid) {
        return Err(ProxyError::BadTokenMethod.into());
    }

    let (mut parts, body) = req.into_parts();
    let target = match parts.headers.get("atproto-proxy") {
        Some(value) => {
            let value = value.to_str().map_err(|_| ProxyError::HeaderFormat)?;
            header_target(state, &ProxyHeader::parse(value)?).await?
        }
        None => {
            default_target(state, nsid).ok_or_else(|| ProxyError::NoService(nsid.to_owned()))?
        }
    };

    let auth = AccessStandard::authenticate(&mut parts, state, PROXY_AUTH_NSID).await?;
    if !auth.is_privileged() && PRIVILEGED_METHODS.contains(&nsid) {
        return Err(ProxyError::BadTokenMethod.into());
    }
    let key = crate::identity::account_signing_key(state, &auth.did)
        .await
        .map_err(|e| ProxyError::Signing(e.to_string()))?;
    let token = service_auth::sign(
        &key,
        &NewToken {
            iss: &auth.did,
            aud: &target.did,
            lxm: Some(nsid),
            exp: None,
        },
    );

    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let url = format!("{}{path}", target.url.trim_end_matches('/'));
    let mut upstream = state
        .proxy_http
        .request(method.clone(), &url)
        .header("authorization", format!("Bearer {token}"));
    let accept_encoding = parts
        .headers
        .get("accept-encoding")
        .cloned()
        .unwrap_or(HeaderValue::from_static("identity"));
    upstream = upstream.header("accept-encoding", accept_encoding);
    for name in FORWARDED_REQUEST_HEADERS {
        for value in parts.headers.get_all(*name) {
            upstream = upstream.header(*name, value.clone());
        }
    }

    let too_large = Arc::new(AtomicBool::new(false));
    if method == Method::POST {
        for name in FORWARDED_BODY_HEADERS {
            if let Some(value) = parts.headers.get(*name) {
                upstream = upstream.header(*name, value.clone());
            }
        }
        let limit = body_limit(state, &parts.headers);
        let declared = parts
            .headers
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(ProxyError::TooLarge.into());
        }
        upstream = upstream.body(limited_body(body, limit, too_large.clone()));
    }

    let response = match upstream.send().await {
        Ok(r) => r,
        Err(e) => {
            if too_large.load(Ordering::Relaxed) {
                return Err(ProxyError::TooLarge.into());
            }
            tracing::warn!(url, error = %e, "upstream service unreachable");
            return Err(ProxyError::Unreachable.into());
        }
    };
    if response.status().as_u16() >= 400 {
        return Err(upstream_error(response).await);
    }
    Ok(streamed_response(response))
}

/// The largest body forwarded: the JSON limit for JSON, the blob limit
/// for anything else.
fn body_limit(state: &AppState, headers: &HeaderMap) -> u64 {
    let json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if json {
        JSON_BODY_LIMIT as u64
    } else {
        state.config.blob_upload_limit
    }
}

/// The request body on its way upstream: the client's body, failing
/// (and setting `too_large`) once more than `limit` bytes have passed.
/// The mutex only makes the body `Sync`, as the HTTP client requires; it
/// is never contended (polling takes `&mut self`).
struct LimitedBody {
    inner: Mutex<Body>,
    seen: u64,
    limit: u64,
    too_large: Arc<AtomicBool>,
}

impl http_body::Body for LimitedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        let inner = this.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        match Pin::new(inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(std::io::Error::other(e)))),
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.seen = this.seen.saturating_add(data.len() as u64);
                    if this.seen > this.limit {
                        this.too_large.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(std::io::Error::other(
                            "request entity too large",
                        ))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .lock()
            .map(|b| http_body::Body::is_end_stream(&*b))
            .unwrap_or(false)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .lock()
            .map(|b| http_body::Body::size_hint(&*b))
            .unwrap_or_default()
    }
}

/// The request body as a stream for the upstream, within `limit`.
fn limited_body(body: Body, limit: u64, too_large: Arc<AtomicBool>) -> reqwest::Body {
    reqwest::Body::wrap(LimitedBody {
        inner: Mutex::new(body),
        seen: 0,
        limit,
        too_large,
    })
}

/// A successful upstream response, streamed back with the forwarded
/// headers.
fn streamed_response(upstream: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::OK);
    let headers = forwarded(upstream.headers(), FORWARDED_RESPONSE_HEADERS);
    let body = Body::new(reqwest::Body::from(upstream));
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The headers of `from` named in `names`.
fn forwarded(from: &reqwest::header::HeaderMap, names: &[&str]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in names {
        for value in from.get_all(*name) {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            ) {
                out.append(n, v);
            }
        }
    }
    out
}

/// The reference's default name of an error status.
fn status_error_name(status: u16) -> &'static str {
    match status {
        400 => "InvalidRequest",
        401 => "AuthenticationRequired",
        403 => "Forbidden",
        404 => "XRPCNotSupported",
        406 => "NotAcceptable",
        413 => "PayloadTooLarge",
        415 => "UnsupportedMediaType",
        429 => "RateLimitExceeded",
        500 => "InternalServerError",
        501 => "MethodNotImplemented",
        502 => "UpstreamFailure",
        503 => "NotEnoughResources",
        504 => "UpstreamTimeout",
        _ => "Unknown",
    }
}

/// An upstream error answer as an XRPC error: same status (500 becomes
/// 502 `UpstreamFailure`), the upstream's `error` and `message` when its
/// body is JSON, and the forwarded non-content headers.
async fn upstream_error(mut upstream: reqwest::Response) -> XrpcError {
    let upstream_status = upstream.status().as_u16();
    let status_code = if upstream_status == 500 {
        502
    } else {
        upstream_status
    };
    let status = StatusCode::from_u16(status_code).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = forwarded(upstream.headers(), FORWARDED_ERROR_HEADERS);
    let is_json = upstream
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.starts_with("application/json") || t.contains("+json")
        });
    let mut body = Vec::new();
    if is_json {
        while let Ok(Some(chunk)) = upstream.chunk().await {
            if body.len() + chunk.len() > MAX_ERROR_BODY {
                body.clear();
                break;
            }
            body.extend_from_slice(&chunk);
        }
    }
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let name = field("error").unwrap_or_else(|| status_error_name(status_code).to_owned());
    let message = field("message");
    let mut error = XrpcError::new(status, name, message);
    for (n, v) in headers.iter() {
        error = error.with_header(n.clone(), v.clone());
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing() {
        assert_eq!(
            ProxyHeader::parse("did:web:api.bsky.app#bsky_appview").unwrap(),
            ProxyHeader {
                did: "did:web:api.bsky.app".into(),
                service_id: "#bsky_appview".into()
            }
        );
        for (bad, message) in [
            ("#bsky_appview", "no did specified in proxy header"),
            ("did:web:x.com", "no service id specified in proxy header"),
            ("did:web:x.com#", "no service id specified in proxy header"),
            ("did:web:x.com#a#b", "invalid proxy header format"),
            ("did:web:x.com #a", "proxy header cannot contain spaces"),
        ] {
            let e = ProxyHeader::parse(bad).unwrap_err();
            assert_eq!(e.to_string(), message, "{bad}");
        }
    }

    #[test]
    fn endpoint_lookup() {
        let doc = serde_json::json!({
            "id": "did:web:chat.example",
            "service": [
                {"id": "#atproto_labeler", "type": "AtprotoLabeler", "serviceEndpoint": "https://mod.example"},
                {"id": "did:web:chat.example#bsky_chat", "type": "BskyChatService", "serviceEndpoint": "https://chat.example"},
                {"id": "#bad", "type": "X", "serviceEndpoint": "ftp://x"},
            ]
        });
        let did = "did:web:chat.example";
        assert_eq!(
            service_endpoint(&doc, did, "#bsky_chat").as_deref(),
            Some("https://chat.example")
        );
        assert_eq!(
            service_endpoint(&doc, did, "#atproto_labeler").as_deref(),
            Some("https://mod.example")
        );
        assert_eq!(service_endpoint(&doc, did, "#bad"), None);
        assert_eq!(service_endpoint(&doc, did, "#missing"), None);
        assert_eq!(service_endpoint(&doc, "did:web:other", "#bsky_chat"), None);
    }

    /// Reads a body to its end or first error; returns the bytes read.
    async fn drain(mut body: LimitedBody) -> (Vec<u8>, Option<std::io::Error>) {
        let mut out = Vec::new();
        loop {
            let next =
                std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                    .await;
            match next {
                None => return (out, None),
                Some(Err(e)) => return (out, Some(e)),
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        out.extend_from_slice(data);
                    }
                }
            }
        }
    }

    fn limited(bytes: &[u8], limit: u64) -> (LimitedBody, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        let body = LimitedBody {
            inner: Mutex::new(Body::from(bytes.to_vec())),
            seen: 0,
            limit,
            too_large: flag.clone(),
        };
        (body, flag)
    }

    #[tokio::test]
    async fn body_limit() {
        let (body, flag) = limited(b"0123456789", 10);
        let (read, err) = drain(body).await;
        assert_eq!(read, b"0123456789");
        assert!(err.is_none());
        assert!(!flag.load(Ordering::Relaxed));

        let (body, flag) = limited(b"0123456789", 9);
        let (read, err) = drain(body).await;
        assert!(read.is_empty());
        assert!(err.is_some());
        assert!(flag.load(Ordering::Relaxed));
    }

    #[test]
    fn error_mapping() {
        let e: XrpcError = ProxyError::HeaderSpaces.into();
        assert_eq!(
            (e.status().as_u16(), e.error_name()),
            (400, "InvalidRequest")
        );
        let e: XrpcError = ProxyError::BadTokenMethod.into();
        assert_eq!((e.status().as_u16(), e.error_name()), (400, "InvalidToken"));
        let e: XrpcError = ProxyError::Unreachable.into();
        assert_eq!(
            (e.status().as_u16(), e.error_name()),
            (502, "UpstreamFailure")
        );
        let e: XrpcError = ProxyError::NoService("app.bsky.x.y".into()).into();
        assert_eq!(
            (e.status().as_u16(), e.error_name()),
            (501, "MethodNotImplemented")
        );
    }
}
