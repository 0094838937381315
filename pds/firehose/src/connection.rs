//! One subscriber connection: replay from a cursor, the switch to live
//! events, the bounded queue, pings, and the closing sequence.
//!
//! Everything runs in the connection's own task, in one `select!` loop
//! over: the socket (incoming messages, and writing the queue), the
//! pending database read (replay), the live ring (live mode), the ping
//! timer, and the shutdown signal. Every branch is cancel-safe: the queue
//! is popped only when tungstenite accepts a frame, the database read is a
//! stored future, and `broadcast::Receiver::recv` loses nothing when
//! dropped.

use std::collections::{BTreeMap, VecDeque};
use std::future::{pending, poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use atproto_types::data::Value;
use atproto_types::xrpc::Frame;
use axum::extract::ws::{close_code, CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use pds_store::{SeqEvent, StoreError};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use crate::{Firehose, LiveEvent};

/// Frames handed to tungstenite per poll before the loop lets the other
/// branches run.
const WRITE_BUDGET: usize = 64;
/// Live events taken from the ring per wake-up.
const LIVE_DRAIN: usize = 256;

const OUTDATED_MESSAGE: &str = "Requested cursor exceeded limit. Possibly missing events";

type FetchFuture = Pin<Box<dyn Future<Output = Result<Vec<SeqEvent>, StoreError>> + Send>>;

/// A database read of stored events in flight.
struct Fetch {
    future: FetchFuture,
    limit: usize,
    /// Whether the read started after the live head was known (then an
    /// empty answer below the head means the events were pruned).
    head_known: bool,
}

enum Mode {
    /// Serving stored events from the database. `live` once subscribed to
    /// the ring: the receiver and the head read atomically with it.
    Replay {
        live: Option<(Receiver<LiveEvent>, i64)>,
    },
    /// Serving events from the ring.
    Live(Receiver<LiveEvent>),
}

/// Why the loop ended.
enum End {
    /// The socket failed, ended, or the client stopped answering pings.
    ClientGone,
    /// The client sent a close frame (tungstenite has queued the reply).
    ClientClosed,
    /// The server is shutting down.
    Shutdown,
    /// Send an error frame, then close with `code`.
    Error {
        name: &'static str,
        message: String,
        code: u16,
    },
}

impl End {
    fn internal(e: &StoreError) -> End {
        tracing::warn!(error = %e, "firehose: store read failed; closing subscriber");
        End::Error {
            name: "InternalServerError",
            message: "Internal Server Error".to_owned(),
            code: close_code::ERROR,
        }
    }
}

/// Frames waiting to be written. Only event frames count towards the caps
/// (a ping jumps the queue and is not counted).
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Message>,
    frames: usize,
    bytes: usize,
    /// Frames handed to tungstenite but not yet flushed.
    unflushed: bool,
    /// Event frames written since the counter was last updated.
    sent: u64,
    /// Flushes since the counter was last updated.
    flushes: u64,
}

impl Outbox {
    fn push(&mut self, frame: Bytes) {
        self.frames += 1;
        self.bytes += frame.len();
        self.queue.push_back(Message::Binary(frame));
    }

    fn pop(&mut self) -> Option<Message> {
        let msg = self.queue.pop_front()?;
        if let Message::Binary(b) = &msg {
            self.frames = self.frames.saturating_sub(1);
            self.bytes = self.bytes.saturating_sub(b.len());
            self.sent += 1;
        }
        Some(msg)
    }

    fn clear(&mut self) {
        self.queue.clear();
        self.frames = 0;
        self.bytes = 0;
    }
}

enum SocketEvent {
    Incoming(Option<Result<Message, axum::Error>>),
    Wrote,
    WriteFailed,
}

/// Reads one incoming message if there is one; otherwise, unless `hold`,
/// writes queued frames until the socket would block, the queue is
/// flushed, or the budget is spent.
fn poll_socket(
    cx: &mut Context<'_>,
    socket: &mut WebSocket,
    out: &mut Outbox,
    hold: bool,
) -> Poll<SocketEvent> {
    if let Poll::Ready(m) = Pin::new(&mut *socket).poll_next(cx) {
        return Poll::Ready(SocketEvent::Incoming(m));
    }
    if hold || (out.queue.is_empty() && !out.unflushed) {
        return Poll::Pending;
    }
    let mut budget = WRITE_BUDGET;
    while !out.queue.is_empty() {
        match Pin::new(&mut *socket).poll_ready(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) => return Poll::Ready(SocketEvent::WriteFailed),
            Poll::Pending => return Poll::Pending,
        }
        let Some(msg) = out.pop() else { break };
        if Pin::new(&mut *socket).start_send(msg).is_err() {
            return Poll::Ready(SocketEvent::WriteFailed);
        }
        out.unflushed = true;
        budget -= 1;
        if budget == 0 {
            return Poll::Ready(SocketEvent::Wrote);
        }
    }
    match Pin::new(&mut *socket).poll_flush(cx) {
        Poll::Ready(Ok(())) => {
            out.unflushed = false;
            out.flushes += 1;
            Poll::Ready(SocketEvent::Wrote)
        }
        Poll::Ready(Err(_)) => Poll::Ready(SocketEvent::WriteFailed),
        Poll::Pending => Poll::Pending,
    }
}

async fn recv_live(mode: &mut Mode) -> Result<LiveEvent, RecvError> {
    match mode {
        Mode::Live(rx) => rx.recv().await,
        Mode::Replay { .. } => pending().await,
    }
}

async fn fetched(fetch: &mut Option<Fetch>) -> Result<Vec<SeqEvent>, StoreError> {
    match fetch {
        Some(f) => f.future.as_mut().await,
        None => pending().await,
    }
}

async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => pending().await,
    }
}

async fn tick(ping: &mut Option<Interval>) {
    match ping {
        Some(i) => {
            i.tick().await;
        }
        None => pending().await,
    }
}

fn info_frame(name: &str, message: &str) -> Bytes {
    let body = Value::Map(BTreeMap::from([
        ("name".to_owned(), Value::String(name.to_owned())),
        ("message".to_owned(), Value::String(message.to_owned())),
    ]));
    Bytes::from(
        Frame::Message {
            t: "#info".to_owned(),
            body,
        }
        .encode(),
    )
}

struct Conn<'a> {
    fh: &'a Firehose,
    out: Outbox,
    mode: Mode,
    /// The highest seq queued or deliberately skipped: the next event sent
    /// has a higher one.
    cursor: i64,
    fetch: Option<Fetch>,
    /// Replay keeps the queue at most this long.
    replay_fill: usize,
}

/// Serves one upgraded connection until it ends.
pub(crate) async fn serve(fh: &Firehose, mut socket: WebSocket, cursor: Option<i64>) {
    let mut conn = Conn {
        fh,
        out: Outbox::default(),
        mode: Mode::Replay { live: None },
        cursor: 0,
        fetch: None,
        replay_fill: (fh.config().max_queued_frames / 2).max(1),
    };
    let end = conn.run(&mut socket, cursor).await;
    conn.finish(socket, end).await;
}

impl Conn<'_> {
    async fn run(&mut self, socket: &mut WebSocket, cursor: Option<i64>) -> End {
        let shutdown = self.fh.shutdown_signal().clone();
        if shutdown.is_cancelled() {
            return End::Shutdown;
        }
        match cursor {
            None => {
                let (rx, head) = self.fh.shared().subscribe();
                self.cursor = head;
                self.mode = Mode::Live(rx);
            }
            Some(c) => {
                let current = match self.fh.store().sequencer().current_seq().await {
                    Ok(s) => s,
                    Err(e) => return End::internal(&e),
                };
                if c > current {
                    self.counters()
                        .future_cursor
                        .fetch_add(1, Ordering::Relaxed);
                    return End::Error {
                        name: "FutureCursor",
                        message: "Cursor in the future.".to_owned(),
                        code: close_code::POLICY,
                    };
                }
                self.cursor = c.max(0);
                self.mode = Mode::Replay { live: None };
            }
        }

        let ping_every = self.fh.config().ping_interval;
        let mut ping = ping_every.map(|d| {
            let mut i = tokio::time::interval_at(Instant::now() + d, d);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        let mut last_heard = Instant::now();
        let coalesce = self.fh.config().live_coalesce;
        // Live events wait (neither taken nor written) until then; see
        // `FirehoseConfig::live_coalesce`.
        let mut hold: Option<Instant> = None;

        loop {
            self.maybe_fetch();
            let holding = hold.is_some();
            // In this order: the socket before the ring, so a queue the
            // socket can take is written before more live events join it,
            // and only a queue the socket cannot drain reaches the caps.
            tokio::select! {
                biased;
                () = shutdown.cancelled() => return End::Shutdown,
                ev = poll_fn(|cx| poll_socket(cx, socket, &mut self.out, holding)) => match ev {
                    SocketEvent::Incoming(Some(Ok(msg))) => {
                        last_heard = Instant::now();
                        match msg {
                            Message::Close(_) => return End::ClientClosed,
                            // tungstenite queued the pong; make sure it is flushed.
                            Message::Ping(_) => self.out.unflushed = true,
                            // Pongs only prove liveness; subscribers have
                            // nothing to say, so data messages are ignored.
                            Message::Pong(_) | Message::Text(_) | Message::Binary(_) => {}
                        }
                    }
                    SocketEvent::Incoming(Some(Err(_)) | None) | SocketEvent::WriteFailed => {
                        return End::ClientGone
                    }
                    SocketEvent::Wrote => {
                        self.count_sent();
                        // Hold only once everything has gone out, the
                        // ring included (a burst larger than the drain
                        // limit goes on at once).
                        let drained = self.out.queue.is_empty() && !self.out.unflushed;
                        let ring_empty = matches!(&self.mode, Mode::Live(rx) if rx.is_empty());
                        if drained && ring_empty && !coalesce.is_zero() {
                            hold = Some(Instant::now() + coalesce);
                        }
                    }
                },
                () = until(hold), if holding => hold = None,
                res = fetched(&mut self.fetch), if self.fetch.is_some() => {
                    let Some(fetch) = self.fetch.take() else { continue };
                    match res {
                        Ok(events) => self.on_batch(events, fetch.limit, fetch.head_known),
                        Err(e) => return End::internal(&e),
                    }
                }
                r = recv_live(&mut self.mode), if !holding && matches!(self.mode, Mode::Live(_)) => {
                    if let Err(end) = self.on_live(r) {
                        return end;
                    }
                }
                () = tick(&mut ping), if ping.is_some() => {
                    let limit = ping_every.unwrap_or_default().saturating_mul(2);
                    if last_heard.elapsed() >= limit {
                        tracing::debug!("firehose: subscriber stopped answering pings");
                        return End::ClientGone;
                    }
                    self.out.queue.push_front(Message::Ping(Bytes::new()));
                }
            }
        }
    }

    fn counters(&self) -> &crate::Counters {
        &self.fh.shared().counters
    }

    fn count_sent(&mut self) {
        let n = std::mem::take(&mut self.out.sent);
        if n > 0 {
            self.counters().frames_sent.fetch_add(n, Ordering::Relaxed);
        }
        let n = std::mem::take(&mut self.out.flushes);
        if n > 0 {
            self.counters().flushes.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// In replay, reads the next batch once the queue has drained to half
    /// of the replay fill (so reads are full batches, not a trickle of tiny
    /// ones), filling it up to `replay_fill` frames.
    fn maybe_fetch(&mut self) {
        let Mode::Replay { live } = &self.mode else {
            return;
        };
        let config = self.fh.config();
        if self.fetch.is_some()
            || self.out.frames > self.replay_fill / 2
            || self.out.bytes >= config.max_queued_bytes / 4
        {
            return;
        }
        let room = self.replay_fill - self.out.frames;
        let limit = usize::try_from(config.replay_batch)
            .unwrap_or(usize::MAX)
            .min(room)
            .max(1);
        let store = self.fh.store().clone();
        let cursor = self.cursor;
        let limit_u32 = u32::try_from(limit).unwrap_or(u32::MAX);
        let delay = config.replay_read_delay;
        self.fetch = Some(Fetch {
            future: Box::pin(async move {
                let events = store.sequencer().events_after(cursor, limit_u32).await;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                events
            }),
            limit,
            head_known: live.is_some(),
        });
    }

    fn outdated(&mut self) {
        self.counters()
            .outdated_cursor
            .fetch_add(1, Ordering::Relaxed);
        self.out
            .push(info_frame("OutdatedCursor", OUTDATED_MESSAGE));
    }

    /// Queues a batch of stored events and decides whether to go live.
    fn on_batch(&mut self, events: Vec<SeqEvent>, limit: usize, head_known: bool) {
        let short = events.len() < limit;
        let empty = events.is_empty();
        for ev in events {
            if ev.seq <= self.cursor {
                continue;
            }
            if ev.seq > self.cursor.saturating_add(1) {
                // Events between the cursor and this one were pruned.
                self.outdated();
            }
            self.cursor = ev.seq;
            if !ev.invalidated {
                self.out.push(Bytes::from(ev.event));
            }
        }
        self.fh.shared().note_queue(self.out.frames, self.out.bytes);

        let mode = std::mem::replace(&mut self.mode, Mode::Replay { live: None });
        self.mode = match mode {
            Mode::Replay { live: None } if short => {
                // The database had nothing more a moment ago: subscribe, and
                // replay on up to the head if the broadcaster is ahead.
                let (rx, head) = self.fh.shared().subscribe();
                if self.cursor >= head {
                    Mode::Live(rx)
                } else {
                    Mode::Replay {
                        live: Some((rx, head)),
                    }
                }
            }
            Mode::Replay {
                live: Some((rx, head)),
            } => {
                if self.cursor >= head {
                    Mode::Live(rx)
                } else if empty && head_known {
                    // Read after the head was published, yet nothing up to
                    // it is stored: those events were pruned.
                    self.outdated();
                    self.cursor = head;
                    Mode::Live(rx)
                } else {
                    Mode::Replay {
                        live: Some((rx, head)),
                    }
                }
            }
            other => other,
        };
    }

    /// Takes live events: the one received, then whatever else is ready.
    fn on_live(&mut self, first: Result<LiveEvent, RecvError>) -> Result<(), End> {
        let config = self.fh.config();
        let (max_frames, max_bytes) = (config.max_queued_frames, config.max_queued_bytes);
        let mut result = Ok(());
        let mut lagged = false;
        match first {
            Ok(ev) => {
                result = take_live(&mut self.out, &mut self.cursor, max_frames, max_bytes, ev);
                if let Mode::Live(rx) = &mut self.mode {
                    for _ in 0..LIVE_DRAIN {
                        // What is ready beyond half the caps stays in the
                        // ring until this is written: a burst (after a
                        // coalescing hold, say) is not a slow consumer. The
                        // caps apply to events that arrive while the queue
                        // cannot drain.
                        if result.is_err()
                            || self.out.frames >= max_frames / 2
                            || self.out.bytes >= max_bytes / 2
                        {
                            break;
                        }
                        match rx.try_recv() {
                            Ok(ev) => {
                                result = take_live(
                                    &mut self.out,
                                    &mut self.cursor,
                                    max_frames,
                                    max_bytes,
                                    ev,
                                );
                            }
                            Err(TryRecvError::Empty) => break,
                            Err(TryRecvError::Lagged(_)) => {
                                lagged = true;
                                break;
                            }
                            Err(TryRecvError::Closed) => return Err(End::Shutdown),
                        }
                    }
                }
            }
            Err(RecvError::Lagged(_)) => lagged = true,
            Err(RecvError::Closed) => return Err(End::Shutdown),
        }
        self.fh.shared().note_queue(self.out.frames, self.out.bytes);
        if let Err(end) = result {
            self.counters().too_slow.fetch_add(1, Ordering::Relaxed);
            return Err(end);
        }
        if lagged {
            // This task fell behind the shared ring (it was not scheduled in
            // time); its queue is not full, so the client is keeping up.
            // The missed events are stored: resume from the database.
            self.counters().ring_lagged.fetch_add(1, Ordering::Relaxed);
            self.mode = Mode::Replay { live: None };
        }
        Ok(())
    }

    /// Closes the connection the way `end` says, within the close timeout.
    async fn finish(mut self, mut socket: WebSocket, end: End) {
        let timeout = self.fh.config().close_timeout;
        match end {
            End::ClientGone => {}
            End::ClientClosed => {
                // Sends the close reply tungstenite queued.
                let _ = tokio::time::timeout(timeout, socket.flush()).await;
            }
            End::Shutdown => {
                let queued: Vec<Message> = std::iter::from_fn(|| self.out.pop()).collect();
                let _ = tokio::time::timeout(timeout, async {
                    for msg in queued {
                        socket.feed(msg).await?;
                    }
                    socket
                        .send(close_message(close_code::AWAY, "server shutting down"))
                        .await?;
                    wait_for_close(&mut socket).await;
                    Ok::<(), axum::Error>(())
                })
                .await;
            }
            End::Error {
                name,
                message,
                code,
            } => {
                // Whatever was queued is dropped: the error ends the stream.
                self.out.clear();
                let frame = Frame::error(name, Some(message)).encode();
                let _ = tokio::time::timeout(timeout, async {
                    socket.send(Message::Binary(Bytes::from(frame))).await?;
                    socket.send(close_message(code, name)).await?;
                    wait_for_close(&mut socket).await;
                    Ok::<(), axum::Error>(())
                })
                .await;
            }
        }
        self.count_sent();
    }
}

/// Queues one live event unless already sent; `Err` when the queue is full.
fn take_live(
    out: &mut Outbox,
    cursor: &mut i64,
    max_frames: usize,
    max_bytes: usize,
    ev: LiveEvent,
) -> Result<(), End> {
    if ev.seq <= *cursor {
        return Ok(());
    }
    let over_bytes = out.frames > 0 && out.bytes.saturating_add(ev.frame.len()) > max_bytes;
    if out.frames >= max_frames || over_bytes {
        return Err(End::Error {
            name: "ConsumerTooSlow",
            message: "Stream consumer too slow".to_owned(),
            code: close_code::POLICY,
        });
    }
    *cursor = ev.seq;
    out.push(ev.frame);
    Ok(())
}

fn close_message(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Reads until the peer's close reply (or the end of the stream).
async fn wait_for_close(socket: &mut WebSocket) {
    while let Some(Ok(msg)) = socket.next().await {
        if matches!(msg, Message::Close(_)) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use atproto_types::lexicons::com::atproto::sync::subscribe_repos;

    use super::*;

    #[test]
    fn info_frame_is_the_lexicon_info_message() {
        let bytes = info_frame("OutdatedCursor", OUTDATED_MESSAGE);
        let frame = Frame::decode(&bytes).expect("decodes");
        let message: subscribe_repos::Message = frame
            .into_message(subscribe_repos::NSID)
            .expect("a subscribeRepos message");
        let subscribe_repos::Message::Info(info) = message else {
            panic!("not #info: {message:?}");
        };
        assert_eq!(info.name, subscribe_repos::InfoName::OutdatedCursor);
        assert_eq!(info.message.as_deref(), Some(OUTDATED_MESSAGE));
    }

    #[test]
    fn outbox_counts_only_event_frames() {
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"abc"));
        out.push(Bytes::from_static(b"de"));
        out.queue.push_front(Message::Ping(Bytes::new()));
        assert_eq!((out.frames, out.bytes, out.queue.len()), (2, 5, 3));
        assert!(matches!(out.pop(), Some(Message::Ping(_))));
        assert_eq!((out.frames, out.bytes, out.sent), (2, 5, 0));
        assert!(matches!(out.pop(), Some(Message::Binary(b)) if b.as_ref() == b"abc"));
        assert_eq!((out.frames, out.bytes, out.sent), (1, 2, 1));
        out.clear();
        assert_eq!((out.frames, out.bytes, out.queue.len()), (0, 0, 0));
    }

    #[test]
    fn take_live_skips_sent_seqs_and_enforces_both_caps() {
        let ev = |seq, len| LiveEvent {
            seq,
            frame: Bytes::from(vec![0u8; len]),
        };
        let mut out = Outbox::default();
        let mut cursor = 10;
        assert!(take_live(&mut out, &mut cursor, 2, 100, ev(9, 10)).is_ok());
        assert!(take_live(&mut out, &mut cursor, 2, 100, ev(10, 10)).is_ok());
        assert_eq!(out.frames, 0);
        // A frame larger than the byte cap still goes into an empty queue.
        assert!(take_live(&mut out, &mut cursor, 2, 100, ev(11, 150)).is_ok());
        assert_eq!((out.frames, cursor), (1, 11));
        // The byte cap.
        assert!(matches!(
            take_live(&mut out, &mut cursor, 5, 100, ev(12, 1)),
            Err(End::Error {
                name: "ConsumerTooSlow",
                ..
            })
        ));
        out.clear();
        // The frame cap.
        assert!(take_live(&mut out, &mut cursor, 2, 100, ev(12, 1)).is_ok());
        assert!(take_live(&mut out, &mut cursor, 2, 100, ev(13, 1)).is_ok());
        assert!(matches!(
            take_live(&mut out, &mut cursor, 2, 100, ev(14, 1)),
            Err(End::Error {
                name: "ConsumerTooSlow",
                ..
            })
        ));
        assert_eq!(cursor, 13);
    }
}
