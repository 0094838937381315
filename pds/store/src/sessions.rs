//! Sessions: refresh-token ids (never the tokens themselves), rotation with
//! a grace period, and revocation.
//!
//! Rotation follows the reference PDS: rotating token `A` creates `B`, sets
//! `A.next_id = B` and shortens `A`'s life to at most the grace period. A
//! retry with `A` inside the grace period gets `B` again (the client lost the
//! response); after it, `A` is expired.

use crate::db::{on_pool, on_tx, Backend, Pool};
use crate::error::{unique_violation, Result, StoreError};
use crate::Store;

/// A refresh token's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// The token's `jti`.
    pub id: String,
    pub did: String,
    /// Set when the session was created with an app password.
    pub app_password_name: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The token that replaced this one.
    pub next_id: Option<String>,
}

/// Result of [`Sessions::rotate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// `next` was created and replaces the old token.
    Rotated(RefreshToken),
    /// The token had already been rotated and is still in its grace period:
    /// the caller re-issues this existing successor.
    AlreadyRotated(RefreshToken),
    /// The token is unknown or expired.
    Invalid,
}

type TokenRow = (String, String, Option<String>, i64, i64, Option<String>);

fn token_from_row(r: TokenRow) -> RefreshToken {
    RefreshToken {
        id: r.0,
        did: r.1,
        app_password_name: r.2,
        created_at: r.3,
        expires_at: r.4,
        next_id: r.5,
    }
}

const TOKEN_COLS: &str = "id, did, app_password_name, created_at, expires_at, next_id";

/// Refresh tokens.
pub struct Sessions<'a> {
    pub(crate) store: &'a Store,
}

impl Sessions<'_> {
    fn pool(&self) -> &Pool {
        &self.store.inner.pool
    }

    /// Stores a new refresh token id.
    pub async fn create(&self, token: &RefreshToken) -> Result<()> {
        on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO refresh_token (id, did, app_password_name, created_at, expires_at, next_id) \
             VALUES ($1, $2, $3, $4, $5, $6)"
        )
        .bind(&token.id)
        .bind(&token.did)
        .bind(&token.app_password_name)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(&token.next_id)
        .execute(p)
        .await.map(|r| r.rows_affected()))
        .map_err(|e| {
            if unique_violation(&e).is_some() {
                StoreError::Duplicate(format!("refresh token {}", token.id))
            } else if crate::error::is_fk_violation(&e) {
                StoreError::AccountNotFound(token.did.clone())
            } else {
                StoreError::Database(e)
            }
        })?;
        Ok(())
    }

    /// A token by id (expired or not).
    pub async fn get(&self, id: &str) -> Result<Option<RefreshToken>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM refresh_token WHERE id = $1");
        let row: Option<TokenRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(token_from_row))
    }

    /// Rotates `old_id` into `next` (see the module docs). `now` and
    /// `grace_ms` decide expiry; `next.did` must match the old token's.
    pub async fn rotate(
        &self,
        old_id: &str,
        next: &RefreshToken,
        now: i64,
        grace_ms: i64,
    ) -> Result<RotateOutcome> {
        let mut tx = self.store.begin_write().await?;
        let sql = match tx.tx.backend() {
            Backend::Postgres => {
                format!("SELECT {TOKEN_COLS} FROM refresh_token WHERE id = $1 FOR UPDATE")
            }
            Backend::Sqlite => format!("SELECT {TOKEN_COLS} FROM refresh_token WHERE id = $1"),
        };
        let row: Option<TokenRow> = on_tx!(&mut tx.tx, |c| sqlx::query_as(&sql)
            .bind(old_id)
            .fetch_optional(&mut *c)
            .await)?;
        let Some(old) = row.map(token_from_row) else {
            return Ok(RotateOutcome::Invalid);
        };
        if old.expires_at <= now || old.did != next.did {
            return Ok(RotateOutcome::Invalid);
        }
        if let Some(next_id) = &old.next_id {
            let sql = format!("SELECT {TOKEN_COLS} FROM refresh_token WHERE id = $1");
            let succ: Option<TokenRow> = on_tx!(&mut tx.tx, |c| sqlx::query_as(&sql)
                .bind(next_id)
                .fetch_optional(&mut *c)
                .await)?;
            return Ok(match succ.map(token_from_row) {
                Some(t) if t.expires_at > now => RotateOutcome::AlreadyRotated(t),
                _ => RotateOutcome::Invalid,
            });
        }
        let fresh = RefreshToken {
            app_password_name: old.app_password_name.clone(),
            next_id: None,
            ..next.clone()
        };
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "INSERT INTO refresh_token (id, did, app_password_name, created_at, expires_at, next_id) \
             VALUES ($1, $2, $3, $4, $5, NULL)"
        )
        .bind(&fresh.id)
        .bind(&fresh.did)
        .bind(&fresh.app_password_name)
        .bind(fresh.created_at)
        .bind(fresh.expires_at)
        .execute(&mut *c)
        .await.map(|r| r.rows_affected()))
        .map_err(|e| match unique_violation(&e) {
            Some(_) => StoreError::Duplicate(format!("refresh token {}", fresh.id)),
            None => StoreError::Database(e),
        })?;
        let grace_end = now.saturating_add(grace_ms).min(old.expires_at);
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "UPDATE refresh_token SET next_id = $2, expires_at = $3 WHERE id = $1"
        )
        .bind(old_id)
        .bind(&fresh.id)
        .bind(grace_end)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        self.store.commit(tx).await?;
        Ok(RotateOutcome::Rotated(fresh))
    }

    /// Revokes one token and the tokens rotated from it. False if absent.
    pub async fn delete(&self, id: &str) -> Result<bool> {
        let mut tx = self.store.begin_write().await?;
        let mut current = Some(id.to_owned());
        let mut first = true;
        let mut found = false;
        // Follow the rotation chain forward (bounded: ids are unique, each step deletes one).
        while let Some(cur) = current.take() {
            let next: Option<Option<String>> = on_tx!(&mut tx.tx, |c| sqlx::query_scalar(
                "DELETE FROM refresh_token WHERE id = $1 RETURNING next_id"
            )
            .bind(&cur)
            .fetch_optional(&mut *c)
            .await)?;
            if first {
                found = next.is_some();
                first = false;
            }
            current = next.flatten();
        }
        self.store.commit(tx).await?;
        Ok(found)
    }

    /// Revokes every token of an account.
    pub async fn delete_for_account(&self, did: &str) -> Result<u64> {
        Ok(on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM refresh_token WHERE did = $1"
        )
        .bind(did)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    /// The account's tokens, oldest first.
    pub async fn list_for_account(&self, did: &str) -> Result<Vec<RefreshToken>> {
        let sql = format!(
            "SELECT {TOKEN_COLS} FROM refresh_token WHERE did = $1 ORDER BY created_at, id"
        );
        let rows: Vec<TokenRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(did)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(token_from_row).collect())
    }

    /// Deletes tokens that expired before `now`.
    pub async fn delete_expired(&self, now: i64) -> Result<u64> {
        Ok(on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM refresh_token WHERE expires_at <= $1"
        )
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }
}
