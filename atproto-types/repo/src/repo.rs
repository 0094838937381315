//! Applying a batch of record writes to a repository: one new signed commit.

use atproto_crypto::PrivateKey;
use atproto_syntax::{Did, Tid};
use bytes::Bytes;
use cid::Cid;

use crate::blockstore::{BlockMap, BlockStore, LayeredStore};
use crate::commit::{Commit, UnsignedCommit};
use crate::mst::{empty_root_cid, Mst, MstError};
use crate::sync::{inversion_blocks, RepoOp};

/// One record write. `key` is the MST key `<collection>/<record-key>`; the
/// record's block itself is supplied separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordWrite {
    /// Add a record that must not exist yet.
    Create {
        /// `<collection>/<record-key>`.
        key: String,
        /// The record's CID.
        cid: Cid,
    },
    /// Replace a record that must exist.
    Update {
        /// `<collection>/<record-key>`.
        key: String,
        /// The new record CID.
        cid: Cid,
    },
    /// Remove a record that must exist.
    Delete {
        /// `<collection>/<record-key>`.
        key: String,
    },
}

impl RecordWrite {
    /// The write's key.
    pub fn key(&self) -> &str {
        match self {
            RecordWrite::Create { key, .. }
            | RecordWrite::Update { key, .. }
            | RecordWrite::Delete { key } => key,
        }
    }
}

/// The repository state a commit builds on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepoHead {
    /// The current commit's CID.
    pub commit: Cid,
    /// The current MST root (the commit's `data`).
    pub data: Cid,
}

/// Why a batch of writes could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// An MST operation failed: a missing block, a create of an existing
    /// key, an update or delete of an absent one, an invalid key.
    #[error(transparent)]
    Mst(#[from] MstError),
    /// Two writes to one key in a batch.
    #[error("more than one write to {0}")]
    DuplicateKey(String),
    /// A created or updated record's block was not supplied.
    #[error("record block {cid} for {key} was not supplied")]
    MissingRecord {
        /// The key written.
        key: String,
        /// The record CID.
        cid: Cid,
    },
}

/// Everything a commit produces.
#[derive(Debug, Clone)]
pub struct CommitResult {
    /// The signed commit.
    pub commit: Commit,
    /// The commit block's CID.
    pub commit_cid: Cid,
    /// The new MST root (`commit.data`).
    pub data: Cid,
    /// The MST root before the commit (`prevData` of the `#commit` event).
    pub prev_data: Cid,
    /// All new blocks to store: the supplied record blocks that are written,
    /// the new MST nodes and the commit block.
    pub new_blocks: BlockMap,
    /// The operations, in the order given, with previous CIDs.
    pub ops: Vec<RepoOp>,
    /// The blocks of the sync 1.1 `#commit` event: the commit, the new
    /// record blocks, and every MST node needed to invert the ops.
    pub sync_blocks: BlockMap,
    /// MST node CIDs of the previous tree that the new tree no longer holds.
    /// (The previous commit block is superseded too: see `prev` on the
    /// commit. Record blocks of updated and deleted records are the ops'
    /// `prev` CIDs; they may still be referenced by other records.)
    pub removed: Vec<Cid>,
}

/// Apply `writes` to the repository at `head` (None: a new, empty
/// repository), producing a commit signed with `key`.
///
/// `store` holds the current repository's blocks; only the MST nodes the
/// writes touch are read. `records` holds the blocks of created and updated
/// records. The store is not modified: persist `new_blocks`, drop
/// `removed`, and move the head to `commit_cid`.
pub fn apply_writes<S: BlockStore + ?Sized>(
    store: &S,
    did: Did,
    rev: Tid,
    head: Option<RepoHead>,
    writes: &[RecordWrite],
    records: &BlockMap,
    key: &PrivateKey,
) -> Result<CommitResult, RepoError> {
    let mut seen = std::collections::HashSet::new();
    for w in writes {
        if !seen.insert(w.key()) {
            return Err(RepoError::DuplicateKey(w.key().to_owned()));
        }
    }
    let (mut mst, prev_data) = match head {
        Some(h) => (Mst::load(store, h.data)?, h.data),
        None => (Mst::new(), empty_root_cid()),
    };
    let mut ops = Vec::with_capacity(writes.len());
    let mut record_blocks = BlockMap::new();
    for w in writes {
        match w {
            RecordWrite::Create { key, cid } => {
                mst.insert(store, key, *cid)?;
                ops.push(RepoOp::create(key.clone(), *cid));
            }
            RecordWrite::Update { key, cid } => {
                let prev = mst.update(store, key, *cid)?;
                ops.push(RepoOp::update(key.clone(), *cid, prev));
            }
            RecordWrite::Delete { key } => {
                let prev = mst.delete(store, key)?;
                ops.push(RepoOp::delete(key.clone(), prev));
            }
        }
        if let RecordWrite::Create { key, cid } | RecordWrite::Update { key, cid } = w {
            let bytes: Bytes =
                records
                    .get(cid)
                    .cloned()
                    .ok_or_else(|| RepoError::MissingRecord {
                        key: key.clone(),
                        cid: *cid,
                    })?;
            record_blocks.put(*cid, bytes);
        }
    }
    let sealed = mst.commit(store)?;
    let data = sealed.root;
    let commit = UnsignedCommit::new(did, data, rev, head.map(|h| h.commit)).sign(key);
    let (commit_cid, commit_bytes) = commit.to_block();

    // The proof nodes come from the new tree: new nodes first, then the old store.
    let layered = LayeredStore {
        first: &sealed.new_blocks,
        second: store,
    };
    let proof = inversion_blocks(&layered, data, &ops)?;

    let mut sync_blocks = BlockMap::new();
    sync_blocks.put(commit_cid, commit_bytes.clone());
    sync_blocks.extend_from(&record_blocks);
    sync_blocks.extend_from(&sealed.new_blocks);
    sync_blocks.extend(proof);

    let mut new_blocks = record_blocks;
    new_blocks.extend(sealed.new_blocks);
    new_blocks.put(commit_cid, commit_bytes);

    Ok(CommitResult {
        commit,
        commit_cid,
        data,
        prev_data,
        new_blocks,
        ops,
        sync_blocks,
        removed: sealed.removed,
    })
}
