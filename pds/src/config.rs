//! Configuration: the reference PDS's environment variables (an operator's
//! `pds.env` works unchanged), optionally also read from a TOML file.
//!
//! Sources, later ones winning: built-in defaults, the TOML file
//! (`--config FILE` or `PDS_CONFIG_FILE`), the environment. The file uses
//! the same keys as the environment (`PDS_HOSTNAME = "pds.example.com"`;
//! the `PDS_` prefix may be left out and keys are case-insensitive);
//! strings, integers, booleans and arrays of strings (for lists) are
//! accepted. An empty environment value counts as unset, as in the
//! reference.
//!
//! Settings the reference does not have:
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `PDS_BIND` | address to listen on | `127.0.0.1` |
//! | `PDS_DATABASE_URL` | `postgres://...` to use PostgreSQL instead of SQLite | SQLite in the data directory |
//! | `PDS_KEY_ENCRYPTION_SECRET` | master secret the account signing keys are encrypted with at rest (HKDF-SHA256 → ChaCha20-Poly1305); at least 32 characters | generated into the secrets file |
//! | `PDS_REFRESH_GRACE_PERIOD_SECONDS` | how long a rotated refresh token may still be used (and yields the same successor) | 7200 |
//! | `PDS_HANDLE_RESOLVER_NAMESERVERS` | DNS servers (`ip` or `ip:port`, comma-separated) for handle resolution | the system's |
//! | `PDS_FIREHOSE_RETENTION_HOURS` | how long firehose events are kept for replay (older ones are pruned hourly; a cursor before them gets `#info OutdatedCursor`) | 72 |
//! | `PDS_RATE_LIMIT_POINTS` | `name=points,...`: the points of named rate limits (see [`crate::rate_limit`]) | the reference's |
//! | `PDS_SESSION_TOKEN_ALG` | `HS256` (session tokens signed with `PDS_JWT_SECRET`) or `ES256K` (signed with each account's signing key) | `HS256` |
//!
//! A value that does not parse, or settings that contradict each other,
//! stop the start with an error naming the setting.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use atproto_types::crypto::{Algorithm, PrivateKey, PublicKey};

/// Every setting this server reads, without the `PDS_` prefix. A config
/// file naming anything else is rejected (a typo would otherwise be
/// silently ignored).
const KNOWN_KEYS: &[&str] = &[
    "HOSTNAME",
    "PORT",
    "BIND",
    "SERVICE_DID",
    "SERVICE_HANDLE_DOMAINS",
    "VERSION",
    "PRIVACY_POLICY_URL",
    "TERMS_OF_SERVICE_URL",
    "CONTACT_EMAIL_ADDRESS",
    "DATA_DIRECTORY",
    "DATABASE_URL",
    "BLOBSTORE_DISK_LOCATION",
    "BLOBSTORE_DISK_TMP_LOCATION",
    "BLOBSTORE_S3_BUCKET",
    "BLOBSTORE_S3_REGION",
    "BLOBSTORE_S3_ENDPOINT",
    "BLOBSTORE_S3_FORCE_PATH_STYLE",
    "BLOBSTORE_S3_ACCESS_KEY_ID",
    "BLOBSTORE_S3_SECRET_ACCESS_KEY",
    "BLOB_UPLOAD_LIMIT",
    "DID_PLC_URL",
    "RECOVERY_DID_KEY",
    "ENABLE_DID_DOC_WITH_SESSION",
    "INVITE_REQUIRED",
    "INVITE_INTERVAL",
    "INVITE_EPOCH",
    "EMAIL_SMTP_URL",
    "EMAIL_FROM_ADDRESS",
    "CRAWLERS",
    "DEV_MODE",
    "BSKY_APP_VIEW_URL",
    "BSKY_APP_VIEW_DID",
    "REPORT_SERVICE_URL",
    "REPORT_SERVICE_DID",
    "RATE_LIMITS_ENABLED",
    "RATE_LIMIT_BYPASS_KEY",
    "RATE_LIMIT_BYPASS_IPS",
    "RATE_LIMIT_POINTS",
    "REDIS_SCRATCH_ADDRESS",
    "REDIS_SCRATCH_PASSWORD",
    "SESSION_TOKEN_ALG",
    "ADMIN_PASSWORD",
    "JWT_SECRET",
    "PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
    "KEY_ENCRYPTION_SECRET",
    "REFRESH_GRACE_PERIOD_SECONDS",
    "HANDLE_RESOLVER_NAMESERVERS",
    "FIREHOSE_RETENTION_HOURS",
];

/// Default listening port (the reference's).
pub const DEFAULT_PORT: u16 = 2583;
/// Default blob size limit: 5 MiB (the reference's).
pub const DEFAULT_BLOB_UPLOAD_LIMIT: u64 = 5 * 1024 * 1024;
/// Default PLC directory.
pub const DEFAULT_PLC_URL: &str = "https://plc.directory";
/// Default refresh-token grace period: 2 hours (the reference's).
pub const DEFAULT_REFRESH_GRACE: Duration = Duration::from_secs(2 * 3600);
/// Default firehose event retention: 72 hours.
pub const DEFAULT_FIREHOSE_RETENTION: Duration = pds_store::DEFAULT_EVENT_RETENTION;

/// A configuration error: which setting, and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A value could not be parsed or is out of range.
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
    /// Two or more settings contradict each other, or one needs another.
    #[error("{0}")]
    Inconsistent(String),
    /// The config file could not be read or parsed.
    #[error("config file {path}: {message}")]
    File { path: String, message: String },
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: format!("PDS_{key}"),
        message: message.into(),
    }
}

/// Where blobs are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobstoreConfig {
    /// Files under a directory.
    Disk {
        location: PathBuf,
        tmp_location: PathBuf,
    },
    /// An S3 bucket.
    S3(S3Settings),
}

/// S3 blob store settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub force_path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Outgoing email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    pub smtp_url: String,
    pub from_address: String,
}

/// Another service: URL and DID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRef {
    pub url: String,
    pub did: String,
}

/// Secrets as configured (any left unset are generated and saved in the
/// data directory at start; see [`crate::secrets`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretSettings {
    pub jwt_secret: Option<String>,
    pub admin_password: Option<String>,
    pub plc_rotation_key_hex: Option<String>,
    pub key_encryption_secret: Option<String>,
}

impl std::fmt::Debug for SecretSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |o: &Option<String>| if o.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("SecretSettings")
            .field("jwt_secret", &set(&self.jwt_secret))
            .field("admin_password", &set(&self.admin_password))
            .field("plc_rotation_key_hex", &set(&self.plc_rotation_key_hex))
            .field("key_encryption_secret", &set(&self.key_encryption_secret))
            .finish()
    }
}

/// The server's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `PDS_HOSTNAME` (default `localhost`).
    pub hostname: String,
    /// `PDS_PORT` (default 2583).
    pub port: u16,
    /// `PDS_BIND` (default 127.0.0.1).
    pub bind: IpAddr,
    /// `http://localhost:PORT` for `localhost`, else `https://HOSTNAME`.
    pub public_url: String,
    /// `PDS_SERVICE_DID` (default `did:web:HOSTNAME`).
    pub service_did: String,
    /// `PDS_SERVICE_HANDLE_DOMAINS` (default `.test` on localhost, else
    /// `.HOSTNAME`); each starts with a dot.
    pub handle_domains: Vec<String>,
    /// `PDS_VERSION`: reported by the health endpoint.
    pub version: String,
    /// `PDS_PRIVACY_POLICY_URL`.
    pub privacy_policy_url: Option<String>,
    /// `PDS_TERMS_OF_SERVICE_URL`.
    pub terms_of_service_url: Option<String>,
    /// `PDS_CONTACT_EMAIL_ADDRESS`.
    pub contact_email_address: Option<String>,
    /// `PDS_DATA_DIRECTORY` (default `./data`): SQLite database, disk blobs
    /// and the generated secrets file.
    pub data_directory: PathBuf,
    /// `PDS_DATABASE_URL`: PostgreSQL when set.
    pub database_url: Option<String>,
    /// Disk (`PDS_BLOBSTORE_DISK_LOCATION`, default `DATA/blobs`) or S3
    /// (when `PDS_BLOBSTORE_S3_BUCKET` is set).
    pub blobstore: BlobstoreConfig,
    /// `PDS_BLOB_UPLOAD_LIMIT` in bytes.
    pub blob_upload_limit: u64,
    /// `PDS_DID_PLC_URL` (no trailing slash).
    pub plc_url: String,
    /// `PDS_RECOVERY_DID_KEY`: a did:key put first in the rotation keys of
    /// new did:plc identities.
    pub recovery_did_key: Option<String>,
    /// `PDS_ENABLE_DID_DOC_WITH_SESSION`: include `didDoc` in session
    /// responses.
    pub enable_did_doc_with_session: bool,
    /// `PDS_INVITE_REQUIRED` (default true, as in the reference).
    pub invite_required: bool,
    /// `PDS_INVITE_INTERVAL` (ms): with invites required, an account earns
    /// one invite code per interval of its age (getAccountInviteCodes
    /// `createAvailable`); unset, none are earned.
    pub invite_interval_ms: Option<i64>,
    /// `PDS_INVITE_EPOCH` (ms since the Unix epoch, default 0): codes are
    /// earned only for time since then.
    pub invite_epoch_ms: i64,
    /// `PDS_EMAIL_SMTP_URL` and `PDS_EMAIL_FROM_ADDRESS` (both or neither).
    pub email: Option<EmailConfig>,
    /// `PDS_CRAWLERS`: relay URLs to notify of updates.
    pub crawlers: Vec<String>,
    /// `PDS_DEV_MODE`.
    pub dev_mode: bool,
    /// `PDS_BSKY_APP_VIEW_URL` and `PDS_BSKY_APP_VIEW_DID`.
    pub bsky_app_view: Option<ServiceRef>,
    /// `PDS_REPORT_SERVICE_URL` and `PDS_REPORT_SERVICE_DID`.
    pub report_service: Option<ServiceRef>,
    /// `PDS_RATE_LIMITS_ENABLED`.
    pub rate_limits_enabled: bool,
    /// `PDS_RATE_LIMIT_BYPASS_KEY`, `PDS_RATE_LIMIT_BYPASS_IPS`,
    /// `PDS_RATE_LIMIT_POINTS`.
    pub rate_limit_settings: crate::rate_limit::Settings,
    /// `PDS_SESSION_TOKEN_ALG`.
    pub session_token_alg: crate::jwt::SessionTokenAlg,
    /// `PDS_REFRESH_GRACE_PERIOD_SECONDS`.
    pub refresh_grace_period: Duration,
    /// `PDS_FIREHOSE_RETENTION_HOURS`: firehose events older than this are
    /// pruned.
    pub firehose_retention: Duration,
    /// `PDS_HANDLE_RESOLVER_NAMESERVERS`: DNS servers (`ip` or `ip:port`)
    /// for handle TXT lookups; empty: the system's.
    pub handle_resolver_nameservers: Vec<std::net::SocketAddr>,
    /// `PDS_JWT_SECRET`, `PDS_ADMIN_PASSWORD`,
    /// `PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX`, `PDS_KEY_ENCRYPTION_SECRET`.
    pub secrets: SecretSettings,
}

impl Config {
    /// The configuration from the process environment and the config file
    /// it names (`file` from the command line wins over `PDS_CONFIG_FILE`).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let file = file.map(Path::to_path_buf).or_else(|| {
            env.iter()
                .find(|(k, v)| k == "PDS_CONFIG_FILE" && !v.is_empty())
                .map(|(_, v)| PathBuf::from(v))
        });
        let file_values = match &file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?;
                parse_toml(&text).map_err(|message| ConfigError::File {
                    path: path.display().to_string(),
                    message,
                })?
            }
            None => BTreeMap::new(),
        };
        Config::from_sources(file_values, env)
    }

    /// The configuration from already-read sources: `file` (from
    /// [`parse_toml`]) overridden by `env` (variables not starting with
    /// `PDS_` are ignored).
    pub fn from_sources(
        file: BTreeMap<String, String>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut values = file;
        for (k, v) in env {
            if let Some(key) = k.strip_prefix("PDS_") {
                if v.is_empty() {
                    continue;
                }
                values.insert(key.to_owned(), v);
            }
        }
        Config::from_values(&Values(values))
    }

    /// Defaults only (what `pds` does with nothing set).
    pub fn defaults() -> Result<Config, ConfigError> {
        Config::from_sources(BTreeMap::new(), Vec::new())
    }

    fn from_values(v: &Values) -> Result<Config, ConfigError> {
        let hostname = match v.str("HOSTNAME") {
            Some(h) => {
                let h = h.to_ascii_lowercase();
                check_hostname(&h).map_err(|m| invalid("HOSTNAME", m))?;
                h
            }
            None => "localhost".to_owned(),
        };
        let port = match v.str("PORT") {
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => {
                    return Err(invalid("PORT", format!("{p:?} is not a port (1-65535)")))
                }
                Ok(port) => port,
            },
            None => DEFAULT_PORT,
        };
        let bind = match v.str("BIND") {
            Some(b) => b
                .parse::<IpAddr>()
                .map_err(|_| invalid("BIND", format!("{b:?} is not an IP address")))?,
            None => IpAddr::from([127, 0, 0, 1]),
        };
        let public_url = if hostname == "localhost" {
            format!("http://localhost:{port}")
        } else {
            format!("https://{hostname}")
        };
        let service_did = match v.str("SERVICE_DID") {
            Some(d) => {
                d.parse::<atproto_types::syntax::Did>()
                    .map_err(|e| invalid("SERVICE_DID", format!("not a DID: {e}")))?;
                d.to_owned()
            }
            None => format!("did:web:{hostname}"),
        };
        let mut handle_domains = v.list("SERVICE_HANDLE_DOMAINS");
        if handle_domains.is_empty() {
            handle_domains = if hostname == "localhost" {
                vec![".test".to_owned()]
            } else {
                vec![format!(".{hostname}")]
            };
        }
        for d in &mut handle_domains {
            *d = d.to_ascii_lowercase();
            let ok = d.len() > 1
                && d.starts_with('.')
                && check_hostname(d.trim_start_matches('.')).is_ok();
            if !ok {
                return Err(invalid(
                    "SERVICE_HANDLE_DOMAINS",
                    format!(
                        "invalid handle domain {d:?} (domains start with a dot, e.g. .example.com)"
                    ),
                ));
            }
        }
        let version = v
            .str("VERSION")
            .map(str::to_owned)
            .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned());
        let privacy_policy_url = v.url("PRIVACY_POLICY_URL")?;
        let terms_of_service_url = v.url("TERMS_OF_SERVICE_URL")?;
        let contact_email_address = v.str("CONTACT_EMAIL_ADDRESS").map(str::to_owned);

        let data_directory = PathBuf::from(v.str("DATA_DIRECTORY").unwrap_or("./data"));
        let database_url =
            match v.str("DATABASE_URL") {
                Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                    Some(u.to_owned())
                }
                Some(_) => return Err(invalid(
                    "DATABASE_URL",
                    "must be a postgres:// URL (leave it unset for SQLite in PDS_DATA_DIRECTORY)",
                )),
                None => None,
            };

        let disk_location = v.str("BLOBSTORE_DISK_LOCATION");
        let blobstore = match v.str("BLOBSTORE_S3_BUCKET") {
            Some(bucket) => {
                if disk_location.is_some() {
                    return Err(ConfigError::Inconsistent(
                        "PDS_BLOBSTORE_S3_BUCKET and PDS_BLOBSTORE_DISK_LOCATION are both set; \
                         choose one blob store"
                            .into(),
                    ));
                }
                let key = v.str("BLOBSTORE_S3_ACCESS_KEY_ID");
                let secret = v.str("BLOBSTORE_S3_SECRET_ACCESS_KEY");
                let (Some(key), Some(secret)) = (key, secret) else {
                    return Err(ConfigError::Inconsistent(
                        "PDS_BLOBSTORE_S3_BUCKET needs both PDS_BLOBSTORE_S3_ACCESS_KEY_ID and \
                         PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY"
                            .into(),
                    ));
                };
                BlobstoreConfig::S3(S3Settings {
                    bucket: bucket.to_owned(),
                    region: v
                        .str("BLOBSTORE_S3_REGION")
                        .unwrap_or("us-east-1")
                        .to_owned(),
                    endpoint: v.url("BLOBSTORE_S3_ENDPOINT")?,
                    force_path_style: v.bool("BLOBSTORE_S3_FORCE_PATH_STYLE")?.unwrap_or(false),
                    access_key_id: key.to_owned(),
                    secret_access_key: secret.to_owned(),
                })
            }
            None => {
                for k in [
                    "BLOBSTORE_S3_REGION",
                    "BLOBSTORE_S3_ENDPOINT",
                    "BLOBSTORE_S3_FORCE_PATH_STYLE",
                    "BLOBSTORE_S3_ACCESS_KEY_ID",
                    "BLOBSTORE_S3_SECRET_ACCESS_KEY",
                ] {
                    if v.str(k).is_some() {
                        return Err(ConfigError::Inconsistent(format!(
                            "PDS_{k} is set but PDS_BLOBSTORE_S3_BUCKET is not"
                        )));
                    }
                }
                let location = disk_location
                    .map(PathBuf::from)
                    .unwrap_or_else(|| data_directory.join("blobs"));
                let tmp_location = v
                    .str("BLOBSTORE_DISK_TMP_LOCATION")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| location.join("tmp"));
                BlobstoreConfig::Disk {
                    location,
                    tmp_location,
                }
            }
        };
        let blob_upload_limit = match v.str("BLOB_UPLOAD_LIMIT") {
            Some(s) => match s.parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return Err(invalid(
                        "BLOB_UPLOAD_LIMIT",
                        format!("{s:?} is not a positive number of bytes"),
                    ))
                }
            },
            None => DEFAULT_BLOB_UPLOAD_LIMIT,
        };
        let plc_url = v
            .url("DID_PLC_URL")?
            .unwrap_or_else(|| DEFAULT_PLC_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let recovery_did_key = match v.str("RECOVERY_DID_KEY") {
            Some(k) => {
                if !k.starts_with("did:key:") {
                    return Err(invalid("RECOVERY_DID_KEY", "must be a did:key"));
                }
                PublicKey::from_did_key(k).map_err(|e| {
                    invalid("RECOVERY_DID_KEY", format!("not a valid did:key: {e}"))
                })?;
                Some(k.to_owned())
            }
            None => None,
        };
        let enable_did_doc_with_session = v.bool("ENABLE_DID_DOC_WITH_SESSION")?.unwrap_or(false);
        let invite_required = v.bool("INVITE_REQUIRED")?.unwrap_or(true);
        let invite_interval_ms = match v.str("INVITE_INTERVAL") {
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(invalid(
                        "INVITE_INTERVAL",
                        format!("{s:?} is not a positive number of milliseconds"),
                    ))
                }
            },
            None => None,
        };
        let invite_epoch_ms = match v.str("INVITE_EPOCH") {
            Some(s) => match s.parse::<i64>() {
                Ok(n) if n >= 0 => n,
                _ => {
                    return Err(invalid(
                        "INVITE_EPOCH",
                        format!("{s:?} is not a time in milliseconds since the Unix epoch"),
                    ))
                }
            },
            None => 0,
        };
        let email = match (v.str("EMAIL_SMTP_URL"), v.str("EMAIL_FROM_ADDRESS")) {
            (None, None) => None,
            (Some(smtp), Some(from)) => {
                if !(smtp.starts_with("smtp://") || smtp.starts_with("smtps://")) {
                    return Err(invalid(
                        "EMAIL_SMTP_URL",
                        "must be an smtp:// or smtps:// URL",
                    ));
                }
                Some(EmailConfig {
                    smtp_url: smtp.to_owned(),
                    from_address: from.to_owned(),
                })
            }
            _ => {
                return Err(ConfigError::Inconsistent(
                    "partial email configuration: set both PDS_EMAIL_SMTP_URL and \
                     PDS_EMAIL_FROM_ADDRESS, or neither"
                        .into(),
                ))
            }
        };
        let crawlers = v.list("CRAWLERS");
        for c in &crawlers {
            check_http_url(c).map_err(|m| invalid("CRAWLERS", format!("{c:?}: {m}")))?;
        }
        let dev_mode = v.bool("DEV_MODE")?.unwrap_or(false);
        let bsky_app_view = v.service("BSKY_APP_VIEW_URL", "BSKY_APP_VIEW_DID")?;
        let report_service = v.service("REPORT_SERVICE_URL", "REPORT_SERVICE_DID")?;
        let rate_limits_enabled = v.bool("RATE_LIMITS_ENABLED")?.unwrap_or(false);
        let rate_limit_settings = rate_limit_settings(v)?;
        let session_token_alg = match v.str("SESSION_TOKEN_ALG") {
            None => crate::jwt::SessionTokenAlg::default(),
            Some(s) => s.parse().map_err(|_| {
                invalid("SESSION_TOKEN_ALG", format!("{s:?} is not HS256 or ES256K"))
            })?,
        };
        let refresh_grace_period = match v.str("REFRESH_GRACE_PERIOD_SECONDS") {
            Some(s) => Duration::from_secs(s.parse::<u64>().map_err(|_| {
                invalid(
                    "REFRESH_GRACE_PERIOD_SECONDS",
                    format!("{s:?} is not a number of seconds"),
                )
            })?),
            None => DEFAULT_REFRESH_GRACE,
        };
        let firehose_retention = match v.str("FIREHOSE_RETENTION_HOURS") {
            Some(s) => match s.parse::<u64>() {
                Ok(h) if h > 0 => Duration::from_secs(h.saturating_mul(3600)),
                _ => {
                    return Err(invalid(
                        "FIREHOSE_RETENTION_HOURS",
                        format!("{s:?} is not a positive number of hours"),
                    ))
                }
            },
            None => DEFAULT_FIREHOSE_RETENTION,
        };
        let mut handle_resolver_nameservers = Vec::new();
        for ns in v.list("HANDLE_RESOLVER_NAMESERVERS") {
            let addr = ns
                .parse::<std::net::SocketAddr>()
                .or_else(|_| {
                    ns.parse::<IpAddr>()
                        .map(|ip| std::net::SocketAddr::new(ip, 53))
                })
                .map_err(|_| {
                    invalid(
                        "HANDLE_RESOLVER_NAMESERVERS",
                        format!("{ns:?} is not an IP address or IP:port"),
                    )
                })?;
            handle_resolver_nameservers.push(addr);
        }

        let plc_rotation_key_hex = match v.str("PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX") {
            Some(h) => {
                PrivateKey::from_hex(Algorithm::K256, h).map_err(|e| {
                    invalid(
                        "PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
                        format!("not a secp256k1 private key in hex: {e}"),
                    )
                })?;
                Some(h.to_owned())
            }
            None => None,
        };
        let key_encryption_secret = match v.str("KEY_ENCRYPTION_SECRET") {
            Some(s) if s.len() < 32 => {
                return Err(invalid(
                    "KEY_ENCRYPTION_SECRET",
                    "too short: use at least 32 characters (e.g. `openssl rand -hex 32`)",
                ))
            }
            other => other.map(str::to_owned),
        };
        let secrets = SecretSettings {
            jwt_secret: v.str("JWT_SECRET").map(str::to_owned),
            admin_password: v.str("ADMIN_PASSWORD").map(str::to_owned),
            plc_rotation_key_hex,
            key_encryption_secret,
        };

        Ok(Config {
            hostname,
            port,
            bind,
            public_url,
            service_did,
            handle_domains,
            version,
            privacy_policy_url,
            terms_of_service_url,
            contact_email_address,
            data_directory,
            database_url,
            blobstore,
            blob_upload_limit,
            plc_url,
            recovery_did_key,
            enable_did_doc_with_session,
            invite_required,
            invite_interval_ms,
            invite_epoch_ms,
            email,
            crawlers,
            dev_mode,
            bsky_app_view,
            report_service,
            rate_limits_enabled,
            rate_limit_settings,
            session_token_alg,
            refresh_grace_period,
            firehose_retention,
            handle_resolver_nameservers,
            secrets,
        })
    }

    /// Where the database lives: the PostgreSQL URL, or the data directory
    /// (the store creates its SQLite file there).
    pub fn database_location(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => self.data_directory.display().to_string(),
        }
    }

    /// Whether `port` was changed after loading: recompute the public URL
    /// (tests bind an ephemeral port first, then set it).
    pub fn set_port(&mut self, port: u16) {
        self.port = port;
        if self.hostname == "localhost" {
            self.public_url = format!("http://localhost:{port}");
        }
    }
}

/// `PDS_RATE_LIMIT_BYPASS_KEY`, `PDS_RATE_LIMIT_BYPASS_IPS` (addresses
/// or CIDR ranges), `PDS_RATE_LIMIT_POINTS` (`name=points,...`),
/// `PDS_REDIS_SCRATCH_ADDRESS` and `PDS_REDIS_SCRATCH_PASSWORD`.
fn rate_limit_settings(v: &Values) -> Result<crate::rate_limit::Settings, ConfigError> {
    let mut settings = crate::rate_limit::Settings {
        bypass_key: v.str("RATE_LIMIT_BYPASS_KEY").map(str::to_owned),
        ..Default::default()
    };
    for ip in v.list("RATE_LIMIT_BYPASS_IPS") {
        let range = ip
            .parse()
            .map_err(|m: String| invalid("RATE_LIMIT_BYPASS_IPS", m))?;
        settings.bypass_ips.push(range);
    }
    if let Some(address) = v.str("REDIS_SCRATCH_ADDRESS") {
        let password = v.str("REDIS_SCRATCH_PASSWORD");
        crate::rate_limit::redis_url(address, password)
            .map_err(|m| invalid("REDIS_SCRATCH_ADDRESS", m))?;
        settings.redis_address = Some(address.to_owned());
        settings.redis_password = password.map(str::to_owned);
    }
    for item in v.list("RATE_LIMIT_POINTS") {
        let bad = |m: &str| invalid("RATE_LIMIT_POINTS", format!("{item:?}: {m}"));
        let (name, points) = item
            .split_once('=')
            .ok_or_else(|| bad("expected name=points"))?;
        let name = name.trim();
        if !crate::rate_limit::is_limit_name(name) {
            return Err(bad("unknown rate limit name"));
        }
        let points = points
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("points must be a positive integer"))?;
        settings.points.insert(name.to_owned(), points);
    }
    Ok(settings)
}

/// Settings by key (without the `PDS_` prefix, upper case).
struct Values(BTreeMap<String, String>);

impl Values {
    fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        match self.str(key) {
            None => Ok(None),
            Some(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(Some(true)),
                "false" | "0" => Ok(Some(false)),
                _ => Err(invalid(
                    key,
                    format!("{s:?} is not a boolean (true/false/1/0)"),
                )),
            },
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.str(key)
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn url(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.str(key) {
            None => Ok(None),
            Some(u) => {
                check_http_url(u).map_err(|m| invalid(key, format!("{u:?}: {m}")))?;
                Ok(Some(u.to_owned()))
            }
        }
    }

    fn service(&self, url_key: &str, did_key: &str) -> Result<Option<ServiceRef>, ConfigError> {
        let url = self.url(url_key)?;
        let did = self.str(did_key);
        match (url, did) {
            (None, None) => Ok(None),
            (Some(url), Some(did)) => {
                did.parse::<atproto_types::syntax::Did>()
                    .map_err(|e| invalid(did_key, format!("not a DID: {e}")))?;
                Ok(Some(ServiceRef {
                    url,
                    did: did.to_owned(),
                }))
            }
            (Some(_), None) => Err(ConfigError::Inconsistent(format!(
                "PDS_{url_key} is set but PDS_{did_key} is not"
            ))),
            (None, Some(_)) => Err(ConfigError::Inconsistent(format!(
                "PDS_{did_key} is set but PDS_{url_key} is not"
            ))),
        }
    }
}

fn check_http_url(u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or("not an http(s) URL")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("the URL has no host".into());
    }
    Ok(())
}

fn check_hostname(h: &str) -> Result<(), String> {
    if h.is_empty() || h.len() > 253 {
        return Err("not a hostname".into());
    }
    for label in h.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "{h:?} is not a hostname (no scheme, port or path: e.g. pds.example.com)"
            ));
        }
    }
    Ok(())
}

/// Parses a TOML config file into settings by key (upper case, without the
/// `PDS_` prefix). Unknown keys and nested tables are errors.
pub fn parse_toml(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (raw_key, value) in table {
        let upper = raw_key.to_ascii_uppercase();
        let key = upper.strip_prefix("PDS_").unwrap_or(&upper).to_owned();
        if !KNOWN_KEYS.contains(&key.as_str()) {
            return Err(format!("unknown setting {raw_key:?}"));
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        toml::Value::String(s) => parts.push(s),
                        other => {
                            return Err(format!(
                                "{raw_key}: list items must be strings, found {}",
                                other.type_str()
                            ))
                        }
                    }
                }
                parts.join(",")
            }
            other => {
                return Err(format!(
                    "{raw_key}: expected a string, number, boolean or list, found {}",
                    other.type_str()
                ))
            }
        };
        if out.insert(key, text).is_some() {
            return Err(format!("{raw_key} is given twice"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn from_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_sources(BTreeMap::new(), env(pairs))
    }

    fn err_key(r: Result<Config, ConfigError>) -> String {
        match r {
            Err(ConfigError::Invalid { key, .. }) => key,
            Err(other) => panic!("expected an Invalid error, got {other:?}"),
            Ok(c) => panic!("expected an error, got {c:?}"),
        }
    }

    fn inconsistent(r: Result<Config, ConfigError>) -> String {
        match r {
            Err(ConfigError::Inconsistent(m)) => m,
            Err(other) => panic!("expected an Inconsistent error, got {other:?}"),
            Ok(c) => panic!("expected an error, got {c:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.hostname, "localhost");
        assert_eq!(c.port, 2583);
        assert_eq!(c.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.public_url, "http://localhost:2583");
        assert_eq!(c.service_did, "did:web:localhost");
        assert_eq!(c.handle_domains, vec![".test"]);
        assert_eq!(c.data_directory, PathBuf::from("./data"));
        assert_eq!(c.database_url, None);
        assert_eq!(c.database_location(), "./data");
        assert_eq!(
            c.blobstore,
            BlobstoreConfig::Disk {
                location: PathBuf::from("./data/blobs"),
                tmp_location: PathBuf::from("./data/blobs/tmp"),
            }
        );
        assert_eq!(c.blob_upload_limit, 5 * 1024 * 1024);
        assert_eq!(c.plc_url, "https://plc.directory");
        assert_eq!(c.recovery_did_key, None);
        assert!(
            c.invite_required,
            "the reference requires invites unless told otherwise"
        );
        assert_eq!(c.email, None);
        assert!(c.crawlers.is_empty());
        assert!(!c.dev_mode);
        assert!(!c.rate_limits_enabled);
        assert!(!c.enable_did_doc_with_session);
        assert_eq!(c.bsky_app_view, None);
        assert_eq!(c.report_service, None);
        assert_eq!(c.refresh_grace_period, Duration::from_secs(7200));
        assert_eq!(c.firehose_retention, Duration::from_secs(72 * 3600));
        assert_eq!(c.secrets, SecretSettings::default());
        assert_eq!(c.version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn every_key() {
        let rotation = PrivateKey::generate(Algorithm::K256);
        let recovery = PrivateKey::generate(Algorithm::K256).did_key();
        let hex = rotation.to_hex();
        let c = from_env(&[
            ("PDS_HOSTNAME", "PDS.Example.com"),
            ("PDS_PORT", "3000"),
            ("PDS_BIND", "0.0.0.0"),
            ("PDS_SERVICE_DID", "did:web:pds.example.com"),
            ("PDS_SERVICE_HANDLE_DOMAINS", ".example.com, .Other.org"),
            ("PDS_VERSION", "1.2.3"),
            ("PDS_PRIVACY_POLICY_URL", "https://example.com/privacy"),
            ("PDS_TERMS_OF_SERVICE_URL", "https://example.com/tos"),
            ("PDS_CONTACT_EMAIL_ADDRESS", "admin@example.com"),
            ("PDS_DATA_DIRECTORY", "/pds"),
            ("PDS_DATABASE_URL", "postgres://u@h/db"),
            ("PDS_BLOBSTORE_S3_BUCKET", "blobs"),
            ("PDS_BLOBSTORE_S3_REGION", "eu-west-1"),
            ("PDS_BLOBSTORE_S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true"),
            ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AK"),
            ("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "SK"),
            ("PDS_BLOB_UPLOAD_LIMIT", "1000"),
            ("PDS_DID_PLC_URL", "http://127.0.0.1:2582/"),
            ("PDS_RECOVERY_DID_KEY", &recovery),
            ("PDS_ENABLE_DID_DOC_WITH_SESSION", "1"),
            ("PDS_INVITE_REQUIRED", "false"),
            ("PDS_EMAIL_SMTP_URL", "smtps://u:p@smtp.example.com"),
            ("PDS_EMAIL_FROM_ADDRESS", "noreply@example.com"),
            (
                "PDS_CRAWLERS",
                "https://bsky.network,https://relay.example.com",
            ),
            ("PDS_DEV_MODE", "true"),
            ("PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app"),
            ("PDS_BSKY_APP_VIEW_DID", "did:web:api.bsky.app"),
            ("PDS_REPORT_SERVICE_URL", "https://mod.bsky.app"),
            ("PDS_REPORT_SERVICE_DID", "did:plc:ar7c4by46qjdydhdevvrndac"),
            ("PDS_RATE_LIMITS_ENABLED", "true"),
            ("PDS_REFRESH_GRACE_PERIOD_SECONDS", "5"),
            ("PDS_FIREHOSE_RETENTION_HOURS", "24"),
            ("PDS_HANDLE_RESOLVER_NAMESERVERS", "127.0.0.1:5353, ::1"),
            ("PDS_JWT_SECRET", "jwt"),
            ("PDS_ADMIN_PASSWORD", "admin-pw"),
            ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", &hex),
            (
                "PDS_KEY_ENCRYPTION_SECRET",
                "0123456789abcdef0123456789abcdef",
            ),
            ("HOME", "/root"),
        ])
        .unwrap();
        assert_eq!(c.hostname, "pds.example.com");
        assert_eq!(c.port, 3000);
        assert_eq!(c.bind, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(c.public_url, "https://pds.example.com");
        assert_eq!(c.service_did, "did:web:pds.example.com");
        assert_eq!(c.handle_domains, vec![".example.com", ".other.org"]);
        assert_eq!(c.version, "1.2.3");
        assert_eq!(
            c.privacy_policy_url.as_deref(),
            Some("https://example.com/privacy")
        );
        assert_eq!(
            c.terms_of_service_url.as_deref(),
            Some("https://example.com/tos")
        );
        assert_eq!(
            c.contact_email_address.as_deref(),
            Some("admin@example.com")
        );
        assert_eq!(c.data_directory, PathBuf::from("/pds"));
        assert_eq!(c.database_location(), "postgres://u@h/db");
        assert_eq!(
            c.blobstore,
            BlobstoreConfig::S3(S3Settings {
                bucket: "blobs".into(),
                region: "eu-west-1".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                force_path_style: true,
                access_key_id: "AK".into(),
                secret_access_key: "SK".into(),
            })
        );
        assert_eq!(c.blob_upload_limit, 1000);
        assert_eq!(c.plc_url, "http://127.0.0.1:2582");
        assert_eq!(c.recovery_did_key.as_deref(), Some(recovery.as_str()));
        assert!(c.enable_did_doc_with_session);
        assert!(!c.invite_required);
        assert_eq!(
            c.handle_resolver_nameservers,
            vec![
                "127.0.0.1:5353".parse::<std::net::SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(
            c.email,
            Some(EmailConfig {
                smtp_url: "smtps://u:p@smtp.example.com".into(),
                from_address: "noreply@example.com".into()
            })
        );
        assert_eq!(
            c.crawlers,
            vec!["https://bsky.network", "https://relay.example.com"]
        );
        assert!(c.dev_mode);
        assert_eq!(
            c.bsky_app_view,
            Some(ServiceRef {
                url: "https://api.bsky.app".into(),
                did: "did:web:api.bsky.app".into()
            })
        );
        assert_eq!(
            c.report_service.as_ref().map(|s| s.did.as_str()),
            Some("did:plc:ar7c4by46qjdydhdevvrndac")
        );
        assert!(c.rate_limits_enabled);
        assert_eq!(c.refresh_grace_period, Duration::from_secs(5));
        assert_eq!(c.firehose_retention, Duration::from_secs(24 * 3600));
        assert_eq!(c.secrets.jwt_secret.as_deref(), Some("jwt"));
        assert_eq!(c.secrets.admin_password.as_deref(), Some("admin-pw"));
        assert_eq!(
            c.secrets.plc_rotation_key_hex.as_deref(),
            Some(hex.as_str())
        );
        assert_eq!(
            c.secrets.key_encryption_secret.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        let debug = format!("{:?}", c.secrets);
        assert!(
            !debug.contains("admin-pw") && debug.contains("<set>"),
            "{debug}"
        );
    }

    #[test]
    fn invite_interval_and_epoch() {
        let c = Config::defaults().unwrap();
        assert_eq!((c.invite_interval_ms, c.invite_epoch_ms), (None, 0));
        let c = from_env(&[
            ("PDS_INVITE_INTERVAL", "604800000"),
            ("PDS_INVITE_EPOCH", "1700000000000"),
        ])
        .unwrap();
        assert_eq!(
            (c.invite_interval_ms, c.invite_epoch_ms),
            (Some(604_800_000), 1_700_000_000_000)
        );
    }

    #[test]
    fn derived_values_follow_the_hostname() {
        let c = from_env(&[("PDS_HOSTNAME", "pds.example.com")]).unwrap();
        assert_eq!(c.public_url, "https://pds.example.com");
        assert_eq!(c.service_did, "did:web:pds.example.com");
        assert_eq!(c.handle_domains, vec![".pds.example.com"]);
        let c = from_env(&[("PDS_PORT", "4000")]).unwrap();
        assert_eq!(c.public_url, "http://localhost:4000");
        let mut c = Config::defaults().unwrap();
        c.set_port(1234);
        assert_eq!(c.public_url, "http://localhost:1234");
        let c = from_env(&[("PDS_DATA_DIRECTORY", "/srv/pds")]).unwrap();
        assert_eq!(
            c.blobstore,
            BlobstoreConfig::Disk {
                location: PathBuf::from("/srv/pds/blobs"),
                tmp_location: PathBuf::from("/srv/pds/blobs/tmp"),
            }
        );
        let c = from_env(&[
            ("PDS_BLOBSTORE_DISK_LOCATION", "/b"),
            ("PDS_BLOBSTORE_DISK_TMP_LOCATION", "/t"),
        ])
        .unwrap();
        assert_eq!(
            c.blobstore,
            BlobstoreConfig::Disk {
                location: PathBuf::from("/b"),
                tmp_location: PathBuf::from("/t"),
            }
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let c = from_env(&[
            ("PDS_HOSTNAME", ""),
            ("PDS_PORT", ""),
            ("PDS_JWT_SECRET", ""),
        ])
        .unwrap();
        assert_eq!(c, Config::defaults().unwrap());
    }

    #[test]
    fn bad_values_name_their_setting() {
        let cases: &[(&str, &str)] = &[
            ("PDS_PORT", "http"),
            ("PDS_PORT", "0"),
            ("PDS_PORT", "70000"),
            ("PDS_BIND", "localhost:80"),
            ("PDS_HOSTNAME", "https://pds.example.com"),
            ("PDS_HOSTNAME", "pds.example.com:443"),
            ("PDS_HOSTNAME", "-bad-.com"),
            ("PDS_SERVICE_DID", "web:pds.example.com"),
            ("PDS_SERVICE_HANDLE_DOMAINS", "example.com"),
            ("PDS_SERVICE_HANDLE_DOMAINS", ".ok.com,."),
            ("PDS_DATABASE_URL", "mysql://x"),
            ("PDS_BLOB_UPLOAD_LIMIT", "-1"),
            ("PDS_BLOB_UPLOAD_LIMIT", "5mb"),
            ("PDS_DID_PLC_URL", "plc.directory"),
            (
                "PDS_RECOVERY_DID_KEY",
                "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF",
            ),
            ("PDS_RECOVERY_DID_KEY", "did:key:zNotAKey"),
            ("PDS_INVITE_REQUIRED", "yes"),
            ("PDS_INVITE_INTERVAL", "0"),
            ("PDS_INVITE_INTERVAL", "1w"),
            ("PDS_INVITE_EPOCH", "-5"),
            ("PDS_DEV_MODE", "maybe"),
            ("PDS_RATE_LIMITS_ENABLED", "2"),
            ("PDS_ENABLE_DID_DOC_WITH_SESSION", "on"),
            ("PDS_CRAWLERS", "https://ok.example.com,bsky.network"),
            ("PDS_PRIVACY_POLICY_URL", "ftp://example.com"),
            ("PDS_TERMS_OF_SERVICE_URL", "example.com/tos"),
            ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "zz"),
            ("PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "00"),
            ("PDS_KEY_ENCRYPTION_SECRET", "short"),
            ("PDS_REFRESH_GRACE_PERIOD_SECONDS", "2h"),
            ("PDS_FIREHOSE_RETENTION_HOURS", "0"),
            ("PDS_HANDLE_RESOLVER_NAMESERVERS", "dns.example.com"),
            ("PDS_EMAIL_SMTP_URL", "http://smtp.example.com"),
        ];
        for (key, value) in cases {
            let mut pairs = vec![(*key, *value)];
            if *key == "PDS_EMAIL_SMTP_URL" {
                pairs.push(("PDS_EMAIL_FROM_ADDRESS", "a@example.com"));
            }
            assert_eq!(&err_key(from_env(&pairs)), key, "{key}={value}");
        }
        // The message says what is wrong.
        let e = from_env(&[("PDS_PORT", "http")]).unwrap_err();
        assert_eq!(e.to_string(), "PDS_PORT: \"http\" is not a port (1-65535)");
    }

    #[test]
    fn inconsistent_settings() {
        let m = inconsistent(from_env(&[
            ("PDS_BLOBSTORE_S3_BUCKET", "b"),
            ("PDS_BLOBSTORE_DISK_LOCATION", "/blobs"),
            ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "a"),
            ("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "s"),
        ]));
        assert!(m.contains("PDS_BLOBSTORE_DISK_LOCATION"), "{m}");
        let m = inconsistent(from_env(&[
            ("PDS_BLOBSTORE_S3_BUCKET", "b"),
            ("PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "a"),
        ]));
        assert!(m.contains("PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY"), "{m}");
        let m = inconsistent(from_env(&[("PDS_BLOBSTORE_S3_ENDPOINT", "http://x")]));
        assert!(m.contains("PDS_BLOBSTORE_S3_ENDPOINT"), "{m}");
        let m = inconsistent(from_env(&[("PDS_EMAIL_SMTP_URL", "smtp://x")]));
        assert!(m.contains("PDS_EMAIL_FROM_ADDRESS"), "{m}");
        let m = inconsistent(from_env(&[("PDS_EMAIL_FROM_ADDRESS", "a@b.c")]));
        assert!(m.contains("PDS_EMAIL_SMTP_URL"), "{m}");
        let m = inconsistent(from_env(&[("PDS_BSKY_APP_VIEW_URL", "https://x.com")]));
        assert!(m.contains("PDS_BSKY_APP_VIEW_DID"), "{m}");
        let m = inconsistent(from_env(&[("PDS_REPORT_SERVICE_DID", "did:web:x.com")]));
        assert!(m.contains("PDS_REPORT_SERVICE_URL"), "{m}");
        assert_eq!(
            err_key(from_env(&[
                ("PDS_BSKY_APP_VIEW_URL", "https://x.com"),
                ("PDS_BSKY_APP_VIEW_DID", "x.com"),
            ])),
            "PDS_BSKY_APP_VIEW_DID"
        );
    }

    #[test]
    fn toml_file_and_env_override() {
        let file = parse_toml(
            r#"
            PDS_HOSTNAME = "file.example.com"
            port = 4000
            invite_required = false
            service_handle_domains = [".a.com", ".b.com"]
            Pds_Jwt_Secret = "from-file"
            "#,
        )
        .unwrap();
        let c = Config::from_sources(file.clone(), Vec::new()).unwrap();
        assert_eq!(c.hostname, "file.example.com");
        assert_eq!(c.port, 4000);
        assert!(!c.invite_required);
        assert_eq!(c.handle_domains, vec![".a.com", ".b.com"]);
        assert_eq!(c.secrets.jwt_secret.as_deref(), Some("from-file"));
        // The environment wins, key by key; empty env values do not erase.
        let c = Config::from_sources(
            file,
            env(&[
                ("PDS_PORT", "5000"),
                ("PDS_JWT_SECRET", "from-env"),
                ("PDS_HOSTNAME", ""),
            ]),
        )
        .unwrap();
        assert_eq!(c.port, 5000);
        assert_eq!(c.hostname, "file.example.com");
        assert_eq!(c.secrets.jwt_secret.as_deref(), Some("from-env"));
        assert!(!c.invite_required);
    }

    #[test]
    fn bad_toml_files() {
        assert!(parse_toml("hostname = ").is_err());
        let e = parse_toml("PDS_HOSTNAM = \"x\"").unwrap_err();
        assert!(e.contains("PDS_HOSTNAM"), "{e}");
        let e = parse_toml("[service]\nport = 1").unwrap_err();
        assert!(e.contains("service"), "{e}");
        let e = parse_toml("crawlers = [1, 2]").unwrap_err();
        assert!(e.contains("crawlers"), "{e}");
        let e = parse_toml("hostname = \"a\"\nPDS_HOSTNAME = \"b\"").unwrap_err();
        assert!(e.contains("twice"), "{e}");
        // Values from the file go through the same checks as the env.
        let file = parse_toml("port = \"abc\"").unwrap();
        assert_eq!(err_key(Config::from_sources(file, Vec::new())), "PDS_PORT");
    }

    #[test]
    fn load_reads_the_named_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pds.toml");
        std::fs::write(&path, "PDS_BLOB_UPLOAD_LIMIT = 1234\n").unwrap();
        // `load` also reads the process environment; only assert on a key
        // the test environment does not set.
        let c = Config::load(Some(&path)).unwrap();
        assert_eq!(c.blob_upload_limit, 1234);
        let e = Config::load(Some(&dir.path().join("missing.toml"))).unwrap_err();
        assert!(matches!(e, ConfigError::File { .. }), "{e:?}");
    }
}
