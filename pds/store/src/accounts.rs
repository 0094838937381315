//! Accounts and what hangs off them: invite codes, app passwords, email and
//! PLC-operation tokens, reserved signing keys, preferences.
//!
//! The store keeps what it is given: password hashes (the caller hashes with
//! a memory-hard KDF), signing keys as ciphertext (the caller encrypts), and
//! token hashes only.

use std::fmt;
use std::str::FromStr;

use cid::Cid;

use crate::db::{now_ms, on_pool, on_tx, Pool};
use crate::error::{unique_violation, Result, StoreError};
use crate::inline::Arg;
use crate::repo::{apply_commit, delete_repo_data, CommitOutcome, RepoCommitData, RootGuard};
use crate::sequencer::{sequence_events, NewEvent};
use crate::Store;

/// Hosting status of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    Active,
    Deactivated,
    Takendown,
    Deleted,
}

impl AccountStatus {
    /// The stored (and lexicon) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Deactivated => "deactivated",
            AccountStatus::Takendown => "takendown",
            AccountStatus::Deleted => "deleted",
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AccountStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "active" => AccountStatus::Active,
            "deactivated" => AccountStatus::Deactivated,
            "takendown" => AccountStatus::Takendown,
            "deleted" => AccountStatus::Deleted,
            other => return Err(StoreError::Corrupt(format!("account status {other:?}"))),
        })
    }
}

/// An account row (the signing key is read separately).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub did: String,
    pub handle: Option<String>,
    pub email: Option<String>,
    pub email_confirmed_at: Option<i64>,
    pub password_hash: Option<String>,
    pub status: AccountStatus,
    pub takedown_ref: Option<String>,
    pub deactivated_at: Option<i64>,
    pub delete_after: Option<i64>,
    pub invites_disabled: bool,
    pub created_at: i64,
}

type AccountRow = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
    bool,
    i64,
);

const ACCOUNT_COLS: &str = "did, handle, email, email_confirmed_at, password_hash, status, \
     takedown_ref, deactivated_at, delete_after, invites_disabled, created_at";

fn account_from_row(r: AccountRow) -> Result<Account> {
    Ok(Account {
        did: r.0,
        handle: r.1,
        email: r.2,
        email_confirmed_at: r.3,
        password_hash: r.4,
        status: r.5.parse()?,
        takedown_ref: r.6,
        deactivated_at: r.7,
        delete_after: r.8,
        invites_disabled: r.9,
        created_at: r.10,
    })
}

/// A new account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub did: String,
    pub handle: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub signing_key_ciphertext: Option<Vec<u8>>,
    /// Consumed atomically with the account's creation.
    pub invite_code: Option<String>,
    /// `Active`, or `Deactivated` for an account migrating in.
    pub status: AccountStatus,
}

impl NewAccount {
    /// An active account with just a DID and handle.
    pub fn new(did: impl Into<String>, handle: impl Into<String>) -> NewAccount {
        NewAccount {
            did: did.into(),
            handle: handle.into(),
            email: None,
            password_hash: None,
            signing_key_ciphertext: None,
            invite_code: None,
            status: AccountStatus::Active,
        }
    }
}

/// An invite code to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewInviteCode {
    pub code: String,
    pub available_uses: i64,
    pub for_account: String,
    pub created_by: String,
}

/// An invite code with its uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCode {
    pub code: String,
    pub available_uses: i64,
    pub disabled: bool,
    pub for_account: String,
    pub created_by: String,
    pub created_at: i64,
    pub uses: Vec<InviteCodeUse>,
}

/// The order of an admin's invite code listing, newest or most used first
/// (ties broken by code, descending).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum InviteCodeSort {
    /// By creation time.
    Recent,
    /// By number of uses.
    Usage,
}

/// Where an invite code listing resumes: the sort key (creation time in ms,
/// or use count) and the code of the last row of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCodeCursor {
    pub key: i64,
    pub code: String,
}

/// One use of an invite code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InviteCodeUse {
    pub used_by: String,
    pub used_at: i64,
}

/// An app password (the hash is the caller's KDF output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPassword {
    pub name: String,
    pub password_hash: String,
    pub privileged: bool,
    pub created_at: i64,
}

/// What an email (or PLC-operation) token authorises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    ConfirmEmail,
    UpdateEmail,
    ResetPassword,
    DeleteAccount,
    PlcOperation,
}

impl TokenPurpose {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::ConfirmEmail => "confirm_email",
            TokenPurpose::UpdateEmail => "update_email",
            TokenPurpose::ResetPassword => "reset_password",
            TokenPurpose::DeleteAccount => "delete_account",
            TokenPurpose::PlcOperation => "plc_operation",
        }
    }
}

/// A stored token (hash only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailToken {
    pub did: String,
    pub token_hash: String,
    pub requested_at: i64,
}

/// A reserved signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedKey {
    pub key_did: String,
    pub did: Option<String>,
    pub private_key_ciphertext: Vec<u8>,
    pub created_at: i64,
}

/// One stored preference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preference {
    /// The preference's `$type`.
    pub name: String,
    /// Its JSON text.
    pub value_json: String,
}

fn map_account_unique(err: sqlx::Error) -> StoreError {
    match unique_violation(&err) {
        Some(what) if what.contains("handle") => StoreError::HandleTaken,
        Some(what) if what.contains("email") => StoreError::EmailTaken,
        Some(_) => StoreError::DidTaken,
        None => StoreError::Database(err),
    }
}

fn lower_opt(s: Option<&str>) -> Option<String> {
    s.map(str::to_lowercase)
}

/// Accounts and their satellites.
pub struct Accounts<'a> {
    pub(crate) store: &'a Store,
}

impl Accounts<'_> {
    fn pool(&self) -> &Pool {
        &self.store.inner.pool
    }

    /// Creates an account, consuming its invite code, optionally with its
    /// first repo commit and events, all in one transaction.
    pub async fn create(
        &self,
        account: NewAccount,
        genesis: Option<RepoCommitData>,
    ) -> Result<CommitOutcome> {
        let mut tx = self.store.begin_write().await?;
        let now = now_ms();
        if let Some(code) = &account.invite_code {
            let lock = match tx.tx.backend() {
                crate::Backend::Postgres => {
                    "SELECT available_uses, disabled FROM invite_code WHERE code = $1 FOR UPDATE"
                }
                crate::Backend::Sqlite => {
                    "SELECT available_uses, disabled FROM invite_code WHERE code = $1"
                }
            };
            let row: Option<(i64, bool)> = on_tx!(&mut tx.tx, |c| sqlx::query_as(lock)
                .bind(code)
                .fetch_optional(&mut *c)
                .await)?;
            let Some((available, disabled)) = row else {
                return Err(StoreError::InviteCodeUnavailable);
            };
            let used: i64 = on_tx!(&mut tx.tx, |c| sqlx::query_scalar(
                "SELECT COUNT(*) FROM invite_code_use WHERE code = $1"
            )
            .bind(code)
            .fetch_one(&mut *c)
            .await)?;
            if disabled || used >= available {
                return Err(StoreError::InviteCodeUnavailable);
            }
        }
        let deactivated_at = (account.status == AccountStatus::Deactivated).then_some(now);
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "INSERT INTO account (did, handle, email, password_hash, signing_key_ciphertext, \
             status, deactivated_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )
        .bind(&account.did)
        .bind(account.handle.to_lowercase())
        .bind(lower_opt(account.email.as_deref()))
        .bind(&account.password_hash)
        .bind(&account.signing_key_ciphertext)
        .bind(account.status.as_str())
        .bind(deactivated_at)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(map_account_unique)?;
        if let Some(code) = &account.invite_code {
            on_tx!(&mut tx.tx, |c| sqlx::query(
                "INSERT INTO invite_code_use (code, used_by, used_at) VALUES ($1, $2, $3)"
            )
            .bind(code)
            .bind(&account.did)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        let outcome = match genesis {
            Some(data) => {
                apply_commit(&mut tx, &account.did, RootGuard::Expect(None), data).await?
            }
            None => CommitOutcome::default(),
        };
        self.store.commit(tx).await?;
        Ok(outcome)
    }

    async fn get_where(&self, column: &str, value: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLS} FROM account WHERE {column} = $1");
        let rows: Vec<AccountRow> = self.store.rows(&sql, &[Arg::Text(value)], true).await?;
        rows.into_iter().next().map(account_from_row).transpose()
    }

    /// By DID.
    pub async fn get(&self, did: &str) -> Result<Option<Account>> {
        self.get_where("did", did).await
    }

    /// Accounts by DID after `after` (admin listings).
    pub async fn list(&self, after: Option<&str>, limit: u32) -> Result<Vec<Account>> {
        let sql =
            format!("SELECT {ACCOUNT_COLS} FROM account WHERE did > $1 ORDER BY did LIMIT $2");
        let rows: Vec<AccountRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(after.unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(account_from_row).collect()
    }

    /// By handle (case-insensitive).
    pub async fn get_by_handle(&self, handle: &str) -> Result<Option<Account>> {
        self.get_where("handle", &handle.to_lowercase()).await
    }

    /// By email (case-insensitive).
    pub async fn get_by_email(&self, email: &str) -> Result<Option<Account>> {
        self.get_where("email", &email.to_lowercase()).await
    }

    async fn expect_one(&self, did: &str, n: u64) -> Result<()> {
        if n == 0 {
            return Err(StoreError::AccountNotFound(did.to_owned()));
        }
        Ok(())
    }

    /// Changes the handle and sequences `events` (e.g. `#identity`) atomically.
    pub async fn update_handle(
        &self,
        did: &str,
        handle: &str,
        events: Vec<NewEvent>,
    ) -> Result<Vec<i64>> {
        let mut tx = self.store.begin_write().await?;
        let n = on_tx!(&mut tx.tx, |c| sqlx::query(
            "UPDATE account SET handle = $2 WHERE did = $1"
        )
        .bind(did)
        .bind(handle.to_lowercase())
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(map_account_unique)?;
        self.expect_one(did, n).await?;
        let seqs = sequence_events(&mut tx, events).await?;
        self.store.commit(tx).await?;
        Ok(seqs)
    }

    /// Changes (or clears) the email; clears its confirmation.
    pub async fn update_email(&self, did: &str, email: Option<&str>) -> Result<()> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "UPDATE account SET email = $2, email_confirmed_at = NULL WHERE did = $1"
        )
        .bind(did)
        .bind(lower_opt(email))
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(map_account_unique)?;
        self.expect_one(did, n).await
    }

    /// Records the email's confirmation time.
    pub async fn confirm_email(&self, did: &str, at: i64) -> Result<()> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "UPDATE account SET email_confirmed_at = $2 WHERE did = $1"
        )
        .bind(did)
        .bind(at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        self.expect_one(did, n).await
    }

    /// Replaces the password hash; with `revoke_sessions`, deletes every
    /// refresh token of the account in the same transaction.
    pub async fn update_password(
        &self,
        did: &str,
        password_hash: &str,
        revoke_sessions: bool,
    ) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let n = on_tx!(&mut tx.tx, |c| sqlx::query(
            "UPDATE account SET password_hash = $2 WHERE did = $1"
        )
        .bind(did)
        .bind(password_hash)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        self.expect_one(did, n).await?;
        if revoke_sessions {
            on_tx!(&mut tx.tx, |c| sqlx::query(
                "DELETE FROM refresh_token WHERE did = $1"
            )
            .bind(did)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        self.store.commit(tx).await
    }

    /// Sets the hosting status (with takedown reference and scheduled
    /// deletion time) and sequences `events` (e.g. `#account`) atomically.
    /// A takedown keeps the account's deactivation time (the two are
    /// independent, as in the reference: reversing the takedown of a
    /// deactivated account leaves it deactivated); `Active` clears it.
    pub async fn set_status(
        &self,
        did: &str,
        status: AccountStatus,
        takedown_ref: Option<&str>,
        delete_after: Option<i64>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<i64>> {
        let mut tx = self.store.begin_write().await?;
        let now = now_ms();
        let n = on_tx!(&mut tx.tx, |c| sqlx::query(
            "UPDATE account SET status = $2, takedown_ref = $3, delete_after = $4, \
             deactivated_at = CASE WHEN $2 = 'deactivated' THEN COALESCE(deactivated_at, $5) \
             WHEN $2 = 'takendown' THEN deactivated_at ELSE NULL END WHERE did = $1"
        )
        .bind(did)
        .bind(status.as_str())
        .bind(takedown_ref)
        .bind(delete_after)
        .bind(now)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        self.expect_one(did, n).await?;
        let seqs = sequence_events(&mut tx, events).await?;
        self.store.commit(tx).await?;
        Ok(seqs)
    }

    /// Enables or disables invite creation for the account.
    pub async fn set_invites_disabled(&self, did: &str, disabled: bool) -> Result<()> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "UPDATE account SET invites_disabled = $2 WHERE did = $1"
        )
        .bind(did)
        .bind(disabled)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        self.expect_one(did, n).await
    }

    /// The encrypted signing key.
    pub async fn signing_key(&self, did: &str) -> Result<Option<Vec<u8>>> {
        let v: Option<Option<Vec<u8>>> = on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT signing_key_ciphertext FROM account WHERE did = $1"
        )
        .bind(did)
        .fetch_optional(p)
        .await)?;
        Ok(v.flatten())
    }

    /// Replaces the encrypted signing key.
    pub async fn set_signing_key(&self, did: &str, ciphertext: &[u8]) -> Result<()> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "UPDATE account SET signing_key_ciphertext = $2 WHERE did = $1"
        )
        .bind(did)
        .bind(ciphertext)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        self.expect_one(did, n).await
    }

    /// Deletes the account's repository, blobs metadata, credentials, tokens,
    /// preferences and OAuth state, marks it `deleted` (freeing handle and
    /// email) and sequences `events`, in one transaction. Returns the CIDs of
    /// the account's blobs, for the caller to delete from the blob store.
    pub async fn delete(&self, did: &str, events: Vec<NewEvent>) -> Result<Vec<Cid>> {
        let mut tx = self.store.begin_write().await?;
        let blobs = delete_repo_data(&mut tx.tx, did).await?;
        for sql in [
            "DELETE FROM refresh_token WHERE did = $1",
            "DELETE FROM app_password WHERE did = $1",
            "DELETE FROM email_token WHERE did = $1",
            "DELETE FROM preference WHERE did = $1",
            "DELETE FROM oauth_account_device WHERE did = $1",
            "DELETE FROM oauth_authorized_client WHERE did = $1",
            "DELETE FROM oauth_token WHERE did = $1",
            "DELETE FROM oauth_authorization_request WHERE did = $1",
            "DELETE FROM reserved_signing_key WHERE did = $1",
        ] {
            on_tx!(&mut tx.tx, |c| sqlx::query(sql)
                .bind(did)
                .execute(&mut *c)
                .await
                .map(|r| r.rows_affected()))?;
        }
        let n = on_tx!(&mut tx.tx, |c| sqlx::query(
            "UPDATE account SET status = 'deleted', handle = NULL, email = NULL, \
             email_confirmed_at = NULL, password_hash = NULL, signing_key_ciphertext = NULL, \
             delete_after = NULL WHERE did = $1"
        )
        .bind(did)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        self.expect_one(did, n).await?;
        sequence_events(&mut tx, events).await?;
        self.store.commit(tx).await?;
        Ok(blobs)
    }

    /// Accounts whose scheduled deletion time has passed.
    pub async fn due_for_deletion(&self, now: i64, limit: u32) -> Result<Vec<String>> {
        Ok(on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT did FROM account WHERE delete_after IS NOT NULL AND delete_after <= $1 \
             AND status <> 'deleted' ORDER BY delete_after LIMIT $2"
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(p)
        .await)?)
    }

    // ---- invite codes ----

    /// Creates invite codes.
    pub async fn create_invite_codes(&self, codes: &[NewInviteCode]) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let now = now_ms();
        for code in codes {
            on_tx!(&mut tx.tx, |c| sqlx::query(
                "INSERT INTO invite_code (code, available_uses, disabled, for_account, \
                 created_by, created_at) VALUES ($1, $2, FALSE, $3, $4, $5)"
            )
            .bind(&code.code)
            .bind(code.available_uses)
            .bind(&code.for_account)
            .bind(&code.created_by)
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
            .map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::Duplicate(format!("invite code {}", code.code)),
                None => StoreError::Database(e),
            })?;
        }
        self.store.commit(tx).await
    }

    async fn invite_uses(&self, code: &str) -> Result<Vec<InviteCodeUse>> {
        let rows: Vec<(String, i64)> = on_pool!(self.pool(), |p| {
            sqlx::query_as(
            "SELECT used_by, used_at FROM invite_code_use WHERE code = $1 ORDER BY used_at, used_by"
        )
        .bind(code)
        .fetch_all(p)
        .await
        })?;
        Ok(rows
            .into_iter()
            .map(|(used_by, used_at)| InviteCodeUse { used_by, used_at })
            .collect())
    }

    async fn invite_codes_where(&self, sql: &str, arg: &str) -> Result<Vec<InviteCode>> {
        let rows: Vec<(String, i64, bool, String, String, i64)> =
            on_pool!(self.pool(), |p| sqlx::query_as(sql)
                .bind(arg)
                .fetch_all(p)
                .await)?;
        self.with_uses(rows).await
    }

    /// Invite code rows completed with their uses.
    async fn with_uses(
        &self,
        rows: Vec<(String, i64, bool, String, String, i64)>,
    ) -> Result<Vec<InviteCode>> {
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let uses = self.invite_uses(&r.0).await?;
            out.push(InviteCode {
                code: r.0,
                available_uses: r.1,
                disabled: r.2,
                for_account: r.3,
                created_by: r.4,
                created_at: r.5,
                uses,
            });
        }
        Ok(out)
    }

    /// One invite code with its uses.
    pub async fn get_invite_code(&self, code: &str) -> Result<Option<InviteCode>> {
        Ok(self
            .invite_codes_where(
                "SELECT code, available_uses, disabled, for_account, created_by, created_at \
                 FROM invite_code WHERE code = $1",
                code,
            )
            .await?
            .into_iter()
            .next())
    }

    /// The invite codes created for an account.
    pub async fn invite_codes_for_account(&self, did: &str) -> Result<Vec<InviteCode>> {
        self.invite_codes_where(
            "SELECT code, available_uses, disabled, for_account, created_by, created_at \
             FROM invite_code WHERE for_account = $1 ORDER BY created_at, code",
            did,
        )
        .await
    }

    /// Disables the given codes and every code of the given accounts.
    pub async fn disable_invite_codes(&self, codes: &[String], accounts: &[String]) -> Result<u64> {
        let mut tx = self.store.begin_write().await?;
        let mut n = 0;
        for code in codes {
            n += on_tx!(&mut tx.tx, |c| sqlx::query(
                "UPDATE invite_code SET disabled = TRUE WHERE code = $1"
            )
            .bind(code)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        for did in accounts {
            n += on_tx!(&mut tx.tx, |c| sqlx::query(
                "UPDATE invite_code SET disabled = TRUE WHERE for_account = $1"
            )
            .bind(did)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))?;
        }
        self.store.commit(tx).await?;
        Ok(n)
    }

    /// Every invite code (any account, admin-made or earned), a page of at
    /// most `limit` in `sort` order after `after`, with their uses.
    pub async fn list_invite_codes(
        &self,
        sort: InviteCodeSort,
        after: Option<&InviteCodeCursor>,
        limit: u32,
    ) -> Result<Vec<InviteCode>> {
        let key = match sort {
            InviteCodeSort::Recent => "created_at",
            InviteCodeSort::Usage => "uses",
        };
        let sql = format!(
            "SELECT code, available_uses, disabled, for_account, created_by, created_at FROM \
             (SELECT c.code, c.available_uses, c.disabled, c.for_account, c.created_by, \
             c.created_at, (SELECT COUNT(*) FROM invite_code_use u WHERE u.code = c.code) AS uses \
             FROM invite_code c) listed WHERE {key} < $1 OR ({key} = $1 AND code < $2) ORDER BY {key} DESC, code DESC LIMIT $3"
        );
        // No cursor: everything sorts before the largest key.
        let (k, c) = after.map_or((i64::MAX, ""), |a| (a.key, a.code.as_str()));
        let rows: Vec<(String, i64, bool, String, String, i64)> =
            on_pool!(self.pool(), |p| sqlx::query_as(&sql)
                .bind(k)
                .bind(c)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await)?;
        self.with_uses(rows).await
    }

    /// The invite code the account signed up with, if any.
    pub async fn invite_code_used_by(&self, did: &str) -> Result<Option<InviteCode>> {
        Ok(self
            .invite_codes_where(
                "SELECT c.code, c.available_uses, c.disabled, c.for_account, c.created_by, \
                 c.created_at FROM invite_code c JOIN invite_code_use u ON u.code = c.code \
                 WHERE u.used_by = $1 ORDER BY u.used_at LIMIT 1",
                did,
            )
            .await?
            .into_iter()
            .next())
    }

    /// Accounts (not deleted) whose email or handle starts with `prefix`
    /// (case-insensitive; every account when `None`), by DID after `after`,
    /// at most `limit`.
    pub async fn search(
        &self,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Account>> {
        let pattern = match prefix {
            Some(p) => {
                let mut escaped = String::with_capacity(p.len() + 1);
                for ch in p.to_lowercase().chars() {
                    if matches!(ch, '\\' | '%' | '_') {
                        escaped.push('\\');
                    }
                    escaped.push(ch);
                }
                escaped.push('%');
                escaped
            }
            None => "%".to_owned(),
        };
        let sql = format!(
            "SELECT {ACCOUNT_COLS} FROM account WHERE status <> 'deleted' AND did > $1 \
             AND (email LIKE $2 ESCAPE '\\' OR handle LIKE $2 ESCAPE '\\' OR $2 = '%') \
             ORDER BY did LIMIT $3"
        );
        let rows: Vec<AccountRow> = on_pool!(self.pool(), |p| sqlx::query_as(&sql)
            .bind(after.unwrap_or(""))
            .bind(&pattern)
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        rows.into_iter().map(account_from_row).collect()
    }

    // ---- app passwords ----

    /// Creates an app password; [`StoreError::AppPasswordExists`] if the name is taken.
    pub async fn create_app_password(
        &self,
        did: &str,
        name: &str,
        password_hash: &str,
        privileged: bool,
    ) -> Result<AppPassword> {
        let now = now_ms();
        on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO app_password (did, name, password_hash, privileged, created_at) \
             VALUES ($1, $2, $3, $4, $5)"
        )
        .bind(did)
        .bind(name)
        .bind(password_hash)
        .bind(privileged)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| {
            if unique_violation(&e).is_some() {
                StoreError::AppPasswordExists
            } else if crate::error::is_fk_violation(&e) {
                StoreError::AccountNotFound(did.to_owned())
            } else {
                StoreError::Database(e)
            }
        })?;
        Ok(AppPassword {
            name: name.to_owned(),
            password_hash: password_hash.to_owned(),
            privileged,
            created_at: now,
        })
    }

    /// The account's app passwords (with hashes, for login checks), by name.
    pub async fn list_app_passwords(&self, did: &str) -> Result<Vec<AppPassword>> {
        let rows: Vec<(String, String, bool, i64)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT name, password_hash, privileged, created_at FROM app_password \
             WHERE did = $1 ORDER BY name"
        )
        .bind(did)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|r| AppPassword {
                name: r.0,
                password_hash: r.1,
                privileged: r.2,
                created_at: r.3,
            })
            .collect())
    }

    /// Revokes an app password and the sessions created with it. False if absent.
    pub async fn delete_app_password(&self, did: &str, name: &str) -> Result<bool> {
        let mut tx = self.store.begin_write().await?;
        let n = on_tx!(&mut tx.tx, |c| sqlx::query(
            "DELETE FROM app_password WHERE did = $1 AND name = $2"
        )
        .bind(did)
        .bind(name)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "DELETE FROM refresh_token WHERE did = $1 AND app_password_name = $2"
        )
        .bind(did)
        .bind(name)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        self.store.commit(tx).await?;
        Ok(n > 0)
    }

    // ---- email and PLC-operation tokens ----

    /// Stores (replacing any previous) the token hash for `purpose`.
    pub async fn put_token(
        &self,
        purpose: TokenPurpose,
        did: &str,
        token_hash: &str,
    ) -> Result<()> {
        self.put_token_at(purpose, did, token_hash, now_ms()).await
    }

    /// [`Accounts::put_token`] with the request time given (ms), e.g. for a
    /// token carried over from elsewhere, or to test expiry.
    pub async fn put_token_at(
        &self,
        purpose: TokenPurpose,
        did: &str,
        token_hash: &str,
        requested_at: i64,
    ) -> Result<()> {
        on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO email_token (purpose, did, token_hash, requested_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (purpose, did) DO UPDATE \
             SET token_hash = excluded.token_hash, requested_at = excluded.requested_at"
        )
        .bind(purpose.as_str())
        .bind(did)
        .bind(token_hash)
        .bind(requested_at)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| {
            if crate::error::is_fk_violation(&e) {
                StoreError::AccountNotFound(did.to_owned())
            } else if unique_violation(&e).is_some() {
                StoreError::Duplicate("token hash".into())
            } else {
                StoreError::Database(e)
            }
        })?;
        Ok(())
    }

    /// The account's token for `purpose`.
    pub async fn get_token(&self, purpose: TokenPurpose, did: &str) -> Result<Option<EmailToken>> {
        let row: Option<(String, i64)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT token_hash, requested_at FROM email_token WHERE purpose = $1 AND did = $2"
        )
        .bind(purpose.as_str())
        .bind(did)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(token_hash, requested_at)| EmailToken {
            did: did.to_owned(),
            token_hash,
            requested_at,
        }))
    }

    /// The token with this hash, whoever it belongs to (password reset).
    pub async fn find_token(
        &self,
        purpose: TokenPurpose,
        token_hash: &str,
    ) -> Result<Option<EmailToken>> {
        let row: Option<(String, i64)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT did, requested_at FROM email_token WHERE purpose = $1 AND token_hash = $2"
        )
        .bind(purpose.as_str())
        .bind(token_hash)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(|(did, requested_at)| EmailToken {
            did,
            token_hash: token_hash.to_owned(),
            requested_at,
        }))
    }

    /// Consumes the token if it matches and was requested at or after
    /// `not_before`: single use, atomic. Returns whether it was consumed.
    pub async fn consume_token(
        &self,
        purpose: TokenPurpose,
        did: &str,
        token_hash: &str,
        not_before: i64,
    ) -> Result<bool> {
        let n = on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM email_token WHERE purpose = $1 AND did = $2 AND token_hash = $3 \
             AND requested_at >= $4"
        )
        .bind(purpose.as_str())
        .bind(did)
        .bind(token_hash)
        .bind(not_before)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }

    /// Deletes the account's token for `purpose`.
    pub async fn delete_token(&self, purpose: TokenPurpose, did: &str) -> Result<()> {
        on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM email_token WHERE purpose = $1 AND did = $2"
        )
        .bind(purpose.as_str())
        .bind(did)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    // ---- reserved signing keys ----

    /// Stores a reserved key (for `did`, when known).
    pub async fn reserve_key(
        &self,
        key_did: &str,
        did: Option<&str>,
        private_key_ciphertext: &[u8],
    ) -> Result<()> {
        on_pool!(self.pool(), |p| sqlx::query(
            "INSERT INTO reserved_signing_key (key_did, did, private_key_ciphertext, created_at) \
             VALUES ($1, $2, $3, $4)"
        )
        .bind(key_did)
        .bind(did)
        .bind(private_key_ciphertext)
        .bind(now_ms())
        .execute(p)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| match unique_violation(&e) {
            Some(_) => StoreError::Duplicate(format!("reserved key {key_did}")),
            None => StoreError::Database(e),
        })?;
        Ok(())
    }

    /// A reserved key by its did:key.
    pub async fn get_reserved_key(&self, key_did: &str) -> Result<Option<ReservedKey>> {
        let row: Option<(String, Option<String>, Vec<u8>, i64)> =
            on_pool!(self.pool(), |p| sqlx::query_as(
                "SELECT key_did, did, private_key_ciphertext, created_at \
                 FROM reserved_signing_key WHERE key_did = $1"
            )
            .bind(key_did)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|r| ReservedKey {
            key_did: r.0,
            did: r.1,
            private_key_ciphertext: r.2,
            created_at: r.3,
        }))
    }

    /// The most recently reserved key for `did` (reserveSigningKey answers
    /// the same key on a repeat call).
    pub async fn reserved_key_for_did(&self, did: &str) -> Result<Option<ReservedKey>> {
        let row: Option<(String, Option<String>, Vec<u8>, i64)> =
            on_pool!(self.pool(), |p| sqlx::query_as(
                "SELECT key_did, did, private_key_ciphertext, created_at \
                 FROM reserved_signing_key WHERE did = $1 \
                 ORDER BY created_at DESC, key_did LIMIT 1"
            )
            .bind(did)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|r| ReservedKey {
            key_did: r.0,
            did: r.1,
            private_key_ciphertext: r.2,
            created_at: r.3,
        }))
    }

    /// Removes and returns a reserved key (single use).
    pub async fn take_reserved_key(&self, key_did: &str) -> Result<Option<ReservedKey>> {
        let row: Option<(String, Option<String>, Vec<u8>, i64)> =
            on_pool!(self.pool(), |p| sqlx::query_as(
                "DELETE FROM reserved_signing_key WHERE key_did = $1 \
                 RETURNING key_did, did, private_key_ciphertext, created_at"
            )
            .bind(key_did)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|r| ReservedKey {
            key_did: r.0,
            did: r.1,
            private_key_ciphertext: r.2,
            created_at: r.3,
        }))
    }

    /// Reserved keys older than `cutoff` (for cleanup).
    pub async fn delete_reserved_keys_before(&self, cutoff: i64) -> Result<u64> {
        Ok(on_pool!(self.pool(), |p| sqlx::query(
            "DELETE FROM reserved_signing_key WHERE created_at < $1"
        )
        .bind(cutoff)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
    }

    // ---- preferences ----

    /// How many preferences the account has stored, in all namespaces.
    pub async fn preference_count(&self, did: &str) -> Result<u64> {
        let n: i64 = on_pool!(self.pool(), |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM preference WHERE did = $1"
        )
        .bind(did)
        .fetch_one(p)
        .await)?;
        crate::db::u64_from_i64(n, "count")
    }

    /// The preferences whose namespace is `namespace`, in stored order.
    pub async fn get_preferences(&self, did: &str, namespace: &str) -> Result<Vec<Preference>> {
        let rows: Vec<(String, String)> = on_pool!(self.pool(), |p| sqlx::query_as(
            "SELECT name, value_json FROM preference WHERE did = $1 AND namespace = $2 \
             ORDER BY position"
        )
        .bind(did)
        .bind(namespace)
        .fetch_all(p)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|(name, value_json)| Preference { name, value_json })
            .collect())
    }

    /// Replaces all preferences of `namespace` atomically.
    pub async fn put_preferences(
        &self,
        did: &str,
        namespace: &str,
        prefs: &[Preference],
    ) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        on_tx!(&mut tx.tx, |c| sqlx::query(
            "DELETE FROM preference WHERE did = $1 AND namespace = $2"
        )
        .bind(did)
        .bind(namespace)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))?;
        for (i, pref) in prefs.iter().enumerate() {
            let pos = i64::try_from(i).unwrap_or(i64::MAX);
            on_tx!(&mut tx.tx, |c| sqlx::query(
                "INSERT INTO preference (did, namespace, position, name, value_json) \
                 VALUES ($1, $2, $3, $4, $5)"
            )
            .bind(did)
            .bind(namespace)
            .bind(pos)
            .bind(&pref.name)
            .bind(&pref.value_json)
            .execute(&mut *c)
            .await
            .map(|r| r.rows_affected()))
            .map_err(|e| {
                if crate::error::is_fk_violation(&e) {
                    StoreError::AccountNotFound(did.to_owned())
                } else {
                    StoreError::Database(e)
                }
            })?;
        }
        self.store.commit(tx).await
    }
}
