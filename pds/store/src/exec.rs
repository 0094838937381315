//! [`Exec`]: the statements of a repository commit, run either through a
//! sqlx transaction ([`WriteTx`], both backends) or on a rusqlite
//! connection on the committer's thread ([`SqliteExec`]), so the commit's
//! logic (`repo::apply_commit`) and its SQL text are written once.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::db::{bind_as, on_pool, on_tx, Backend, Tx, WriteTx};
use crate::error::{Result, StoreError};
use crate::inline::{self, Arg};

/// A row type both drivers decode (tuples of `String`, `i64`, `bool`,
/// `Vec<u8>` and their `Option`s).
pub(crate) trait RowType:
    for<'r> sqlx::FromRow<'r, SqliteRow>
    + for<'r> sqlx::FromRow<'r, PgRow>
    + for<'r> TryFrom<&'r rusqlite::Row<'r>, Error = rusqlite::Error>
    + Send
    + Unpin
{
}

impl<T> RowType for T where
    T: for<'r> sqlx::FromRow<'r, SqliteRow>
        + for<'r> sqlx::FromRow<'r, PgRow>
        + for<'r> TryFrom<&'r rusqlite::Row<'r>, Error = rusqlite::Error>
        + Send
        + Unpin
{
}

/// Where the statements of a write transaction run.
pub(crate) trait Exec {
    fn backend(&self) -> Backend;
    /// Runs a statement; the number of rows it changed. `cache`: keep the
    /// statement prepared (see `repo::keep_prepared`).
    ///
    /// (No `Send` bound: the sqlx implementation's futures are `Send`, which
    /// callers with a concrete [`WriteTx`] see; [`SqliteExec`]'s are not and
    /// never leave the committer's thread.)
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>], cache: bool) -> Result<u64>;
    /// Every row of a query.
    async fn rows<T: RowType>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        cache: bool,
    ) -> Result<Vec<T>>;
    /// Notes the highest seq this transaction sequenced (published once it
    /// commits).
    fn note_seq(&mut self, seq: i64);
}

impl Exec for WriteTx {
    fn backend(&self) -> Backend {
        self.tx.backend()
    }

    async fn execute(&mut self, sql: &str, args: &[Arg<'_>], cache: bool) -> Result<u64> {
        Ok(on_tx!(&mut self.tx, |c| {
            let mut q = sqlx::query(sql).persistent(cache);
            for arg in args {
                q = match *arg {
                    Arg::Text(s) => q.bind(s),
                    Arg::Int(n) => q.bind(n),
                    Arg::Blob(b) => q.bind(b),
                };
            }
            q.execute(&mut *c).await.map(|r| r.rows_affected())
        })?)
    }

    async fn rows<T: RowType>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        cache: bool,
    ) -> Result<Vec<T>> {
        self.tx.rows(sql, args, cache).await
    }

    fn note_seq(&mut self, seq: i64) {
        self.last_seq = self.last_seq.max(Some(seq));
    }
}

impl Tx {
    /// Every row of a query inside this transaction.
    pub(crate) async fn rows<T: RowType>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        cache: bool,
    ) -> Result<Vec<T>> {
        Ok(on_tx!(self, |c| bind_as(sqlx::query_as(sql), args)
            .persistent(cache)
            .fetch_all(&mut *c)
            .await)?)
    }
}

impl crate::Store {
    /// Every row of a query outside any transaction: on SQLite through the
    /// calling-thread connections (`inline`), otherwise through the pool.
    pub(crate) async fn rows<T: RowType>(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        cache: bool,
    ) -> Result<Vec<T>> {
        if let Some(db) = &self.inner.inline {
            return db.with(|c| inline::query_with(c, sql, args, cache));
        }
        Ok(on_pool!(&self.inner.pool, |p| bind_as(
            sqlx::query_as(sql),
            args
        )
        .persistent(cache)
        .fetch_all(p)
        .await)?)
    }
}

/// A rusqlite connection inside a transaction (the committer's).
pub(crate) struct SqliteExec<'c> {
    pub(crate) conn: &'c rusqlite::Connection,
    pub(crate) last_seq: Option<i64>,
}

impl Exec for SqliteExec<'_> {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn execute(&mut self, sql: &str, args: &[Arg<'_>], cache: bool) -> Result<u64> {
        Ok(inline::execute(self.conn, sql, args, cache)?)
    }

    async fn rows<T: RowType>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        cache: bool,
    ) -> Result<Vec<T>> {
        Ok(inline::query_with(self.conn, sql, args, cache)?)
    }

    fn note_seq(&mut self, seq: i64) {
        self.last_seq = self.last_seq.max(Some(seq));
    }
}

/// Runs a future that never waits (one whose every `.await` is on
/// [`SqliteExec`], which completes at once) to its end on this thread.
pub(crate) fn run_ready<F: Future>(f: F) -> Result<F::Output> {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    match f.as_mut().poll(&mut cx) {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => Err(StoreError::Config(
            "a commit on the SQLite committer's thread waited on something".into(),
        )),
    }
}
