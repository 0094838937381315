//! Internal errors of the server, mapped once to XRPC errors at the HTTP
//! edge (`From<ApiError> for XrpcError<E>`): client-caused conditions are
//! answered by handlers with their XRPC names directly; what reaches this
//! mapping is a failure of the server or of a service it depends on.

use atproto_types::xrpc::XrpcError;
use pds_repo::RepoWriteError;
use pds_store::StoreError;

use crate::jwt::TokenError;
use crate::keys::KeyCipherError;
use crate::plc::PlcError;

/// What can go wrong inside a handler besides a bad request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The database or blob store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The repository write path failed.
    #[error("repository: {0}")]
    Repo(#[from] RepoWriteError),
    /// The PLC directory refused or could not be reached.
    #[error("PLC directory: {0}")]
    Plc(#[from] PlcError),
    /// A signing key could not be sealed or opened.
    #[error("signing key: {0}")]
    KeyCipher(#[from] KeyCipherError),
    /// Signing a session token failed.
    #[error("session token: {0}")]
    Token(#[from] TokenError),
    /// A blocking task (password hashing) failed to run.
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// Anything else that is the server's fault.
    #[error("{0}")]
    Internal(String),
}

impl<E> From<ApiError> for XrpcError<E> {
    fn from(e: ApiError) -> XrpcError<E> {
        match e {
            ApiError::Plc(PlcError::Rejected { status, message }) => {
                tracing::warn!(status, %message, "PLC directory rejected an operation");
                XrpcError::upstream_failure(format!(
                    "PLC directory rejected the operation: {message}"
                ))
            }
            ApiError::Plc(err @ PlcError::Unreachable(_)) => {
                tracing::error!(error = %err, "PLC directory unreachable");
                XrpcError::upstream_failure("PLC directory unreachable")
            }
            other => {
                tracing::error!(error = %other, "internal error");
                XrpcError::internal(other.to_string())
            }
        }
    }
}
