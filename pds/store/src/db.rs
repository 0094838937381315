//! Backend plumbing: the pool and transaction enums, the dispatch macros that
//! run one SQL text against either backend, embedded migrations, and small
//! conversion helpers.
//!
//! Both backends accept `$N` placeholders (sqlx-sqlite maps `$N` to the N-th
//! argument; `placeholder_dollar_syntax_is_shared` in the tests checks it), so
//! nearly every statement is written once. The few dialect differences
//! (`FOR UPDATE`, `SKIP LOCKED`, `pg_notify`, the DDL) stay local to the
//! function that needs them.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cid::Cid;
use sqlx::migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator};
use sqlx::{Executor, PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::{Result, StoreError};

/// Which database a [`crate::Store`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite files under a data directory (WAL mode).
    Sqlite,
    /// A PostgreSQL server shared by any number of PDS processes.
    Postgres,
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

pub(crate) enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$p` bound to the concrete pool (`&SqlitePool` or
/// `&PgPool`). The body is type-checked once per backend.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the transaction's concrete connection
/// (`&mut SqliteConnection` or `&mut PgConnection`); reborrow it as `&mut *$c`.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(t) => {
                let $c: &mut sqlx::SqliteConnection = &mut **t;
                $body
            }
            $crate::db::Tx::Postgres(t) => {
                let $c: &mut sqlx::PgConnection = &mut **t;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

impl Tx {
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Tx::Sqlite(_) => Backend::Sqlite,
            Tx::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// A write transaction. On SQLite it holds the in-process writer gate and
/// SQLite's own write lock (`BEGIN IMMEDIATE`), so writers queue fairly in
/// process and wait on `busy_timeout` across processes; on PostgreSQL it is a
/// plain READ COMMITTED transaction whose statements take row locks.
///
/// Dropping it without [`WriteTx::commit`] rolls everything back.
pub(crate) struct WriteTx {
    pub(crate) tx: Tx,
    /// The highest seq this transaction sequenced, published after commit.
    pub(crate) last_seq: Option<i64>,
    _gate: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub(crate) async fn begin(pool: &Pool, gate: &Arc<Mutex<()>>) -> Result<WriteTx> {
        Ok(match pool {
            Pool::Sqlite(p) => {
                let guard = gate.clone().lock_owned().await;
                let t = p.begin_with("BEGIN IMMEDIATE").await?;
                WriteTx {
                    tx: Tx::Sqlite(t),
                    last_seq: None,
                    _gate: Some(guard),
                }
            }
            Pool::Postgres(p) => WriteTx {
                tx: Tx::Postgres(p.begin().await?),
                last_seq: None,
                _gate: None,
            },
        })
    }

    pub(crate) fn from_pg(t: Transaction<'static, Postgres>) -> WriteTx {
        WriteTx {
            tx: Tx::Postgres(t),
            last_seq: None,
            _gate: None,
        }
    }
}

/// Embedded migrations of one backend directory, compiled into the binary.
#[derive(Debug)]
struct Embedded(&'static [(i64, &'static str, &'static str)]);

type BoxDynError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = std::result::Result<Vec<Migration>, BoxDynError>> + Send>>
    {
        let migrations = self
            .0
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "record cid index",
        include_str!("../migrations/sqlite/0002_record_cid_index.sql"),
    ),
    (
        3,
        "clustered records",
        include_str!("../migrations/sqlite/0003_clustered_records.sql"),
    ),
];

const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "record cid index",
        include_str!("../migrations/postgres/0002_record_cid_index.sql"),
    ),
];

/// Applies the embedded migrations of the pool's backend. Safe to run from
/// several processes at once: sqlx takes an advisory lock on PostgreSQL;
/// on SQLite (where sqlx takes no lock) [`migrate_sqlite`] runs them in one
/// `BEGIN IMMEDIATE` transaction.
pub(crate) async fn migrate(pool: &Pool) -> Result<()> {
    match pool {
        Pool::Sqlite(p) => migrate_sqlite(p, SQLITE_MIGRATIONS).await?,
        Pool::Postgres(p) => {
            Migrator::new(Embedded(POSTGRES_MIGRATIONS))
                .await?
                .run(p)
                .await?
        }
    }
    Ok(())
}

/// Applies `migrations` to an SQLite database, keeping sqlx's bookkeeping
/// table (`_sqlx_migrations`, same checksums), so databases migrated by
/// either path stay compatible.
///
/// sqlx's SQLite migrator takes no lock: two processes opening a fresh
/// database at once both find migration 1 unapplied and one of them fails
/// (`table ... already exists`, or `database is locked` when upgrading its
/// read snapshot). Here the check and the migrations run in one
/// transaction that takes the write lock first (`BEGIN IMMEDIATE`, waiting
/// out the busy timeout), so the second process waits for the first and
/// then finds everything applied.
pub(crate) async fn migrate_sqlite(
    pool: &SqlitePool,
    migrations: &'static [(i64, &'static str, &'static str)],
) -> Result<()> {
    let migrations = Embedded(migrations)
        .resolve()
        .await
        .map_err(|e| StoreError::Config(format!("embedded migrations: {e}")))?;
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let conn: &mut sqlx::SqliteConnection = &mut tx;
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
            version BIGINT PRIMARY KEY,
            description TEXT NOT NULL,
            installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
            success BOOLEAN NOT NULL,
            checksum BLOB NOT NULL,
            execution_time BIGINT NOT NULL
        )",
    )
    .await?;
    let applied: Vec<(i64, bool, Vec<u8>)> =
        sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    for (version, success, checksum) in &applied {
        if !success {
            return Err(MigrateError::Dirty(*version).into());
        }
        match migrations.iter().find(|m| m.version == *version) {
            None => return Err(MigrateError::VersionMissing(*version).into()),
            Some(m) if m.checksum.as_ref() != checksum.as_slice() => {
                return Err(MigrateError::VersionMismatch(*version).into())
            }
            Some(_) => {}
        }
    }
    for m in &migrations {
        if applied.iter().any(|(v, _, _)| *v == m.version) {
            continue;
        }
        let start = std::time::Instant::now();
        conn.execute(&*m.sql)
            .await
            .map_err(|e| MigrateError::ExecuteMigration(e, m.version))?;
        let elapsed = i64::try_from(start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, $4)",
        )
        .bind(m.version)
        .bind(&*m.description)
        .bind(m.checksum.as_ref())
        .bind(elapsed)
        .execute(&mut *conn)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `$start, $start+1, ...` for `n` parameters.
pub(crate) fn placeholders(start: usize, n: usize) -> String {
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('$');
        s.push_str(&(start + i).to_string());
    }
    s
}

/// Rows of `width` parameters each, numbered from `$1`: `($1,$2),($3,$4)`.
pub(crate) fn value_rows(rows: usize, width: usize) -> String {
    let mut s = String::new();
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        s.push_str(&placeholders(r * width + 1, width));
        s.push(')');
    }
    s
}

pub(crate) fn cid_to_string(cid: &Cid) -> String {
    cid.to_string()
}

pub(crate) fn parse_cid(s: &str) -> Result<Cid> {
    Cid::try_from(s).map_err(|e| StoreError::Corrupt(format!("stored CID {s:?}: {e}")))
}

pub(crate) fn i64_from_u64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::InvalidInput(format!("{what} too large")))
}

pub(crate) fn u64_from_i64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}")))
}

/// Binds `args` in order to a sqlx query (the sqlx twin of
/// [`crate::inline::bind`], so a hot query lists its arguments once for
/// both paths).
pub(crate) fn bind_as<'q, DB, O>(
    mut q: sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>,
    args: &[crate::inline::Arg<'q>],
) -> sqlx::query::QueryAs<'q, DB, O, <DB as sqlx::Database>::Arguments<'q>>
where
    DB: sqlx::Database,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    &'q [u8]: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    use crate::inline::Arg;
    for arg in args {
        q = match *arg {
            Arg::Text(s) => q.bind(s),
            Arg::Int(n) => q.bind(n),
            Arg::Blob(b) => q.bind(b),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;

    /// A database made by an earlier release (migrations 1 and 2) keeps its
    /// records and blocks when migration 3 rebuilds their tables clustered.
    #[tokio::test]
    async fn clustered_tables_keep_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("old.sqlite"))
            .create_if_missing(true);
        let pool = SqlitePool::connect_with(opts).await.unwrap();
        migrate_sqlite(&pool, &SQLITE_MIGRATIONS[..2])
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO repo_block (did, cid, rev, size, content) \
             VALUES ('did:plc:a', 'bafyb', '3l', 3, x'a1a2a3'), ('did:plc:a', 'bafya', '3k', 1, x'00')",
        )
        .execute(&pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO record (did, collection, rkey, cid, rev, indexed_at, takedown_ref) \
             VALUES ('did:plc:a', 'app.bsky.feed.post', '3kz', 'bafyb', '3l', 7, 'mod-1')",
        )
        .execute(&pool)
        .await
        .unwrap();

        migrate_sqlite(&pool, SQLITE_MIGRATIONS).await.unwrap();

        let blocks: Vec<(String, String, i64, Vec<u8>)> =
            sqlx::query_as("SELECT cid, rev, size, content FROM repo_block ORDER BY cid")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            blocks,
            [
                ("bafya".into(), "3k".into(), 1, vec![0]),
                ("bafyb".into(), "3l".into(), 3, vec![0xa1, 0xa2, 0xa3]),
            ]
        );
        let record: (String, String, i64, Option<String>) = sqlx::query_as(
            "SELECT rkey, cid, indexed_at, takedown_ref FROM record WHERE did = 'did:plc:a'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            record,
            ("3kz".into(), "bafyb".into(), 7, Some("mod-1".into()))
        );
        // Clustered: no rowid left, and the secondary indexes are back.
        for table in ["repo_block", "record"] {
            let rowid = sqlx::query(&format!("SELECT rowid FROM {table}"))
                .fetch_all(&pool)
                .await;
            assert!(rowid.is_err(), "{table} still has a rowid");
        }
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND name IN ('repo_block_rev', 'record_did_cid') ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(indexes, ["record_did_cid", "repo_block_rev"]);
        // Running the migrations again changes nothing.
        migrate_sqlite(&pool, SQLITE_MIGRATIONS).await.unwrap();
    }
}
