//! Rate limits (`PDS_RATE_LIMITS_ENABLED`), as the reference PDS applies
//! them: fixed windows of points per key, in memory (one process), or in
//! Redis (`PDS_REDIS_SCRATCH_ADDRESS`, with `PDS_REDIS_SCRATCH_PASSWORD`)
//! so that several processes share them. When Redis fails, the request is
//! let through and the failure logged (as the reference).
//!
//! | limit | window | points | key | where |
//! | --- | --- | --- | --- | --- |
//! | `global-ip` | 5 min | 3000 | client IP | every XRPC call but `sync.getRepo` and `sync.subscribeRepos` |
//! | `sync-get-repo-ip` | 5 min | 6000 | client IP | `com.atproto.sync.getRepo` |
//! | `create-session-day` / `create-session-5m` | 1 day / 5 min | 300 / 30 | identifier and IP | `server.createSession` |
//! | `create-account` | 5 min | 100 | IP | `server.createAccount` |
//! | `delete-account` | 5 min | 50 | IP | `server.deleteAccount` |
//! | `request-password-reset-day` / `-hour` | 1 day / 1 h | 50 / 15 | IP | `server.requestPasswordReset` |
//! | `reset-password` | 5 min | 50 | IP | `server.resetPassword` |
//! | `upload-blob` | 1 day | 1000 | IP | `repo.uploadBlob` |
//! | `update-handle-5m` / `-day` | 5 min / 1 day | 10 / 50 | DID | `identity.updateHandle` |
//! | `request-account-delete-day` / `-hour` (and `request-email-confirmation-…`, `request-email-update-…`) | 1 day / 1 h | 15 / 5 | DID | each of those methods |
//! | `repo-write-hour` / `repo-write-day` | 1 h / 1 day | 5000 / 35000 | DID | every repo write, shared: a create costs 3 points, an update 2, a delete 1 |
//!
//! The global limit is taken by a middleware before the method runs; the
//! method limits by the handlers once the request is authenticated and
//! its input read (their keys need both), as in the reference. A request
//! over a limit gets 429 `RateLimitExceeded` with `Retry-After`; every
//! limited response carries `RateLimit-Limit`, `RateLimit-Remaining`,
//! `RateLimit-Reset` (Unix seconds) and `RateLimit-Policy` (`points;w=secs`)
//! of the tightest limit it touched. Points spent over a limit still count
//! (as with the reference's limiter).
//!
//! The client IP is the socket peer; when the peer is a loopback,
//! link-local or private (unique-local) address (a proxy on the same host
//! or network), `X-Forwarded-For` is walked from its right end past such
//! addresses, as the reference's `trust proxy` setting does.
//!
//! `PDS_RATE_LIMIT_BYPASS_KEY` (sent as the `x-ratelimit-bypass` header)
//! and `PDS_RATE_LIMIT_BYPASS_IPS` (addresses or CIDR ranges) skip every
//! limit. `PDS_RATE_LIMIT_POINTS` (`name=points,...`, ours) changes the
//! points of named limits.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atproto_types::xrpc::http::header::{HeaderName, HeaderValue};
use atproto_types::xrpc::http::Extensions;
use atproto_types::xrpc::XrpcError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;
const DAY: u64 = 24 * HOUR;

/// One limit: a name (its key space and the name used to override its
/// points), a window and the points allowed per window and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub name: &'static str,
    pub window_secs: u64,
    pub points: u64,
}

const fn limit(name: &'static str, window_secs: u64, points: u64) -> Limit {
    Limit {
        name,
        window_secs,
        points,
    }
}

/// Every XRPC call but `sync.getRepo` (and the firehose), per IP.
pub const GLOBAL_IP: Limit = limit("global-ip", 5 * MINUTE, 3000);
/// `com.atproto.sync.getRepo`, per IP.
pub const SYNC_GET_REPO_IP: Limit = limit("sync-get-repo-ip", 5 * MINUTE, 6000);
/// `com.atproto.server.createSession`, per identifier and IP.
pub const CREATE_SESSION: &[Limit] = &[
    limit("create-session-day", DAY, 300),
    limit("create-session-5m", 5 * MINUTE, 30),
];
/// `com.atproto.server.createAccount`, per IP.
pub const CREATE_ACCOUNT: &[Limit] = &[limit("create-account", 5 * MINUTE, 100)];
/// `com.atproto.server.deleteAccount`, per IP.
pub const DELETE_ACCOUNT: &[Limit] = &[limit("delete-account", 5 * MINUTE, 50)];
/// `com.atproto.server.requestPasswordReset`, per IP.
pub const REQUEST_PASSWORD_RESET: &[Limit] = &[
    limit("request-password-reset-day", DAY, 50),
    limit("request-password-reset-hour", HOUR, 15),
];
/// `com.atproto.server.resetPassword`, per IP.
pub const RESET_PASSWORD: &[Limit] = &[limit("reset-password", 5 * MINUTE, 50)];
/// `com.atproto.repo.uploadBlob`, per IP.
pub const UPLOAD_BLOB: &[Limit] = &[limit("upload-blob", DAY, 1000)];
/// `com.atproto.identity.updateHandle`, per DID.
pub const UPDATE_HANDLE: &[Limit] = &[
    limit("update-handle-5m", 5 * MINUTE, 10),
    limit("update-handle-day", DAY, 50),
];
/// `com.atproto.server.requestAccountDelete`, per DID.
pub const REQUEST_ACCOUNT_DELETE: &[Limit] = &[
    limit("request-account-delete-day", DAY, 15),
    limit("request-account-delete-hour", HOUR, 5),
];
/// `com.atproto.server.requestEmailConfirmation`, per DID.
pub const REQUEST_EMAIL_CONFIRMATION: &[Limit] = &[
    limit("request-email-confirmation-day", DAY, 15),
    limit("request-email-confirmation-hour", HOUR, 5),
];
/// `com.atproto.server.requestEmailUpdate`, per DID.
pub const REQUEST_EMAIL_UPDATE: &[Limit] = &[
    limit("request-email-update-day", DAY, 15),
    limit("request-email-update-hour", HOUR, 5),
];
/// Every repository write, per DID (see [`WritePoints`]).
pub const REPO_WRITE: &[Limit] = &[
    limit("repo-write-hour", HOUR, 5000),
    limit("repo-write-day", DAY, 35000),
];

/// Every limit, for checking `PDS_RATE_LIMIT_POINTS`.
fn all_limits() -> impl Iterator<Item = &'static Limit> {
    [&GLOBAL_IP, &SYNC_GET_REPO_IP].into_iter().chain(
        [
            CREATE_SESSION,
            CREATE_ACCOUNT,
            DELETE_ACCOUNT,
            REQUEST_PASSWORD_RESET,
            RESET_PASSWORD,
            UPLOAD_BLOB,
            UPDATE_HANDLE,
            REQUEST_ACCOUNT_DELETE,
            REQUEST_EMAIL_CONFIRMATION,
            REQUEST_EMAIL_UPDATE,
            REPO_WRITE,
        ]
        .into_iter()
        .flatten(),
    )
}

/// Whether `name` names a limit.
pub fn is_limit_name(name: &str) -> bool {
    all_limits().any(|l| l.name == name)
}

/// The points repository writes cost (the reference's): a create 3, an
/// update 2, a delete 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WritePoints {
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
}

impl WritePoints {
    /// The points of these writes.
    pub fn points(self) -> u64 {
        self.creates
            .saturating_mul(3)
            .saturating_add(self.updates.saturating_mul(2))
            .saturating_add(self.deletes)
    }
}

/// Where one key stands in one limit after a consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub limit: u64,
    pub window_secs: u64,
    pub remaining: u64,
    /// Time until the window ends.
    pub reset_in: Duration,
    /// The consume went over the limit.
    pub exceeded: bool,
}

/// An IP range of `PDS_RATE_LIMIT_BYPASS_IPS`: an address or a CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for IpRange {
    type Err = String;
    fn from_str(s: &str) -> Result<IpRange, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: bad prefix length"))?,
        };
        Ok(IpRange { addr, prefix })
    }
}

impl IpRange {
    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
            let keep = u32::from(prefix).min(width);
            if keep == 0 {
                0
            } else {
                bits >> (width - keep)
            }
        }
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                masked(u32::from(a).into(), 32, self.prefix)
                    == masked(u32::from(b).into(), 32, self.prefix)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                masked(u128::from(a), 128, self.prefix) == masked(u128::from(b), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The settings of the limiter.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `PDS_RATE_LIMIT_BYPASS_KEY`.
    pub bypass_key: Option<String>,
    /// `PDS_RATE_LIMIT_BYPASS_IPS`.
    pub bypass_ips: Vec<IpRange>,
    /// `PDS_RATE_LIMIT_POINTS`: points by limit name.
    pub points: BTreeMap<String, u64>,
    /// `PDS_REDIS_SCRATCH_ADDRESS` (`host:port`).
    pub redis_address: Option<String>,
    /// `PDS_REDIS_SCRATCH_PASSWORD`.
    pub redis_password: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field(
                "bypass_key",
                &self.bypass_key.as_ref().map(|_| "<redacted>"),
            )
            .field("bypass_ips", &self.bypass_ips)
            .field("points", &self.points)
            .field("redis_address", &self.redis_address)
            .field(
                "redis_password",
                &self.redis_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// The Redis URL of `address` (`host:port`) with `password`.
pub fn redis_url(address: &str, password: Option<&str>) -> Result<url::Url, String> {
    let mut url = url::Url::parse(&format!("redis://{address}/"))
        .ok()
        .filter(|u| u.host_str().is_some() && u.path() == "/" && u.username().is_empty())
        .ok_or_else(|| format!("{address:?} is not host:port"))?;
    if let Some(pw) = password {
        url.set_password(Some(pw))
            .map_err(|_| "cannot use this password".to_owned())?;
    }
    Ok(url)
}

struct Window {
    started: Instant,
    consumed: u64,
    window: Duration,
}

/// Where the windows are kept.
enum Store {
    Memory {
        windows: Mutex<HashMap<(&'static str, String), Window>>,
        ops: AtomicU64,
    },
    /// Keys `rl-<limit>:<key>` counting points, expiring with the window.
    Redis(redis::aio::ConnectionManager),
}

/// The limiter: fixed windows per limit and key.
pub struct RateLimiter {
    settings: Settings,
    store: Store,
}

/// The limiter could not start.
#[derive(Debug, thiserror::Error)]
pub enum RateLimitStartError {
    #[error("PDS_REDIS_SCRATCH_ADDRESS: {0}")]
    Address(String),
    #[error("cannot connect to Redis at PDS_REDIS_SCRATCH_ADDRESS: {0}")]
    Redis(#[from] redis::RedisError),
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").finish_non_exhaustive()
    }
}

/// Expired windows are dropped every this many consumes.
const SWEEP_EVERY: u64 = 4096;

impl RateLimiter {
    /// An in-memory limiter with `settings` (Redis settings ignored).
    pub fn new(settings: Settings) -> RateLimiter {
        RateLimiter {
            settings,
            store: Store::Memory {
                windows: Mutex::new(HashMap::new()),
                ops: AtomicU64::new(0),
            },
        }
    }

    /// The limiter `settings` ask for: in Redis when an address is set
    /// (connecting now), else in memory.
    pub async fn start(settings: Settings) -> Result<RateLimiter, RateLimitStartError> {
        let Some(address) = &settings.redis_address else {
            return Ok(RateLimiter::new(settings));
        };
        let url = redis_url(address, settings.redis_password.as_deref())
            .map_err(RateLimitStartError::Address)?;
        let manager = redis::Client::open(url)?.get_connection_manager().await?;
        Ok(RateLimiter {
            settings,
            store: Store::Redis(manager),
        })
    }

    /// Spends `points` of `key` in `limit`; `None` when the store failed
    /// (the request is then not limited).
    async fn consume(&self, limit: &Limit, key: &str, points: u64) -> Option<Status> {
        match &self.store {
            Store::Memory { .. } => Some(self.consume_at(limit, key, points, Instant::now())),
            Store::Redis(manager) => {
                let max = self.points_of(limit);
                let window_ms = limit.window_secs.saturating_mul(1000);
                let rkey = format!("rl-{}:{key}", limit.name);
                let mut conn = manager.clone();
                let reply: redis::RedisResult<(Option<String>, u64, i64)> = redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&rkey)
                    .arg(0)
                    .arg("PX")
                    .arg(window_ms)
                    .arg("NX")
                    .cmd("INCRBY")
                    .arg(&rkey)
                    .arg(points)
                    .cmd("PTTL")
                    .arg(&rkey)
                    .query_async(&mut conn)
                    .await;
                match reply {
                    Ok((_, consumed, pttl)) => Some(Status {
                        limit: max,
                        window_secs: limit.window_secs,
                        remaining: max.saturating_sub(consumed),
                        reset_in: match u64::try_from(pttl) {
                            Ok(ms) => Duration::from_millis(ms),
                            Err(_) => Duration::from_millis(window_ms),
                        },
                        exceeded: consumed > max,
                    }),
                    Err(e) => {
                        tracing::error!(error = %e, limit = limit.name, "rate limiter failed to consume points");
                        None
                    }
                }
            }
        }
    }

    /// The points of `limit`, after `PDS_RATE_LIMIT_POINTS`.
    fn points_of(&self, limit: &Limit) -> u64 {
        self.settings
            .points
            .get(limit.name)
            .copied()
            .unwrap_or(limit.points)
    }

    /// Spends `points` of `key` in `limit` at `now`, in memory (a Redis
    /// limiter keeps a memory window for nothing else: it is not used).
    fn consume_at(&self, limit: &Limit, key: &str, points: u64, now: Instant) -> Status {
        let max = self.points_of(limit);
        let window = Duration::from_secs(limit.window_secs);
        let Store::Memory { windows, ops } = &self.store else {
            // Only the memory store is timed by the caller.
            return Status {
                limit: max,
                window_secs: limit.window_secs,
                remaining: max,
                reset_in: window,
                exceeded: false,
            };
        };
        let mut windows = windows.lock().unwrap_or_else(PoisonError::into_inner);
        if ops.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            windows.retain(|_, w| now.duration_since(w.started) < w.window);
        }
        let w = windows
            .entry((limit.name, key.to_owned()))
            .or_insert(Window {
                started: now,
                consumed: 0,
                window,
            });
        if now.duration_since(w.started) >= window {
            w.started = now;
            w.consumed = 0;
        }
        w.consumed = w.consumed.saturating_add(points);
        Status {
            limit: max,
            window_secs: limit.window_secs,
            remaining: max.saturating_sub(w.consumed),
            reset_in: window.saturating_sub(now.duration_since(w.started)),
            exceeded: w.consumed > max,
        }
    }

    /// Whether the request skips every limit (bypass key or IP).
    fn bypassed(&self, headers: &atproto_types::xrpc::http::HeaderMap, ip: Option<IpAddr>) -> bool {
        if let Some(key) = &self.settings.bypass_key {
            let sent = headers
                .get("x-ratelimit-bypass")
                .and_then(|v| v.to_str().ok());
            if sent.is_some_and(|s| crate::auth::constant_time_eq(s.as_bytes(), key.as_bytes())) {
                return true;
            }
        }
        ip.is_some_and(|ip| self.settings.bypass_ips.iter().any(|r| r.contains(ip)))
    }
}

/// A request's rate-limit context, put in its extensions by
/// [`middleware`]: the client key and the tightest status so far. Absent
/// when limits are off or bypassed, and then nothing is limited.
#[derive(Clone)]
pub struct RequestLimits {
    client: String,
    tightest: Arc<Mutex<Option<Status>>>,
}

impl RequestLimits {
    fn new(client: String) -> RequestLimits {
        RequestLimits {
            client,
            tightest: Arc::new(Mutex::new(None)),
        }
    }

    /// The client's IP (as text), the key of per-IP limits.
    pub fn client_ip(&self) -> &str {
        &self.client
    }

    /// Keeps the tightest status: an exceeded one, else the one with the
    /// fewest points remaining.
    fn record(&self, s: Status) {
        let mut t = self.tightest.lock().unwrap_or_else(PoisonError::into_inner);
        let replace = match *t {
            None => true,
            Some(old) if old.exceeded => false,
            Some(old) => s.exceeded || s.remaining < old.remaining,
        };
        if replace {
            *t = Some(s);
        }
    }

    fn tightest(&self) -> Option<Status> {
        *self.tightest.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request went over a limit (429 `RateLimitExceeded`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Rate Limit Exceeded")]
pub struct RateLimited;

impl<E> From<RateLimited> for XrpcError<E> {
    fn from(_: RateLimited) -> XrpcError<E> {
        XrpcError::rate_limit_exceeded("Rate Limit Exceeded")
    }
}

/// What a method's limits are keyed by.
#[derive(Debug, Clone, Copy)]
pub enum Key<'a> {
    /// The client IP.
    Ip,
    /// A DID (the authenticated account).
    Did(&'a str),
    /// A login identifier, together with the client IP (createSession).
    IdentifierAndIp(&'a str),
}

/// Spends `points` in each of `limits` for the request whose extensions
/// are `ext` (a no-op when limits are off or bypassed, or `points` is 0).
pub async fn consume(
    state: &AppState,
    ext: &Extensions,
    limits: &[Limit],
    key: Key<'_>,
    points: u64,
) -> Result<(), RateLimited> {
    let (Some(limiter), Some(ctx)) = (&state.rate_limits, ext.get::<RequestLimits>()) else {
        return Ok(());
    };
    if points == 0 {
        return Ok(());
    }
    let key = match key {
        Key::Ip => ctx.client.clone(),
        Key::Did(did) => did.to_owned(),
        Key::IdentifierAndIp(id) => format!("{id}-{}", ctx.client),
    };
    let mut exceeded = false;
    for l in limits {
        if let Some(s) = limiter.consume(l, &key, points).await {
            exceeded |= s.exceeded;
            ctx.record(s);
        }
    }
    if exceeded {
        Err(RateLimited)
    } else {
        Ok(())
    }
}

/// Whether `ip` is an address `X-Forwarded-For` is trusted from: loopback,
/// link-local, or private / unique-local (the reference's trusted proxies).
fn trusted_proxy(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_private(),
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xffc0) == 0xfe80 || (first & 0xfe00) == 0xfc00
        }
    }
}

/// The client of a request from peer `peer` with `X-Forwarded-For` value
/// `forwarded`: the peer, or walking the header from the right while the
/// address in hand is a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, forwarded: Option<&str>) -> String {
    let Some(mut current) = peer else {
        return "unknown".to_owned();
    };
    let hops = forwarded
        .map(|f| f.rsplit(',').map(str::trim).collect::<Vec<_>>())
        .unwrap_or_default();
    for hop in hops {
        if !trusted_proxy(current) {
            break;
        }
        match hop.parse::<IpAddr>() {
            Ok(ip) => current = ip,
            // Not an address: it is where the trusted chain ends.
            Err(_) => return hop.to_owned(),
        }
    }
    current.to_canonical().to_string()
}

/// Sets the `RateLimit-*` headers of `status` (and `Retry-After` when it
/// was exceeded) on `response`.
fn set_headers(response: &mut Response, status: Status) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let reset_at = (now + status.reset_in).as_secs();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set("ratelimit-limit", status.limit.to_string());
    set("ratelimit-reset", reset_at.to_string());
    set("ratelimit-remaining", status.remaining.to_string());
    set(
        "ratelimit-policy",
        format!("{};w={}", status.limit, status.window_secs),
    );
    if status.exceeded {
        let secs = status.reset_in.as_millis().div_ceil(1000);
        set("retry-after", secs.to_string());
    }
}

/// The method limited by `path`'s own IP limit instead of the global one.
const SYNC_GET_REPO_PATH: &str = "/xrpc/com.atproto.sync.getRepo";
/// Not limited: a long-lived WebSocket, and the health check (not an
/// XRPC method).
const UNLIMITED_PATHS: &[&str] = &["/xrpc/com.atproto.sync.subscribeRepos", "/xrpc/_health"];

/// The middleware: for XRPC calls, when limits are on and not bypassed,
/// takes the global (or getRepo) limit of the client IP, makes the
/// request's [`RequestLimits`] available to the handler, and puts the
/// tightest limit's headers on the response.
pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(limiter) = &state.rate_limits else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if !path.starts_with("/xrpc/") || UNLIMITED_PATHS.contains(&path) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let client = client_ip(peer, forwarded);
    if limiter.bypassed(req.headers(), client.parse().ok()) {
        return next.run(req).await;
    }
    let ctx = RequestLimits::new(client);
    let global = if path == SYNC_GET_REPO_PATH {
        SYNC_GET_REPO_IP
    } else {
        GLOBAL_IP
    };
    let status = limiter.consume(&global, &ctx.client, 1).await;
    if let Some(s) = status {
        ctx.record(s);
    }
    let mut response = if status.is_some_and(|s| s.exceeded) {
        XrpcError::<atproto_types::xrpc::NoNamedError>::from(RateLimited).into_response()
    } else {
        req.extensions_mut().insert(ctx.clone());
        next.run(req).await
    };
    if let Some(tightest) = ctx.tightest() {
        set_headers(&mut response, tightest);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_windows_count_points() {
        let l = RateLimiter::new(Settings::default());
        let lim = limit("repo-write-hour", 3600, 10);
        let t0 = Instant::now();
        let s = l.consume_at(&lim, "did:a", 3, t0);
        assert_eq!((s.remaining, s.exceeded), (7, false));
        let s = l.consume_at(&lim, "did:a", 7, t0);
        assert_eq!((s.remaining, s.exceeded), (0, false));
        let s = l.consume_at(&lim, "did:a", 1, t0 + Duration::from_secs(10));
        assert_eq!((s.remaining, s.exceeded), (0, true));
        assert_eq!(s.reset_in, Duration::from_secs(3590));
        // Another key is unaffected; a new window starts afresh.
        assert!(!l.consume_at(&lim, "did:b", 1, t0).exceeded);
        let s = l.consume_at(&lim, "did:a", 1, t0 + Duration::from_secs(3600));
        assert_eq!((s.remaining, s.exceeded), (9, false));
    }

    #[test]
    fn points_can_be_overridden() {
        let mut settings = Settings::default();
        settings.points.insert("create-session-5m".into(), 2);
        let l = RateLimiter::new(settings);
        let t0 = Instant::now();
        assert_eq!(l.consume_at(&CREATE_SESSION[1], "k", 1, t0).limit, 2);
        assert_eq!(l.consume_at(&CREATE_SESSION[0], "k", 1, t0).limit, 300);
        assert!(is_limit_name("repo-write-day"));
        assert!(!is_limit_name("repo-write-week"));
    }

    #[test]
    fn write_points() {
        let w = WritePoints {
            creates: 2,
            updates: 1,
            deletes: 3,
        };
        assert_eq!(w.points(), 11);
    }

    #[test]
    fn client_ips() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(Some(public), Some("198.51.100.1")), "203.0.113.9");
        assert_eq!(client_ip(Some(lo), None), "127.0.0.1");
        assert_eq!(client_ip(Some(lo), Some("198.51.100.1")), "198.51.100.1");
        // Walk from the right past trusted proxies only.
        assert_eq!(
            client_ip(Some(lo), Some("1.1.1.1, 198.51.100.1, 10.0.0.2")),
            "198.51.100.1"
        );
        assert_eq!(
            client_ip(Some(lo), Some("10.0.0.3, 192.168.1.1")),
            "10.0.0.3"
        );
        assert_eq!(client_ip(Some(lo), Some("junk")), "junk");
        assert_eq!(
            client_ip(
                Some("::ffff:127.0.0.1".parse().unwrap()),
                Some("198.51.100.7")
            ),
            "198.51.100.7"
        );
        assert_eq!(client_ip(None, Some("198.51.100.1")), "unknown");
    }

    #[test]
    fn ip_ranges() {
        let r: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(r.contains("10.2.3.4".parse().unwrap()));
        assert!(r.contains("::ffff:10.2.3.4".parse().unwrap()));
        assert!(!r.contains("11.0.0.1".parse().unwrap()));
        let one: IpRange = "203.0.113.9".parse().unwrap();
        assert!(one.contains("203.0.113.9".parse().unwrap()));
        assert!(!one.contains("203.0.113.8".parse().unwrap()));
        let v6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<IpRange>().is_err());
        assert!("nope".parse::<IpRange>().is_err());
    }
}
