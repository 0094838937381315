//! atproto repositories: the Merkle Search Tree, signed commits (v3), CAR v1
//! files, proofs, and the sync 1.1 operation inversion check.
//!
//! * [`car`]: bounded streaming CAR v1 reader and writer.
//! * [`blockstore`]: the [`BlockStore`] trait and the in-memory [`BlockMap`].
//! * [`mst`]: the lazily loaded MST, diffs and proofs.
//! * [`commit`]: signed commit objects.
//! * [`repo`]: applying a batch of record writes, producing a commit, its
//!   new blocks, its ops and its sync 1.1 block set.
//! * [`sync`]: checking a `#commit` event by inverting its ops over only the
//!   blocks it carries.

pub mod blockstore;
pub mod car;
pub mod commit;
pub mod mst;
pub mod repo;
pub mod sync;

pub use blockstore::{BlockMap, BlockStore, BlockStoreError, MemoryBlockStore};
pub use car::{load_car, CarError, CarLimits, CarReader, CarSliceReader, CarWriter};
pub use cid::Cid;
pub use commit::{Commit, CommitError, UnsignedCommit};
pub use mst::{Mst, MstError};
pub use repo::{apply_writes, CommitResult, RecordWrite, RepoError, RepoHead};
pub use sync::{invert_ops, verify_ops, OpAction, RepoOp, SyncError};
