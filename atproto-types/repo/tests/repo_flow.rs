//! End to end: batches of writes become signed commits whose sync 1.1 block
//! sets check out by inversion.

use std::collections::BTreeSet;
use std::str::FromStr;

use atproto_crypto::{Algorithm, PrivateKey};
use atproto_repo::car::write_car_from_map;
use atproto_repo::mst::diff;
use atproto_repo::sync::{invert_ops, verify_commit_car};
use atproto_repo::{apply_writes, BlockMap, Cid, Mst, RecordWrite, RepoError, RepoHead};
use atproto_syntax::{Did, Tid};

fn record(n: u32) -> (Cid, Vec<u8>) {
    // A tiny DAG-CBOR map {"n": n}.
    let mut b = vec![0xa1, 0x61, b'n', 0x1a];
    b.extend_from_slice(&n.to_be_bytes());
    (atproto_data::cid_for_dag_cbor(&b), b)
}

fn tid(n: u64) -> Tid {
    Tid::from_u64((1_700_000_000_000_000u64 + n) << 10)
}

#[test]
fn batches_commit_and_verify() {
    let key = PrivateKey::generate(Algorithm::K256);
    let did = Did::from_str("did:plc:ewvi7nxzyoun6zhxrhs64oiz").expect("did");
    let mut store = BlockMap::new();
    let mut records = BlockMap::new();
    let mut writes = Vec::new();
    for i in 0..300u32 {
        let (c, b) = record(i);
        records.put(c, b);
        writes.push(RecordWrite::Create {
            key: format!("app.bsky.feed.post/r{i:05}"),
            cid: c,
        });
    }
    let first = apply_writes(&store, did.clone(), tid(1), None, &writes, &records, &key)
        .expect("first commit");
    assert_eq!(first.commit.prev, None);
    assert_eq!(first.ops.len(), 300);
    store.extend(first.new_blocks.clone());
    // The whole first commit checks out against the empty tree.
    let car = write_car_from_map(&[first.commit_cid], &first.sync_blocks);
    verify_commit_car(&car, &first.ops, first.prev_data, Some(&key.public_key()))
        .expect("first commit verifies");

    let mut head = RepoHead {
        commit: first.commit_cid,
        data: first.data,
    };
    for round in 0..5u32 {
        let mut records = BlockMap::new();
        let mut writes = Vec::new();
        for j in 0..3u32 {
            let (c, b) = record(10_000 + round * 10 + j);
            records.put(c, b);
            writes.push(RecordWrite::Create {
                key: format!("app.bsky.feed.like/n{round}x{j}"),
                cid: c,
            });
        }
        let (c, b) = record(20_000 + round);
        records.put(c, b);
        writes.push(RecordWrite::Update {
            key: format!("app.bsky.feed.post/r{:05}", round * 7),
            cid: c,
        });
        writes.push(RecordWrite::Delete {
            key: format!("app.bsky.feed.post/r{:05}", 100 + round * 13),
        });
        let res = apply_writes(
            &store,
            did.clone(),
            tid(10 + u64::from(round)),
            Some(head),
            &writes,
            &records,
            &key,
        )
        .expect("commit");
        assert_eq!(res.commit.prev, Some(head.commit));
        assert_eq!(res.prev_data, head.data);
        assert!(res
            .ops
            .iter()
            .all(|o| o.action != atproto_repo::OpAction::Update || o.prev.is_some()));

        // The event verifies from its blocks alone, in given and reversed order.
        let car = write_car_from_map(&[res.commit_cid], &res.sync_blocks);
        verify_commit_car(&car, &res.ops, res.prev_data, Some(&key.public_key()))
            .expect("verifies");
        let mut rev_ops = res.ops.clone();
        rev_ops.reverse();
        assert_eq!(
            invert_ops(&res.sync_blocks, res.data, &rev_ops).expect("invert"),
            res.prev_data
        );
        // A wrong signing key fails.
        let other = PrivateKey::generate(Algorithm::K256);
        assert!(
            verify_commit_car(&car, &res.ops, res.prev_data, Some(&other.public_key())).is_err()
        );

        store.extend(res.new_blocks.clone());
        // The ops agree with a diff of the roots, and the removed nodes are
        // exactly those the diff calls removed.
        let d = diff(&store, Some(res.prev_data), res.data).expect("diff");
        assert_eq!(d.ops.len(), res.ops.len());
        let a: BTreeSet<Cid> = d.removed.iter().copied().collect();
        let b: BTreeSet<Cid> = res.removed.iter().copied().collect();
        assert_eq!(a, b);
        // The new tree reads back.
        let m = Mst::load(&store, res.data).expect("load");
        assert_eq!(
            m.len(&store).expect("len"),
            300 + 3 * (round as usize + 1) - (round as usize + 1)
        );
        head = RepoHead {
            commit: res.commit_cid,
            data: res.data,
        };
    }

    // Errors: create of an existing key, missing record block, duplicates.
    let (c, b) = record(1);
    let mut recs = BlockMap::new();
    recs.put(c, b);
    let exists = apply_writes(
        &store,
        did.clone(),
        tid(100),
        Some(head),
        &[RecordWrite::Create {
            key: "app.bsky.feed.post/r00001".into(),
            cid: c,
        }],
        &recs,
        &key,
    );
    assert!(matches!(
        exists,
        Err(RepoError::Mst(atproto_repo::MstError::KeyExists(_)))
    ));
    let missing = apply_writes(
        &store,
        did.clone(),
        tid(100),
        Some(head),
        &[RecordWrite::Create {
            key: "app.bsky.feed.post/zzz".into(),
            cid: c,
        }],
        &BlockMap::new(),
        &key,
    );
    assert!(matches!(missing, Err(RepoError::MissingRecord { .. })));
    let dup = apply_writes(
        &store,
        did,
        tid(100),
        Some(head),
        &[
            RecordWrite::Delete {
                key: "app.bsky.feed.post/r00001".into(),
            },
            RecordWrite::Delete {
                key: "app.bsky.feed.post/r00001".into(),
            },
        ],
        &recs,
        &key,
    );
    assert!(matches!(dup, Err(RepoError::DuplicateKey(_))));
}

#[test]
fn tampered_events_fail() {
    let key = PrivateKey::generate(Algorithm::P256);
    let did = Did::from_str("did:web:example.com").expect("did");
    let mut store = BlockMap::new();
    let mut records = BlockMap::new();
    let mut writes = Vec::new();
    for i in 0..50u32 {
        let (c, b) = record(i);
        records.put(c, b);
        writes.push(RecordWrite::Create {
            key: format!("com.example.x/k{i}"),
            cid: c,
        });
    }
    let first =
        apply_writes(&store, did.clone(), tid(1), None, &writes, &records, &key).expect("first");
    store.extend(first.new_blocks);
    let head = RepoHead {
        commit: first.commit_cid,
        data: first.data,
    };
    let (c, b) = record(999);
    let mut recs = BlockMap::new();
    recs.put(c, b);
    let res = apply_writes(
        &store,
        did,
        tid(2),
        Some(head),
        &[
            RecordWrite::Create {
                key: "com.example.x/new".into(),
                cid: c,
            },
            RecordWrite::Delete {
                key: "com.example.x/k7".into(),
            },
        ],
        &recs,
        &key,
    )
    .expect("second");
    // Dropping an op, or lying about a prev, breaks the check.
    assert!(invert_ops(&res.sync_blocks, res.data, &res.ops[..1])
        .map(|r| r != res.prev_data)
        .unwrap_or(true));
    let mut lied = res.ops.clone();
    lied[1].prev = Some(c);
    assert!(invert_ops(&res.sync_blocks, res.data, &lied)
        .map(|r| r != res.prev_data)
        .unwrap_or(true));
}
