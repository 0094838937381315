//! atproto repositories: the Merkle Search Tree, signed commits (v3), CAR v1
//! files, proofs, and the sync 1.1 operation inversion check.
//!
//! * [`car`]: bounded streaming CAR v1 reader and writer.
//! * [`blockstore`]: the [`BlockStore`] trait and the in-memory [`BlockMap`].
//! * [`mst`]: the lazily loaded MST, diffs and proofs.

pub mod blockstore;
pub mod car;
mod cbor;
pub mod mst;

pub use blockstore::{BlockMap, BlockStore, BlockStoreError, MemoryBlockStore};
pub use car::{load_car, CarError, CarLimits, CarReader, CarSliceReader, CarWriter};
pub use cbor::CborError;
pub use cid::Cid;
pub use mst::{Mst, MstError};
