//! The state every handler shares.

use std::ops::Deref;
use std::sync::Arc;

use atproto_types::crypto::PrivateKey;
use atproto_types::xrpc::{BodyLimits, XrpcState};
use pds_firehose::Firehose;
use pds_notify::Notifier;
use pds_repo::RepoWriter;
use pds_store::blobstore::BlobStore;
use pds_store::Store;

use crate::config::Config;
use crate::identity::IdentityResolver;
use crate::jwt::TokenSigner;
use crate::keys::KeyCipher;
use crate::plc::PlcClient;

/// Largest JSON request body (the reference's 150 KiB).
pub const JSON_BODY_LIMIT: usize = 150 * 1024;

/// Largest `com.atproto.repo.importRepo` CAR (at least the blob limit).
pub const IMPORT_BODY_LIMIT: u64 = 100 * 1024 * 1024;

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    pub config: Config,
    pub store: Store,
    pub blobstore: Arc<dyn BlobStore>,
    /// The repository write path.
    pub repo: RepoWriter,
    /// `com.atproto.sync.subscribeRepos`.
    pub firehose: Firehose,
    /// Queues outgoing notifications (emailed tokens); a worker sends them.
    pub notifier: Notifier,
    pub tokens: TokenSigner,
    pub admin_password: String,
    pub plc_rotation_key: PrivateKey,
    pub key_cipher: KeyCipher,
    pub plc: PlcClient,
    /// DID and handle resolution (cached).
    pub identity: IdentityResolver,
    pub http: reqwest::Client,
    /// The client of the service proxy ([`crate::proxy`]): no redirects,
    /// no overall timeout (bodies stream), five minutes without data at most.
    pub proxy_http: reqwest::Client,
    /// An Argon2id hash of a random password: verified against when a
    /// login names no account, so unknown users cost the same time.
    pub dummy_password_hash: String,
    /// The rate limiter, when `PDS_RATE_LIMITS_ENABLED`.
    pub rate_limits: Option<crate::rate_limit::RateLimiter>,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> AppState {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl XrpcState for AppState {
    fn body_limits(&self, nsid: &'static str) -> BodyLimits {
        let binary = if nsid == "com.atproto.repo.importRepo" {
            self.config.blob_upload_limit.max(IMPORT_BODY_LIMIT)
        } else {
            self.config.blob_upload_limit
        };
        BodyLimits {
            json: JSON_BODY_LIMIT,
            binary,
        }
    }
}
