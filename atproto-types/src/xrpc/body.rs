//! Request and response bodies: JSON (checked against the lexicon),
//! binary streams (blobs, CAR files) and none.

use std::future::Future;

use atproto_lexicon::Catalog;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderMap, StatusCode};
use http_body::Body as _;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::error::JSON_CONTENT_TYPE;
use super::{serde, serde_json, XrpcError};

/// Size limits for request bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Largest JSON request body, in bytes.
    pub json: usize,
    /// Largest binary request body (blob, CAR), in bytes.
    pub binary: u64,
}

impl BodyLimits {
    /// 150 KiB of JSON, 5 MiB of binary: the reference PDS defaults.
    pub const DEFAULT: BodyLimits = BodyLimits {
        json: 150 * 1024,
        binary: 5 * 1024 * 1024,
    };
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits::DEFAULT
    }
}

/// What an input codec needs besides the body.
#[derive(Debug)]
pub struct BodyContext<'a> {
    /// The method.
    pub nsid: &'static str,
    /// The request head (mutable: a WebSocket upgrade takes its
    /// connection handle out of the extensions).
    pub parts: &'a mut Parts,
    /// The catalog holding the method's lexicon.
    pub catalog: &'a Catalog,
    /// The size limits for this method.
    pub limits: BodyLimits,
}

/// Turns a request body into a method's input type. The generated routes
/// pick [`NoInput`], [`JsonInput`] or [`BinaryInputCodec`] from the
/// lexicon.
pub trait InputCodec<I>: Copy + Send + Sync + 'static {
    /// Read and check the body.
    fn decode(
        self,
        ctx: BodyContext<'_>,
        body: Body,
    ) -> impl Future<Output = Result<I, XrpcError>> + Send;
}

/// Turns a method's output into a response. The generated routes pick
/// [`NoOutput`], [`JsonOutput`] or [`BinaryOutputCodec`] from the lexicon.
pub trait OutputCodec<O>: Copy + Send + Sync + 'static {
    /// Build the response.
    fn encode(self, output: O) -> Response;
}

/// The method takes no body: a request with one is rejected.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoInput;

/// A JSON body, checked against the lexicon's input schema, then
/// deserialized.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonInput;

/// A binary body of the given encoding (`*/*`, `video/mp4`,
/// `application/vnd.ipld.car`, ...), handed over as a stream.
#[derive(Debug, Clone, Copy)]
pub struct BinaryInputCodec(pub &'static str);

/// The method answers no body.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoOutput;

/// A JSON response body.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonOutput;

/// A binary response body ([`BinaryOutput`]).
#[derive(Debug, Clone, Copy)]
pub struct BinaryOutputCodec(pub &'static str);

impl InputCodec<()> for NoInput {
    async fn decode(self, ctx: BodyContext<'_>, body: Body) -> Result<(), XrpcError> {
        if has_body(&ctx.parts.headers, &body) {
            return Err(XrpcError::invalid_request(
                "A request body was provided when none was expected",
            ));
        }
        Ok(())
    }
}

impl<I> InputCodec<I> for JsonInput
where
    I: serde::de::DeserializeOwned + Send + 'static,
{
    async fn decode(self, ctx: BodyContext<'_>, body: Body) -> Result<I, XrpcError> {
        let json = read_json_input(ctx, body).await?;
        serde_json::from_value(json).map_err(|e| XrpcError::invalid_request(format!("Input: {e}")))
    }
}

impl InputCodec<BinaryInput> for BinaryInputCodec {
    async fn decode(self, ctx: BodyContext<'_>, body: Body) -> Result<BinaryInput, XrpcError> {
        binary_input(ctx, self.0, body)
    }
}

impl OutputCodec<()> for NoOutput {
    fn encode(self, (): ()) -> Response {
        StatusCode::OK.into_response()
    }
}

impl<O: serde::Serialize> OutputCodec<O> for JsonOutput {
    fn encode(self, output: O) -> Response {
        match serde_json::to_vec(&output) {
            Ok(bytes) => json_response(bytes),
            Err(e) => XrpcError::<super::NoNamedError>::internal(format!(
                "could not serialize the output: {e}"
            ))
            .into_response(),
        }
    }
}

impl OutputCodec<BinaryOutput> for BinaryOutputCodec {
    fn encode(self, output: BinaryOutput) -> Response {
        output.into_response()
    }
}

fn json_response(bytes: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    response
}

/// Whether the request carries a body (the reference's rule: a positive
/// `Content-Length` or any `Transfer-Encoding`; without either, what the
/// body itself says).
pub fn has_body(headers: &HeaderMap, body: &Body) -> bool {
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        return len
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0);
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        return true;
    }
    !body.is_end_stream() && body.size_hint().exact() != Some(0)
}

/// The MIME type of a `Content-Type` value: lowercased, without
/// parameters. `None` when empty or not visible ASCII.
pub fn normalize_mime(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let mime = s.split(';').next()?.trim().to_ascii_lowercase();
    if mime.is_empty() || !mime.contains('/') {
        return None;
    }
    Some(mime)
}

/// Whether `mime` is allowed by a lexicon encoding: `*/*`, a `type/*`
/// wildcard, an exact type, or a comma-separated list of those.
pub fn encoding_matches(encoding: &str, mime: &str) -> bool {
    encoding.split(',').map(str::trim).any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        if pattern == "*/*" {
            return true;
        }
        match pattern.strip_suffix("/*") {
            Some(major) => mime.split_once('/').is_some_and(|(m, _)| m == major),
            None => pattern == mime,
        }
    })
}

/// Check that the request has a body of the expected encoding; returns its
/// MIME type.
fn expect_body(parts: &Parts, body: &Body, encoding: &str) -> Result<String, XrpcError> {
    if !has_body(&parts.headers, body) {
        return Err(XrpcError::invalid_request(
            "A request body is expected but none was provided",
        ));
    }
    let mime = match parts.headers.get(CONTENT_TYPE).and_then(normalize_mime) {
        Some(m) => m,
        None => {
            return Err(XrpcError::invalid_request(
                "Request encoding (Content-Type) required but not provided",
            ))
        }
    };
    if !encoding_matches(encoding, &mime) {
        return Err(XrpcError::invalid_request(format!(
            "Wrong request encoding (Content-Type): {mime}"
        )));
    }
    Ok(mime)
}

fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn too_large() -> XrpcError {
    XrpcError::payload_too_large("request entity too large")
}

/// Read a whole body of at most `limit` bytes.
pub async fn read_limited(parts: &Parts, body: Body, limit: usize) -> Result<Bytes, XrpcError> {
    if declared_length(parts).is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(XrpcError::invalid_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Read a JSON input body and check it against the method's input schema.
async fn read_json_input(ctx: BodyContext<'_>, body: Body) -> Result<serde_json::Value, XrpcError> {
    expect_body(ctx.parts, &body, "application/json")?;
    let bytes = read_limited(ctx.parts, body, ctx.limits.json).await?;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| XrpcError::invalid_request(format!("Invalid JSON body: {e}")))?;
    check_json_input(ctx.catalog, ctx.nsid, &json)?;
    Ok(json)
}

/// Check a JSON input against the input schema of `nsid`.
pub fn check_json_input(
    catalog: &Catalog,
    nsid: &str,
    json: &serde_json::Value,
) -> Result<(), XrpcError> {
    let value = atproto_data::Value::from_json(json)
        .map_err(|e| XrpcError::invalid_request(format!("Input: {e}")))?;
    catalog
        .validate_input(nsid, &value)
        .map_err(|errors| XrpcError::invalid_request(prefixed("Input", &errors)))
}

/// `Input.path: message; Input.other: message` (or `Input: message` for
/// the value as a whole).
pub(crate) fn prefixed(prefix: &str, errors: &atproto_lexicon::ValidationErrors) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            if e.path.is_empty() {
                format!("{prefix}: {}", e.message)
            } else if e.path.starts_with('[') {
                format!("{prefix}{}: {}", e.path, e.message)
            } else {
                format!("{prefix}.{}: {}", e.path, e.message)
            }
        })
        .collect();
    parts.join("; ")
}

fn binary_input(
    ctx: BodyContext<'_>,
    encoding: &str,
    body: Body,
) -> Result<BinaryInput, XrpcError> {
    let content_type = expect_body(ctx.parts, &body, encoding)?;
    let content_length = declared_length(ctx.parts);
    if content_length.is_some_and(|n| n > ctx.limits.binary) {
        return Err(too_large());
    }
    Ok(BinaryInput {
        content_type,
        content_length,
        limit: ctx.limits.binary,
        read: 0,
        body,
    })
}

/// A binary request body (blob upload, CAR import), streamed. Reading past
/// the method's size limit fails with 413 `PayloadTooLarge`.
#[derive(Debug)]
pub struct BinaryInput {
    content_type: String,
    content_length: Option<u64>,
    limit: u64,
    read: u64,
    body: Body,
}

impl BinaryInput {
    /// A binary input from parts (for tests and for re-dispatching).
    pub fn new(content_type: impl Into<String>, body: Body, limit: u64) -> BinaryInput {
        BinaryInput {
            content_type: content_type.into(),
            content_length: None,
            limit,
            read: 0,
            body,
        }
    }

    /// The request's MIME type (lowercased, without parameters).
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// The declared `Content-Length`, if any (at most the limit).
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// The size limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The next chunk of data; `None` at the end.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, XrpcError>> {
        loop {
            let frame = match self.body.frame().await? {
                Ok(f) => f,
                Err(e) => {
                    return Some(Err(XrpcError::invalid_request(format!(
                        "could not read the request body: {e}"
                    ))))
                }
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            self.read = self.read.saturating_add(data.len() as u64);
            if self.read > self.limit {
                return Some(Err(too_large()));
            }
            return Some(Ok(data));
        }
    }

    /// The whole body in memory (at most the limit).
    pub async fn collect(mut self) -> Result<Bytes, XrpcError> {
        let mut out = Vec::with_capacity(
            usize::try_from(self.content_length.unwrap_or(0).min(self.limit)).unwrap_or(0),
        );
        while let Some(chunk) = self.chunk().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }
}

/// A binary response body (blob, CAR file) with its content type and any
/// extra headers.
#[derive(Debug)]
pub struct BinaryOutput {
    /// The `Content-Type` of the response.
    pub content_type: HeaderValue,
    /// Extra headers.
    pub headers: HeaderMap,
    /// The body; use [`Body::from_stream`] to stream.
    pub body: Body,
}

impl BinaryOutput {
    /// A binary response. A content type that is not a valid header value
    /// becomes `application/octet-stream`.
    pub fn new(content_type: &str, body: impl Into<Body>) -> BinaryOutput {
        BinaryOutput {
            content_type: HeaderValue::from_str(content_type)
                .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// A CAR file response (`application/vnd.ipld.car`).
    pub fn car(body: impl Into<Body>) -> BinaryOutput {
        BinaryOutput::new("application/vnd.ipld.car", body)
    }
}

impl IntoResponse for BinaryOutput {
    fn into_response(self) -> Response {
        let mut response = Response::new(self.body);
        response.headers_mut().extend(self.headers);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, self.content_type);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert!(encoding_matches("*/*", "image/png"));
        assert!(encoding_matches("image/*", "image/png"));
        assert!(!encoding_matches("image/*", "video/mp4"));
        assert!(encoding_matches("application/json", "application/json"));
        assert!(encoding_matches(
            "text/plain, application/json",
            "application/json"
        ));
        assert!(!encoding_matches(
            "application/vnd.ipld.car",
            "application/json"
        ));
        let v = HeaderValue::from_static("Application/JSON; charset=utf-8");
        assert_eq!(normalize_mime(&v).as_deref(), Some("application/json"));
        assert_eq!(normalize_mime(&HeaderValue::from_static("")), None);
    }
}
