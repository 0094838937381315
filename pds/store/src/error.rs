//! The one error type of the storage layer.

use std::io;

/// Errors returned by every store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database driver failed (connection, I/O, constraint not mapped below).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite failed on the calling thread (the hot paths, see `inline`).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Filesystem or stream I/O failed (blob stores, data directory).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The configuration is unusable.
    #[error("invalid store configuration: {0}")]
    Config(String),
    /// A stored value could not be decoded (a CID, a status string...).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A caller-supplied value was rejected before touching the database.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The repository root changed since the caller read it (compare-and-swap failed),
    /// or the repository was created concurrently. Nothing was written.
    #[error("repository {did} changed concurrently: expected root {expected:?}, found {found:?}")]
    RepoConflict {
        did: String,
        expected: Option<String>,
        found: Option<String>,
    },
    /// The new revision does not sort after the current one.
    #[error("repository {did}: new rev {new_rev} is not after current rev {current_rev}")]
    RevNotIncreasing {
        did: String,
        current_rev: String,
        new_rev: String,
    },
    /// A block's bytes do not hash to its CID.
    #[error("block {0} does not match its CID")]
    BlockCidMismatch(String),
    /// The new root block is neither written by the commit nor already stored.
    #[error("commit root block {0} is missing")]
    MissingRootBlock(String),
    /// A record references a blob that this account has not uploaded.
    #[error("blob {0} not found for this account")]
    BlobNotFound(String),
    /// The account does not exist.
    #[error("account {0} not found")]
    AccountNotFound(String),
    /// The DID is already registered.
    #[error("DID already registered")]
    DidTaken,
    /// The handle is already in use.
    #[error("handle already taken")]
    HandleTaken,
    /// The email is already in use.
    #[error("email already taken")]
    EmailTaken,
    /// The invite code does not exist, is disabled, or has no uses left.
    #[error("invite code not available")]
    InviteCodeUnavailable,
    /// An app password with this name already exists for the account.
    #[error("app password name already in use")]
    AppPasswordExists,
    /// A unique value (token id, code...) already exists.
    #[error("duplicate value: {0}")]
    Duplicate(String),
    /// An uploaded blob exceeded the size limit.
    #[error("blob larger than {limit} bytes")]
    BlobTooLarge { limit: u64 },
    /// S3 or another remote blob backend failed.
    #[error("blob backend error: {0}")]
    Backend(String),
}

/// Result alias of the crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// If `err` is a unique-constraint violation, the constraint name (PostgreSQL)
/// or message (SQLite) that identifies the column; otherwise `None`.
pub(crate) fn unique_violation(err: &sqlx::Error) -> Option<String> {
    if let sqlx::Error::Database(db) = err {
        if db.kind() == sqlx::error::ErrorKind::UniqueViolation {
            let what = db
                .constraint()
                .map(str::to_owned)
                .unwrap_or_else(|| db.message().to_owned());
            return Some(what);
        }
    }
    None
}

/// True when `err` is a foreign-key violation.
pub(crate) fn is_fk_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}
