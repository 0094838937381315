//! The service proxy and `app.bsky.actor` preferences, over real HTTP on
//! SQLite and PostgreSQL, with the reference PLC directory on loopback.
//!
//! A fake service (an axum server on a loopback port started by the test)
//! plays the appview and, addressed by its did:web through the
//! `atproto-proxy` header, the chat service: it records every request it
//! gets (method, path, query, headers, body) and answers by path. The
//! tests check what it received, including the service JWT, whose
//! signature is verified against the account's key from the PLC
//! directory.

use std::sync::{Arc, Mutex};

use atproto_types::crypto::PublicKey;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pds_tests::{both_backends, plc_url, Backend, Options, Reply, TestPds};
use serde_json::{json, Value};

/// One request the fake service received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The bearer token the PDS sent.
    fn bearer(&self) -> &str {
        self.header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .unwrap_or_else(|| panic!("no bearer token: {:?}", self.headers))
    }
}

#[derive(Clone)]
struct Fake {
    did: String,
    url: String,
    dead_url: String,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Fake {
    /// Starts the fake service on a loopback port.
    async fn start() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        // A port nothing listens on: bound, then released.
        let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead_port = dead.local_addr().expect("addr").port();
        drop(dead);
        let fake = Fake {
            did: format!("did:web:127.0.0.1%3A{port}"),
            url: format!("http://127.0.0.1:{port}"),
            dead_url: format!("http://127.0.0.1:{dead_port}"),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut *self.log.lock().expect("log"))
    }

    /// The one request received since the last call.
    #[track_caller]
    fn one(&self) -> Received {
        let mut all = self.take();
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }
}

/// The fake service's answers, by path.
async fn answer(State(fake): State<Fake>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    if path == "/.well-known/did.json" {
        return Json(json!({
            "@context": ["https://www.w3.org/ns/did/v1"],
            "id": fake.did,
            "service": [
                {"id": "#bsky_chat", "type": "BskyChatService", "serviceEndpoint": fake.url},
                {"id": "#dead", "type": "BskyChatService", "serviceEndpoint": fake.dead_url},
            ],
        }))
        .into_response();
    }
    fake.log.lock().expect("log").push(Received {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: body.to_vec(),
    });
    match path.as_str() {
        "/xrpc/app.bsky.feed.getTimeline" => (
            [
                ("content-language", "en"),
                ("atproto-repo-rev", "3lrev"),
                ("atproto-content-labelers", "did:plc:labeler"),
                ("x-internal", "not for clients"),
            ],
            Json(json!({"feed": [], "cursor": "next"})),
        )
            .into_response(),
        "/xrpc/app.bsky.feed.getPostThread" => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "NotFound", "message": "Post not found: at://x"})),
        )
            .into_response(),
        "/xrpc/app.bsky.feed.getFeed" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "InternalServerError", "message": "feed generator broke"})),
        )
            .into_response(),
        "/xrpc/app.bsky.notification.listNotifications" => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "30")],
            Json(json!({"error": "RateLimitExceeded", "message": "slow down"})),
        )
            .into_response(),
        _ => Json(json!({"ok": true, "bytes": body.len()})).into_response(),
    }
}

async fn server(backend: Backend, fake: &Fake) -> TestPds {
    TestPds::start(
        Options::new(backend)
            .with_plc()
            .set("PDS_BSKY_APP_VIEW_URL", &fake.url)
            .set("PDS_BSKY_APP_VIEW_DID", &fake.did),
    )
    .await
}

/// Creates an account; returns its DID and access token.
async fn account(pds: &TestPds, handle: &str) -> (String, String) {
    let c = pds
        .create_account(handle, &format!("{handle}@example.com"), "a-password")
        .await;
    (
        c["did"].as_str().expect("did").to_owned(),
        c["accessJwt"].as_str().expect("access").to_owned(),
    )
}

/// An access token of a new app password of the account.
async fn app_password_session(
    pds: &TestPds,
    handle: &str,
    access: &str,
    privileged: bool,
) -> String {
    let name = if privileged { "privileged" } else { "plain" };
    let created = pds
        .xrpc_post(
            "com.atproto.server.createAppPassword",
            &json!({"name": name, "privileged": privileged}),
            Some(access),
        )
        .await
        .ok();
    let session = pds
        .login(handle, created["password"].as_str().expect("password"))
        .await;
    session["accessJwt"].as_str().expect("access").to_owned()
}

/// The account's signing key, from its DID document in the PLC directory.
async fn plc_signing_key(did: &str) -> PublicKey {
    let doc: Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("{}/{did}", plc_url()))
        .send()
        .await
        .expect("PLC answers")
        .json()
        .await
        .expect("JSON DID document");
    let key = pds::identity::doc::signing_key(&doc, did)
        .expect("parseable key")
        .expect("a signing key");
    PublicKey::from_did_key(&key).expect("did:key")
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Verifies the service token the upstream got: signed by the account's
/// key, issued by the account for `aud`, bound to `lxm`, short-lived.
#[track_caller]
fn check_service_token(got: &Received, key: &PublicKey, did: &str, aud: &str, lxm: &str) {
    let claims = pds::service_auth::verify(
        got.bearer(),
        key,
        &pds::service_auth::Expect {
            aud: Some(&[aud]),
            lxm: Some(lxm),
        },
    )
    .unwrap_or_else(|e| panic!("service token refused: {e}"));
    assert_eq!(claims.iss, did);
    assert_eq!(claims.aud, aud);
    assert_eq!(claims.lxm.as_deref(), Some(lxm));
    let now = now_secs();
    assert!(
        claims.exp > now && claims.exp <= now + 61,
        "exp {} now {now}",
        claims.exp
    );
}

/// A GET with extra headers.
async fn get_with(
    pds: &TestPds,
    path: &str,
    bearer: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = pds.client.get(format!("{}{path}", pds.url));
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    pds.request(req).await
}

/// A POST of raw bytes with extra headers.
async fn post_with(
    pds: &TestPds,
    path: &str,
    bearer: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = pds
        .client
        .post(format!("{}{path}", pds.url))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    pds.request(req).await
}

/// A POST with a chunked body, written by hand over TCP (the HTTP client
/// always sends a length); returns the status and the whole response.
async fn raw_chunked_post(
    pds: &TestPds,
    path: &str,
    bearer: &str,
    chunks: &[Vec<u8>],
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = pds.url.strip_prefix("http://").expect("http URL");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&request).await.expect("write request");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    (status, text)
}

both_backends! {
    async fn forwards_to_the_appview(backend: Backend) {
        let fake = Fake::start().await;
        let pds = server(backend, &fake).await;
        let (did, access) = account(&pds, "ava.test").await;
        let key = plc_signing_key(&did).await;

        // A GET: path and query as sent, the reference's request headers
        // only, a service token in place of the session token.
        let r = get_with(
            &pds,
            "/xrpc/app.bsky.feed.getTimeline?limit=5&cursor=abc%20d",
            Some(&access),
            &[
                ("accept-language", "fr, en;q=0.5"),
                ("atproto-accept-labelers", "did:plc:labeler;redact"),
                ("x-bsky-topics", "dev"),
                ("cookie", "secret=1"),
                ("x-other", "dropped"),
            ],
        )
        .await;
        assert_eq!(r.ok(), json!({"feed": [], "cursor": "next"}));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("content-language"), Some("en"));
        assert_eq!(r.header("atproto-repo-rev"), Some("3lrev"));
        assert_eq!(r.header("atproto-content-labelers"), Some("did:plc:labeler"));
        assert_eq!(r.header("x-internal"), None);
        let got = fake.one();
        assert_eq!(got.method, "GET");
        assert_eq!(got.path, "/xrpc/app.bsky.feed.getTimeline");
        assert_eq!(got.query.as_deref(), Some("limit=5&cursor=abc%20d"));
        assert_eq!(got.header("accept-language"), Some("fr, en;q=0.5"));
        assert_eq!(got.header("atproto-accept-labelers"), Some("did:plc:labeler;redact"));
        assert_eq!(got.header("x-bsky-topics"), Some("dev"));
        assert_eq!(got.header("cookie"), None);
        assert_eq!(got.header("x-other"), None);
        assert_eq!(got.header("atproto-proxy"), None);
        // No accept-encoding from the client: the upstream is asked for
        // the identity encoding.
        assert_eq!(got.header("accept-encoding"), Some("identity"));
        assert_ne!(got.bearer(), access);
        check_service_token(&got, &key, &did, &fake.did, "app.bsky.feed.getTimeline");

        // A POST: the body arrives byte for byte with its content type.
        let big = json!({"interactions": [], "padding": "x".repeat(100_000)});
        let bytes = serde_json::to_vec(&big).expect("json");
        let r = post_with(
            &pds,
            "/xrpc/app.bsky.feed.sendInteractions",
            Some(&access),
            "application/json",
            bytes.clone(),
            &[],
        )
        .await;
        assert_eq!(r.ok()["bytes"], bytes.len());
        let got = fake.one();
        assert_eq!(got.method, "POST");
        assert_eq!(got.body, bytes);
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(got.header("content-length"), Some(bytes.len().to_string().as_str()));
        check_service_token(&got, &key, &did, &fake.did, "app.bsky.feed.sendInteractions");

        // A chunked body (no length) streams through as it came.
        let chunks: Vec<Vec<u8>> = (0..8).map(|i| vec![b'a' + i; 4096]).collect();
        let (status, text) = raw_chunked_post(&pds, "/xrpc/app.bsky.feed.sendInteractions", &access, &chunks).await;
        assert_eq!(status, 200, "{text}");
        let got = fake.one();
        assert_eq!(got.body, chunks.concat());
        assert_eq!(got.header("content-length"), None);
        assert_eq!(got.header("transfer-encoding"), Some("chunked"));
        check_service_token(&got, &key, &did, &fake.did, "app.bsky.feed.sendInteractions");

        // With the client's accept-encoding, the upstream's encoding comes back.
        let r = get_with(&pds, "/xrpc/app.bsky.feed.getTimeline", Some(&access), &[("accept-encoding", "gzip")]).await;
        assert_eq!(r.status, 200);
        assert_eq!(fake.one().header("accept-encoding"), Some("gzip"));

        // Over the JSON body limit: 413, nothing forwarded.
        let huge = serde_json::to_vec(&json!({"padding": "x".repeat(200_000)})).expect("json");
        post_with(&pds, "/xrpc/app.bsky.feed.sendInteractions", Some(&access), "application/json", huge, &[])
            .await
            .assert_error(413, "PayloadTooLarge");
        assert!(fake.take().is_empty());

        // The configured appview named by the header goes the same way.
        let r = get_with(
            &pds,
            "/xrpc/app.bsky.actor.getProfile?actor=ava.test",
            Some(&access),
            &[("atproto-proxy", &format!("{}#bsky_appview", fake.did))],
        )
        .await;
        r.ok();
        check_service_token(&fake.one(), &key, &did, &fake.did, "app.bsky.actor.getProfile");

        // Unserved com.atproto methods go to the appview too.
        post_with(&pds, "/xrpc/com.atproto.temp.requestPhoneVerification", Some(&access), "application/json",
            br#"{"phoneNumber":"+15555550100"}"#.to_vec(), &[]).await.ok();
        assert_eq!(fake.one().path, "/xrpc/com.atproto.temp.requestPhoneVerification");
        pds.stop().await;
    }

    async fn upstream_errors(backend: Backend) {
        let fake = Fake::start().await;
        let pds = server(backend, &fake).await;
        let (_, access) = account(&pds, "bea.test").await;

        // An XRPC error passes through: status, name, message.
        let r = pds.get("/xrpc/app.bsky.feed.getPostThread?uri=at://x", Some(&access)).await;
        assert_eq!(r.assert_error(400, "NotFound"), "Post not found: at://x");
        // With the reference's forwarded headers.
        let r = pds.get("/xrpc/app.bsky.notification.listNotifications", Some(&access)).await;
        assert_eq!(r.assert_error(429, "RateLimitExceeded"), "slow down");
        assert_eq!(r.header("retry-after"), Some("30"));
        // An upstream 500 is a 502 for the client, name and message kept.
        let r = pds.get("/xrpc/app.bsky.feed.getFeed?feed=at://x", Some(&access)).await;
        assert_eq!(r.status, 502);
        assert_eq!(r.json()["message"], "feed generator broke");
        assert_eq!(fake.take().len(), 3);

        // An upstream nobody answers: 502 UpstreamFailure.
        let r = get_with(
            &pds,
            "/xrpc/chat.bsky.convo.listConvos",
            Some(&access),
            &[("atproto-proxy", &format!("{}#dead", fake.did))],
        )
        .await;
        r.assert_error(502, "UpstreamFailure");

        // A known method with the wrong verb never leaves the server.
        pds.get("/xrpc/app.bsky.feed.sendInteractions", Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(fake.take().is_empty());
        pds.stop().await;
    }

    async fn auth_rules(backend: Backend) {
        let fake = Fake::start().await;
        // The chat service: another server, known only by its did:web.
        let chat_service = Fake::start().await;
        let pds = server(backend, &fake).await;
        let (did, access) = account(&pds, "cai.test").await;
        let key = plc_signing_key(&did).await;
        let plain = app_password_session(&pds, "cai.test", &access, false).await;
        let privileged = app_password_session(&pds, "cai.test", &access, true).await;
        let chat = [("atproto-proxy", format!("{}#bsky_chat", chat_service.did))];
        let chat: Vec<(&str, &str)> = chat.iter().map(|(k, v)| (*k, v.as_str())).collect();

        // No credentials: refused (as the reference), nothing forwarded.
        pds.get("/xrpc/app.bsky.feed.getTimeline", None)
            .await
            .assert_error(401, "AuthMissing");
        pds.get("/xrpc/app.bsky.feed.getTimeline", Some("not-a-token"))
            .await
            .assert_error(400, "InvalidToken");
        assert!(fake.take().is_empty());

        // App passwords reach the appview.
        pds.get("/xrpc/app.bsky.feed.getTimeline", Some(&plain)).await.ok();
        check_service_token(&fake.one(), &key, &did, &fake.did, "app.bsky.feed.getTimeline");

        // Chat goes to the service the header names (its did:web document
        // gives the endpoint); only full and privileged sessions.
        for token in [&access, &privileged] {
            get_with(&pds, "/xrpc/chat.bsky.convo.listConvos?limit=1", Some(token), &chat).await.ok();
            let got = chat_service.one();
            assert_eq!(got.path, "/xrpc/chat.bsky.convo.listConvos");
            assert_eq!(got.query.as_deref(), Some("limit=1"));
            check_service_token(&got, &key, &did, &chat_service.did, "chat.bsky.convo.listConvos");
        }
        let m = get_with(&pds, "/xrpc/chat.bsky.convo.listConvos", Some(&plain), &chat)
            .await
            .assert_error(400, "InvalidToken");
        assert_eq!(m, "Bad token method");
        // Chat methods outside the privileged list are open to app passwords.
        get_with(&pds, "/xrpc/chat.bsky.convo.getUnreadCounts", Some(&plain), &chat).await.ok();
        assert_eq!(chat_service.one().path, "/xrpc/chat.bsky.convo.getUnreadCounts");
        // Chat has no default service.
        let m = pds.get("/xrpc/chat.bsky.convo.listConvos", Some(&access))
            .await
            .assert_error(501, "MethodNotImplemented");
        assert!(m.contains("chat.bsky.convo.listConvos"), "{m}");

        // Protected methods are never proxied, whoever asks: this server
        // serves them all (admin.sendEmail wants the admin's credentials).
        chat_service.take();
        for token in [&access, &plain] {
            post_with(&pds, "/xrpc/com.atproto.admin.sendEmail", Some(token), "application/json",
                br#"{"recipientDid":"did:plc:x","content":"hi","senderDid":"did:plc:y"}"#.to_vec(), &chat)
                .await
                .assert_error(401, "AuthenticationRequired");
        }
        assert!(chat_service.take().is_empty(), "nothing forwarded");
        // A protected method this server serves stays local with the
        // header, and app passwords may not call it.
        pds.request(
            pds.client
                .post(format!("{}/xrpc/com.atproto.server.createAppPassword", pds.url))
                .bearer_auth(&plain)
                .header("atproto-proxy", chat[0].1)
                .json(&json!({"name": "sneaky"})),
        )
        .await
        .assert_error(400, "InvalidToken");
        assert!(fake.take().is_empty());
        assert!(chat_service.take().is_empty());
        pds.stop().await;
    }

    async fn proxy_header_errors(backend: Backend) {
        let fake = Fake::start().await;
        let pds = server(backend, &fake).await;
        let (_, access) = account(&pds, "dan.test").await;
        let path = "/xrpc/app.bsky.feed.getTimeline";
        for (header, message) in [
            ("did:web:api.bsky.app", "no service id specified in proxy header"),
            ("#bsky_appview", "no did specified in proxy header"),
            ("did:web:api.bsky.app#a#b", "invalid proxy header format"),
            ("did:web:api.bsky.app #bsky_appview", "proxy header cannot contain spaces"),
            ("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#bsky_appview", "could not resolve proxy did"),
            ("did:example:nope#bsky_appview", "could not resolve proxy did"),
        ] {
            let m = get_with(&pds, path, Some(&access), &[("atproto-proxy", header)])
                .await
                .assert_error(400, "InvalidRequest");
            assert_eq!(m, message, "{header}");
        }
        let missing = format!("{}#nothing_here", fake.did);
        let m = get_with(&pds, path, Some(&access), &[("atproto-proxy", &missing)])
            .await
            .assert_error(400, "InvalidRequest");
        assert_eq!(m, "could not resolve proxy did service url");
        assert!(fake.take().is_empty());
        pds.stop().await;
    }

    async fn preferences(backend: Backend) {
        let fake = Fake::start().await;
        let pds = server(backend, &fake).await;
        let (_, access) = account(&pds, "eve.test").await;
        let plain = app_password_session(&pds, "eve.test", &access, false).await;
        let privileged = app_password_session(&pds, "eve.test", &access, true).await;
        const GET: &str = "/xrpc/app.bsky.actor.getPreferences";
        const PUT: &str = "app.bsky.actor.putPreferences";

        assert_eq!(pds.get(GET, Some(&access)).await.ok(), json!({"preferences": []}));
        let prefs = json!([
            {"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true},
            {"$type": "app.bsky.actor.defs#personalDetailsPref", "birthDate": "1990-01-01T00:00:00.000Z"},
            {"$type": "app.bsky.actor.defs#savedFeedsPrefV2", "items": [
                {"id": "3l6", "type": "timeline", "value": "following", "pinned": true}
            ]},
            {"$type": "app.bsky.actor.defs#somethingNewPref", "extra": {"kept": [1, 2]}},
        ]);
        pds.xrpc_post(PUT, &json!({"preferences": prefs}), Some(&access)).await.done();
        assert_eq!(pds.get(GET, Some(&access)).await.ok()["preferences"], prefs);
        assert_eq!(pds.get(GET, Some(&privileged)).await.ok()["preferences"], prefs);
        // A non-privileged app password does not see personal details.
        let seen = pds.get(GET, Some(&plain)).await.ok();
        let types: Vec<&str> = seen["preferences"]
            .as_array()
            .expect("array")
            .iter()
            .map(|p| p["$type"].as_str().expect("$type"))
            .collect();
        assert_eq!(
            types,
            [
                "app.bsky.actor.defs#adultContentPref",
                "app.bsky.actor.defs#savedFeedsPrefV2",
                "app.bsky.actor.defs#somethingNewPref",
            ]
        );
        // ... and may not write them.
        let m = pds
            .xrpc_post(PUT, &json!({"preferences": [prefs[1].clone()]}), Some(&plain))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(m.contains("authorization"), "{m}");
        // Other preferences it may replace (the whole set).
        let mine = json!([{"$type": "app.bsky.actor.defs#adultContentPref", "enabled": false}]);
        pds.xrpc_post(PUT, &json!({"preferences": mine}), Some(&plain)).await.done();
        assert_eq!(pds.get(GET, Some(&access)).await.ok()["preferences"], mine);

        // Only app.bsky types; every item needs a $type.
        let m = pds
            .xrpc_post(PUT, &json!({"preferences": [{"$type": "com.example.pref", "x": 1}]}), Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(m.contains("app.bsky"), "{m}");
        pds.xrpc_post(PUT, &json!({"preferences": [{"enabled": true}]}), Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        pds.xrpc_post(PUT, &json!({}), Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        assert_eq!(pds.get(GET, Some(&access)).await.ok()["preferences"], mine);
        // Authentication is required.
        pds.get(GET, None).await.assert_error(401, "AuthMissing");

        // Served locally even when the client names the appview.
        let r = get_with(&pds, GET, Some(&access), &[("atproto-proxy", &format!("{}#bsky_appview", fake.did))]).await;
        assert_eq!(r.ok()["preferences"], mine);
        assert!(fake.take().is_empty());
        pds.stop().await;
    }
}

/// Without an appview configured, unserved methods answer 501 naming the
/// method; createReport goes to the report service; the header still
/// reaches any service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_services() {
    let fake = Fake::start().await;
    let reports = Fake::start().await;
    let pds = TestPds::start(
        Options::new(Backend::Sqlite)
            .with_plc()
            .set("PDS_REPORT_SERVICE_URL", &reports.url)
            .set("PDS_REPORT_SERVICE_DID", &reports.did),
    )
    .await;
    let (did, access) = account(&pds, "fay.test").await;
    let key = plc_signing_key(&did).await;
    let m = pds
        .get("/xrpc/app.bsky.feed.getTimeline", Some(&access))
        .await
        .assert_error(501, "MethodNotImplemented");
    assert_eq!(m, "No service configured for app.bsky.feed.getTimeline");

    let report = json!({
        "reasonType": "com.atproto.moderation.defs#reasonSpam",
        "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": did},
    });
    pds.xrpc_post(
        "com.atproto.moderation.createReport",
        &report,
        Some(&access),
    )
    .await
    .ok();
    let got = reports.one();
    assert_eq!(got.path, "/xrpc/com.atproto.moderation.createReport");
    assert_eq!(
        serde_json::from_slice::<Value>(&got.body).expect("JSON"),
        report
    );
    check_service_token(
        &got,
        &key,
        &did,
        &reports.did,
        "com.atproto.moderation.createReport",
    );

    get_with(
        &pds,
        "/xrpc/app.bsky.feed.getTimeline",
        Some(&access),
        &[("atproto-proxy", &format!("{}#bsky_chat", fake.did))],
    )
    .await
    .ok();
    assert_eq!(fake.one().path, "/xrpc/app.bsky.feed.getTimeline");
    pds.stop().await;
}
