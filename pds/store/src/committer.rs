//! Group commit of repository writes on SQLite.
//!
//! SQLite has one writer, and with `synchronous=FULL` each transaction
//! waits for the disk. Writers to different repositories build their
//! commits in parallel (under their own repo locks); what they store goes
//! to this committer's thread, which takes every commit waiting in its
//! queue, applies each inside a savepoint of one transaction (a commit that
//! fails, say on a moved root, is rolled back alone), and commits them
//! together: one disk wait and one thread hand-off for the whole batch, not
//! one disk wait per commit and two hand-offs per statement. Each writer
//! gets its own outcome once the batch is durable, so an acknowledged write
//! is as durable as before.
//!
//! The thread holds the store's in-process write gate while its transaction
//! is open, like every other SQLite writer of this process; other processes
//! on the same file wait on SQLite's own lock (`busy_timeout`). It stops when
//! the store is dropped or closed (its queue's sender goes away).

use std::sync::{Arc, Mutex, PoisonError};

use cid::Cid;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Result, StoreError};
use crate::exec::{run_ready, SqliteExec};
use crate::inline::Settings;
use crate::repo::{apply_commit, CommitOutcome, RepoCommitData, RootGuard};
use crate::sequencer::publish_max;

/// Commits per transaction at most.
const MAX_BATCH: usize = 64;

struct Job {
    did: String,
    expected: Option<Cid>,
    data: RepoCommitData,
    reply: oneshot::Sender<Result<CommitOutcome>>,
}

/// The committer's queue; see the module docs.
#[derive(Debug)]
pub(crate) struct Committer {
    jobs: Mutex<Option<mpsc::UnboundedSender<Job>>>,
}

impl Committer {
    /// Starts the thread (its connection opens on the first batch).
    pub(crate) fn start(
        settings: Settings,
        gate: Arc<tokio::sync::Mutex<()>>,
        seq_watch: watch::Sender<i64>,
    ) -> Result<Committer> {
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("sqlite-committer".into())
            .spawn(move || run(settings, gate, seq_watch, rx))?;
        Ok(Committer {
            jobs: Mutex::new(Some(tx)),
        })
    }

    /// Applies one repository commit (compare-and-swap on `expected`), in
    /// the next batch; returns once that batch is committed.
    pub(crate) async fn commit(
        &self,
        did: String,
        expected: Option<Cid>,
        data: RepoCommitData,
    ) -> Result<CommitOutcome> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            did,
            expected,
            data,
            reply,
        };
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|q| q.send(job).is_ok());
        if sent != Some(true) {
            return Err(stopped());
        }
        answer.await.map_err(|_| stopped())?
    }

    /// Stops taking commits; the thread ends once it has answered what it
    /// took (not waited for here: it may need the write gate, which a task
    /// of the caller's runtime may hold).
    pub(crate) fn stop(&self) {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

fn stopped() -> StoreError {
    StoreError::Config("the store is closed (SQLite committer stopped)".into())
}

fn run(
    settings: Settings,
    gate: Arc<tokio::sync::Mutex<()>>,
    seq_watch: watch::Sender<i64>,
    mut rx: mpsc::UnboundedReceiver<Job>,
) {
    let mut conn: Option<rusqlite::Connection> = None;
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let c = match conn.take() {
            Some(c) => c,
            None => match settings.connect() {
                Ok(c) => c,
                Err(e) => {
                    let msg = e.to_string();
                    for job in jobs {
                        let _ = job.reply.send(Err(batch_failed(&msg)));
                    }
                    continue;
                }
            },
        };
        let _gate = gate.blocking_lock();
        commit_batch(&c, jobs, &seq_watch);
        // A connection left in a transaction (a failed rollback) is closed.
        if c.is_autocommit() {
            conn = Some(c);
        }
    }
}

fn batch_failed(msg: &str) -> StoreError {
    StoreError::Io(std::io::Error::other(format!(
        "SQLite group commit failed: {msg}"
    )))
}

/// Applies `jobs` in one transaction, publishes the highest seq it
/// committed, then answers each job.
fn commit_batch(c: &rusqlite::Connection, jobs: Vec<Job>, seq_watch: &watch::Sender<i64>) {
    if let Err(e) = c.execute_batch("BEGIN IMMEDIATE") {
        let msg = e.to_string();
        for job in jobs {
            let _ = job.reply.send(Err(batch_failed(&msg)));
        }
        return;
    }
    let mut applied = Vec::with_capacity(jobs.len());
    let mut last_seq: Option<i64> = None;
    let mut jobs = jobs.into_iter();
    let mut broken: Option<String> = None;
    for job in jobs.by_ref() {
        if let Err(e) = c.execute_batch("SAVEPOINT repo_commit") {
            broken = Some(e.to_string());
            let _ = job.reply.send(Err(batch_failed(&e.to_string())));
            break;
        }
        let mut exec = SqliteExec {
            conn: c,
            last_seq: None,
        };
        let Job {
            did,
            expected,
            data,
            reply,
        } = job;
        let outcome = run_ready(apply_commit(
            &mut exec,
            &did,
            RootGuard::Expect(expected.as_ref()),
            data,
        ))
        .and_then(|r| r);
        match outcome {
            Ok(out) => match c.execute_batch("RELEASE repo_commit") {
                Ok(()) => {
                    last_seq = last_seq.max(exec.last_seq);
                    applied.push((reply, out));
                }
                Err(e) => {
                    broken = Some(e.to_string());
                    let _ = reply.send(Err(batch_failed(&e.to_string())));
                    break;
                }
            },
            Err(err) => {
                let _ = reply.send(Err(err));
                if let Err(e) = c.execute_batch("ROLLBACK TO repo_commit; RELEASE repo_commit") {
                    broken = Some(e.to_string());
                    break;
                }
            }
        }
    }
    let result = match broken {
        Some(msg) => Err(msg),
        None => c.execute_batch("COMMIT").map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => {
            if let Some(seq) = last_seq {
                publish_max(seq_watch, seq);
            }
            for (reply, out) in applied {
                let _ = reply.send(Ok(out));
            }
        }
        Err(msg) => {
            let _ = c.execute_batch("ROLLBACK");
            for (reply, _) in applied {
                let _ = reply.send(Err(batch_failed(&msg)));
            }
            for job in jobs {
                let _ = job.reply.send(Err(batch_failed(&msg)));
            }
        }
    }
}
