//! The shared handler behind every generated route: params, auth, body,
//! handler call, response. Generated code only names the types.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use atproto_lexicon::{Catalog, LexDef};
use axum::body::Body;
use axum::extract::Request;
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use http::Method;

use super::body::{BodyContext, BodyLimits, InputCodec, OutputCodec};
use super::params::decode_params;
use super::{serde, XrpcAuth, XrpcError, XrpcErrorName, XrpcRequest};

/// The state shared by every generated namespace trait (their supertrait):
/// the catalog requests are checked against, body limits, and a hook to
/// wrap each method's route with layers (rate limits, timeouts).
pub trait XrpcState: Clone + Send + Sync + 'static {
    /// The catalog requests are checked against: by default the embedded
    /// one ([`crate::lex::catalog`]), which the generated routes were made
    /// from.
    fn catalog(&self) -> &Catalog {
        crate::lex::catalog()
    }

    /// Body size limits for method `nsid`.
    fn body_limits(&self, nsid: &'static str) -> BodyLimits {
        let _ = nsid;
        BodyLimits::DEFAULT
    }

    /// Wrap the route of method `nsid` (e.g. with a rate-limit layer via
    /// [`MethodRouter::layer`] or [`MethodRouter::route_layer`]). The
    /// default returns it unchanged.
    fn layer_route(nsid: &'static str, route: MethodRouter<Self>) -> MethodRouter<Self> {
        let _ = nsid;
        route
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Response> + Send + 'static>>;
type CallFn<S> = dyn Fn(Request, S) -> BoxFuture + Send + Sync;

/// An axum handler running one XRPC method. It is the same type for every
/// method (the per-method work is a boxed closure), so axum's routing code
/// is instantiated once per state type.
pub struct Endpoint<S> {
    call: Arc<CallFn<S>>,
}

impl<S> Clone for Endpoint<S> {
    fn clone(&self) -> Self {
        Endpoint {
            call: Arc::clone(&self.call),
        }
    }
}

/// Marker for [`Endpoint`]'s `Handler` implementation.
#[doc(hidden)]
pub enum EndpointMarker {}

impl<S: Clone + Send + Sync + 'static> Handler<EndpointMarker, S> for Endpoint<S> {
    type Future = BoxFuture;

    fn call(self, req: Request, state: S) -> BoxFuture {
        (self.call)(req, state)
    }
}

/// Answers a known method called with the wrong HTTP verb.
#[derive(Clone, Copy)]
struct WrongMethod {
    expected: &'static str,
}

impl<S: Clone + Send + Sync + 'static> Handler<EndpointMarker, S> for WrongMethod {
    type Future = std::future::Ready<Response>;

    fn call(self, req: Request, _: S) -> Self::Future {
        std::future::ready(wrong_method(req.method(), self.expected).into_response())
    }
}

fn wrong_method(method: &Method, expected: &str) -> XrpcError {
    XrpcError::invalid_request(format!(
        "Incorrect HTTP method ({method}) expected {expected}"
    ))
}

/// The path of a method: `/xrpc/<nsid>`.
pub fn xrpc_path(nsid: &str) -> String {
    format!("/xrpc/{nsid}")
}

/// A query route (GET) for method `nsid`: `handler` receives the state,
/// the auth value and the decoded request. Other verbs get 400
/// `InvalidRequest`.
pub fn query<S, A, P, O, E, OC, F, Fut>(
    nsid: &'static str,
    output: OC,
    handler: F,
) -> MethodRouter<S>
where
    S: XrpcState,
    A: XrpcAuth<S>,
    P: serde::de::DeserializeOwned + Send + 'static,
    O: Send + 'static,
    E: XrpcErrorName,
    OC: OutputCodec<O>,
    F: Fn(S, A, XrpcRequest<P, ()>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<O, XrpcError<E>>> + Send + 'static,
{
    method_route(
        nsid,
        MethodFilter::GET,
        "GET",
        super::body::NoInput,
        output,
        handler,
    )
}

/// A procedure route (POST) for method `nsid`, with an input codec
/// ([`NoInput`](super::NoInput), [`JsonInput`](super::JsonInput),
/// [`BinaryInputCodec`](super::BinaryInputCodec)) and an output codec.
pub fn procedure<S, A, P, I, O, E, IC, OC, F, Fut>(
    nsid: &'static str,
    input: IC,
    output: OC,
    handler: F,
) -> MethodRouter<S>
where
    S: XrpcState,
    A: XrpcAuth<S>,
    P: serde::de::DeserializeOwned + Send + 'static,
    I: Send + 'static,
    O: Send + 'static,
    E: XrpcErrorName,
    IC: InputCodec<I>,
    OC: OutputCodec<O>,
    F: Fn(S, A, XrpcRequest<P, I>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<O, XrpcError<E>>> + Send + 'static,
{
    method_route(nsid, MethodFilter::POST, "POST", input, output, handler)
}

pub(crate) fn method_route<S, A, P, I, O, E, IC, OC, F, Fut>(
    nsid: &'static str,
    filter: MethodFilter,
    verb: &'static str,
    input: IC,
    output: OC,
    handler: F,
) -> MethodRouter<S>
where
    S: XrpcState,
    A: XrpcAuth<S>,
    P: serde::de::DeserializeOwned + Send + 'static,
    I: Send + 'static,
    O: Send + 'static,
    E: XrpcErrorName,
    IC: InputCodec<I>,
    OC: OutputCodec<O>,
    F: Fn(S, A, XrpcRequest<P, I>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<O, XrpcError<E>>> + Send + 'static,
{
    let call = move |req: Request, state: S| -> BoxFuture {
        let handler = handler.clone();
        Box::pin(async move {
            match run::<S, A, P, I, O, E, IC, OC, F, Fut>(nsid, req, state, input, output, handler)
                .await
            {
                Ok(response) => response,
                Err(e) => e.into_response(),
            }
        })
    };
    let endpoint = Endpoint {
        call: Arc::new(call),
    };
    on(filter, endpoint).fallback(WrongMethod { expected: verb })
}

async fn run<S, A, P, I, O, E, IC, OC, F, Fut>(
    nsid: &'static str,
    req: Request,
    state: S,
    input: IC,
    output: OC,
    handler: F,
) -> Result<Response, XrpcError<E>>
where
    S: XrpcState,
    A: XrpcAuth<S>,
    P: serde::de::DeserializeOwned + Send + 'static,
    I: Send + 'static,
    O: Send + 'static,
    E: XrpcErrorName,
    IC: InputCodec<I>,
    OC: OutputCodec<O>,
    F: Fn(S, A, XrpcRequest<P, I>) -> Fut,
    Fut: Future<Output = Result<O, XrpcError<E>>>,
{
    let (mut parts, body) = req.into_parts();
    // The reference order: params, then auth, then the body.
    let params: P =
        decode_params(state.catalog(), nsid, parts.uri.query()).map_err(XrpcError::widen)?;
    let auth = A::authenticate(&mut parts, &state, nsid)
        .await
        .map_err(XrpcError::widen)?;
    let ctx = BodyContext {
        nsid,
        parts: &mut parts,
        catalog: state.catalog(),
        limits: state.body_limits(nsid),
    };
    let input = input.decode(ctx, body).await.map_err(XrpcError::widen)?;
    let response_headers = super::ResponseHeaders::default();
    let request = XrpcRequest {
        params,
        input,
        parts,
        response_headers: response_headers.clone(),
    };
    let out = handler(state, auth, request).await?;
    let mut response = output.encode(out);
    let extra = response_headers.take();
    if !extra.is_empty() {
        response.headers_mut().extend(extra);
    }
    Ok(response)
}

/// Convenience for generated code: mount `route` at `/xrpc/<nsid>` through
/// the state's [`XrpcState::layer_route`] hook.
pub fn mount<S: XrpcState>(
    router: axum::Router<S>,
    nsid: &'static str,
    route: MethodRouter<S>,
) -> axum::Router<S> {
    router.route(&xrpc_path(nsid), S::layer_route(nsid, route))
}

/// The NSID of an `/xrpc/<nsid>` path: `Some(Ok(nsid))` for a valid NSID,
/// `Some(Err(_))` for an invalid one, `None` for paths outside `/xrpc/`.
pub fn nsid_from_path(path: &str) -> Option<Result<&str, XrpcError>> {
    let rest = path.strip_prefix("/xrpc/")?;
    let nsid = rest.split(['?', '/']).next().unwrap_or(rest);
    if nsid.parse::<atproto_syntax::Nsid>().is_ok() {
        Some(Ok(nsid))
    } else {
        Some(Err(XrpcError::invalid_request("invalid xrpc path")))
    }
}

/// Check the HTTP verb of a request to a method the catalog knows: GET
/// for queries (and subscriptions), POST for procedures. Unknown methods
/// pass. Proxying fallbacks call this before forwarding.
pub fn check_method(catalog: &Catalog, nsid: &str, method: &Method) -> Result<(), XrpcError> {
    let expected = match catalog.get_def(nsid) {
        Some(LexDef::Query(_)) | Some(LexDef::Subscription(_)) => Method::GET,
        Some(LexDef::Procedure(_)) => Method::POST,
        _ => return Ok(()),
    };
    let head_for_get = expected == Method::GET && method == Method::HEAD;
    if method == expected || head_for_get {
        Ok(())
    } else {
        Err(wrong_method(method, expected.as_str()))
    }
}

/// The answer to an XRPC request no route took, for servers that do not
/// proxy: 400 `InvalidRequest` for a malformed NSID or a known method
/// called with the wrong verb, 501 `MethodNotImplemented` otherwise, 404
/// `NotFound` outside `/xrpc/`.
pub fn unmatched(catalog: &Catalog, method: &Method, path: &str) -> XrpcError {
    match nsid_from_path(path) {
        None => XrpcError::not_found("Not Found"),
        Some(Err(e)) => e,
        Some(Ok(nsid)) => match check_method(catalog, nsid, method) {
            Err(e) => e,
            Ok(()) => XrpcError::method_not_implemented(),
        },
    }
}

/// A router fallback answering [`unmatched`] with the state's catalog:
/// `router.fallback(xrpc::fallback::<S>)`.
pub async fn fallback<S: XrpcState>(
    axum::extract::State(state): axum::extract::State<S>,
    req: Request<Body>,
) -> Response {
    unmatched(state.catalog(), req.method(), req.uri().path()).into_response()
}
