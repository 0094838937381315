//! Block storage stays bounded under put/delete churn: commits pass their
//! unreachable MST nodes and root for garbage collection, and the store
//! itself deletes the blocks of replaced or deleted records that no other
//! record of the repository names.

mod common;

use std::collections::VecDeque;

use common::{block, make_account, rev, TestDb};
use pds_store::blobstore::{BlobStore, DiskBlobStore};
use pds_store::*;
use pds_testkit::both_backends;

both_backends!(
    blocks_stay_bounded_under_churn,
    blobs_stay_bounded_under_churn
);

async fn blocks_stay_bounded_under_churn(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:churn";
    make_account(s, did).await;
    // Each commit: a new record (record block + 3 fresh "MST node" blocks +
    // a new root), deleting the record written 20 commits earlier and the
    // previous commit's root and nodes; an update of the same counter
    // record; and one of two twin records set to the content the other
    // one holds (odd commits) or to new content (even commits), so their
    // block is shared every other commit. Record blocks are never passed
    // in `delete_blocks`: the store collects them.
    let window = 20usize;
    let commits = 600u64;
    let mut live: VecDeque<(String, cid::Cid)> = VecDeque::new();
    let mut prev_nodes: Vec<cid::Cid> = Vec::new();
    let mut samples = Vec::new();
    let t0 = std::time::Instant::now();
    for n in 1..=commits {
        let txn = s.repo().begin_write(did).await.unwrap();
        let (root, rb) = block(format!("churn-root-{n}-{}", "x".repeat(200)));
        let (rec, recb) = block(format!("churn-record-{n}-{}", "y".repeat(300)));
        let nodes: Vec<_> = (0..3)
            .map(|k| block(format!("node-{n}-{k}-{}", "z".repeat(400))))
            .collect();
        let mut data = RepoCommitData::new(root, rev(n));
        data.put_blocks = vec![(root, rb), (rec, recb)];
        data.put_blocks.extend(nodes.iter().cloned());
        data.delete_blocks = std::mem::take(&mut prev_nodes);
        if let Some(prev) = txn.current() {
            data.delete_blocks.push(prev.cid);
        }
        let rkey = format!("{n:08}");
        data.record_puts = vec![RecordPut {
            collection: "app.test.churn".into(),
            rkey: rkey.clone(),
            cid: rec,
            blobs: vec![],
        }];
        let (counter, counter_b) = block(format!("counter-{n}-{}", "c".repeat(300)));
        let (twin, twin_b) = block(format!("twin-{}-{}", n / 2, "t".repeat(300)));
        let twin_key = if n % 2 == 0 { "a" } else { "b" };
        data.put_blocks.push((counter, counter_b));
        data.put_blocks.push((twin, twin_b));
        data.record_puts.push(RecordPut {
            collection: "app.test.counter".into(),
            rkey: "self".into(),
            cid: counter,
            blobs: vec![],
        });
        data.record_puts.push(RecordPut {
            collection: "app.test.twin".into(),
            rkey: twin_key.into(),
            cid: twin,
            blobs: vec![],
        });
        live.push_back((rkey, rec));
        let mut dropped = None;
        if live.len() > window {
            if let Some((old_key, old_cid)) = live.pop_front() {
                data.record_deletes = vec![RecordDelete {
                    collection: "app.test.churn".into(),
                    rkey: old_key,
                }];
                dropped = Some(old_cid);
            }
        }
        data.events = vec![NewEvent::raw(did, "commit", vec![0; 64])];
        txn.commit(data).await.unwrap();
        prev_nodes = nodes.iter().map(|(c, _)| *c).collect();
        if let Some(old) = dropped {
            assert!(s.repo().get_block(did, &old).await.unwrap().is_none());
        }
        // The other twin's block, whatever happened to this one's previous
        // content, is still there.
        let other = if twin_key == "a" { "b" } else { "a" };
        if let Some(r) = s
            .repo()
            .get_record(did, "app.test.twin", other)
            .await
            .unwrap()
        {
            assert!(
                s.repo().get_block(did, &r.cid).await.unwrap().is_some(),
                "commit {n}: shared twin block kept"
            );
        }
        if n % 100 == 0 {
            samples.push((n, s.repo().block_stats(did).await.unwrap()));
        }
    }
    let elapsed = t0.elapsed();
    let sqlite_size = if s.backend() == Backend::Sqlite {
        let p = std::path::Path::new(&db.location).join(SQLITE_FILE_NAME);
        std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
    } else {
        0
    };
    eprintln!(
        "{:?}: {commits} commits in {elapsed:?}; (commit, blocks, bytes) = {samples:?}; sqlite file {sqlite_size} bytes",
        s.backend()
    );
    // Live set: `window` records + 1 root + 3 nodes + the counter + two
    // twins (samples are at even commits, where the twins differ),
    // whatever the history.
    let expected = window as u64 + 4 + 1 + 2;
    for (_, (count, _)) in &samples {
        assert_eq!(*count, expected);
    }
    let bytes: Vec<u64> = samples.iter().map(|(_, (_, b))| *b).collect();
    let (lo, hi) = (bytes.iter().min().unwrap(), bytes.iter().max().unwrap());
    assert!(hi - lo < 200, "stored bytes stable: {bytes:?}");
    assert_eq!(s.repo().record_count(did).await.unwrap(), window as u64 + 3);
}

/// Every commit creates a record referencing a freshly uploaded blob and
/// deletes the record written `window` commits earlier: the commit reports
/// that record's blob as unreferenced, and the orphan sweep (run with a
/// cutoff past the grace period) deletes its row and bytes, so blob rows
/// and files stay at the live set.
async fn blobs_stay_bounded_under_churn(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:blobchurn";
    make_account(s, did).await;
    let bs = DiskBlobStore::open(db.dir().join("blobs")).await.unwrap();
    let window = 10usize;
    let commits = 120u64;
    let mut live: VecDeque<(String, cid::Cid)> = VecDeque::new();
    let mut swept = 0;
    for n in 1..=commits {
        let bytes = format!("blob {n} {}", "b".repeat(2000));
        let mut body = bytes.as_bytes();
        let meta = s
            .blobs()
            .upload(&bs, did, "text/plain", &mut body, None)
            .await
            .unwrap();
        let txn = s.repo().begin_write(did).await.unwrap();
        let (root, rb) = block(format!("blobchurn-root-{n}"));
        let (rec, recb) = block(format!("blobchurn-record-{n}"));
        let mut data = RepoCommitData::new(root, rev(n));
        data.put_blocks = vec![(root, rb), (rec, recb)];
        data.delete_blocks = txn.current().map(|r| r.cid).into_iter().collect();
        let rkey = format!("{n:08}");
        data.record_puts = vec![RecordPut {
            collection: "app.test.blobchurn".into(),
            rkey: rkey.clone(),
            cid: rec,
            blobs: vec![meta.cid],
        }];
        live.push_back((rkey, meta.cid));
        let mut dropped = None;
        if live.len() > window {
            if let Some((old_key, old_blob)) = live.pop_front() {
                data.record_deletes = vec![RecordDelete {
                    collection: "app.test.blobchurn".into(),
                    rkey: old_key,
                }];
                dropped = Some(old_blob);
            }
        }
        data.events = vec![NewEvent::raw(did, "commit", vec![0; 16])];
        let out = txn.commit(data).await.unwrap();
        assert_eq!(
            out.unreferenced_blobs,
            dropped.into_iter().collect::<Vec<_>>()
        );
        if n % 20 == 0 {
            let later = now_ms() + 1000;
            for (d, c) in s.blobs().list_orphans(later, 1000).await.unwrap() {
                if s.blobs().delete_orphan(&bs, &d, &c, later).await.unwrap() {
                    swept += 1;
                }
            }
            let (count, _) = s.blobs().stats(did).await.unwrap();
            assert_eq!(count, window as u64, "commit {n}: blob rows");
            let files = bs.list_page(None, 1000).await.unwrap().blobs;
            assert_eq!(files.len(), window, "commit {n}: blob files");
            for (_, cid) in &live {
                assert!(bs.exists(did, cid).await.unwrap());
            }
        }
    }
    assert_eq!(swept, commits - window as u64);
}
