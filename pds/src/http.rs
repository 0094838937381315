//! The HTTP surface around the XRPC methods: basic routes, CORS, request
//! logs, the fallback for unknown paths.

use std::time::Instant;

use atproto_types::xrpc::http::header::{self, HeaderName, HeaderValue};
use atproto_types::xrpc::http::{Method, StatusCode};
use atproto_types::xrpc::{self, XrpcError};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::cors::{AllowHeaders, Any, CorsLayer};

use crate::api;
use crate::state::AppState;

/// `GET /`: a short text banner (as the reference).
const BANNER: &str = "This is an AT Protocol Personal Data Server (PDS).\n\n\
Most API routes are under /xrpc/\n\n\
  Protocol: https://atproto.com\n";

/// `GET /robots.txt`: crawling the public API is allowed (as the reference).
const ROBOTS: &str = "# Hello!\n\n# Crawling the public API is allowed\nUser-agent: *\nAllow: /\n";

/// Response headers browser clients may read.
const EXPOSED_HEADERS: &[&str] = &[
    "dpop-nonce",
    "www-authenticate",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
    "retry-after",
    "atproto-repo-rev",
    "atproto-content-labelers",
];

/// The whole application.
pub fn router(state: AppState) -> Router {
    let not_found = || async { not_found_response() };
    Router::new()
        .route("/", get(root).fallback(not_found))
        .route("/robots.txt", get(robots).fallback(not_found))
        .route("/xrpc/_health", get(health).fallback(not_found))
        .route("/health", get(health).fallback(not_found))
        .route(
            "/.well-known/atproto-did",
            get(crate::identity::well_known::atproto_did).fallback(not_found),
        )
        .route(
            "/.well-known/did.json",
            get(crate::identity::well_known::did_json).fallback(not_found),
        )
        .merge(api::routes())
        .fallback(crate::proxy::fallback)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state,
            crate::rate_limit::middleware,
        ))
        .layer(cors())
        .layer(axum::middleware::from_fn(log_request))
}

/// As the reference's `cors({ maxAge: DAY })`: any origin, the usual
/// methods, the request's own headers allowed on preflight (which covers
/// `authorization`, `dpop`, `atproto-proxy`, `atproto-accept-labelers`),
/// cached for a day.
fn cors() -> CorsLayer {
    let exposed: Vec<HeaderName> = EXPOSED_HEADERS
        .iter()
        .map(|h| HeaderName::from_static(h))
        .collect();
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::PATCH,
            Method::POST,
            Method::DELETE,
        ])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers(exposed)
        .max_age(std::time::Duration::from_secs(24 * 3600))
}

async fn root() -> Response {
    text(BANNER)
}

async fn robots() -> Response {
    text(ROBOTS)
}

fn text(body: &'static str) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

fn not_found_response() -> Response {
    XrpcError::<xrpc::NoNamedError>::not_found("Not Found").into_response()
}

/// `GET /xrpc/_health` and `/health`: `{"version"}`, or 503 with an
/// error when the database does not answer.
async fn health(State(state): State<AppState>) -> Response {
    let version = state.config.version.clone();
    match state.store.health_check().await {
        Ok(()) => Json(serde_json::json!({ "version": version })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "version": version, "error": "Service Unavailable" })),
            )
                .into_response()
        }
    }
}

/// One log line per request: method, path, status, latency. Also closes
/// the connection after a 413.
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut response = next.run(req).await;
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the oversized body is not read: close the connection
        // so the client does not send its next request on it.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(target: "pds::http", %method, %path, status, latency_ms, "request");
    } else {
        tracing::info!(target: "pds::http", %method, %path, status, latency_ms, "request");
    }
    response
}
