//! Rate limits (`PDS_RATE_LIMITS_ENABLED`) over real HTTP, on SQLite and
//! PostgreSQL: the `RateLimit-*` headers, 429 `RateLimitExceeded`, the
//! keys (identifier and IP, DID, IP), repo-write points, bypasses. Limits
//! are made small with `PDS_RATE_LIMIT_POINTS`; other client IPs come
//! through `X-Forwarded-For`, trusted from the loopback peer. Two servers
//! share limits through the Redis on 127.0.0.1:6379.

use pds_tests::{both_backends, Backend, Options, Reply, TestPds};
use serde_json::{json, Value};

const LOGIN: &str = "com.atproto.server.createSession";
const DESCRIBE: &str = "/xrpc/com.atproto.server.describeServer";
const CREATE_RECORD: &str = "com.atproto.repo.createRecord";
const PUT_RECORD: &str = "com.atproto.repo.putRecord";
const DELETE_RECORD: &str = "com.atproto.repo.deleteRecord";
const APPLY_WRITES: &str = "com.atproto.repo.applyWrites";
const POST: &str = "app.bsky.feed.post";

fn options(backend: Backend, enabled: bool, points: &str) -> Options {
    Options::new(backend)
        .with_plc()
        .set(
            "PDS_RATE_LIMITS_ENABLED",
            if enabled { "true" } else { "false" },
        )
        .set("PDS_RATE_LIMIT_POINTS", points)
}

/// POST `/xrpc/<nsid>` from client `ip` (through `X-Forwarded-For`) with
/// optional extra headers.
async fn post_from(
    pds: &TestPds,
    nsid: &str,
    body: &Value,
    bearer: Option<&str>,
    ip: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut req = pds
        .client
        .post(format!("{}/xrpc/{nsid}", pds.url))
        .json(body);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    if let Some(ip) = ip {
        req = req.header("x-forwarded-for", ip);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    pds.request(req).await
}

async fn get_from(pds: &TestPds, path: &str, ip: &str) -> Reply {
    pds.request(
        pds.client
            .get(format!("{}{path}", pds.url))
            .header("x-forwarded-for", ip),
    )
    .await
}

async fn login(pds: &TestPds, identifier: &str, password: &str, ip: Option<&str>) -> Reply {
    let body = json!({"identifier": identifier, "password": password});
    post_from(pds, LOGIN, &body, None, ip, &[]).await
}

/// The `RateLimit-*` headers as (limit, remaining, policy).
fn limits(r: &Reply) -> (u64, u64, String) {
    let num = |name: &str| -> u64 {
        r.header(name)
            .unwrap_or_else(|| panic!("no {name} header (status {})", r.status))
            .parse()
            .unwrap_or_else(|_| panic!("{name} is not a number"))
    };
    let policy = r.header("ratelimit-policy").expect("policy").to_owned();
    (num("ratelimit-limit"), num("ratelimit-remaining"), policy)
}

fn assert_no_limit_headers(r: &Reply) {
    for h in [
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "ratelimit-policy",
    ] {
        assert!(r.header(h).is_none(), "unexpected {h}: {:?}", r.header(h));
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

both_backends! {
    async fn off_by_default(backend: Backend) {
        // Even with tiny limits configured, nothing is limited while off.
        let pds = TestPds::start(options(backend, false, "create-session-5m=1,global-ip=2")).await;
        pds.create_account("alice.test", "alice@example.com", "pw pw pw").await;
        for _ in 0..4 {
            let r = login(&pds, "alice.test", "pw pw pw", None).await;
            assert_eq!(r.status, 200, "{}", r.text());
            assert_no_limit_headers(&r);
        }
        let r = pds.get(DESCRIBE, None).await;
        assert_eq!(r.status, 200);
        assert_no_limit_headers(&r);
    }

    async fn create_session_by_identifier(backend: Backend) {
        let pds = TestPds::start(options(backend, true, "create-session-5m=3")).await;
        pds.create_account("alice.test", "alice@example.com", "pw pw pw").await;
        pds.create_account("bob.test", "bob@example.com", "pw pw pw").await;

        // Every XRPC answer carries the tightest limit: here the global one.
        let r = pds.get(DESCRIBE, None).await;
        assert_eq!(r.status, 200);
        let (limit, remaining, policy) = limits(&r);
        assert_eq!((limit, policy.as_str()), (3000, "3000;w=300"));
        assert!(remaining < 3000 && remaining > 2900, "{remaining}");
        let reset: u64 = r.header("ratelimit-reset").expect("reset").parse().expect("secs");
        assert!(reset > now_secs() && reset <= now_secs() + 300, "{reset}");

        // Three logins (a wrong password counts too), then 429.
        let r = login(&pds, "alice.test", "pw pw pw", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r), (3, 2, "3;w=300".to_owned()));
        let r = login(&pds, "alice.test", "wrong", None).await;
        r.assert_error(401, "AuthenticationRequired");
        assert_eq!(limits(&r), (3, 1, "3;w=300".to_owned()));
        let r = login(&pds, "alice.test", "pw pw pw", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r).1, 0);
        let r = login(&pds, "alice.test", "pw pw pw", None).await;
        let message = r.assert_error(429, "RateLimitExceeded");
        assert_eq!(message, "Rate Limit Exceeded");
        assert_eq!(limits(&r), (3, 0, "3;w=300".to_owned()));
        let retry: u64 = r.header("retry-after").expect("retry-after").parse().expect("secs");
        assert!((1..=300).contains(&retry), "{retry}");

        // Another identifier, or the same one from another IP, is not limited.
        let r = login(&pds, "bob.test", "pw pw pw", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r).1, 2);
        let r = login(&pds, "alice.test", "pw pw pw", Some("198.51.100.7")).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r).1, 2);
        // Other methods still work for alice.
        let r = pds.get(DESCRIBE, None).await;
        assert_eq!(r.status, 200);
    }

    async fn repo_writes_by_points(backend: Backend) {
        let pds = TestPds::start(options(backend, true, "repo-write-hour=10")).await;
        let alice = pds.create_account("alice.test", "alice@example.com", "pw pw pw").await;
        let bob = pds.create_account("bob.test", "bob@example.com", "pw pw pw").await;
        let did = alice["did"].as_str().expect("did").to_owned();
        let jwt = alice["accessJwt"].as_str().expect("jwt").to_owned();
        let record = |text: &str| json!({"$type": POST, "text": text, "createdAt": "2024-01-01T00:00:00.000Z"});

        // create = 3 points.
        let r = pds
            .xrpc_post(CREATE_RECORD, &json!({"repo": did, "collection": POST, "rkey": "3jzfcijpj2z2a", "record": record("a")}), Some(&jwt))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r), (10, 7, "10;w=3600".to_owned()));
        // update = 2.
        let r = pds
            .xrpc_post(PUT_RECORD, &json!({"repo": did, "collection": POST, "rkey": "3jzfcijpj2z2a", "record": record("a2")}), Some(&jwt))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r).1, 5);
        // delete = 1.
        let r = pds
            .xrpc_post(DELETE_RECORD, &json!({"repo": did, "collection": POST, "rkey": "3jzfcijpj2z2a"}), Some(&jwt))
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r).1, 4);
        // applyWrites: the sum of its writes (one create).
        let writes = json!({"repo": did, "writes": [{"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "rkey": "3jzfcijpj2z2b", "value": record("b")}]});
        let r = pds.xrpc_post(APPLY_WRITES, &writes, Some(&jwt)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r).1, 1);
        // A create needs 3 points; 1 is left.
        let r = pds
            .xrpc_post(CREATE_RECORD, &json!({"repo": did, "collection": POST, "record": record("c")}), Some(&jwt))
            .await;
        r.assert_error(429, "RateLimitExceeded");
        assert_eq!(limits(&r), (10, 0, "10;w=3600".to_owned()));
        // Nothing was written.
        let list = pds
            .get(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection={POST}"), None)
            .await
            .ok();
        assert_eq!(list["records"].as_array().expect("records").len(), 1);
        // Another account has its own points.
        let r = pds
            .xrpc_post(
                CREATE_RECORD,
                &json!({"repo": bob["did"], "collection": POST, "record": record("bob")}),
                bob["accessJwt"].as_str(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r).1, 7);
    }

    async fn global_limit_per_ip(backend: Backend) {
        let pds = TestPds::start(options(backend, true, "global-ip=3")).await;
        for remaining in [2, 1, 0] {
            let r = get_from(&pds, DESCRIBE, "198.51.100.20").await;
            assert_eq!(r.status, 200);
            assert_eq!(limits(&r), (3, remaining, "3;w=300".to_owned()));
        }
        let r = get_from(&pds, DESCRIBE, "198.51.100.20").await;
        r.assert_error(429, "RateLimitExceeded");
        // Unknown methods count too.
        get_from(&pds, "/xrpc/com.example.nothing", "198.51.100.20")
            .await
            .assert_error(429, "RateLimitExceeded");
        // Another client is not limited; nor are paths outside /xrpc/.
        let r = get_from(&pds, DESCRIBE, "198.51.100.21").await;
        assert_eq!(r.status, 200);
        for path in ["/xrpc/_health", "/robots.txt"] {
            let r = get_from(&pds, path, "198.51.100.20").await;
            assert_eq!(r.status, 200, "{path}");
            assert_no_limit_headers(&r);
        }
        // getRepo has its own limit.
        let account = pds.create_account("carol.test", "carol@example.com", "pw pw pw").await;
        let did = account["did"].as_str().expect("did");
        let r = get_from(&pds, &format!("/xrpc/com.atproto.sync.getRepo?did={did}"), "198.51.100.20").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r), (6000, 5999, "6000;w=300".to_owned()));
    }

    async fn shared_through_redis(backend: Backend) {
        // Two servers with one Redis share their limits.
        let opts = || {
            options(backend, true, "create-session-5m=3")
                .set("PDS_REDIS_SCRATCH_ADDRESS", "127.0.0.1:6379")
        };
        let a = TestPds::start(opts()).await;
        let b = TestPds::start(opts()).await;
        // An identifier of this run only (Redis outlives the test).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos();
        let who = format!("nobody-{nanos}-{backend:?}.test").to_lowercase();
        for (pds, remaining) in [(&a, 2), (&b, 1), (&a, 0)] {
            let r = login(pds, &who, "pw", None).await;
            r.assert_error(401, "AuthenticationRequired");
            assert_eq!(limits(&r), (3, remaining, "3;w=300".to_owned()));
        }
        login(&b, &who, "pw", None).await.assert_error(429, "RateLimitExceeded");
        login(&a, &who, "pw", None).await.assert_error(429, "RateLimitExceeded");
        // Another identifier has its own window.
        let r = login(&b, &format!("other-{who}"), "pw", None).await;
        r.assert_error(401, "AuthenticationRequired");
        assert_eq!(limits(&r).1, 2);
    }

    async fn bypass_key_and_ips(backend: Backend) {
        let pds = TestPds::start(
            options(backend, true, "create-session-5m=1")
                .set("PDS_RATE_LIMIT_BYPASS_KEY", "let-me-through")
                .set("PDS_RATE_LIMIT_BYPASS_IPS", "203.0.113.0/24"),
        )
        .await;
        pds.create_account("alice.test", "alice@example.com", "pw pw pw").await;
        let body = json!({"identifier": "alice.test", "password": "pw pw pw"});
        for _ in 0..3 {
            let r = post_from(&pds, LOGIN, &body, None, None, &[("x-ratelimit-bypass", "let-me-through")]).await;
            assert_eq!(r.status, 200, "{}", r.text());
            assert_no_limit_headers(&r);
            let r = login(&pds, "alice.test", "pw pw pw", Some("203.0.113.77")).await;
            assert_eq!(r.status, 200, "{}", r.text());
            assert_no_limit_headers(&r);
        }
        // A wrong key is no bypass.
        let r = post_from(&pds, LOGIN, &body, None, None, &[("x-ratelimit-bypass", "guess")]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(limits(&r).1, 0);
        post_from(&pds, LOGIN, &body, None, None, &[("x-ratelimit-bypass", "guess")])
            .await
            .assert_error(429, "RateLimitExceeded");
    }
}

#[test]
fn bad_settings_are_refused() {
    use std::collections::BTreeMap;
    let start = |k: &str, v: &str| {
        pds::Config::from_sources(BTreeMap::new(), vec![(k.to_owned(), v.to_owned())])
    };
    assert!(start("PDS_RATE_LIMIT_POINTS", "repo-write-week=5").is_err());
    assert!(start("PDS_RATE_LIMIT_POINTS", "repo-write-hour=0").is_err());
    assert!(start("PDS_RATE_LIMIT_POINTS", "repo-write-hour").is_err());
    assert!(start("PDS_RATE_LIMIT_BYPASS_IPS", "10.0.0.0/40").is_err());
    assert!(start("PDS_REDIS_SCRATCH_ADDRESS", "redis://x:1/path").is_err());
    let c = start("PDS_REDIS_SCRATCH_ADDRESS", "127.0.0.1:6379").expect("valid");
    assert_eq!(
        c.rate_limit_settings.redis_address.as_deref(),
        Some("127.0.0.1:6379")
    );
    let c = start("PDS_RATE_LIMIT_POINTS", "repo-write-hour=5, global-ip=7").expect("valid");
    assert_eq!(c.rate_limit_settings.points.get("global-ip"), Some(&7));
}
