//! OAuth authorization-server state: authorization requests and codes,
//! tokens and their refresh-token rotation (with used-token reuse
//! detection), replay protection for DPoP `jti`s and nonces, devices,
//! account-device links and authorized clients.
//!
//! Structured parts the store never queries (client auth, request
//! parameters, token details, client data) are kept as JSON text.

use crate::db::{now_ms, on_pool, on_tx, Backend, Pool};
use crate::error::{is_fk_violation, unique_violation, Result, StoreError};
use crate::Store;

/// A browser/device that signed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthDevice {
    pub device_id: String,
    pub session_id: String,
    pub user_agent: Option<String>,
    pub ip_address: String,
    pub last_seen_at: i64,
}

/// An account signed in on a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountDevice {
    pub did: String,
    pub device_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A client the account authorized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizedClient {
    pub client_id: String,
    pub data_json: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A pushed/ongoing authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub id: String,
    pub did: Option<String>,
    pub device_id: Option<String>,
    pub client_id: String,
    pub client_auth_json: Option<String>,
    pub parameters_json: String,
    pub expires_at: i64,
    pub code: Option<String>,
}

/// An issued token family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthToken {
    pub token_id: String,
    pub did: String,
    pub client_id: String,
    pub client_auth_json: String,
    pub device_id: Option<String>,
    pub parameters_json: String,
    pub details_json: Option<String>,
    pub code: Option<String>,
    pub current_refresh_token: Option<String>,
    pub scope: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
}

type ReqRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    String,
    i64,
    Option<String>,
);
const REQ_COLS: &str =
    "id, did, device_id, client_id, client_auth_json, parameters_json, expires_at, code";

fn req_from_row(r: ReqRow) -> AuthorizationRequest {
    AuthorizationRequest {
        id: r.0,
        did: r.1,
        device_id: r.2,
        client_id: r.3,
        client_auth_json: r.4,
        parameters_json: r.5,
        expires_at: r.6,
        code: r.7,
    }
}

type TokRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
);
const TOK_COLS: &str = "token_id, did, client_id, client_auth_json, device_id, parameters_json, \
     details_json, code, current_refresh_token, scope, created_at, updated_at, expires_at";

fn tok_from_row(r: TokRow) -> OAuthToken {
    OAuthToken {
        token_id: r.0,
        did: r.1,
        client_id: r.2,
        client_auth_json: r.3,
        device_id: r.4,
        parameters_json: r.5,
        details_json: r.6,
        code: r.7,
        current_refresh_token: r.8,
        scope: r.9,
        created_at: r.10,
        updated_at: r.11,
        expires_at: r.12,
    }
}

fn map_dup(what: &str, e: sqlx::Error) -> StoreError {
    if unique_violation(&e).is_some() {
        StoreError::Duplicate(what.to_owned())
    } else if is_fk_violation(&e) {
        StoreError::InvalidInput(format!("{what}: unknown account or device"))
    } else {
        StoreError::Database(e)
    }
}

/// OAuth state.
pub struct OAuth<'a> {
    pub(crate) store: &'a Store,
}

impl OAuth<'_> {
    fn pool(&self) -> &Pool {
        &self.store.inner.pool
    }

    // ---- devices ----

    /// Creates or updates a device.
    pub async fn upsert_device(&self, d: &OAuthDevice) -> Result<()> {
        on_pool!(self.pool(), |p| {
            sqlx::query(
            "INSERT INTO oauth_device (device_id, session_id, user_agent, ip_address, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (device_id) DO UPDATE SET \
             session_id = excluded.session_id, user_agent = excluded.user_agent, \
             ip_address = excluded.ip_address, last_seen_at = excluded.last_seen_at"
        )
        .bind(&d.device_id)
        .bind(&d.session_id)
        .bind(&d.user_agent)
        .bind(&d.ip_address)
        .bind(d.last_seen_at)
        .execute(p)
        .await.map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// A device.
    pub async fn get_device(&self, device_id: &str) -> Result<Option<OAuthDevice>> {
        let row: Option<(String, String, Option<String>, String, i64)> =
            on_pool!(self.pool(), |p| sqlx::query_as(
                "SELECT device_id, session_id, user_agent, ip_address, last_seen_at \
                 FROM oauth_device WHERE device_id = $1"
            )
            .bind(device_id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|r| OAuthDevice {
            device_id: r.0,
            session_id: r.1,
            user_agent: r.2,
            ip_address: r.3,
            last_seen_at: r.4,
        }))
    }

    /// Deletes a device and its account links.
    pub async fn delete_device(&self, device_id: &str) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM oauth_device WHERE device_id = $1"
        )
        .bind(device_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Links an account to a device (refreshing `updated_at` if linked).
    pub async fn link_account_device(&self, did: &str, device_id: &str) -> Result<()> {
        let now = now_ms();
        on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO oauth_account_device (did, device_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $3) ON CONFLICT (did, device_id) DO UPDATE \
             SET updated_at = excluded.updated_at"
        )
        .bind(did)
        .bind(device_id)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| map_dup("account device", e))?;
        Ok(())
    }

    /// Unlinks an account from a device.
    pub async fn unlink_account_device(&self, did: &str, device_id: &str) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM oauth_account_device WHERE did = $1 AND device_id = $2"
        )
        .bind(did)
        .bind(device_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// The accounts signed in on a device, most recent first.
    pub async fn device_accounts(&self, device_id: &str) -> Result<Vec<AccountDevice>> {
        self.account_devices_where("device_id", device_id).await
    }

    /// The devices an account is signed in on, most recent first.
    pub async fn account_devices(&self, did: &str) -> Result<Vec<AccountDevice>> {
        self.account_devices_where("did", did).await
    }

    async fn account_devices_where(&self, col: &str, v: &str) -> Result<Vec<AccountDevice>> {
        let sql = format!(
            "SELECT did, device_id, created_at, updated_at FROM oauth_account_device \
             WHERE {col} = $1 ORDER BY updated_at DESC, did, device_id"
        );
        let rows: Vec<(String, String, i64, i64)> =
            on_pool!(self.pool(), |p| sqlx::query_as(&sql)
                .bind(v)
                .fetch_all(p)
                .await)?;
        Ok(rows
            .into_iter()
            .map(|r| AccountDevice {
                did: r.0,
                device_id: r.1,
                created_at: r.2,
                updated_at: r.3,
            })
            .collect())
    }

    // ---- authorized clients ----

    /// Records (or updates) a client the account authorized.
    pub async fn put_authorized_client(
        &self,
        did: &str,
        client_id: &str,
        data_json: &str,
    ) -> Result<()> {
        let now = now_ms();
        on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO oauth_authorized_client (did, client_id, data_json, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT (did, client_id) DO UPDATE \
             SET data_json = excluded.data_json, updated_at = excluded.updated_at"
        )
        .bind(did)
        .bind(client_id)
        .bind(data_json)
        .bind(now)
        .execute(p)
        .await.map(|r| r.rows_affected()))
        .map_err(|e| map_dup("authorized client", e))?;
        Ok(())
    }

    /// The clients the account authorized.
    pub async fn authorized_clients(&self, did: &str) -> Result<Vec<AuthorizedClient>> {
        let rows: Vec<(String, String, i64, i64)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT client_id, data_json, created_at, updated_at FROM oauth_authorized_client \
             WHERE did = $1 ORDER BY client_id"
        )
        .bind(did)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|r| AuthorizedClient {
                client_id: r.0,
                data_json: r.1,
                created_at: r.2,
                updated_at: r.3,
            })
            .collect())
    }

    // ---- authorization requests and codes ----

    /// Stores a new authorization request.
    pub async fn create_request(&self, r: &AuthorizationRequest) -> Result<()> {
        let sql = format!("INSERT INTO oauth_authorization_request ({REQ_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
        on_pool!(self.pool(), |p| sqlx::query(&sql)
            .bind(&r.id)
            .bind(&r.did)
            .bind(&r.device_id)
            .bind(&r.client_id)
            .bind(&r.client_auth_json)
            .bind(&r.parameters_json)
            .bind(r.expires_at)
            .bind(&r.code)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| map_dup("authorization request", e))?;
        Ok(())
    }

    /// An authorization request by id.
    pub async fn get_request(&self, id: &str) -> Result<Option<AuthorizationRequest>> {
        let sql = format!("SELECT {REQ_COLS} FROM oauth_authorization_request WHERE id = $1");
        let row: Option<ReqRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(req_from_row))
    }

    /// Binds the request to the signed-in account and device, and sets its
    /// code and new expiry. False if absent.
    pub async fn authorize_request(
        &self,
        id: &str,
        did: &str,
        device_id: Option<&str>,
        code: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "UPDATE oauth_authorization_request SET did = $2, device_id = $3, code = $4, \
             expires_at = $5 WHERE id = $1"
        )
        .bind(id)
        .bind(did)
        .bind(device_id)
        .bind(code)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| map_dup("authorization code", e))?;
        Ok(n > 0)
    }

    /// Exchanges a code: deletes its request and returns it if unexpired at
    /// `now`. Single use, atomic.
    pub async fn consume_code(&self, code: &str, now: i64) -> Result<Option<AuthorizationRequest>> {
        let sql =
            format!("DELETE FROM oauth_authorization_request WHERE code = $1 RETURNING {REQ_COLS}");
        let row: Option<ReqRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(code)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(req_from_row).filter(|r| r.expires_at > now))
    }

    /// Deletes a request.
    pub async fn delete_request(&self, id: &str) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM oauth_authorization_request WHERE id = $1"
        )
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Deletes requests expired at `now`.
    pub async fn delete_expired_requests(&self, now: i64) -> Result<u64> {
        Ok(on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM oauth_authorization_request WHERE expires_at <= $1"
        )
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    // ---- tokens ----

    /// Stores a new token.
    pub async fn create_token(&self, t: &OAuthToken) -> Result<()> {
        let sql = format!(
            "INSERT INTO oauth_token ({TOK_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        );
        on_pool!(self.pool(), |p| sqlx::query(&sql)
            .bind(&t.token_id)
            .bind(&t.did)
            .bind(&t.client_id)
            .bind(&t.client_auth_json)
            .bind(&t.device_id)
            .bind(&t.parameters_json)
            .bind(&t.details_json)
            .bind(&t.code)
            .bind(&t.current_refresh_token)
            .bind(&t.scope)
            .bind(t.created_at)
            .bind(t.updated_at)
            .bind(t.expires_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(|e| map_dup("oauth token", e))?;
        Ok(())
    }

    async fn token_where(&self, col: &str, v: &str) -> Result<Option<OAuthToken>> {
        let sql = format!("SELECT {TOK_COLS} FROM oauth_token WHERE {col} = $1");
        let row: Option<TokRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(v)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(tok_from_row))
    }

    /// A token by id.
    pub async fn get_token(&self, token_id: &str) -> Result<Option<OAuthToken>> {
        self.token_where("token_id", token_id).await
    }

    /// The token whose current refresh token this is.
    pub async fn token_by_refresh(&self, refresh_token: &str) -> Result<Option<OAuthToken>> {
        self.token_where("current_refresh_token", refresh_token)
            .await
    }

    /// The token issued for an authorization code (code replay detection).
    pub async fn token_by_code(&self, code: &str) -> Result<Option<OAuthToken>> {
        self.token_where("code", code).await
    }

    /// The account's tokens, newest first.
    pub async fn tokens_for_account(&self, did: &str) -> Result<Vec<OAuthToken>> {
        let sql = format!(
            "SELECT {TOK_COLS} FROM oauth_token WHERE did = $1 ORDER BY created_at DESC, token_id"
        );
        let rows: Vec<TokRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(did)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(tok_from_row).collect())
    }

    /// Rotates the token's refresh token: only if `old_refresh` is current;
    /// the old one is remembered as used. Returns false (changing nothing)
    /// if `old_refresh` is not the current one.
    pub async fn rotate_refresh(
        &self,
        token_id: &str,
        old_refresh: &str,
        new_refresh: &str,
        expires_at: i64,
        details_json: Option<&str>,
    ) -> Result<bool> {
        let mut tx = self.store.begin_write().await?;
        let sql = match tx.tx.backend() {
            Backend::Postgres => {
                "SELECT current_refresh_token FROM oauth_token WHERE token_id = $1 FOR UPDATE"
            }
            Backend::Sqlite => "SELECT current_refresh_token FROM oauth_token WHERE token_id = $1",
        };
        let cur: Option<Option<String>> = on_tx!(&mut tx.tx, |c| sqlx::query_scalar(sql)
            .bind(token_id)
            .fetch_optional(&mut *c)
            .await)?;
        if cur.flatten().as_deref() != Some(old_refresh) {
            return Ok(false);
        }
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "INSERT INTO oauth_used_refresh_token (refresh_token, token_id) VALUES ($1, $2)"
        )
        .bind(old_refresh)
        .bind(token_id)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| map_dup("used refresh token", e))?;
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "UPDATE oauth_token SET current_refresh_token = $2, expires_at = $3, \
             updated_at = $4, details_json = COALESCE($5, details_json) WHERE token_id = $1"
        )
        .bind(token_id)
        .bind(new_refresh)
        .bind(expires_at)
        .bind(now_ms())
        .bind(details_json)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| map_dup("refresh token", e))?;
        self.store.commit(tx).await?;
        Ok(true)
    }

    /// If `refresh_token` was already used, the id of its token (whose family
    /// the caller should revoke).
    pub async fn used_refresh_token(&self, refresh_token: &str) -> Result<Option<String>> {
        Ok(on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT token_id FROM oauth_used_refresh_token WHERE refresh_token = $1"
        )
        .bind(refresh_token)
        .fetch_optional(p)
        .await)?)
    }

    /// Revokes a token (its used refresh tokens go with it).
    pub async fn delete_token(&self, token_id: &str) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM oauth_token WHERE token_id = $1"
        )
        .bind(token_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    // ---- replay protection ----

    /// Records `key` (a DPoP `jti`, a nonce...) in `namespace` until
    /// `expires_at`. True the first time; false while an unexpired entry
    /// exists (a replay). Atomic across processes.
    pub async fn replay_unique(
        &self,
        namespace: &str,
        key: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO oauth_replay (namespace, key, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (namespace, key) DO UPDATE SET expires_at = excluded.expires_at \
             WHERE oauth_replay.expires_at <= $4"
        )
        .bind(namespace)
        .bind(key)
        .bind(expires_at)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Forgets replay entries expired at `now`.
    pub async fn purge_replay(&self, now: i64) -> Result<u64> {
        Ok(on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM oauth_replay WHERE expires_at <= $1"
        )
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }
}
