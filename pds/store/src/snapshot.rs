//! Read snapshots of a repository: one read-only database transaction in
//! which the root and any number of block reads all see the same committed
//! state, whatever commits land meanwhile.
//!
//! A full `getRepo` export reads the whole repository through one snapshot
//! page by page while it streams the CAR, so it needs neither to hold the
//! repository in memory nor to retry when a commit deletes blocks it has
//! not sent yet.
//!
//! * SQLite (WAL mode): a deferred `BEGIN` on one of the store's
//!   calling-thread connections (`inline`: a page of blocks is one call,
//!   not a thread hand-off per block); the first read (the root) fixes
//!   the snapshot, and later commits by other connections are invisible to
//!   it. Writers are not blocked; the WAL cannot be checkpointed past the
//!   snapshot until it ends.
//! * PostgreSQL: `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`.
//!
//! The snapshot holds one pooled connection until it is dropped (which
//! rolls the read transaction back). At most half the pool's connections
//! (at least one) serve snapshots at once; further snapshots wait for one
//! to end, so slow export clients cannot take every connection.

use cid::Cid;
use tokio::sync::OwnedSemaphorePermit;

use crate::db::{cid_to_string, parse_cid, placeholders, Pool, Tx};
use crate::error::{Result, StoreError};
use crate::inline::{self, Arg};
use crate::repo::{did_and, keep_prepared, BlockMap, RepoRoot, Repos, IN_CHUNK};
use crate::Store;

/// The read transaction of a snapshot.
enum SnapshotTx {
    /// PostgreSQL, through sqlx.
    Sqlx(Tx),
    /// SQLite on the calling thread; the connection goes back to the pool
    /// (rolled back) when the snapshot is dropped.
    Inline {
        conn: Option<rusqlite::Connection>,
        store: Store,
    },
}

impl SnapshotTx {
    async fn rows<T: crate::exec::RowType>(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        cache: bool,
    ) -> Result<Vec<T>> {
        match self {
            SnapshotTx::Sqlx(tx) => tx.rows(sql, args, cache).await,
            SnapshotTx::Inline { conn, .. } => {
                let c = conn
                    .as_ref()
                    .ok_or_else(|| StoreError::Config("snapshot connection gone".into()))?;
                Ok(inline::query_with(c, sql, args, cache)?)
            }
        }
    }
}

impl Drop for SnapshotTx {
    fn drop(&mut self) {
        if let SnapshotTx::Inline { conn, store } = self {
            if let (Some(c), Some(pool)) = (conn.take(), &store.inner.inline) {
                if c.execute_batch("ROLLBACK").is_ok() {
                    pool.give_back(c);
                }
            }
        }
    }
}

/// A consistent, read-only view of one repository (see the module docs).
pub struct RepoSnapshot {
    tx: SnapshotTx,
    root: RepoRoot,
    _slot: OwnedSemaphorePermit,
}

impl std::fmt::Debug for RepoSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoSnapshot")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Repos<'_> {
    /// Opens a read snapshot of `did`'s repository; `None` if it has no
    /// root.
    pub async fn snapshot(&self, did: &str) -> Result<Option<RepoSnapshot>> {
        let slot = self
            .store
            .inner
            .snapshot_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Config("snapshot slots closed".into()))?;
        let mut tx = match (&self.store.inner.pool, &self.store.inner.inline) {
            (Pool::Sqlite(_), Some(pool)) => {
                let c = pool.take()?;
                c.execute_batch("BEGIN")?;
                SnapshotTx::Inline {
                    conn: Some(c),
                    store: self.store.clone(),
                }
            }
            (Pool::Sqlite(p), None) => SnapshotTx::Sqlx(Tx::Sqlite(p.begin().await?)),
            (Pool::Postgres(p), _) => SnapshotTx::Sqlx(Tx::Postgres(
                p.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            )),
        };
        let rows: Vec<(String, String, i64)> = tx
            .rows(
                "SELECT cid, rev, indexed_at FROM repo_root WHERE did = $1",
                &[Arg::Text(did)],
                true,
            )
            .await?;
        let Some((cid, rev, indexed_at)) = rows.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(RepoSnapshot {
            tx,
            root: RepoRoot {
                did: did.to_owned(),
                cid: parse_cid(&cid)?,
                rev,
                indexed_at,
            },
            _slot: slot,
        }))
    }
}

impl RepoSnapshot {
    /// The repository's root when the snapshot was taken.
    pub fn root(&self) -> &RepoRoot {
        &self.root
    }

    /// A page of the repository's blocks as of the snapshot, in CID order,
    /// after `after`; with `since_rev`, only blocks written by a later rev.
    pub async fn list_blocks(
        &mut self,
        since_rev: Option<&str>,
        after: Option<&Cid>,
        limit: u32,
    ) -> Result<Vec<(Cid, Vec<u8>)>> {
        let did = self.root.did.as_str();
        let after_s = after.map(cid_to_string).unwrap_or_default();
        // Without `since`, a range scan of the primary key (did, cid).
        let sql = if since_rev.is_some() {
            "SELECT cid, content FROM repo_block \
             WHERE did = $1 AND cid > $2 AND rev > $4 ORDER BY cid LIMIT $3"
        } else {
            "SELECT cid, content FROM repo_block \
             WHERE did = $1 AND cid > $2 ORDER BY cid LIMIT $3"
        };
        let mut args = vec![
            Arg::Text(did),
            Arg::Text(&after_s),
            Arg::Int(i64::from(limit)),
        ];
        args.extend(since_rev.map(Arg::Text));
        let rows: Vec<(String, Vec<u8>)> = self.tx.rows(sql, &args, true).await?;
        rows.into_iter()
            .map(|(c, b)| Ok((parse_cid(&c)?, b)))
            .collect()
    }

    /// Blocks of the repository as of the snapshot, in few round trips;
    /// absent ones are listed in `missing`.
    pub async fn get_blocks(&mut self, cids: &[Cid]) -> Result<BlockMap> {
        let did = self.root.did.as_str();
        let mut out = BlockMap::default();
        let wanted: Vec<String> = cids.iter().map(cid_to_string).collect();
        for chunk in wanted.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT cid, content FROM repo_block WHERE did = $1 AND cid IN ({})",
                placeholders(2, chunk.len())
            );
            let keep = keep_prepared(chunk.len(), IN_CHUNK);
            let rows: Vec<(String, Vec<u8>)> =
                self.tx.rows(&sql, &did_and(did, chunk), keep).await?;
            for (cid, bytes) in rows {
                out.blocks.insert(parse_cid(&cid)?, bytes);
            }
        }
        for cid in cids {
            if !out.blocks.contains_key(cid) && !out.missing.contains(cid) {
                out.missing.push(*cid);
            }
        }
        Ok(out)
    }
}
