//! The PDS's repository write path.
//!
//! [`RepoWriter`] turns the writes of `com.atproto.repo.*` (create, put,
//! delete, applyWrites) into one signed commit each:
//!
//! 1. every record is prepared once, outside the lock: `$type` defaulted,
//!    validated against the lexicon catalog per the `validate` mode, blob
//!    references collected, encoded to DAG-CBOR (see [`Write`]);
//! 2. under the repository's write lock ([`pds_store::Repos::begin_write`])
//!    the MST is loaded lazily: the synchronous MST code reports a missing
//!    block, the writer fetches it (together with every other block known
//!    to be missing, in one round trip) and retries; a process-wide
//!    CID-keyed LRU ([`BlockCache`]) keeps the nodes of earlier writes;
//! 3. swaps are checked, generated record keys and the rev come from a
//!    monotonic TID clock kept above the repository's last rev, the commit
//!    is built and signed, and the `#commit` event (sync 1.1: ops with
//!    `prev`, `prevData`, a CAR sufficient to invert the ops) is handed to
//!    the sequencer, which stores the whole frame with its seq and time;
//! 4. the store applies blocks, garbage collection, the record index, blob
//!    references and the event in one transaction; a root moved by another
//!    process (SQLite compare-and-swap) makes the writer redo the write.
//!
//! [`events`] has the builders of `#sync`, `#identity` and `#account`
//! events; [`reads`] has the repository CAR export and record proofs used
//! by `com.atproto.sync.getRepo` / `getRecord`.

mod blocks;
mod cache;
mod error;
pub mod events;
mod gc;
mod import;
mod prepare;
pub mod reads;
mod writer;

pub use cache::{BlockCache, CacheStats, DEFAULT_CACHE_BYTES};
pub use error::{RepoWriteError, Result};
pub use import::ImportOutcome;
pub use prepare::{ValidationStatus, Write};
pub use writer::{
    CommitInfo, CommitOutcome, GenesisCommit, RepoWriter, RepoWriterConfig, WriteResult,
    MAX_COMMIT_BLOCKS_BYTES, MAX_WRITES,
};
