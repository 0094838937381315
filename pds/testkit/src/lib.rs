//! Test support shared by the PDS crates: a fresh SQLite directory or a
//! fresh, randomly named PostgreSQL database per test (dropped afterwards),
//! a `pds_store::Store` opened on it, and the `both_backends!` macro that
//! instantiates a test body once per backend.
//!
//! PostgreSQL is expected on 127.0.0.1:5432 (user `postgres`, trust) unless
//! `PDS_TEST_POSTGRES_URL` names another admin URL. Tests fail loudly when
//! it is unreachable; they never skip.

use std::path::Path;

use pds_store::{Store, StoreConfig};
use sqlx::{Connection, PgConnection};

/// Admin URL of the test PostgreSQL server.
pub fn pg_admin_url() -> String {
    std::env::var("PDS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Which database a test uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, randomly named PostgreSQL database on the test server, dropped
/// (`WITH (FORCE)`) when this is dropped, even when the test panicked.
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    url: String,
}

impl PgDatabase {
    /// Creates the database; panics with instructions when the server is
    /// unreachable.
    pub async fn create() -> PgDatabase {
        let admin = pg_admin_url();
        let mut conn = PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests but {admin} is unreachable ({e}). \
                 Start it (e.g. `pg_ctlcluster --skip-systemctl-redirect 15 main start`) \
                 or set PDS_TEST_POSTGRES_URL."
            )
        });
        let name = format!("pds_test_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        let url = format!("{base}/{name}");
        PgDatabase { name, url }
    }

    /// The database's connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop cannot await: a helper thread with its own runtime.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut c) = PgConnection::connect(&pg_admin_url()).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut c)
                        .await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// A `Store` on a fresh database, with a temporary directory for the test's
/// other files (on SQLite the database lives in it too).
pub struct TestDb {
    pub store: Store,
    /// What `StoreConfig::new` was given: the SQLite path or the
    /// PostgreSQL URL.
    pub location: String,
    dir: tempfile::TempDir,
    // Declared last: the database is dropped after the store.
    _pg: Option<PgDatabase>,
}

impl TestDb {
    /// A fresh SQLite database with the default `StoreConfig`.
    pub async fn sqlite() -> TestDb {
        TestDb::open(Backend::Sqlite, |_| {}).await
    }

    /// A fresh PostgreSQL database with the default `StoreConfig`.
    pub async fn postgres() -> TestDb {
        TestDb::open(Backend::Postgres, |_| {}).await
    }

    /// A fresh database of `backend`, its `StoreConfig` adjusted by
    /// `configure` before the store is opened.
    pub async fn open(backend: Backend, configure: impl FnOnce(&mut StoreConfig)) -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let (location, pg) = match backend {
            Backend::Sqlite => (dir.path().join("data").to_string_lossy().into_owned(), None),
            Backend::Postgres => {
                let pg = PgDatabase::create().await;
                (pg.url().to_owned(), Some(pg))
            }
        };
        let mut config = StoreConfig::new(location.clone());
        configure(&mut config);
        let store = Store::open(config)
            .await
            .unwrap_or_else(|e| panic!("open {backend:?} store: {e:?}"));
        TestDb {
            store,
            location,
            dir,
            _pg: pg,
        }
    }

    /// Another independent `Store` on the same database (default
    /// `StoreConfig`): its own pool, its own in-process locks. Stands in for
    /// a second PDS process, or this one after a restart.
    pub async fn reopen(&self) -> Store {
        Store::open(StoreConfig::new(self.location.clone()))
            .await
            .expect("reopen store")
    }

    /// The test's temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// Instantiates `async fn NAME(db: &TestDb)` once per backend, as
/// `NAME::sqlite` and `NAME::postgres` (multi-threaded runtime, 4 workers).
/// With a leading `configure = EXPR;`, each store's `StoreConfig` is first
/// passed to `EXPR` (an `FnOnce(&mut StoreConfig)`).
///
/// The calling crate needs `tokio` with `rt-multi-thread` and `macros`.
#[macro_export]
macro_rules! both_backends {
    (configure = $configure:expr; $($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = $crate::TestDb::open($crate::Backend::Sqlite, $configure).await;
                super::$name(&db).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let db = $crate::TestDb::open($crate::Backend::Postgres, $configure).await;
                super::$name(&db).await;
            }
        }
    )*};
    ($($name:ident),* $(,)?) => {
        $crate::both_backends!(configure = |_| {}; $($name),*);
    };
}
