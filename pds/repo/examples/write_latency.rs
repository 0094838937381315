//! Latency of one-record writes (`createRecord`-style) on SQLite and
//! PostgreSQL: `cargo run --release -p pds-repo --example write_latency [N]`.
//!
//! Each backend gets a fresh database (a temp dir; a new PostgreSQL
//! database at `PDS_TEST_POSTGRES_URL` or postgres@127.0.0.1, dropped
//! afterwards) and one account; it then makes N sequential single-record
//! commits of an `app.bsky.feed.post` and prints the latency percentiles.

use std::time::{Duration, Instant};

use atproto_crypto::{Algorithm, PrivateKey};
use atproto_data::Value;
use pds_repo::{RepoWriter, Write};
use pds_store::{NewAccount, Store, StoreConfig};
use sqlx::{Connection, PgConnection};

type BoxError = Box<dyn std::error::Error>;

async fn run(label: &str, store: Store, n: usize) -> Result<(), BoxError> {
    let writer = RepoWriter::new(store.clone())?;
    let key = PrivateKey::generate(Algorithm::K256);
    let did = "did:plc:latency";
    let genesis = writer.prepare_genesis(did, &key, Vec::new())?;
    store
        .accounts()
        .create(NewAccount::new(did, "latency.test"), Some(genesis.data))
        .await?;
    let mut times: Vec<Duration> = Vec::with_capacity(n);
    for i in 0..n {
        let record = Value::from_json_str(&format!(
            r#"{{"text": "post number {i}", "createdAt": "2024-05-01T12:00:00.000Z"}}"#
        ))?;
        let write = Write::Create {
            collection: "app.bsky.feed.post".into(),
            rkey: None,
            record,
            validate: None,
        };
        let t = Instant::now();
        writer.apply_writes(did, &key, vec![write], None).await?;
        times.push(t.elapsed());
    }
    times.sort();
    let pct = |p: usize| times[(times.len() - 1) * p / 100];
    let mean = times.iter().sum::<Duration>() / u32::try_from(n)?;
    println!(
        "{label}: {n} single-record commits: mean {mean:?}, p50 {:?}, p90 {:?}, p99 {:?}, max {:?}; cache {:?}",
        pct(50),
        pct(90),
        pct(99),
        pct(100),
        writer.cache().stats()
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(500);

    let dir = tempfile::tempdir()?;
    let sqlite = Store::open(StoreConfig::new(dir.path().join("data").to_string_lossy())).await?;
    run("sqlite (synchronous=FULL)", sqlite, n).await?;

    let admin = std::env::var("PDS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("pds_repo_latency_{}", std::process::id());
    let mut conn = PgConnection::connect(&admin).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    let pg = Store::open(StoreConfig::new(format!("{base}/{name}"))).await?;
    let result = run("postgres", pg.clone(), n).await;
    pg.close().await;
    drop(pg);
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    result
}
