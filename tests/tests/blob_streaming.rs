//! uploadBlob streams: a 50 MiB upload while the process's peak resident
//! set is watched, and bodies without a `Content-Length` cut at the limit.
//! A test binary of its own, so that no other test's memory is counted.

use std::time::Duration;

use pds_tests::{both_backends, Backend, Options, TestPds};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UPLOAD: &str = "/xrpc/com.atproto.repo.uploadBlob";

/// Tests here run one at a time: another test's work (an Argon2 password
/// hash takes 19 MiB) would count in the measured peak.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn start(backend: Backend, limit: &str) -> (TestPds, String, String) {
    let pds = TestPds::start(
        Options::new(backend)
            .with_plc()
            .set("PDS_BLOB_UPLOAD_LIMIT", limit),
    )
    .await;
    let out = pds
        .create_account("alice.test", "alice@example.com", "correct horse")
        .await;
    let did = out["did"].as_str().expect("did").to_owned();
    let jwt = out["accessJwt"].as_str().expect("accessJwt").to_owned();
    (pds, did, jwt)
}

/// Sends an upload over a raw connection, `total` bytes of a repeating
/// pattern in 64 KiB writes, with a `Content-Length` or chunked; returns
/// the status and body. `sink` receives the bytes as they are sent.
async fn raw_upload(
    pds: &TestPds,
    jwt: &str,
    total: usize,
    chunked: bool,
    mut sink: impl FnMut(&[u8]),
) -> (u16, Value) {
    let addr = pds.url.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let length = if chunked {
        "transfer-encoding: chunked".to_owned()
    } else {
        format!("content-length: {total}")
    };
    let head = format!(
        "POST {UPLOAD} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {jwt}\r\n\
         content-type: application/octet-stream\r\n{length}\r\nconnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.expect("head");
    let mut chunk = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    let mut counter = 0u32;
    while sent < total {
        let n = chunk.len().min(total - sent);
        for (i, b) in chunk.iter_mut().take(n).enumerate() {
            *b = (counter.wrapping_mul(31).wrapping_add(i as u32) % 251) as u8;
        }
        counter += 1;
        let piece = &chunk[..n];
        sink(piece);
        let written = if chunked {
            let mut framed = format!("{n:x}\r\n").into_bytes();
            framed.extend_from_slice(piece);
            framed.extend_from_slice(b"\r\n");
            conn.write_all(&framed).await
        } else {
            conn.write_all(piece).await
        };
        if written.is_err() {
            break; // the server answered early and closed
        }
        sent += n;
    }
    if chunked && sent == total {
        let _ = conn.write_all(b"0\r\n\r\n").await;
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    // A chunked response body: take the JSON between the chunk framing.
    let json_text = body
        .find('{')
        .and_then(|s| body.rfind('}').map(|e| &body[s..=e]))
        .unwrap_or("null");
    (
        status,
        serde_json::from_str(json_text).unwrap_or(Value::Null),
    )
}

/// The peak resident set of this process since the last reset, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak RSS");
}

both_backends! {
    async fn large_upload_is_streamed(backend: Backend) {
        const SIZE: usize = 50 * 1024 * 1024;
        let _serial = SERIAL.lock().await;
        let (pds, did, jwt) = start(backend, "67108864").await;
        let mut hasher = pds_store::blobstore::CidHasher::default();
        reset_peak_rss();
        let before = peak_rss_kib();
        let (status, body) = raw_upload(&pds, &jwt, SIZE, false, |b| hasher.update(b)).await;
        let grown_kib = peak_rss_kib().saturating_sub(before);
        assert_eq!(status, 200, "{body}");
        let (cid, size) = hasher.finish().expect("cid");
        assert_eq!(body["blob"]["ref"]["$link"], cid.to_string().as_str(), "{body}");
        assert_eq!(body["blob"]["size"], SIZE as u64);
        // The server (in this process) never held the blob: the peak
        // resident set grew by far less than its 50 MiB.
        eprintln!("peak RSS growth during a 50 MiB upload: {grown_kib} KiB");
        assert!(grown_kib < 24 * 1024, "peak RSS grew by {grown_kib} KiB");
        let read = pds.state.blobstore.get(&did, &cid).await.expect("get").expect("stored");
        assert_eq!(read.size, size);
        // getBlob announces the length and streams it back.
        let res = pds
            .client
            .get(format!("{}/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}", pds.url))
            .send()
            .await
            .expect("getBlob");
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(res.content_length(), Some(SIZE as u64));
    }

    async fn unsized_bodies_are_cut_at_the_limit(backend: Backend) {
        let _serial = SERIAL.lock().await;
        let (pds, did, jwt) = start(backend, "1000").await;
        // Chunked, no Content-Length: the stream is cut at the limit.
        let (status, body) = raw_upload(&pds, &jwt, 5000, true, |_| {}).await;
        assert_eq!((status, body["error"].as_str()), (413, Some("PayloadTooLarge")), "{body}");
        assert!(body["message"].is_string(), "{body}");
        // Declared too large: refused before reading.
        let (status, body) = raw_upload(&pds, &jwt, 5000, false, |_| {}).await;
        assert_eq!((status, body["error"].as_str()), (413, Some("PayloadTooLarge")), "{body}");
        // Chunked within the limit is fine.
        let (status, body) = raw_upload(&pds, &jwt, 1000, true, |_| {}).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["blob"]["size"], 1000);
        // Nothing of the refused bodies was kept.
        let (count, size) = pds.state.store.blobs().stats(&did).await.expect("stats");
        assert_eq!((count, size), (1, 1000));
    }
}
