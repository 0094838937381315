//! The server's basic HTTP surface, over real HTTP: root, robots, health,
//! CORS, unknown routes, wrong verbs, body limits, describeServer.

use pds_tests::{Backend, Options, TestPds};
use serde_json::json;

async fn server() -> TestPds {
    TestPds::start(Options::new(Backend::Sqlite)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_robots_and_health() {
    let pds = server().await;
    let r = pds.get("/", None).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));
    assert!(
        r.text().contains("AT Protocol Personal Data Server"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("/xrpc/"));

    let r = pds.get("/robots.txt", None).await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));
    assert!(r.text().contains("User-agent: *"));
    assert!(r.text().contains("Allow: /"));

    for path in ["/xrpc/_health", "/health"] {
        let body = pds.get(path, None).await.ok();
        assert_eq!(
            body,
            json!({"version": env!("CARGO_PKG_VERSION")}),
            "{path}"
        );
    }
    pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_wrong_verbs() {
    let pds = server().await;
    // Unknown XRPC method: 501.
    let r = pds.get("/xrpc/com.example.nothing", None).await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    r.assert_error(501, "MethodNotImplemented");
    pds.post("/xrpc/com.example.nothing", Some(&json!({})), None)
        .await
        .assert_error(501, "MethodNotImplemented");
    // A method this server does not implement (yet): 501 too.
    pds.post(
        "/xrpc/com.atproto.temp.requestPhoneVerification",
        Some(&json!({"phoneNumber": "+15555550100"})),
        None,
    )
    .await
    .assert_error(501, "MethodNotImplemented");
    // Not an NSID.
    pds.get("/xrpc/nope", None)
        .await
        .assert_error(400, "InvalidRequest");
    // Outside /xrpc: 404 JSON.
    pds.get("/nothing/here", None)
        .await
        .assert_error(404, "NotFound");
    pds.post("/", Some(&json!({})), None)
        .await
        .assert_error(404, "NotFound");
    // Known methods with the wrong verb.
    let m = pds
        .get("/xrpc/com.atproto.server.createSession", None)
        .await
        .assert_error(400, "InvalidRequest");
    assert!(m.contains("POST"), "{m}");
    pds.post("/xrpc/com.atproto.server.describeServer", None, None)
        .await
        .assert_error(400, "InvalidRequest");
    pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors() {
    let pds = server().await;
    let preflight = pds
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/xrpc/com.atproto.server.createSession", pds.url),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,atproto-proxy,atproto-accept-labelers,dpop",
        );
    let r = pds.request(preflight).await;
    assert!(r.status == 200 || r.status == 204, "{}", r.status);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let allowed = r.header("access-control-allow-headers").unwrap_or("");
    for h in [
        "authorization",
        "atproto-proxy",
        "atproto-accept-labelers",
        "dpop",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    let methods = r.header("access-control-allow-methods").unwrap_or("");
    assert!(
        methods.contains("POST") && methods.contains("GET"),
        "{methods}"
    );
    assert_eq!(r.header("access-control-max-age"), Some("86400"));

    // Preflight for an unknown path is answered too.
    let preflight = pds
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/xrpc/app.bsky.feed.getTimeline", pds.url),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET");
    let r = pds.request(preflight).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // Simple requests, errors included, carry the CORS headers.
    let req = pds
        .client
        .get(format!("{}/xrpc/com.atproto.server.getSession", pds.url))
        .header("origin", "https://app.example.com");
    let r = pds.request(req).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let exposed = r.header("access-control-expose-headers").unwrap_or("");
    for h in ["dpop-nonce", "ratelimit-remaining", "www-authenticate"] {
        assert!(exposed.contains(h), "{h} not in {exposed}");
    }
    pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limits() {
    let pds = server().await;
    let big = "x".repeat(200 * 1024);
    let r = pds
        .xrpc_post(
            "com.atproto.server.createSession",
            &json!({"identifier": big, "password": "x"}),
            None,
        )
        .await;
    r.assert_error(413, "PayloadTooLarge");
    // Malformed JSON and schema violations are 400s.
    let req = pds
        .client
        .post(format!("{}/xrpc/com.atproto.server.createSession", pds.url))
        .header("content-type", "application/json")
        .body("{not json");
    pds.request(req).await.assert_error(400, "InvalidRequest");
    pds.xrpc_post(
        "com.atproto.server.createSession",
        &json!({"identifier": "a"}),
        None,
    )
    .await
    .assert_error(400, "InvalidRequest");
    pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_server() {
    let pds = server().await;
    let d = pds
        .get("/xrpc/com.atproto.server.describeServer", None)
        .await
        .ok();
    assert_eq!(d["did"], "did:web:localhost");
    assert_eq!(d["availableUserDomains"], json!([".test"]));
    assert_eq!(d["inviteCodeRequired"], false);
    assert_eq!(d["phoneVerificationRequired"], false);
    assert_eq!(d["links"], json!({}));
    assert_eq!(d["contact"], json!({}));
    pds.stop().await;

    let pds = TestPds::start(
        Options::new(Backend::Sqlite)
            .set("PDS_HOSTNAME", "pds.example.com")
            .set("PDS_SERVICE_HANDLE_DOMAINS", ".example.com,.example.org")
            .set("PDS_INVITE_REQUIRED", "true")
            .set("PDS_PRIVACY_POLICY_URL", "https://example.com/privacy")
            .set("PDS_TERMS_OF_SERVICE_URL", "https://example.com/tos")
            .set("PDS_CONTACT_EMAIL_ADDRESS", "admin@example.com"),
    )
    .await;
    let d = pds
        .get("/xrpc/com.atproto.server.describeServer", None)
        .await
        .ok();
    assert_eq!(d["did"], "did:web:pds.example.com");
    assert_eq!(
        d["availableUserDomains"],
        json!([".example.com", ".example.org"])
    );
    assert_eq!(d["inviteCodeRequired"], true);
    assert_eq!(
        d["links"],
        json!({"privacyPolicy": "https://example.com/privacy", "termsOfService": "https://example.com/tos"})
    );
    assert_eq!(d["contact"], json!({"email": "admin@example.com"}));
    pds.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pds = server().await;
    // A request whose body is still arriving when the server is told to
    // stop: it is answered before the server exits.
    let body = json!({"identifier": "nobody.test", "password": "pw"}).to_string();
    let (first, second) = body.split_at(10);
    let addr = pds.url.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /xrpc/com.atproto.server.createSession HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.expect("write head");
    conn.write_all(first.as_bytes()).await.expect("write body");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let url = pds.url.clone();
    let stopping = tokio::spawn(pds.stop());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !stopping.is_finished(),
        "the server waits for the request in flight"
    );
    conn.write_all(second.as_bytes()).await.expect("write rest");
    let mut response = String::new();
    conn.read_to_string(&mut response)
        .await
        .expect("read response");
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(
        response.contains("Invalid identifier or password"),
        "{response}"
    );
    stopping.await.expect("stopped");
    // After the stop nothing listens.
    assert!(reqwest::get(format!("{url}/xrpc/_health")).await.is_err());
}
