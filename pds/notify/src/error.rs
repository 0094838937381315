//! Error types.

use pds_store::StoreError;

/// Errors of the queue and of configuration.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification store: {0}")]
    Store(#[from] StoreError),
    #[error("notification: {0}")]
    Render(#[from] RenderError),
    #[error("notification configuration: {0}")]
    Config(String),
}

/// A stored notification that cannot be rendered (never retried).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("payload of a {kind:?} notification: {source}")]
    Payload {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("notification kind {kind:?} holds a {payload_kind:?} payload")]
    KindMismatch { kind: String, payload_kind: String },
    #[error("encoding a notification payload: {0}")]
    Encode(#[source] serde_json::Error),
}

/// A failed delivery attempt. [`SendError::is_permanent`] tells the worker
/// whether retrying can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient cannot be addressed on this channel.
    #[error("invalid recipient {recipient:?}: {reason}")]
    InvalidRecipient { recipient: String, reason: String },
    /// The configured sender address is not a valid mailbox.
    #[error("invalid from address {address:?}: {reason}")]
    InvalidFrom { address: String, reason: String },
    /// The message could not be built.
    #[error("building the email: {0}")]
    Email(#[from] lettre::error::Error),
    /// The SMTP server refused or the connection failed.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The sendmail program failed.
    #[error("sendmail: {0}")]
    Sendmail(#[from] lettre::transport::sendmail::Error),
    /// The HTTP request did not complete.
    #[error("{service} request failed: {source}")]
    Http {
        service: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error status.
    #[error("{service} answered HTTP {status}: {body}")]
    Status {
        service: &'static str,
        status: u16,
        body: String,
    },
    /// The API answered success but not in the expected form.
    #[error("{service} answered unexpectedly: {detail}")]
    BadResponse {
        service: &'static str,
        detail: String,
    },
    /// The attempt took longer than the worker's send timeout.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A failure reported by another [`crate::Sender`] implementation.
    #[error("{message}")]
    Other { message: String, permanent: bool },
}

impl SendError {
    /// A failure worth retrying later.
    pub fn transient(message: impl Into<String>) -> SendError {
        SendError::Other {
            message: message.into(),
            permanent: false,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> SendError {
        SendError::Other {
            message: message.into(),
            permanent: true,
        }
    }

    /// Whether retrying cannot help: bad addresses, SMTP 5xx replies, HTTP
    /// 4xx answers other than 408 and 429.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::InvalidRecipient { .. }
            | SendError::InvalidFrom { .. }
            | SendError::Email(_) => true,
            SendError::Smtp(e) => e.is_permanent(),
            SendError::Sendmail(_) => false,
            SendError::Http { .. } => false,
            SendError::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            SendError::BadResponse { .. } => false,
            SendError::Timeout(_) => false,
            SendError::Other { permanent, .. } => *permanent,
        }
    }
}
