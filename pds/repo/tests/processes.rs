//! Writers in separate operating-system processes on one database: this
//! test binary re-runs itself as child writers (`child_writer`, ignored in
//! a normal run and idle unless the parent set `CHILD_WRITER`). Two children and the
//! parent write to one repository at the same time; afterwards every
//! acknowledged write is in the repository, the sequencer log is gap-free,
//! and every `#commit` verifies and links to the previous one (one chain, no
//! fork), on SQLite (file locking) and PostgreSQL (row lock).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use atproto_crypto::{Algorithm, PrivateKey};
use common::*;
use pds_repo::{RepoWriteError, RepoWriter};
use pds_store::{Store, StoreConfig};
use pds_testkit::both_backends;

const POST: &str = "app.bsky.feed.post";
const PER_WRITER: usize = 30;
const ENV: &str = "CHILD_WRITER";

both_backends!(writers_in_separate_processes);

/// What a child needs: where the database is, the repository and its key,
/// a tag for its records.
fn child_spec(location: &str, did: &str, key: &PrivateKey, tag: &str) -> String {
    format!("{location}\n{did}\n{}\n{tag}", key.to_hex().as_str())
}

/// Writes `PER_WRITER` posts and returns their URIs. A write that lost
/// the retry budget to the other writers fails cleanly with `Conflict`
/// (a 500 the client may retry, which a starved SQLite writer can meet);
/// it is retried as a client would. Any other error fails the test.
async fn write_posts(writer: &RepoWriter, did: &str, key: &PrivateKey, tag: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for i in 0..PER_WRITER {
        let mut attempts = 0;
        let out = loop {
            attempts += 1;
            let write = vec![create(POST, None, post(&format!("{tag} {i}")))];
            match writer.apply_writes(did, key, write, None).await {
                Ok(out) => break out,
                Err(RepoWriteError::Conflict(_)) if attempts < 20 => continue,
                Err(e) => panic!("{tag}: write {i} failed after {attempts} attempts: {e}"),
            }
        };
        uris.push(out.results[0].uri.clone());
    }
    uris
}

/// The child process's body (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of writers_in_separate_processes"]
async fn child_writer() {
    let Ok(spec) = std::env::var(ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.lines().collect();
    let [location, did, key_hex, tag] = parts[..] else {
        panic!("bad {ENV}: {spec:?}");
    };
    let key = PrivateKey::from_hex(Algorithm::K256, key_hex).expect("key");
    let store = Store::open(StoreConfig::new(location.to_owned()))
        .await
        .expect("child opens the store");
    let writer = RepoWriter::new(store.clone()).expect("writer");
    // Ready; start when the parent says so (all writers at once).
    println!("READY");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).expect("parent's go");
    for uri in write_posts(&writer, did, &key, tag).await {
        println!("ACK {uri}");
    }
    store.close().await;
}

async fn writers_in_separate_processes(db: &TestDb) {
    let writer = RepoWriter::new(db.store.clone()).expect("writer");
    let did = "did:plc:processes";
    let key = account(&writer, did).await;
    let exe = std::env::current_exe().expect("test binary");
    let mut children = Vec::new();
    for tag in ["child-a", "child-b"] {
        let mut child = tokio::process::Command::new(&exe)
            .args([
                "--exact",
                "child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV, child_spec(&db.location, did, &key, tag))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn a child writer");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        loop {
            let line = stdout
                .next_line()
                .await
                .expect("child's output")
                .expect("child says READY");
            if line.ends_with("READY") {
                break;
            }
        }
        children.push((child, stdout));
    }
    for (child, _) in &mut children {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"go\n")
            .await
            .expect("go");
    }
    let parent = write_posts(&writer, did, &key, "parent").await;
    let mut acked: BTreeSet<String> = parent.iter().cloned().collect();
    let mut per_writer = vec![parent];
    for (child, mut stdout) in children {
        let mut uris = Vec::new();
        while let Some(line) = stdout.next_line().await.expect("child's output") {
            if let Some((_, uri)) = line.split_once("ACK ") {
                uris.push(uri.trim().to_owned());
            }
        }
        let out = child.wait_with_output().await.expect("child runs");
        assert!(
            out.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(uris.len(), PER_WRITER, "{uris:?}");
        acked.extend(uris.iter().cloned());
        per_writer.push(uris);
    }
    assert_eq!(
        acked.len(),
        3 * PER_WRITER,
        "every write got its own record"
    );
    // On PostgreSQL the writers really interleave: rkeys are TIDs (time
    // ordered), and some writer's span overlaps another's. (SQLite's busy
    // handler backs off while the lock holder keeps writing, so there the
    // bursts tend to run one after another: still concurrent, not
    // interleaved.)
    let spans: Vec<(String, String)> = per_writer
        .iter()
        .map(|uris| {
            let mut rkeys: Vec<String> = uris.iter().map(|u| rkey_of(u)).collect();
            rkeys.sort();
            (rkeys[0].clone(), rkeys[rkeys.len() - 1].clone())
        })
        .collect();
    let overlap = spans
        .iter()
        .enumerate()
        .any(|(i, a)| spans[i + 1..].iter().any(|b| a.0 < b.1 && b.0 < a.1));
    if db.store.backend() == pds_store::Backend::Postgres {
        assert!(overlap, "the writers did not overlap: {spans:?}");
    }

    // Every acknowledged write is in the repository, and nothing else.
    let stored: BTreeSet<String> = db
        .store
        .repo()
        .list_records(did, POST, 1000, None, false)
        .await
        .expect("records")
        .into_iter()
        .map(|r| format!("at://{did}/{POST}/{}", r.rkey))
        .collect();
    assert_eq!(stored, acked);
    // One unbroken chain of verified commits: genesis plus one per write.
    let keys = HashMap::from([(did.to_owned(), key.public_key())]);
    let chains = check_log(&db.store, &keys).await;
    assert_eq!(chains[did].len(), 1 + 3 * PER_WRITER);
}
