//! Event streams (subscriptions): the binary frame codec and the WebSocket
//! route.
//!
//! A frame is two DAG-CBOR objects back to back: a header and a body. A
//! message frame's header is `{"op": 1, "t": "#commit"}` (the message
//! type, short `#name` for definitions of the subscription's own lexicon);
//! an error frame's is `{"op": -1}` with body `{"error": "Name",
//! "message": "..."}`. Message bodies carry no `$type`: the header's `t`
//! names the type.
//!
//! The generated trait method of a subscription receives the params and an
//! axum [`WebSocketUpgrade`]; the implementation upgrades, then sends
//! frames built with [`Frame::from_message`] (from the generated `Message`
//! union) or [`Frame::error`], encoded with [`Frame::encode`]. Cursor
//! handling, backfill and back-pressure are the server's.

use std::collections::BTreeMap;
use std::future::Future;

use atproto_data::Value;
use axum::body::Body;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::response::Response;
use axum::routing::MethodRouter;

use super::body::{BodyContext, InputCodec, OutputCodec};
use super::{serde, XrpcAuth, XrpcError, XrpcErrorName, XrpcRequest, XrpcState};

/// A decoded event-stream frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `op: 1`: a message of type `t`.
    Message {
        /// The message type: `#name` for the subscription's own
        /// definitions, `nsid#name` otherwise.
        t: String,
        /// The message body (a map).
        body: Value,
    },
    /// `op: -1`: an error; the stream ends after it.
    Error {
        /// The error name (e.g. `FutureCursor`, `ConsumerTooSlow`).
        error: String,
        /// A human-readable message.
        message: Option<String>,
    },
}

/// A frame that can not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header or body is not valid DAG-CBOR.
    #[error("invalid DAG-CBOR in frame: {0}")]
    Cbor(String),
    /// The header is not a valid frame header.
    #[error("invalid frame header: {0}")]
    Header(String),
    /// The body does not fit the header.
    #[error("invalid frame body: {0}")]
    Body(String),
    /// A typed message could not be converted.
    #[error("invalid message: {0}")]
    Message(String),
}

impl Frame {
    /// An error frame.
    pub fn error(error: impl Into<String>, message: Option<String>) -> Frame {
        Frame::Error {
            error: error.into(),
            message,
        }
    }

    /// A message frame from a typed message (a generated `Message` union,
    /// or any value serializing to an object with `$type`) of subscription
    /// `nsid`. The `$type` becomes the header's `t` and is removed from the
    /// body.
    pub fn from_message<M: serde::Serialize + ?Sized>(
        nsid: &str,
        message: &M,
    ) -> Result<Frame, FrameError> {
        let value =
            atproto_data::to_value(message).map_err(|e| FrameError::Message(e.to_string()))?;
        Frame::from_value(nsid, value)
    }

    /// A message frame from a data-model object with `$type`.
    pub fn from_value(nsid: &str, value: Value) -> Result<Frame, FrameError> {
        let Value::Map(mut map) = value else {
            return Err(FrameError::Message("a message must be an object".into()));
        };
        let t = match map.remove("$type") {
            Some(Value::String(t)) => t,
            _ => return Err(FrameError::Message("a message needs a $type".into())),
        };
        let t = match t.strip_prefix(nsid) {
            Some(short) if short.starts_with('#') => short.to_owned(),
            _ => t,
        };
        Ok(Frame::Message {
            t,
            body: Value::Map(map),
        })
    }

    /// The typed message of a message frame of subscription `nsid` (the
    /// `$type` is put back from `t`). An error frame gives
    /// [`FrameError::Message`] naming the error.
    pub fn into_message<M: serde::de::DeserializeOwned>(self, nsid: &str) -> Result<M, FrameError> {
        match self {
            Frame::Message { t, body } => {
                let Value::Map(mut map) = body else {
                    return Err(FrameError::Body("a message body must be a map".into()));
                };
                let full = if t.starts_with('#') {
                    format!("{nsid}{t}")
                } else {
                    t
                };
                map.insert("$type".into(), Value::String(full));
                atproto_data::from_value(&Value::Map(map))
                    .map_err(|e| FrameError::Message(e.to_string()))
            }
            Frame::Error { error, message } => Err(FrameError::Message(match message {
                Some(m) => format!("error frame {error}: {m}"),
                None => format!("error frame {error}"),
            })),
        }
    }

    /// The frame's bytes: header then body, both DAG-CBOR.
    pub fn encode(&self) -> Vec<u8> {
        let (header, body) = match self {
            Frame::Message { t, body } => {
                let header = Value::Map(BTreeMap::from([
                    ("op".to_owned(), Value::Integer(1)),
                    ("t".to_owned(), Value::String(t.clone())),
                ]));
                (header, body.clone())
            }
            Frame::Error { error, message } => {
                let header = Value::Map(BTreeMap::from([("op".to_owned(), Value::Integer(-1))]));
                let mut body = BTreeMap::from([("error".to_owned(), Value::String(error.clone()))]);
                if let Some(m) = message {
                    body.insert("message".to_owned(), Value::String(m.clone()));
                }
                (header, Value::Map(body))
            }
        };
        let mut out = Vec::new();
        atproto_data::write_dag_cbor(&header, &mut out);
        atproto_data::write_dag_cbor(&body, &mut out);
        out
    }

    /// Decode a frame (strict DAG-CBOR; no bytes may follow the body).
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let (header, used) =
            atproto_data::decode_prefix(bytes).map_err(|e| FrameError::Cbor(e.to_string()))?;
        let rest = bytes.get(used..).unwrap_or_default();
        let body =
            atproto_data::from_dag_cbor(rest).map_err(|e| FrameError::Cbor(e.to_string()))?;
        let Value::Map(header) = header else {
            return Err(FrameError::Header("not a map".into()));
        };
        let Value::Map(mut body_map) = body else {
            return Err(FrameError::Body("not a map".into()));
        };
        match header.get("op") {
            Some(Value::Integer(1)) => match header.get("t") {
                Some(Value::String(t)) => Ok(Frame::Message {
                    t: t.clone(),
                    body: Value::Map(body_map),
                }),
                _ => Err(FrameError::Header("message frame without t".into())),
            },
            Some(Value::Integer(-1)) => {
                let error = match body_map.remove("error") {
                    Some(Value::String(e)) => e,
                    _ => return Err(FrameError::Body("error frame without error".into())),
                };
                let message = match body_map.remove("message") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(m)) => Some(m),
                    Some(_) => return Err(FrameError::Body("message is not a string".into())),
                };
                Ok(Frame::Error { error, message })
            }
            Some(Value::Integer(op)) => Err(FrameError::Header(format!("unknown op {op}"))),
            _ => Err(FrameError::Header("missing op".into())),
        }
    }
}

impl<E: XrpcErrorName> From<&XrpcError<E>> for Frame {
    fn from(e: &XrpcError<E>) -> Frame {
        let body = e.body();
        Frame::Error {
            error: e.error_name().to_owned(),
            message: body
                .get("message")
                .and_then(|m| m.as_str())
                .map(str::to_owned),
        }
    }
}

/// The input of a subscription: the WebSocket upgrade. A request that is
/// not an upgrade gets 400 `InvalidRequest`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WebSocketInput;

impl InputCodec<WebSocketUpgrade> for WebSocketInput {
    async fn decode(self, ctx: BodyContext<'_>, _: Body) -> Result<WebSocketUpgrade, XrpcError> {
        WebSocketUpgrade::from_request_parts(ctx.parts, &())
            .await
            .map_err(|r| XrpcError::invalid_request(format!("{} ({})", r.body_text(), ctx.nsid)))
    }
}

/// An output that is already a response (a WebSocket upgrade answer).
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseOutput;

impl OutputCodec<Response> for ResponseOutput {
    fn encode(self, output: Response) -> Response {
        output
    }
}

/// A subscription route (GET + WebSocket upgrade) for method `nsid`:
/// params and auth are checked before the upgrade (failures answer HTTP
/// errors); `handler` upgrades with
/// [`WebSocketUpgrade::on_upgrade`] and returns its response.
pub fn subscription<S, A, P, E, F, Fut>(nsid: &'static str, handler: F) -> MethodRouter<S>
where
    S: XrpcState,
    A: XrpcAuth<S>,
    P: serde::de::DeserializeOwned + Send + 'static,
    E: XrpcErrorName,
    F: Fn(S, A, XrpcRequest<P, WebSocketUpgrade>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Response, XrpcError<E>>> + Send + 'static,
{
    super::endpoint::method_route(
        nsid,
        axum::routing::MethodFilter::GET,
        "GET",
        WebSocketInput,
        ResponseOutput,
        handler,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NSID: &str = "com.atproto.sync.subscribeRepos";

    #[test]
    fn message_round_trip() {
        let value = Value::from_json_str(
            r#"{"$type": "com.atproto.sync.subscribeRepos#identity", "seq": 5, "did": "did:plc:abc", "time": "2024-01-01T00:00:00Z"}"#,
        )
        .expect("json");
        let frame = Frame::from_value(NSID, value.clone()).expect("frame");
        let Frame::Message { t, body } = &frame else {
            panic!("not a message frame");
        };
        assert_eq!(t, "#identity");
        assert!(body.get("$type").is_none());
        let bytes = frame.encode();
        let decoded = Frame::decode(&bytes).expect("decode");
        assert_eq!(decoded, frame);
        let back: Value = decoded.into_message(NSID).expect("message");
        assert_eq!(back, value);
    }

    #[test]
    fn error_frames() {
        let frame = Frame::error("FutureCursor", Some("Cursor in the future.".into()));
        let decoded = Frame::decode(&frame.encode()).expect("decode");
        assert_eq!(decoded, frame);
        let err: XrpcError = XrpcError::invalid_request("bad cursor");
        assert_eq!(
            Frame::from(&err),
            Frame::error("InvalidRequest", Some("bad cursor".into()))
        );
    }

    #[test]
    fn bad_frames() {
        assert!(Frame::decode(&[]).is_err());
        let mut bytes = Frame::error("X", None).encode();
        bytes.push(0);
        assert!(Frame::decode(&bytes).is_err());
        let header = Value::Map(BTreeMap::from([("op".to_owned(), Value::Integer(2))]));
        let mut out = Vec::new();
        atproto_data::write_dag_cbor(&header, &mut out);
        atproto_data::write_dag_cbor(&Value::Map(BTreeMap::new()), &mut out);
        assert!(matches!(Frame::decode(&out), Err(FrameError::Header(_))));
    }
}
