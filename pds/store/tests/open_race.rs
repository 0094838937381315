//! Opening a fresh database from several pools or processes at once: every
//! open succeeds and the migrations are applied exactly once.

use std::process::{Command, Stdio};

use pds_store::{Store, StoreConfig, SQLITE_FILE_NAME};
use pds_testkit::PgDatabase;
use sqlx::Connection;

const CHILD_ENV: &str = "PDS_STORE_OPEN_RACE_CHILD_LOCATION";
/// Concurrent opens per round (with sqlx's SQLite migrator, which takes no
/// lock, ten processes make at least one fail nearly every round).
const OPENERS: usize = 10;

/// The migration versions recorded in the database, in order.
async fn sqlite_versions(dir: &std::path::Path) -> Vec<i64> {
    let url = format!("sqlite://{}", dir.join(SQLITE_FILE_NAME).display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut c)
        .await
        .unwrap()
}

async fn pg_versions(url: &str) -> Vec<i64> {
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut c)
        .await
        .unwrap()
}

/// Opens `location` from `OPENERS` independent pools at once and checks
/// each store works.
async fn open_concurrently(location: &str) {
    let opens = (0..OPENERS).map(|_| {
        let location = location.to_owned();
        tokio::spawn(async move { Store::open(StoreConfig::new(location)).await })
    });
    let mut stores = Vec::new();
    for (i, open) in opens.enumerate() {
        let store = open
            .await
            .expect("open task")
            .unwrap_or_else(|e| panic!("concurrent open {i} failed: {e}"));
        store.health_check().await.unwrap();
        stores.push(store);
    }
    // Every store sees the same schema: an account created through one is
    // read through another.
    let did = "did:plc:openrace";
    stores[0]
        .accounts()
        .create(pds_store::NewAccount::new(did, "openrace.test"), None)
        .await
        .unwrap();
    for s in &stores {
        assert!(s.accounts().get(did).await.unwrap().is_some());
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_fresh_database_opened_by_several_pools() {
    for _ in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("data").to_string_lossy().into_owned();
        open_concurrently(&location).await;
        assert_eq!(
            sqlite_versions(&dir.path().join("data")).await,
            vec![1, 2, 3],
            "each migration recorded once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_fresh_database_opened_by_several_pools() {
    for _ in 0..3 {
        let db = PgDatabase::create().await;
        open_concurrently(db.url()).await;
        assert_eq!(pg_versions(db.url()).await, vec![1, 2]);
    }
}

/// The child: opens the store named by the environment and exits. Ignored
/// unless run by the parent.
#[tokio::test(flavor = "current_thread")]
#[ignore = "child process of open race tests"]
async fn open_race_child() {
    let Ok(location) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::open(StoreConfig::new(location))
        .await
        .expect("child open");
    store.health_check().await.expect("child health check");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_fresh_database_opened_by_several_processes() {
    let exe = std::env::current_exe().unwrap();
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().join("data").to_string_lossy().into_owned();
        let children: Vec<_> = (0..OPENERS)
            .map(|_| {
                Command::new(&exe)
                    .args([
                        "open_race_child",
                        "--exact",
                        "--ignored",
                        "--test-threads=1",
                    ])
                    .env(CHILD_ENV, &location)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn child")
            })
            .collect();
        for child in children {
            let out = tokio::task::spawn_blocking(move || child.wait_with_output())
                .await
                .unwrap()
                .unwrap();
            assert!(
                out.status.success(),
                "a child failed to open the fresh database: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(
            sqlite_versions(&dir.path().join("data")).await,
            vec![1, 2, 3]
        );
    }
}
