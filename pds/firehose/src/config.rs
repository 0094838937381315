//! Firehose settings.

use std::time::Duration;

/// Settings of a [`Firehose`](crate::Firehose). [`Default`] suits a PDS.
#[derive(Clone, Debug)]
pub struct FirehoseConfig {
    /// Capacity of the shared live ring: events the broadcaster has
    /// published that some subscriber task has not yet taken. A subscriber
    /// task that falls this far behind (it is starved, not slow: its own
    /// queue is separate) resumes from the database, losing nothing.
    pub ring_capacity: usize,
    /// Frames one subscriber may have queued and not yet written to its
    /// socket. A live event arriving with the queue full ends the connection
    /// with `ConsumerTooSlow`. Replay fills the queue to half of this, so a
    /// subscriber switching from replay to live has the other half as slack.
    pub max_queued_frames: usize,
    /// Bytes of frames one subscriber may have queued (the frames themselves
    /// are shared with every other subscriber; this bounds what one slow
    /// subscriber can keep alive). Exceeding it on a live event is
    /// `ConsumerTooSlow`, as for [`max_queued_frames`](Self::max_queued_frames).
    pub max_queued_bytes: usize,
    /// Events read per database query when replaying from a cursor.
    pub replay_batch: u32,
    /// Events the broadcaster reads per database query.
    pub broadcast_batch: u32,
    /// Fallback poll interval of the broadcaster (it is woken at once by
    /// local commits and, on PostgreSQL, by NOTIFY from other processes).
    pub poll_interval: Duration,
    /// How often to ping each subscriber (`None`: never). A subscriber that
    /// has sent nothing (no pong, no ping) for two intervals is dropped.
    pub ping_interval: Option<Duration>,
    /// How long the closing sequence (a final error frame, queued frames on
    /// shutdown, the close handshake) may take before the socket is dropped.
    pub close_timeout: Duration,
    /// Bytes tungstenite buffers before writing to the socket.
    pub write_buffer_size: usize,
    /// Bytes tungstenite reads from the socket at a time. Small: subscribers
    /// send next to nothing, and tungstenite zeroes this much buffer each
    /// time the connection checks for input (with its 128 KiB default that
    /// was a fifth of the server's CPU under a busy firehose).
    pub read_buffer_size: usize,
    /// After writing live frames to a subscriber, how long to let further
    /// live events gather before the next write (zero: write each at once).
    /// The first event after a quiet spell goes out at once; under load a
    /// subscriber is woken and written to once per interval with everything
    /// that arrived, not once per event, which saves a wake-up and a
    /// `send` per event and subscriber for at most this much delay.
    pub live_coalesce: Duration,
    /// Largest message accepted from a subscriber (they should send none).
    pub max_incoming_message: usize,
    /// A pause after each replay read before its events are queued: zero in
    /// production. Tests raise it to widen the window in which new events
    /// are published between reading the log and switching to live (the
    /// race the switch must win), as a slow database or a descheduled task
    /// would.
    #[doc(hidden)]
    pub replay_read_delay: Duration,
}

impl Default for FirehoseConfig {
    fn default() -> FirehoseConfig {
        FirehoseConfig {
            ring_capacity: 4096,
            max_queued_frames: 1000,
            max_queued_bytes: 32 << 20,
            replay_batch: 200,
            broadcast_batch: 1000,
            poll_interval: Duration::from_millis(500),
            ping_interval: Some(Duration::from_secs(30)),
            close_timeout: Duration::from_secs(5),
            write_buffer_size: 128 << 10,
            read_buffer_size: 4 << 10,
            live_coalesce: Duration::from_millis(5),
            max_incoming_message: 64 << 10,
            replay_read_delay: Duration::ZERO,
        }
    }
}

impl FirehoseConfig {
    /// The configuration with every size at least 1 (a zero would make the
    /// engine unable to move).
    pub(crate) fn sanitized(mut self) -> FirehoseConfig {
        self.ring_capacity = self.ring_capacity.max(1);
        self.max_queued_frames = self.max_queued_frames.max(2);
        self.max_queued_bytes = self.max_queued_bytes.max(1);
        self.replay_batch = self.replay_batch.max(1);
        self.broadcast_batch = self.broadcast_batch.max(1);
        self.read_buffer_size = self.read_buffer_size.max(1);
        if self.poll_interval.is_zero() {
            self.poll_interval = Duration::from_millis(1);
        }
        if self.ping_interval.is_some_and(|d| d.is_zero()) {
            self.ping_interval = None;
        }
        self
    }
}
