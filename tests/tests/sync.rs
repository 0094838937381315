//! com.atproto.sync over real HTTP on SQLite and PostgreSQL:
//! getLatestCommit, getRepoStatus, getRepo (CAR parsed, commit signature
//! checked against the PLC document's key, record in the MST), getRecord
//! (proof CAR), listRepos, and the repo errors.

use atproto_types::crypto::{Algorithm, PublicKey};
use atproto_types::repo::mst::decode_node;
use atproto_types::repo::{load_car, Commit, Mst};
use pds_store::AccountStatus;
use pds_tests::{both_backends, plc_url, Backend, Options, TestPds};
use serde_json::{json, Value};
use std::collections::BTreeSet;

const POST: &str = "app.bsky.feed.post";

/// The public key of a DID document verification method, in either form.
fn key_of(method: &Value) -> PublicKey {
    let multibase = method["publicKeyMultibase"]
        .as_str()
        .expect("publicKeyMultibase");
    match method["type"].as_str() {
        Some("Multikey") => PublicKey::from_multibase(multibase).expect("Multikey"),
        Some(legacy) => {
            let alg = Algorithm::from_legacy_verification_method_type(legacy).expect("key type");
            PublicKey::from_legacy_multibase(alg, multibase).expect("legacy key")
        }
        None => panic!("verification method without a type: {method}"),
    }
}

async fn signing_key(did: &str) -> PublicKey {
    let doc: Value = reqwest::get(format!("{}/{did}", plc_url()))
        .await
        .expect("PLC")
        .json()
        .await
        .expect("PLC JSON");
    let method = doc["verificationMethod"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["id"].as_str().is_some_and(|id| id.ends_with("#atproto")))
        })
        .expect("#atproto verification method");
    key_of(method)
}

/// The CIDs of the blocks `getRepo` returns (the whole repo, or since a rev).
async fn block_cids_of(pds: &TestPds, did: &str, since: Option<&str>) -> BTreeSet<String> {
    let path = match since {
        Some(s) => format!("/xrpc/com.atproto.sync.getRepo?did={did}&since={s}"),
        None => format!("/xrpc/com.atproto.sync.getRepo?did={did}"),
    };
    let reply = pds.get(&path, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, blocks) = load_car(reply.body.clone()).expect("CAR");
    blocks.iter().map(|(c, _)| c.to_string()).collect()
}

both_backends! {
    async fn latest_commit_repo_and_record_proof(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let out = pds.create_account("alice.test", "alice@example.com", "correct horse").await;
        let did = out["did"].as_str().expect("did").to_owned();
        let jwt = out["accessJwt"].as_str().expect("jwt").to_owned();
        let created = pds
            .xrpc_post(
                "com.atproto.repo.createRecord",
                &json!({"repo": did, "collection": POST, "record": {"$type": POST, "text": "hi", "createdAt": "2024-01-01T00:00:00.000Z"}}),
                Some(&jwt),
            )
            .await
            .ok();
        let uri = created["uri"].as_str().expect("uri");
        let rkey = uri.rsplit('/').next().expect("rkey").to_owned();
        let record_cid = created["cid"].as_str().expect("cid").to_owned();

        let latest = pds
            .get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None)
            .await
            .ok();
        assert_eq!(latest["cid"], created["commit"]["cid"]);
        assert_eq!(latest["rev"], created["commit"]["rev"]);

        let status = pds
            .get(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}"), None)
            .await
            .ok();
        assert_eq!(status["active"], true);
        assert_eq!(status["rev"], created["commit"]["rev"]);

        // getRepo: the whole repository.
        let car = pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await;
        assert_eq!(car.status, 200, "{}", car.text());
        assert_eq!(car.header("content-type"), Some("application/vnd.ipld.car"));
        let (roots, blocks) = load_car(car.body.clone()).expect("CAR");
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].to_string(), latest["cid"].as_str().unwrap_or(""));
        let commit_bytes = blocks.get(&roots[0]).expect("commit block");
        let commit = Commit::from_cbor(commit_bytes).expect("commit");
        assert_eq!(commit.did.as_str(), did);
        commit.verify(&signing_key(&did).await).expect("commit signature");
        let mst = Mst::load(&blocks, commit.data).expect("MST");
        let got = mst.get(&blocks, &format!("{POST}/{rkey}")).expect("lookup").expect("record in MST");
        assert_eq!(got.to_string(), record_cid);
        assert!(blocks.get(&got).is_some(), "record block in the CAR");

        // getRecord: a proof CAR holding the record.
        let proof = pds
            .get(&format!("/xrpc/com.atproto.sync.getRecord?did={did}&collection={POST}&rkey={rkey}"), None)
            .await;
        assert_eq!(proof.status, 200, "{}", proof.text());
        assert_eq!(proof.header("content-type"), Some("application/vnd.ipld.car"));
        let (roots, blocks) = load_car(proof.body.clone()).expect("proof CAR");
        assert_eq!(roots[0].to_string(), latest["cid"].as_str().unwrap_or(""));
        let commit = Commit::from_cbor(blocks.get(&roots[0]).expect("commit")).expect("commit");
        let mst = Mst::load(&blocks, commit.data).expect("MST");
        let got = mst.get(&blocks, &format!("{POST}/{rkey}")).expect("proof").expect("record");
        assert_eq!(got.to_string(), record_cid);
        assert!(blocks.get(&got).is_some());
        pds.get(&format!("/xrpc/com.atproto.sync.getRecord?did={did}&collection={POST}&rkey=3jzfcijpj2z2a"), None)
            .await
            .assert_error(400, "RecordNotFound");

        // getRepo since a rev: only the later blocks, rooted at the head.
        let before = block_cids_of(&pds, &did, None).await;
        let second = pds
            .xrpc_post(
                "com.atproto.repo.createRecord",
                &json!({"repo": did, "collection": POST, "record": {"$type": POST, "text": "second", "createdAt": "2024-01-01T00:00:00.000Z"}}),
                Some(&jwt),
            )
            .await
            .ok();
        let since = created["commit"]["rev"].as_str().expect("rev");
        let diff = pds
            .get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}&since={since}"), None)
            .await;
        assert_eq!(diff.status, 200, "{}", diff.text());
        let (roots, diff_blocks) = load_car(diff.body.clone()).expect("diff CAR");
        assert_eq!(roots[0].to_string(), second["commit"]["cid"].as_str().unwrap_or(""));
        assert!(diff_blocks.get(&roots[0]).is_some(), "the new commit is in the diff");
        let new_record = second["cid"].as_str().unwrap_or("");
        assert!(diff_blocks.iter().any(|(c, _)| c.to_string() == new_record), "the new record is in the diff");
        // The diff holds only blocks written after `since`, and together with
        // the earlier repo it is the whole current repo. (Its size depends on
        // the MST shape, which depends on the TID keys, so it is not fixed.)
        let diff_cids: BTreeSet<String> = diff_blocks.iter().map(|(c, _)| c.to_string()).collect();
        let after = block_cids_of(&pds, &did, None).await;
        assert!(diff_cids.is_subset(&after), "diff blocks not in the repo: {:?}", diff_cids.difference(&after).collect::<Vec<_>>());
        assert!(diff_cids.is_disjoint(&before), "diff repeats older blocks: {:?}", diff_cids.intersection(&before).collect::<Vec<_>>());
        let union: BTreeSet<String> = before.union(&diff_cids).cloned().collect();
        assert!(after.is_subset(&union), "repo blocks neither old nor in the diff: {:?}", after.difference(&union).collect::<Vec<_>>());
        assert!(diff_blocks.iter().all(|(c, _)| c.to_string() != record_cid), "the older record is not in the diff");
        let latest = pds
            .get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None)
            .await
            .ok();

        // listRepos.
        let bob = pds.create_account("bob.test", "bob@example.com", "correct horse").await;
        let list = pds.get("/xrpc/com.atproto.sync.listRepos", None).await.ok();
        let repos = list["repos"].as_array().expect("repos");
        assert_eq!(repos.len(), 2);
        let alice = repos.iter().find(|r| r["did"] == did.as_str()).expect("alice listed");
        assert_eq!(alice["head"], latest["cid"]);
        assert_eq!(alice["rev"], latest["rev"]);
        assert_eq!(alice["active"], true);
        let page = pds.get("/xrpc/com.atproto.sync.listRepos?limit=1", None).await.ok();
        assert_eq!(page["repos"].as_array().map(Vec::len), Some(1));
        let cursor = page["cursor"].as_str().expect("cursor");
        let rest = pds.get(&format!("/xrpc/com.atproto.sync.listRepos?limit=1&cursor={cursor}"), None).await.ok();
        assert_eq!(rest["repos"].as_array().map(Vec::len), Some(1));
        assert_ne!(rest["repos"][0]["did"], page["repos"][0]["did"]);
        assert!(bob["did"] == page["repos"][0]["did"] || bob["did"] == rest["repos"][0]["did"]);
    }

    async fn unknown_repos(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
        for path in [
            format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"),
            format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}"),
            format!("/xrpc/com.atproto.sync.getRepo?did={did}"),
            format!("/xrpc/com.atproto.sync.getRecord?did={did}&collection={POST}&rkey=3jzfcijpj2z2a"),
        ] {
            pds.get(&path, None).await.assert_error(400, "RepoNotFound");
        }
    }
}

/// The CIDs of the MST nodes under `root` (all present in `blocks`).
fn node_cids(
    blocks: &atproto_types::repo::BlockMap,
    root: atproto_types::data::Cid,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![root];
    while let Some(cid) = todo.pop() {
        let node = decode_node(blocks.get(&cid).expect("MST node present")).expect("MST node");
        out.insert(cid.to_string());
        todo.extend(node.left);
        todo.extend(node.entries.iter().filter_map(|e| e.right));
    }
    out
}

/// Creates an account with `n` posts (their texts name the handle);
/// returns (did, access JWT, (rkey, CID) of each post).
async fn account_with_posts(
    pds: &TestPds,
    handle: &str,
    n: usize,
) -> (String, String, Vec<(String, String)>) {
    let out = pds
        .create_account(handle, &format!("{handle}@example.com"), "correct horse")
        .await;
    let did = out["did"].as_str().expect("did").to_owned();
    let jwt = out["accessJwt"].as_str().expect("jwt").to_owned();
    let mut cids = Vec::new();
    for i in 0..n {
        let created = pds
            .xrpc_post(
                "com.atproto.repo.createRecord",
                &json!({"repo": did, "collection": POST, "record": {"$type": POST, "text": format!("{handle} {i}"), "createdAt": "2024-01-01T00:00:00.000Z"}}),
                Some(&jwt),
            )
            .await
            .ok();
        let rkey = created["uri"]
            .as_str()
            .and_then(|u| u.rsplit('/').next())
            .expect("uri");
        cids.push((
            rkey.to_owned(),
            created["cid"].as_str().expect("cid").to_owned(),
        ));
    }
    (did, jwt, cids)
}

both_backends! {
    async fn get_blocks_head_and_checkout(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, _, posts) = account_with_posts(&pds, "alice.test", 3).await;
        let cids: Vec<String> = posts.into_iter().map(|(_, c)| c).collect();
        let latest = pds
            .get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None)
            .await
            .ok();
        let head = latest["cid"].as_str().expect("cid").to_owned();

        // getHead: the current commit.
        let got = pds.get(&format!("/xrpc/com.atproto.sync.getHead?did={did}"), None).await.ok();
        assert_eq!(got["root"].as_str(), Some(head.as_str()));

        // getBlocks: exactly the blocks asked for (duplicates once), no roots,
        // each block's bytes hashing to its CID (checked by load_car).
        let path = format!(
            "/xrpc/com.atproto.sync.getBlocks?did={did}&cids={head}&cids={}&cids={}&cids={head}&cids={}",
            cids[0], cids[2], cids[0]
        );
        let reply = pds.get(&path, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/vnd.ipld.car"));
        let (roots, blocks) = load_car(reply.body.clone()).expect("CAR");
        assert!(roots.is_empty(), "{roots:?}");
        let got: BTreeSet<String> = blocks.iter().map(|(c, _)| c.to_string()).collect();
        let want: BTreeSet<String> = [head.clone(), cids[0].clone(), cids[2].clone()].into();
        assert_eq!(got, want);
        let commit_block = blocks
            .iter()
            .find(|(c, _)| c.to_string() == head)
            .map(|(_, b)| b.clone())
            .expect("commit block");
        let commit = Commit::from_cbor(&commit_block).expect("commit");
        assert_eq!(commit.did.as_str(), did);

        // An absent block (a valid CID this repo does not hold).
        let absent = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
        let message = pds
            .get(&format!("/xrpc/com.atproto.sync.getBlocks?did={did}&cids={head}&cids={absent}"), None)
            .await
            .assert_error(400, "BlockNotFound");
        assert!(message.contains(absent), "{message}");
        // Another repo's block is not served.
        let (bob, _, bob_cids) = account_with_posts(&pds, "bob.test", 1).await;
        pds.get(&format!("/xrpc/com.atproto.sync.getBlocks?did={did}&cids={}", bob_cids[0].1), None)
            .await
            .assert_error(400, "BlockNotFound");
        let reply = pds.get(&format!("/xrpc/com.atproto.sync.getBlocks?did={bob}&cids={}", bob_cids[0].1), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        // Not a CID; no cids at all.
        pds.get(&format!("/xrpc/com.atproto.sync.getBlocks?did={did}&cids=nope"), None)
            .await
            .assert_error(400, "InvalidRequest");
        pds.get(&format!("/xrpc/com.atproto.sync.getBlocks?did={did}"), None)
            .await
            .assert_error(400, "InvalidRequest");

        // getCheckout: the whole repo, as getRepo.
        let checkout = pds.get(&format!("/xrpc/com.atproto.sync.getCheckout?did={did}"), None).await;
        assert_eq!(checkout.status, 200, "{}", checkout.text());
        let (roots, blocks) = load_car(checkout.body.clone()).expect("CAR");
        assert_eq!(roots.len(), 1);
        assert_eq!(roots[0].to_string(), head);
        let commit = Commit::from_cbor(blocks.get(&roots[0]).expect("commit")).expect("commit");
        commit.verify(&signing_key(&did).await).expect("signature");
        let mst = Mst::load(&blocks, commit.data).expect("MST");
        assert_eq!(mst.entries(&blocks).expect("walk").len(), 3);
        let checkout_cids: BTreeSet<String> = blocks.iter().map(|(c, _)| c.to_string()).collect();
        assert_eq!(checkout_cids, block_cids_of(&pds, &did, None).await);
    }

    async fn unavailable_repos(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, _, posts) = account_with_posts(&pds, "alice.test", 1).await;
        let (rkey, cid) = posts[0].clone();
        let paths = |did: &str| {
            vec![
                format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"),
                format!("/xrpc/com.atproto.sync.getHead?did={did}"),
                format!("/xrpc/com.atproto.sync.getRepo?did={did}"),
                format!("/xrpc/com.atproto.sync.getCheckout?did={did}"),
                format!("/xrpc/com.atproto.sync.getBlocks?did={did}&cids={cid}"),
                format!("/xrpc/com.atproto.sync.getRecord?did={did}&collection={POST}&rkey={rkey}"),
            ]
        };
        for path in paths(&did) {
            assert_eq!(pds.get(&path, None).await.status, 200, "{path}");
        }
        for path in paths("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa") {
            pds.get(&path, None).await.assert_error(400, "RepoNotFound");
        }
        let accounts = pds.state.store.accounts();
        for (status, error, name) in [
            (AccountStatus::Takendown, "RepoTakendown", "takendown"),
            (AccountStatus::Deactivated, "RepoDeactivated", "deactivated"),
        ] {
            accounts.set_status(&did, status, None, None, Vec::new()).await.expect("set status");
            for path in paths(&did) {
                pds.get(&path, None).await.assert_error(400, error);
            }
            let repo_status = pds
                .get(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}"), None)
                .await
                .ok();
            assert_eq!(repo_status["active"], false);
            assert_eq!(repo_status["status"], name);
        }
        accounts
            .set_status(&did, AccountStatus::Active, None, None, Vec::new())
            .await
            .expect("reactivate");
        for path in paths(&did) {
            assert_eq!(pds.get(&path, None).await.status, 200, "{path}");
        }
        accounts
            .set_status(&did, AccountStatus::Deleted, None, None, Vec::new())
            .await
            .expect("delete");
        for path in paths(&did) {
            pds.get(&path, None).await.assert_error(400, "RepoNotFound");
        }
    }

    async fn get_repo_during_writes_is_a_snapshot(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, jwt, _) = account_with_posts(&pds, "alice.test", 40).await;
        let key = signing_key(&did).await;
        // Exports while another task keeps committing: each export is a
        // complete, verifiable repo at the commit named in its header.
        let writer = {
            let (client, url, did, jwt) = (pds.client.clone(), pds.url.clone(), did.clone(), jwt.clone());
            tokio::spawn(async move {
                for i in 0..30 {
                    let res = client
                        .post(format!("{url}/xrpc/com.atproto.repo.createRecord"))
                        .bearer_auth(&jwt)
                        .json(&json!({"repo": did, "collection": POST, "record": {"$type": POST, "text": format!("during {i}"), "createdAt": "2024-01-01T00:00:00.000Z"}}))
                        .send()
                        .await
                        .expect("write");
                    assert_eq!(res.status(), 200);
                }
            })
        };
        let mut exports = 0;
        let mut heads = BTreeSet::new();
        while !writer.is_finished() || exports < 3 {
            let reply = pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            let (roots, blocks) = load_car(reply.body.clone()).expect("a complete CAR");
            let commit = Commit::from_cbor(blocks.get(&roots[0]).expect("commit")).expect("commit");
            commit.verify(&key).expect("signature");
            let mst = Mst::load(&blocks, commit.data).expect("MST");
            let entries = mst.entries(&blocks).expect("every MST node present");
            for (_, cid) in &entries {
                assert!(blocks.get(cid).is_some(), "record block {cid} present");
            }
            // Exactly the snapshot: the commit, its nodes and its records.
            let nodes = node_cids(&blocks, commit.data);
            let records: BTreeSet<String> = entries.iter().map(|(_, c)| c.to_string()).collect();
            assert_eq!(blocks.len(), 1 + nodes.len() + records.len());
            heads.insert(roots[0].to_string());
            exports += 1;
        }
        writer.await.expect("writer");
        assert!(exports >= 3);
        assert!(!heads.is_empty());
    }

    async fn crawlers_are_asked_once_per_interval_with_retries(backend: Backend) {
        let steady = relay::Relay::start(0).await;
        let flaky = relay::Relay::start(2).await;
        let pds = TestPds::start(
            Options::new(backend)
                .with_plc()
                .set("PDS_CRAWLERS", &format!("{},{}/", steady.url, flaky.url)),
        )
        .await;
        account_with_posts(&pds, "alice.test", 5).await;
        account_with_posts(&pds, "bob.test", 5).await;
        // One request to the steady relay for all these commits; the flaky
        // one answered 503 twice and is retried (after 1 s, then 2 s).
        steady.wait_for(1).await;
        flaky.wait_for(3).await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        assert_eq!(steady.calls(), 1);
        assert_eq!(flaky.calls(), 3);
        for body in steady.bodies().into_iter().chain(flaky.bodies()) {
            assert_eq!(body, json!({"hostname": "localhost"}));
        }
    }
}

/// A relay standing in for `PDS_CRAWLERS`: counts requestCrawl calls.
mod relay {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::{Json, Router};
    use serde_json::{json, Value};

    #[derive(Clone)]
    struct Shared {
        failures: usize,
        calls: Arc<AtomicUsize>,
        bodies: Arc<Mutex<Vec<Value>>>,
    }

    pub struct Relay {
        pub url: String,
        shared: Shared,
    }

    async fn request_crawl(
        State(s): State<Shared>,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        let n = s.calls.fetch_add(1, Ordering::SeqCst);
        s.bodies.lock().expect("bodies").push(body);
        if n < s.failures {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "Unavailable", "message": "try later"})),
            )
        } else {
            (StatusCode::OK, Json(json!({})))
        }
    }

    impl Relay {
        /// A relay answering its first `failures` requests with 503.
        pub async fn start(failures: usize) -> Relay {
            let shared = Shared {
                failures,
                calls: Arc::default(),
                bodies: Arc::default(),
            };
            let app = Router::new()
                .route("/xrpc/com.atproto.sync.requestCrawl", post(request_crawl))
                .with_state(shared.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let url = format!("http://{}", listener.local_addr().expect("addr"));
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            Relay { url, shared }
        }

        pub fn calls(&self) -> usize {
            self.shared.calls.load(Ordering::SeqCst)
        }

        pub fn bodies(&self) -> Vec<Value> {
            self.shared.bodies.lock().expect("bodies").clone()
        }

        pub async fn wait_for(&self, n: usize) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while self.calls() < n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} of {n} requestCrawl calls",
                    self.calls()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

mod firehose {
    use std::time::Duration;

    use futures_util::StreamExt;
    use pds_tests::{both_backends, Backend, Options, TestPds};
    use serde_json::{json, Value};
    use tokio_tungstenite::tungstenite::Message;

    type Socket = tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >;

    async fn connect(pds: &TestPds, cursor: Option<i64>) -> Socket {
        let ws = pds.url.replacen("http://", "ws://", 1);
        let url = match cursor {
            Some(c) => format!("{ws}/xrpc/com.atproto.sync.subscribeRepos?cursor={c}"),
            None => format!("{ws}/xrpc/com.atproto.sync.subscribeRepos"),
        };
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("WebSocket connect");
        socket
    }

    /// The next frame: (header `t`, body as JSON).
    async fn next_frame(socket: &mut Socket) -> (String, Value) {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("a frame within 10 s")
                .expect("stream open")
                .expect("frame");
            let Message::Binary(bytes) = msg else {
                continue;
            };
            let (header, used) = atproto_types::data::decode_prefix(&bytes).expect("frame header");
            let body = atproto_types::data::from_dag_cbor(&bytes[used..]).expect("frame body");
            let header = header.to_json();
            assert_eq!(header["op"], 1, "error frame: {header} {}", body.to_json());
            return (
                header["t"].as_str().unwrap_or("").to_owned(),
                body.to_json(),
            );
        }
    }

    async fn create_post(pds: &TestPds, did: &str, jwt: &str, text: &str) -> Value {
        pds.xrpc_post(
            "com.atproto.repo.createRecord",
            &json!({"repo": did, "collection": super::POST, "record": {"$type": super::POST, "text": text, "createdAt": "2024-01-01T00:00:00.000Z"}}),
            Some(jwt),
        )
        .await
        .ok()
    }

    both_backends! {
        async fn live_and_replay(backend: Backend) {
            let pds = TestPds::start(Options::new(backend).with_plc()).await;
            let out = pds.create_account("alice.test", "alice@example.com", "correct horse").await;
            let did = out["did"].as_str().expect("did").to_owned();
            let jwt = out["accessJwt"].as_str().expect("jwt").to_owned();

            // Live: a new connection receives the #commit of a createRecord.
            let mut live = connect(&pds, None).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
            let created = create_post(&pds, &did, &jwt, "live").await;
            // The broadcaster may publish the account creation's four events
            // (sequenced before the connection) after the connection joined:
            // they may come first, nothing else.
            let mut skipped = 0;
            let (t, body) = loop {
                let (t, body) = next_frame(&mut live).await;
                if body["seq"].as_i64().is_some_and(|s| s <= 4) {
                    skipped += 1;
                    assert!(skipped <= 4, "{t} {body}");
                    continue;
                }
                break (t, body);
            };
            assert_eq!(t, "#commit", "{body}");
            assert_eq!(body["repo"], did.as_str());
            assert_eq!(body["commit"]["$link"], created["commit"]["cid"]);
            assert_eq!(body["rev"], created["commit"]["rev"]);
            let ops = body["ops"].as_array().expect("ops");
            assert_eq!(ops.len(), 1);
            assert_eq!(ops[0]["action"], "create");
            assert_eq!(ops[0]["cid"]["$link"], created["cid"]);
            let live_seq = body["seq"].as_i64().expect("seq");

            // Replay from 0: the account creation's events, then the commit,
            // then live.
            let mut replay = connect(&pds, Some(0)).await;
            let mut kinds = Vec::new();
            let mut last_seq = 0;
            loop {
                let (t, body) = next_frame(&mut replay).await;
                let seq = body["seq"].as_i64().expect("seq");
                assert!(seq > last_seq, "seqs increase: {seq} after {last_seq}");
                last_seq = seq;
                assert_eq!(body["did"].as_str().or(body["repo"].as_str()), Some(did.as_str()));
                kinds.push(t);
                if seq == live_seq {
                    break;
                }
            }
            assert_eq!(kinds, ["#identity", "#account", "#commit", "#sync", "#commit"]);
            let second = create_post(&pds, &did, &jwt, "after replay").await;
            let (t, body) = next_frame(&mut replay).await;
            assert_eq!(t, "#commit");
            assert_eq!(body["commit"]["$link"], second["commit"]["cid"]);
            assert_eq!(body["seq"].as_i64(), Some(live_seq + 1));
            let (t, body) = next_frame(&mut live).await;
            assert_eq!(t, "#commit");
            assert_eq!(body["commit"]["$link"], second["commit"]["cid"]);
        }

        async fn graceful_shutdown_closes_subscribers(backend: Backend) {
            let pds = TestPds::start(Options::new(backend).with_plc()).await;
            pds.create_account("alice.test", "alice@example.com", "correct horse").await;
            let mut socket = connect(&pds, Some(0)).await;
            let (t, _) = next_frame(&mut socket).await;
            assert_eq!(t, "#identity");
            // A client reading concurrently (answering the close handshake).
            let reader = tokio::spawn(async move {
                while let Ok(Some(msg)) =
                    tokio::time::timeout(Duration::from_secs(10), socket.next()).await
                {
                    match msg {
                        Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
                panic!("the subscription did not end");
            });
            let started = std::time::Instant::now();
            tokio::time::timeout(Duration::from_secs(15), pds.stop())
                .await
                .expect("shutdown is not held open by a subscriber");
            assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
            let code = reader.await.expect("reader");
            assert!(code.is_none() || code == Some(1001), "{code:?}");
        }

        async fn future_cursor(backend: Backend) {
            let pds = TestPds::start(Options::new(backend).with_plc()).await;
            pds.create_account("alice.test", "alice@example.com", "correct horse").await;
            let mut socket = connect(&pds, Some(1_000_000)).await;
            let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .expect("a frame")
                .expect("open")
                .expect("frame");
            let Message::Binary(bytes) = msg else {
                panic!("expected an error frame, got {msg:?}");
            };
            let (header, used) =
                atproto_types::data::decode_prefix(&bytes).expect("frame header");
            assert_eq!(header.to_json()["op"], -1);
            let body = atproto_types::data::from_dag_cbor(&bytes[used..]).expect("body");
            assert_eq!(body.to_json()["error"], "FutureCursor");
        }
    }
}
