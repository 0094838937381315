//! Moderation reports, crawler notification bookkeeping, and a small
//! server key/value table (e.g. a DPoP nonce secret shared by processes).

use crate::db::{now_ms, on_pool, Pool};
use crate::error::Result;
use crate::Store;

/// A report to store (`com.atproto.moderation.createReport`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReport {
    pub reason_type: String,
    pub reason: Option<String>,
    /// The subject as JSON text.
    pub subject_json: String,
    pub reported_by: String,
}

/// A stored report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub id: i64,
    pub reason_type: String,
    pub reason: Option<String>,
    pub subject_json: String,
    pub reported_by: String,
    pub created_at: i64,
}

type ReportRow = (i64, String, Option<String>, String, String, i64);

fn report_from_row(r: ReportRow) -> Report {
    Report {
        id: r.0,
        reason_type: r.1,
        reason: r.2,
        subject_json: r.3,
        reported_by: r.4,
        created_at: r.5,
    }
}

/// Reports, crawlers, key/value.
pub struct Misc<'a> {
    pub(crate) store: &'a Store,
}

impl Misc<'_> {
    fn pool(&self) -> &Pool {
        &self.store.inner.pool
    }

    /// Stores a report.
    pub async fn create_report(&self, r: &NewReport) -> Result<Report> {
        let row: ReportRow = on_pool!(self.pool(), |p| sqlx::query_as(
            "INSERT INTO report (reason_type, reason, subject_json, reported_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, reason_type, reason, subject_json, reported_by, created_at"
        )
        .bind(&r.reason_type)
        .bind(&r.reason)
        .bind(&r.subject_json)
        .bind(&r.reported_by)
        .bind(now_ms())
        .fetch_one(p)
        .await)?;
        Ok(report_from_row(row))
    }

    /// One report.
    pub async fn get_report(&self, id: i64) -> Result<Option<Report>> {
        let row: Option<ReportRow> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT id, reason_type, reason, subject_json, reported_by, created_at \
             FROM report WHERE id = $1"
        )
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(report_from_row))
    }

    /// When `crawler` was last notified.
    pub async fn crawler_last_notified(&self, crawler: &str) -> Result<Option<i64>> {
        Ok(on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT last_notified_at FROM crawler_notify WHERE crawler = $1"
        )
        .bind(crawler)
        .fetch_optional(p)
        .await)?)
    }

    /// Claims the right to notify `crawler` at `now` if it was last notified
    /// at least `min_interval_ms` ago (or never). Exactly one of several
    /// concurrent callers (processes) wins.
    pub async fn claim_crawler_notify(
        &self,
        crawler: &str,
        now: i64,
        min_interval_ms: i64,
    ) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO crawler_notify (crawler, last_notified_at) VALUES ($1, $2) \
             ON CONFLICT (crawler) DO UPDATE SET last_notified_at = excluded.last_notified_at \
             WHERE crawler_notify.last_notified_at <= $3"
        )
        .bind(crawler)
        .bind(now)
        .bind(now.saturating_sub(min_interval_ms))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// A stored value.
    pub async fn kv_get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT value FROM server_kv WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(p)
        .await)?)
    }

    /// Sets a value.
    pub async fn kv_put(&self, key: &str, value: &[u8]) -> Result<()> {
        on_pool!(self.pool(), |p| {
            sqlx::query(
            "INSERT INTO server_kv (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
        )
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(p)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Sets the value unless one exists; returns the stored value (the first
    /// writer's, across processes).
    pub async fn kv_get_or_insert(&self, key: &str, value: &[u8]) -> Result<Vec<u8>> {
        on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO server_kv (key, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING"
        )
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        self.kv_get(key)
            .await?
            .ok_or_else(|| crate::StoreError::Corrupt(format!("kv {key} vanished")))
    }
}
