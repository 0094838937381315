//! Benchmarks of the write path and the record reads, on SQLite (a temp
//! file, `synchronous=FULL`) and PostgreSQL (a fresh database on the test
//! server, `PDS_TEST_POSTGRES_URL` or postgres@127.0.0.1), each against a
//! repository of 1,000 and of 100,000 records:
//!
//! * `commit_one/<backend>/<n>`: one `createRecord`-style commit (a new
//!   post under a fresh TID), through `RepoWriter::apply_writes`; the
//!   record is deleted again outside the timing, so the repository keeps
//!   its size;
//! * `get_record/<backend>/<n>`: a record by path, as `getRecord` reads it
//!   (index row, then the block);
//! * `list_records/<backend>/<n>`: a page of 50 records from a random
//!   cursor, index page plus the 50 blocks in one query.
//!
//! `cargo bench -p pds-repo --bench write_read` (`PDS_BENCH_SIZES=1000,10000`
//! to choose the repository sizes, `PDS_BENCH_BACKENDS=sqlite` or
//! `postgres` to run one backend). Each repository is built by a bulk
//! path: one genesis commit holding every record, computed on an in-memory
//! tree and stored in one transaction. Run by `cargo test --benches`
//! (no `--bench` argument), every benchmark runs once on a 100-record
//! repository.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atproto_crypto::{Algorithm, PrivateKey};
use atproto_data::Value;
use criterion::Criterion;
use pds_repo::{BlockCache, RepoWriter, RepoWriterConfig, Write};
use pds_store::NewAccount;
use pds_testkit::{Backend, TestDb};
use sqlx::{Connection, PgConnection};
use tokio::runtime::Runtime;

const POST: &str = "app.bsky.feed.post";
const DID: &str = "did:plc:benchmark";

fn post(i: usize) -> Value {
    Value::from_json_str(&format!(
        r#"{{"text": "benchmark post number {i}, with some text to make it a realistic size", "createdAt": "2024-05-01T12:00:00.000Z"}}"#
    ))
    .expect("post json")
}

fn create(i: usize) -> Write {
    Write::Create {
        collection: POST.into(),
        rkey: None,
        record: post(i),
        validate: None,
    }
}

struct Fixture {
    db: TestDb,
    writer: RepoWriter,
    key: PrivateKey,
    rkeys: Vec<String>,
}

/// A fresh database holding one repository of `n` posts.
async fn build(backend: Backend, n: usize) -> Fixture {
    let db = TestDb::open(backend, |_| {}).await;
    let catalog = atproto_types::lex::try_catalog().expect("catalog");
    let bulk = RepoWriter::with_parts(
        db.store.clone(),
        catalog,
        Arc::new(BlockCache::default()),
        RepoWriterConfig {
            max_writes: n,
            max_commit_blocks_bytes: usize::MAX,
            ..RepoWriterConfig::default()
        },
    );
    let key = PrivateKey::generate(Algorithm::K256);
    let t = Instant::now();
    // The bulk path: the whole repository is the genesis commit, built on
    // an in-memory tree and stored in one transaction (as an import).
    let genesis = bulk
        .prepare_genesis(DID, &key, (0..n).map(create).collect())
        .expect("genesis");
    db.store
        .accounts()
        .create(NewAccount::new(DID, "benchmark.test"), Some(genesis.data))
        .await
        .expect("account");
    let mut rkeys = Vec::with_capacity(n);
    let mut cursor: Option<String> = None;
    loop {
        let page = db
            .store
            .repo()
            .list_records(DID, POST, 1000, cursor.as_deref(), true)
            .await
            .expect("list");
        let Some(last) = page.last() else { break };
        cursor = Some(last.rkey.clone());
        rkeys.extend(page.into_iter().map(|r| r.rkey));
    }
    assert_eq!(rkeys.len(), n);
    if backend == Backend::Postgres {
        // What autovacuum would do shortly after such a bulk load: without
        // statistics the planner takes the tables for empty.
        let mut c = PgConnection::connect(&db.location).await.expect("connect");
        sqlx::query("ANALYZE")
            .execute(&mut c)
            .await
            .expect("analyze");
    }
    eprintln!(
        "{backend:?}: built a {n}-record repository in {:?} ({:?} blocks, bytes)",
        t.elapsed(),
        db.store.repo().block_stats(DID).await.expect("stats")
    );
    // The measured writer starts with an empty cache, as after a restart.
    let writer = RepoWriter::new(db.store.clone()).expect("writer");
    Fixture {
        db,
        writer,
        key,
        rkeys,
    }
}

/// A cheap deterministic pseudo-random sequence (xorshift).
struct Picker(u64);

impl Picker {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

fn bench_backend(c: &mut Criterion, rt: &Runtime, backend: Backend, sizes: &[usize]) {
    let label = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    for &n in sizes {
        let fx = rt.block_on(build(backend, n));
        let store = fx.db.store.clone();
        let mut g = c.benchmark_group(format!("{label}/{n}"));
        g.sample_size(20);
        g.warm_up_time(Duration::from_secs(2));
        g.measurement_time(Duration::from_secs(8));

        let mut i = n;
        g.bench_function("commit_one", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        i += 1;
                        let t = Instant::now();
                        let out = fx
                            .writer
                            .apply_writes(DID, &fx.key, vec![create(i)], None)
                            .await
                            .expect("commit");
                        total += t.elapsed();
                        let uri = &out.results[0].uri;
                        let rkey = uri.rsplit('/').next().unwrap_or_default().to_owned();
                        fx.writer
                            .apply_writes(
                                DID,
                                &fx.key,
                                vec![Write::Delete {
                                    collection: POST.into(),
                                    rkey,
                                    swap_record: None,
                                }],
                                None,
                            )
                            .await
                            .expect("delete");
                    }
                    total
                })
            })
        });

        let mut pick = Picker(0x9e37_79b9_7f4a_7c15);
        g.bench_function("get_record", |b| {
            b.iter(|| {
                let rkey = &fx.rkeys[pick.next(fx.rkeys.len())];
                rt.block_on(async {
                    let entry = store
                        .repo()
                        .get_record(DID, POST, rkey)
                        .await
                        .expect("get")
                        .expect("present");
                    black_box(
                        store
                            .repo()
                            .get_block(DID, &entry.cid)
                            .await
                            .expect("block")
                            .expect("block present"),
                    )
                })
            })
        });

        g.bench_function("list_records_50", |b| {
            b.iter(|| {
                let cursor = &fx.rkeys[pick.next(fx.rkeys.len())];
                rt.block_on(async {
                    let page = store
                        .repo()
                        .list_records(DID, POST, 50, Some(cursor), false)
                        .await
                        .expect("list");
                    let cids: Vec<_> = page.iter().map(|r| r.cid).collect();
                    let blocks = store.repo().get_blocks(DID, &cids).await.expect("blocks");
                    assert!(blocks.missing.is_empty());
                    black_box(blocks)
                })
            })
        });
        g.finish();
        rt.block_on(fx.db.store.close());
        drop(fx);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not (and
    // `cargo bench -- --test` adds `--test`): criterion then runs each
    // benchmark once, and a small repository is enough.
    let args: Vec<String> = std::env::args().collect();
    let bench_mode = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let sizes: Vec<usize> = if bench_mode {
        std::env::var("PDS_BENCH_SIZES")
            .ok()
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1_000, 100_000])
    } else {
        vec![100]
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut c = Criterion::default().configure_from_args();
    let backends = std::env::var("PDS_BENCH_BACKENDS").unwrap_or_default();
    for (backend, name) in [(Backend::Sqlite, "sqlite"), (Backend::Postgres, "postgres")] {
        if backends.is_empty() || backends.split(',').any(|b| b.trim() == name) {
            bench_backend(&mut c, &rt, backend, &sizes);
        }
    }
    c.final_summary();
}
