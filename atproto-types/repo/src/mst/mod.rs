//! The Merkle Search Tree (MST) of a repository.
//!
//! Keys are repository paths (`<collection>/<record-key>`); values are
//! record CIDs. A key's height is the number of leading zero bits of its
//! SHA-256 hash counted in 2-bit chunks (fanout 4); a node at height `h`
//! holds the keys of height `h` in its range as entries, with subtrees of
//! height `h - 1` for the gaps between them. The root is at the height of
//! the highest key, so the structure (and so the root CID) depends only on
//! the set of keys and values, never on the order of operations.

mod diff;
mod key;
mod node;
mod proof;
mod tree;

use cid::Cid;

pub use diff::{diff, DiffOp, MstDiff};
pub use key::{common_prefix_len, key_height, validate_key, InvalidKey, MAX_KEY_LEN};
pub use node::{decode_node, encode_node_data, NodeData, NodeEntry, NodeError};
pub use proof::{covering_proof, proof_path};
pub use tree::{empty_root_cid, ListOptions, Mst, MstCommit};

use crate::blockstore::BlockStoreError;

/// Errors from MST operations.
#[derive(Debug, thiserror::Error)]
pub enum MstError {
    /// A node block the operation needs is not in the store. Fetch it and
    /// retry: the tree was left unchanged.
    #[error("missing MST block {0}")]
    MissingBlock(Cid),
    /// The block store failed.
    #[error(transparent)]
    Store(#[from] BlockStoreError),
    /// A block is not a valid MST node, or is misplaced in the tree.
    #[error("invalid MST node {cid}: {reason}")]
    InvalidNode {
        /// The offending block.
        cid: Cid,
        /// Why.
        reason: String,
    },
    /// The key does not follow the MST key rules.
    #[error(transparent)]
    InvalidKey(#[from] InvalidKey),
    /// Insert of a key that is present.
    #[error("key already present: {0}")]
    KeyExists(String),
    /// Update or delete of a key that is absent.
    #[error("key not found: {0}")]
    KeyNotFound(String),
}
