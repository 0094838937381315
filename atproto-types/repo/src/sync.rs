//! Sync 1.1: checking a `#commit` event by inverting its operations.
//!
//! A `#commit` event carries the operations of one commit (action, path, new
//! CID, previous CID), the previous MST root (`prevData`), and a CAR of
//! blocks: the commit, the new records, and the MST nodes needed to undo the
//! operations. A consumer without a copy of the repository checks the event
//! by loading the partial MST rooted at the commit's `data` from those blocks
//! only, applying each operation in reverse (a create becomes a delete, a
//! delete re-inserts the previous CID, an update restores it), and comparing
//! the resulting root with `prevData`. The result does not depend on the
//! order in which the operations are inverted.

use std::collections::HashSet;

use cid::Cid;

use crate::blockstore::{BlockMap, BlockStore};
use crate::car::{load_car, CarError};
use crate::commit::{Commit, CommitError};
use crate::mst::{covering_proof, Mst, MstError};

/// The action of one repository operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpAction {
    /// A new record.
    Create,
    /// A changed record.
    Update,
    /// A removed record.
    Delete,
}

impl OpAction {
    /// The action's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OpAction::Create => "create",
            OpAction::Update => "update",
            OpAction::Delete => "delete",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create" => Some(OpAction::Create),
            "update" => Some(OpAction::Update),
            "delete" => Some(OpAction::Delete),
            _ => None,
        }
    }
}

/// One operation of a commit, as carried in a `#commit` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoOp {
    /// What happened.
    pub action: OpAction,
    /// The MST key, `<collection>/<record-key>`.
    pub path: String,
    /// The new record CID (creates and updates).
    pub cid: Option<Cid>,
    /// The previous record CID (updates and deletes).
    pub prev: Option<Cid>,
}

impl RepoOp {
    /// A create.
    pub fn create(path: impl Into<String>, cid: Cid) -> Self {
        RepoOp {
            action: OpAction::Create,
            path: path.into(),
            cid: Some(cid),
            prev: None,
        }
    }

    /// An update from `prev` to `cid`.
    pub fn update(path: impl Into<String>, cid: Cid, prev: Cid) -> Self {
        RepoOp {
            action: OpAction::Update,
            path: path.into(),
            cid: Some(cid),
            prev: Some(prev),
        }
    }

    /// A delete of `prev`.
    pub fn delete(path: impl Into<String>, prev: Cid) -> Self {
        RepoOp {
            action: OpAction::Delete,
            path: path.into(),
            cid: None,
            prev: Some(prev),
        }
    }
}

/// Why a commit's operations could not be inverted or did not check out.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An operation is missing a CID its action requires, or has one it
    /// must not have.
    #[error("malformed op on {path}: {reason}")]
    MalformedOp {
        /// The op's path.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Two operations on one path.
    #[error("more than one op on {0}")]
    DuplicatePath(String),
    /// An op does not match the tree (e.g. a create whose key holds another
    /// CID, or a delete of a key that is still present).
    #[error("op on {path} does not match the tree: {reason}")]
    OpMismatch {
        /// The op's path.
        path: String,
        /// What did not match.
        reason: String,
    },
    /// The MST operation failed (including a block missing from the event).
    #[error(transparent)]
    Mst(#[from] MstError),
    /// The inverted tree's root differs from `prevData`.
    #[error("inverted root {} does not match prevData {}", .0.got, .0.expected)]
    RootMismatch(Box<RootMismatch>),
    /// The CAR is malformed.
    #[error(transparent)]
    Car(#[from] CarError),
    /// The CAR's root is missing from its blocks or is not a commit.
    #[error("commit block: {0}")]
    Commit(#[from] CommitError),
    /// The CAR names no root, or its root block is absent.
    #[error("the CAR has no commit block")]
    NoCommit,
}

/// The roots of a failed inversion check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootMismatch {
    /// The root after inversion.
    pub got: Cid,
    /// The claimed previous root.
    pub expected: Cid,
}

fn check_ops(ops: &[RepoOp]) -> Result<(), SyncError> {
    let mut seen = HashSet::new();
    for op in ops {
        let bad = |reason| SyncError::MalformedOp {
            path: op.path.clone(),
            reason,
        };
        match op.action {
            OpAction::Create if op.cid.is_none() => return Err(bad("create without cid")),
            OpAction::Update if op.cid.is_none() || op.prev.is_none() => {
                return Err(bad("update needs cid and prev"))
            }
            OpAction::Delete if op.prev.is_none() => return Err(bad("delete without prev")),
            OpAction::Delete if op.cid.is_some() => return Err(bad("delete with a cid")),
            _ => {}
        }
        if !seen.insert(op.path.as_str()) {
            return Err(SyncError::DuplicatePath(op.path.clone()));
        }
    }
    Ok(())
}

/// Undo `ops` on the tree rooted at `data`, reading only from `blocks`, and
/// return the resulting root (the root before the commit, if the event is
/// honest). Ops are inverted in the given order.
pub fn invert_ops<S: BlockStore + ?Sized>(
    blocks: &S,
    data: Cid,
    ops: &[RepoOp],
) -> Result<Cid, SyncError> {
    check_ops(ops)?;
    let mut mst = Mst::load(blocks, data)?;
    for op in ops {
        let mismatch = |reason: String| SyncError::OpMismatch {
            path: op.path.clone(),
            reason,
        };
        match (op.action, op.cid, op.prev) {
            (OpAction::Create, Some(cid), _) => match mst.delete(blocks, &op.path) {
                Ok(found) if found == cid => {}
                Ok(found) => return Err(mismatch(format!("tree holds {found}, op says {cid}"))),
                Err(MstError::KeyNotFound(_)) => {
                    return Err(mismatch("created key is not in the tree".into()))
                }
                Err(e) => return Err(e.into()),
            },
            (OpAction::Update, Some(cid), Some(prev)) => match mst.update(blocks, &op.path, prev) {
                Ok(found) if found == cid => {}
                Ok(found) => return Err(mismatch(format!("tree holds {found}, op says {cid}"))),
                Err(MstError::KeyNotFound(_)) => {
                    return Err(mismatch("updated key is not in the tree".into()))
                }
                Err(e) => return Err(e.into()),
            },
            (OpAction::Delete, None, Some(prev)) => match mst.insert(blocks, &op.path, prev) {
                Ok(()) => {}
                Err(MstError::KeyExists(_)) => {
                    return Err(mismatch("deleted key is still in the tree".into()))
                }
                Err(e) => return Err(e.into()),
            },
            _ => {
                return Err(SyncError::MalformedOp {
                    path: op.path.clone(),
                    reason: "inconsistent cid/prev for the action",
                })
            }
        }
    }
    Ok(mst.root(blocks)?)
}

/// Invert `ops` over `blocks` from `data` and check the result is `prev_data`.
pub fn verify_ops<S: BlockStore + ?Sized>(
    blocks: &S,
    data: Cid,
    ops: &[RepoOp],
    prev_data: Cid,
) -> Result<(), SyncError> {
    let got = invert_ops(blocks, data, ops)?;
    if got != prev_data {
        return Err(SyncError::RootMismatch(Box::new(RootMismatch {
            got,
            expected: prev_data,
        })));
    }
    Ok(())
}

/// Check a `#commit` event's CAR: decode the commit named by the CAR's
/// first root, check its signature when a key is given, and check that its
/// ops invert to `prev_data` using only the CAR's blocks. Returns the commit.
pub fn verify_commit_car(
    car: &[u8],
    ops: &[RepoOp],
    prev_data: Cid,
    key: Option<&atproto_crypto::PublicKey>,
) -> Result<Commit, SyncError> {
    let (roots, blocks) = load_car(car.to_vec())?;
    let root = roots.first().ok_or(SyncError::NoCommit)?;
    let bytes = blocks.get(root).ok_or(SyncError::NoCommit)?;
    let commit = Commit::from_cbor(bytes)?;
    if let Some(k) = key {
        commit.verify(k)?;
    }
    verify_ops(&blocks, commit.data, ops, prev_data)?;
    Ok(commit)
}

/// The writer's side: the MST node blocks a consumer needs to invert `ops`
/// on the tree rooted at `data`, read from `store` (which must hold the new
/// tree). This is the union of the covering proofs (see
/// [`covering_proof`]) of every op's path in the new tree; the new root is
/// always included. Inversion over these blocks succeeds in any op order.
pub fn inversion_blocks<S: BlockStore + ?Sized>(
    store: &S,
    data: Cid,
    ops: &[RepoOp],
) -> Result<BlockMap, MstError> {
    let mut out = BlockMap::new();
    if let Some(b) = store.get(&data)? {
        out.put(data, b);
    }
    for op in ops {
        out.extend(covering_proof(store, data, &op.path)?);
    }
    Ok(out)
}
