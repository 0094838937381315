//! Blob handling shared by `com.atproto.repo` and `com.atproto.sync`:
//! streamed uploads with MIME sniffing, checks of the blobs a record
//! references, and deletion of blobs whose last reference went away.

use std::sync::{Arc, Mutex};

use atproto_types::data::{Blob, Cid, Value};
use atproto_types::xrpc::http::StatusCode;
use atproto_types::xrpc::{BinaryInput, XrpcError};
use futures_util::stream;
use pds_store::{BlobMeta, StoreError};
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;

use crate::error::ApiError;
use crate::state::AppState;

/// Bytes looked at to sniff a blob's type (the longest signature `infer`
/// checks is well within this).
pub const SNIFF_BYTES: usize = 8 * 1024;

/// The MIME type of a blob: sniffed from its first bytes, else the
/// request's `Content-Type` (unless a wildcard), else
/// `application/octet-stream`.
pub fn blob_mime(prefix: &[u8], content_type: &str) -> String {
    if let Some(kind) = infer::get(prefix) {
        return kind.mime_type().to_owned();
    }
    let declared = content_type.trim();
    if declared.is_empty() || declared.contains('*') || !declared.contains('/') {
        "application/octet-stream".to_owned()
    } else {
        declared.to_owned()
    }
}

/// Reads the first [`SNIFF_BYTES`] of `input` (fewer at its end).
async fn read_prefix(input: &mut BinaryInput) -> Result<Vec<u8>, XrpcError> {
    let mut prefix = Vec::new();
    while prefix.len() < SNIFF_BYTES {
        match input.chunk().await {
            None => break,
            Some(chunk) => prefix.extend_from_slice(&chunk?),
        }
    }
    Ok(prefix)
}

/// The rest of a request body as an [`AsyncRead`]. A read error (the size
/// limit, a broken connection) is kept in `failure` so that the caller can
/// answer with it rather than with the blob store's I/O error.
fn body_reader(
    input: BinaryInput,
    failure: Arc<Mutex<Option<XrpcError>>>,
) -> impl AsyncRead + Unpin + Send {
    let chunks = stream::unfold(input, move |mut input| {
        let failure = failure.clone();
        async move {
            match input.chunk().await? {
                Ok(bytes) => Some((Ok(bytes), input)),
                Err(e) => {
                    let message = e.message().unwrap_or("request body").to_owned();
                    if let Ok(mut slot) = failure.lock() {
                        *slot = Some(e);
                    }
                    Some((Err(std::io::Error::other(message)), input))
                }
            }
        }
    });
    StreamReader::new(Box::pin(chunks))
}

fn too_large<E>(limit: u64) -> XrpcError<E> {
    XrpcError::payload_too_large(format!(
        "request entity too large: blobs are limited to {limit} bytes"
    ))
}

/// Streams a blob upload into the blob store and records it for `did`.
/// Never holds more than [`SNIFF_BYTES`] plus one chunk in memory.
pub async fn upload<E>(
    state: &AppState,
    did: &str,
    mut input: BinaryInput,
) -> Result<BlobMeta, XrpcError<E>> {
    let limit = state.config.blob_upload_limit;
    let content_type = input.content_type().to_owned();
    let prefix = read_prefix(&mut input).await.map_err(XrpcError::widen)?;
    let mime = blob_mime(&prefix, &content_type);
    let failure = Arc::new(Mutex::new(None));
    let rest = body_reader(input, failure.clone());
    let mut reader = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(prefix), rest);
    let result = state
        .store
        .blobs()
        .upload(
            state.blobstore.as_ref(),
            did,
            &mime,
            &mut reader,
            Some(limit),
        )
        .await;
    match result {
        Ok(meta) => Ok(meta),
        Err(e) => {
            let body_error = failure.lock().ok().and_then(|mut slot| slot.take());
            match (body_error, e) {
                (Some(body), _) => Err(body.widen()),
                (None, StoreError::BlobTooLarge { limit }) => Err(too_large(limit)),
                (None, other) => Err(ApiError::from(other).into()),
            }
        }
    }
}

/// Every well-formed blob (`$type: blob`) in a record value. Malformed
/// ones are left to the record validation of the write path.
pub fn record_blobs(v: &Value, out: &mut Vec<Blob>) {
    match v {
        Value::Map(m) => {
            if matches!(m.get("$type"), Some(Value::String(t)) if t == "blob") {
                if let Ok(blob) = Blob::from_value(v) {
                    if !out.iter().any(|b| b.r#ref == blob.r#ref) {
                        out.push(blob);
                    }
                }
                return;
            }
            for child in m.values() {
                record_blobs(child, out);
            }
        }
        Value::Array(items) => {
            for child in items {
                record_blobs(child, out);
            }
        }
        _ => {}
    }
}

/// The `limit` (1 to 1000, default 500) and `cursor` (a blob CID) of a blob
/// listing (sync.listBlobs, repo.listMissingBlobs).
pub fn page_params<E>(
    limit: Option<i64>,
    cursor: Option<&str>,
) -> Result<(u32, Option<Cid>), XrpcError<E>> {
    let limit = limit.unwrap_or(500);
    let limit = u32::try_from(limit)
        .ok()
        .filter(|l| (1..=1000).contains(l))
        .ok_or_else(|| {
            XrpcError::invalid_request(format!("limit must be between 1 and 1000, got {limit}"))
        })?;
    let after = cursor
        .map(|c| {
            Cid::try_from(c).map_err(|_| XrpcError::invalid_request(format!("Invalid cursor: {c}")))
        })
        .transpose()?;
    Ok((limit, after))
}

fn bad<E>(name: &'static str, message: String) -> XrpcError<E> {
    XrpcError::new(StatusCode::BAD_REQUEST, name, Some(message))
}

/// Checks, as the reference does before a write commits, that every blob
/// the records reference was uploaded by `did` and not taken down
/// (`BlobNotFound`), and that the reference's `mimeType` and `size` are
/// the stored blob's (`InvalidMimeType`, `InvalidSize`). The lexicon's
/// `accept` and `maxSize` are then checked on the reference by the record
/// validation. The store re-checks existence inside the commit.
pub async fn check_record_blobs<'a, E>(
    state: &AppState,
    did: &str,
    records: impl IntoIterator<Item = &'a Value>,
) -> Result<(), XrpcError<E>> {
    let mut blobs = Vec::new();
    for record in records {
        record_blobs(record, &mut blobs);
    }
    for blob in blobs {
        let meta = state
            .store
            .blobs()
            .get_meta(did, &blob.r#ref)
            .await
            .map_err(ApiError::from)?
            .filter(|m| m.takedown_ref.is_none());
        let Some(meta) = meta else {
            return Err(bad(
                "BlobNotFound",
                format!("Could not find blob: {}", blob.r#ref),
            ));
        };
        if meta.mime_type != blob.mime_type {
            return Err(bad(
                "InvalidMimeType",
                format!(
                    "Referenced Mimetype does not match stored blob. Expected: {}, Got: {}",
                    meta.mime_type, blob.mime_type
                ),
            ));
        }
        if meta.size != blob.size {
            return Err(bad(
                "InvalidSize",
                format!(
                    "Referenced Size does not match stored blob. Expected: {}, Got: {}",
                    meta.size, blob.size
                ),
            ));
        }
    }
    Ok(())
}

/// Deletes the blobs (metadata and bytes) whose last reference a commit
/// removed, as the reference does. Each is re-checked under its row lock,
/// so a blob referenced again meanwhile stays, and so does one uploaded
/// (again) after `cutoff`, the time the write started. Failures are
/// logged: the orphan sweep retries them later.
pub async fn delete_unreferenced(state: &AppState, did: &str, cids: &[Cid], cutoff: i64) {
    for cid in cids {
        if let Err(e) = state
            .store
            .blobs()
            .delete_orphan(state.blobstore.as_ref(), did, cid, cutoff)
            .await
        {
            tracing::warn!(%did, %cid, error = %e, "could not delete an unreferenced blob");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_then_falls_back() {
        let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        assert_eq!(blob_mime(&png, "text/plain"), "image/png");
        assert_eq!(blob_mime(&[0xff, 0xd8, 0xff, 0xe0], "*/*"), "image/jpeg");
        assert_eq!(blob_mime(b"GIF89a....", "*/*"), "image/gif");
        assert_eq!(blob_mime(b"hello world", "text/plain"), "text/plain");
        assert_eq!(blob_mime(b"hello world", "*/*"), "application/octet-stream");
        assert_eq!(blob_mime(b"", "image/*"), "application/octet-stream");
    }

    #[test]
    fn finds_nested_blobs_once() {
        let link = "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
        let json = serde_json::json!({
            "$type": "x.y.z",
            "a": [{"b": {"$type": "blob", "ref": {"$link": link}, "mimeType": "image/png", "size": 3}}],
            "c": {"$type": "blob", "ref": {"$link": link}, "mimeType": "image/png", "size": 3},
        });
        let mut v = Value::from_json(&json).expect("value");
        // A malformed blob map (the data model parser refuses to build one
        // from JSON, so it is put in by hand) is skipped.
        if let Value::Map(m) = &mut v {
            let bad = [
                ("$type".to_owned(), Value::String("blob".into())),
                ("ref".to_owned(), Value::String("nope".into())),
            ];
            m.insert("d".into(), Value::Map(bad.into_iter().collect()));
        }
        let mut out = Vec::new();
        record_blobs(&v, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].mime_type, "image/png");
        assert_eq!(out[0].size, 3);
    }
}
