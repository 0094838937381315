//! Block storage stays bounded under put/delete churn when commits pass
//! their unreachable blocks for garbage collection.

mod common;

use std::collections::VecDeque;

use common::{block, make_account, rev, TestDb};
use pds_store::*;
use pds_testkit::both_backends;

both_backends!(blocks_stay_bounded_under_churn);

async fn blocks_stay_bounded_under_churn(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:churn";
    make_account(s, did).await;
    // Each commit: a new record (record block + 3 fresh "MST node" blocks +
    // a new root), deleting the record written 20 commits earlier and the
    // previous commit's root and nodes.
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
        live.push_back((rkey, rec));
        if live.len() > window {
            if let Some((old_key, old_cid)) = live.pop_front() {
                data.record_deletes = vec![RecordDelete {
                    collection: "app.test.churn".into(),
                    rkey: old_key,
                }];
                data.delete_blocks.push(old_cid);
            }
        }
        data.events = vec![NewEvent::raw(did, "commit", vec![0; 64])];
        txn.commit(data).await.unwrap();
        prev_nodes = nodes.iter().map(|(c, _)| *c).collect();
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
    // Live set: `window` records + 1 root + 3 nodes, whatever the history.
    let expected = window as u64 + 4;
    for (_, (count, _)) in &samples {
        assert_eq!(*count, expected);
    }
    let bytes: Vec<u64> = samples.iter().map(|(_, (_, b))| *b).collect();
    let (lo, hi) = (bytes.iter().min().unwrap(), bytes.iter().max().unwrap());
    assert!(hi - lo < 200, "stored bytes stable: {bytes:?}");
    assert_eq!(s.repo().record_count(did).await.unwrap(), window as u64);
}
