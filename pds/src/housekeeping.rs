//! Periodic cleanup, run hourly (and once at start) by [`run`]:
//!
//! - refresh tokens expired for longer than a refresh token's lifetime are
//!   deleted (rotated-out tokens are kept that long after their grace period
//!   so that a late reuse is still recognised and revokes its session);
//! - firehose events older than `PDS_FIREHOSE_RETENTION_HOURS` are pruned;
//! - blobs no record references, uploaded more than
//!   [`pds_store::MIN_ORPHAN_GRACE`] ago, are deleted (bytes, then row):
//!   uploads never used, and blobs whose last referencing record is gone;
//! - blob-store objects without a metadata row (left by a crash between the
//!   database and the blob store) older than the same grace are deleted.
//!
//! Every step is safe to run from several processes sharing one database:
//! each deletion re-checks its condition under the row's lock.

use std::time::Duration;

use crate::jwt;
use crate::state::AppState;

/// How often [`run`] sweeps.
pub const INTERVAL: Duration = Duration::from_secs(3600);

/// Orphan blobs deleted per batch (batches repeat until none are left).
const ORPHAN_BATCH: u32 = 500;

/// What one [`sweep`] deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub refresh_tokens: u64,
    pub firehose_events: u64,
    pub orphan_blobs: u64,
    pub unrecorded_blob_objects: u64,
}

/// Sweeps every [`INTERVAL`], the first time at once. Never returns; the
/// server aborts it at shutdown.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let swept = sweep(&state).await;
        if swept != Swept::default() {
            tracing::info!(?swept, "housekeeping");
        }
    }
}

/// One pass of every cleanup step, now. A failing step is logged and the
/// others still run.
pub async fn sweep(state: &AppState) -> Swept {
    sweep_at(state, pds_store::now_ms()).await
}

/// [`sweep`] as if the time were `now_ms` (milliseconds since the epoch):
/// everything older than its limit relative to `now_ms` goes.
pub async fn sweep_at(state: &AppState, now_ms: i64) -> Swept {
    let mut swept = Swept::default();
    let before =
        |age: Duration| now_ms.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX));

    match state
        .store
        .sessions()
        .delete_expired(before(jwt::REFRESH_TOKEN_TTL))
        .await
    {
        Ok(n) => swept.refresh_tokens = n,
        Err(e) => tracing::warn!(error = %e, "refresh token cleanup failed"),
    }

    match state
        .store
        .sequencer()
        .prune_before(before(state.config.firehose_retention))
        .await
    {
        Ok(n) => swept.firehose_events = n,
        Err(e) => tracing::warn!(error = %e, "firehose event pruning failed"),
    }

    let blobs = state.store.blobs();
    let blob_cutoff = before(pds_store::MIN_ORPHAN_GRACE);
    loop {
        match blobs
            .collect_orphans_before(state.blobstore.as_ref(), blob_cutoff, ORPHAN_BATCH)
            .await
        {
            Ok(n) => {
                swept.orphan_blobs += n;
                if n < u64::from(ORPHAN_BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "orphan blob cleanup failed");
                break;
            }
        }
    }

    match blobs
        .delete_unrecorded_objects(state.blobstore.as_ref(), blob_cutoff)
        .await
    {
        Ok(n) => swept.unrecorded_blob_objects = n,
        Err(e) => tracing::warn!(error = %e, "unrecorded blob object cleanup failed"),
    }

    swept
}
