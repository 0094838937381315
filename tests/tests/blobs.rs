//! Blobs over real HTTP on SQLite and PostgreSQL: uploadBlob (MIME
//! sniffing, size limit, streaming), blob references in record writes,
//! sync.getBlob and sync.listBlobs, deletion of a blob with its last
//! reference, importRepo and listMissingBlobs, and the S3 blob store.
//! (Streaming and the size limit of bodies without a length are in
//! `blob_streaming.rs`, a binary of its own so that it measures memory
//! alone.)

use std::time::Duration;

use atproto_types::crypto::{Algorithm, PrivateKey};
use atproto_types::repo::car::{load_car, write_car};
use atproto_types::repo::{Commit, UnsignedCommit};
use atproto_types::syntax::{Did, Tid};
use pds_store::blobstore::blob_cid;
use pds_store::AccountStatus;
use pds_tests::{both_backends, Backend, Options, Reply, TestPds};
use serde_json::{json, Value};

const UPLOAD: &str = "/xrpc/com.atproto.repo.uploadBlob";
const CREATE: &str = "com.atproto.repo.createRecord";
const PUT: &str = "com.atproto.repo.putRecord";
const DELETE: &str = "com.atproto.repo.deleteRecord";
const APPLY: &str = "com.atproto.repo.applyWrites";
const PROFILE: &str = "app.bsky.actor.profile";
const POST: &str = "app.bsky.feed.post";

/// A PNG header (enough to sniff).
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0,
    1, 0, 0, 0, 1, 8, 6, 0, 0, 0,
];
const JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0,
];
const GIF: &[u8] = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!";

async fn start(backend: Backend, extra: &[(&str, &str)]) -> TestPds {
    let mut options = Options::new(backend).with_plc();
    for (k, v) in extra {
        options = options.set(k, v);
    }
    TestPds::start(options).await
}

async fn account(pds: &TestPds, name: &str) -> (String, String) {
    let out = pds
        .create_account(
            &format!("{name}.test"),
            &format!("{name}@example.com"),
            "correct horse",
        )
        .await;
    (
        out["did"].as_str().expect("did").to_owned(),
        out["accessJwt"].as_str().expect("accessJwt").to_owned(),
    )
}

async fn upload(pds: &TestPds, jwt: &str, content_type: &str, bytes: &[u8]) -> Reply {
    let req = pds
        .client
        .post(format!("{}{UPLOAD}", pds.url))
        .bearer_auth(jwt)
        .header("content-type", content_type)
        .body(bytes.to_vec());
    pds.request(req).await
}

/// Uploads and returns the blob ref (checked against the bytes).
async fn upload_ok(pds: &TestPds, jwt: &str, content_type: &str, bytes: &[u8]) -> Value {
    let out = upload(pds, jwt, content_type, bytes).await.ok();
    let blob = out["blob"].clone();
    assert_eq!(blob["$type"], "blob", "{out}");
    let cid = blob_cid(bytes).expect("cid").to_string();
    assert_eq!(blob["ref"]["$link"], cid.as_str(), "{out}");
    assert_eq!(blob["size"], bytes.len() as u64, "{out}");
    blob
}

fn link(blob: &Value) -> String {
    blob["ref"]["$link"].as_str().expect("$link").to_owned()
}

fn profile(avatar: &Value) -> Value {
    json!({"$type": PROFILE, "displayName": "Alice", "avatar": avatar})
}

fn post_with_image(text: &str, image: &Value) -> Value {
    json!({
        "$type": POST,
        "text": text,
        "createdAt": "2024-01-01T00:00:00.000Z",
        "embed": {"$type": "app.bsky.embed.images", "images": [{"image": image, "alt": ""}]}
    })
}

async fn get_blob(pds: &TestPds, did: &str, cid: &str) -> Reply {
    pds.get(
        &format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"),
        None,
    )
    .await
}

async fn create(pds: &TestPds, jwt: &str, did: &str, collection: &str, record: &Value) -> Reply {
    pds.xrpc_post(
        CREATE,
        &json!({"repo": did, "collection": collection, "record": record}),
        Some(jwt),
    )
    .await
}

fn rkey_of(uri: &str) -> String {
    uri.rsplit('/').next().expect("rkey").to_owned()
}

both_backends! {
    async fn upload_sniffs_the_type(backend: Backend) {
        let pds = start(backend, &[]).await;
        let (did, jwt) = account(&pds, "alice").await;
        // The bytes decide; the declared type is only a fallback.
        let png = upload_ok(&pds, &jwt, "text/plain", PNG).await;
        assert_eq!(png["mimeType"], "image/png");
        let jpeg = upload_ok(&pds, &jwt, "application/octet-stream", JPEG).await;
        assert_eq!(jpeg["mimeType"], "image/jpeg");
        let gif = upload_ok(&pds, &jwt, "image/png", GIF).await;
        assert_eq!(gif["mimeType"], "image/gif");
        let text = upload_ok(&pds, &jwt, "text/plain; charset=utf-8", b"just some words").await;
        assert_eq!(text["mimeType"], "text/plain");
        let unknown = upload_ok(&pds, &jwt, "*/*", b"\x00\x01\x02 no magic here").await;
        assert_eq!(unknown["mimeType"], "application/octet-stream");
        // Stored for the account.
        let meta = pds
            .state
            .store
            .blobs()
            .get_meta(&did, &link(&png).parse().expect("cid"))
            .await
            .expect("meta")
            .expect("stored");
        assert_eq!((meta.mime_type.as_str(), meta.size), ("image/png", PNG.len() as u64));
        // Uploading the same bytes again is fine and gives the same ref.
        let again = upload_ok(&pds, &jwt, "image/png", PNG).await;
        assert_eq!(again, png);

        // Auth and body errors.
        let req = pds.client.post(format!("{}{UPLOAD}", pds.url)).header("content-type", "image/png").body(PNG.to_vec());
        pds.request(req).await.assert_error(401, "AuthMissing");
        let req = pds.client.post(format!("{}{UPLOAD}", pds.url)).bearer_auth(&jwt).header("content-type", "image/png");
        pds.request(req).await.assert_error(400, "InvalidRequest");
    }

    async fn upload_size_limit(backend: Backend) {
        let pds = start(backend, &[("PDS_BLOB_UPLOAD_LIMIT", "1000")]).await;
        let (did, jwt) = account(&pds, "alice").await;
        upload_ok(&pds, &jwt, "text/plain", &[b'a'; 1000]).await;
        let msg = upload(&pds, &jwt, "text/plain", &[b'a'; 1001]).await.assert_error(413, "PayloadTooLarge");
        assert!(!msg.is_empty());
        // Only the accepted blob was kept.
        let (count, size) = pds.state.store.blobs().stats(&did).await.expect("stats");
        assert_eq!((count, size), (1, 1000));
    }

    async fn records_reference_uploaded_blobs(backend: Backend) {
        let pds = start(backend, &[]).await;
        let (did, jwt) = account(&pds, "alice").await;
        let (_, bob_jwt) = account(&pds, "bob").await;
        let png = upload_ok(&pds, &jwt, "image/png", PNG).await;
        // Valid: the profile's avatar.
        let out = pds
            .xrpc_post(PUT, &json!({"repo": did, "collection": PROFILE, "rkey": "self", "record": profile(&png)}), Some(&jwt))
            .await
            .ok();
        assert_eq!(out["validationStatus"], "valid");
        let refs = pds.state.store.blobs().referencing_records(&did, &link(&png).parse().expect("cid")).await.expect("refs");
        assert_eq!(refs, vec![format!("at://{did}/{PROFILE}/self")]);

        // A blob never uploaded (by this account).
        let missing = json!({"$type": "blob", "ref": {"$link": blob_cid(b"never uploaded").expect("cid").to_string()}, "mimeType": "image/png", "size": 14});
        let msg = create(&pds, &jwt, &did, POST, &post_with_image("x", &missing)).await.assert_error(400, "BlobNotFound");
        assert!(msg.contains("Could not find blob"), "{msg}");
        let bobs = upload_ok(&pds, &bob_jwt, "image/jpeg", JPEG).await;
        create(&pds, &jwt, &did, POST, &post_with_image("x", &bobs)).await.assert_error(400, "BlobNotFound");
        // applyWrites checks every write.
        pds.xrpc_post(APPLY, &json!({"repo": did, "writes": [
            {"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": post_with_image("ok", &png)},
            {"$type": "com.atproto.repo.applyWrites#create", "collection": POST, "value": post_with_image("bad", &missing)},
        ]}), Some(&jwt)).await.assert_error(400, "BlobNotFound");

        // The reference must describe the stored blob.
        let text = upload_ok(&pds, &jwt, "text/plain", b"not an image").await;
        let mut lying = text.clone();
        lying["mimeType"] = json!("image/png");
        create(&pds, &jwt, &did, POST, &post_with_image("x", &lying)).await.assert_error(400, "InvalidMimeType");
        let mut wrong_size = png.clone();
        wrong_size["size"] = json!(1);
        create(&pds, &jwt, &did, POST, &post_with_image("x", &wrong_size)).await.assert_error(400, "InvalidSize");
        // An honest reference of a type the lexicon does not accept.
        let msg = pds
            .xrpc_post(PUT, &json!({"repo": did, "collection": PROFILE, "rkey": "self", "record": profile(&text)}), Some(&jwt))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(msg.contains("mimeType") || msg.contains("accept"), "{msg}");
        // Nothing of the failed writes was kept.
        let refs = pds.state.store.blobs().referencing_records(&did, &link(&text).parse().expect("cid")).await.expect("refs");
        assert!(refs.is_empty(), "{refs:?}");
    }

    async fn get_blob_serves_bytes_safely(backend: Backend) {
        let pds = start(backend, &[]).await;
        let (did, jwt) = account(&pds, "alice").await;
        let (bob, _) = account(&pds, "bob").await;
        let html = b"<html><script>alert(1)</script></html>";
        let blob = upload_ok(&pds, &jwt, "text/html", html).await;
        let cid = link(&blob);
        let res = get_blob(&pds, &did, &cid).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body, html.to_vec());
        assert_eq!(res.header("content-type"), Some("text/html"));
        assert_eq!(res.header("content-length"), Some(html.len().to_string().as_str()));
        assert_eq!(res.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(res.header("content-security-policy"), Some("default-src 'none'; sandbox"));
        assert_eq!(res.header("content-disposition"), Some(format!("attachment; filename=\"{cid}\"").as_str()));

        // Only the account that holds the blob serves it.
        get_blob(&pds, &bob, &cid).await.assert_error(400, "BlobNotFound");
        let absent = blob_cid(b"absent").expect("cid").to_string();
        get_blob(&pds, &did, &absent).await.assert_error(400, "BlobNotFound");
        get_blob(&pds, "did:plc:unknownunknownunknown", &cid).await.assert_error(400, "RepoNotFound");
        get_blob(&pds, &did, "not-a-cid").await.assert_error(400, "InvalidRequest");

        // A taken-down blob is not served.
        let parsed = cid.parse().expect("cid");
        assert!(pds.state.store.blobs().set_takedown(&did, &parsed, Some("mod-1")).await.expect("takedown"));
        get_blob(&pds, &did, &cid).await.assert_error(400, "BlobNotFound");
        // ... and cannot be uploaded again.
        upload(&pds, &jwt, "text/html", html).await.assert_error(400, "InvalidRequest");
        pds.state.store.blobs().set_takedown(&did, &parsed, None).await.expect("restore");
        assert_eq!(get_blob(&pds, &did, &cid).await.status, 200);

        // Deactivated and taken-down accounts.
        let accounts = pds.state.store.accounts();
        accounts.set_status(&did, AccountStatus::Deactivated, None, None, vec![]).await.expect("deactivate");
        get_blob(&pds, &did, &cid).await.assert_error(400, "RepoDeactivated");
        // The account itself still reads its blobs (and may upload: migration).
        let own = pds.get(&format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"), Some(&jwt)).await;
        assert_eq!(own.status, 200);
        upload_ok(&pds, &jwt, "image/png", PNG).await;
        accounts.set_status(&did, AccountStatus::Takendown, Some("t-1"), None, vec![]).await.expect("takedown");
        get_blob(&pds, &did, &cid).await.assert_error(400, "RepoTakendown");
        upload(&pds, &jwt, "image/png", PNG).await.assert_error(401, "AccountTakedown");
        pds.get(&format!("/xrpc/com.atproto.sync.listBlobs?did={did}"), None).await.assert_error(400, "RepoTakendown");
    }

    async fn list_blobs_since_and_pages(backend: Backend) {
        let pds = start(backend, &[]).await;
        let (did, jwt) = account(&pds, "alice").await;
        let a = upload_ok(&pds, &jwt, "image/png", PNG).await;
        let b = upload_ok(&pds, &jwt, "image/jpeg", JPEG).await;
        let c = upload_ok(&pds, &jwt, "image/gif", GIF).await;
        let list = |q: String| {
            let (pds, did) = (&pds, &did);
            async move { pds.get(&format!("/xrpc/com.atproto.sync.listBlobs?did={did}{q}"), None).await.ok() }
        };
        // Uploaded but not referenced: not listed.
        assert_eq!(list(String::new()).await["cids"], json!([]));
        let first = create(&pds, &jwt, &did, POST, &post_with_image("a", &a)).await.ok();
        let rev1 = first["commit"]["rev"].as_str().expect("rev").to_owned();
        create(&pds, &jwt, &did, POST, &post_with_image("b", &b)).await.ok();
        create(&pds, &jwt, &did, POST, &post_with_image("c", &c)).await.ok();
        let mut all = vec![link(&a), link(&b), link(&c)];
        all.sort();
        let out = list(String::new()).await;
        assert_eq!(out["cids"], json!(all));
        // Since a rev: only blobs of records written after it.
        let out = list(format!("&since={rev1}")).await;
        let mut later = vec![link(&b), link(&c)];
        later.sort();
        assert_eq!(out["cids"], json!(later));
        // Pages.
        let page1 = list("&limit=2".to_owned()).await;
        assert_eq!(page1["cids"], json!(all[..2]));
        let cursor = page1["cursor"].as_str().expect("cursor").to_owned();
        let page2 = list(format!("&limit=2&cursor={cursor}")).await;
        assert_eq!(page2["cids"], json!(all[2..]));
        pds.get(&format!("/xrpc/com.atproto.sync.listBlobs?did={did}&limit=0"), None).await.assert_error(400, "InvalidRequest");
        pds.get("/xrpc/com.atproto.sync.listBlobs?did=did:plc:unknownunknownunknown", None).await.assert_error(400, "RepoNotFound");
    }

    async fn blob_goes_with_its_last_reference(backend: Backend) {
        let pds = start(backend, &[]).await;
        let (did, jwt) = account(&pds, "alice").await;
        let png = upload_ok(&pds, &jwt, "image/png", PNG).await;
        let cid = link(&png);
        let parsed = cid.parse().expect("cid");
        let one = create(&pds, &jwt, &did, POST, &post_with_image("one", &png)).await.ok();
        let two = create(&pds, &jwt, &did, POST, &post_with_image("two", &png)).await.ok();
        let rkey1 = rkey_of(one["uri"].as_str().expect("uri"));
        let rkey2 = rkey_of(two["uri"].as_str().expect("uri"));
        pds.xrpc_post(DELETE, &json!({"repo": did, "collection": POST, "rkey": rkey1}), Some(&jwt)).await.ok();
        // Still referenced by the second post.
        assert_eq!(get_blob(&pds, &did, &cid).await.status, 200);
        // Replacing the second post's image drops the last reference.
        let jpeg = upload_ok(&pds, &jwt, "image/jpeg", JPEG).await;
        pds.xrpc_post(PUT, &json!({"repo": did, "collection": POST, "rkey": rkey2, "record": post_with_image("two", &jpeg)}), Some(&jwt)).await.ok();
        get_blob(&pds, &did, &cid).await.assert_error(400, "BlobNotFound");
        assert!(pds.state.store.blobs().get_meta(&did, &parsed).await.expect("meta").is_none());
        assert!(!pds.state.blobstore.exists(&did, &parsed).await.expect("exists"));
        // Deleting the record deletes the other one too.
        pds.xrpc_post(DELETE, &json!({"repo": did, "collection": POST, "rkey": rkey2}), Some(&jwt)).await.ok();
        get_blob(&pds, &did, &link(&jpeg)).await.assert_error(400, "BlobNotFound");
        assert_eq!(pds.state.store.blobs().stats(&did).await.expect("stats"), (0, 0));
    }

    async fn housekeeping_sweeps_orphans_and_old_events(backend: Backend) {
        let pds = start(backend, &[("PDS_FIREHOSE_RETENTION_HOURS", "5")]).await;
        let (did, jwt) = account(&pds, "alice").await;
        // An upload never used, and one used by a post.
        let unused = upload_ok(&pds, &jwt, "image/png", PNG).await;
        let used = upload_ok(&pds, &jwt, "image/jpeg", JPEG).await;
        create(&pds, &jwt, &did, POST, &post_with_image("kept", &used)).await.ok();
        // Bytes in the blob store without a metadata row (as a crash between
        // the blob store and the database leaves them).
        let mut reader: &[u8] = GIF;
        let temp = pds.state.blobstore.put_temp(&mut reader, None).await.expect("temp");
        pds.state.blobstore.make_permanent(&temp, &did).await.expect("permanent");
        let stray = temp.cid;
        let now = pds_store::now_ms();
        let hour = 3_600_000;

        // Within the hour of grace nothing goes.
        let swept = pds::housekeeping::sweep_at(&pds.state, now).await;
        assert_eq!((swept.orphan_blobs, swept.unrecorded_blob_objects, swept.firehose_events), (0, 0, 0));
        assert_eq!(get_blob(&pds, &did, &link(&unused)).await.status, 200);
        assert!(pds.state.blobstore.exists(&did, &stray).await.expect("exists"));

        // After it, the unused upload and the stray bytes go; the used blob stays.
        let swept = pds::housekeeping::sweep_at(&pds.state, now + hour + 60_000).await;
        assert_eq!((swept.orphan_blobs, swept.unrecorded_blob_objects), (1, 1), "{swept:?}");
        get_blob(&pds, &did, &link(&unused)).await.assert_error(400, "BlobNotFound");
        let unused_cid = link(&unused).parse().expect("cid");
        assert!(!pds.state.blobstore.exists(&did, &unused_cid).await.expect("exists"));
        assert!(!pds.state.blobstore.exists(&did, &stray).await.expect("exists"));
        assert_eq!(get_blob(&pds, &did, &link(&used)).await.status, 200);
        let listed = pds.get(&format!("/xrpc/com.atproto.sync.listBlobs?did={did}"), None).await.ok();
        assert_eq!(listed["cids"], json!([link(&used)]));
        // Firehose events are kept for the retention window (5 hours here)...
        assert_eq!(swept.firehose_events, 0);
        let seq = pds.state.store.sequencer();
        let events = seq.events_after(0, 1000).await.expect("events").len() as u64;
        assert!(events >= 4, "account creation and a post: {events} events");
        // ...and pruned after it.
        let swept = pds::housekeeping::sweep_at(&pds.state, now + 5 * hour + 60_000).await;
        assert_eq!(swept.firehose_events, events);
        assert_eq!(seq.earliest_seq().await.expect("earliest"), None);
        // Records and blobs are untouched by event pruning.
        assert_eq!(get_blob(&pds, &did, &link(&used)).await.status, 200);
    }

    async fn import_round_trip_and_missing_blobs(backend: Backend) {
        let pds = start(backend, &[]).await;
        let (did, jwt) = account(&pds, "alice").await;
        let png = upload_ok(&pds, &jwt, "image/png", PNG).await;
        let kept = create(&pds, &jwt, &did, POST, &json!({"$type": POST, "text": "kept", "createdAt": "2024-01-01T00:00:00.000Z"})).await.ok();
        let with_image = create(&pds, &jwt, &did, POST, &post_with_image("image", &png)).await.ok();
        let car = pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await;
        assert_eq!(car.status, 200);
        let car = car.body;

        // Change the repo: drop the image post (its blob goes), add a post.
        let image_rkey = rkey_of(with_image["uri"].as_str().expect("uri"));
        pds.xrpc_post(DELETE, &json!({"repo": did, "collection": POST, "rkey": image_rkey}), Some(&jwt)).await.ok();
        let later = create(&pds, &jwt, &did, POST, &json!({"$type": POST, "text": "later", "createdAt": "2024-01-02T00:00:00.000Z"})).await.ok();
        get_blob(&pds, &did, &link(&png)).await.assert_error(400, "BlobNotFound");
        let before = pds.get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None).await.ok();

        // Import the export: the repo is back as it was.
        let seq_before = pds.state.store.sequencer().current_seq().await.expect("seq");
        let res = import(&pds, &jwt, car.clone()).await;
        assert_eq!(res.status, 200, "{}", res.text());
        // One `#sync` event announces the new state.
        let events = pds.state.store.sequencer().events_after(seq_before, 10).await.expect("events");
        let kinds: Vec<(&str, &str)> = events.iter().map(|e| (e.did.as_str(), e.event_type.as_str())).collect();
        assert_eq!(kinds, vec![(did.as_str(), "sync")]);
        let head = pds.get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None).await.ok();
        assert!(head["rev"].as_str() > before["rev"].as_str(), "{head} after {before}");
        let frame = String::from_utf8_lossy(&events[0].event).into_owned();
        assert!(frame.contains(head["rev"].as_str().expect("rev")), "the #sync event carries the new rev");
        let records = pds.get(&format!("/xrpc/com.atproto.repo.listRecords?repo={did}&collection={POST}"), None).await.ok();
        let uris: Vec<&str> = records["records"].as_array().expect("records").iter().filter_map(|r| r["uri"].as_str()).collect();
        assert_eq!(uris.len(), 2, "{records}");
        assert!(uris.contains(&kept["uri"].as_str().expect("uri")));
        assert!(uris.contains(&with_image["uri"].as_str().expect("uri")));
        assert!(!uris.contains(&later["uri"].as_str().expect("uri")));
        // The record's CID is the exported one.
        let got = pds.get(&format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection={POST}&rkey={image_rkey}"), None).await.ok();
        assert_eq!(got["cid"], with_image["cid"]);
        // The new commit is signed by the account and verifies as a whole.
        let export = pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await;
        let (roots, blocks) = load_car(export.body).expect("export CAR");
        let commit = Commit::from_cbor(blocks.get(&roots[0]).expect("commit")).expect("commit");
        let (original_roots, original) = load_car(car.clone()).expect("CAR");
        let original_commit = Commit::from_cbor(original.get(&original_roots[0]).expect("commit")).expect("commit");
        assert_eq!(commit.data, original_commit.data, "same MST");
        let key = account_key(&pds, &did).await;
        commit.verify(&key.public_key()).expect("signed by the account key");

        // The image's blob is missing now.
        let missing = pds.get("/xrpc/com.atproto.repo.listMissingBlobs", Some(&jwt)).await.ok();
        assert_eq!(missing["blobs"], json!([{"cid": link(&png), "recordUri": with_image["uri"]}]), "{missing}");
        let page = pds.get(&format!("/xrpc/com.atproto.repo.listMissingBlobs?limit=1&cursor={}", link(&png)), Some(&jwt)).await.ok();
        assert_eq!(page["blobs"], json!([]));
        pds.get("/xrpc/com.atproto.repo.listMissingBlobs", None).await.assert_error(401, "AuthMissing");
        pds.get("/xrpc/com.atproto.repo.listMissingBlobs?limit=0", Some(&jwt)).await.assert_error(400, "InvalidRequest");
        // Uploading it again completes the repo.
        upload_ok(&pds, &jwt, "image/png", PNG).await;
        let missing = pds.get("/xrpc/com.atproto.repo.listMissingBlobs", Some(&jwt)).await.ok();
        assert_eq!(missing["blobs"], json!([]));
        assert_eq!(get_blob(&pds, &did, &link(&png)).await.body, PNG.to_vec());
        let listed = pds.get(&format!("/xrpc/com.atproto.sync.listBlobs?did={did}"), None).await.ok();
        assert_eq!(listed["cids"], json!([link(&png)]));

        // A write after the import builds on it.
        create(&pds, &jwt, &did, POST, &json!({"$type": POST, "text": "after", "createdAt": "2024-01-03T00:00:00.000Z"})).await.ok();
    }

    async fn import_rejects_bad_cars(backend: Backend) {
        let pds = start(backend, &[]).await;
        let (did, jwt) = account(&pds, "alice").await;
        let (_, bob_jwt) = account(&pds, "bob").await;
        create(&pds, &jwt, &did, POST, &json!({"$type": POST, "text": "hi", "createdAt": "2024-01-01T00:00:00.000Z"})).await.ok();
        let car = pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await.body;
        let (roots, blocks) = load_car(car.clone()).expect("CAR");
        let commit = Commit::from_cbor(blocks.get(&roots[0]).expect("commit")).expect("commit");
        let head = pds.get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None).await.ok();

        let recommit = |did: &str, key: &PrivateKey| {
            let c = UnsignedCommit::new(did.parse::<Did>().expect("did"), commit.data, Tid::now(), None).sign(key);
            let (cid, bytes) = c.to_block();
            let others: Vec<_> = blocks.iter().filter(|(c, _)| **c != roots[0]).map(|(c, b)| (*c, b.clone())).collect();
            write_car(&[cid], std::iter::once((&cid, &bytes[..])).chain(others.iter().map(|(c, b)| (c, &b[..]))))
        };
        // Signed by a key that is not the account's.
        let stranger = PrivateKey::generate(Algorithm::K256);
        let msg = import(&pds, &jwt, recommit(&did, &stranger)).await.assert_error(400, "InvalidRequest");
        assert!(msg.contains("signature"), "{msg}");
        // Another account's repository.
        let key = account_key(&pds, &did).await;
        let msg = import(&pds, &jwt, recommit("did:plc:someoneelseentirely", &key)).await.assert_error(400, "InvalidRequest");
        assert!(msg.contains("did:plc:someoneelseentirely"), "{msg}");
        // Bob cannot import Alice's repository into his account.
        import(&pds, &bob_jwt, car.clone()).await.assert_error(400, "InvalidRequest");
        // An incomplete tree: a record block left out.
        let record_cid = blocks.iter().map(|(c, _)| *c).find(|c| *c != roots[0] && *c != commit.data).expect("another block");
        let partial: Vec<_> = blocks.iter().filter(|(c, _)| **c != record_cid).map(|(c, b)| (*c, b.clone())).collect();
        let partial_car = write_car(&roots, partial.iter().map(|(c, b)| (c, &b[..])));
        let msg = import(&pds, &jwt, partial_car).await.assert_error(400, "InvalidRequest");
        assert!(msg.contains("Missing"), "{msg}");
        // Not a CAR; two roots; wrong content type; no auth; app passwords.
        import(&pds, &jwt, b"definitely not a CAR".to_vec()).await.assert_error(400, "InvalidRequest");
        let two_roots = write_car(&[roots[0], commit.data], blocks.iter().map(|(c, b)| (c, &b[..])));
        let msg = import(&pds, &jwt, two_roots).await.assert_error(400, "InvalidRequest");
        assert!(msg.contains("one root"), "{msg}");
        let req = pds.client.post(format!("{}/xrpc/com.atproto.repo.importRepo", pds.url)).bearer_auth(&jwt).header("content-type", "application/json").body(car.clone());
        pds.request(req).await.assert_error(400, "InvalidRequest");
        let req = pds.client.post(format!("{}/xrpc/com.atproto.repo.importRepo", pds.url)).header("content-type", "application/vnd.ipld.car").body(car.clone());
        pds.request(req).await.assert_error(401, "AuthMissing");
        // Nothing changed.
        let after = pds.get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None).await.ok();
        assert_eq!(after, head);
    }

    async fn import_accepts_the_did_documents_key(backend: Backend) {
        // Migration: the CAR was signed by the old host's key, which the
        // DID document names; the account's own key here differs.
        let pds = start(backend, &[]).await;
        let (did, jwt) = account(&pds, "alice").await;
        let old_host = PrivateKey::generate(Algorithm::K256);
        set_plc_signing_key(&pds, &did, &old_host).await;
        let rkey = "3jzfcijpj2z2a";
        let record = json!({"$type": POST, "text": "from the old host", "createdAt": "2024-01-01T00:00:00.000Z"});
        let car = single_record_car(&did, &old_host, &format!("{POST}/{rkey}"), &record);
        // A migrating account is deactivated until the move is done.
        let accounts = pds.state.store.accounts();
        accounts.set_status(&did, AccountStatus::Deactivated, None, None, vec![]).await.expect("deactivate");
        let res = import(&pds, &jwt, car).await;
        assert_eq!(res.status, 200, "{}", res.text());
        let missing = pds.get("/xrpc/com.atproto.repo.listMissingBlobs", Some(&jwt)).await.ok();
        assert_eq!(missing["blobs"], json!([]));
        accounts.set_status(&did, AccountStatus::Active, None, None, vec![]).await.expect("activate");
        let got = pds.get(&format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection={POST}&rkey={rkey}"), None).await.ok();
        assert_eq!(got["value"]["text"], "from the old host");
        // The stored commit is the account's own, over the imported tree.
        let export = pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await;
        let (roots, blocks) = load_car(export.body).expect("export CAR");
        let commit = Commit::from_cbor(blocks.get(&roots[0]).expect("commit")).expect("commit");
        commit.verify(&account_key(&pds, &did).await.public_key()).expect("re-signed");
        assert!(commit.verify(&old_host.public_key()).is_err());
        // A key that neither the DID document nor the account has: refused.
        let stranger = PrivateKey::generate(Algorithm::K256);
        let car = single_record_car(&did, &stranger, &format!("{POST}/{rkey}"), &record);
        import(&pds, &jwt, car).await.assert_error(400, "InvalidRequest");
    }

    async fn s3_blob_store(backend: Backend) {
        let moto = Moto::start().await;
        let bucket = "pds-blobs";
        let endpoint = format!("http://127.0.0.1:{}", moto.port);
        let pds = start(backend, &[
            ("PDS_BLOBSTORE_S3_BUCKET", bucket),
            ("PDS_BLOBSTORE_S3_REGION", "us-east-1"),
            ("PDS_BLOBSTORE_S3_ENDPOINT", &endpoint),
            ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true"),
            ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "test"),
            ("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "test"),
        ]).await;
        create_bucket(&pds, &endpoint, bucket).await;
        let (did, jwt) = account(&pds, "alice").await;
        let bytes: Vec<u8> = PNG.iter().copied().chain((0..200_000u32).map(|i| (i % 251) as u8)).collect();
        let blob = upload_ok(&pds, &jwt, "image/png", &bytes).await;
        assert_eq!(blob["mimeType"], "image/png");
        let res = get_blob(&pds, &did, &link(&blob)).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.header("content-type"), Some("image/png"));
        assert_eq!(res.body, bytes);
        // And it goes with its last reference.
        let post = create(&pds, &jwt, &did, POST, &post_with_image("s3", &blob)).await.ok();
        pds.xrpc_post(DELETE, &json!({"repo": did, "collection": POST, "rkey": rkey_of(post["uri"].as_str().expect("uri"))}), Some(&jwt)).await.ok();
        get_blob(&pds, &did, &link(&blob)).await.assert_error(400, "BlobNotFound");
    }
}

async fn import(pds: &TestPds, jwt: &str, car: Vec<u8>) -> Reply {
    let req = pds
        .client
        .post(format!("{}/xrpc/com.atproto.repo.importRepo", pds.url))
        .bearer_auth(jwt)
        .header("content-type", "application/vnd.ipld.car")
        .body(car);
    pds.request(req).await
}

/// A CAR of a repository holding one record at `key`, signed by `signer`.
fn single_record_car(did: &str, signer: &PrivateKey, key: &str, record: &Value) -> Vec<u8> {
    let value = atproto_types::data::Value::from_json(record).expect("record");
    let record_bytes = atproto_types::data::to_dag_cbor(&value);
    let record_cid = atproto_types::data::cid_for_dag_cbor(&record_bytes);
    let mut blocks = atproto_types::repo::BlockMap::new();
    let mut mst = atproto_types::repo::Mst::new();
    mst.insert(&blocks, key, record_cid).expect("insert");
    let committed = mst.commit(&blocks).expect("mst commit");
    for (cid, bytes) in committed.new_blocks.iter() {
        blocks.put(*cid, bytes.clone());
    }
    blocks.put(record_cid, record_bytes);
    let commit = UnsignedCommit::new(
        did.parse::<Did>().expect("did"),
        committed.root,
        Tid::now(),
        None,
    )
    .sign(signer);
    let (commit_cid, commit_bytes) = commit.to_block();
    blocks.put(commit_cid, commit_bytes);
    write_car(&[commit_cid], blocks.iter().map(|(c, b)| (c, &b[..])))
}

/// Points the DID document's `#atproto` key at `key` (a PLC update signed
/// with the server's rotation key).
async fn set_plc_signing_key(pds: &TestPds, did: &str, key: &PrivateKey) {
    use atproto_types::data::{cid_for_dag_cbor, to_dag_cbor, Value as Data};
    use base64::Engine;
    let last: Value = pds
        .client
        .get(format!("{}/{did}/log/last", pds_tests::plc_url()))
        .send()
        .await
        .expect("PLC log")
        .json()
        .await
        .expect("last op");
    let prev = cid_for_dag_cbor(&to_dag_cbor(&Data::from_json(&last).expect("op")));
    let mut op = last.clone();
    let obj = op.as_object_mut().expect("op object");
    obj.remove("sig");
    obj.insert("prev".into(), json!(prev.to_string()));
    obj.insert(
        "verificationMethods".into(),
        json!({"atproto": key.did_key()}),
    );
    let unsigned = Data::from_json(&op).expect("op");
    let sig = pds.state.plc_rotation_key.sign(&to_dag_cbor(&unsigned));
    op["sig"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig));
    pds.state.plc.submit(did, &op).await.expect("PLC update");
}

/// The account's signing key, from the server's state.
async fn account_key(pds: &TestPds, did: &str) -> PrivateKey {
    let sealed = pds
        .state
        .store
        .accounts()
        .signing_key(did)
        .await
        .expect("signing key")
        .expect("stored");
    pds.state.key_cipher.open(did, &sealed).expect("open")
}

/// A moto S3 server on a free loopback port, killed on drop.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    async fn start() -> Moto {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the S3 blob store test needs moto's S3 server ({bin}: {e}); \
                     install it with `pip install 'moto[server]'` or set MOTO_SERVER"
                )
            });
        let moto = Moto { child, port };
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start on port {port}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the bucket (moto accepts unsigned path-style requests).
async fn create_bucket(pds: &TestPds, endpoint: &str, bucket: &str) {
    let res = pds
        .client
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("create bucket");
    assert!(res.status().is_success(), "create bucket: {}", res.status());
}
