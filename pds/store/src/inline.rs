//! SQLite on the calling thread, for the hot paths.
//!
//! sqlx runs every SQLite connection on a worker thread of its own: each
//! statement, and each row of a result, is a hand-off between that thread
//! and the task's, two context switches apiece. On a small virtual machine
//! those switches cost more than the queries (a `createRecord` made about 70
//! of them). The hot paths (record reads, account lookups, the repo root and
//! blocks a write starts from, and repository commits, see `committer`)
//! therefore run their SQL through this module instead: `rusqlite` on the
//! same SQLite library sqlx links, on the thread that asks, with each
//! connection's prepared statements cached. The SQL text is the same one the
//! sqlx path runs (`$N` placeholders bind by name here, so `$4` before `$3`
//! is fine).
//!
//! A read of pages in SQLite's or the kernel's cache takes microseconds, so
//! running it on a tokio worker is cheaper than any hand-off (the reference
//! PDS runs all of its SQLite synchronously on its one thread). Writes that
//! wait for the disk go to the committer's own thread instead.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, Row, Statement};

use crate::error::Result;

/// Idle connections kept for reuse; more are opened when needed and closed
/// when returned to a full pool.
const MAX_IDLE: usize = 16;
/// Bytes the WAL file is truncated to after a checkpoint.
const JOURNAL_SIZE_LIMIT: i64 = 64 << 20;
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 64;
/// Page cache per connection, in KiB (SQLite's default is 2 MiB). Pages
/// are allocated as they are read, so an idle server does not hold them.
const PAGE_CACHE_KIB: i64 = 16 << 10;

/// One bound value (the SQL text's `$1`, `$2`, ... in order).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    Blob(&'a [u8]),
}

/// Connection settings shared by readers and the committer.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) path: PathBuf,
    pub(crate) busy_timeout: Duration,
    pub(crate) synchronous_full: bool,
}

impl Settings {
    /// Opens a connection to the database sqlx created and migrated.
    pub(crate) fn connect(&self) -> rusqlite::Result<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(self.busy_timeout)?;
        c.pragma_update(None, "foreign_keys", true)?;
        c.pragma_update(
            None,
            "synchronous",
            if self.synchronous_full {
                "FULL"
            } else {
                "NORMAL"
            },
        )?;
        // A checkpointed WAL is cut back to 64 MiB instead of keeping the
        // size of its busiest moment. (No memory map of the database: its
        // pages counted in the process's resident memory, 580 MB at peak
        // in the benchmark, for ~20 % more listRecords.)
        c.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
        // A negative size is in KiB.
        c.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
        c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(c)
    }
}

/// A pool of SQLite connections used on the calling thread.
#[derive(Debug)]
pub(crate) struct Inline {
    settings: Settings,
    idle: Mutex<Vec<Connection>>,
}

impl Inline {
    /// Opens the first connection (so a bad path fails at start-up).
    pub(crate) fn open(settings: Settings) -> Result<Inline> {
        let first = settings.connect()?;
        Ok(Inline {
            settings,
            idle: Mutex::new(vec![first]),
        })
    }

    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection for the caller's own use; give it back with
    /// [`Inline::give_back`] (or drop it to close it).
    pub(crate) fn take(&self) -> Result<Connection> {
        let conn = self.idle().pop();
        Ok(match conn {
            Some(c) => c,
            None => self.settings.connect()?,
        })
    }

    /// Returns a connection taken with [`Inline::take`] to the pool. One
    /// left inside a transaction is closed, which rolls it back, rather
    /// than reused.
    pub(crate) fn give_back(&self, conn: Connection) {
        if conn.is_autocommit() {
            let mut idle = self.idle();
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }

    /// Runs `f` on a pooled connection.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R> {
        let conn = self.take()?;
        let out = f(&conn);
        self.give_back(conn);
        Ok(out?)
    }
}

/// Binds `args` to `$1`, `$2`, ... of `stmt`.
pub(crate) fn bind(stmt: &mut Statement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<()> {
    for (i, arg) in args.iter().enumerate() {
        let name = format!("${}", i + 1);
        let Some(index) = stmt.parameter_index(&name)? else {
            return Err(rusqlite::Error::InvalidParameterName(name));
        };
        match *arg {
            Arg::Text(s) => stmt.raw_bind_parameter(index, s)?,
            Arg::Int(n) => stmt.raw_bind_parameter(index, n)?,
            Arg::Blob(b) => stmt.raw_bind_parameter(index, b)?,
        }
    }
    Ok(())
}

/// Every row of `sql` on `c`; `cache`: keep the statement prepared.
pub(crate) fn query_with<T>(
    c: &Connection,
    sql: &str,
    args: &[Arg<'_>],
    cache: bool,
) -> rusqlite::Result<Vec<T>>
where
    T: for<'r> TryFrom<&'r Row<'r>, Error = rusqlite::Error>,
{
    fn collect<T>(stmt: &mut Statement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<Vec<T>>
    where
        T: for<'r> TryFrom<&'r Row<'r>, Error = rusqlite::Error>,
    {
        bind(stmt, args)?;
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(T::try_from(row)?);
        }
        Ok(out)
    }
    if cache {
        collect(&mut *c.prepare_cached(sql)?, args)
    } else {
        collect(&mut c.prepare(sql)?, args)
    }
}

/// Runs a statement that returns no rows; the number of rows changed.
pub(crate) fn execute(
    c: &Connection,
    sql: &str,
    args: &[Arg<'_>],
    cache: bool,
) -> rusqlite::Result<u64> {
    fn run(stmt: &mut Statement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<usize> {
        bind(stmt, args)?;
        stmt.raw_execute()
    }
    let n = if cache {
        run(&mut *c.prepare_cached(sql)?, args)?
    } else {
        run(&mut c.prepare(sql)?, args)?
    };
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}
