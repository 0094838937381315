//! com.atproto.repo over real HTTP on SQLite and PostgreSQL: createRecord,
//! getRecord, listRecords, putRecord, deleteRecord, applyWrites, and their
//! documented errors.

use pds_tests::{both_backends, Backend, Options, TestPds};
use serde_json::{json, Value};

const CREATE: &str = "com.atproto.repo.createRecord";
const PUT: &str = "com.atproto.repo.putRecord";
const DELETE: &str = "com.atproto.repo.deleteRecord";
const APPLY: &str = "com.atproto.repo.applyWrites";
const POST: &str = "app.bsky.feed.post";

async fn setup(backend: Backend) -> (TestPds, String, String) {
    let pds = TestPds::start(Options::new(backend).with_plc()).await;
    let out = pds
        .create_account("alice.test", "alice@example.com", "correct horse")
        .await;
    let did = out["did"].as_str().expect("did").to_owned();
    let jwt = out["accessJwt"].as_str().expect("accessJwt").to_owned();
    (pds, did, jwt)
}

fn post(text: &str) -> Value {
    json!({"$type": POST, "text": text, "createdAt": "2024-01-01T00:00:00.000Z"})
}

async fn get_record(pds: &TestPds, did: &str, rkey: &str) -> pds_tests::Reply {
    pds.get(
        &format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection={POST}&rkey={rkey}"),
        None,
    )
    .await
}

fn rkey_of(uri: &str) -> String {
    uri.rsplit('/').next().expect("rkey").to_owned()
}

both_backends! {
    async fn create_get_list_put_delete(backend: Backend) {
        let (pds, did, jwt) = setup(backend).await;
        let out = pds
            .xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("hello")}), Some(&jwt))
            .await
            .ok();
        let uri = out["uri"].as_str().expect("uri").to_owned();
        assert!(uri.starts_with(&format!("at://{did}/{POST}/")), "{uri}");
        assert_eq!(out["validationStatus"], "valid");
        assert!(out["commit"]["cid"].is_string() && out["commit"]["rev"].is_string(), "{out}");
        let cid = out["cid"].as_str().expect("cid").to_owned();
        let rkey = rkey_of(&uri);

        let got = get_record(&pds, &did, &rkey).await.ok();
        assert_eq!(got["uri"], uri.as_str());
        assert_eq!(got["cid"], cid.as_str());
        assert_eq!(got["value"]["text"], "hello");
        // By handle too, and with the matching cid.
        let got = pds
            .get(&format!("/xrpc/com.atproto.repo.getRecord?repo=alice.test&collection={POST}&rkey={rkey}&cid={cid}"), None)
            .await
            .ok();
        assert_eq!(got["value"]["text"], "hello");
        // A different cid: not found.
        let other = pds
            .xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("second")}), Some(&jwt))
            .await
            .ok();
        let other_cid = other["cid"].as_str().expect("cid");
        pds.get(&format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection={POST}&rkey={rkey}&cid={other_cid}"), None)
            .await
            .assert_error(400, "RecordNotFound");
        get_record(&pds, &did, "3jzfcijpj2z2a").await.assert_error(400, "RecordNotFound");

        // listRecords: newest first, paging, reverse.
        for i in 0..3 {
            pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post(&format!("p{i}"))}), Some(&jwt))
                .await
                .ok();
        }
        let list = pds
            .get(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection={POST}&limit=2"), None)
            .await
            .ok();
        let recs = list["records"].as_array().expect("records");
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0]["value"]["text"], "p2");
        let cursor = list["cursor"].as_str().expect("cursor");
        let list2 = pds
            .get(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection={POST}&limit=100&cursor={cursor}"), None)
            .await
            .ok();
        let texts: Vec<&str> = list2["records"].as_array().expect("records").iter().map(|r| r["value"]["text"].as_str().unwrap_or("")).collect();
        assert_eq!(texts, ["p0", "second", "hello"]);
        let rev = pds
            .get(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection={POST}&reverse=true"), None)
            .await
            .ok();
        assert_eq!(rev["records"][0]["value"]["text"], "hello");
        pds.get(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection={POST}&limit=101"), None)
            .await
            .assert_error(400, "InvalidRequest");

        // putRecord replaces; swapRecord must match.
        let put = pds
            .xrpc_post(PUT, &json!({"repo": did, "collection": POST, "rkey": rkey, "record": post("edited"), "swapRecord": cid}), Some(&jwt))
            .await
            .ok();
        let new_cid = put["cid"].as_str().expect("cid").to_owned();
        assert_ne!(new_cid, cid);
        assert_eq!(get_record(&pds, &did, &rkey).await.ok()["value"]["text"], "edited");
        pds.xrpc_post(PUT, &json!({"repo": did, "collection": POST, "rkey": rkey, "record": post("again"), "swapRecord": cid}), Some(&jwt))
            .await
            .assert_error(400, "InvalidSwap");
        // swapCommit must be the current commit.
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("x"), "swapCommit": out["commit"]["cid"]}), Some(&jwt))
            .await
            .assert_error(400, "InvalidSwap");
        let head = put["commit"]["cid"].as_str().expect("commit cid");
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("x"), "swapCommit": head}), Some(&jwt))
            .await
            .ok();

        // deleteRecord, with a wrong then right swapRecord.
        pds.xrpc_post(DELETE, &json!({"repo": did, "collection": POST, "rkey": rkey, "swapRecord": cid}), Some(&jwt))
            .await
            .assert_error(400, "InvalidSwap");
        let del = pds
            .xrpc_post(DELETE, &json!({"repo": did, "collection": POST, "rkey": rkey, "swapRecord": new_cid}), Some(&jwt))
            .await
            .ok();
        assert!(del["commit"]["cid"].is_string(), "{del}");
        get_record(&pds, &did, &rkey).await.assert_error(400, "RecordNotFound");
    }

    async fn write_errors(backend: Backend) {
        let (pds, did, jwt) = setup(backend).await;
        // No credentials.
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("x")}), None)
            .await
            .assert_error(401, "AuthMissing");
        // Another account's repo.
        let bob = pds.create_account("bob.test", "bob@example.com", "correct horse").await;
        let bob_did = bob["did"].as_str().expect("did");
        pds.xrpc_post(CREATE, &json!({"repo": bob_did, "collection": POST, "record": post("x")}), Some(&jwt))
            .await
            .assert_error(401, "AuthenticationRequired");
        // An unknown repo.
        pds.xrpc_post(CREATE, &json!({"repo": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "collection": POST, "record": post("x")}), Some(&jwt))
            .await
            .assert_error(400, "InvalidRequest");
        // A bad collection NSID.
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": "not an nsid", "record": post("x")}), Some(&jwt))
            .await
            .assert_error(400, "InvalidRequest");
        // An invalid record: the message names the path.
        let msg = pds
            .xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": {"$type": POST, "text": 42, "createdAt": "2024-01-01T00:00:00.000Z"}}), Some(&jwt))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(msg.contains("text"), "{msg}");
        // A create of an existing rkey.
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "rkey": "3jzfcijpj2z2a", "record": post("x")}), Some(&jwt))
            .await
            .ok();
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "rkey": "3jzfcijpj2z2a", "record": post("x")}), Some(&jwt))
            .await
            .assert_error(400, "InvalidRequest");
        // Unknown lexicon, not validated.
        let out = pds
            .xrpc_post(CREATE, &json!({"repo": did, "collection": "com.example.thing", "record": {"a": 1}}), Some(&jwt))
            .await
            .ok();
        assert_eq!(out["validationStatus"], "unknown");
    }

    async fn apply_writes_batch(backend: Backend) {
        let (pds, did, jwt) = setup(backend).await;
        let out = pds
            .xrpc_post(APPLY, &json!({"repo": did, "writes": [
                {"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "rkey": "3jzfcijpj2z2a", "value": post("a")},
                {"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": post("b")},
            ]}), Some(&jwt))
            .await
            .ok();
        let results = out["results"].as_array().expect("results");
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["$type"], "com.atproto.repo.applyWrites#createResult");
        assert_eq!(results[0]["validationStatus"], "valid");
        let b_rkey = rkey_of(results[1]["uri"].as_str().expect("uri"));
        let out = pds
            .xrpc_post(APPLY, &json!({"repo": did, "writes": [
                {"$type": "com.atproto.repo.applyWrites#update", "collection": POST, "rkey": "3jzfcijpj2z2a", "value": post("a2")},
                {"$type": "com.atproto.repo.applyWrites#delete", "collection": POST, "rkey": b_rkey},
            ]}), Some(&jwt))
            .await
            .ok();
        assert_eq!(out["results"][0]["$type"], "com.atproto.repo.applyWrites#updateResult");
        assert_eq!(out["results"][1]["$type"], "com.atproto.repo.applyWrites#deleteResult");
        assert_eq!(get_record(&pds, &did, "3jzfcijpj2z2a").await.ok()["value"]["text"], "a2");
        get_record(&pds, &did, &b_rkey).await.assert_error(400, "RecordNotFound");
        // swapCommit: a stale commit is InvalidSwap, the head succeeds.
        let head = out["commit"]["cid"].as_str().expect("commit").to_owned();
        let write = json!({"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": post("swap")});
        let first = results[0]["uri"].as_str().unwrap_or("").to_owned();
        assert!(first.ends_with("/3jzfcijpj2z2a"), "{first}");
        let stale = pds
            .get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None)
            .await
            .ok();
        assert_eq!(stale["cid"], head.as_str());
        let swapped = pds
            .xrpc_post(APPLY, &json!({"repo": did, "swapCommit": head, "writes": [write]}), Some(&jwt))
            .await
            .ok();
        pds.xrpc_post(APPLY, &json!({"repo": did, "swapCommit": head, "writes": [write]}), Some(&jwt))
            .await
            .assert_error(400, "InvalidSwap");
        let swapped_rkey = rkey_of(swapped["results"][0]["uri"].as_str().expect("uri"));
        pds.xrpc_post(DELETE, &json!({"repo": did, "collection": POST, "rkey": swapped_rkey}), Some(&jwt))
            .await
            .ok();
        // An invalid write fails the whole batch.
        let msg = pds
            .xrpc_post(APPLY, &json!({"repo": did, "writes": [
                {"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": post("ok")},
                {"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": {"$type": POST, "createdAt": "2024-01-01T00:00:00.000Z"}},
            ]}), Some(&jwt))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(msg.contains("text"), "{msg}");
        let list = pds
            .get(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection={POST}"), None)
            .await
            .ok();
        assert_eq!(list["records"].as_array().map(Vec::len), Some(1));
        // Too many writes.
        let writes: Vec<Value> = (0..201)
            .map(|i| json!({"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": post(&format!("{i}"))}))
            .collect();
        pds.xrpc_post(APPLY, &json!({"repo": did, "writes": writes}), Some(&jwt))
            .await
            .assert_error(400, "InvalidRequest");
    }
}

both_backends! {
    async fn describe_repo(backend: Backend) {
        let (pds, did, jwt) = setup(backend).await;
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("x")}), Some(&jwt))
            .await
            .ok();
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": "com.example.thing", "record": {"a": 1}}), Some(&jwt))
            .await
            .ok();
        for repo in [did.as_str(), "alice.test"] {
            let out = pds
                .get(&format!("/xrpc/com.atproto.repo.describeRepo?repo={repo}"), None)
                .await
                .ok();
            assert_eq!(out["did"], did.as_str());
            assert_eq!(out["handle"], "alice.test");
            assert_eq!(out["handleIsCorrect"], true);
            assert_eq!(out["didDoc"]["id"], did.as_str());
            assert_eq!(out["collections"], json!(["app.bsky.feed.post", "com.example.thing"]));
        }
        pds.get("/xrpc/com.atproto.repo.describeRepo?repo=nobody.test", None)
            .await
            .assert_error(400, "InvalidRequest");
    }
}

both_backends! {
    async fn app_passwords_write_and_inactive_accounts_do_not(backend: Backend) {
        let (pds, did, jwt) = setup(backend).await;
        // An app password session may write (AccessStandard).
        let hash = pds_store::password::hash_password("app-pass-1234", Default::default())
            .expect("hash");
        pds.state
            .store
            .accounts()
            .create_app_password(&did, "test app", &hash, false)
            .await
            .expect("app password");
        let app = pds.login("alice.test", "app-pass-1234").await;
        let app_jwt = app["accessJwt"].as_str().expect("jwt");
        assert_eq!(pds_tests::jwt_claims(app_jwt)["scope"], "com.atproto.appPass");
        let app_post = pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("from app")}), Some(app_jwt))
            .await
            .ok();

        // Readable while active.
        get_record(&pds, &did, &rkey_of(app_post["uri"].as_str().expect("uri"))).await.ok();
        // A record referencing a blob never uploaded.
        let blob = json!({"$type": "blob", "ref": {"$link": "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"}, "mimeType": "image/png", "size": 10});
        let record = json!({"$type": "app.bsky.actor.profile", "avatar": blob});
        pds.xrpc_post(PUT, &json!({"repo": did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": record}), Some(&jwt))
            .await
            .assert_error(400, "BlobNotFound");

        // Deactivated: writes refused, reads of the repo refused by sync.
        pds.state
            .store
            .accounts()
            .set_status(&did, pds_store::AccountStatus::Deactivated, None, None, vec![])
            .await
            .expect("deactivate");
        pds
            .xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("x")}), Some(&jwt))
            .await
            .assert_error(401, "AccountDeactivated");
        pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None)
            .await
            .assert_error(400, "RepoDeactivated");
        let status = pds
            .get(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}"), None)
            .await
            .ok();
        assert_eq!(status["active"], false);
        assert_eq!(status["status"], "deactivated");

        // Taken down.
        pds.state
            .store
            .accounts()
            .set_status(&did, pds_store::AccountStatus::Takendown, Some("ref"), None, vec![])
            .await
            .expect("takedown");
        pds.xrpc_post(CREATE, &json!({"repo": did, "collection": POST, "record": post("x")}), Some(&jwt))
            .await
            .assert_error(401, "AccountTakedown");
        pds.get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None)
            .await
            .assert_error(400, "RepoTakendown");
        get_record(&pds, &did, &rkey_of(app_post["uri"].as_str().expect("uri"))).await.assert_error(400, "RecordNotFound");
        pds.get(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection={POST}"), None)
            .await
            .assert_error(400, "InvalidRequest");
        let list = pds.get("/xrpc/com.atproto.sync.listRepos", None).await.ok();
        assert_eq!(list["repos"][0]["active"], false);
        assert_eq!(list["repos"][0]["status"], "takendown");
    }
}
