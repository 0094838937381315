//! [`RepoWriter`]: record writes to signed commits, stored with their
//! `#commit` event in one transaction.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use atproto_crypto::PrivateKey;
use atproto_lexicon::Catalog;
use atproto_repo::car::write_car;
use atproto_repo::{apply_writes, BlockMap, Commit, CommitResult, Mst, RecordWrite, RepoHead};
use atproto_syntax::{Did, Tid, TidClock};
use bytes::Bytes;
use cid::Cid;
use pds_store::{record_uri, NewEvent, RecordDelete, RecordPut, RepoCommitData, Store, StoreError};

use crate::blocks::{mst_halt, repo_halt, BlockView, Fetcher, Halt};
use crate::cache::BlockCache;
use crate::error::{RepoWriteError, Result};
use crate::events::{sync_event, CommitEventData};
use crate::prepare::{check_key_type, prepare_write, PreparedRecord, PreparedWrite, Write};
use crate::ValidationStatus;

/// At most this many writes per commit (the reference PDS's limit).
pub const MAX_WRITES: usize = 200;
/// The `#commit` event's block CAR must not exceed this (the lexicon's
/// `maxLength` of `blocks`).
pub const MAX_COMMIT_BLOCKS_BYTES: usize = 2_000_000;

/// Limits and retry budget of a [`RepoWriter`].
#[derive(Clone, Debug)]
pub struct RepoWriterConfig {
    /// Writes per batch ([`MAX_WRITES`]).
    pub max_writes: usize,
    /// Bytes of the `#commit` event's CAR ([`MAX_COMMIT_BLOCKS_BYTES`]).
    pub max_commit_blocks_bytes: usize,
    /// How many times a write is redone when another process moved the
    /// repository's root under it (SQLite compare-and-swap).
    pub conflict_retries: u32,
}

impl Default for RepoWriterConfig {
    fn default() -> Self {
        RepoWriterConfig {
            max_writes: MAX_WRITES,
            max_commit_blocks_bytes: MAX_COMMIT_BLOCKS_BYTES,
            conflict_retries: 10,
        }
    }
}

/// What was done for one write of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteResult {
    /// `at://did/collection/rkey` (with the generated key for creates
    /// without one).
    pub uri: String,
    /// The record's CID (creates and updates; `None` for deletes).
    pub cid: Option<Cid>,
    /// The lexicon validation outcome (`None`: not validated, or a delete).
    pub validation_status: Option<ValidationStatus>,
    /// Whether the write changed the repository (false: an update to the
    /// record it already held, or a delete of an absent record).
    pub changed: bool,
}

/// The new commit, when a batch changed anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit block's CID (the new repository root).
    pub cid: Cid,
    /// The commit's rev.
    pub rev: String,
    /// The seq of its `#commit` event.
    pub seq: i64,
    /// Blobs whose last record reference this commit removed: their bytes
    /// may be deleted from the blob store.
    pub unreferenced_blobs: Vec<Cid>,
}

/// The result of [`RepoWriter::apply_writes`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitOutcome {
    /// `None` when no write changed anything (no commit was made).
    pub commit: Option<CommitInfo>,
    /// One result per write, in order.
    pub results: Vec<WriteResult>,
}

/// A repository's first commit, ready to store: either with
/// [`RepoWriter::store_genesis`] or, on account creation, as the
/// `genesis` argument of `store.accounts().create(account, Some(data))`.
#[derive(Debug)]
pub struct GenesisCommit {
    /// The repository.
    pub did: String,
    /// The commit to store (its `events` hold the `#commit` event; put the
    /// account's `#identity` / `#account` events in front if wanted).
    pub data: RepoCommitData,
    /// The commit block's CID.
    pub commit_cid: Cid,
    /// The commit block.
    pub commit_block: Bytes,
    /// The commit's rev.
    pub rev: String,
    /// The results of the initial writes.
    pub results: Vec<WriteResult>,
}

impl GenesisCommit {
    /// A `#sync` event announcing this commit (account creation, import).
    pub fn sync_event(&self) -> NewEvent {
        sync_event(&self.did, self.commit_cid, &self.commit_block, &self.rev)
    }
}

/// The PDS's repository write path: validates and encodes records, builds
/// signed commits over the lazily loaded MST, and stores each commit with
/// its `#commit` event in one transaction under the repository's write
/// lock. Cheap to clone; clones share the block cache and TID clock.
#[derive(Clone)]
pub struct RepoWriter {
    store: Store,
    catalog: &'static Catalog,
    cache: Arc<BlockCache>,
    clock: Arc<TidClock>,
    config: RepoWriterConfig,
}

impl std::fmt::Debug for RepoWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoWriter")
            .field("store", &self.store)
            .field("cache", &self.cache)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The state a write reads under the lock.
struct Head {
    commit: Cid,
    data: Cid,
    rev: String,
}

/// One write resolved against the current tree.
struct Planned {
    path: String,
    uri: String,
    /// The MST change, if any.
    op: Option<RecordWrite>,
    record: Option<PreparedRecord>,
    delete: bool,
}

fn did_of(did: &str) -> Result<Did> {
    Did::from_str(did).map_err(|e| RepoWriteError::InvalidRequest(format!("invalid DID: {e}")))
}

fn check_swap(uri: &str, swap: Option<Option<Cid>>, current: Option<Cid>) -> Result<()> {
    match swap {
        Some(expected) if expected != current => Err(RepoWriteError::InvalidSwap(format!(
            "Record was at {} (expected {}): {uri}",
            current.map_or_else(|| "null".to_owned(), |c| c.to_string()),
            expected.map_or_else(|| "null".to_owned(), |c| c.to_string()),
        ))),
        _ => Ok(()),
    }
}

impl RepoWriter {
    /// A writer over `store` validating against the embedded lexicons, with
    /// a default-sized block cache.
    pub fn new(store: Store) -> Result<RepoWriter> {
        let catalog = atproto_types::lex::try_catalog().map_err(RepoWriteError::internal)?;
        Ok(RepoWriter::with_parts(
            store,
            catalog,
            Arc::new(BlockCache::default()),
            RepoWriterConfig::default(),
        ))
    }

    /// A writer with its catalog, cache and limits given.
    pub fn with_parts(
        store: Store,
        catalog: &'static Catalog,
        cache: Arc<BlockCache>,
        config: RepoWriterConfig,
    ) -> RepoWriter {
        RepoWriter {
            store,
            catalog,
            cache,
            clock: Arc::new(TidClock::new()),
            config,
        }
    }

    /// The store written to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The block cache (its stats count the database block fetches).
    pub fn cache(&self) -> &Arc<BlockCache> {
        &self.cache
    }

    /// The lexicon catalog records are validated against.
    pub fn catalog(&self) -> &'static Catalog {
        self.catalog
    }

    fn fetcher<'s>(&'s self, did: &'s str) -> Fetcher<'s> {
        Fetcher {
            store: &self.store,
            cache: &self.cache,
            did,
        }
    }

    /// A fresh rev, after `current` (the repository's rev) if given.
    pub(crate) fn next_rev_after(&self, current: Option<&str>) -> Tid {
        if let Some(rev) = current {
            self.observe_rev(rev);
        }
        self.clock.next()
    }

    fn observe_rev(&self, rev: &str) {
        if let Ok(t) = Tid::from_str(rev) {
            // A rev too far in the future to count past is left unobserved;
            // the store then refuses the non-increasing rev.
            let _ = self.clock.observe(&t);
        }
    }

    /// Builds a new repository's first commit (empty, or holding
    /// `initial_writes`, which must be creates or updates) without storing
    /// it. The `#commit` event is in `data.events`.
    pub fn prepare_genesis(
        &self,
        did: &str,
        signing_key: &PrivateKey,
        initial_writes: Vec<Write>,
    ) -> Result<GenesisCommit> {
        let did_parsed = did_of(did)?;
        if initial_writes.len() > self.config.max_writes {
            return Err(RepoWriteError::TooManyWrites {
                count: initial_writes.len(),
                max: self.config.max_writes,
            });
        }
        let mut plans = Vec::with_capacity(initial_writes.len());
        let mut seen = HashSet::new();
        for w in initial_writes {
            let (collection, rkey, record, key_check) = match prepare_write(self.catalog, w)? {
                PreparedWrite::Create {
                    collection,
                    rkey,
                    record,
                    key_check,
                } => (collection, rkey, record, key_check),
                PreparedWrite::Update {
                    collection,
                    rkey,
                    record,
                    swap,
                } => {
                    if let Some(Some(_)) = swap {
                        return Err(RepoWriteError::InvalidSwap(
                            "a new repository holds no records to swap".into(),
                        ));
                    }
                    (collection, Some(rkey), record, false)
                }
                PreparedWrite::Delete { .. } => {
                    return Err(RepoWriteError::InvalidRequest(
                        "a new repository has no records to delete".into(),
                    ))
                }
            };
            let rkey = match rkey {
                Some(k) => k,
                None => {
                    let k = self.clock.next().into_inner();
                    if key_check {
                        check_key_type(self.catalog, &collection, &k)?;
                    }
                    k
                }
            };
            let path = format!("{collection}/{rkey}");
            if !seen.insert(path.clone()) {
                return Err(RepoWriteError::InvalidRequest(format!(
                    "more than one write to {path}"
                )));
            }
            plans.push(Planned {
                uri: record_uri(did, collection.as_str(), &rkey),
                op: Some(RecordWrite::Create {
                    key: path.clone(),
                    cid: record.cid,
                }),
                path,
                record: Some(record),
                delete: false,
            });
        }
        let rev = self.clock.next();
        let empty = BlockMap::new();
        let result = build_commit(&empty, did_parsed, rev, None, &plans, signing_key).map_err(
            |h| match h {
                Halt::Fail(e) => e,
                Halt::Missing(c) => RepoWriteError::Internal(format!(
                    "a new repository needed stored blocks: {c:?}"
                )),
            },
        )?;
        let commit_block = result
            .new_blocks
            .get(&result.commit_cid)
            .cloned()
            .ok_or_else(|| RepoWriteError::Internal("commit block not produced".into()))?;
        let rev = result.commit.rev.as_str().to_owned();
        let commit_cid = result.commit_cid;
        let (data, results) = self.commit_data(did, None, &plans, result)?;
        Ok(GenesisCommit {
            did: did.to_owned(),
            data,
            commit_cid,
            commit_block,
            rev,
            results,
        })
    }

    /// Stores a genesis commit for an existing account that has no
    /// repository yet.
    pub async fn store_genesis(&self, did: &str, genesis: GenesisCommit) -> Result<CommitOutcome> {
        let txn = self.store.repo().begin_write(did).await?;
        if txn.current().is_some() {
            return Err(RepoWriteError::RepoAlreadyExists(did.to_owned()));
        }
        let GenesisCommit {
            data,
            commit_cid,
            rev,
            results,
            ..
        } = genesis;
        let out = match txn.commit(data).await {
            Ok(o) => o,
            Err(StoreError::RepoConflict { .. }) => {
                return Err(RepoWriteError::RepoAlreadyExists(did.to_owned()))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(CommitOutcome {
            commit: Some(CommitInfo {
                cid: commit_cid,
                rev,
                seq: out.seqs.first().copied().unwrap_or_default(),
                unreferenced_blobs: out.unreferenced_blobs,
            }),
            results,
        })
    }

    /// Creates the repository of an existing account (no repository yet):
    /// [`RepoWriter::prepare_genesis`] then [`RepoWriter::store_genesis`].
    pub async fn create_repo(
        &self,
        did: &str,
        signing_key: &PrivateKey,
        initial_writes: Vec<Write>,
    ) -> Result<CommitOutcome> {
        let genesis = self.prepare_genesis(did, signing_key, initial_writes)?;
        self.store_genesis(did, genesis).await
    }

    /// Applies a batch of writes as one commit (see [`Write`] for each
    /// kind's semantics). `swap_commit` requires the repository to be at
    /// that commit. Writes that change nothing make no commit.
    pub async fn apply_writes(
        &self,
        did: &str,
        signing_key: &PrivateKey,
        writes: Vec<Write>,
        swap_commit: Option<Cid>,
    ) -> Result<CommitOutcome> {
        let did_parsed = did_of(did)?;
        if writes.len() > self.config.max_writes {
            return Err(RepoWriteError::TooManyWrites {
                count: writes.len(),
                max: self.config.max_writes,
            });
        }
        let prepared = writes
            .into_iter()
            .map(|w| prepare_write(self.catalog, w))
            .collect::<Result<Vec<_>>>()?;
        let mut attempt = 0;
        loop {
            match self
                .attempt(did, &did_parsed, signing_key, &prepared, swap_commit)
                .await
            {
                Err(Retry::Conflict) if attempt < self.config.conflict_retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(Retry::Conflict) => return Err(RepoWriteError::Conflict(did.to_owned())),
                Err(Retry::Fail(e)) => return Err(e),
                Ok(out) => return Ok(out),
            }
        }
    }

    /// One try of [`RepoWriter::apply_writes`] under the repository lock.
    async fn attempt(
        &self,
        did: &str,
        did_parsed: &Did,
        signing_key: &PrivateKey,
        prepared: &[PreparedWrite],
        swap_commit: Option<Cid>,
    ) -> std::result::Result<CommitOutcome, Retry> {
        let txn = self
            .store
            .repo()
            .begin_write(did)
            .await
            .map_err(Retry::from)?;
        let Some(root) = txn.current().cloned() else {
            return Err(RepoWriteError::RepoNotFound(did.to_owned()).into());
        };
        if let Some(swap) = swap_commit {
            if swap != root.cid {
                // On SQLite the root read without a lock may be stale: a
                // root moved by another process is a conflict to retry.
                if let Ok(Some(now)) = self.store.repo().get_root(did).await {
                    if now.cid != root.cid {
                        return Err(Retry::Conflict);
                    }
                }
                return Err(RepoWriteError::InvalidSwap(format!(
                    "Commit was at {} (expected {swap})",
                    root.cid
                ))
                .into());
            }
        }
        let fetcher = self.fetcher(did);
        let mut view = BlockView::new(&self.cache);
        let commit_cid = root.cid;
        let commit = fetcher
            .run(&mut view, |v| {
                let Some(bytes) = atproto_repo::BlockStore::get(v, &commit_cid)
                    .map_err(|e| Halt::Fail(RepoWriteError::internal(e)))?
                else {
                    return Err(Halt::Missing(vec![commit_cid]));
                };
                Commit::from_cbor(&bytes).map_err(|e| Halt::Fail(RepoWriteError::internal(e)))
            })
            .await
            .map_err(|e| (e, root.cid));
        let commit = self.settle(did, commit).await?;
        let head = Head {
            commit: root.cid,
            data: commit.data,
            rev: root.rev.clone(),
        };
        self.observe_rev(&head.rev);

        // Keys (generating TIDs) and their current values.
        let mut keyed: Vec<(String, &PreparedWrite)> = Vec::with_capacity(prepared.len());
        let mut seen = HashSet::new();
        for w in prepared {
            let (collection, rkey) = match w {
                PreparedWrite::Create {
                    collection,
                    rkey,
                    key_check,
                    ..
                } => match rkey {
                    Some(k) => (collection, k.clone()),
                    None => {
                        let k = self.clock.next().into_inner();
                        if *key_check {
                            check_key_type(self.catalog, collection, &k)?;
                        }
                        (collection, k)
                    }
                },
                PreparedWrite::Update {
                    collection, rkey, ..
                }
                | PreparedWrite::Delete {
                    collection, rkey, ..
                } => (collection, rkey.clone()),
            };
            let path = format!("{collection}/{rkey}");
            if !seen.insert(path.clone()) {
                return Err(RepoWriteError::InvalidRequest(format!(
                    "more than one write to {path} in one batch"
                ))
                .into());
            }
            keyed.push((path, w));
        }
        let data = head.data;
        let currents = fetcher
            .run(&mut view, |v| {
                let mst = Mst::load(v, data).map_err(|e| mst_halt(e, RepoWriteError::internal))?;
                let mut out = Vec::with_capacity(keyed.len());
                let mut missing = Vec::new();
                for (path, _) in &keyed {
                    match mst.get(v, path) {
                        Ok(c) => out.push(c),
                        Err(atproto_repo::MstError::MissingBlock(c)) => missing.push(c),
                        Err(e) => return Err(Halt::Fail(RepoWriteError::internal(e))),
                    }
                }
                if missing.is_empty() {
                    Ok(out)
                } else {
                    // Every key's next missing node, in one round trip.
                    Err(Halt::Missing(missing))
                }
            })
            .await
            .map_err(|e| (e, root.cid));
        let currents: Vec<Option<Cid>> = self.settle(did, currents).await?;

        let mut plans = Vec::with_capacity(keyed.len());
        for ((path, w), current) in keyed.into_iter().zip(currents) {
            let uri = format!("at://{did}/{path}");
            let plan = match w {
                PreparedWrite::Create { record, .. } => {
                    if current.is_some() {
                        return Err(RepoWriteError::RecordAlreadyExists { uri }.into());
                    }
                    Planned {
                        op: Some(RecordWrite::Create {
                            key: path.clone(),
                            cid: record.cid,
                        }),
                        path,
                        uri,
                        record: Some(record.clone()),
                        delete: false,
                    }
                }
                PreparedWrite::Update { record, swap, .. } => {
                    check_swap(&uri, *swap, current)?;
                    let op = match current {
                        Some(c) if c == record.cid => None,
                        Some(_) => Some(RecordWrite::Update {
                            key: path.clone(),
                            cid: record.cid,
                        }),
                        None => Some(RecordWrite::Create {
                            key: path.clone(),
                            cid: record.cid,
                        }),
                    };
                    Planned {
                        op,
                        path,
                        uri,
                        record: Some(record.clone()),
                        delete: false,
                    }
                }
                PreparedWrite::Delete { swap, .. } => {
                    check_swap(&uri, *swap, current)?;
                    Planned {
                        op: current.map(|_| RecordWrite::Delete { key: path.clone() }),
                        path,
                        uri,
                        record: None,
                        delete: true,
                    }
                }
            };
            plans.push(plan);
        }

        if plans.iter().all(|p| p.op.is_none()) {
            // Nothing changes: no commit (the lock is released on drop).
            return Ok(CommitOutcome {
                commit: None,
                results: plans.iter().map(unchanged_result).collect(),
            });
        }

        let rev = self.clock.next();
        let head_ref = RepoHead {
            commit: head.commit,
            data: head.data,
        };
        let result = fetcher
            .run(&mut view, |v| {
                build_commit(
                    v,
                    did_parsed.clone(),
                    rev.clone(),
                    Some(head_ref),
                    &plans,
                    signing_key,
                )
            })
            .await
            .map_err(|e| (e, root.cid));
        let result = self.settle(did, result).await?;
        let commit_cid = result.commit_cid;
        let rev_s = result.commit.rev.as_str().to_owned();
        let (data, results) = self.commit_data(did, Some(&head), &plans, result)?;
        let cacheable: Vec<(Cid, Vec<u8>)> = {
            let records: HashSet<Cid> = plans
                .iter()
                .filter_map(|p| p.record.as_ref().map(|r| r.cid))
                .collect();
            data.put_blocks
                .iter()
                .filter(|(c, _)| !records.contains(c))
                .cloned()
                .collect()
        };
        let replaced = data.delete_blocks.clone();
        let out = txn.commit(data).await.map_err(Retry::from)?;
        // The new MST nodes and commit are the next write's path; the
        // replaced ones are dead.
        self.cache.forget(&replaced);
        for (c, b) in cacheable {
            self.cache.put(c, Bytes::from(b));
        }
        Ok(CommitOutcome {
            commit: Some(CommitInfo {
                cid: commit_cid,
                rev: rev_s,
                seq: out.seqs.first().copied().unwrap_or_default(),
                unreferenced_blobs: out.unreferenced_blobs,
            }),
            results,
        })
    }

    /// A block missing from storage during an attempt usually means that
    /// another process moved the root since the lock was taken and
    /// collected the old tree's nodes (SQLite): that is a conflict to retry.
    /// Only a block missing under an unchanged root is an error.
    async fn settle<T>(
        &self,
        did: &str,
        r: std::result::Result<T, (RepoWriteError, Cid)>,
    ) -> std::result::Result<T, Retry> {
        match r {
            Ok(v) => Ok(v),
            Err((RepoWriteError::MissingBlock(c), expected)) => {
                match self.store.repo().get_root(did).await {
                    Ok(Some(now)) if now.cid != expected => Err(Retry::Conflict),
                    Ok(_) => Err(Retry::Fail(RepoWriteError::MissingBlock(c))),
                    Err(e) => Err(Retry::from(e)),
                }
            }
            Err((e, _)) => Err(Retry::Fail(e)),
        }
    }

    /// The store's commit data (blocks, index changes, GC, the `#commit`
    /// event) for a built commit.
    fn commit_data(
        &self,
        did: &str,
        head: Option<&Head>,
        plans: &[Planned],
        result: CommitResult,
    ) -> Result<(RepoCommitData, Vec<WriteResult>)> {
        let CommitResult {
            commit,
            commit_cid,
            prev_data,
            new_blocks,
            ops,
            sync_blocks,
            removed,
            ..
        } = result;
        let rev = commit.rev.as_str().to_owned();

        // The event's CAR: the commit block first.
        let commit_bytes = sync_blocks
            .get(&commit_cid)
            .cloned()
            .ok_or_else(|| RepoWriteError::Internal("commit block not produced".into()))?;
        let car = write_car(
            &[commit_cid],
            std::iter::once((&commit_cid, &commit_bytes[..])).chain(
                sync_blocks
                    .iter()
                    .filter(|(c, _)| **c != commit_cid)
                    .map(|(c, b)| (c, &b[..])),
            ),
        );
        if car.len() > self.config.max_commit_blocks_bytes {
            return Err(RepoWriteError::CommitTooLarge {
                size: car.len(),
                max: self.config.max_commit_blocks_bytes,
            });
        }

        let mut data = RepoCommitData::new(commit_cid, rev.clone());
        data.put_blocks = new_blocks
            .into_iter()
            .map(|(c, b)| (c, b.to_vec()))
            .collect();
        // Removed MST nodes and the previous commit are unreachable for sure
        // (an MST node or commit never equals a record block: records have
        // a `$type`). Blocks of replaced or deleted records are collected by
        // the store in the commit's transaction, once no record of the
        // repository names them (an identical record elsewhere may share
        // the block).
        let mut doomed: Vec<Cid> = removed;
        if let Some(h) = head {
            doomed.push(h.commit);
        }
        data.delete_blocks = doomed;

        let mut results = Vec::with_capacity(plans.len());
        for p in plans {
            let (collection, rkey) = p.path.split_once('/').unwrap_or((p.path.as_str(), ""));
            match (&p.op, &p.record) {
                (Some(RecordWrite::Delete { .. }), _) => {
                    data.record_deletes.push(RecordDelete {
                        collection: collection.to_owned(),
                        rkey: rkey.to_owned(),
                    });
                }
                (Some(_), Some(rec)) => data.record_puts.push(RecordPut {
                    collection: collection.to_owned(),
                    rkey: rkey.to_owned(),
                    cid: rec.cid,
                    blobs: rec.blobs.clone(),
                }),
                _ => {}
            }
            results.push(WriteResult {
                uri: p.uri.clone(),
                cid: if p.delete {
                    None
                } else {
                    p.record.as_ref().map(|r| r.cid)
                },
                validation_status: p.record.as_ref().and_then(|r| r.status),
                changed: p.op.is_some(),
            });
        }

        data.events = vec![CommitEventData {
            did: did.to_owned(),
            commit: commit_cid,
            rev,
            since: head.map(|h| h.rev.clone()),
            blocks: car,
            ops,
            prev_data: Some(prev_data),
        }
        .into_event()];
        Ok((data, results))
    }
}

fn unchanged_result(p: &Planned) -> WriteResult {
    WriteResult {
        uri: p.uri.clone(),
        cid: if p.delete {
            None
        } else {
            p.record.as_ref().map(|r| r.cid)
        },
        validation_status: p.record.as_ref().and_then(|r| r.status),
        changed: false,
    }
}

/// Runs the MST writes and signs the commit (synchronous; may stop on a
/// missing block).
fn build_commit(
    view: &dyn atproto_repo::BlockStore,
    did: Did,
    rev: Tid,
    head: Option<RepoHead>,
    plans: &[Planned],
    key: &PrivateKey,
) -> std::result::Result<CommitResult, Halt> {
    let mut writes = Vec::with_capacity(plans.len());
    let mut records = BlockMap::new();
    for p in plans {
        if let Some(op) = &p.op {
            writes.push(op.clone());
            if let (Some(rec), RecordWrite::Create { .. } | RecordWrite::Update { .. }) =
                (&p.record, op)
            {
                records.put(rec.cid, rec.bytes.clone());
            }
        }
    }
    apply_writes(view, did, rev, head, &writes, &records, key).map_err(repo_halt)
}

/// A randomised, exponentially growing pause before retrying a write that
/// lost a race with another process (at most ~100 ms).
fn backoff(attempt: u32) -> std::time::Duration {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let ceiling_us = (1000u64 << attempt.min(7)).min(100_000);
    std::time::Duration::from_micros(u64::from(jitter) % ceiling_us + 100)
}

/// Why an attempt ended without a result.
enum Retry {
    /// Another writer moved the root: try again.
    Conflict,
    Fail(RepoWriteError),
}

impl From<RepoWriteError> for Retry {
    fn from(e: RepoWriteError) -> Self {
        Retry::Fail(e)
    }
}

impl From<StoreError> for Retry {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RepoConflict { .. } => Retry::Conflict,
            e => Retry::Fail(e.into()),
        }
    }
}
