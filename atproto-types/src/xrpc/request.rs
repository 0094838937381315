//! What a handler receives: typed params and input, plus the request's
//! headers and extensions.

use std::sync::{Arc, Mutex, PoisonError};

use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{Extensions, HeaderMap};

/// A decoded XRPC request: the method's typed `Params` and `Input` (`()`
/// when the method has none, [`BinaryInput`](super::BinaryInput) for
/// non-JSON bodies), and the rest of the HTTP request.
#[derive(Debug)]
pub struct XrpcRequest<P, I = ()> {
    /// The query parameters, parsed and checked against the lexicon.
    pub params: P,
    /// The request body, parsed and checked against the lexicon.
    pub input: I,
    /// Method, URI, headers and extensions of the HTTP request (the body
    /// has been consumed into `input`).
    pub parts: Parts,
    /// Headers to add to the response.
    pub response_headers: ResponseHeaders,
}

impl<P, I> XrpcRequest<P, I> {
    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// A request header as a string, when present and visible ASCII (e.g.
    /// `atproto-proxy`, `atproto-accept-labelers`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name)?.to_str().ok()
    }

    /// The request extensions (values put there by middleware).
    pub fn extensions(&self) -> &Extensions {
        &self.parts.extensions
    }

    /// The `atproto-proxy` header (`did#service_id`), if any.
    pub fn atproto_proxy(&self) -> Option<&str> {
        self.header("atproto-proxy")
    }

    /// The `atproto-accept-labelers` header, if any.
    pub fn atproto_accept_labelers(&self) -> Option<&str> {
        self.header("atproto-accept-labelers")
    }
}

/// Headers a handler adds to its response (e.g. `atproto-repo-rev`,
/// `atproto-content-labelers`). Clones share the same map, so a handler
/// may keep a clone while moving the request apart.
#[derive(Debug, Clone, Default)]
pub struct ResponseHeaders(Arc<Mutex<HeaderMap>>);

impl ResponseHeaders {
    /// Set a header, replacing earlier values of the same name.
    pub fn insert(&self, name: HeaderName, value: HeaderValue) {
        self.lock().insert(name, value);
    }

    /// Add a header value, keeping earlier ones.
    pub fn append(&self, name: HeaderName, value: HeaderValue) {
        self.lock().append(name, value);
    }

    /// Take the headers set so far.
    pub fn take(&self) -> HeaderMap {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HeaderMap> {
        // A handler panicking mid-insert leaves a usable map.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
