//! Test harness: a fresh SQLite directory or a fresh PostgreSQL database per
//! test, and the `both_backends!` macro that instantiates a test body for each.

#![allow(dead_code)]

use std::time::Duration;

use cid::Cid;
use pds_store::{NewAccount, NewEvent, RecordPut, RepoCommitData, Store, StoreConfig, StoreError};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection};

/// Admin URL of the test PostgreSQL server.
pub fn pg_admin_url() -> String {
    std::env::var("PDS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub struct TestDb {
    pub store: Store,
    pub location: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    /// Another independent `Store` on the same database: its own pool, its
    /// own in-process locks. Stands in for a second PDS process.
    pub async fn second_process(&self) -> Store {
        Store::open(StoreConfig::new(self.location.clone()))
            .await
            .expect("open second store")
    }

    pub fn temp_dir(&self) -> std::path::PathBuf {
        match &self._dir {
            Some(d) => d.path().to_owned(),
            None => std::env::temp_dir(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop the database from a helper thread with its own runtime:
            // Drop cannot await, and this runs even when the test panicked.
            let handle = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    if let Ok(mut c) = PgConnection::connect(&pg_admin_url()).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            });
            let _ = handle.join();
        }
    }
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = dir.path().join("data").to_string_lossy().into_owned();
    let store = Store::open(StoreConfig::new(location.clone()))
        .await
        .expect("open sqlite store");
    TestDb {
        store,
        location,
        _dir: Some(dir),
        pg_name: None,
    }
}

pub async fn postgres() -> TestDb {
    let admin = pg_admin_url();
    let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is required for these tests but {admin} is unreachable ({e}). \
             Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) \
             or set PDS_TEST_POSTGRES_URL."
        )
    });
    let name = format!("pds_store_test_{:016x}", rand::random::<u64>());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let location = format!("{base}/{name}");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(StoreConfig::new(location.clone()))
        .await
        .expect("open postgres store");
    TestDb {
        store,
        location,
        _dir: Some(dir),
        pg_name: Some(name),
    }
}

/// Instantiates `async fn NAME(db: &TestDb)` once per backend, as
/// `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = $crate::common::sqlite().await;
                super::$name(&db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let db = $crate::common::postgres().await;
                super::$name(&db).await;
            }
        }
    )*};
}

/// A dag-cbor-codec CIDv1 block of `bytes`.
pub fn block(bytes: impl Into<Vec<u8>>) -> (Cid, Vec<u8>) {
    let bytes = bytes.into();
    let digest = Sha256::digest(&bytes);
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest[..]).expect("multihash");
    (Cid::new_v1(0x71, mh), bytes)
}

pub fn rev(n: u64) -> String {
    format!("rev{n:012}")
}

pub fn rev_num(rev: &str) -> u64 {
    rev.trim_start_matches("rev").parse().expect("test rev")
}

pub async fn make_account(store: &Store, did: &str) {
    store
        .accounts()
        .create(
            NewAccount::new(did, format!("{}.test", did.replace(':', "-"))),
            None,
        )
        .await
        .expect("create account");
}

/// Event bytes used by the tests: `seq|did|rev`.
pub fn commit_event(did: &str, rev: &str) -> NewEvent {
    let (d, r) = (did.to_owned(), rev.to_owned());
    NewEvent::new(did, "commit", move |seq, _t| {
        format!("{seq}|{d}|{r}").into_bytes()
    })
}

/// One read-modify-write "counter" commit: the rev counts commits; each
/// commit adds record `app.test.counter/<n>`, writes a fresh root block and
/// garbage-collects the previous one.
pub async fn counter_commit(store: &Store, did: &str) -> Result<(u64, i64), StoreError> {
    let txn = store.repo().begin_write(did).await?;
    let (n, prev_root) = match txn.current() {
        Some(r) => (rev_num(&r.rev), Some(r.cid)),
        None => (0, None),
    };
    let next = n + 1;
    let (root, root_bytes) = block(format!("root|{did}|{next}"));
    let (rec, rec_bytes) = block(format!("record|{did}|{next}"));
    let mut data = RepoCommitData::new(root, rev(next));
    data.put_blocks = vec![(root, root_bytes), (rec, rec_bytes)];
    data.delete_blocks = prev_root.into_iter().collect();
    data.record_puts = vec![RecordPut {
        collection: "app.test.counter".into(),
        rkey: format!("{next:08}"),
        cid: rec,
        blobs: vec![],
    }];
    data.events = vec![commit_event(did, &rev(next))];
    let out = txn.commit(data).await?;
    Ok((next, out.seqs.first().copied().unwrap_or(-1)))
}

pub async fn wait_until<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}
