//! The firehose: `com.atproto.sync.subscribeRepos` over WebSocket.
//!
//! ```text
//!  pds-store sequencer ──next_batch──▶ broadcaster task ──▶ live ring (Bytes, shared)
//!        ▲                                                      │
//!        └──────── events_after (replay from a cursor) ─────────┤
//!                                                               ▼
//!                                  subscriber task (queue ≤ max_queued_frames) ──▶ WebSocket
//! ```
//!
//! One background task reads new events from the store's sequencer (woken by
//! local commits, PostgreSQL NOTIFY, or the poll fallback) and publishes
//! them to a [`tokio::sync::broadcast`] ring of [`bytes::Bytes`] frames. The
//! frames are the bytes the store keeps (header and body, encoded once when
//! the event was sequenced); every subscriber gets a reference-counted
//! handle on the same allocation, so a thousand subscribers cost a thousand
//! small queue entries, not a thousand copies.
//!
//! Each connection runs one task (see `connection.rs`):
//!
//! * **No cursor**: live only, from the broadcaster's head at connect time.
//! * **Cursor**: `cursor > current seq` sends a `FutureCursor` error frame
//!   and closes. Otherwise the stored events after the cursor are replayed
//!   from the database in batches (back-pressured by the socket). A gap
//!   before the first replayed event (the events were pruned) is announced
//!   with an `#info` `OutdatedCursor` frame, then replay goes on from the
//!   earliest stored event. When the database has nothing more, the task
//!   subscribes to the live ring and reads the broadcaster's head `H` in the
//!   same critical section as the broadcaster's publish, so every event
//!   after `H` is in the ring; it replays up to `H` if needed, then takes
//!   live events, skipping any `seq` it already sent: no gap, no duplicate.
//! * **Slow consumers**: live events go into a per-connection queue bounded
//!   by [`FirehoseConfig::max_queued_frames`] and
//!   [`FirehoseConfig::max_queued_bytes`]. A live event that finds it full
//!   ends the connection with a `ConsumerTooSlow` error frame. A task that
//!   falls behind the shared ring (starved of CPU rather than slow) goes back
//!   to replaying from the database, losing nothing.
//! * Invalidated events (superseded, e.g. by an account deletion) are
//!   neither broadcast nor replayed.
//! * Pings every [`FirehoseConfig::ping_interval`]; pings from the client
//!   are answered; a client close is answered; [`Firehose::shutdown`] closes
//!   every connection with 1001 (going away) after flushing what it queued.
//!
//! # Wiring
//!
//! ```text
//! let firehose = Firehose::start(store.clone(), FirehoseConfig::default()).await?;
//! // in the ComAtprotoSync impl:
//! async fn subscribe_repos(&self, _: NoAuth,
//!     req: XrpcRequest<subscribe_repos::Params, WebSocketUpgrade>,
//! ) -> Result<Response, XrpcError<subscribe_repos::Error>> {
//!     Ok(self.firehose.subscribe_repos(req.input, req.params.cursor))
//! }
//! // on shutdown:
//! firehose.shutdown();
//! firehose.wait_closed(Duration::from_secs(10)).await;
//! ```

mod config;
mod connection;
mod error;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;
use bytes::Bytes;
use pds_store::{SeqEvent, Store};
use tokio::sync::{broadcast, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::FirehoseConfig;
pub use error::FirehoseError;

/// The NSID of the subscription this crate serves.
pub const SUBSCRIBE_REPOS_NSID: &str = "com.atproto.sync.subscribeRepos";

/// An event on the live ring: its seq and its ready-to-send frame.
#[derive(Clone, Debug)]
pub(crate) struct LiveEvent {
    pub(crate) seq: i64,
    pub(crate) frame: Bytes,
}

/// The broadcaster's head and the ring, behind one lock so that a
/// subscriber's (subscribe, read head) pair is atomic with respect to a
/// publish: every event with a seq above the head it reads reaches its
/// receiver.
struct LiveState {
    head: i64,
    tx: broadcast::Sender<LiveEvent>,
}

#[derive(Default)]
pub(crate) struct Counters {
    active: AtomicUsize,
    total: AtomicU64,
    events_broadcast: AtomicU64,
    too_slow: AtomicU64,
    future_cursor: AtomicU64,
    outdated_cursor: AtomicU64,
    ring_lagged: AtomicU64,
    max_queued_frames: AtomicUsize,
    max_queued_bytes: AtomicUsize,
    frames_sent: AtomicU64,
    flushes: AtomicU64,
}

pub(crate) struct Shared {
    live: Mutex<LiveState>,
    pub(crate) counters: Counters,
    idle: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, LiveState> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of every event published from now on, and the head (the
    /// highest seq published before it).
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<LiveEvent>, i64) {
        let live = self.lock();
        (live.tx.subscribe(), live.head)
    }

    fn head(&self) -> i64 {
        self.lock().head
    }

    fn head_and_receivers(&self) -> (i64, usize) {
        let live = self.lock();
        (live.head, live.tx.receiver_count())
    }

    fn publish(&self, events: Vec<SeqEvent>) {
        let mut live = self.lock();
        let mut sent = 0u64;
        for ev in events {
            if ev.seq <= live.head {
                continue;
            }
            live.head = ev.seq;
            if ev.invalidated {
                continue;
            }
            // No receivers is not an error: the event is simply dropped.
            let _ = live.tx.send(LiveEvent {
                seq: ev.seq,
                frame: Bytes::from(ev.event),
            });
            sent += 1;
        }
        drop(live);
        self.counters
            .events_broadcast
            .fetch_add(sent, Ordering::Relaxed);
    }

    pub(crate) fn note_queue(&self, frames: usize, bytes: usize) {
        self.counters
            .max_queued_frames
            .fetch_max(frames, Ordering::Relaxed);
        self.counters
            .max_queued_bytes
            .fetch_max(bytes, Ordering::Relaxed);
    }
}

/// Counts one connection while alive.
pub(crate) struct ConnectionGuard {
    shared: Arc<Shared>,
}

impl ConnectionGuard {
    fn new(shared: Arc<Shared>) -> ConnectionGuard {
        shared.counters.active.fetch_add(1, Ordering::SeqCst);
        shared.counters.total.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard { shared }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.shared.counters.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.shared.idle.notify_waiters();
        }
    }
}

/// A snapshot of the firehose's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FirehoseStats {
    /// The highest seq the broadcaster has published.
    pub head_seq: i64,
    /// Open subscriber connections.
    pub active_subscribers: usize,
    /// Connections subscribed to the live ring (live, or about to be).
    pub live_receivers: usize,
    /// Subscriber connections ever accepted.
    pub total_subscribers: u64,
    /// Events published to the live ring (invalidated events are not).
    pub events_broadcast: u64,
    /// Frames written to subscribers (events, info and error frames).
    pub frames_sent: u64,
    /// Writes of queued frames to subscribers' sockets (each a flush,
    /// often of several frames; see [`FirehoseConfig::live_coalesce`]).
    pub flushes: u64,
    /// Connections ended with `ConsumerTooSlow`.
    pub consumer_too_slow: u64,
    /// Connections refused with `FutureCursor`.
    pub future_cursor: u64,
    /// `#info` `OutdatedCursor` frames sent.
    pub outdated_cursor: u64,
    /// Times a subscriber task fell behind the live ring and resumed from
    /// the database.
    pub ring_lagged: u64,
    /// The longest any subscriber's queue has been, in frames (never above
    /// [`FirehoseConfig::max_queued_frames`]).
    pub max_queued_frames: usize,
    /// The largest any subscriber's queue has been, in bytes (at most
    /// [`FirehoseConfig::max_queued_bytes`] plus one replay batch).
    pub max_queued_bytes: usize,
}

struct Inner {
    store: Store,
    config: FirehoseConfig,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    broadcaster: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The subscribeRepos engine. Cheap to clone; clones share the broadcaster.
/// Dropping the last clone (connections hold one) stops the broadcaster.
#[derive(Clone)]
pub struct Firehose {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Firehose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Firehose")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Firehose {
    /// Starts the broadcaster from the store's current seq (events
    /// sequenced before are served only by replay). Must be called inside a
    /// Tokio runtime.
    pub async fn start(store: Store, config: FirehoseConfig) -> Result<Firehose, FirehoseError> {
        Firehose::start_with_shutdown(store, config, CancellationToken::new()).await
    }

    /// As [`start`](Self::start), stopping when `shutdown` is cancelled (or
    /// when [`shutdown`](Self::shutdown) is called).
    pub async fn start_with_shutdown(
        store: Store,
        config: FirehoseConfig,
        shutdown: CancellationToken,
    ) -> Result<Firehose, FirehoseError> {
        let config = config.sanitized();
        let head = store.sequencer().current_seq().await?;
        let (tx, _) = broadcast::channel(config.ring_capacity);
        let shared = Arc::new(Shared {
            live: Mutex::new(LiveState { head, tx }),
            counters: Counters::default(),
            idle: Notify::new(),
        });
        let task = tokio::spawn(broadcaster(
            store.clone(),
            config.clone(),
            shared.clone(),
            shutdown.clone(),
        ));
        Ok(Firehose {
            inner: Arc::new(Inner {
                store,
                config,
                shared,
                shutdown,
                broadcaster: Mutex::new(Some(task)),
            }),
        })
    }

    /// Answers a `com.atproto.sync.subscribeRepos` request: upgrades the
    /// WebSocket and streams events after `cursor` (live only without one).
    /// Call from the `ComAtprotoSync::subscribe_repos` implementation with
    /// `req.input` and `req.params.cursor`.
    pub fn subscribe_repos(&self, ws: WebSocketUpgrade, cursor: Option<i64>) -> Response {
        let config = &self.inner.config;
        let ws = ws
            .write_buffer_size(config.write_buffer_size)
            .read_buffer_size(config.read_buffer_size)
            .max_message_size(config.max_incoming_message)
            .max_frame_size(config.max_incoming_message);
        let firehose = self.clone();
        ws.on_failed_upgrade(|e| tracing::debug!(error = %e, "firehose: upgrade failed"))
            .on_upgrade(move |socket| async move {
                let guard = ConnectionGuard::new(firehose.inner.shared.clone());
                connection::serve(&firehose, socket, cursor).await;
                drop(guard);
            })
    }

    /// Closes every subscriber connection (1001, going away) and stops the
    /// broadcaster. New connections are closed at once.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// The token [`shutdown`](Self::shutdown) cancels.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// After [`shutdown`](Self::shutdown): waits up to `timeout` for the
    /// broadcaster and every connection to finish. Returns whether they did.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        let done = async {
            let task = self
                .inner
                .broadcaster
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(task) = task {
                let _ = task.await;
            }
            loop {
                let idle = self.inner.shared.idle.notified();
                if self.inner.shared.counters.active.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        tokio::time::timeout(timeout, done).await.is_ok()
    }

    /// The counters.
    pub fn stats(&self) -> FirehoseStats {
        let c = &self.inner.shared.counters;
        let (head_seq, live_receivers) = self.inner.shared.head_and_receivers();
        FirehoseStats {
            head_seq,
            active_subscribers: c.active.load(Ordering::SeqCst),
            live_receivers,
            total_subscribers: c.total.load(Ordering::Relaxed),
            events_broadcast: c.events_broadcast.load(Ordering::Relaxed),
            frames_sent: c.frames_sent.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            consumer_too_slow: c.too_slow.load(Ordering::Relaxed),
            future_cursor: c.future_cursor.load(Ordering::Relaxed),
            outdated_cursor: c.outdated_cursor.load(Ordering::Relaxed),
            ring_lagged: c.ring_lagged.load(Ordering::Relaxed),
            max_queued_frames: c.max_queued_frames.load(Ordering::Relaxed),
            max_queued_bytes: c.max_queued_bytes.load(Ordering::Relaxed),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &FirehoseConfig {
        &self.inner.config
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    pub(crate) fn shutdown_signal(&self) -> &CancellationToken {
        &self.inner.shutdown
    }
}

/// Reads new events in seq order and publishes them. Store errors are
/// logged and retried (after one poll interval): the cursor does not move,
/// so nothing is skipped.
async fn broadcaster(
    store: Store,
    config: FirehoseConfig,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut sub = store
        .sequencer()
        .subscribe()
        .with_poll_interval(config.poll_interval);
    // Long waits are fine: next_batch returns as soon as something arrives.
    let max_wait = config.poll_interval.saturating_mul(20);
    loop {
        let cursor = shared.head();
        let batch = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            r = sub.next_batch(cursor, config.broadcast_batch, max_wait) => r,
        };
        match batch {
            Ok(events) => shared.publish(events),
            Err(e) => {
                tracing::warn!(error = %e, "firehose: reading the event log failed; retrying");
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(config.poll_interval) => {}
                }
            }
        }
    }
}
