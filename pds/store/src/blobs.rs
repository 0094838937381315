//! Blob metadata (per account), record-to-blob references and orphan cleanup.
//!
//! A blob belongs to each account that uploaded it (the row key is `(did,
//! cid)`), and its bytes live in a [`BlobStore`] under the same key.
//!
//! Orphans: a blob that no record of its account references is deletable once
//! it is older than the grace period (uploaded and never used), or at once if
//! it is old and its last reference was removed. [`Blobs::delete_orphan`]
//! re-checks under the blob row's lock, so a commit that references the blob
//! concurrently either wins (the blob stays) or fails cleanly with
//! [`StoreError::BlobNotFound`].
//!
//! Bytes without a row (a crash between the database and the blob store)
//! are found by listing the blob store:
//! [`Blobs::collect_unrecorded_objects`] deletes those older than the
//! grace period.
//!
//! Upload order ([`Blobs::upload`]): stream to a temporary object (CID and
//! size computed on the way), upsert the metadata row (refreshing its age),
//! then move the bytes into place. A concurrent cleanup holding the row's
//! lock finishes first; the upsert then recreates the row and the move puts
//! the bytes back.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use cid::Cid;
use tokio::io::AsyncRead;

use crate::blobstore::{BlobStore, StoredBlob};
use crate::db::{
    cid_to_string, i64_from_u64, now_ms, on_pool, on_tx, parse_cid, placeholders, u64_from_i64,
    Backend, Pool,
};
use crate::error::Result;
use crate::Store;

/// Minimum grace period before an unreferenced blob may be deleted.
pub const MIN_ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// Metadata of an uploaded blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobMeta {
    pub did: String,
    pub cid: Cid,
    pub mime_type: String,
    pub size: u64,
    pub created_at: i64,
    pub takedown_ref: Option<String>,
}

type BlobRow = (String, String, String, i64, i64, Option<String>);

fn meta_from_row(r: BlobRow) -> Result<BlobMeta> {
    Ok(BlobMeta {
        did: r.0,
        cid: parse_cid(&r.1)?,
        mime_type: r.2,
        size: u64_from_i64(r.3, "blob size")?,
        created_at: r.4,
        takedown_ref: r.5,
    })
}

const BLOB_COLS: &str = "did, cid, mime_type, size, created_at, takedown_ref";

/// A record reference to a blob whose metadata is missing (repo imports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingBlob {
    pub cid: Cid,
    pub record_uri: String,
}

/// Blob metadata.
pub struct Blobs<'a> {
    pub(crate) store: &'a Store,
}

impl Blobs<'_> {
    fn pool(&self) -> &Pool {
        &self.store.inner.pool
    }

    /// Streams a blob into `blob_store` and records it for `did` (see the
    /// module docs for the order of steps). `max_size` bounds the upload.
    pub async fn upload(
        &self,
        blob_store: &dyn BlobStore,
        did: &str,
        mime_type: &str,
        reader: &mut (dyn AsyncRead + Unpin + Send),
        max_size: Option<u64>,
    ) -> Result<BlobMeta> {
        let temp = blob_store.put_temp(reader, max_size).await?;
        let meta = match self.put_meta(did, &temp.cid, mime_type, temp.size).await {
            Ok(m) => m,
            Err(e) => {
                let _ = blob_store.discard_temp(&temp).await;
                return Err(e);
            }
        };
        blob_store.make_permanent(&temp, did).await?;
        Ok(meta)
    }

    /// Records (or refreshes the upload time of) a blob's metadata.
    pub async fn put_meta(
        &self,
        did: &str,
        cid: &Cid,
        mime_type: &str,
        size: u64,
    ) -> Result<BlobMeta> {
        let now = now_ms();
        let size_i = i64_from_u64(size, "blob size")?;
        let sql = format!(
            "INSERT INTO blob (did, cid, mime_type, size, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (did, cid) DO UPDATE SET mime_type = excluded.mime_type, \
             size = excluded.size, created_at = excluded.created_at RETURNING {BLOB_COLS}"
        );
        let row: BlobRow = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(did)
            .bind(cid_to_string(cid))
            .bind(mime_type)
            .bind(size_i)
            .bind(now)
            .fetch_one(p)
            .await)?;
        meta_from_row(row)
    }

    /// One blob's metadata.
    pub async fn get_meta(&self, did: &str, cid: &Cid) -> Result<Option<BlobMeta>> {
        let sql = format!("SELECT {BLOB_COLS} FROM blob WHERE did = $1 AND cid = $2");
        let row: Option<BlobRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(did)
            .bind(cid_to_string(cid))
            .fetch_optional(p)
            .await)?;
        row.map(meta_from_row).transpose()
    }

    /// The account's blobs in CID order after `after`.
    pub async fn list(&self, did: &str, after: Option<&Cid>, limit: u32) -> Result<Vec<Cid>> {
        let rows: Vec<String> = on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT cid FROM blob WHERE did = $1 AND cid > $2 ORDER BY cid LIMIT $3"
        )
        .bind(did)
        .bind(after.map(cid_to_string).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        rows.iter().map(|s| parse_cid(s)).collect()
    }

    /// Blobs referenced by records of a repo whose rev is after `since_rev`.
    pub async fn list_referenced_since(
        &self,
        did: &str,
        since_rev: &str,
        after: Option<&Cid>,
        limit: u32,
    ) -> Result<Vec<Cid>> {
        let rows: Vec<String> = on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT DISTINCT rb.blob_cid FROM record_blob rb \
             JOIN record r ON r.did = rb.did \
             AND $1 || '/' || r.collection || '/' || r.rkey = rb.record_uri \
             WHERE rb.did = $2 AND r.rev > $3 AND rb.blob_cid > $4 \
             ORDER BY rb.blob_cid LIMIT $5"
        )
        .bind(format!("at://{did}"))
        .bind(did)
        .bind(since_rev)
        .bind(after.map(cid_to_string).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        rows.iter().map(|s| parse_cid(s)).collect()
    }

    /// Record references to blobs this account has no metadata for.
    pub async fn list_missing(
        &self,
        did: &str,
        after: Option<&Cid>,
        limit: u32,
    ) -> Result<Vec<MissingBlob>> {
        let rows: Vec<(String, String)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT rb.blob_cid, MIN(rb.record_uri) FROM record_blob rb \
             WHERE rb.did = $1 AND rb.blob_cid > $2 AND NOT EXISTS \
             (SELECT 1 FROM blob b WHERE b.did = rb.did AND b.cid = rb.blob_cid) \
             GROUP BY rb.blob_cid ORDER BY rb.blob_cid LIMIT $3"
        )
        .bind(did)
        .bind(after.map(cid_to_string).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(c, record_uri)| {
                Ok(MissingBlob {
                    cid: parse_cid(&c)?,
                    record_uri,
                })
            })
            .collect()
    }

    /// URIs of the account's records that reference the blob.
    pub async fn referencing_records(&self, did: &str, cid: &Cid) -> Result<Vec<String>> {
        Ok(on_pool!(self.pool(), |p| {
            sqlx::query_scalar(
            "SELECT record_uri FROM record_blob WHERE did = $1 AND blob_cid = $2 ORDER BY record_uri"
        )
        .bind(did)
        .bind(cid_to_string(cid))
        .fetch_all(p)
        .await
        })?)
    }

    /// How many distinct blobs the account's records reference (whether
    /// uploaded or not).
    pub async fn referenced_count(&self, did: &str) -> Result<u64> {
        let n: i64 = on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT COUNT(DISTINCT blob_cid) FROM record_blob WHERE did = $1"
        )
        .bind(did)
        .fetch_one(p)
        .await)?;
        u64_from_i64(n, "count")
    }

    /// Number of blobs and their total size for the account.
    pub async fn stats(&self, did: &str) -> Result<(u64, u64)> {
        let (n, size): (i64, Option<i64>) = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(size) AS BIGINT) FROM blob WHERE did = $1"
        )
        .bind(did)
        .fetch_one(p)
        .await)?;
        Ok((
            u64_from_i64(n, "count")?,
            u64_from_i64(size.unwrap_or(0), "size")?,
        ))
    }

    /// Sets or clears the blob's takedown reference. False if absent.
    pub async fn set_takedown(
        &self,
        did: &str,
        cid: &Cid,
        takedown_ref: Option<&str>,
    ) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "UPDATE blob SET takedown_ref = $3 WHERE did = $1 AND cid = $2"
        )
        .bind(did)
        .bind(cid_to_string(cid))
        .bind(takedown_ref)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Blobs unreferenced by any record of their account and uploaded before
    /// `cutoff` (callers use `now - grace`, grace >= [`MIN_ORPHAN_GRACE`]).
    pub async fn list_orphans(&self, cutoff: i64, limit: u32) -> Result<Vec<(String, Cid)>> {
        let rows: Vec<(String, String)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT b.did, b.cid FROM blob b WHERE b.created_at <= $1 AND NOT EXISTS \
             (SELECT 1 FROM record_blob rb WHERE rb.did = b.did AND rb.blob_cid = b.cid) \
             ORDER BY b.created_at, b.did, b.cid LIMIT $2"
        )
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(did, c)| Ok((did, parse_cid(&c)?)))
            .collect()
    }

    /// Deletes the blob (bytes, then metadata) if, under its row lock, it is
    /// still unreferenced and uploaded at or before `cutoff`. Returns whether
    /// it was deleted.
    pub async fn delete_orphan(
        &self,
        blob_store: &dyn BlobStore,
        did: &str,
        cid: &Cid,
        cutoff: i64,
    ) -> Result<bool> {
        let mut tx = self.store.begin_write().await?;
        let cid_s = cid_to_string(cid);
        let lock_sql = match tx.tx.backend() {
            Backend::Postgres => {
                "SELECT created_at FROM blob WHERE did = $1 AND cid = $2 FOR UPDATE"
            }
            Backend::Sqlite => "SELECT created_at FROM blob WHERE did = $1 AND cid = $2",
        };
        let created: Option<i64> = on_tx!(&mut tx.tx, |c| sqlx::query_scalar(lock_sql)
            .bind(did)
            .bind(&cid_s)
            .fetch_optional(&mut *c)
            .await)?;
        match created {
            Some(at) if at <= cutoff => {}
            _ => return Ok(false),
        }
        let refs: i64 = on_tx!(&mut tx.tx, |c| sqlx::query_scalar(
            "SELECT COUNT(*) FROM record_blob WHERE did = $1 AND blob_cid = $2"
        )
        .bind(did)
        .bind(&cid_s)
        .fetch_one(&mut *c)
        .await)?;
        if refs > 0 {
            return Ok(false);
        }
        blob_store.delete(did, cid).await?;
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "DELETE FROM blob WHERE did = $1 AND cid = $2"
        )
        .bind(did)
        .bind(&cid_s)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        self.store.commit(tx).await?;
        Ok(true)
    }

    /// Deletes the blob objects of `blob_store` that no metadata row names
    /// and that were last modified at or before `cutoff`: bytes left behind
    /// by a crash (an account deletion whose byte cleanup did not finish, a
    /// metadata delete whose byte delete did not happen...). Each one is
    /// deleted by [`Blobs::delete_unrecorded_object`]. Returns how many were
    /// deleted.
    pub async fn delete_unrecorded_objects(
        &self,
        blob_store: &dyn BlobStore,
        cutoff: i64,
    ) -> Result<u64> {
        let mut n = 0;
        let mut cursor: Option<String> = None;
        loop {
            let page = blob_store.list_page(cursor.as_deref(), 500).await?;
            let old: Vec<StoredBlob> = page
                .blobs
                .into_iter()
                .filter(|b| b.modified_at <= cutoff)
                .collect();
            let recorded = self.recorded(&old).await?;
            for b in old {
                if !recorded.contains(&(b.did.clone(), cid_to_string(&b.cid)))
                    && self
                        .delete_unrecorded_object(blob_store, &b.did, &b.cid)
                        .await?
                {
                    n += 1;
                }
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(n),
            }
        }
    }

    /// Which of `blobs` have a metadata row, as `(did, cid string)`.
    async fn recorded(&self, blobs: &[StoredBlob]) -> Result<HashSet<(String, String)>> {
        let mut by_did: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for b in blobs {
            by_did
                .entry(b.did.as_str())
                .or_default()
                .push(cid_to_string(&b.cid));
        }
        let mut out = HashSet::new();
        for (did, cids) in by_did {
            for chunk in cids.chunks(500) {
                let sql = format!(
                    "SELECT cid FROM blob WHERE did = $1 AND cid IN ({})",
                    placeholders(2, chunk.len())
                );
                let rows: Vec<String> = on_pool!(self.pool(), |p| {
                    let mut q = sqlx::query_scalar(&sql).persistent(false).bind(did);
                    for c in chunk {
                        q = q.bind(c);
                    }
                    q.fetch_all(p).await
                })?;
                out.extend(rows.into_iter().map(|c| (did.to_owned(), c)));
            }
        }
        Ok(out)
    }

    /// Deletes the bytes of `(did, cid)` if no metadata row names the blob,
    /// safely against a concurrent upload of the same blob: a placeholder
    /// row is inserted (and deleted again) in the transaction around the
    /// delete, so an upload's metadata upsert, which comes before its
    /// bytes are moved into place, waits for the delete (PostgreSQL: the
    /// placeholder's row lock; SQLite: the write lock). Returns whether the
    /// bytes were deleted (false: a row exists).
    pub async fn delete_unrecorded_object(
        &self,
        blob_store: &dyn BlobStore,
        did: &str,
        cid: &Cid,
    ) -> Result<bool> {
        let mut tx = self.store.begin_write().await?;
        let cid_s = cid_to_string(cid);
        let claimed = on_tx!(&mut tx.tx, |c| {
            sqlx::query(
            "INSERT INTO blob (did, cid, mime_type, size, created_at) VALUES ($1, $2, '', 0, 0) \
             ON CONFLICT (did, cid) DO NOTHING"
        )
        .bind(did)
        .bind(&cid_s)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected())
        })?;
        if claimed == 0 {
            return Ok(false);
        }
        blob_store.delete(did, cid).await?;
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "DELETE FROM blob WHERE did = $1 AND cid = $2"
        )
        .bind(did)
        .bind(&cid_s)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        self.store.commit(tx).await?;
        Ok(true)
    }

    /// [`Blobs::delete_unrecorded_objects`] for objects older than `grace`
    /// (at least [`MIN_ORPHAN_GRACE`]).
    pub async fn collect_unrecorded_objects(
        &self,
        blob_store: &dyn BlobStore,
        grace: Duration,
    ) -> Result<u64> {
        let grace_ms = i64::try_from(grace.max(MIN_ORPHAN_GRACE).as_millis()).unwrap_or(i64::MAX);
        self.delete_unrecorded_objects(blob_store, now_ms().saturating_sub(grace_ms))
            .await
    }

    /// Runs [`Blobs::delete_orphan`] on up to `limit` orphans older than
    /// `grace` (at least [`MIN_ORPHAN_GRACE`]). Returns how many were deleted.
    pub async fn collect_orphans(
        &self,
        blob_store: &dyn BlobStore,
        grace: Duration,
        limit: u32,
    ) -> Result<u64> {
        let grace_ms = i64::try_from(grace.max(MIN_ORPHAN_GRACE).as_millis()).unwrap_or(i64::MAX);
        self.collect_orphans_before(blob_store, now_ms().saturating_sub(grace_ms), limit)
            .await
    }

    /// Runs [`Blobs::delete_orphan`] on up to `limit` orphans uploaded at or
    /// before `cutoff` (callers use `now - grace`, grace >=
    /// [`MIN_ORPHAN_GRACE`]). Returns how many were deleted.
    pub async fn collect_orphans_before(
        &self,
        blob_store: &dyn BlobStore,
        cutoff: i64,
        limit: u32,
    ) -> Result<u64> {
        let mut n = 0;
        for (did, cid) in self.list_orphans(cutoff, limit).await? {
            if self.delete_orphan(blob_store, &did, &cid, cutoff).await? {
                n += 1;
            }
        }
        Ok(n)
    }
}
