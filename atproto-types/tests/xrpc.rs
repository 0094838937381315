//! The XRPC runtime and the generated route traits, end to end: a test
//! server implements parts of `com.atproto.repo` and `com.atproto.sync`,
//! and requests go through the mounted axum router.
#![cfg(feature = "server")]

use std::sync::{Arc, Mutex};

use atproto_types::lexicons::com::atproto::repo::{
    self as repo, create_record, get_record, upload_blob, ComAtprotoRepo,
};
use atproto_types::lexicons::com::atproto::sync::{
    self as sync, get_blocks, subscribe_repos, ComAtprotoSync,
};
use atproto_types::xrpc::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use atproto_types::xrpc::http::request::Parts;
use atproto_types::xrpc::http::{HeaderValue, Method, Request, StatusCode};
use atproto_types::xrpc::{
    self, BinaryInput, BinaryOutput, Body, BodyLimits, NoAuth, NotImplemented, Router, XrpcAuth,
    XrpcError, XrpcRequest, XrpcState,
};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const JSON_LIMIT: usize = 1024;
const BINARY_LIMIT: u64 = 64;

/// An uploaded blob: (mime type, bytes).
type Upload = (String, Vec<u8>);

#[derive(Clone, Default)]
struct TestServer {
    /// Every blob uploaded.
    uploads: Arc<Mutex<Vec<Upload>>>,
}

impl XrpcState for TestServer {
    fn body_limits(&self, _: &'static str) -> BodyLimits {
        BodyLimits {
            json: JSON_LIMIT,
            binary: BINARY_LIMIT,
        }
    }

    /// A per-method layer (where a server puts rate limits): getBlocks
    /// answers carry a marker header.
    fn layer_route(
        nsid: &'static str,
        route: xrpc::MethodRouter<Self>,
    ) -> xrpc::MethodRouter<Self> {
        if nsid == get_blocks::NSID {
            route.layer(tower::util::MapResponseLayer::new(
                |mut response: xrpc::Response| {
                    response
                        .headers_mut()
                        .insert("x-layered", HeaderValue::from_static(get_blocks::NSID));
                    response
                },
            ))
        } else {
            route
        }
    }
}

/// `Authorization: Bearer good` or 401.
struct Bearer;

impl<S: Sync> XrpcAuth<S> for Bearer {
    async fn authenticate(parts: &mut Parts, _: &S, _: &'static str) -> Result<Self, XrpcError> {
        match parts
            .headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
        {
            Some("Bearer good") => Ok(Bearer),
            Some(_) => Err(XrpcError::invalid_token("Token could not be verified")),
            None => Err(XrpcError::authentication_required(
                "Authentication Required",
            )),
        }
    }
}

impl ComAtprotoRepo for TestServer {
    type ApplyWritesAuth = NotImplemented;
    type CreateRecordAuth = Bearer;
    type DeleteRecordAuth = NotImplemented;
    type DescribeRepoAuth = NotImplemented;
    type GetRecordAuth = NoAuth;
    type ImportRepoAuth = NotImplemented;
    // Mounted, but the default method answers 501.
    type ListMissingBlobsAuth = NoAuth;
    type ListRecordsAuth = NotImplemented;
    type PutRecordAuth = NotImplemented;
    type UploadBlobAuth = NoAuth;

    async fn create_record(
        &self,
        _: Bearer,
        req: XrpcRequest<create_record::Params, create_record::Input>,
    ) -> Result<create_record::Output, XrpcError<create_record::Error>> {
        let input = req.input;
        if input.rkey.as_ref().map(|r| r.as_str()) == Some("taken") {
            return Err(XrpcError::from(create_record::Error::InvalidSwap)
                .with_message("record already exists"));
        }
        let rkey = input
            .rkey
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .unwrap_or_else(|| "3jzfcijpj2z2a".into());
        let uri = format!("at://{}/{}/{}", input.repo, input.collection, rkey);
        req.response_headers.insert(
            "atproto-repo-rev"
                .parse()
                .map_err(|_| XrpcError::internal("header"))?,
            HeaderValue::from_static("3jzfcijpj2z2a"),
        );
        Ok(create_record::Output {
            cid: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
                .parse()
                .map_err(|_| XrpcError::internal("cid"))?,
            commit: None,
            uri: uri.parse().map_err(|_| XrpcError::internal("uri"))?,
            validation_status: Some(create_record::OutputValidationStatus::Valid),
            extra_data: Default::default(),
        })
    }

    async fn get_record(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_record::Params, ()>,
    ) -> Result<get_record::Output, XrpcError<get_record::Error>> {
        Err(XrpcError::from(get_record::Error::RecordNotFound)
            .with_message(format!("no record {}", req.params.rkey.as_str())))
    }

    async fn upload_blob(
        &self,
        _: NoAuth,
        req: XrpcRequest<upload_blob::Params, BinaryInput>,
    ) -> Result<upload_blob::Output, XrpcError<upload_blob::Error>> {
        let mut input = req.input;
        let mime = input.content_type().to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = input.chunk().await {
            bytes.extend_from_slice(&chunk.map_err(XrpcError::widen)?);
        }
        let blob = atproto_types::data::Blob::new(
            atproto_types::data::cid_for_raw(&bytes),
            mime.clone(),
            bytes.len() as u64,
        );
        if let Ok(mut uploads) = self.uploads.lock() {
            uploads.push((mime, bytes));
        }
        Ok(upload_blob::Output {
            blob: blob.into(),
            extra_data: Default::default(),
        })
    }
}

impl ComAtprotoSync for TestServer {
    type GetBlobAuth = NotImplemented;
    type GetBlocksAuth = NoAuth;
    type GetCheckoutAuth = NotImplemented;
    type GetHeadAuth = NotImplemented;
    type GetHostStatusAuth = NotImplemented;
    type GetLatestCommitAuth = NotImplemented;
    type GetRecordAuth = NotImplemented;
    type GetRepoAuth = NotImplemented;
    type GetRepoStatusAuth = NotImplemented;
    type ListBlobsAuth = NotImplemented;
    type ListHostsAuth = NotImplemented;
    type ListReposAuth = NotImplemented;
    type ListReposByCollectionAuth = NotImplemented;
    type NotifyOfUpdateAuth = NotImplemented;
    type RequestCrawlAuth = NotImplemented;
    type SubscribeReposAuth = NoAuth;

    async fn get_blocks(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_blocks::Params, ()>,
    ) -> Result<BinaryOutput, XrpcError<get_blocks::Error>> {
        // Not a real CAR: the requested CIDs, one a line.
        let body: Vec<&str> = req.params.cids.iter().map(|c| c.as_str()).collect();
        Ok(BinaryOutput::car(format!(
            "{}:{}",
            req.params.did.as_str(),
            body.join(",")
        )))
    }

    async fn subscribe_repos(
        &self,
        _: NoAuth,
        req: XrpcRequest<subscribe_repos::Params, xrpc::WebSocketUpgrade>,
    ) -> Result<xrpc::Response, XrpcError<subscribe_repos::Error>> {
        use xrpc::axum::extract::ws::Message;
        let cursor = req.params.cursor.unwrap_or(0);
        if cursor > 100 {
            return Err(XrpcError::from(subscribe_repos::Error::FutureCursor)
                .with_message("Cursor in the future."));
        }
        let message = subscribe_repos::Message::Identity(subscribe_repos::Identity {
            did: "did:plc:abc"
                .parse()
                .map_err(|_| XrpcError::internal("did"))?,
            handle: None,
            seq: cursor + 1,
            time: "2024-01-01T00:00:00.000Z"
                .parse()
                .map_err(|_| XrpcError::internal("time"))?,
            extra_data: Default::default(),
        });
        let frame = xrpc::Frame::from_message(subscribe_repos::NSID, &message)
            .map_err(|e| XrpcError::internal(e.to_string()))?;
        Ok(req.input.on_upgrade(move |mut socket| async move {
            let _ = socket.send(Message::Binary(frame.encode().into())).await;
            let end = xrpc::Frame::error("ConsumerTooSlow", Some("bye".into()));
            let _ = socket.send(Message::Binary(end.encode().into())).await;
        }))
    }
}

fn app(server: TestServer) -> Router {
    Router::new()
        .merge(repo::routes::<TestServer>())
        .merge(sync::routes::<TestServer>())
        .fallback(fallback)
        .with_state(server)
}

/// The server's own fallback: marks that it was reached, then answers
/// like a non-proxying XRPC server.
async fn fallback(req: Request<Body>) -> xrpc::Response {
    let mut response = axum_response(xrpc::unmatched(
        atproto_types::lex::catalog(),
        req.method(),
        req.uri().path(),
    ));
    response
        .headers_mut()
        .insert("x-fallback", HeaderValue::from_static("1"));
    response
}

fn axum_response(e: XrpcError) -> xrpc::Response {
    use xrpc::axum::response::IntoResponse;
    e.into_response()
}

struct Reply {
    status: StatusCode,
    headers: xrpc::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        match serde_json::from_slice(&self.body) {
            Ok(v) => v,
            Err(e) => panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)),
        }
    }

    fn error(&self) -> (StatusCode, String, String) {
        let j = self.json();
        (
            self.status,
            j["error"].as_str().unwrap_or("").to_owned(),
            j["message"].as_str().unwrap_or("").to_owned(),
        )
    }
}

async fn send(server: &TestServer, req: Request<Body>) -> Reply {
    let response = match app(server.clone()).oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = match response.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => panic!("reading the response: {e}"),
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn get(uri: &str) -> Request<Body> {
    request(Method::GET, uri, None, Body::empty())
}

fn request(method: Method, uri: &str, content_type: Option<&str>, body: Body) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        b = b.header(CONTENT_TYPE, ct);
    }
    match b.body(body) {
        Ok(r) => r,
        Err(e) => panic!("bad test request: {e}"),
    }
}

fn create(body: &str, auth: Option<&str>) -> Request<Body> {
    let mut req = request(
        Method::POST,
        "/xrpc/com.atproto.repo.createRecord",
        Some("application/json"),
        Body::from(body.to_owned()),
    );
    if let Some(a) = auth {
        if let Ok(v) = HeaderValue::from_str(a) {
            req.headers_mut().insert("authorization", v);
        }
    }
    req
}

const POST: &str = r#"{"repo": "did:plc:abc", "collection": "app.bsky.feed.post", "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00Z"}}"#;

#[tokio::test]
async fn happy_path_json_procedure() {
    let server = TestServer::default();
    let r = send(&server, create(POST, Some("Bearer good"))).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some(xrpc::JSON_CONTENT_TYPE)
    );
    assert_eq!(
        r.headers
            .get("atproto-repo-rev")
            .and_then(|v| v.to_str().ok()),
        Some("3jzfcijpj2z2a")
    );
    let j = r.json();
    assert_eq!(
        j["uri"],
        "at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a"
    );
    assert_eq!(j["validationStatus"], "valid");
}

#[tokio::test]
async fn auth_rejects() {
    let server = TestServer::default();
    let r = send(&server, create(POST, None)).await;
    assert_eq!(
        r.error(),
        (
            StatusCode::UNAUTHORIZED,
            "AuthenticationRequired".into(),
            "Authentication Required".into()
        )
    );
    let r = send(&server, create(POST, Some("Bearer bad"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error().1, "InvalidToken");
}

#[tokio::test]
async fn named_lexicon_errors() {
    let server = TestServer::default();
    let body = POST.replace("\"repo\"", "\"rkey\": \"taken\", \"repo\"");
    let r = send(&server, create(&body, Some("Bearer good"))).await;
    assert_eq!(
        r.error(),
        (
            StatusCode::BAD_REQUEST,
            "InvalidSwap".into(),
            "record already exists".into()
        )
    );
    let r = send(
        &server,
        get("/xrpc/com.atproto.repo.getRecord?repo=did:plc:abc&collection=app.bsky.feed.post&rkey=nope"),
    )
    .await;
    assert_eq!(
        r.error(),
        (
            StatusCode::BAD_REQUEST,
            "RecordNotFound".into(),
            "no record nope".into()
        )
    );
}

#[tokio::test]
async fn query_params() {
    let server = TestServer::default();
    // Repeated keys for arrays, percent-decoding, typed values.
    let cid1 = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
    let cid2 = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba";
    let r = send(
        &server,
        get(&format!(
            "/xrpc/com.atproto.sync.getBlocks?did=did%3Aplc%3Aabc&cids={cid1}&cids={cid2}"
        )),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(
        r.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        Some("application/vnd.ipld.car")
    );
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        format!("did:plc:abc:{cid1},{cid2}")
    );
    assert_eq!(
        r.headers.get("x-layered").and_then(|v| v.to_str().ok()),
        Some(get_blocks::NSID)
    );

    // A missing required parameter.
    let r = send(
        &server,
        get("/xrpc/com.atproto.repo.getRecord?repo=did:plc:abc&rkey=x"),
    )
    .await;
    let (status, error, message) = r.error();
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "InvalidRequest")
    );
    assert!(message.contains("collection"), "{message}");

    // A badly formatted one.
    let r = send(
        &server,
        get(&format!(
            "/xrpc/com.atproto.sync.getBlocks?did=nope&cids={cid1}"
        )),
    )
    .await;
    let (status, error, message) = r.error();
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "InvalidRequest")
    );
    assert!(message.contains("did"), "{message}");

    // An integer out of range, and a non-integer.
    for q in ["limit=0", "limit=abc"] {
        let r = send(
            &server,
            get(&format!("/xrpc/com.atproto.repo.listMissingBlobs?{q}")),
        )
        .await;
        let (status, error, message) = r.error();
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "InvalidRequest"),
            "{q}"
        );
        assert!(message.contains("limit"), "{q}: {message}");
    }
}

#[tokio::test]
async fn bad_bodies() {
    let server = TestServer::default();
    // Not JSON.
    let r = send(&server, create("{not json", Some("Bearer good"))).await;
    let (status, error, _) = r.error();
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "InvalidRequest")
    );

    // JSON that does not match the input schema.
    let r = send(
        &server,
        create(
            r#"{"collection": "app.bsky.feed.post", "record": {}}"#,
            Some("Bearer good"),
        ),
    )
    .await;
    let (status, error, message) = r.error();
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "InvalidRequest")
    );
    assert!(message.contains("Input.repo"), "{message}");

    // Wrong content type.
    let mut req = create(POST, Some("Bearer good"));
    req.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let (status, _, message) = send(&server, req).await.error();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("text/plain"), "{message}");

    // No body.
    let req = request(
        Method::POST,
        "/xrpc/com.atproto.repo.createRecord",
        Some("application/json"),
        Body::empty(),
    );
    let mut req = req;
    req.headers_mut()
        .insert("authorization", HeaderValue::from_static("Bearer good"));
    let (status, _, message) = send(&server, req).await.error();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("expected"), "{message}");

    // Too large.
    let big = POST.replace("\"hi\"", &format!("\"{}\"", "x".repeat(JSON_LIMIT)));
    let r = send(&server, create(&big, Some("Bearer good"))).await;
    assert_eq!(
        r.error().0,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.error().1, "PayloadTooLarge");

    // A body on a query.
    let req = request(
        Method::GET,
        "/xrpc/com.atproto.repo.getRecord?repo=did:plc:abc&collection=a.b.c&rkey=x",
        Some("application/json"),
        Body::from("{}"),
    );
    let (status, _, message) = send(&server, req).await.error();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("none was expected"), "{message}");
}

#[tokio::test]
async fn binary_upload() {
    let server = TestServer::default();
    let bytes = vec![7u8; 40];
    let req = request(
        Method::POST,
        "/xrpc/com.atproto.repo.uploadBlob",
        Some("image/png"),
        Body::from(bytes.clone()),
    );
    let r = send(&server, req).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let j = r.json();
    assert_eq!(j["blob"]["mimeType"], "image/png");
    assert_eq!(j["blob"]["size"], 40);
    let stored = server.uploads.lock().map(|u| u.clone()).unwrap_or_default();
    assert_eq!(stored, vec![("image/png".to_owned(), bytes)]);

    // Declared too large: rejected before reading.
    let mut req = request(
        Method::POST,
        "/xrpc/com.atproto.repo.uploadBlob",
        Some("image/png"),
        Body::from(vec![0u8; 100]),
    );
    req.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from_static("100"));
    assert_eq!(
        send(&server, req).await.error().0,
        StatusCode::PAYLOAD_TOO_LARGE
    );

    // Streamed past the limit (no Content-Length).
    let stream = ChunkBody([vec![1u8; 50], vec![2u8; 50]].into_iter().collect());
    let req = request(
        Method::POST,
        "/xrpc/com.atproto.repo.uploadBlob",
        Some("application/octet-stream"),
        Body::new(stream),
    );
    let r = send(&server, req).await;
    assert_eq!(r.error().0, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        server.uploads.lock().map(|u| u.len()).unwrap_or_default(),
        1
    );

    // No content type.
    let req = request(
        Method::POST,
        "/xrpc/com.atproto.repo.uploadBlob",
        None,
        Body::from(vec![1u8; 4]),
    );
    let (status, _, message) = send(&server, req).await.error();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("Content-Type"), "{message}");
}

/// A body yielding `chunks` one by one, with no size hint (like a
/// chunked upload).
struct ChunkBody(std::collections::VecDeque<Vec<u8>>);

impl http_body::Body for ChunkBody {
    type Data = xrpc::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<xrpc::Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(
            self.0
                .pop_front()
                .map(|c| Ok(http_body::Frame::data(xrpc::Bytes::from(c)))),
        )
    }
}

#[tokio::test]
async fn unimplemented_and_unknown_methods() {
    let server = TestServer::default();
    // NotImplemented: not mounted, the server's fallback gets it.
    let req = request(
        Method::POST,
        "/xrpc/com.atproto.repo.deleteRecord",
        Some("application/json"),
        Body::from("{}"),
    );
    let r = send(&server, req).await;
    assert_eq!(
        r.headers.get("x-fallback").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    assert_eq!(
        r.error(),
        (
            StatusCode::NOT_IMPLEMENTED,
            "MethodNotImplemented".into(),
            "Method Not Implemented".into()
        )
    );

    // Mounted but not overridden: the default method answers 501.
    let r = send(&server, get("/xrpc/com.atproto.repo.listMissingBlobs")).await;
    assert!(r.headers.get("x-fallback").is_none());
    assert_eq!(r.error().0, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.error().1, "MethodNotImplemented");

    // Unknown NSID.
    let r = send(&server, get("/xrpc/com.example.nothing.here")).await;
    assert_eq!(r.error().0, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(r.error().1, "MethodNotImplemented");

    // Malformed NSID.
    let r = send(&server, get("/xrpc/not-an-nsid")).await;
    assert_eq!(r.error().0, StatusCode::BAD_REQUEST);

    // Wrong verb on a mounted method, and on an unmounted known one.
    let r = send(&server, get("/xrpc/com.atproto.repo.createRecord")).await;
    let (status, error, message) = r.error();
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "InvalidRequest")
    );
    assert_eq!(message, "Incorrect HTTP method (GET) expected POST");
    let r = send(&server, get("/xrpc/com.atproto.repo.deleteRecord")).await;
    assert_eq!(r.error().2, "Incorrect HTTP method (GET) expected POST");
}

#[tokio::test]
async fn over_tcp() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("local_addr: {e}"),
    };
    let server = TestServer::default();
    let app = app(server.clone());
    let task = tokio::spawn(async move { xrpc::axum::serve(listener, app).await });

    // A chunked upload past the limit over a real connection.
    let mut stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connect: {e}"),
    };
    let chunk = "x".repeat(40);
    let request = format!(
        "POST /xrpc/com.atproto.repo.uploadBlob HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n28\r\n{chunk}\r\n28\r\n{chunk}\r\n0\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        panic!("write: {e}");
    }
    let mut response = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await;
    assert!(matches!(read, Ok(Ok(_))), "read: {read:?}");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"error\":\"PayloadTooLarge\""), "{text}");
    task.abort();
}

/// Read an HTTP response head, up to the blank line.
async fn read_head(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            other => panic!("reading the response head: {other:?}"),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Read one unmasked server WebSocket frame: (opcode, payload).
async fn read_ws_frame(stream: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut head = [0u8; 2];
    if let Err(e) = stream.read_exact(&mut head).await {
        panic!("frame head: {e}");
    }
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            if let Err(e) = stream.read_exact(&mut b).await {
                panic!("frame length: {e}");
            }
            u16::from_be_bytes(b) as usize
        }
        127 => panic!("test frames are small"),
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    if let Err(e) = stream.read_exact(&mut payload).await {
        panic!("frame payload: {e}");
    }
    (head[0] & 0x0f, payload)
}

#[tokio::test]
async fn subscription_over_websocket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("local_addr: {e}"),
    };
    let app = app(TestServer::default());
    let task = tokio::spawn(async move { xrpc::axum::serve(listener, app).await });

    let handshake = |query: &str| {
        format!(
            "GET /xrpc/com.atproto.sync.subscribeRepos{query} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    };
    let connect = || async {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => panic!("connect: {e}"),
        }
    };
    // Upgrade, then an identity message and an error frame.
    let mut stream = connect().await;
    if let Err(e) = stream.write_all(handshake("?cursor=5").as_bytes()).await {
        panic!("write: {e}");
    }
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let (opcode, payload) = read_ws_frame(&mut stream).await;
    assert_eq!(opcode, 2, "a binary frame");
    let frame = match xrpc::Frame::decode(&payload) {
        Ok(f) => f,
        Err(e) => panic!("frame: {e}"),
    };
    let xrpc::Frame::Message { t, .. } = &frame else {
        panic!("expected a message frame, got {frame:?}");
    };
    assert_eq!(t, "#identity");
    let message: subscribe_repos::Message = match frame.into_message(subscribe_repos::NSID) {
        Ok(m) => m,
        Err(e) => panic!("message: {e}"),
    };
    match message {
        subscribe_repos::Message::Identity(i) => assert_eq!(i.seq, 6),
        other => panic!("expected an identity message, got {other:?}"),
    }
    let (_, payload) = read_ws_frame(&mut stream).await;
    assert_eq!(
        xrpc::Frame::decode(&payload).ok(),
        Some(xrpc::Frame::error("ConsumerTooSlow", Some("bye".into())))
    );

    // Params and named errors before the upgrade are HTTP errors.
    for (query, error) in [
        ("?cursor=abc", "InvalidRequest"),
        ("?cursor=500", "FutureCursor"),
    ] {
        let mut stream = connect().await;
        if let Err(e) = stream.write_all(handshake(query).as_bytes()).await {
            panic!("write: {e}");
        }
        let head = read_head(&mut stream).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{query}: {head}");
        let mut body = vec![0u8; 256];
        let n = match stream.read(&mut body).await {
            Ok(n) => n,
            Err(e) => panic!("body: {e}"),
        };
        let text = String::from_utf8_lossy(&body[..n]);
        assert!(text.contains(error), "{query}: {text}");
    }

    // A plain GET (no upgrade) is an invalid request.
    let r = send(
        &TestServer::default(),
        get("/xrpc/com.atproto.sync.subscribeRepos"),
    )
    .await;
    assert_eq!(r.error().0, StatusCode::BAD_REQUEST);
    task.abort();
}
