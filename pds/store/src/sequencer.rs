//! The sequencer: the firehose's event log.
//!
//! # Design: a counter row bumped last, held until commit
//!
//! `seq_counter` holds one row, `last_seq`. A transaction that sequences
//! events does so as its **last statements**: `UPDATE seq_counter SET
//! last_seq = last_seq + n RETURNING last_seq` followed by the inserts into
//! `repo_seq` (and, on PostgreSQL, `pg_notify`), then commits.
//!
//! * **Gap-free.** The counter is an ordinary row, not a database sequence:
//!   if the transaction rolls back, so does the bump. Every committed event
//!   gets `previous committed last_seq + 1`.
//! * **Strictly increasing and never visible out of order.** The `UPDATE`
//!   takes the row's write lock (PostgreSQL row lock; SQLite's single writer
//!   lock) and keeps it until commit. A second writer's `UPDATE` blocks until
//!   the first commits and then reads the committed value (PostgreSQL
//!   re-evaluates the row under READ COMMITTED). So seqs are handed out in
//!   commit order, and PostgreSQL makes a transaction visible before it
//!   releases its locks: once a reader can see seq `n`, every seq below `n`
//!   is already visible. A reader polling `events_after(cursor)` can
//!   therefore never see a gap that is filled later. This holds across any
//!   number of processes on one PostgreSQL, because the lock is in the
//!   database.
//! * **Cheap contention.** The lock is held only from the bump to the commit
//!   (a few inserts), not while the caller computes the commit.
//!
//! Events are stored ready to send: the caller's encoder receives the
//! assigned seq and time and returns the frame bytes.
//!
//! Subscribers learn about new events through a `watch` channel holding the
//! highest committed seq: local commits publish to it directly; on
//! PostgreSQL a LISTEN task relays `pg_notify` from other processes; and
//! [`SeqSubscriber::next_batch`] also polls the database, so a lost
//! notification only delays delivery by one poll interval.

use std::fmt;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::db::{now_ms, on_pool, value_rows, Backend, Pool};
use crate::error::{Result, StoreError};
use crate::exec::Exec;
use crate::inline::Arg;
use crate::repo::keep_prepared;
use crate::Store;

/// PostgreSQL NOTIFY channel carrying the highest committed seq.
pub const SEQ_NOTIFY_CHANNEL: &str = "pds_seq";

/// Default retention window of the event log: 72 hours.
pub const DEFAULT_EVENT_RETENTION: Duration = Duration::from_secs(72 * 3600);

type Encoder = Box<dyn FnOnce(i64, i64) -> Vec<u8> + Send>;

/// An event to sequence. The encoder is called inside the transaction with
/// `(seq, sequenced_at_ms)` and returns the ready-to-send frame bytes.
pub struct NewEvent {
    pub did: String,
    pub event_type: String,
    encode: Encoder,
}

impl NewEvent {
    /// An event whose bytes depend on its seq and time (the usual case: the
    /// frame body carries both).
    pub fn new(
        did: impl Into<String>,
        event_type: impl Into<String>,
        encode: impl FnOnce(i64, i64) -> Vec<u8> + Send + 'static,
    ) -> NewEvent {
        NewEvent {
            did: did.into(),
            event_type: event_type.into(),
            encode: Box::new(encode),
        }
    }

    /// An event with fixed bytes.
    pub fn raw(did: impl Into<String>, event_type: impl Into<String>, bytes: Vec<u8>) -> NewEvent {
        NewEvent::new(did, event_type, move |_, _| bytes)
    }
}

impl fmt::Debug for NewEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewEvent")
            .field("did", &self.did)
            .field("event_type", &self.event_type)
            .finish_non_exhaustive()
    }
}

/// A sequenced event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeqEvent {
    pub seq: i64,
    pub did: String,
    pub event_type: String,
    /// The ready-to-send frame body.
    pub event: Vec<u8>,
    pub invalidated: bool,
    pub sequenced_at: i64,
}

type EventRow = (i64, String, String, Vec<u8>, bool, i64);

fn event_from_row(r: EventRow) -> SeqEvent {
    SeqEvent {
        seq: r.0,
        did: r.1,
        event_type: r.2,
        event: r.3,
        invalidated: r.4,
        sequenced_at: r.5,
    }
}

/// Events per INSERT statement (five parameters each).
const EVENT_CHUNK: usize = 200;

const EVENT_COLS: &str = "seq, did, event_type, event, invalidated, sequenced_at";

/// Sequences `events` in `tx`. Must be the last thing the transaction does
/// before commit (see the module docs). Returns the assigned seqs in order.
pub(crate) async fn sequence_events(tx: &mut impl Exec, events: Vec<NewEvent>) -> Result<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let n = i64::try_from(events.len()).unwrap_or(i64::MAX);
    let last: Vec<(i64,)> = tx
        .rows(
            "UPDATE seq_counter SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq",
            &[Arg::Int(n)],
            true,
        )
        .await?;
    let Some(&(last,)) = last.first() else {
        return Err(StoreError::Corrupt("seq_counter has no row".into()));
    };
    let first = last - n + 1;
    let now = now_ms();
    let mut rows = Vec::with_capacity(events.len());
    for (i, ev) in events.into_iter().enumerate() {
        let seq = first + i64::try_from(i).unwrap_or(i64::MAX);
        let bytes = (ev.encode)(seq, now);
        rows.push((seq, ev.did, ev.event_type, bytes));
    }
    // One statement per chunk of events; on PostgreSQL the last one also
    // sends the NOTIFY, so the statements between taking the seq counter's
    // row lock and committing (which every commit waits for) are two.
    let last_s = last.to_string();
    let chunks = rows.len().div_ceil(EVENT_CHUNK);
    for (i, chunk) in rows.chunks(EVENT_CHUNK).enumerate() {
        let mut args = Vec::with_capacity(chunk.len() * 5 + 2);
        for (seq, did, event_type, bytes) in chunk {
            args.extend([
                Arg::Int(*seq),
                Arg::Text(did),
                Arg::Text(event_type),
                Arg::Blob(bytes),
                Arg::Int(now),
            ]);
        }
        let insert = format!(
            "INSERT INTO repo_seq (seq, did, event_type, event, sequenced_at) VALUES {}",
            value_rows(chunk.len(), 5)
        );
        let sql = if tx.backend() == Backend::Postgres && i + 1 == chunks {
            args.extend([Arg::Text(SEQ_NOTIFY_CHANNEL), Arg::Text(&last_s)]);
            format!(
                "WITH inserted AS ({insert}) SELECT pg_notify(${}, ${})",
                chunk.len() * 5 + 1,
                chunk.len() * 5 + 2
            )
        } else {
            insert
        };
        tx.execute(&sql, &args, keep_prepared(chunk.len(), EVENT_CHUNK))
            .await?;
    }
    let seqs = rows.iter().map(|r| r.0).collect();
    tx.note_seq(last);
    Ok(seqs)
}

pub(crate) async fn read_last_seq(pool: &Pool) -> Result<i64> {
    Ok(on_pool!(pool, |p| sqlx::query_scalar(
        "SELECT last_seq FROM seq_counter WHERE id = 1"
    )
    .fetch_one(p)
    .await)?)
}

pub(crate) fn publish_max(tx: &watch::Sender<i64>, seq: i64) {
    tx.send_if_modified(|cur| {
        if seq > *cur {
            *cur = seq;
            true
        } else {
            false
        }
    });
}

/// Relays `pg_notify` from every process to the local watch channel. After a
/// reconnect (when notifications may have been missed) it re-reads the counter.
pub(crate) async fn spawn_pg_listener(
    pool: PgPool,
    seq_watch: watch::Sender<i64>,
) -> Result<JoinHandle<()>> {
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(SEQ_NOTIFY_CHANNEL).await?;
    Ok(tokio::spawn(async move {
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Ok(seq) = n.payload().parse::<i64>() {
                        publish_max(&seq_watch, seq);
                    }
                }
                Ok(None) => {
                    // Connection lost and re-established: catch up.
                    if let Ok(seq) = read_last_seq(&Pool::Postgres(pool.clone())).await {
                        publish_max(&seq_watch, seq);
                    }
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }))
}

/// The event log.
pub struct Sequencer<'a> {
    pub(crate) store: &'a Store,
}

impl Sequencer<'_> {
    /// Sequences one event in its own transaction.
    pub async fn append(&self, event: NewEvent) -> Result<i64> {
        let seqs = self.append_many(vec![event]).await?;
        Ok(seqs.first().copied().unwrap_or_default())
    }

    /// Sequences several events atomically, in order.
    pub async fn append_many(&self, events: Vec<NewEvent>) -> Result<Vec<i64>> {
        let mut tx = self.store.begin_write().await?;
        let seqs = sequence_events(&mut tx, events).await?;
        self.store.commit(tx).await?;
        Ok(seqs)
    }

    /// Events with `seq > cursor`, ascending, at most `limit`.
    pub async fn events_after(&self, cursor: i64, limit: u32) -> Result<Vec<SeqEvent>> {
        let sql = format!("SELECT {EVENT_COLS} FROM repo_seq WHERE seq > $1 ORDER BY seq LIMIT $2");
        let args = [Arg::Int(cursor), Arg::Int(i64::from(limit))];
        let rows: Vec<EventRow> = self.store.rows(&sql, &args, true).await?;
        Ok(rows.into_iter().map(event_from_row).collect())
    }

    /// One event by seq.
    pub async fn get(&self, seq: i64) -> Result<Option<SeqEvent>> {
        let sql = format!("SELECT {EVENT_COLS} FROM repo_seq WHERE seq = $1");
        let row: Option<EventRow> = on_pool!(&self.store.inner.pool, |p| sqlx::query_as(&sql)
            .bind(seq)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(event_from_row))
    }

    /// The highest committed seq (0 before the first event). Survives pruning.
    pub async fn current_seq(&self) -> Result<i64> {
        read_last_seq(&self.store.inner.pool).await
    }

    /// The lowest seq still stored, if any.
    pub async fn earliest_seq(&self) -> Result<Option<i64>> {
        Ok(on_pool!(&self.store.inner.pool, |p| sqlx::query_scalar(
            "SELECT MIN(seq) FROM repo_seq"
        )
        .fetch_one(p)
        .await)?)
    }

    /// The first event sequenced at or after `time_ms` (for time-based cursors).
    pub async fn first_seq_at_or_after(&self, time_ms: i64) -> Result<Option<i64>> {
        Ok(on_pool!(&self.store.inner.pool, |p| sqlx::query_scalar(
            "SELECT MIN(seq) FROM repo_seq WHERE sequenced_at >= $1"
        )
        .bind(time_ms)
        .fetch_one(p)
        .await)?)
    }

    /// Marks the events of `did` with `seq < before_seq` as invalidated (e.g.
    /// superseded by an account deletion). Returns how many changed.
    pub async fn invalidate_events(&self, did: &str, before_seq: i64) -> Result<u64> {
        let r = on_pool!(&self.store.inner.pool, |p| sqlx::query(
            "UPDATE repo_seq SET invalidated = TRUE \
             WHERE did = $1 AND seq < $2 AND invalidated = FALSE"
        )
        .bind(did)
        .bind(before_seq)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(r)
    }

    /// Deletes events sequenced before `cutoff_ms`. Returns how many.
    pub async fn prune_before(&self, cutoff_ms: i64) -> Result<u64> {
        Ok(on_pool!(&self.store.inner.pool, |p| sqlx::query(
            "DELETE FROM repo_seq WHERE sequenced_at < $1"
        )
        .bind(cutoff_ms)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// Deletes events older than `age` ([`DEFAULT_EVENT_RETENTION`] is 72 h).
    pub async fn prune_events_older_than(&self, age: Duration) -> Result<u64> {
        let age_ms = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        self.prune_before(now_ms().saturating_sub(age_ms)).await
    }

    /// A subscription to new events.
    pub fn subscribe(&self) -> SeqSubscriber {
        SeqSubscriber {
            store: self.store.clone(),
            rx: self.store.inner.seq_watch.subscribe(),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Waits for new events: woken by local commits, by PostgreSQL NOTIFY from
/// other processes, and by a poll timer as a fallback.
pub struct SeqSubscriber {
    store: Store,
    rx: watch::Receiver<i64>,
    poll_interval: Duration,
}

impl SeqSubscriber {
    /// Sets the poll fallback interval (default 500 ms).
    pub fn with_poll_interval(mut self, interval: Duration) -> SeqSubscriber {
        self.poll_interval = interval;
        self
    }

    /// The highest seq this process has been told about.
    pub fn latest_notified(&self) -> i64 {
        *self.rx.borrow()
    }

    /// Events after `cursor`, waiting up to `max_wait` for at least one.
    /// Returns an empty vector on timeout.
    pub async fn next_batch(
        &mut self,
        cursor: i64,
        limit: u32,
        max_wait: Duration,
    ) -> Result<Vec<SeqEvent>> {
        let deadline = tokio::time::Instant::now() + max_wait;
        // The database is read when a seq past the cursor has been
        // announced (a local commit, or NOTIFY from another process on
        // PostgreSQL) and when the poll timer fires (SQLite announces
        // nothing across processes), not on every wake-up: a reader that
        // has just taken the last announced events would otherwise read
        // again and find nothing, once per commit.
        let mut poll = false;
        loop {
            let announced = *self.rx.borrow_and_update();
            if poll || announced > cursor {
                let events = self.store.sequencer().events_after(cursor, limit).await?;
                if !events.is_empty() {
                    return Ok(events);
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let wait = self.poll_interval.min(deadline - now);
            poll = match tokio::time::timeout(wait, self.rx.changed()).await {
                Ok(Ok(())) => false,
                // The store is closing: only the timer is left.
                Ok(Err(_)) => {
                    tokio::time::sleep(wait).await;
                    true
                }
                Err(_) => true,
            };
        }
    }
}
