//! XRPC server runtime (feature `server`): errors, query and body decoding
//! checked against the lexicons, auth extractors, the shared route
//! handler behind the generated namespace traits, and the event-stream
//! frame codec.
//!
//! # How a request is served
//!
//! The generated `routes::<S>()` of a namespace (say
//! `lexicons::com::atproto::repo`) mounts one route per implemented
//! method at `/xrpc/<nsid>` (GET for queries and subscriptions, POST for
//! procedures; any other verb answers 400 `InvalidRequest`). A request
//! then goes through, in order (the reference server's order):
//!
//! 1. the query string, decoded per the lexicon `parameters` (repeated
//!    keys for arrays) and checked ([`parse_query`]), into `Params`;
//! 2. the method's auth type ([`XrpcAuth`]);
//! 3. the body: none ([`NoInput`]), JSON checked against the input schema
//!    ([`JsonInput`]), or a size-limited stream ([`BinaryInput`]);
//! 4. the handler, with an [`XrpcRequest`];
//! 5. the output: JSON, a binary stream ([`BinaryOutput`]) or nothing.
//!
//! Every failure answers XRPC error JSON (`{"error", "message"}`, see
//! [`XrpcError`]). Unmounted `/xrpc/` paths go to the router's fallback:
//! [`fallback`] answers 501 `MethodNotImplemented`; a proxying server
//! uses [`nsid_from_path`] and [`check_method`] before forwarding.

mod auth;
mod body;
mod endpoint;
mod error;
mod frame;
mod params;
mod request;

use ::serde;
use ::serde_json;

pub use auth::{NoAuth, NotImplemented, XrpcAuth};
pub use body::{
    check_json_input, encoding_matches, has_body, normalize_mime, read_limited, BinaryInput,
    BinaryInputCodec, BinaryOutput, BinaryOutputCodec, BodyContext, BodyLimits, InputCodec,
    JsonInput, JsonOutput, NoInput, NoOutput, OutputCodec,
};
pub use endpoint::{
    check_method, fallback, mount, nsid_from_path, procedure, query, unmatched, xrpc_path,
    Endpoint, XrpcState,
};
pub use error::{NoNamedError, StandardError, XrpcError, XrpcErrorName, JSON_CONTENT_TYPE};
pub use frame::{subscription, Frame, FrameError, ResponseOutput, WebSocketInput};
pub use params::{decode_params, parse_query};
pub use request::{ResponseHeaders, XrpcRequest};

pub use axum;
pub use axum::body::{Body, Bytes};
pub use axum::extract::ws::WebSocketUpgrade;
pub use axum::response::Response;
pub use axum::routing::MethodRouter;
pub use axum::Router;
pub use http;
