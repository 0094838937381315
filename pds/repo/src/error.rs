//! The error type of the repository write path.

use cid::Cid;
use pds_store::StoreError;

/// Why a repository write (or read) failed. The HTTP edge maps each variant
/// to an XRPC error; the mapping is noted on each.
#[derive(Debug, thiserror::Error)]
pub enum RepoWriteError {
    /// `swapCommit` or `swapRecord` did not match the current state
    /// (XRPC `InvalidSwap`, 400).
    #[error("{0}")]
    InvalidSwap(String),
    /// The request is malformed or a record is invalid: the message names
    /// the write and the path in the record (XRPC `InvalidRequest`, 400).
    #[error("{0}")]
    InvalidRequest(String),
    /// A create names a record that already exists (XRPC
    /// `RecordAlreadyExists` in recent lexicons, else `InvalidRequest`, 400).
    #[error("record already exists: {uri}")]
    RecordAlreadyExists {
        /// `at://did/collection/rkey`.
        uri: String,
    },
    /// A record references a blob this account never uploaded (XRPC
    /// `InvalidRequest` / `BlobNotFound`, 400).
    #[error("could not find blob: {0}")]
    BlobNotFound(String),
    /// The account has no repository (XRPC `RepoNotFound`, 400).
    #[error("could not find repo: {0}")]
    RepoNotFound(String),
    /// The account already has a repository (on creation).
    #[error("repo already exists: {0}")]
    RepoAlreadyExists(String),
    /// More writes in one batch than allowed (XRPC `InvalidRequest`, 400).
    #[error("too many writes: {count} (at most {max} per commit)")]
    TooManyWrites {
        /// Writes in the batch.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The commit's event blocks exceed the firehose limit (XRPC
    /// `InvalidRequest`, 400).
    #[error("commit too large: {size} bytes of blocks (at most {max})")]
    CommitTooLarge {
        /// Size of the `#commit` event's CAR.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The repository changed under the write more often than the retry
    /// budget allows (XRPC `InternalServerError`, 500; the client may retry).
    #[error("repository {0} kept changing concurrently; gave up")]
    Conflict(String),
    /// A stored block the write needs is missing (storage corruption; 500).
    #[error("repository block {0} is missing from storage")]
    MissingBlock(Cid),
    /// Anything else: storage, encoding (XRPC `InternalServerError`, 500).
    #[error("internal error: {0}")]
    Internal(String),
}

impl RepoWriteError {
    /// An internal error from any displayable cause.
    pub(crate) fn internal(e: impl std::fmt::Display) -> RepoWriteError {
        RepoWriteError::Internal(e.to_string())
    }
}

impl From<StoreError> for RepoWriteError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BlobNotFound(cid) => RepoWriteError::BlobNotFound(cid),
            StoreError::AccountNotFound(did) => RepoWriteError::RepoNotFound(did),
            other => RepoWriteError::Internal(other.to_string()),
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = RepoWriteError> = std::result::Result<T, E>;
