//! Errors.

use pds_store::StoreError;

/// What can go wrong starting the firehose.
#[derive(Debug, thiserror::Error)]
pub enum FirehoseError {
    /// The store could not be read.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}
