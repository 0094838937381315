//! Storage layer of the PDS.
//!
//! A [`Store`] is a handle on one database, SQLite (files under a data
//! directory) or PostgreSQL (selected by a `postgres://` URL), with the
//! embedded migrations applied at [`Store::open`]. Handlers never see SQL:
//! they use the typed sub-handles, grouped by concern:
//!
//! | handle | what |
//! | --- | --- |
//! | [`Store::accounts`] | accounts, invite codes, app passwords, email / PLC tokens, reserved keys, preferences |
//! | [`Store::sessions`] | refresh tokens (ids only) with rotation and grace period |
//! | [`Store::repo`] | repo roots, IPLD blocks, atomic repo writes, record index, garbage collection |
//! | [`Store::blobs`] | blob metadata, record-to-blob references, orphan cleanup |
//! | [`Store::sequencer`] | the firehose event log: gap-free seq, subscriptions, retention |
//! | [`Store::oauth`] | OAuth requests, codes, tokens, used refresh tokens, replay nonces, devices, clients |
//! | [`Store::notifications`] | outgoing notification queue and history |
//! | [`Store::misc`] | reports, crawler bookkeeping, server key/value |
//!
//! Blob bytes live in a [`blobstore::BlobStore`] (disk or S3), not in the database.
//!
//! Conventions: timestamps are `i64` milliseconds since the Unix epoch
//! ([`now_ms`]); CIDs are [`cid::Cid`]; handles and emails are lower-cased
//! by the store.

mod accounts;
mod blobs;
pub mod blobstore;
mod committer;
mod db;
mod error;
mod exec;
mod inline;
mod misc;
mod notifications;
mod oauth;
pub mod password;
mod repo;
mod sequencer;
mod sessions;
mod snapshot;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{watch, Mutex, Semaphore};
use tokio::task::JoinHandle;

pub use accounts::*;
pub use blobs::*;
pub use db::{now_ms, Backend};
pub use error::{Result, StoreError};
pub use misc::*;
pub use notifications::*;
pub use oauth::*;
pub use repo::*;
pub use sequencer::*;
pub use sessions::*;
pub use snapshot::RepoSnapshot;

use db::Pool;

/// Name of the SQLite database file inside the data directory.
pub const SQLITE_FILE_NAME: &str = "pds.sqlite";

/// Number of stripes of the in-process per-repo write lock.
const REPO_LOCK_STRIPES: usize = 1024;

/// Where and how to open the database.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// `postgres://...` / `postgresql://...` for PostgreSQL; `sqlite://path` or
    /// `sqlite:path` for an SQLite file; anything else is a data directory in
    /// which `pds.sqlite` is created.
    pub location: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long an SQLite statement waits for another process's write lock.
    pub sqlite_busy_timeout: Duration,
    /// SQLite `synchronous=FULL` (default; no committed write is lost on power
    /// failure) rather than `NORMAL`.
    pub sqlite_synchronous_full: bool,
    /// How long to wait for a pooled connection.
    pub acquire_timeout: Duration,
    /// On PostgreSQL, run a LISTEN task so this process learns promptly about
    /// events sequenced by other processes.
    pub listen_for_events: bool,
}

impl StoreConfig {
    /// Defaults for `location`.
    pub fn new(location: impl Into<String>) -> StoreConfig {
        StoreConfig {
            location: location.into(),
            max_connections: 10,
            sqlite_busy_timeout: Duration::from_secs(30),
            sqlite_synchronous_full: true,
            acquire_timeout: Duration::from_secs(30),
            listen_for_events: true,
        }
    }

    /// The backend `location` selects.
    pub fn backend(&self) -> Backend {
        if is_postgres_url(&self.location) {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    /// Serialises SQLite write transactions in process (SQLite has one writer).
    pub(crate) write_gate: Arc<Mutex<()>>,
    /// In-process per-repo write locks (striped by DID hash).
    pub(crate) repo_locks: Vec<Arc<Mutex<()>>>,
    /// Bounds the repo write transactions holding a pooled connection while
    /// their caller computes (PostgreSQL), to half the pool, so the reads
    /// those callers make can always get a connection.
    pub(crate) repo_write_slots: Arc<Semaphore>,
    /// Read snapshots open at once (each holds a pooled connection).
    pub(crate) snapshot_slots: Arc<Semaphore>,
    /// Highest seq known to be committed, for subscribers.
    pub(crate) seq_watch: watch::Sender<i64>,
    /// SQLite on the calling thread for the hot paths (`None` on PostgreSQL).
    pub(crate) inline: Option<inline::Inline>,
    /// Group commit of repository writes (`None` on PostgreSQL).
    pub(crate) committer: Option<committer::Committer>,
    listener: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = self.listener.take() {
            task.abort();
        }
    }
}

/// A handle on the database. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .finish()
    }
}

impl Store {
    /// Opens (creating if needed) the database `config.location` names and
    /// applies the embedded migrations.
    pub async fn open(config: StoreConfig) -> Result<Store> {
        let mut inline_settings = None;
        let pool = if is_postgres_url(&config.location) {
            let opts = PgConnectOptions::from_str(&config.location)
                .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL: {e}")))?;
            Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(config.acquire_timeout)
                    .connect_with(opts)
                    .await?,
            )
        } else {
            let path = sqlite_path(&config.location)?;
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)?;
                }
            }
            let opts = SqliteConnectOptions::new()
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(if config.sqlite_synchronous_full {
                    SqliteSynchronous::Full
                } else {
                    SqliteSynchronous::Normal
                })
                .busy_timeout(config.sqlite_busy_timeout)
                .foreign_keys(true);
            inline_settings = Some(inline::Settings {
                path: path.clone(),
                busy_timeout: config.sqlite_busy_timeout,
                synchronous_full: config.sqlite_synchronous_full,
            });
            // No ping before handing out a connection: on SQLite every
            // statement is a round trip to the connection's worker thread,
            // and the ping doubled the thread hand-offs of one-statement
            // reads. A file database has no connection that can go stale.
            Pool::Sqlite(
                SqlitePoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(config.max_connections)
                    .acquire_timeout(config.acquire_timeout)
                    .connect_with(opts)
                    .await?,
            )
        };
        db::migrate(&pool).await?;
        // After the migrations: sqlx created the file and its tables.
        let inline = inline_settings
            .clone()
            .map(inline::Inline::open)
            .transpose()?;

        let current = sequencer::read_last_seq(&pool).await?;
        let (seq_watch, _) = watch::channel(current);
        let listener = match &pool {
            Pool::Postgres(p) if config.listen_for_events => {
                Some(sequencer::spawn_pg_listener(p.clone(), seq_watch.clone()).await?)
            }
            _ => None,
        };
        let write_gate = Arc::new(Mutex::new(()));
        let committer = inline_settings
            .map(|s| committer::Committer::start(s, write_gate.clone(), seq_watch.clone()))
            .transpose()?;
        Ok(Store {
            inner: Arc::new(Inner {
                pool,
                write_gate,
                repo_locks: (0..REPO_LOCK_STRIPES)
                    .map(|_| Arc::new(Mutex::new(())))
                    .collect(),
                repo_write_slots: Arc::new(Semaphore::new(
                    usize::try_from((config.max_connections / 2).max(1)).unwrap_or(1),
                )),
                snapshot_slots: Arc::new(Semaphore::new(
                    usize::try_from((config.max_connections / 2).max(1)).unwrap_or(1),
                )),
                seq_watch,
                inline,
                committer,
                listener,
            }),
        })
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match &self.inner.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes the pool; waits for checked-out connections to be returned.
    pub async fn close(&self) {
        // The LISTEN task holds a pooled connection for as long as it runs,
        // and closing a pool waits for every checked-out connection: stop
        // the task first, or `close` would wait forever.
        if let Some(task) = &self.inner.listener {
            task.abort();
        }
        if let Some(committer) = &self.inner.committer {
            committer.stop();
        }
        db::on_pool!(&self.inner.pool, |p| p.close().await)
    }

    /// Checks that the database answers (for health endpoints).
    pub async fn health_check(&self) -> Result<()> {
        let one: i64 = db::on_pool!(&self.inner.pool, |p| sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT)"
        )
        .fetch_one(p)
        .await)?;
        if one == 1 {
            Ok(())
        } else {
            Err(StoreError::Corrupt(
                "SELECT 1 returned something else".into(),
            ))
        }
    }

    pub(crate) async fn begin_write(&self) -> Result<db::WriteTx> {
        db::WriteTx::begin(&self.inner.pool, &self.inner.write_gate).await
    }

    /// Commits `tx` and publishes the seq it sequenced, if any.
    pub(crate) async fn commit(&self, tx: db::WriteTx) -> Result<()> {
        let last = tx.last_seq;
        tx.tx.commit().await?;
        if let Some(seq) = last {
            sequencer::publish_max(&self.inner.seq_watch, seq);
        }
        Ok(())
    }

    /// Accounts, invite codes, app passwords, tokens, reserved keys, preferences.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts { store: self }
    }
    /// Refresh tokens.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions { store: self }
    }
    /// Repositories: roots, blocks, writes, record index.
    pub fn repo(&self) -> Repos<'_> {
        Repos { store: self }
    }
    /// Blob metadata and references.
    pub fn blobs(&self) -> Blobs<'_> {
        Blobs { store: self }
    }
    /// The event log.
    pub fn sequencer(&self) -> Sequencer<'_> {
        Sequencer { store: self }
    }
    /// OAuth server state.
    pub fn oauth(&self) -> OAuth<'_> {
        OAuth { store: self }
    }
    /// Notification queue.
    pub fn notifications(&self) -> Notifications<'_> {
        Notifications { store: self }
    }
    /// Reports, crawlers, server key/value.
    pub fn misc(&self) -> Misc<'_> {
        Misc { store: self }
    }
}

fn sqlite_path(location: &str) -> Result<PathBuf> {
    if location.is_empty() {
        return Err(StoreError::Config("empty database location".into()));
    }
    if let Some(rest) = location
        .strip_prefix("sqlite://")
        .or_else(|| location.strip_prefix("sqlite:"))
    {
        if rest.is_empty() || rest.starts_with(":memory:") {
            return Err(StoreError::Config(
                "an SQLite file path is required (in-memory databases are not durable)".into(),
            ));
        }
        return Ok(PathBuf::from(rest));
    }
    Ok(PathBuf::from(location).join(SQLITE_FILE_NAME))
}
