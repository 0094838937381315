//! Test harness: `pds_testkit` (a fresh SQLite directory or PostgreSQL
//! database per test, `both_backends!`) plus blocks, revs, accounts and
//! counter commits.

#![allow(dead_code)]

use std::time::Duration;

use cid::Cid;
use pds_store::blobstore::BlobStore;
use pds_store::{now_ms, NewAccount, NewEvent, RecordPut, RepoCommitData, Store, StoreError};
use sha2::{Digest, Sha256};

pub use pds_testkit::TestDb;

/// A dag-cbor-codec CIDv1 block of `bytes`.
pub fn block(bytes: impl Into<Vec<u8>>) -> (Cid, Vec<u8>) {
    let bytes = bytes.into();
    let digest = Sha256::digest(&bytes);
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest[..]).expect("multihash");
    (Cid::new_v1(0x71, mh), bytes)
}

pub fn rev(n: u64) -> String {
    format!("rev{n:012}")
}

pub fn rev_num(rev: &str) -> u64 {
    rev.trim_start_matches("rev").parse().expect("test rev")
}

pub async fn make_account(store: &Store, did: &str) {
    store
        .accounts()
        .create(
            NewAccount::new(did, format!("{}.test", did.replace(':', "-"))),
            None,
        )
        .await
        .expect("create account");
}

/// Event bytes used by the tests: `seq|did|rev`.
pub fn commit_event(did: &str, rev: &str) -> NewEvent {
    let (d, r) = (did.to_owned(), rev.to_owned());
    NewEvent::new(did, "commit", move |seq, _t| {
        format!("{seq}|{d}|{r}").into_bytes()
    })
}

/// One read-modify-write "counter" commit: the rev counts commits; each
/// commit adds record `app.test.counter/<n>`, writes a fresh root block and
/// garbage-collects the previous one.
pub async fn counter_commit(store: &Store, did: &str) -> Result<(u64, i64), StoreError> {
    let txn = store.repo().begin_write(did).await?;
    let (n, prev_root) = match txn.current() {
        Some(r) => (rev_num(&r.rev), Some(r.cid)),
        None => (0, None),
    };
    let next = n + 1;
    let (root, root_bytes) = block(format!("root|{did}|{next}"));
    let (rec, rec_bytes) = block(format!("record|{did}|{next}"));
    let mut data = RepoCommitData::new(root, rev(next));
    data.put_blocks = vec![(root, root_bytes), (rec, rec_bytes)];
    data.delete_blocks = prev_root.into_iter().collect();
    data.record_puts = vec![RecordPut {
        collection: "app.test.counter".into(),
        rkey: format!("{next:08}"),
        cid: rec,
        blobs: vec![],
    }];
    data.events = vec![commit_event(did, &rev(next))];
    let out = txn.commit(data).await?;
    Ok((next, out.seqs.first().copied().unwrap_or(-1)))
}

pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Blob bytes without a metadata row (a crash between the blob store and
/// the database) are swept once older than the cutoff; recorded blobs and
/// recent objects stay. Shared by the conformance suite (disk store, both
/// databases) and the S3 tests.
pub async fn unrecorded_objects_are_swept(store: &Store, blobs: &dyn BlobStore) {
    let did = "did:plc:sweeper";
    make_account(store, did).await;
    let mut body: &[u8] = b"recorded blob";
    let kept = store
        .blobs()
        .upload(blobs, did, "text/plain", &mut body, None)
        .await
        .unwrap();
    // Bytes moved into place with no row: for this account, and for an
    // account that no longer exists.
    let mut orphans = Vec::new();
    for (owner, bytes) in [
        (did, &b"crashed before its row"[..]),
        ("did:plc:gone", &b"account deleted, bytes left"[..]),
    ] {
        let mut body: &[u8] = bytes;
        let t = blobs.put_temp(&mut body, None).await.unwrap();
        blobs.make_permanent(&t, owner).await.unwrap();
        orphans.push((owner, t.cid));
    }
    // Too recent: nothing is deleted.
    let an_hour_ago = now_ms() - 3_600_000;
    assert_eq!(
        store
            .blobs()
            .delete_unrecorded_objects(blobs, an_hour_ago)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .blobs()
            .collect_unrecorded_objects(blobs, Duration::ZERO)
            .await
            .unwrap(),
        0,
        "the grace period is at least an hour"
    );
    for (owner, cid) in &orphans {
        assert!(blobs.exists(owner, cid).await.unwrap());
    }
    // A recorded blob is never deleted by the single-object sweep.
    assert!(!store
        .blobs()
        .delete_unrecorded_object(blobs, did, &kept.cid)
        .await
        .unwrap());
    let later = now_ms() + 60_000;
    assert_eq!(
        store
            .blobs()
            .delete_unrecorded_objects(blobs, later)
            .await
            .unwrap(),
        2
    );
    for (owner, cid) in &orphans {
        assert!(!blobs.exists(owner, cid).await.unwrap(), "{owner} {cid}");
        assert!(store.blobs().get_meta(owner, cid).await.unwrap().is_none());
    }
    assert!(blobs.exists(did, &kept.cid).await.unwrap());
    assert_eq!(
        store.blobs().get_meta(did, &kept.cid).await.unwrap(),
        Some(kept.clone())
    );
    // Idempotent.
    assert_eq!(
        store
            .blobs()
            .delete_unrecorded_objects(blobs, later)
            .await
            .unwrap(),
        0
    );
}
