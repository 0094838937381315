//! Outgoing notification queue (email and other channels) and its history.
//!
//! Workers claim due entries with a lease: a claimed entry is `sending` with
//! `next_attempt_at` at the lease's end, so an entry whose worker died is
//! claimed again after the lease. On PostgreSQL, `FOR UPDATE SKIP LOCKED`
//! lets workers in several processes claim disjoint batches.

use std::fmt;
use std::str::FromStr;

use crate::db::{now_ms, on_pool, Pool};
use crate::error::{Result, StoreError};
use crate::Store;

/// Delivery state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotificationStatus {
    Pending,
    Sending,
    Sent,
    Failed,
}

impl NotificationStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Pending => "pending",
            NotificationStatus::Sending => "sending",
            NotificationStatus::Sent => "sent",
            NotificationStatus::Failed => "failed",
        }
    }
}

impl fmt::Display for NotificationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NotificationStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => NotificationStatus::Pending,
            "sending" => NotificationStatus::Sending,
            "sent" => NotificationStatus::Sent,
            "failed" => NotificationStatus::Failed,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "notification status {other:?}"
                )))
            }
        })
    }
}

/// A notification to queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    /// e.g. `email`.
    pub channel: String,
    /// e.g. an email address or DID.
    pub recipient: String,
    /// e.g. `confirm_email`.
    pub kind: String,
    /// JSON text with what the template needs.
    pub payload: String,
    /// Not before this time (ms).
    pub send_after: i64,
}

/// A queued or delivered notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub channel: String,
    pub recipient: String,
    pub kind: String,
    pub payload: String,
    pub status: NotificationStatus,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    Option<i64>,
);

const COLS: &str = "id, channel, recipient, kind, payload, status, attempts, next_attempt_at, \
     last_error, created_at, sent_at";

fn from_row(r: Row) -> Result<Notification> {
    Ok(Notification {
        id: r.0,
        channel: r.1,
        recipient: r.2,
        kind: r.3,
        payload: r.4,
        status: r.5.parse()?,
        attempts: r.6,
        next_attempt_at: r.7,
        last_error: r.8,
        created_at: r.9,
        sent_at: r.10,
    })
}

/// The notification queue.
pub struct Notifications<'a> {
    pub(crate) store: &'a Store,
}

impl Notifications<'_> {
    fn pool(&self) -> &Pool {
        &self.store.inner.pool
    }

    /// Queues a notification; returns its id.
    pub async fn enqueue(&self, n: &NewNotification) -> Result<i64> {
        Ok(on_pool!(self.pool(), |p| {
            sqlx::query_scalar(
            "INSERT INTO notification (channel, recipient, kind, payload, status, attempts, \
             next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6) RETURNING id"
        )
        .bind(&n.channel)
        .bind(&n.recipient)
        .bind(&n.kind)
        .bind(&n.payload)
        .bind(n.send_after)
        .bind(now_ms())
        .fetch_one(p)
        .await
        })?)
    }

    /// One notification.
    pub async fn get(&self, id: i64) -> Result<Option<Notification>> {
        let sql = format!("SELECT {COLS} FROM notification WHERE id = $1");
        let row: Option<Row> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        row.map(from_row).transpose()
    }

    /// Claims up to `limit` entries due at `now` (pending, or sending with an
    /// expired lease), leasing them for `lease_ms`. Ordered by id.
    pub async fn claim_due(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<Notification>> {
        let lock = match self.store.backend() {
            crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE notification SET status = 'sending', attempts = attempts + 1, \
             next_attempt_at = $2 WHERE id IN (SELECT id FROM notification \
             WHERE status IN ('pending', 'sending') AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, id LIMIT $3{lock}) RETURNING {COLS}"
        );
        let rows: Vec<Row> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(now)
            .bind(now.saturating_add(lease_ms))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        let mut out = rows.into_iter().map(from_row).collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|n| n.id);
        Ok(out)
    }

    /// Marks a claimed entry delivered. False if it was not `sending`.
    pub async fn mark_sent(&self, id: i64, at: i64) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "UPDATE notification SET status = 'sent', sent_at = $2, last_error = NULL \
             WHERE id = $1 AND status = 'sending'"
        )
        .bind(id)
        .bind(at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Records a failed attempt: retried at `retry_at`, or failed for good
    /// with `None`. False if it was not `sending`.
    pub async fn mark_failed(&self, id: i64, error: &str, retry_at: Option<i64>) -> Result<bool> {
        let (status, next) = match retry_at {
            Some(t) => (NotificationStatus::Pending, Some(t)),
            None => (NotificationStatus::Failed, None),
        };
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "UPDATE notification SET status = $2, last_error = $3, \
             next_attempt_at = COALESCE($4, next_attempt_at) WHERE id = $1 AND status = 'sending'"
        )
        .bind(id)
        .bind(status.as_str())
        .bind(error)
        .bind(next)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// The recipient's notifications, newest first.
    pub async fn history(&self, recipient: &str, limit: u32) -> Result<Vec<Notification>> {
        let sql = format!(
            "SELECT {COLS} FROM notification WHERE recipient = $1 ORDER BY id DESC LIMIT $2"
        );
        let rows: Vec<Row> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(recipient)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(from_row).collect()
    }

    /// Deletes sent or failed entries created before `cutoff`.
    pub async fn prune_finished_before(&self, cutoff: i64) -> Result<u64> {
        Ok(on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM notification WHERE status IN ('sent', 'failed') AND created_at < $1"
        )
        .bind(cutoff)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }
}
