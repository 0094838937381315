//! The atproto Personal Data Server.
//!
//! `pds` (or `pds serve`) reads the configuration ([`config`]), resolves
//! its secrets ([`secrets`]), opens the store and serves HTTP until SIGINT
//! or SIGTERM, finishing the requests in flight. The same server runs in
//! process with [`Server::start`] and [`Server::serve`] (the black-box
//! tests do).

pub mod api;
pub mod auth;
pub mod config;
pub mod crawlers;
pub mod error;
pub mod handle;
pub mod housekeeping;
pub mod http;
pub mod identity;
pub mod jose;
pub mod jwt;
pub mod keys;
pub mod plc;
pub mod proxy;
pub mod random;
pub mod rate_limit;
pub mod secrets;
pub mod service_auth;
pub mod session;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use pds_repo::RepoWriter;
use pds_store::blobstore::{BlobStore, DiskBlobStore, S3BlobStore, S3Config};
use pds_store::password::{hash_password, KdfParams};
use pds_store::{Store, StoreConfig, StoreError};
use rand::RngCore;
use tokio::net::TcpListener;

pub use config::Config;

use crate::config::BlobstoreConfig;
use crate::jwt::TokenSigner;
use crate::keys::KeyCipher;
use crate::plc::PlcClient;
use crate::secrets::{Secrets, SecretsError};
use crate::state::{AppState, Inner};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration: {0}")]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Secrets(#[from] SecretsError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("blob store: {0}")]
    Blobstore(StoreError),
    #[error("firehose: {0}")]
    Firehose(#[from] pds_firehose::FirehoseError),
    #[error("repository writer: {0}")]
    Repo(#[from] pds_repo::RepoWriteError),
    #[error("HTTP client: {0}")]
    HttpClient(String),
    #[error("rate limits: {0}")]
    RateLimits(#[from] rate_limit::RateLimitStartError),
    #[error("notifications: {0}")]
    Notify(#[from] pds_notify::NotifyError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Serve(#[source] std::io::Error),
}

/// A started server: state ready, not yet accepting connections.
pub struct Server {
    state: AppState,
    /// Delivers queued notifications (emailed tokens) while serving.
    notify_worker: pds_notify::Worker,
    secrets_generated: Vec<&'static str>,
    secrets_file: std::path::PathBuf,
    admin_password_shown: Option<String>,
}

impl Server {
    /// Resolves secrets, opens the database and blob store.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        let secrets = Secrets::load_or_generate(&config.secrets, &config.data_directory)?;
        let store = Store::open(StoreConfig::new(config.database_location())).await?;
        let blobstore: Arc<dyn BlobStore> = match &config.blobstore {
            BlobstoreConfig::Disk { location, .. } => Arc::new(
                DiskBlobStore::open(location.clone())
                    .await
                    .map_err(StartError::Blobstore)?,
            ),
            BlobstoreConfig::S3(s3) => Arc::new(
                S3BlobStore::new(S3Config {
                    bucket: s3.bucket.clone(),
                    region: s3.region.clone(),
                    endpoint: s3.endpoint.clone(),
                    force_path_style: s3.force_path_style,
                    access_key_id: s3.access_key_id.clone(),
                    secret_access_key: s3.secret_access_key.clone(),
                    temp_dir: config.data_directory.join("blob-spool"),
                })
                .await
                .map_err(StartError::Blobstore)?,
            ),
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("atproto-pds-rs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| StartError::HttpClient(e.to_string()))?;
        let proxy_http = reqwest::Client::builder()
            .user_agent(concat!("atproto-pds-rs/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .read_timeout(std::time::Duration::from_secs(300))
            .build()
            .map_err(|e| StartError::HttpClient(e.to_string()))?;
        let mut random = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut random);
        let random_pw: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dummy_password_hash =
            tokio::task::spawn_blocking(move || hash_password(&random_pw, KdfParams::default()))
                .await
                .map_err(|e| StartError::HttpClient(format!("startup task: {e}")))??;
        let repo = RepoWriter::new(store.clone())?;
        let firehose =
            pds_firehose::Firehose::start(store.clone(), pds_firehose::FirehoseConfig::default())
                .await?;
        let notify_worker = notify_worker(&config, &store)?;
        let Secrets {
            jwt_secret,
            admin_password,
            plc_rotation_key,
            key_encryption_secret,
            file,
            generated,
            admin_password_from_file,
        } = secrets;
        let admin_password_shown = admin_password_from_file.then(|| admin_password.clone());
        let rate_limits = match config.rate_limits_enabled {
            true => Some(rate_limit::RateLimiter::start(config.rate_limit_settings.clone()).await?),
            false => None,
        };
        let plc = PlcClient::new(http.clone(), &config.plc_url);
        let identity = identity::IdentityResolver::new(
            http.clone(),
            plc.clone(),
            identity::ResolverConfig {
                nameservers: config.handle_resolver_nameservers.clone(),
                ..Default::default()
            },
        );
        let state = AppState::new(Inner {
            tokens: TokenSigner::new(&jwt_secret, &config.service_did)
                .with_alg(config.session_token_alg),
            plc,
            identity,
            key_cipher: KeyCipher::new(&key_encryption_secret),
            admin_password,
            plc_rotation_key,
            notifier: notify_worker.notifier(),
            store,
            blobstore,
            repo,
            firehose,
            http,
            proxy_http,
            dummy_password_hash,
            rate_limits,
            config,
        });
        Ok(Server {
            state,
            notify_worker,
            secrets_generated: generated,
            secrets_file: file,
            admin_password_shown,
        })
    }

    /// The shared state (tests read the configuration and secrets from it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The secrets generated by this start, and the file they went to.
    pub fn generated_secrets(&self) -> (&[&'static str], &std::path::Path) {
        (&self.secrets_generated, &self.secrets_file)
    }

    /// The admin password when it is a development secret (generated or
    /// read from the secrets file), for the startup message.
    pub fn dev_admin_password(&self) -> Option<&str> {
        self.admin_password_shown.as_deref()
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then stops
    /// accepting and finishes the requests in flight.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartError> {
        let app = http::router(self.state.clone());
        let housekeeping = tokio::spawn(housekeeping::run(self.state.clone()));
        let crawlers = crawlers::Crawlers::start(
            self.state.http.clone(),
            crawlers::CrawlerConfig::new(
                self.state.config.crawlers.clone(),
                self.state.config.hostname.clone(),
            ),
            Some(self.state.store.clone()),
        );
        let notifications = self.notify_worker.spawn();
        // The firehose closes its subscribers (1001, after a flush) as soon
        // as shutdown begins, so that upgraded connections do not hold the
        // graceful shutdown open.
        let firehose = self.state.firehose.clone();
        let shutdown = async move {
            shutdown.await;
            firehose.shutdown();
        };
        // The peer address is the client IP of rate limits.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        // No Nagle delay: a streamed answer (getRepo pages, blobs, firehose
        // frames) is written in pieces, and waiting for the peer's delayed
        // ACK between them stalled an export by ~40 ms.
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartError::Serve);
        housekeeping.abort();
        crawlers.stop();
        notifications.shutdown().await;
        self.state.firehose.shutdown();
        self.state
            .firehose
            .wait_closed(std::time::Duration::from_secs(10))
            .await;
        self.state.store.close().await;
        result
    }
}

/// The notification worker: email through `PDS_EMAIL_SMTP_URL` when
/// configured (otherwise email is logged, not queued; see
/// [`api::email::send_mail`]).
fn notify_worker(config: &Config, store: &Store) -> Result<pds_notify::Worker, StartError> {
    let mut channels = pds_notify::ChannelsConfig::default();
    if let Some(email) = &config.email {
        channels.email = Some(pds_notify::EmailConfig::smtp(
            email.smtp_url.clone(),
            email.from_address.clone(),
        ));
    }
    let worker_config = pds_notify::WorkerConfig {
        render: pds_notify::RenderContext {
            service_name: config.hostname.clone(),
        },
        ..pds_notify::WorkerConfig::default()
    };
    Ok(pds_notify::Worker::new(
        store.clone(),
        channels.build()?,
        worker_config,
    )?)
}

/// A future resolving when the process receives SIGINT (Ctrl-C) or
/// SIGTERM. The handlers are installed by this call (inside a Tokio
/// runtime), so a signal arriving before the future is first polled is
/// not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let int = signal(SignalKind::interrupt());
        let term = signal(SignalKind::terminate());
        async move {
            let (mut int, mut term) = match (int, term) {
                (Ok(i), Ok(t)) => (i, t),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "cannot listen for SIGINT/SIGTERM");
                    return std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::info!("shutting down: finishing requests in flight");
        }
    }
    #[cfg(not(unix))]
    {
        async move {
            if let Err(e) = tokio::signal::ctrl_c().await {
                tracing::error!(error = %e, "cannot listen for Ctrl-C");
                return std::future::pending::<()>().await;
            }
            tracing::info!("shutting down: finishing requests in flight");
        }
    }
}
