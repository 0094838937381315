//! The queue: [`Notifier`] enqueues, [`Worker`] delivers.
//!
//! Delivery is leased: a worker claims a batch of due entries (the store
//! marks them `sending` until `now + lease`), sends them concurrently, each
//! bounded by `send_timeout` (shorter than the lease), then marks each sent
//! or failed. A failure is retried with exponential backoff until
//! `max_attempts`; a permanent failure (bad address, 4xx answer, unknown
//! kind) is not retried. Entries of a worker that died are claimed again
//! once their lease ends. On PostgreSQL, workers in any number of processes
//! claim disjoint batches (`FOR UPDATE SKIP LOCKED`).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pds_store::{NewNotification, Notification, Store};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{NotifyError, SendError};
use crate::message::{Message, RenderContext};
use crate::sender::{Channel, Senders};

/// Milliseconds since the Unix epoch, as the store keeps time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Queues notifications. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    wake: Option<Arc<Notify>>,
}

impl Notifier {
    /// A notifier that only writes the queue; workers find the entries on
    /// their next poll. [`Worker::notifier`] also wakes that worker.
    pub fn new(store: Store) -> Notifier {
        Notifier { store, wake: None }
    }

    /// Queues `message` for `recipient` on `channel`, due now; returns its id.
    pub async fn enqueue(
        &self,
        channel: Channel,
        recipient: &str,
        message: &Message,
    ) -> Result<i64, NotifyError> {
        self.enqueue_at(channel, recipient, message, now_ms()).await
    }

    /// Queues `message`, not to be sent before `send_after` (ms).
    pub async fn enqueue_at(
        &self,
        channel: Channel,
        recipient: &str,
        message: &Message,
        send_after: i64,
    ) -> Result<i64, NotifyError> {
        let id = self
            .store
            .notifications()
            .enqueue(&NewNotification {
                channel: channel.as_str().to_owned(),
                recipient: recipient.to_owned(),
                kind: message.kind().to_owned(),
                payload: message.to_payload()?,
                send_after,
            })
            .await?;
        if let Some(w) = &self.wake {
            w.notify_one();
        }
        Ok(id)
    }

    /// One queued or delivered notification.
    pub async fn get(&self, id: i64) -> Result<Option<Notification>, NotifyError> {
        Ok(self.store.notifications().get(id).await?)
    }

    /// The recipient's notifications, newest first.
    pub async fn history(
        &self,
        recipient: &str,
        limit: u32,
    ) -> Result<Vec<Notification>, NotifyError> {
        Ok(self.store.notifications().history(recipient, limit).await?)
    }
}

/// Worker settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Entries claimed (and sent concurrently) at a time.
    pub batch_size: u32,
    /// How often an idle worker looks for due entries (other processes'
    /// entries, retries coming due).
    pub poll_interval: Duration,
    /// One delivery attempt's limit.
    pub send_timeout: Duration,
    /// How long a claim lasts; must exceed `send_timeout` by at least a
    /// second, so an entry is only claimed again once its attempt is over.
    pub lease: Duration,
    /// Attempts before an entry is failed for good.
    pub max_attempts: u32,
    /// Delay after the first failed attempt; doubled after each further one.
    pub backoff_base: Duration,
    /// Longest delay between attempts.
    pub backoff_max: Duration,
    /// Sent and failed entries older than this are deleted (they hold
    /// tokens); `None` keeps them.
    pub retention: Option<Duration>,
    /// How often retention runs.
    pub prune_interval: Duration,
    /// Template context.
    pub render: RenderContext,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            batch_size: 16,
            poll_interval: Duration::from_secs(5),
            send_timeout: Duration::from_secs(60),
            lease: Duration::from_secs(300),
            max_attempts: 8,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(6 * 3600),
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            prune_interval: Duration::from_secs(3600),
            render: RenderContext::default(),
        }
    }
}

impl WorkerConfig {
    /// Checks the settings' consistency.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let bad = |s: &str| Err(NotifyError::Config(s.to_owned()));
        if self.batch_size == 0 {
            return bad("worker batch_size must be at least 1");
        }
        if self.max_attempts == 0 {
            return bad("worker max_attempts must be at least 1");
        }
        if self.poll_interval.is_zero() || self.prune_interval.is_zero() {
            return bad("worker poll and prune intervals must be positive");
        }
        if self.send_timeout.is_zero() {
            return bad("worker send_timeout must be positive");
        }
        if self.lease < self.send_timeout.saturating_add(Duration::from_secs(1)) {
            return bad("worker lease must exceed send_timeout by at least a second");
        }
        if self.backoff_max < self.backoff_base {
            return bad("worker backoff_max must be at least backoff_base");
        }
        Ok(())
    }

    /// The delay before the next attempt, after `attempts` failed ones:
    /// `backoff_base * 2^(attempts - 1)`, at most `backoff_max`.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 32)).unwrap_or(32);
        self.backoff_base
            .checked_mul(1u32 << exp.min(31))
            .map_or(self.backoff_max, |d| d.min(self.backoff_max))
    }
}

/// What one [`Worker::run_once`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Entries claimed.
    pub claimed: usize,
    /// Delivered.
    pub sent: usize,
    /// Failed, to be retried.
    pub retried: usize,
    /// Failed for good.
    pub failed: usize,
}

enum Outcome {
    Sent,
    Retried,
    Failed,
}

struct Inner {
    store: Store,
    senders: Senders,
    config: WorkerConfig,
    wake: Arc<Notify>,
}

/// Delivers queued notifications.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

impl Worker {
    pub fn new(
        store: Store,
        senders: Senders,
        config: WorkerConfig,
    ) -> Result<Worker, NotifyError> {
        config.validate()?;
        Ok(Worker {
            inner: Arc::new(Inner {
                store,
                senders,
                config,
                wake: Arc::new(Notify::new()),
            }),
        })
    }

    /// A notifier whose enqueues wake this worker at once.
    pub fn notifier(&self) -> Notifier {
        Notifier {
            store: self.inner.store.clone(),
            wake: Some(self.inner.wake.clone()),
        }
    }

    pub fn config(&self) -> &WorkerConfig {
        &self.inner.config
    }

    /// Claims one batch of due entries and delivers it.
    pub async fn run_once(&self) -> Result<BatchReport, NotifyError> {
        let cfg = &self.inner.config;
        let claimed = self
            .inner
            .store
            .notifications()
            .claim_due(now_ms(), cfg.batch_size, ms(cfg.lease))
            .await?;
        let mut report = BatchReport {
            claimed: claimed.len(),
            ..BatchReport::default()
        };
        let mut tasks = JoinSet::new();
        for n in claimed {
            let inner = self.inner.clone();
            tasks.spawn(async move { inner.deliver(n).await });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(Outcome::Sent)) => report.sent += 1,
                Ok(Ok(Outcome::Retried)) => report.retried += 1,
                Ok(Ok(Outcome::Failed)) => report.failed += 1,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "recording a notification attempt failed");
                    first_error.get_or_insert(e);
                }
                // A sender panicked: the entry is claimed again after its lease.
                Err(e) => tracing::error!(error = %e, "notification delivery task failed"),
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Deletes finished entries older than the retention period.
    pub async fn prune(&self) -> Result<u64, NotifyError> {
        match self.inner.config.retention {
            Some(keep) => Ok(self
                .inner
                .store
                .notifications()
                .prune_finished_before(now_ms().saturating_sub(ms(keep)))
                .await?),
            None => Ok(0),
        }
    }

    /// Runs the worker in the background until [`WorkerHandle::shutdown`].
    pub fn spawn(self) -> WorkerHandle {
        let (stop_tx, stop_rx) = watch::channel(false);
        let wake = self.inner.wake.clone();
        let task = tokio::spawn(self.run(stop_rx));
        WorkerHandle {
            stop: stop_tx,
            task,
            wake,
        }
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let cfg = &self.inner.config;
        let mut last_prune: Option<Instant> = None;
        loop {
            if *stop.borrow() {
                break;
            }
            if last_prune.is_none_or(|t| t.elapsed() >= cfg.prune_interval) {
                last_prune = Some(Instant::now());
                match self.prune().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "pruned finished notifications"),
                    Err(e) => tracing::warn!(error = %e, "pruning notifications failed"),
                }
            }
            let full = match self.run_once().await {
                Ok(r) => r.claimed >= usize::try_from(cfg.batch_size).unwrap_or(usize::MAX),
                Err(e) => {
                    tracing::warn!(error = %e, "notification batch failed");
                    false
                }
            };
            if full {
                continue;
            }
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = tokio::time::sleep(cfg.poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// A running [`Worker`].
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    wake: Arc<Notify>,
}

impl WorkerHandle {
    /// Makes the worker look for due entries now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops claiming, lets the batch in flight finish (at most
    /// `send_timeout`), and waits for the worker to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            if e.is_panic() {
                tracing::error!(error = %e, "notification worker panicked");
            }
        }
    }

    /// Stops the worker at once, as a crash would: entries in flight stay
    /// claimed until their lease ends, then any worker claims them again.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// A few tries for a store write, so a brief database hiccup does not leave
/// a delivered entry to be claimed (and sent) again after its lease.
async fn with_retries<T, F, Fut>(mut f: F) -> Result<T, NotifyError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, pds_store::StoreError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if tries >= 3 => return Err(e.into()),
            Err(e) => {
                tracing::warn!(error = %e, "notification store write failed; retrying");
                tries += 1;
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

impl Inner {
    async fn deliver(&self, n: Notification) -> Result<Outcome, NotifyError> {
        let result = self.attempt(&n).await;
        let store = self.store.notifications();
        match result {
            Ok(()) => {
                let ok = with_retries(|| store.mark_sent(n.id, now_ms())).await?;
                if !ok {
                    tracing::warn!(
                        id = n.id,
                        "notification sent after its lease ended (another worker may resend it)"
                    );
                }
                tracing::debug!(id = n.id, channel = %n.channel, kind = %n.kind, "notification sent");
                Ok(Outcome::Sent)
            }
            Err(e) => {
                let message = e.to_string();
                let give_up = e.is_permanent() || n.attempts >= i64::from(self.config.max_attempts);
                let retry_at = if give_up {
                    None
                } else {
                    Some(now_ms().saturating_add(ms(self.config.backoff(n.attempts))))
                };
                with_retries(|| store.mark_failed(n.id, &message, retry_at)).await?;
                if give_up {
                    tracing::warn!(
                        id = n.id, channel = %n.channel, kind = %n.kind, attempts = n.attempts,
                        error = %message, "notification failed for good"
                    );
                    Ok(Outcome::Failed)
                } else {
                    tracing::info!(
                        id = n.id, channel = %n.channel, kind = %n.kind, attempts = n.attempts,
                        error = %message, "notification attempt failed; will retry"
                    );
                    Ok(Outcome::Retried)
                }
            }
        }
    }

    async fn attempt(&self, n: &Notification) -> Result<(), SendError> {
        let channel =
            Channel::from_str(&n.channel).map_err(|e| SendError::permanent(e.to_string()))?;
        let sender = self.senders.get(channel).ok_or_else(|| {
            SendError::permanent(format!("no sender configured for channel {channel}"))
        })?;
        let message = Message::from_stored(&n.kind, &n.payload)
            .map_err(|e| SendError::permanent(e.to_string()))?;
        let rendered = message.render(&self.config.render);
        match tokio::time::timeout(
            self.config.send_timeout,
            sender.send(&n.recipient, &rendered),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(SendError::Timeout(self.config.send_timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = WorkerConfig {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(100),
            ..WorkerConfig::default()
        };
        let got: Vec<u64> = (0..8).map(|a| c.backoff(a).as_secs()).collect();
        assert_eq!(got, [10, 10, 20, 40, 80, 100, 100, 100]);
        assert_eq!(c.backoff(i64::MAX), Duration::from_secs(100));
        assert_eq!(c.backoff(i64::MIN), Duration::from_secs(10));
    }

    #[test]
    fn config_validation() {
        assert!(WorkerConfig::default().validate().is_ok());
        let bad = [
            WorkerConfig {
                batch_size: 0,
                ..WorkerConfig::default()
            },
            WorkerConfig {
                max_attempts: 0,
                ..WorkerConfig::default()
            },
            WorkerConfig {
                send_timeout: Duration::from_secs(10),
                lease: Duration::from_secs(10),
                ..WorkerConfig::default()
            },
            WorkerConfig {
                backoff_base: Duration::from_secs(10),
                backoff_max: Duration::from_secs(1),
                ..WorkerConfig::default()
            },
            WorkerConfig {
                poll_interval: Duration::ZERO,
                ..WorkerConfig::default()
            },
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(NotifyError::Config(_))), "{c:?}");
        }
    }
}
