//! Telling relays (`PDS_CRAWLERS`) that this server has new data.
//!
//! A task follows the sequencer: whenever events are sequenced (commits,
//! identity and account changes, from this process or, through the
//! store's notifications, another one), every relay is asked to crawl with
//! `POST /xrpc/com.atproto.sync.requestCrawl {"hostname": PDS_HOSTNAME}`.
//! Each relay has its own task: after a request it waits
//! [`CrawlerConfig::interval`] (20 minutes, the reference PDS's threshold)
//! before the next, so a busy server calls each relay at most that often;
//! activity during the wait leads to one request when it ends. A failed
//! request (network error, 5xx, 429) is retried with exponential backoff;
//! a relay refusing the request (another 4xx, e.g. `HostBanned`) is not
//! asked again until the next activity after the interval.

use std::sync::Arc;
use std::time::Duration;

use pds_store::Store;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// When and how relays are asked to crawl.
#[derive(Debug, Clone)]
pub struct CrawlerConfig {
    /// The relays' base URLs.
    pub relays: Vec<String>,
    /// This server's hostname, sent in the request.
    pub hostname: String,
    /// Least time between two requests to one relay.
    pub interval: Duration,
    /// Delay before the first retry of a failed request; doubled each time.
    pub backoff_initial: Duration,
    /// Longest delay between retries.
    pub backoff_max: Duration,
    /// Attempts per notification (the first one included).
    pub max_attempts: u32,
    /// Timeout of one request.
    pub request_timeout: Duration,
}

impl CrawlerConfig {
    /// The defaults for `relays` and `hostname`: at most one request per
    /// relay every 20 minutes; retries after 1 s, 2 s, 4 s… up to 5 minutes
    /// apart, 10 attempts.
    pub fn new(relays: Vec<String>, hostname: impl Into<String>) -> CrawlerConfig {
        CrawlerConfig {
            relays,
            hostname: hostname.into(),
            interval: Duration::from_secs(20 * 60),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(5 * 60),
            max_attempts: 10,
            request_timeout: Duration::from_secs(30),
        }
    }
}

/// Why one request failed.
#[derive(Debug, thiserror::Error)]
enum CrawlError {
    /// Worth retrying: network error, timeout, 5xx, 429.
    #[error("{0}")]
    Transient(String),
    /// The relay refused the request.
    #[error("{0}")]
    Refused(String),
}

/// The running crawler tasks; dropping it does not stop them, [`stop`]
/// does.
///
/// [`stop`]: Crawlers::stop
pub struct Crawlers {
    relays: Vec<Arc<Notify>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Crawlers {
    /// Starts one task per relay and, when `store` is given, a task that
    /// notifies them whenever events are sequenced. With no relays, starts
    /// nothing.
    pub fn start(http: reqwest::Client, config: CrawlerConfig, store: Option<Store>) -> Crawlers {
        let config = Arc::new(config);
        let mut relays = Vec::new();
        let mut tasks = Vec::new();
        for url in &config.relays {
            let notify = Arc::new(Notify::new());
            relays.push(notify.clone());
            tasks.push(tokio::spawn(relay_task(
                http.clone(),
                config.clone(),
                url.trim_end_matches('/').to_owned(),
                notify,
            )));
        }
        if let (Some(store), false) = (store, relays.is_empty()) {
            tasks.push(tokio::spawn(follow_sequencer(store, relays.clone())));
        }
        Crawlers { relays, tasks }
    }

    /// Signals new data: every relay is asked to crawl as soon as its
    /// interval allows.
    pub fn notify_of_update(&self) {
        for r in &self.relays {
            r.notify_one();
        }
    }

    /// Stops the tasks.
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Notifies the relays whenever the sequencer moves past what was seen.
async fn follow_sequencer(store: Store, relays: Vec<Arc<Notify>>) {
    // Woken by local commits and PostgreSQL notifications; the poll is
    // only a fallback.
    let mut sub = store
        .sequencer()
        .subscribe()
        .with_poll_interval(Duration::from_secs(30));
    let mut cursor = loop {
        match store.sequencer().current_seq().await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "crawlers: cannot read the sequencer");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    };
    loop {
        match sub.next_batch(cursor, 1, Duration::from_secs(3600)).await {
            Ok(events) if events.is_empty() => {}
            Ok(events) => {
                let seen = events.last().map(|e| e.seq).unwrap_or(cursor);
                cursor = match store.sequencer().current_seq().await {
                    Ok(s) => s.max(seen),
                    Err(_) => seen,
                };
                for r in &relays {
                    r.notify_one();
                }
                // A busy server's events are coalesced: the relays hear of
                // them at most every 20 minutes anyway.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "crawlers: cannot read the sequencer");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

async fn relay_task(
    http: reqwest::Client,
    config: Arc<CrawlerConfig>,
    relay: String,
    notify: Arc<Notify>,
) {
    let url = format!("{relay}/xrpc/com.atproto.sync.requestCrawl");
    let body = serde_json::json!({ "hostname": config.hostname });
    loop {
        notify.notified().await;
        let mut delay = config.backoff_initial;
        let mut attempt = 1;
        loop {
            match request_crawl(&http, &url, &body, config.request_timeout).await {
                Ok(()) => {
                    tracing::info!(relay = %relay, "requested a crawl");
                    break;
                }
                Err(CrawlError::Refused(e)) => {
                    tracing::warn!(relay = %relay, error = %e, "the relay refused the crawl request");
                    break;
                }
                Err(CrawlError::Transient(e)) if attempt < config.max_attempts => {
                    tracing::warn!(relay = %relay, error = %e, attempt, retry_in = ?delay, "crawl request failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(config.backoff_max);
                    attempt += 1;
                }
                Err(CrawlError::Transient(e)) => {
                    tracing::warn!(relay = %relay, error = %e, attempt, "crawl request failed; giving up until the next update");
                    break;
                }
            }
        }
        // At most one request per interval; activity meanwhile leaves a
        // permit in `notify`, so it is reported when the interval ends.
        tokio::time::sleep(config.interval).await;
    }
}

async fn request_crawl(
    http: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<(), CrawlError> {
    let res = http
        .post(url)
        .json(body)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| CrawlError::Transient(e.to_string()))?;
    let status = res.status();
    if status.is_success() {
        return Ok(());
    }
    let text = res.text().await.unwrap_or_default();
    let detail = format!("{status}: {}", text.chars().take(300).collect::<String>());
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(CrawlError::Transient(detail))
    } else {
        Err(CrawlError::Refused(detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::{Json, Router};

    /// A relay answering `failures` 503s, then 200s (or 400s when
    /// `refuse`), counting requests and keeping the bodies.
    #[derive(Clone, Default)]
    struct Relay {
        calls: Arc<AtomicUsize>,
        failures: usize,
        refuse: bool,
        bodies: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    }

    async fn handle(
        State(r): State<Relay>,
        Json(body): Json<serde_json::Value>,
    ) -> (StatusCode, Json<serde_json::Value>) {
        let n = r.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut b) = r.bodies.lock() {
            b.push(body);
        }
        if n < r.failures {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": "Unavailable", "message": "down"})),
            )
        } else if r.refuse {
            (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "HostBanned", "message": "no"})),
            )
        } else {
            (StatusCode::OK, Json(serde_json::json!({})))
        }
    }

    async fn serve(relay: Relay) -> String {
        let app = Router::new()
            .route("/xrpc/com.atproto.sync.requestCrawl", post(handle))
            .with_state(relay);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}/")
    }

    fn config(relays: Vec<String>, interval_ms: u64) -> CrawlerConfig {
        CrawlerConfig {
            interval: Duration::from_millis(interval_ms),
            backoff_initial: Duration::from_millis(20),
            backoff_max: Duration::from_millis(80),
            max_attempts: 4,
            request_timeout: Duration::from_secs(5),
            ..CrawlerConfig::new(relays, "pds.example.com")
        }
    }

    async fn wait_for(calls: &AtomicUsize, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while calls.load(Ordering::SeqCst) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} calls",
                calls.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn debounced_per_relay_with_a_trailing_request() {
        let (a, b) = (Relay::default(), Relay::default());
        let urls = vec![serve(a.clone()).await, serve(b.clone()).await];
        let crawlers = Crawlers::start(reqwest::Client::new(), config(urls, 600), None);
        for _ in 0..20 {
            crawlers.notify_of_update();
        }
        wait_for(&a.calls, 1).await;
        wait_for(&b.calls, 1).await;
        // More updates within the interval: no request until it ends…
        for _ in 0..20 {
            crawlers.notify_of_update();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
        assert_eq!(b.calls.load(Ordering::SeqCst), 1);
        // …then exactly one.
        wait_for(&a.calls, 2).await;
        wait_for(&b.calls, 2).await;
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(a.calls.load(Ordering::SeqCst), 2);
        assert_eq!(b.calls.load(Ordering::SeqCst), 2);
        let bodies = a.bodies.lock().expect("bodies").clone();
        assert_eq!(
            bodies,
            vec![serde_json::json!({"hostname": "pds.example.com"}); 2]
        );
        crawlers.stop();
    }

    #[tokio::test]
    async fn transient_failures_are_retried_with_backoff() {
        let relay = Relay {
            failures: 2,
            ..Relay::default()
        };
        let url = serve(relay.clone()).await;
        let crawlers = Crawlers::start(reqwest::Client::new(), config(vec![url], 60_000), None);
        let started = tokio::time::Instant::now();
        crawlers.notify_of_update();
        wait_for(&relay.calls, 3).await;
        // 20 ms then 40 ms of backoff before the third attempt.
        assert!(started.elapsed() >= Duration::from_millis(60));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(relay.calls.load(Ordering::SeqCst), 3);
        crawlers.stop();
    }

    #[tokio::test]
    async fn attempts_are_bounded_and_refusals_not_retried() {
        let down = Relay {
            failures: usize::MAX,
            ..Relay::default()
        };
        let banned = Relay {
            refuse: true,
            ..Relay::default()
        };
        let urls = vec![serve(down.clone()).await, serve(banned.clone()).await];
        let crawlers = Crawlers::start(reqwest::Client::new(), config(urls, 60_000), None);
        crawlers.notify_of_update();
        wait_for(&down.calls, 4).await;
        wait_for(&banned.calls, 1).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(down.calls.load(Ordering::SeqCst), 4, "max_attempts");
        assert_eq!(banned.calls.load(Ordering::SeqCst), 1, "a 400 is final");
        crawlers.stop();
    }

    #[tokio::test]
    async fn an_unreachable_relay_does_not_hold_up_the_others() {
        let up = Relay::default();
        // Nothing listens on port 9 of loopback.
        let urls = vec!["http://127.0.0.1:9".to_owned(), serve(up.clone()).await];
        let crawlers = Crawlers::start(reqwest::Client::new(), config(urls, 60_000), None);
        crawlers.notify_of_update();
        wait_for(&up.calls, 1).await;
        crawlers.stop();
    }
}
