//! XRPC error responses: `{"error": "Name", "message": "..."}` with an HTTP
//! status.

use std::borrow::Cow;
use std::fmt;

use axum::response::{IntoResponse, Response};
use http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use http::{HeaderMap, StatusCode};

use super::serde_json;

/// The error name of a lexicon-declared XRPC error (the `errors` list of a
/// query, procedure or subscription).
///
/// Implemented by every generated `Error` enum; named errors answer HTTP
/// 400 with their name unless [`XrpcErrorName::status`] says otherwise.
pub trait XrpcErrorName: Send + 'static {
    /// The error name sent in the `error` field, e.g. `RecordNotFound`.
    fn error_name(&self) -> &str;

    /// The HTTP status of this error; named lexicon errors are 400.
    fn status(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }
}

/// The named-error type of a method that declares no errors, and of the
/// untyped [`XrpcError`] (the default type parameter). It has no values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoNamedError {}

impl XrpcErrorName for NoNamedError {
    fn error_name(&self) -> &str {
        match *self {}
    }
}

/// The standard XRPC error names and their statuses (as the reference
/// implementation answers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StandardError {
    /// 400 `InvalidRequest`: bad parameters, body or encoding.
    InvalidRequest,
    /// 401 `AuthenticationRequired`.
    AuthenticationRequired,
    /// 400 `ExpiredToken`: an access token past its expiry (400, not 401,
    /// in the reference PDS; clients refresh on this name).
    ExpiredToken,
    /// 400 `InvalidToken`: a token that can not be verified.
    InvalidToken,
    /// 403 `Forbidden`.
    Forbidden,
    /// 404 `NotFound`.
    NotFound,
    /// 406 `NotAcceptable`.
    NotAcceptable,
    /// 413 `PayloadTooLarge`.
    PayloadTooLarge,
    /// 415 `UnsupportedMediaType`.
    UnsupportedMediaType,
    /// 429 `RateLimitExceeded`.
    RateLimitExceeded,
    /// 500 `InternalServerError`; the message is never sent to the client.
    InternalServerError,
    /// 501 `MethodNotImplemented`.
    MethodNotImplemented,
    /// 502 `UpstreamFailure`.
    UpstreamFailure,
    /// 503 `NotEnoughResources`.
    NotEnoughResources,
    /// 504 `UpstreamTimeout`.
    UpstreamTimeout,
}

impl StandardError {
    /// The error name.
    pub fn name(self) -> &'static str {
        match self {
            StandardError::InvalidRequest => "InvalidRequest",
            StandardError::AuthenticationRequired => "AuthenticationRequired",
            StandardError::ExpiredToken => "ExpiredToken",
            StandardError::InvalidToken => "InvalidToken",
            StandardError::Forbidden => "Forbidden",
            StandardError::NotFound => "NotFound",
            StandardError::NotAcceptable => "NotAcceptable",
            StandardError::PayloadTooLarge => "PayloadTooLarge",
            StandardError::UnsupportedMediaType => "UnsupportedMediaType",
            StandardError::RateLimitExceeded => "RateLimitExceeded",
            StandardError::InternalServerError => "InternalServerError",
            StandardError::MethodNotImplemented => "MethodNotImplemented",
            StandardError::UpstreamFailure => "UpstreamFailure",
            StandardError::NotEnoughResources => "NotEnoughResources",
            StandardError::UpstreamTimeout => "UpstreamTimeout",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            StandardError::InvalidRequest
            | StandardError::ExpiredToken
            | StandardError::InvalidToken => StatusCode::BAD_REQUEST,
            StandardError::AuthenticationRequired => StatusCode::UNAUTHORIZED,
            StandardError::Forbidden => StatusCode::FORBIDDEN,
            StandardError::NotFound => StatusCode::NOT_FOUND,
            StandardError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            StandardError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            StandardError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StandardError::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            StandardError::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            StandardError::MethodNotImplemented => StatusCode::NOT_IMPLEMENTED,
            StandardError::UpstreamFailure => StatusCode::BAD_GATEWAY,
            StandardError::NotEnoughResources => StatusCode::SERVICE_UNAVAILABLE,
            StandardError::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The message sent when none is given (the status reason phrase).
    pub fn default_message(self) -> &'static str {
        match self {
            StandardError::InvalidRequest => "Invalid Request",
            StandardError::AuthenticationRequired => "Authentication Required",
            StandardError::ExpiredToken => "Token has expired",
            StandardError::InvalidToken => "Token could not be verified",
            StandardError::Forbidden => "Forbidden",
            StandardError::NotFound => "Not Found",
            StandardError::NotAcceptable => "Not Acceptable",
            StandardError::PayloadTooLarge => "Payload Too Large",
            StandardError::UnsupportedMediaType => "Unsupported Media Type",
            StandardError::RateLimitExceeded => "Rate Limit Exceeded",
            StandardError::InternalServerError => "Internal Server Error",
            StandardError::MethodNotImplemented => "Method Not Implemented",
            StandardError::UpstreamFailure => "Upstream Failure",
            StandardError::NotEnoughResources => "Not Enough Resources",
            StandardError::UpstreamTimeout => "Upstream Timeout",
        }
    }
}

#[derive(Debug, Clone)]
enum Name<E> {
    Named(E),
    Other(Cow<'static, str>),
}

/// An XRPC error: an HTTP status, an error name and an optional message,
/// answered as `{"error": name, "message": message}`.
///
/// `E` is the method's generated `Error` enum (its lexicon-declared
/// errors); the default [`NoNamedError`] is the untyped form used by auth
/// extractors and the runtime. Convert an untyped error into a method's
/// with [`XrpcError::widen`], a named error into an `XrpcError` with
/// `From` (`?` works) or [`XrpcError::named`].
///
/// The message of a 500 is kept for logs ([`XrpcError::message`],
/// `Display`) but never sent: the client sees `Internal Server Error`.
#[derive(Debug, Clone)]
pub struct XrpcError<E = NoNamedError> {
    status: StatusCode,
    name: Name<E>,
    message: Option<String>,
    headers: Option<Box<HeaderMap>>,
}

macro_rules! standard_constructors {
    ($($(#[$doc:meta])* $fn:ident => $variant:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $fn(message: impl Into<String>) -> XrpcError<E> {
                XrpcError::standard(StandardError::$variant, Some(message.into()))
            }
        )*
    };
}

impl<E> XrpcError<E> {
    /// An error with any status and name.
    pub fn new(
        status: StatusCode,
        name: impl Into<Cow<'static, str>>,
        message: Option<String>,
    ) -> XrpcError<E> {
        XrpcError {
            status,
            name: Name::Other(name.into()),
            message,
            headers: None,
        }
    }

    /// One of the standard errors, with an optional message (the reason
    /// phrase is sent when `None`).
    pub fn standard(kind: StandardError, message: Option<String>) -> XrpcError<E> {
        XrpcError::new(kind.status(), kind.name(), message)
    }

    standard_constructors! {
        /// 400 `InvalidRequest`.
        invalid_request => InvalidRequest;
        /// 401 `AuthenticationRequired`.
        authentication_required => AuthenticationRequired;
        /// 400 `ExpiredToken`.
        expired_token => ExpiredToken;
        /// 400 `InvalidToken`.
        invalid_token => InvalidToken;
        /// 403 `Forbidden`.
        forbidden => Forbidden;
        /// 404 `NotFound`.
        not_found => NotFound;
        /// 413 `PayloadTooLarge`.
        payload_too_large => PayloadTooLarge;
        /// 415 `UnsupportedMediaType`.
        unsupported_media_type => UnsupportedMediaType;
        /// 429 `RateLimitExceeded`.
        rate_limit_exceeded => RateLimitExceeded;
        /// 500 `InternalServerError`; the message is logged, not sent.
        internal => InternalServerError;
        /// 502 `UpstreamFailure`.
        upstream_failure => UpstreamFailure;
        /// 503 `NotEnoughResources`.
        not_enough_resources => NotEnoughResources;
        /// 504 `UpstreamTimeout`.
        upstream_timeout => UpstreamTimeout;
    }

    /// 501 `MethodNotImplemented`.
    pub fn method_not_implemented() -> XrpcError<E> {
        XrpcError::standard(StandardError::MethodNotImplemented, None)
    }

    /// A lexicon-declared error of the method (status from
    /// [`XrpcErrorName::status`], 400 for lexicon errors).
    pub fn named(error: E) -> XrpcError<E>
    where
        E: XrpcErrorName,
    {
        XrpcError {
            status: error.status(),
            name: Name::Named(error),
            message: None,
            headers: None,
        }
    }

    /// Set the message.
    pub fn with_message(mut self, message: impl Into<String>) -> XrpcError<E> {
        self.message = Some(message.into());
        self
    }

    /// Add a response header (e.g. `WWW-Authenticate`, rate-limit headers).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> XrpcError<E> {
        self.headers
            .get_or_insert_with(Default::default)
            .append(name, value);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message, as given (also for 500s, which do not send it).
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The lexicon-declared error, when this is one.
    pub fn named_error(&self) -> Option<&E> {
        match &self.name {
            Name::Named(e) => Some(e),
            Name::Other(_) => None,
        }
    }

    /// Extra response headers.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.headers.as_deref()
    }

    /// Map the named error type (e.g. between two methods' `Error`s).
    pub fn map_named<F>(self, f: impl FnOnce(E) -> F) -> XrpcError<F> {
        XrpcError {
            status: self.status,
            name: match self.name {
                Name::Named(e) => Name::Named(f(e)),
                Name::Other(n) => Name::Other(n),
            },
            message: self.message,
            headers: self.headers,
        }
    }

    /// Forget the named error type, keeping its name.
    pub fn untyped(self) -> XrpcError
    where
        E: XrpcErrorName,
    {
        let name = match &self.name {
            Name::Named(e) => Cow::Owned(e.error_name().to_owned()),
            Name::Other(n) => n.clone(),
        };
        XrpcError {
            status: self.status,
            name: Name::Other(name),
            message: self.message,
            headers: self.headers,
        }
    }
}

impl<E: XrpcErrorName> XrpcError<E> {
    /// The error name sent in the `error` field.
    pub fn error_name(&self) -> &str {
        match &self.name {
            Name::Named(e) => e.error_name(),
            Name::Other(n) => n,
        }
    }

    /// The JSON body: `{"error": ..., "message": ...}`.
    pub fn body(&self) -> serde_json::Value {
        let message = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            StandardError::InternalServerError.default_message()
        } else {
            match &self.message {
                Some(m) => m.as_str(),
                None => default_message(self.status, self.error_name()),
            }
        };
        let mut body = serde_json::Map::new();
        body.insert("error".into(), self.error_name().into());
        body.insert("message".into(), message.into());
        serde_json::Value::Object(body)
    }
}

fn default_message(status: StatusCode, name: &str) -> &'static str {
    const ALL: [StandardError; 15] = [
        StandardError::InvalidRequest,
        StandardError::AuthenticationRequired,
        StandardError::ExpiredToken,
        StandardError::InvalidToken,
        StandardError::Forbidden,
        StandardError::NotFound,
        StandardError::NotAcceptable,
        StandardError::PayloadTooLarge,
        StandardError::UnsupportedMediaType,
        StandardError::RateLimitExceeded,
        StandardError::InternalServerError,
        StandardError::MethodNotImplemented,
        StandardError::UpstreamFailure,
        StandardError::NotEnoughResources,
        StandardError::UpstreamTimeout,
    ];
    // By name, then by status (a named lexicon error is a 400: "Invalid
    // Request", as the reference answers), then the reason phrase.
    ALL.iter()
        .find(|s| s.name() == name)
        .or_else(|| ALL.iter().find(|s| s.status() == status))
        .map(|s| s.default_message())
        .or_else(|| status.canonical_reason())
        .unwrap_or("Error")
}

impl XrpcError<NoNamedError> {
    /// Use an untyped error (auth, runtime) as a method's error.
    pub fn widen<E>(self) -> XrpcError<E> {
        self.map_named(|never| match never {})
    }
}

impl<E: XrpcErrorName> From<E> for XrpcError<E> {
    fn from(error: E) -> XrpcError<E> {
        XrpcError::named(error)
    }
}

impl<E: XrpcErrorName> fmt::Display for XrpcError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.error_name(), self.status.as_u16())?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl<E: XrpcErrorName + fmt::Debug> std::error::Error for XrpcError<E> {}

impl<E: XrpcErrorName> IntoResponse for XrpcError<E> {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
        if let Some(headers) = self.headers {
            response.headers_mut().extend(*headers);
        }
        response
    }
}

/// The content type of JSON responses.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    enum Named {
        RecordNotFound,
    }

    impl XrpcErrorName for Named {
        fn error_name(&self) -> &str {
            match self {
                Named::RecordNotFound => "RecordNotFound",
            }
        }
    }

    #[test]
    fn bodies() {
        let e: XrpcError = XrpcError::invalid_request("bad cursor");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            e.body(),
            serde_json::json!({"error": "InvalidRequest", "message": "bad cursor"})
        );
        let e: XrpcError = XrpcError::method_not_implemented();
        assert_eq!(e.status(), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(e.body()["message"], "Method Not Implemented");
        let e: XrpcError = XrpcError::expired_token("Token has expired");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.error_name(), "ExpiredToken");
        let e: XrpcError = XrpcError::internal("db exploded");
        assert_eq!(e.body()["message"], "Internal Server Error");
        assert_eq!(e.message(), Some("db exploded"));
    }

    #[test]
    fn named_errors() {
        let e: XrpcError<Named> = Named::RecordNotFound.into();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.error_name(), "RecordNotFound");
        assert_eq!(e.body()["message"], "Invalid Request");
        let e = e.with_message("no such record");
        assert_eq!(e.to_string(), "RecordNotFound (400): no such record");
        let widened: XrpcError<Named> = XrpcError::forbidden("nope").widen();
        assert_eq!(widened.error_name(), "Forbidden");
        assert_eq!(widened.untyped().status(), StatusCode::FORBIDDEN);
    }
}
