//! com.atproto.sync over real HTTP on SQLite and PostgreSQL:
//! getLatestCommit, getRepoStatus, getRepo (CAR parsed, commit signature
//! checked against the PLC document's key, record in the MST), getRecord
//! (proof CAR), listRepos, and the repo errors.

use atproto_types::crypto::{Algorithm, PublicKey};
use atproto_types::repo::{load_car, Commit, Mst};
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
