//! Authentication as types: every generated method names its auth type,
//! and that type's [`XrpcAuth`] implementation is the method's policy.

use std::future::Future;

use http::request::Parts;

use super::XrpcError;

/// How a method authenticates requests: an extractor run on the request
/// head (after the params are checked, before the body is read), producing
/// the credentials the handler receives.
///
/// The type an implementation picks for a method's `…Auth` associated type
/// documents its policy: a handler that needs an active account's full
/// session takes that type; a public method takes [`NoAuth`]; a method the
/// server leaves to someone else takes [`NotImplemented`].
///
/// ```
/// use atproto_types::xrpc::{XrpcAuth, XrpcError};
/// use atproto_types::xrpc::http::request::Parts;
///
/// /// A bearer token is present (a real server verifies it).
/// struct Bearer(String);
///
/// impl<S: Sync> XrpcAuth<S> for Bearer {
///     async fn authenticate(parts: &mut Parts, _: &S, _: &'static str) -> Result<Self, XrpcError> {
///         let header = parts.headers.get("authorization").and_then(|h| h.to_str().ok());
///         match header.and_then(|h| h.strip_prefix("Bearer ")) {
///             Some(token) => Ok(Bearer(token.to_owned())),
///             None => Err(XrpcError::authentication_required("Authentication Required")),
///         }
///     }
/// }
/// ```
pub trait XrpcAuth<S>: Sized + Send + 'static {
    /// `false` only for [`NotImplemented`]: the method is not mounted and
    /// its handler answers 501.
    const IMPLEMENTED: bool = true;

    /// Authenticate the request for method `nsid`, or reject it (401
    /// `AuthenticationRequired`, 400 `ExpiredToken`, 403 `Forbidden`, ...).
    fn authenticate(
        parts: &mut Parts,
        state: &S,
        nsid: &'static str,
    ) -> impl Future<Output = Result<Self, XrpcError>> + Send;
}

/// A public method: every request is accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoAuth;

impl<S: Sync> XrpcAuth<S> for NoAuth {
    async fn authenticate(_: &mut Parts, _: &S, _: &'static str) -> Result<Self, XrpcError> {
        Ok(NoAuth)
    }
}

impl<S: Sync> XrpcAuth<S> for () {
    async fn authenticate(_: &mut Parts, _: &S, _: &'static str) -> Result<Self, XrpcError> {
        Ok(())
    }
}

/// The server does not implement this method: the generated `routes()`
/// does not mount it (so the router's own fallback, e.g. a proxy to the
/// AppView, gets the request) and the default handler answers 501
/// `MethodNotImplemented`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotImplemented {}

impl<S: Sync> XrpcAuth<S> for NotImplemented {
    const IMPLEMENTED: bool = false;

    async fn authenticate(_: &mut Parts, _: &S, _: &'static str) -> Result<Self, XrpcError> {
        Err(XrpcError::method_not_implemented())
    }
}
