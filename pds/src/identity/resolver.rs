//! DID and handle resolution with an in-memory cache.
//!
//! * did:plc: the PLC directory (`GET /<did>`).
//! * did:web: `https://<host>/.well-known/did.json` (http for `localhost`
//!   and `127.0.0.1`); DIDs with a path are refused, as by the reference.
//! * Handles: DNS TXT `_atproto.<handle>` (exactly one `did=` value), else
//!   `https://<handle>/.well-known/atproto-did` (first line, starting
//!   `did:`), as the reference's `HandleResolver`.
//!
//! Resolved documents are cached for [`ResolverConfig::ttl`], at most
//! [`ResolverConfig::max_entries`] of them (the oldest entries go first);
//! "not found" is not cached.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig as DnsConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use serde_json::Value;

use super::doc::{self, AtprotoData, DocError};
use crate::plc::{PlcClient, PlcError};

/// Largest DID document accepted from a did:web host.
const MAX_DOC_BYTES: usize = 64 * 1024;
/// The DNS name prefix of handle TXT records.
const DNS_PREFIX: &str = "_atproto.";
/// The TXT value prefix.
const TXT_PREFIX: &str = "did=";

/// Why a DID could not be resolved (other than "it does not exist").
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("unsupported DID method or form: {0}")]
    Unsupported(String),
    #[error("PLC directory: {0}")]
    Plc(#[from] PlcError),
    #[error("fetching {url}: {message}")]
    Fetch { url: String, message: String },
    #[error("{0}")]
    Doc(#[from] DocError),
}

/// Resolver settings.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// How long a resolved document is trusted.
    pub ttl: Duration,
    /// Most documents cached.
    pub max_entries: usize,
    /// Timeout of one did:web or handle fetch, and of a DNS lookup.
    pub timeout: Duration,
    /// DNS servers for handle TXT lookups; empty: the system's.
    pub nameservers: Vec<SocketAddr>,
}

impl Default for ResolverConfig {
    fn default() -> ResolverConfig {
        ResolverConfig {
            ttl: Duration::from_secs(3600),
            max_entries: 10_000,
            timeout: Duration::from_secs(3),
            nameservers: Vec::new(),
        }
    }
}

struct Cached {
    at: Instant,
    doc: Value,
}

/// Resolves DIDs and handles; cheap to clone.
#[derive(Clone)]
pub struct IdentityResolver {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    plc: PlcClient,
    config: ResolverConfig,
    cache: Mutex<HashMap<String, Cached>>,
    dns: Option<TokioResolver>,
}

impl std::fmt::Debug for IdentityResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityResolver")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

fn dns_resolver(config: &ResolverConfig) -> Option<TokioResolver> {
    let mut builder = if config.nameservers.is_empty() {
        match TokioResolver::builder_tokio() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "no system DNS configuration: handle TXT lookups disabled");
                return None;
            }
        }
    } else {
        let mut group = NameServerConfigGroup::new();
        for addr in &config.nameservers {
            group.merge(NameServerConfigGroup::from_ips_clear(
                &[addr.ip()],
                addr.port(),
                true,
            ));
        }
        TokioResolver::builder_with_config(
            DnsConfig::from_parts(None, Vec::new(), group),
            TokioConnectionProvider::default(),
        )
    };
    let opts = builder.options_mut();
    opts.timeout = config.timeout;
    opts.attempts = 1;
    opts.cache_size = 0;
    Some(builder.build())
}

/// The DID in a handle's TXT records: exactly one `did=` value (each
/// record's character strings joined), as the reference.
pub fn parse_txt_records(records: &[Vec<String>]) -> Option<String> {
    let found: Vec<String> = records
        .iter()
        .map(|chunks| chunks.concat())
        .filter(|r| r.starts_with(TXT_PREFIX))
        .collect();
    match found.as_slice() {
        [one] => {
            let did = one[TXT_PREFIX.len()..].trim();
            did.starts_with("did:").then(|| did.to_owned())
        }
        _ => None,
    }
}

/// The DID in an `/.well-known/atproto-did` body: its first line, trimmed,
/// when it starts with `did:`.
pub fn parse_well_known_body(body: &str) -> Option<String> {
    let line = body.lines().next()?.trim();
    (line.starts_with("did:") && line.len() <= 2048).then(|| line.to_owned())
}

impl IdentityResolver {
    /// A resolver using `http` for did:web and handle fetches and `plc`
    /// for did:plc.
    pub fn new(http: reqwest::Client, plc: PlcClient, config: ResolverConfig) -> IdentityResolver {
        let dns = dns_resolver(&config);
        IdentityResolver {
            inner: Arc::new(Inner {
                http,
                plc,
                config,
                cache: Mutex::new(HashMap::new()),
                dns,
            }),
        }
    }

    fn cached(&self, did: &str) -> Option<Value> {
        let cache = self.inner.cache.lock().ok()?;
        let entry = cache.get(did)?;
        (entry.at.elapsed() < self.inner.config.ttl).then(|| entry.doc.clone())
    }

    fn store(&self, did: &str, doc: &Value) {
        let Ok(mut cache) = self.inner.cache.lock() else {
            return;
        };
        let ttl = self.inner.config.ttl;
        if cache.len() >= self.inner.config.max_entries {
            cache.retain(|_, e| e.at.elapsed() < ttl);
        }
        while cache.len() >= self.inner.config.max_entries.max(1) {
            let Some(oldest) = cache
                .iter()
                .min_by_key(|(_, e)| e.at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            cache.remove(&oldest);
        }
        cache.insert(
            did.to_owned(),
            Cached {
                at: Instant::now(),
                doc: doc.clone(),
            },
        );
    }

    /// Forgets a cached document (after this server changed it).
    pub fn invalidate(&self, did: &str) {
        if let Ok(mut cache) = self.inner.cache.lock() {
            cache.remove(did);
        }
    }

    /// The DID document of `did`, `None` when it does not exist. With
    /// `force_refresh`, the cache is bypassed (and refilled).
    pub async fn resolve_did(
        &self,
        did: &str,
        force_refresh: bool,
    ) -> Result<Option<Value>, ResolveError> {
        if !force_refresh {
            if let Some(doc) = self.cached(did) {
                return Ok(Some(doc));
            }
        }
        let doc = if did.starts_with("did:plc:") {
            self.inner.plc.resolve(did).await?
        } else if did.starts_with("did:web:") {
            self.fetch_did_web(did).await?
        } else {
            return Err(ResolveError::Unsupported(did.to_owned()));
        };
        match doc {
            Some(doc) => {
                // A document for another DID is not this DID's.
                doc::parts(did, &doc)?;
                self.store(did, &doc);
                Ok(Some(doc))
            }
            None => {
                self.invalidate(did);
                Ok(None)
            }
        }
    }

    async fn fetch_did_web(&self, did: &str) -> Result<Option<Value>, ResolveError> {
        let url = doc::did_web_url(did).ok_or_else(|| ResolveError::Unsupported(did.to_owned()))?;
        let fetch_err = |message: String| ResolveError::Fetch {
            url: url.clone(),
            message,
        };
        let res = self
            .inner
            .http
            .get(&url)
            .timeout(self.inner.config.timeout)
            .send()
            .await
            .map_err(|e| fetch_err(e.to_string()))?;
        let status = res.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(fetch_err(format!("HTTP {status}")));
        }
        let body = read_limited(res, MAX_DOC_BYTES).await.map_err(fetch_err)?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| fetch_err(format!("not JSON: {e}")))
    }

    /// The atproto parts of `did`'s document (signing key and PDS
    /// required); `None` when the DID does not exist.
    pub async fn resolve_atproto_data(
        &self,
        did: &str,
        force_refresh: bool,
    ) -> Result<Option<AtprotoData>, ResolveError> {
        match self.resolve_did(did, force_refresh).await? {
            Some(d) => Ok(Some(doc::atproto_data(did, &d)?)),
            None => Ok(None),
        }
    }

    /// The DID a handle claims, by DNS TXT then HTTPS; `None` when neither
    /// answers. The handle must already be valid and normalised.
    pub async fn resolve_handle(&self, handle: &str) -> Option<String> {
        if let Some(did) = self.resolve_handle_dns(handle).await {
            return Some(did);
        }
        self.resolve_handle_http(handle).await
    }

    async fn resolve_handle_dns(&self, handle: &str) -> Option<String> {
        let dns = self.inner.dns.as_ref()?;
        let name = format!("{DNS_PREFIX}{handle}.");
        let lookup = match dns.txt_lookup(name.as_str()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(handle, error = %e, "handle TXT lookup failed");
                return None;
            }
        };
        let records: Vec<Vec<String>> = lookup
            .iter()
            .map(|txt| {
                txt.txt_data()
                    .iter()
                    .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
                    .collect()
            })
            .collect();
        parse_txt_records(&records)
    }

    async fn resolve_handle_http(&self, handle: &str) -> Option<String> {
        let url = format!("https://{handle}/.well-known/atproto-did");
        let res = self
            .inner
            .http
            .get(&url)
            .timeout(self.inner.config.timeout)
            .send()
            .await
            .ok()?;
        if !res.status().is_success() {
            return None;
        }
        let body = read_limited(res, 4096).await.ok()?;
        parse_well_known_body(&String::from_utf8_lossy(&body))
    }
}

/// Reads a response body of at most `limit` bytes.
async fn read_limited(mut res: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > limit {
            return Err(format!("response larger than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(records: &[&[&str]]) -> Vec<Vec<String>> {
        records
            .iter()
            .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn txt_records() {
        assert_eq!(
            parse_txt_records(&txt(&[&["did=did:plc:abc"]])).as_deref(),
            Some("did:plc:abc")
        );
        // Character strings of one record are joined.
        assert_eq!(
            parse_txt_records(&txt(&[&["v=spf1"], &["did=did:pl", "c:abc"]])).as_deref(),
            Some("did:plc:abc")
        );
        // Two did= records: ambiguous, refused (as the reference).
        assert_eq!(
            parse_txt_records(&txt(&[&["did=did:plc:a"], &["did=did:plc:b"]])),
            None
        );
        assert_eq!(parse_txt_records(&txt(&[&["hello"]])), None);
        assert_eq!(parse_txt_records(&txt(&[&["did=notadid"]])), None);
        assert_eq!(parse_txt_records(&[]), None);
    }

    #[test]
    fn well_known_bodies() {
        assert_eq!(
            parse_well_known_body("did:plc:abc\n").as_deref(),
            Some("did:plc:abc")
        );
        assert_eq!(
            parse_well_known_body("  did:web:example.com  \nmore").as_deref(),
            Some("did:web:example.com")
        );
        assert_eq!(parse_well_known_body("<html>"), None);
        assert_eq!(parse_well_known_body(""), None);
    }

    fn resolver(max_entries: usize, ttl: Duration) -> IdentityResolver {
        let http = reqwest::Client::new();
        let plc = PlcClient::new(http.clone(), "http://127.0.0.1:9");
        IdentityResolver::new(
            http,
            plc,
            ResolverConfig {
                ttl,
                max_entries,
                timeout: Duration::from_millis(200),
                nameservers: vec!["127.0.0.1:9".parse().unwrap()],
            },
        )
    }

    #[tokio::test]
    async fn cache_expires_and_is_bounded() {
        let r = resolver(2, Duration::from_secs(60));
        let doc = |d: &str| serde_json::json!({"id": d});
        r.store("did:plc:a", &doc("did:plc:a"));
        r.store("did:plc:b", &doc("did:plc:b"));
        r.store("did:plc:c", &doc("did:plc:c"));
        // The oldest went.
        assert!(r.cached("did:plc:a").is_none());
        assert_eq!(r.cached("did:plc:c"), Some(doc("did:plc:c")));
        assert_eq!(r.inner.cache.lock().unwrap().len(), 2);
        // A cached document answers without the (unreachable) directory.
        assert_eq!(
            r.resolve_did("did:plc:b", false).await.unwrap(),
            Some(doc("did:plc:b"))
        );
        // A forced refresh goes to the directory.
        assert!(matches!(
            r.resolve_did("did:plc:b", true).await,
            Err(ResolveError::Plc(_))
        ));
        r.invalidate("did:plc:c");
        assert!(r.cached("did:plc:c").is_none());

        let short = resolver(10, Duration::from_millis(1));
        short.store("did:plc:a", &doc("did:plc:a"));
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(short.cached("did:plc:a").is_none());
    }

    #[tokio::test]
    async fn unsupported_dids() {
        let r = resolver(2, Duration::from_secs(60));
        for did in ["did:key:zabc", "did:web:example.com:path"] {
            assert!(matches!(
                r.resolve_did(did, false).await,
                Err(ResolveError::Unsupported(_))
            ));
        }
    }
}
