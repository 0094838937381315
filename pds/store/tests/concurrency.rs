//! Concurrency: writers to one repo never interleave or fork, within one
//! process and across processes (two `Store`s on one database), and the
//! sequencer never shows a gap that is filled later.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{counter_commit, make_account, rev, rev_num, TestDb};
use pds_store::*;
use pds_testkit::both_backends;
use sqlx::{Connection, Row};

both_backends!(
    placeholder_dollar_syntax_is_shared,
    concurrent_writers_one_repo,
    concurrent_writers_two_processes,
    sequencer_never_shows_gaps,
    small_pool_repo_writes_make_progress,
    close_returns_while_listening,
    concurrent_commits_fail_alone,
);

/// Commits to many repositories at once (on SQLite they share group-commit
/// transactions): each failing commit is rolled back alone, every other one
/// is stored, and the sequence numbers of the stored ones are gap-free.
async fn concurrent_commits_fail_alone(db: &TestDb) {
    let s = &db.store;
    let repos = 24;
    for i in 0..repos {
        make_account(s, &format!("did:plc:batch{i}")).await;
    }
    let start_seq = s.sequencer().current_seq().await.unwrap();
    let mut tasks = Vec::new();
    for round in 0..3 {
        for i in 0..repos {
            let s = s.clone();
            let did = format!("did:plc:batch{i}");
            // Every fifth repository's second commit names a blob that was
            // never uploaded.
            let fail = round == 1 && i % 5 == 0;
            tasks.push(tokio::spawn(async move {
                if !fail {
                    let out = counter_commit(&s, &did).await.map(|(_, seq)| seq);
                    return (did, fail, out);
                }
                let txn = s.repo().begin_write(&did).await.unwrap();
                let current = txn.current().cloned().unwrap();
                let (root, bytes) = common::block(format!("doomed|{did}"));
                let mut data = RepoCommitData::new(root, rev(1000));
                data.put_blocks = vec![(root, bytes)];
                data.delete_blocks = vec![current.cid];
                data.record_puts = vec![RecordPut {
                    collection: "app.test.other".into(),
                    rkey: "doomed".into(),
                    cid: root,
                    blobs: vec![common::block("never uploaded").0],
                }];
                data.events = vec![common::commit_event(&did, &rev(1000))];
                (did, fail, txn.commit(data).await.map(|o| o.seqs[0]))
            }));
        }
        // Let each round's commits queue up together.
        let round_tasks = std::mem::take(&mut tasks);
        let mut seqs = Vec::new();
        for t in round_tasks {
            let (did, fail, out) = t.await.unwrap();
            match (fail, out) {
                (false, Ok(seq)) => seqs.push(seq),
                (true, Err(StoreError::BlobNotFound(_))) => {
                    assert!(s
                        .repo()
                        .get_record(&did, "app.test.other", "doomed")
                        .await
                        .unwrap()
                        .is_none());
                }
                (fail, out) => panic!("{did} (failing: {fail}): unexpected {out:?}"),
            }
        }
        seqs.sort_unstable();
        let first = seqs[0];
        assert_eq!(
            seqs,
            (first..first + seqs.len() as i64).collect::<Vec<_>>(),
            "round {round}: sequence numbers with a gap"
        );
    }
    // 3 rounds of 24, minus the 5 failures of round 1.
    let stored = 3 * repos - 5;
    assert_eq!(
        s.sequencer().current_seq().await.unwrap(),
        start_seq + stored as i64
    );
    for i in 0..repos {
        let did = format!("did:plc:batch{i}");
        let expect = if i % 5 == 0 { 2 } else { 3 };
        assert_eq!(s.repo().record_count(&did).await.unwrap(), expect, "{did}");
    }
}

/// `close` returns even though a second store on the database keeps its
/// event listener (PostgreSQL LISTEN holds a pooled connection) running.
async fn close_returns_while_listening(db: &TestDb) {
    let other = Store::open(StoreConfig::new(db.location.clone()))
        .await
        .expect("open second store");
    tokio::time::timeout(Duration::from_secs(20), other.close())
        .await
        .expect("Store::close hung");
    tokio::time::timeout(Duration::from_secs(20), db.store.close())
        .await
        .expect("Store::close hung");
}

/// The store writes each statement once with `$N` placeholders; check both
/// drivers bind `$N` by number (reordered and repeated).
async fn placeholder_dollar_syntax_is_shared(db: &TestDb) {
    let sql = "SELECT $2 || $1 AS joined, $1 AS first";
    let row = match db.store.backend() {
        Backend::Sqlite => {
            let path = std::path::Path::new(&db.location).join(SQLITE_FILE_NAME);
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .unwrap();
            let r = sqlx::query(sql)
                .bind("a")
                .bind("b")
                .fetch_one(&mut c)
                .await
                .unwrap();
            (r.get::<String, _>("joined"), r.get::<String, _>("first"))
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.location).await.unwrap();
            let r = sqlx::query(sql)
                .bind("a")
                .bind("b")
                .fetch_one(&mut c)
                .await
                .unwrap();
            (r.get::<String, _>("joined"), r.get::<String, _>("first"))
        }
    };
    assert_eq!(row, ("ba".to_string(), "a".to_string()));
}

/// Checks a counter repo after `expected` acknowledged commits: the root is
/// at rev `expected`, every commit's record is present, and the event log
/// holds exactly seqs 1..=expected where seq k carries rev k (commit order ==
/// seq order: nothing interleaved, nothing forked, nothing lost).
async fn verify_counter_repo(store: &Store, did: &str, expected: u64) {
    let root = store.repo().get_root(did).await.unwrap().unwrap();
    assert_eq!(rev_num(&root.rev), expected, "root rev");
    assert_eq!(store.repo().record_count(did).await.unwrap(), expected);
    for n in 1..=expected {
        assert!(
            store
                .repo()
                .get_record(did, "app.test.counter", &format!("{n:08}"))
                .await
                .unwrap()
                .is_some(),
            "record {n} missing"
        );
    }
    // Only the latest root block survives GC, plus one block per record.
    assert_eq!(store.repo().block_stats(did).await.unwrap().0, expected + 1);
    let events = store.sequencer().events_after(0, 100_000).await.unwrap();
    assert_eq!(events.len() as u64, expected);
    for (i, e) in events.iter().enumerate() {
        let k = i as i64 + 1;
        assert_eq!(e.seq, k, "gap-free");
        let text = String::from_utf8(e.event.clone()).unwrap();
        assert_eq!(
            text,
            format!("{k}|{did}|{}", rev(k as u64)),
            "seq order is commit order"
        );
    }
}

async fn concurrent_writers_one_repo(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:hot";
    make_account(s, did).await;
    let (tasks, per_task) = (8u64, 12u64);
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let st = s.clone();
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for _ in 0..per_task {
                acked.push(counter_commit(&st, did).await.unwrap());
            }
            acked
        }));
    }
    let mut all = HashSet::new();
    for h in handles {
        for (n, seq) in h.await.unwrap() {
            assert!(all.insert(n), "two writers got the same rev {n}");
            assert_eq!(seq, n as i64);
        }
    }
    assert_eq!(all.len() as u64, tasks * per_task);
    eprintln!(
        "{:?}: {} commits from {} tasks in {:?}",
        s.backend(),
        tasks * per_task,
        tasks,
        t0.elapsed()
    );
    verify_counter_repo(s, did, tasks * per_task).await;
}

async fn concurrent_writers_two_processes(db: &TestDb) {
    let a = db.store.clone();
    let b = db.reopen().await;
    let did = "did:plc:shared";
    make_account(&a, did).await;
    counter_commit(&a, did).await.unwrap();
    let conflicts = Arc::new(AtomicU64::new(0));
    let (tasks, per_task) = (8u64, 10u64);
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for i in 0..tasks {
        let st = if i % 2 == 0 { a.clone() } else { b.clone() };
        let conflicts = conflicts.clone();
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            while (acked.len() as u64) < per_task {
                match counter_commit(&st, did).await {
                    Ok(r) => acked.push(r),
                    // SQLite: another process moved the root between our read
                    // and our commit; nothing was written, retry.
                    Err(StoreError::RepoConflict { .. }) => {
                        conflicts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            acked
        }));
    }
    let mut all = HashSet::new();
    for h in handles {
        for (n, _) in h.await.unwrap() {
            assert!(all.insert(n), "two processes committed rev {n}");
        }
    }
    let total = tasks * per_task + 1;
    eprintln!(
        "{:?}: {} commits from 2 processes in {:?}, {} compare-and-swap retries",
        a.backend(),
        total,
        t0.elapsed(),
        conflicts.load(Ordering::Relaxed)
    );
    if a.backend() == Backend::Postgres {
        assert_eq!(
            conflicts.load(Ordering::Relaxed),
            0,
            "the row lock serialises processes"
        );
    }
    verify_counter_repo(&a, did, total).await;
    verify_counter_repo(&b, did, total).await;
}

async fn sequencer_never_shows_gaps(db: &TestDb) {
    let a = db.store.clone();
    let b = db.reopen().await;
    let repos: Vec<String> = (0..6).map(|i| format!("did:plc:seq{i}")).collect();
    for did in &repos {
        make_account(&a, did).await;
    }
    let per_task = 15u64;
    let mut writers = Vec::new();
    for (i, did) in repos.iter().enumerate() {
        for j in 0..2 {
            let st = if (i + j) % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            let did = did.clone();
            writers.push(tokio::spawn(async move {
                let mut n = 0;
                while n < per_task {
                    match counter_commit(&st, &did).await {
                        Ok(_) => n += 1,
                        Err(StoreError::RepoConflict { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }));
        }
    }
    // Standalone events interleaved (identity/account style).
    for k in 0..2 {
        let st = if k == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            for i in 0..20u8 {
                st.sequencer()
                    .append(NewEvent::raw("did:plc:ident", "identity", vec![i]))
                    .await
                    .unwrap();
            }
        }));
    }
    let total = repos.len() as i64 * 2 * per_task as i64 + 40;
    let reader = {
        let st = b.clone();
        tokio::spawn(async move {
            let mut cursor = 0i64;
            let mut polls = 0u64;
            let deadline = Instant::now() + Duration::from_secs(120);
            while cursor < total {
                assert!(Instant::now() < deadline, "reader stalled at {cursor}");
                let batch = st.sequencer().events_after(cursor, 50).await.unwrap();
                polls += 1;
                for e in batch {
                    assert_eq!(e.seq, cursor + 1, "gap: saw {} after {}", e.seq, cursor);
                    cursor = e.seq;
                }
            }
            polls
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    let polls = reader.await.unwrap();
    eprintln!(
        "{:?}: reader polled {polls} times over {total} events, no gap",
        a.backend()
    );
    assert_eq!(a.sequencer().current_seq().await.unwrap(), total);
}

/// Repo write transactions that read through the pool while holding the
/// write lock must not exhaust a small pool (PostgreSQL keeps a connection
/// per open repo write).
async fn small_pool_repo_writes_make_progress(db: &TestDb) {
    let mut config = StoreConfig::new(db.location.clone());
    config.max_connections = 3;
    config.acquire_timeout = Duration::from_secs(5);
    let small = Store::open(config).await.unwrap();
    let dids: Vec<String> = (0..8).map(|i| format!("did:plc:pool{i}")).collect();
    for did in &dids {
        make_account(&small, did).await;
        counter_commit(&small, did).await.unwrap();
    }
    let mut tasks = Vec::new();
    for (i, did) in dids.iter().enumerate() {
        let st = small.clone();
        let did = did.clone();
        let other = dids[(i + 1) % dids.len()].clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..3 {
                let txn = st.repo().begin_write(&did).await?;
                let root = txn.current().map(|r| r.cid).into_iter().collect::<Vec<_>>();
                assert_eq!(txn.get_blocks(&root).await?.blocks.len(), 1);
                st.repo().get_root(&other).await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(txn);
                counter_commit(&st, &did).await?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        for t in tasks {
            t.await.unwrap().unwrap();
        }
    })
    .await;
    assert!(all.is_ok(), "repo writers deadlocked on a small pool");
    for did in &dids {
        assert_eq!(
            rev_num(&small.repo().get_root(did).await.unwrap().unwrap().rev),
            4
        );
    }
}
