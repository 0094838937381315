//! Crash consistency: a child process commits to a repo in a loop and is
//! killed with SIGKILL at a random moment, several times; after each kill
//! the database must hold the state of some whole commit (never half of
//! one), with a gap-free event log, and accept the next commit.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{block, make_account, rev, rev_num, TestDb};
use pds_store::{RecordPut, RepoCommitData, Store, StoreConfig, StoreError};

const CHILD_ENV: &str = "PDS_STORE_CRASH_CHILD_LOCATION";
const DID: &str = "did:plc:crash";
/// Filler blocks per commit, so each transaction writes ~200 KB and a kill
/// is likely to land inside one.
const FILLERS: u64 = 200;

fn filler(n: u64, k: u64) -> (cid::Cid, Vec<u8>) {
    block(format!("filler|{n}|{k}|{}", "f".repeat(1000)))
}

/// A counter commit (as `common::counter_commit`) that also writes this
/// commit's fillers and garbage-collects the previous commit's.
async fn crash_commit(store: &Store) -> Result<(u64, i64), StoreError> {
    let txn = store.repo().begin_write(DID).await?;
    let (n, prev_root) = match txn.current() {
        Some(r) => (rev_num(&r.rev), Some(r.cid)),
        None => (0, None),
    };
    let next = n + 1;
    let (root, root_bytes) = block(format!("root|{DID}|{next}"));
    let (rec, rec_bytes) = block(format!("record|{DID}|{next}"));
    let mut data = RepoCommitData::new(root, rev(next));
    data.put_blocks = vec![(root, root_bytes), (rec, rec_bytes)];
    data.put_blocks
        .extend((0..FILLERS).map(|k| filler(next, k)));
    data.delete_blocks = prev_root.into_iter().collect();
    if n > 0 {
        data.delete_blocks
            .extend((0..FILLERS).map(|k| filler(n, k).0));
    }
    data.record_puts = vec![RecordPut {
        collection: "app.test.counter".into(),
        rkey: format!("{next:08}"),
        cid: rec,
        blobs: vec![],
    }];
    data.events = vec![common::commit_event(DID, &rev(next))];
    let out = txn.commit(data).await?;
    Ok((next, out.seqs.first().copied().unwrap_or(-1)))
}

/// The child: commits forever until killed. Ignored unless run by the parent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of crash tests"]
async fn crash_child_writer() {
    let Ok(location) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(StoreConfig::new(location))
        .await
        .expect("child open");
    println!("ready");
    loop {
        crash_commit(&store).await.expect("child commit");
    }
}

async fn check_consistent(store: &Store) -> u64 {
    let root = store.repo().get_root(DID).await.unwrap().expect("root");
    let n = rev_num(&root.rev);
    let (root_cid, root_bytes) = common::block(format!("root|{DID}|{n}"));
    assert_eq!(root.cid, root_cid, "root matches its rev");
    assert_eq!(
        store.repo().get_block(DID, &root_cid).await.unwrap(),
        Some(root_bytes)
    );
    assert_eq!(
        store.repo().record_count(DID).await.unwrap(),
        n,
        "records match rev"
    );
    assert_eq!(
        store.repo().block_stats(DID).await.unwrap().0,
        n + 1 + FILLERS,
        "blocks match rev"
    );
    let fillers: Vec<_> = (0..FILLERS).map(|k| filler(n, k).0).collect();
    assert!(store
        .repo()
        .get_blocks(DID, &fillers)
        .await
        .unwrap()
        .missing
        .is_empty());
    let events = store.sequencer().events_after(0, 1_000_000).await.unwrap();
    assert_eq!(events.len() as u64, n, "one event per commit");
    assert_eq!(store.sequencer().current_seq().await.unwrap(), n as i64);
    for (i, e) in events.iter().enumerate() {
        let k = i as u64 + 1;
        assert_eq!(e.seq, k as i64);
        assert_eq!(
            String::from_utf8(e.event.clone()).unwrap(),
            format!("{k}|{DID}|{}", rev(k))
        );
    }
    n
}

/// On PostgreSQL the server backend of a killed client can go on until it
/// notices the client is gone (and may still finish a COMMIT it had already
/// received). Terminate every other session on the test database, as a
/// crashed host would lose them, and wait until they have ended, so the
/// state checked next is final. (SQLite has no server: a killed writer is
/// gone.)
async fn wait_for_other_sessions_to_end(location: &str) {
    use sqlx::Connection;
    if !location.starts_with("postgres") {
        return;
    }
    let mut conn = sqlx::PgConnection::connect(location)
        .await
        .expect("connect to the test database");
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend'",
    )
    .execute(&mut conn)
    .await
    .expect("pg_terminate_backend");
    for _ in 0..300 {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("pg_stat_activity");
        if others == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: Vec<(i32, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT pid, state, query FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    panic!("PostgreSQL sessions still open on the test database after 30 s: {left:?}");
}

async fn kill_child_repeatedly(db: &TestDb) {
    make_account(&db.store, DID).await;
    crash_commit(&db.store).await.unwrap();
    db.store.close().await;
    let exe = std::env::current_exe().unwrap();
    let mut last = 1;
    for round in 0..4u64 {
        let mut child = Command::new(&exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &db.location)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        // Let it commit for a while, then kill it at an arbitrary point.
        let observer = Store::open(StoreConfig::new(db.location.clone()))
            .await
            .unwrap();
        let progressed = common::wait_until(Duration::from_secs(60), || {
            let o = observer.clone();
            async move {
                o.repo()
                    .get_root(DID)
                    .await
                    .ok()
                    .flatten()
                    .map(|r| rev_num(&r.rev))
                    .unwrap_or(0)
                    > last + 5
            }
        })
        .await;
        tokio::time::sleep(Duration::from_millis(
            17 * round + rand::random::<u64>() % 40,
        ))
        .await;
        child.kill().expect("kill");
        let status = child.wait().unwrap();
        assert!(progressed, "child made no progress (status {status:?})");
        observer.close().await;
        wait_for_other_sessions_to_end(&db.location).await;
        // Reopen as a fresh process would.
        let store = Store::open(StoreConfig::new(db.location.clone()))
            .await
            .unwrap();
        let n = check_consistent(&store).await;
        assert!(n > last, "round {round}: progress {last} -> {n}");
        // And the repo accepts the next commit.
        let (next, seq) = crash_commit(&store).await.unwrap();
        assert_eq!((next, seq), (n + 1, n as i64 + 1));
        last = next;
        eprintln!(
            "{:?} round {round}: killed at rev {n}, consistent",
            store.backend()
        );
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_mid_write() {
    let db = TestDb::sqlite().await;
    tokio::time::timeout(Duration::from_secs(300), kill_child_repeatedly(&db))
        .await
        .expect("crash test hung");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill_mid_write() {
    let db = TestDb::postgres().await;
    tokio::time::timeout(Duration::from_secs(300), kill_child_repeatedly(&db))
        .await
        .expect("crash test hung");
}
