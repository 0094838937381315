//! Repositories: roots, IPLD blocks, the record index, and atomic repo writes.
//!
//! # Writing
//!
//! [`Repos::begin_write`] takes the repo's write lock and returns the current
//! root and rev. The caller computes the new commit (MST, signature) and hands
//! the result to [`RepoWriteTxn::commit`], which in ONE database transaction
//! writes the new blocks, deletes the unreachable ones (those the caller
//! names, and the blocks of replaced or deleted records that no record of
//! the repository names any more), updates the record
//! index and record-to-blob references, moves the root (compare-and-swap on
//! the root read at `begin_write`), and sequences the events last. A crash
//! anywhere leaves the old state or the new one.
//!
//! Locking:
//! * in process, a per-repo async mutex (striped by DID) queues writers
//!   fairly, on both backends;
//! * on PostgreSQL, `begin_write` also opens the transaction and locks the
//!   `repo_root` row with `SELECT ... FOR UPDATE`, so writers in other
//!   processes wait for it;
//! * on SQLite, the write transaction (`BEGIN IMMEDIATE`) is opened only at
//!   commit, so the single SQLite writer lock is held briefly; another process
//!   that moved the root in between makes the compare-and-swap fail with
//!   [`StoreError::RepoConflict`] and nothing is written.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use cid::Cid;
use sha2::{Digest, Sha256};
use sqlx::{Postgres, Transaction};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit};

use crate::db::{
    cid_to_string, now_ms, on_pool, on_tx, parse_cid, placeholders, u64_from_i64, value_rows,
    Backend, Pool, Tx, WriteTx,
};
use crate::error::{Result, StoreError};
use crate::exec::Exec;
use crate::inline::Arg;
use crate::sequencer::{sequence_events, NewEvent};
use crate::Store;

/// Multihash code of sha2-256.
const SHA2_256: u64 = 0x12;
/// Rows per multi-row INSERT (5 parameters each).
const INSERT_CHUNK: usize = 200;
/// CIDs per `IN (...)` list.
pub(crate) const IN_CHUNK: usize = 500;

/// Whether a statement built for `n` rows or list items (at most `full` per
/// statement) is kept prepared on its connection: the common small sizes
/// of one-record commits and full chunks are, so they are parsed once per
/// connection instead of once per commit; other sizes are not, so the
/// statement cache holds a bounded number of texts.
pub(crate) fn keep_prepared(n: usize, full: usize) -> bool {
    n <= 8 || n == full
}

/// The current commit of a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoRoot {
    pub did: String,
    pub cid: Cid,
    pub rev: String,
    pub indexed_at: i64,
}

/// A record created or updated by a commit, with the blobs it references
/// (they replace the record's previous references).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordPut {
    pub collection: String,
    pub rkey: String,
    pub cid: Cid,
    pub blobs: Vec<Cid>,
}

/// A record deleted by a commit; its blob references go with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordDelete {
    pub collection: String,
    pub rkey: String,
}

/// Everything one repo commit changes.
#[derive(Debug, Default)]
pub struct RepoCommitData {
    pub new_root: Option<Cid>,
    pub new_rev: String,
    /// New blocks (CID, bytes). Each CID must be sha2-256 of its bytes.
    pub put_blocks: Vec<(Cid, Vec<u8>)>,
    /// Blocks no longer reachable from the new root (garbage collection):
    /// replaced MST nodes and the previous commit. The blocks of replaced
    /// or deleted records need not be listed: the store deletes them when
    /// no record of the repository names them any more.
    pub delete_blocks: Vec<Cid>,
    pub record_puts: Vec<RecordPut>,
    pub record_deletes: Vec<RecordDelete>,
    /// Fail with [`StoreError::BlobNotFound`] if a referenced blob has no
    /// metadata for this account (false for repo imports, where missing blobs
    /// are listed later).
    pub require_blobs: bool,
    /// Events to sequence, in order (usually one `#commit`).
    pub events: Vec<NewEvent>,
}

impl RepoCommitData {
    /// A commit moving the repo to `root` at `rev`.
    pub fn new(root: Cid, rev: impl Into<String>) -> RepoCommitData {
        RepoCommitData {
            new_root: Some(root),
            new_rev: rev.into(),
            require_blobs: true,
            ..RepoCommitData::default()
        }
    }
}

/// Result of a commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Seqs assigned to the commit's events.
    pub seqs: Vec<i64>,
    /// Blobs whose last reference this commit removed: deletable now.
    pub unreferenced_blobs: Vec<Cid>,
}

/// Result of a bulk block read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockMap {
    pub blocks: HashMap<Cid, Vec<u8>>,
    pub missing: Vec<Cid>,
}

/// A record index entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordEntry {
    pub collection: String,
    pub rkey: String,
    pub cid: Cid,
    pub rev: String,
    pub indexed_at: i64,
    pub takedown_ref: Option<String>,
}

impl RecordEntry {
    /// `at://did/collection/rkey`.
    pub fn uri(&self, did: &str) -> String {
        record_uri(did, &self.collection, &self.rkey)
    }
}

/// One repository in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoListEntry {
    pub did: String,
    pub cid: Cid,
    pub rev: String,
    pub status: crate::AccountStatus,
}

/// `at://did/collection/rkey`.
pub fn record_uri(did: &str, collection: &str, rkey: &str) -> String {
    format!("at://{did}/{collection}/{rkey}")
}

fn check_block(cid: &Cid, bytes: &[u8]) -> Result<()> {
    let mh = cid.hash();
    if mh.code() != SHA2_256 {
        return Err(StoreError::InvalidInput(format!(
            "block {cid}: unsupported multihash 0x{:x}",
            mh.code()
        )));
    }
    if Sha256::digest(bytes)[..] != *mh.digest() {
        return Err(StoreError::BlockCidMismatch(cid.to_string()));
    }
    Ok(())
}

type RecordRow = (String, String, String, String, i64, Option<String>);

fn record_from_row(r: RecordRow) -> Result<RecordEntry> {
    Ok(RecordEntry {
        collection: r.0,
        rkey: r.1,
        cid: parse_cid(&r.2)?,
        rev: r.3,
        indexed_at: r.4,
        takedown_ref: r.5,
    })
}

/// The rkey order, cursor bound (`$4`) and limit (`$3`) of a record page;
/// `prefix` qualifies the columns (`"r."` in a join).
fn page_clause(reverse: bool, cursor: bool, prefix: &str) -> String {
    let (cmp, order) = if reverse { (">", "ASC") } else { ("<", "DESC") };
    let bound = if cursor {
        format!("AND {prefix}rkey {cmp} $4 ")
    } else {
        String::new()
    };
    format!("{bound}ORDER BY {prefix}rkey {order} LIMIT $3")
}

/// A [`RecordRow`] followed by the record block's bytes (a `LEFT JOIN`).
type RecordValueRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<Vec<u8>>,
);

fn record_value_from_row(r: RecordValueRow) -> Result<(RecordEntry, Option<Vec<u8>>)> {
    let (collection, rkey, cid, rev, indexed_at, takedown_ref, content) = r;
    let entry = record_from_row((collection, rkey, cid, rev, indexed_at, takedown_ref))?;
    Ok((entry, content))
}

const RECORD_COLS: &str = "collection, rkey, cid, rev, indexed_at, takedown_ref";

/// A repo write in progress: holds the repo's write lock until committed or
/// dropped (dropping writes nothing).
pub struct RepoWriteTxn {
    store: Store,
    did: String,
    current: Option<RepoRoot>,
    pg: Option<Transaction<'static, Postgres>>,
    _guard: OwnedMutexGuard<()>,
    _slot: Option<OwnedSemaphorePermit>,
}

impl std::fmt::Debug for RepoWriteTxn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoWriteTxn")
            .field("did", &self.did)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl RepoWriteTxn {
    /// The repository being written.
    pub fn did(&self) -> &str {
        &self.did
    }

    /// The root at the time the lock was taken (`None`: no repo yet).
    pub fn current(&self) -> Option<&RepoRoot> {
        self.current.as_ref()
    }

    /// Bulk block read (sees committed state, which the lock keeps stable).
    pub async fn get_blocks(&self, cids: &[Cid]) -> Result<BlockMap> {
        self.store.repo().get_blocks(&self.did, cids).await
    }

    /// Applies `data` atomically and releases the lock.
    pub async fn commit(self, data: RepoCommitData) -> Result<CommitOutcome> {
        let RepoWriteTxn {
            store,
            did,
            current,
            pg,
            _guard,
            _slot,
        } = self;
        let expected = current.as_ref().map(|r| r.cid);
        if let (None, Some(committer)) = (&pg, &store.inner.committer) {
            return committer.commit(did, expected, data).await;
        }
        let (mut tx, root) = match pg {
            Some(t) => (WriteTx::from_pg(t), RootGuard::Locked(current.as_ref())),
            None => (
                store.begin_write().await?,
                RootGuard::Expect(expected.as_ref()),
            ),
        };
        let outcome = apply_commit(&mut tx, &did, root, data).await?;
        store.commit(tx).await?;
        Ok(outcome)
    }

    /// Deletes every block of the repo not in `reachable` (which must contain
    /// the current root), under the write lock. Returns how many were deleted.
    pub async fn collect_garbage(self, reachable: &HashSet<Cid>) -> Result<u64> {
        let RepoWriteTxn {
            store,
            did,
            current,
            pg,
            _guard,
            _slot,
        } = self;
        let Some(current) = current else {
            return Ok(0);
        };
        if !reachable.contains(&current.cid) {
            return Err(StoreError::InvalidInput(
                "reachable set does not contain the current root".into(),
            ));
        }
        let mut tx = match pg {
            Some(t) => WriteTx::from_pg(t),
            None => store.begin_write().await?,
        };
        check_root(&mut tx, &did, Some(&current.cid)).await?;
        let all: Vec<String> = on_tx!(&mut tx.tx, |c| sqlx::query_scalar(
            "SELECT cid FROM repo_block WHERE did = $1"
        )
        .bind(&did)
        .fetch_all(&mut *c)
        .await)?;
        let keep: HashSet<String> = reachable.iter().map(cid_to_string).collect();
        let doomed: Vec<String> = all.into_iter().filter(|c| !keep.contains(c)).collect();
        let n = delete_blocks(&mut tx, &did, &doomed).await?;
        store.commit(tx).await?;
        Ok(n)
    }
}

/// Reads the root inside `tx` and fails unless it is `expected`.
async fn check_root(
    tx: &mut impl Exec,
    did: &str,
    expected: Option<&Cid>,
) -> Result<Option<String>> {
    let row: Option<(String, String)> = tx
        .rows(
            "SELECT cid, rev FROM repo_root WHERE did = $1",
            &[Arg::Text(did)],
            true,
        )
        .await?
        .into_iter()
        .next();
    let found = row.as_ref().map(|r| r.0.clone());
    let expected_s = expected.map(cid_to_string);
    if found != expected_s {
        return Err(StoreError::RepoConflict {
            did: did.to_owned(),
            expected: expected_s,
            found,
        });
    }
    Ok(row.map(|r| r.1))
}

/// `did` then `items`, as arguments.
pub(crate) fn did_and<'a>(did: &'a str, items: &'a [String]) -> Vec<Arg<'a>> {
    std::iter::once(did)
        .chain(items.iter().map(String::as_str))
        .map(Arg::Text)
        .collect()
}

async fn delete_blocks(tx: &mut impl Exec, did: &str, cids: &[String]) -> Result<u64> {
    let mut n = 0;
    for chunk in cids.chunks(IN_CHUNK) {
        let sql = format!(
            "DELETE FROM repo_block WHERE did = $1 AND cid IN ({})",
            placeholders(2, chunk.len())
        );
        n += tx
            .execute(
                &sql,
                &did_and(did, chunk),
                keep_prepared(chunk.len(), IN_CHUNK),
            )
            .await?;
    }
    Ok(n)
}

async fn put_blocks(
    tx: &mut impl Exec,
    did: &str,
    rev: &str,
    blocks: &[(Cid, Vec<u8>)],
) -> Result<()> {
    for chunk in blocks.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO repo_block (did, cid, rev, size, content) VALUES {} \
             ON CONFLICT (did, cid) DO NOTHING",
            value_rows(chunk.len(), 5)
        );
        let cids: Vec<String> = chunk.iter().map(|(cid, _)| cid_to_string(cid)).collect();
        let mut args = Vec::with_capacity(chunk.len() * 5);
        for ((_, bytes), cid) in chunk.iter().zip(&cids) {
            args.extend([
                Arg::Text(did),
                Arg::Text(cid),
                Arg::Text(rev),
                Arg::Int(i64::try_from(bytes.len()).unwrap_or(i64::MAX)),
                Arg::Blob(bytes),
            ]);
        }
        tx.execute(&sql, &args, keep_prepared(chunk.len(), INSERT_CHUNK))
            .await?;
    }
    Ok(())
}

/// Paths per `OR`-list when reading the current CIDs of records.
const PATH_CHUNK: usize = 100;

/// The current CIDs of the records `puts` will overwrite (absent ones are
/// skipped).
async fn old_record_cids(tx: &mut impl Exec, did: &str, puts: &[RecordPut]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for chunk in puts.chunks(PATH_CHUNK) {
        let mut cond = String::new();
        let mut args = vec![Arg::Text(did)];
        for (i, put) in chunk.iter().enumerate() {
            if i > 0 {
                cond.push_str(" OR ");
            }
            cond.push_str(&format!(
                "(collection = ${} AND rkey = ${})",
                2 * i + 2,
                2 * i + 3
            ));
            args.extend([Arg::Text(&put.collection), Arg::Text(&put.rkey)]);
        }
        let sql = format!("SELECT cid FROM record WHERE did = $1 AND ({cond})");
        let rows: Vec<(String,)> = tx
            .rows(&sql, &args, keep_prepared(chunk.len(), PATH_CHUNK))
            .await?;
        out.extend(rows.into_iter().map(|r| r.0));
    }
    Ok(out)
}

/// Deletes the blocks of replaced or deleted records that no record of the
/// repository names any more (the same record content may sit under
/// several keys), once the record index holds the commit's changes.
/// Blocks the commit writes, and its root, are never deleted. Returns how
/// many blocks were deleted.
async fn collect_record_blocks(
    tx: &mut impl Exec,
    did: &str,
    puts: &[RecordPut],
    new_root: &Cid,
    written: &HashSet<&Cid>,
    mut candidates: Vec<String>,
) -> Result<u64> {
    let kept: HashSet<String> = puts
        .iter()
        .map(|p| &p.cid)
        .chain(written.iter().copied())
        .chain(std::iter::once(new_root))
        .map(cid_to_string)
        .collect();
    candidates.retain(|c| !kept.contains(c));
    candidates.sort();
    candidates.dedup();
    let mut doomed = Vec::with_capacity(candidates.len());
    for chunk in candidates.chunks(IN_CHUNK) {
        let sql = format!(
            "SELECT DISTINCT cid FROM record WHERE did = $1 AND cid IN ({})",
            placeholders(2, chunk.len())
        );
        let still: Vec<(String,)> = tx
            .rows(
                &sql,
                &did_and(did, chunk),
                keep_prepared(chunk.len(), IN_CHUNK),
            )
            .await?;
        let still: HashSet<String> = still.into_iter().map(|r| r.0).collect();
        doomed.extend(chunk.iter().filter(|c| !still.contains(*c)).cloned());
    }
    delete_blocks(tx, did, &doomed).await
}

/// Deletes the blob references of the record at `uri`; the blobs it named.
async fn drop_blob_refs(tx: &mut impl Exec, did: &str, uri: &str) -> Result<Vec<String>> {
    let gone: Vec<(String,)> = tx
        .rows(
            "DELETE FROM record_blob WHERE did = $1 AND record_uri = $2 RETURNING blob_cid",
            &[Arg::Text(did), Arg::Text(uri)],
            true,
        )
        .await?;
    Ok(gone.into_iter().map(|r| r.0).collect())
}

/// The body of every repo commit (also used by account creation), through
/// a sqlx transaction or on the SQLite committer's connection.
/// How a commit makes sure the repository's root is still the one it was
/// built on.
pub(crate) enum RootGuard<'a> {
    /// This transaction read the root with `SELECT ... FOR UPDATE`
    /// (PostgreSQL): no one else can move it, so it is not read again. (No
    /// root means no row was locked; the insert of the first root still
    /// fails with `RepoConflict` if another writer made one.)
    Locked(Option<&'a RepoRoot>),
    /// The root was read outside this transaction: it is read again, and
    /// the commit fails with `RepoConflict` unless it is still this one.
    Expect(Option<&'a Cid>),
}

pub(crate) async fn apply_commit(
    tx: &mut impl Exec,
    did: &str,
    root: RootGuard<'_>,
    data: RepoCommitData,
) -> Result<CommitOutcome> {
    let new_root = data
        .new_root
        .ok_or_else(|| StoreError::InvalidInput("commit without a new root".into()))?;
    for (cid, bytes) in &data.put_blocks {
        check_block(cid, bytes)?;
    }
    let backend = tx.backend();
    let (expected, current_rev) = match root {
        RootGuard::Locked(r) => (r.map(|r| &r.cid), r.map(|r| r.rev.clone())),
        RootGuard::Expect(e) => (e, check_root(tx, did, e).await?),
    };
    if let Some(cur) = current_rev {
        if data.new_rev.as_str() <= cur.as_str() {
            return Err(StoreError::RevNotIncreasing {
                did: did.to_owned(),
                current_rev: cur,
                new_rev: data.new_rev,
            });
        }
    }
    let root_s = cid_to_string(&new_root);
    let root_in_commit = data.put_blocks.iter().any(|(c, _)| *c == new_root);
    if !root_in_commit {
        let have: Vec<(i64,)> = tx
            .rows(
                "SELECT size FROM repo_block WHERE did = $1 AND cid = $2",
                &[Arg::Text(did), Arg::Text(&root_s)],
                true,
            )
            .await?;
        if have.is_empty() {
            return Err(StoreError::MissingRootBlock(root_s));
        }
    }

    put_blocks(tx, did, &data.new_rev, &data.put_blocks).await?;
    let written: HashSet<&Cid> = data.put_blocks.iter().map(|(c, _)| c).collect();
    let doomed: Vec<String> = data
        .delete_blocks
        .iter()
        .filter(|c| !written.contains(c) && **c != new_root)
        .map(cid_to_string)
        .collect();
    delete_blocks(tx, did, &doomed).await?;

    let now = now_ms();
    // CIDs of the records this commit replaces or deletes: their blocks are
    // garbage once no record of the repo names them any more.
    let mut replaced_records: Vec<String> = old_record_cids(tx, did, &data.record_puts).await?;
    let mut touched_blobs: Vec<String> = Vec::new();
    for del in &data.record_deletes {
        let old: Vec<(String,)> = tx
            .rows(
                "DELETE FROM record WHERE did = $1 AND collection = $2 AND rkey = $3 RETURNING cid",
                &[
                    Arg::Text(did),
                    Arg::Text(&del.collection),
                    Arg::Text(&del.rkey),
                ],
                true,
            )
            .await?;
        replaced_records.extend(old.into_iter().map(|r| r.0));
        let uri = record_uri(did, &del.collection, &del.rkey);
        touched_blobs.extend(drop_blob_refs(tx, did, &uri).await?);
    }
    let lock_blob_sql = match backend {
        Backend::Postgres => "SELECT size FROM blob WHERE did = $1 AND cid = $2 FOR SHARE",
        Backend::Sqlite => "SELECT size FROM blob WHERE did = $1 AND cid = $2",
    };
    for put in &data.record_puts {
        let cid_s = cid_to_string(&put.cid);
        tx.execute(
            "INSERT INTO record (did, collection, rkey, cid, rev, indexed_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (did, collection, rkey) DO UPDATE \
             SET cid = excluded.cid, rev = excluded.rev, indexed_at = excluded.indexed_at",
            &[
                Arg::Text(did),
                Arg::Text(&put.collection),
                Arg::Text(&put.rkey),
                Arg::Text(&cid_s),
                Arg::Text(&data.new_rev),
                Arg::Int(now),
            ],
            true,
        )
        .await?;
        let uri = record_uri(did, &put.collection, &put.rkey);
        touched_blobs.extend(drop_blob_refs(tx, did, &uri).await?);
        for blob in &put.blobs {
            let blob_s = cid_to_string(blob);
            if data.require_blobs {
                // Locks the blob row against a concurrent orphan cleanup.
                let exists: Vec<(i64,)> = tx
                    .rows(lock_blob_sql, &[Arg::Text(did), Arg::Text(&blob_s)], true)
                    .await?;
                if exists.is_empty() {
                    return Err(StoreError::BlobNotFound(blob_s));
                }
            }
            tx.execute(
                "INSERT INTO record_blob (did, blob_cid, record_uri) VALUES ($1, $2, $3) \
                 ON CONFLICT (did, blob_cid, record_uri) DO NOTHING",
                &[Arg::Text(did), Arg::Text(&blob_s), Arg::Text(&uri)],
                true,
            )
            .await?;
        }
    }

    let moved = match expected {
        None => {
            tx.execute(
                "INSERT INTO repo_root (did, cid, rev, indexed_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (did) DO NOTHING",
                &[
                    Arg::Text(did),
                    Arg::Text(&root_s),
                    Arg::Text(&data.new_rev),
                    Arg::Int(now),
                ],
                true,
            )
            .await?
        }
        Some(prev) => {
            let prev_s = cid_to_string(prev);
            tx.execute(
                "UPDATE repo_root SET cid = $2, rev = $3, indexed_at = $4 \
                 WHERE did = $1 AND cid = $5",
                &[
                    Arg::Text(did),
                    Arg::Text(&root_s),
                    Arg::Text(&data.new_rev),
                    Arg::Int(now),
                    Arg::Text(&prev_s),
                ],
                true,
            )
            .await?
        }
    };
    if moved != 1 {
        return Err(StoreError::RepoConflict {
            did: did.to_owned(),
            expected: expected.map(cid_to_string),
            found: None,
        });
    }

    collect_record_blocks(
        tx,
        did,
        &data.record_puts,
        &new_root,
        &written,
        replaced_records,
    )
    .await?;

    touched_blobs.sort();
    touched_blobs.dedup();
    let mut unreferenced = Vec::new();
    for blob in touched_blobs {
        let refs: Vec<(i64,)> = tx
            .rows(
                "SELECT COUNT(*) FROM record_blob WHERE did = $1 AND blob_cid = $2",
                &[Arg::Text(did), Arg::Text(&blob)],
                true,
            )
            .await?;
        if refs.first().map_or(0, |r| r.0) == 0 {
            unreferenced.push(parse_cid(&blob)?);
        }
    }

    let seqs = sequence_events(tx, data.events).await?;
    Ok(CommitOutcome {
        seqs,
        unreferenced_blobs: unreferenced,
    })
}

/// Deletes all repository data of `did` inside `tx`; returns the CIDs of the
/// account's blobs (whose bytes the caller deletes from the blob store).
pub(crate) async fn delete_repo_data(tx: &mut Tx, did: &str) -> Result<Vec<Cid>> {
    let blobs: Vec<String> = on_tx!(tx, |c| sqlx::query_scalar(
        "DELETE FROM blob WHERE did = $1 RETURNING cid"
    )
    .bind(did)
    .fetch_all(&mut *c)
    .await)?;
    for sql in [
        "DELETE FROM record_blob WHERE did = $1",
        "DELETE FROM record WHERE did = $1",
        "DELETE FROM repo_block WHERE did = $1",
        "DELETE FROM repo_root WHERE did = $1",
    ] {
        on_tx!(tx, |c| sqlx::query(sql)
            .bind(did)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    blobs.iter().map(|s| parse_cid(s)).collect()
}

fn stripe(did: &str, n: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    did.hash(&mut h);
    usize::try_from(h.finish() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
}

/// Repositories: roots, blocks, writes, record index.
pub struct Repos<'a> {
    pub(crate) store: &'a Store,
}

impl Repos<'_> {
    fn pool(&self) -> &Pool {
        &self.store.inner.pool
    }

    /// Takes the repo's write lock (see the module docs) and reads its root.
    pub async fn begin_write(&self, did: &str) -> Result<RepoWriteTxn> {
        let locks = &self.store.inner.repo_locks;
        let lock = locks
            .get(stripe(did, locks.len()))
            .ok_or_else(|| StoreError::Config("no repo lock stripes".into()))?
            .clone();
        let guard = lock.lock_owned().await;
        let mut slot = None;
        let (current, pg) = match self.pool() {
            Pool::Postgres(p) => {
                slot = Some(
                    self.store
                        .inner
                        .repo_write_slots
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|_| StoreError::Config("repo write slots closed".into()))?,
                );
                let mut t = p.begin().await?;
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT cid, rev, indexed_at FROM repo_root WHERE did = $1 FOR UPDATE",
                )
                .bind(did)
                .fetch_optional(&mut *t)
                .await?;
                (row, Some(t))
            }
            Pool::Sqlite(_) => {
                let rows: Vec<(String, String, i64)> = self
                    .store
                    .rows(
                        "SELECT cid, rev, indexed_at FROM repo_root WHERE did = $1",
                        &[Arg::Text(did)],
                        true,
                    )
                    .await?;
                (rows.into_iter().next(), None)
            }
        };
        let current = match current {
            Some((cid, rev, indexed_at)) => Some(RepoRoot {
                did: did.to_owned(),
                cid: parse_cid(&cid)?,
                rev,
                indexed_at,
            }),
            None => None,
        };
        Ok(RepoWriteTxn {
            store: self.store.clone(),
            did: did.to_owned(),
            current,
            pg,
            _guard: guard,
            _slot: slot,
        })
    }

    /// The current root of `did`.
    pub async fn get_root(&self, did: &str) -> Result<Option<RepoRoot>> {
        let row: Option<(String, String, i64)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT cid, rev, indexed_at FROM repo_root WHERE did = $1"
        )
        .bind(did)
        .fetch_optional(p)
        .await)?;
        row.map(|(cid, rev, indexed_at)| {
            Ok(RepoRoot {
                did: did.to_owned(),
                cid: parse_cid(&cid)?,
                rev,
                indexed_at,
            })
        })
        .transpose()
    }

    /// One block.
    pub async fn get_block(&self, did: &str, cid: &Cid) -> Result<Option<Vec<u8>>> {
        Ok(on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT content FROM repo_block WHERE did = $1 AND cid = $2"
        )
        .bind(did)
        .bind(cid_to_string(cid))
        .fetch_optional(p)
        .await)?)
    }

    /// Many blocks in few round trips; absent ones are listed in `missing`.
    pub async fn get_blocks(&self, did: &str, cids: &[Cid]) -> Result<BlockMap> {
        let mut out = BlockMap::default();
        let wanted: Vec<String> = cids.iter().map(cid_to_string).collect();
        for chunk in wanted.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT cid, content FROM repo_block WHERE did = $1 AND cid IN ({})",
                placeholders(2, chunk.len())
            );
            let args = did_and(did, chunk);
            let rows: Vec<(String, Vec<u8>)> = self
                .store
                .rows(&sql, &args, keep_prepared(chunk.len(), IN_CHUNK))
                .await?;
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

    /// A page of the repo's blocks in CID order, after `after`; with
    /// `since_rev`, only blocks written by a later rev.
    pub async fn list_blocks(
        &self,
        did: &str,
        since_rev: Option<&str>,
        after: Option<&Cid>,
        limit: u32,
    ) -> Result<Vec<(Cid, Vec<u8>)>> {
        let after_s = after.map(cid_to_string).unwrap_or_default();
        let since = since_rev.unwrap_or("");
        let rows: Vec<(String, Vec<u8>)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT cid, content FROM repo_block \
             WHERE did = $1 AND cid > $2 AND rev > $3 ORDER BY cid LIMIT $4"
        )
        .bind(did)
        .bind(&after_s)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?;
        rows.into_iter()
            .map(|(c, b)| Ok((parse_cid(&c)?, b)))
            .collect()
    }

    /// Every block of the repo (paged internally).
    pub async fn all_blocks(&self, did: &str) -> Result<HashMap<Cid, Vec<u8>>> {
        let mut out = HashMap::new();
        let mut after: Option<Cid> = None;
        loop {
            let page = self.list_blocks(did, None, after.as_ref(), 1000).await?;
            let Some(last) = page.last().map(|(c, _)| *c) else {
                break;
            };
            out.extend(page);
            after = Some(last);
        }
        Ok(out)
    }

    /// Number of blocks and their total size in bytes.
    pub async fn block_stats(&self, did: &str) -> Result<(u64, u64)> {
        let (n, size): (i64, Option<i64>) = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(size) AS BIGINT) FROM repo_block WHERE did = $1"
        )
        .bind(did)
        .fetch_one(p)
        .await)?;
        Ok((
            u64_from_i64(n, "count")?,
            u64_from_i64(size.unwrap_or(0), "size")?,
        ))
    }

    /// One record index entry.
    pub async fn get_record(
        &self,
        did: &str,
        collection: &str,
        rkey: &str,
    ) -> Result<Option<RecordEntry>> {
        let sql = format!(
            "SELECT {RECORD_COLS} FROM record WHERE did = $1 AND collection = $2 AND rkey = $3"
        );
        let row: Option<RecordRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(did)
            .bind(collection)
            .bind(rkey)
            .fetch_optional(p)
            .await)?;
        row.map(record_from_row).transpose()
    }

    /// One record index entry with its record block's bytes (`None` if the
    /// block is absent), in one query.
    pub async fn get_record_with_value(
        &self,
        did: &str,
        collection: &str,
        rkey: &str,
    ) -> Result<Option<(RecordEntry, Option<Vec<u8>>)>> {
        const SQL: &str =
            "SELECT r.collection, r.rkey, r.cid, r.rev, r.indexed_at, r.takedown_ref, b.content \
             FROM record r LEFT JOIN repo_block b ON b.did = r.did AND b.cid = r.cid \
             WHERE r.did = $1 AND r.collection = $2 AND r.rkey = $3";
        let args = [Arg::Text(did), Arg::Text(collection), Arg::Text(rkey)];
        let rows: Vec<RecordValueRow> = self.store.rows(SQL, &args, true).await?;
        rows.into_iter()
            .next()
            .map(record_value_from_row)
            .transpose()
    }

    /// Records of a collection by rkey: descending by default (newest TIDs
    /// first), ascending with `reverse`; `cursor` is an exclusive rkey bound.
    pub async fn list_records(
        &self,
        did: &str,
        collection: &str,
        limit: u32,
        cursor: Option<&str>,
        reverse: bool,
    ) -> Result<Vec<RecordEntry>> {
        let sql = format!(
            "SELECT {RECORD_COLS} FROM record WHERE did = $1 AND collection = $2 {}",
            page_clause(reverse, cursor.is_some(), "")
        );
        let rows: Vec<RecordRow> = on_pool!(self.pool(), |p| {
            let mut q = sqlx::query_as(&sql)
                .bind(did)
                .bind(collection)
                .bind(i64::from(limit));
            if let Some(c) = cursor {
                q = q.bind(c);
            }
            q.fetch_all(p).await
        })?;
        rows.into_iter().map(record_from_row).collect()
    }

    /// The page [`Repos::list_records`] lists, each entry with its record
    /// block's bytes (`None` if the block is absent), in one query.
    pub async fn list_records_with_values(
        &self,
        did: &str,
        collection: &str,
        limit: u32,
        cursor: Option<&str>,
        reverse: bool,
    ) -> Result<Vec<(RecordEntry, Option<Vec<u8>>)>> {
        let sql = format!(
            "SELECT r.collection, r.rkey, r.cid, r.rev, r.indexed_at, r.takedown_ref, b.content \
             FROM record r LEFT JOIN repo_block b ON b.did = r.did AND b.cid = r.cid \
             WHERE r.did = $1 AND r.collection = $2 {}",
            page_clause(reverse, cursor.is_some(), "r.")
        );
        let mut args = vec![
            Arg::Text(did),
            Arg::Text(collection),
            Arg::Int(i64::from(limit)),
        ];
        args.extend(cursor.map(Arg::Text));
        let rows: Vec<RecordValueRow> = self.store.rows(&sql, &args, true).await?;
        rows.into_iter().map(record_value_from_row).collect()
    }

    /// The collections that have records, sorted.
    pub async fn list_collections(&self, did: &str) -> Result<Vec<String>> {
        Ok(on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT DISTINCT collection FROM record WHERE did = $1 ORDER BY collection"
        )
        .bind(did)
        .fetch_all(p)
        .await)?)
    }

    /// Number of indexed records.
    pub async fn record_count(&self, did: &str) -> Result<u64> {
        let n: i64 = on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM record WHERE did = $1"
        )
        .bind(did)
        .fetch_one(p)
        .await)?;
        u64_from_i64(n, "count")
    }

    /// Sets or clears a record's takedown reference. False if no such record.
    pub async fn set_record_takedown(
        &self,
        did: &str,
        collection: &str,
        rkey: &str,
        takedown_ref: Option<&str>,
    ) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| {
            sqlx::query(
            "UPDATE record SET takedown_ref = $4 WHERE did = $1 AND collection = $2 AND rkey = $3"
        )
        .bind(did)
        .bind(collection)
        .bind(rkey)
        .bind(takedown_ref)
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        })?;
        Ok(n > 0)
    }

    /// Repositories with a root, by DID, after `after`.
    pub async fn list_repos(&self, after: Option<&str>, limit: u32) -> Result<Vec<RepoListEntry>> {
        let rows: Vec<(String, String, String, String)> = on_pool!(self.pool(), |p| {
            sqlx::query_as(
                "SELECT r.did, r.cid, r.rev, a.status FROM repo_root r \
                 JOIN account a ON a.did = r.did WHERE r.did > $1 ORDER BY r.did LIMIT $2",
            )
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await
        })?;
        rows.into_iter()
            .map(|(did, cid, rev, status)| {
                Ok(RepoListEntry {
                    did,
                    cid: parse_cid(&cid)?,
                    rev,
                    status: status.parse()?,
                })
            })
            .collect()
    }
}
