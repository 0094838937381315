//! The write path against SQLite and PostgreSQL (`NAME::sqlite`,
//! `NAME::postgres`), every test on a fresh database.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use atproto_repo::{load_car, Commit, MemoryBlockStore, Mst};
use common::*;
use pds_repo::{BlockCache, RepoWriteError, RepoWriter, RepoWriterConfig, ValidationStatus, Write};
use pds_store::NewAccount;
use pds_testkit::both_backends;

const POST: &str = "app.bsky.feed.post";

both_backends!(
    genesis_with_account_creation,
    create_repo_for_existing_account,
    create_update_delete,
    swap_semantics,
    validation_modes,
    batch_limits,
    blob_references,
    concurrent_writers,
    cache_limits_block_fetches,
    conflicting_processes_retry,
    repo_car_and_record_proofs,
    identical_records_share_a_block,
    repo_car_is_a_snapshot_across_commits,
);

fn writer(db: &TestDb) -> RepoWriter {
    RepoWriter::new(db.store.clone()).expect("writer")
}

async fn genesis_with_account_creation(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:genesis";
    let k = key();
    let genesis = w.prepare_genesis(did, &k, Vec::new()).expect("genesis");
    let commit_cid = genesis.commit_cid;
    let rev = genesis.rev.clone();
    let sync = genesis.sync_event();
    let mut data = genesis.data;
    data.events.insert(
        0,
        pds_repo::events::identity_event(did, Some("genesis.test")),
    );
    data.events
        .insert(1, pds_repo::events::account_event(did, true, None));
    data.events.push(sync);
    let out = db
        .store
        .accounts()
        .create(NewAccount::new(did, "genesis.test"), Some(data))
        .await
        .expect("create account with repo");
    assert_eq!(out.seqs.len(), 4);
    let root = db.store.repo().get_root(did).await.unwrap().expect("root");
    assert_eq!(root.cid, commit_cid);
    assert_eq!(root.rev, rev);

    let keys = HashMap::from([(did.to_owned(), k.public_key())]);
    let chains = check_log(&db.store, &keys).await;
    let chain = &chains[did];
    assert_eq!(chain.len(), 1);
    assert!(chain[0].ops.is_empty());
    let events = db.store.sequencer().events_after(0, 10).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["identity", "account", "commit", "sync"]);
    // The #sync event's CAR holds just the commit.
    let atproto_types::xrpc::Frame::Message { body, .. } =
        atproto_types::xrpc::Frame::decode(&events[3].event).unwrap()
    else {
        panic!("sync frame");
    };
    let (roots, blocks) =
        load_car(body.get("blocks").unwrap().as_bytes().unwrap().to_vec()).unwrap();
    assert_eq!(roots, vec![commit_cid]);
    assert_eq!(blocks.len(), 1);
    let commit = Commit::from_cbor(blocks.get(&commit_cid).unwrap()).unwrap();
    commit.verify(&k.public_key()).expect("signed");
    assert_eq!(body.get_str("rev"), Some(rev.as_str()));
}

async fn create_repo_for_existing_account(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:existing";
    db.store
        .accounts()
        .create(NewAccount::new(did, "existing.test"), None)
        .await
        .unwrap();
    let k = key();
    let out = w
        .create_repo(
            did,
            &k,
            vec![
                create(POST, None, post("first")),
                create(
                    "app.bsky.actor.profile",
                    Some("self"),
                    json(r#"{"displayName": "E"}"#),
                ),
            ],
        )
        .await
        .expect("create repo");
    let commit = out.commit.expect("commit");
    assert_eq!(out.results.len(), 2);
    assert!(out.results.iter().all(|r| r.changed));
    assert_eq!(
        out.results[0].validation_status,
        Some(ValidationStatus::Valid)
    );
    assert!(out.results[1].uri.ends_with("/app.bsky.actor.profile/self"));
    assert_eq!(db.store.repo().record_count(did).await.unwrap(), 2);
    let rkey = rkey_of(&out.results[0].uri);
    let rec = db
        .store
        .repo()
        .get_record(did, POST, &rkey)
        .await
        .unwrap()
        .expect("indexed");
    assert_eq!(Some(rec.cid), out.results[0].cid);
    assert_eq!(rec.rev, commit.rev);
    // The generated rkey is a TID no later than the rev.
    assert!(rkey.len() == 13 && rkey.as_str() < commit.rev.as_str());

    let again = w.create_repo(did, &k, Vec::new()).await.unwrap_err();
    assert!(
        matches!(again, RepoWriteError::RepoAlreadyExists(_)),
        "{again:?}"
    );
    let nobody = w
        .apply_writes(
            "did:plc:nobody",
            &k,
            vec![create(POST, None, post("x"))],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(nobody, RepoWriteError::RepoNotFound(_)),
        "{nobody:?}"
    );

    let keys = HashMap::from([(did.to_owned(), k.public_key())]);
    let chains = check_log(&db.store, &keys).await;
    assert_eq!(chains[did].len(), 1);
    assert_eq!(chains[did][0].ops.len(), 2);
}

async fn create_update_delete(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:crud";
    let k = account(&w, did).await;
    let keys = HashMap::from([(did.to_owned(), k.public_key())]);

    let out = w
        .apply_writes(did, &k, vec![create(POST, None, post("hello"))], None)
        .await
        .expect("create");
    let c1 = out.commit.clone().expect("commit");
    let r = &out.results[0];
    let rkey = rkey_of(&r.uri);
    assert_eq!(r.uri, format!("at://{did}/{POST}/{rkey}"));
    let cid1 = r.cid.expect("cid");
    let rec = db
        .store
        .repo()
        .get_record(did, POST, &rkey)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.cid, cid1);
    // The record block is stored as encoded, with $type added.
    let bytes = db
        .store
        .repo()
        .get_block(did, &cid1)
        .await
        .unwrap()
        .unwrap();
    let v = atproto_data::from_dag_cbor(&bytes).unwrap();
    assert_eq!(v.type_name(), Some(POST));
    assert_eq!(v.get_str("text"), Some("hello"));
    // The stored commit block is signed by the key.
    let commit_bytes = db
        .store
        .repo()
        .get_block(did, &c1.cid)
        .await
        .unwrap()
        .unwrap();
    Commit::from_cbor(&commit_bytes)
        .unwrap()
        .verify(&k.public_key())
        .unwrap();

    // Update.
    let out = w
        .apply_writes(
            did,
            &k,
            vec![update(POST, &rkey, post("hello, edited"))],
            None,
        )
        .await
        .expect("update");
    let c2 = out.commit.clone().expect("commit");
    assert!(c2.seq > c1.seq && c2.rev > c1.rev);
    let cid2 = out.results[0].cid.unwrap();
    assert_ne!(cid1, cid2);
    assert_eq!(
        db.store
            .repo()
            .get_record(did, POST, &rkey)
            .await
            .unwrap()
            .unwrap()
            .cid,
        cid2
    );
    // The commit collected the previous commit and the replaced record
    // block (no other record holds it): a full GC finds nothing left.
    assert!(db
        .store
        .repo()
        .get_block(did, &c1.cid)
        .await
        .unwrap()
        .is_none());
    assert!(db
        .store
        .repo()
        .get_block(did, &cid1)
        .await
        .unwrap()
        .is_none());
    assert_eq!(w.collect_garbage(did).await.unwrap(), 0);

    // Putting the same record again changes nothing.
    let out = w
        .apply_writes(
            did,
            &k,
            vec![update(POST, &rkey, post("hello, edited"))],
            None,
        )
        .await
        .expect("no-op put");
    assert!(out.commit.is_none());
    assert_eq!(out.results[0].cid, Some(cid2));
    assert!(!out.results[0].changed);
    assert_eq!(
        db.store.repo().get_root(did).await.unwrap().unwrap().cid,
        c2.cid
    );

    // Put of an absent record creates it.
    let out = w
        .apply_writes(
            did,
            &k,
            vec![update(
                "app.bsky.actor.profile",
                "self",
                json(r#"{"displayName": "C"}"#),
            )],
            None,
        )
        .await
        .expect("put creates");
    assert!(out.commit.is_some());

    // A batch: create two, update one, delete one.
    let out = w
        .apply_writes(
            did,
            &k,
            vec![
                create(POST, Some("3kaaaaaaaaaa2"), post("a")),
                create(POST, None, post("b")),
                update(
                    "app.bsky.actor.profile",
                    "self",
                    json(r#"{"displayName": "D"}"#),
                ),
                delete(POST, &rkey),
            ],
            None,
        )
        .await
        .expect("batch");
    assert!(out.commit.is_some());
    assert_eq!(out.results.len(), 4);
    assert_eq!(out.results[3].cid, None);
    assert!(db
        .store
        .repo()
        .get_record(did, POST, &rkey)
        .await
        .unwrap()
        .is_none());
    assert_eq!(db.store.repo().record_count(did).await.unwrap(), 3);

    // Deleting an absent record changes nothing.
    let out = w
        .apply_writes(did, &k, vec![delete(POST, &rkey)], None)
        .await
        .expect("no-op delete");
    assert!(out.commit.is_none());
    assert!(!out.results[0].changed);

    // Two writes to one key in a batch are refused.
    let err = w
        .apply_writes(
            did,
            &k,
            vec![
                update(POST, "3kaaaaaaaaaa2", post("x")),
                delete(POST, "3kaaaaaaaaaa2"),
            ],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RepoWriteError::InvalidRequest(_)), "{err:?}");

    let chains = check_log(&db.store, &keys).await;
    let chain = &chains[did];
    // genesis, create, update, put-create, batch.
    assert_eq!(chain.len(), 5);
    let ops: Vec<String> = chain[4]
        .ops
        .iter()
        .map(|o| format!("{}:{}", o.action.as_str(), o.path))
        .collect();
    assert_eq!(ops.len(), 4);
    assert!(ops[2].starts_with("update:app.bsky.actor.profile/self"));
    assert!(ops[3].starts_with("delete:"));

    // The MST built from the stored blocks matches the record index.
    let blocks = db.store.repo().all_blocks(did).await.unwrap();
    let mut mem = MemoryBlockStore::new();
    for (c, b) in blocks {
        mem.put(c, b);
    }
    let root = db.store.repo().get_root(did).await.unwrap().unwrap();
    let commit = Commit::from_cbor(mem.get(&root.cid).unwrap()).unwrap();
    let entries = Mst::load(&mem, commit.data).unwrap().entries(&mem).unwrap();
    assert_eq!(entries.len(), 3);
    for (path, cid) in entries {
        let (c, rk) = path.split_once('/').unwrap();
        let rec = db
            .store
            .repo()
            .get_record(did, c, rk)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.cid, cid);
        assert!(mem.get(&cid).is_some(), "record block stored");
    }
}

async fn swap_semantics(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:swap";
    let k = account(&w, did).await;
    let keys = HashMap::from([(did.to_owned(), k.public_key())]);
    let out = w
        .apply_writes(
            did,
            &k,
            vec![create(POST, Some("3kaaaaaaaaaa2"), post("one"))],
            None,
        )
        .await
        .unwrap();
    let head = out.commit.unwrap().cid;
    let cid = out.results[0].cid.unwrap();
    let other = atproto_data::cid_for_dag_cbor(b"\xa0");

    let is_swap = |e: RepoWriteError| matches!(e, RepoWriteError::InvalidSwap(_));
    // swapCommit.
    let e = w
        .apply_writes(did, &k, vec![create(POST, None, post("x"))], Some(other))
        .await
        .unwrap_err();
    assert!(is_swap(e));
    let ok = w
        .apply_writes(did, &k, vec![create(POST, None, post("x"))], Some(head))
        .await
        .unwrap();
    let head = ok.commit.unwrap().cid;

    let put = |swap: Option<Option<atproto_repo::Cid>>, text: &str| Write::Update {
        collection: POST.into(),
        rkey: "3kaaaaaaaaaa2".into(),
        record: post(text),
        validate: None,
        swap_record: swap,
    };
    // swapRecord on update: wrong CID, "must not exist".
    for swap in [Some(Some(other)), Some(None)] {
        let e = w
            .apply_writes(did, &k, vec![put(swap, "two")], None)
            .await
            .unwrap_err();
        assert!(is_swap(e), "{swap:?}");
    }
    // Right CID.
    let out = w
        .apply_writes(did, &k, vec![put(Some(Some(cid)), "two")], None)
        .await
        .unwrap();
    let cid2 = out.results[0].cid.unwrap();
    // A no-op put with a stale swap is still refused.
    let e = w
        .apply_writes(did, &k, vec![put(Some(Some(cid)), "two")], None)
        .await
        .unwrap_err();
    assert!(is_swap(e));
    // "must not exist" on an absent record creates it.
    let e = w
        .apply_writes(
            did,
            &k,
            vec![Write::Update {
                collection: POST.into(),
                rkey: "3kaaaaaaaaab2".into(),
                record: post("new"),
                validate: None,
                swap_record: Some(None),
            }],
            None,
        )
        .await
        .unwrap();
    assert!(e.results[0].changed);

    // Delete with swaps.
    let del = |swap| Write::Delete {
        collection: POST.into(),
        rkey: "3kaaaaaaaaaa2".into(),
        swap_record: swap,
    };
    for swap in [Some(Some(cid)), Some(None)] {
        let e = w
            .apply_writes(did, &k, vec![del(swap)], None)
            .await
            .unwrap_err();
        assert!(is_swap(e));
    }
    w.apply_writes(did, &k, vec![del(Some(Some(cid2)))], None)
        .await
        .unwrap();
    // Deleting an absent record that a swap says exists.
    let e = w
        .apply_writes(did, &k, vec![del(Some(Some(cid2)))], None)
        .await
        .unwrap_err();
    assert!(is_swap(e));

    // Create of an existing record.
    let e = w
        .apply_writes(
            did,
            &k,
            vec![create(POST, Some("3kaaaaaaaaab2"), post("dup"))],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(e, RepoWriteError::RecordAlreadyExists { .. }),
        "{e:?}"
    );
    // A failing write in a batch fails the whole batch.
    let before = db.store.repo().get_root(did).await.unwrap().unwrap();
    let e = w
        .apply_writes(
            did,
            &k,
            vec![
                create(POST, None, post("ok")),
                create(POST, Some("3kaaaaaaaaab2"), post("dup")),
            ],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RepoWriteError::RecordAlreadyExists { .. }));
    assert_eq!(
        db.store.repo().get_root(did).await.unwrap().unwrap(),
        before
    );
    assert_ne!(before.cid, head);
    check_log(&db.store, &keys).await;
}

async fn validation_modes(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:valid";
    let k = account(&w, did).await;
    let one = |write: Write| {
        let w = w.clone();
        let k = &k;
        async move { w.apply_writes(did, k, vec![write], None).await }
    };
    // Valid post.
    let out = one(create(POST, None, post("ok"))).await.unwrap();
    assert_eq!(
        out.results[0].validation_status,
        Some(ValidationStatus::Valid)
    );

    // Invalid post: the error names the path.
    let long = "x".repeat(3001);
    let e = one(create(POST, None, post(&long))).await.unwrap_err();
    let RepoWriteError::InvalidRequest(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(
        msg.contains("app.bsky.feed.post") && msg.contains("text"),
        "{msg}"
    );
    let e = one(create(POST, None, json(r#"{"text": "no date"}"#)))
        .await
        .unwrap_err();
    let RepoWriteError::InvalidRequest(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.contains("createdAt"), "{msg}");
    let e = one(create(
        POST,
        None,
        json(r#"{"text": "x", "createdAt": "now", "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": 3}]}}"#),
    ))
    .await
    .unwrap_err();
    let RepoWriteError::InvalidRequest(msg) = &e else {
        panic!("{e:?}")
    };
    assert!(msg.contains("embed.images[0]"), "{msg}");
    // $type mismatch.
    let e = one(create(
        POST,
        None,
        json(
            r#"{"$type": "app.bsky.feed.like", "text": "x", "createdAt": "2024-05-01T12:00:00Z"}"#,
        ),
    ))
    .await
    .unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)));
    // Record key kinds: a post needs a TID, a profile "self".
    let e = one(create(POST, Some("not-a-tid"), post("x")))
        .await
        .unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)), "{e:?}");
    let e = one(create("app.bsky.actor.profile", Some("me"), json("{}")))
        .await
        .unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)), "{e:?}");
    let e = one(create("app.bsky.actor.profile", None, json("{}")))
        .await
        .unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)), "{e:?}");
    let e = one(create(POST, Some("a/b"), post("x"))).await.unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)), "{e:?}");

    // Unknown lexicon, validate unset: stored, status unknown.
    let out = one(create(
        "com.example.thing",
        Some("any-key"),
        json(r#"{"n": 1}"#),
    ))
    .await
    .unwrap();
    assert_eq!(
        out.results[0].validation_status,
        Some(ValidationStatus::Unknown)
    );
    // validate=true requires the lexicon.
    let e = one(Write::Create {
        collection: "com.example.thing".into(),
        rkey: None,
        record: json(r#"{"n": 2}"#),
        validate: Some(true),
    })
    .await
    .unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)), "{e:?}");
    // validate=false skips validation (even of a bad post and its key kind).
    let out = one(Write::Create {
        collection: POST.into(),
        rkey: Some("free-form".into()),
        record: json(r#"{"text": 5}"#),
        validate: Some(false),
    })
    .await
    .unwrap();
    assert_eq!(out.results[0].validation_status, None);
    // The data model is always enforced.
    let bad_blob = atproto_data::Value::map_from_iter([(
        "b",
        atproto_data::Value::map_from_iter([
            ("$type", atproto_data::Value::String("blob".into())),
            ("ref", atproto_data::Value::String("nope".into())),
        ]),
    )]);
    let e = one(Write::Create {
        collection: "com.example.thing".into(),
        rkey: None,
        record: bad_blob,
        validate: Some(false),
    })
    .await
    .unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)), "{e:?}");
    let e = one(create("com.example.thing", None, json("[1]")))
        .await
        .unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)), "{e:?}");
    let e = one(create("not an nsid", None, json("{}")))
        .await
        .unwrap_err();
    assert!(matches!(e, RepoWriteError::InvalidRequest(_)), "{e:?}");
    assert_eq!(db.store.repo().record_count(did).await.unwrap(), 3);
}

async fn batch_limits(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:limits";
    let k = account(&w, did).await;
    let many = |n: usize| -> Vec<Write> {
        (0..n)
            .map(|i| {
                create(
                    "com.example.item",
                    Some(&format!("k{i:04}")),
                    json(&format!(r#"{{"i": {i}}}"#)),
                )
            })
            .collect()
    };
    let e = w.apply_writes(did, &k, many(201), None).await.unwrap_err();
    assert!(
        matches!(
            e,
            RepoWriteError::TooManyWrites {
                count: 201,
                max: 200
            }
        ),
        "{e:?}"
    );
    let out = w
        .apply_writes(did, &k, many(200), None)
        .await
        .expect("200 writes");
    assert_eq!(out.results.len(), 200);
    assert_eq!(db.store.repo().record_count(did).await.unwrap(), 200);

    // 25 records of 100 kB: the event's CAR would pass 2,000,000 bytes.
    let big: Vec<Write> = (0..25)
        .map(|i| {
            create(
                "com.example.big",
                Some(&format!("b{i}")),
                json(&format!(r#"{{"data": "{}{i}"}}"#, "y".repeat(100_000))),
            )
        })
        .collect();
    let before = db.store.repo().get_root(did).await.unwrap().unwrap();
    let e = w.apply_writes(did, &k, big, None).await.unwrap_err();
    assert!(matches!(e, RepoWriteError::CommitTooLarge { .. }), "{e:?}");
    assert_eq!(
        db.store.repo().get_root(did).await.unwrap().unwrap(),
        before
    );
    let keys = HashMap::from([(did.to_owned(), k.public_key())]);
    let chains = check_log(&db.store, &keys).await;
    assert_eq!(chains[did].last().unwrap().ops.len(), 200);
}

async fn blob_references(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:blobs";
    let k = account(&w, did).await;
    let blob = atproto_data::cid_for_raw(b"png bytes");
    let image_post = || {
        json(&format!(
            r#"{{"text": "pic", "createdAt": "2024-05-01T12:00:00Z",
                "embed": {{"$type": "app.bsky.embed.images", "images": [{{"alt": "a",
                  "image": {{"$type": "blob", "ref": {{"$link": "{blob}"}}, "mimeType": "image/png", "size": 9}}}}]}}}}"#
        ))
    };
    let e = w
        .apply_writes(
            did,
            &k,
            vec![create(POST, Some("3kaaaaaaaaaa2"), image_post())],
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RepoWriteError::BlobNotFound(c) if *c == blob.to_string()),
        "{e:?}"
    );
    assert_eq!(db.store.repo().record_count(did).await.unwrap(), 0);
    // Another account's upload does not count.
    db.store
        .accounts()
        .create(NewAccount::new("did:plc:other", "other.test"), None)
        .await
        .unwrap();
    db.store
        .blobs()
        .put_meta("did:plc:other", &blob, "image/png", 9)
        .await
        .unwrap();
    let e = w
        .apply_writes(
            did,
            &k,
            vec![create(POST, Some("3kaaaaaaaaaa2"), image_post())],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, RepoWriteError::BlobNotFound(_)), "{e:?}");

    db.store
        .blobs()
        .put_meta(did, &blob, "image/png", 9)
        .await
        .unwrap();
    w.apply_writes(
        did,
        &k,
        vec![create(POST, Some("3kaaaaaaaaaa2"), image_post())],
        None,
    )
    .await
    .expect("blob uploaded");
    let refs = db
        .store
        .blobs()
        .referencing_records(did, &blob)
        .await
        .unwrap();
    assert_eq!(refs, vec![format!("at://{did}/{POST}/3kaaaaaaaaaa2")]);
    // Deleting the record drops the reference; the blob is reported unreferenced.
    let out = w
        .apply_writes(did, &k, vec![delete(POST, "3kaaaaaaaaaa2")], None)
        .await
        .unwrap();
    assert_eq!(out.commit.unwrap().unreferenced_blobs, vec![blob]);
}

async fn concurrent_writers(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:busy";
    let k = Arc::new(account(&w, did).await);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (w, k) = (w.clone(), k.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                w.apply_writes(
                    did,
                    &k,
                    vec![create(POST, None, post(&format!("task {t} post {i}")))],
                    None,
                )
                .await
                .expect("concurrent create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(db.store.repo().record_count(did).await.unwrap(), 160);
    // The MST of the stored root holds exactly the indexed records.
    let blocks = db.store.repo().all_blocks(did).await.unwrap();
    let mut mem = MemoryBlockStore::new();
    for (c, b) in blocks {
        mem.put(c, b);
    }
    let root = db.store.repo().get_root(did).await.unwrap().unwrap();
    let commit = Commit::from_cbor(mem.get(&root.cid).unwrap()).unwrap();
    let entries = Mst::load(&mem, commit.data).unwrap().entries(&mem).unwrap();
    assert_eq!(entries.len(), 160);
    let listed = db
        .store
        .repo()
        .list_records(did, POST, 1000, None, true)
        .await
        .unwrap();
    let from_index: Vec<_> = listed
        .iter()
        .map(|r| (format!("{POST}/{}", r.rkey), r.cid))
        .collect();
    assert_eq!(entries, from_index);
    let keys = HashMap::from([(did.to_owned(), k.public_key())]);
    let chains = check_log(&db.store, &keys).await;
    assert_eq!(chains[did].len(), 161);
    assert_eq!(chains[did].last().unwrap().data, commit.data);
}

async fn cache_limits_block_fetches(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:large";
    let k = account(&w, did).await;
    for batch in 0..10 {
        let writes = (0..200)
            .map(|i| create(POST, None, post(&format!("post {batch}-{i}"))))
            .collect();
        w.apply_writes(did, &k, writes, None).await.expect("batch");
    }
    assert_eq!(db.store.repo().record_count(did).await.unwrap(), 2000);
    let (total_blocks, _) = db.store.repo().block_stats(did).await.unwrap();

    // A cold process (empty cache) fetches only the path of the write.
    let cold = RepoWriter::with_parts(
        db.store.clone(),
        w.catalog(),
        Arc::new(BlockCache::default()),
        RepoWriterConfig::default(),
    );
    cold.apply_writes(did, &k, vec![create(POST, None, post("cold"))], None)
        .await
        .unwrap();
    let s = cold.cache().stats();
    eprintln!("cold write: {s:?}; the repository holds {total_blocks} blocks");
    assert!(s.blocks_fetched >= 3, "the root path was fetched: {s:?}");
    assert!(
        s.blocks_fetched <= 20 && s.fetches <= 10,
        "cold write fetched {} blocks in {} round trips (repo has {total_blocks})",
        s.blocks_fetched,
        s.fetches
    );
    // Warm: the previous write's nodes are cached; an update elsewhere in
    // the tree fetches only the nodes off that path.
    let before = cold.cache().stats();
    cold.apply_writes(did, &k, vec![create(POST, None, post("warm"))], None)
        .await
        .unwrap();
    let after = cold.cache().stats();
    assert_eq!(
        after.blocks_fetched, before.blocks_fetched,
        "a write next to the previous one needs no fetch"
    );
    // A write through a writer without a cache fetches the path every time.
    let uncached = RepoWriter::with_parts(
        db.store.clone(),
        w.catalog(),
        Arc::new(BlockCache::new(0)),
        RepoWriterConfig::default(),
    );
    for text in ["u1", "u2"] {
        let b = uncached.cache().stats().blocks_fetched;
        uncached
            .apply_writes(did, &k, vec![create(POST, None, post(text))], None)
            .await
            .unwrap();
        assert!(uncached.cache().stats().blocks_fetched - b >= 3);
    }
    let keys = HashMap::from([(did.to_owned(), k.public_key())]);
    check_log(&db.store, &keys).await;
}

async fn conflicting_processes_retry(db: &TestDb) {
    // Two writers on two Stores (two processes) writing one repository.
    let w1 = writer(db);
    let did = "did:plc:twoproc";
    let k = Arc::new(account(&w1, did).await);
    let second = db.reopen().await;
    let w2 = RepoWriter::new(second).unwrap();
    let mut tasks = Vec::new();
    for (n, w) in [w1.clone(), w2].into_iter().enumerate() {
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..15 {
                w.apply_writes(
                    did,
                    &k,
                    vec![create(POST, None, post(&format!("p{n} {i}")))],
                    None,
                )
                .await
                .expect("write despite the other process");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(db.store.repo().record_count(did).await.unwrap(), 30);
    let keys = HashMap::from([(did.to_owned(), k.public_key())]);
    let chains = check_log(&db.store, &keys).await;
    assert_eq!(chains[did].len(), 31);
}

async fn repo_car_and_record_proofs(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:export";
    let k = account(&w, did).await;
    let writes: Vec<Write> = (0..150)
        .map(|i| {
            create(
                "com.example.item",
                Some(&format!("k{i:04}")),
                json(&format!(r#"{{"i": {i}}}"#)),
            )
        })
        .collect();
    let first = w
        .apply_writes(did, &k, writes, None)
        .await
        .unwrap()
        .commit
        .unwrap();
    let out = w
        .apply_writes(
            did,
            &k,
            vec![create(POST, Some("3kaaaaaaaaaa2"), post("last"))],
            None,
        )
        .await
        .unwrap();
    let head = out.commit.unwrap();

    // Full export (the stream pages through 500-block pages).
    let car = collect(w.get_repo_car(did, None).await.unwrap()).await;
    let (roots, blocks) = load_car(car).expect("valid CAR");
    assert_eq!(roots, vec![head.cid]);
    let commit = Commit::from_cbor(blocks.get(&head.cid).unwrap()).unwrap();
    commit.verify(&k.public_key()).unwrap();
    let entries = Mst::load(&blocks, commit.data)
        .unwrap()
        .entries(&blocks)
        .unwrap();
    assert_eq!(entries.len(), 151);
    for (_, cid) in &entries {
        assert!(blocks.get(cid).is_some());
    }
    let (n, _) = db.store.repo().block_stats(did).await.unwrap();
    assert_eq!(blocks.len() as u64, n, "every stored block is exported");

    // Diff since the first batch: only the last commit's blocks.
    let diff = collect(w.get_repo_car(did, Some(&first.rev)).await.unwrap()).await;
    let (roots, dblocks) = load_car(diff).unwrap();
    assert_eq!(roots, vec![head.cid]);
    assert!(dblocks.get(&head.cid).is_some());
    assert!(dblocks.len() < 20, "{} blocks", dblocks.len());
    let e = w.get_repo_car("did:plc:none", None).await.unwrap_err();
    assert!(matches!(e, RepoWriteError::RepoNotFound(_)));

    // Record proofs: present and absent.
    for (coll, rkey, present) in [
        (POST, "3kaaaaaaaaaa2", true),
        ("com.example.item", "k0077", true),
        ("com.example.item", "k9999", false),
    ] {
        let (car, cid) = w.record_proof_car(did, coll, rkey).await.unwrap();
        assert_eq!(cid.is_some(), present);
        let (roots, pblocks) = load_car(car).unwrap();
        assert_eq!(roots, vec![head.cid]);
        assert!(pblocks.len() < 20);
        let c = Commit::from_cbor(pblocks.get(&head.cid).unwrap()).unwrap();
        c.verify(&k.public_key()).unwrap();
        let mst = Mst::load(&pblocks, c.data).unwrap();
        let got = mst
            .get(&pblocks, &format!("{coll}/{rkey}"))
            .expect("proof covers the key");
        assert_eq!(got, cid);
        if let Some(cid) = cid {
            assert!(pblocks.get(&cid).is_some(), "record block included");
        }
    }
}

/// Commits landing after an export is opened (deleting the commit and the
/// MST nodes they replace) do not change what the export sends: the
/// repository at the commit it was opened at, complete.
async fn repo_car_is_a_snapshot_across_commits(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:snapshot";
    let k = account(&w, did).await;
    let writes: Vec<Write> = (0..120)
        .map(|i| {
            create(
                "com.example.item",
                Some(&format!("k{i:04}")),
                json(&format!(r#"{{"i": {i}}}"#)),
            )
        })
        .collect();
    let head = w
        .apply_writes(did, &k, writes, None)
        .await
        .unwrap()
        .commit
        .unwrap();
    let stream = w.get_repo_car(did, None).await.unwrap();
    for round in 0..5 {
        let writes = vec![
            update(
                "com.example.item",
                &format!("k{:04}", round * 7),
                json(r#"{"edited": true}"#),
            ),
            delete("com.example.item", &format!("k{:04}", round * 7 + 1)),
            create(
                "com.example.item",
                None,
                json(&format!(r#"{{"round": {round}}}"#)),
            ),
        ];
        w.apply_writes(did, &k, writes, None).await.unwrap();
    }
    assert!(
        db.store
            .repo()
            .get_block(did, &head.cid)
            .await
            .unwrap()
            .is_none(),
        "the exported commit was replaced and deleted"
    );
    let (roots, blocks) = load_car(collect(stream).await).expect("complete CAR");
    assert_eq!(roots, vec![head.cid]);
    let commit = Commit::from_cbor(blocks.get(&head.cid).unwrap()).unwrap();
    commit.verify(&k.public_key()).unwrap();
    let entries = Mst::load(&blocks, commit.data)
        .unwrap()
        .entries(&blocks)
        .unwrap();
    assert_eq!(entries.len(), 120);
    for (key, cid) in &entries {
        assert!(blocks.get(cid).is_some(), "record {key}");
    }
}

async fn collect(mut s: pds_repo::reads::RepoCarStream) -> Vec<u8> {
    use std::future::poll_fn;
    use std::pin::Pin;
    let mut out = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) =
        poll_fn(|cx| futures_core::Stream::poll_next(Pin::new(&mut s), cx)).await
    {
        out.extend_from_slice(&chunk.expect("chunk"));
        chunks += 1;
    }
    assert!(chunks >= 2, "header and blocks");
    out
}

async fn identical_records_share_a_block(db: &TestDb) {
    let w = writer(db);
    let did = "did:plc:twins";
    let k = account(&w, did).await;
    let same = || json(r#"{"subject": "x", "n": 1}"#);
    let out = w
        .apply_writes(
            did,
            &k,
            vec![
                create("com.example.twin", Some("a"), same()),
                create("com.example.twin", Some("b"), same()),
            ],
            None,
        )
        .await
        .unwrap();
    let cid = out.results[0].cid.unwrap();
    assert_eq!(out.results[1].cid, Some(cid));
    w.apply_writes(did, &k, vec![delete("com.example.twin", "a")], None)
        .await
        .unwrap();
    // The other record's block survives the commit and a full GC.
    assert!(db
        .store
        .repo()
        .get_block(did, &cid)
        .await
        .unwrap()
        .is_some());
    w.collect_garbage(did).await.unwrap();
    assert!(db
        .store
        .repo()
        .get_block(did, &cid)
        .await
        .unwrap()
        .is_some());
    let (car, got) = w
        .record_proof_car(did, "com.example.twin", "b")
        .await
        .unwrap();
    assert_eq!(got, Some(cid));
    let (_, blocks) = load_car(car).unwrap();
    assert!(blocks.get(&cid).is_some());
    // Once no record holds it, the deleting commit reclaims it.
    w.apply_writes(did, &k, vec![delete("com.example.twin", "b")], None)
        .await
        .unwrap();
    assert!(db
        .store
        .repo()
        .get_block(did, &cid)
        .await
        .unwrap()
        .is_none());
    assert_eq!(w.collect_garbage(did).await.unwrap(), 0);
    assert!(db
        .store
        .repo()
        .get_block(did, &cid)
        .await
        .unwrap()
        .is_none());
    let keys = HashMap::from([(did.to_owned(), k.public_key())]);
    check_log(&db.store, &keys).await;
}
