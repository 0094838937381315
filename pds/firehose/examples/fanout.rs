//! Fan-out throughput: events per second delivered to N WebSocket
//! subscribers over loopback, live and replaying from a cursor.
//!
//! ```text
//! cargo run --release -p pds-firehose --example fanout -- [SUBSCRIBERS] [EVENTS] [FRAME_BYTES] [QUEUE]
//! ```
//!
//! The writer sequences the events as fast as the store takes them (in
//! transactions of 500), which on SQLite is faster than 100 in-process
//! clients can read on a small machine: with the default per-subscriber
//! queue (`QUEUE`, 1,000 frames) most of them are then disconnected with
//! `ConsumerTooSlow`, as they should be. A `QUEUE` as large as `EVENTS`
//! measures the saturated delivery rate instead.
//!
//! Defaults: 100 subscribers, 20,000 events, 1,000-byte frames, on SQLite
//! in a temporary directory. With `FANOUT_POSTGRES_URL` set to an admin URL
//! (e.g. `postgres://postgres@127.0.0.1:5432/postgres`) it runs on a
//! temporary PostgreSQL database instead. The clients run in the same
//! process and on the same cores as the server, so the figures are a lower
//! bound on what the server alone sustains.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use atproto_types::data::Value;
use atproto_types::lexicons::com::atproto::sync::{self as sync, subscribe_repos, ComAtprotoSync};
use atproto_types::xrpc::{self, Frame, NoAuth, NotImplemented, XrpcError, XrpcRequest, XrpcState};
use futures_util::StreamExt;
use pds_firehose::{Firehose, FirehoseConfig};
use pds_store::{NewEvent, Store, StoreConfig};
use sqlx::{Connection, PgConnection};
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone)]
struct AppState {
    firehose: Firehose,
}

impl XrpcState for AppState {}

impl ComAtprotoSync for AppState {
    type GetBlobAuth = NotImplemented;
    type GetBlocksAuth = NotImplemented;
    type GetCheckoutAuth = NotImplemented;
    type GetHeadAuth = NotImplemented;
    type GetHostStatusAuth = NotImplemented;
    type GetLatestCommitAuth = NotImplemented;
    type GetRecordAuth = NotImplemented;
    type GetRepoAuth = NotImplemented;
    type GetRepoStatusAuth = NotImplemented;
    type ListBlobsAuth = NotImplemented;
    type ListHostsAuth = NotImplemented;
    type ListReposAuth = NotImplemented;
    type ListReposByCollectionAuth = NotImplemented;
    type NotifyOfUpdateAuth = NotImplemented;
    type RequestCrawlAuth = NotImplemented;
    type SubscribeReposAuth = NoAuth;

    async fn subscribe_repos(
        &self,
        _: NoAuth,
        req: XrpcRequest<subscribe_repos::Params, xrpc::WebSocketUpgrade>,
    ) -> Result<xrpc::Response, XrpcError<subscribe_repos::Error>> {
        Ok(self.firehose.subscribe_repos(req.input, req.params.cursor))
    }
}

fn frame(seq: i64, pad: usize) -> Vec<u8> {
    Frame::Message {
        t: "#test".to_owned(),
        body: Value::Map(BTreeMap::from([
            ("seq".to_owned(), Value::Integer(seq)),
            ("pad".to_owned(), Value::Bytes(vec![7; pad])),
        ])),
    }
    .encode()
}

fn seq_of(bytes: &[u8]) -> Option<i64> {
    match Frame::decode(bytes).ok()? {
        Frame::Message {
            body: Value::Map(m),
            ..
        } => match m.get("seq") {
            Some(Value::Integer(s)) => Some(*s),
            _ => None,
        },
        _ => None,
    }
}

/// Connects `n` clients (cursor as given); each reads `expected` event
/// frames, checks that the last one is seq `last`, and returns how many it
/// read.
async fn run_clients(
    addr: std::net::SocketAddr,
    n: usize,
    cursor: Option<i64>,
    expected: u64,
    last: i64,
) -> Vec<tokio::task::JoinHandle<u64>> {
    let query = cursor.map(|c| format!("?cursor={c}")).unwrap_or_default();
    let mut handles = Vec::new();
    for _ in 0..n {
        let url = format!("ws://{addr}/xrpc/com.atproto.sync.subscribeRepos{query}");
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut ws, _) = tokio_tungstenite::client_async(url, stream)
            .await
            .expect("handshake");
        handles.push(tokio::spawn(async move {
            let mut frames = 0u64;
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Binary(b) = msg {
                    frames += 1;
                    if frames == expected {
                        assert_eq!(seq_of(&b), Some(last), "last frame");
                        break;
                    }
                }
            }
            frames
        }));
    }
    handles
}

async fn append_all(store: &Store, events: usize, pad: usize) -> i64 {
    let mut last = 0;
    let mut left = events;
    while left > 0 {
        let n = left.min(500);
        let batch = (0..n)
            .map(|_| NewEvent::new("did:plc:bench", "commit", move |seq, _| frame(seq, pad)))
            .collect();
        let seqs = store.sequencer().append_many(batch).await.expect("append");
        last = seqs.last().copied().unwrap_or(last);
        left -= n;
    }
    last
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numeric argument"))
        .collect();
    let subscribers = args.first().copied().unwrap_or(100);
    let events = args.get(1).copied().unwrap_or(20_000);
    let pad = args.get(2).copied().unwrap_or(1000).saturating_sub(40);
    let mut config = FirehoseConfig::default();
    if let Some(q) = args.get(3) {
        config.max_queued_frames = *q;
        config.max_queued_bytes = q.saturating_mul(pad + 100);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let (location, pg) = match std::env::var("FANOUT_POSTGRES_URL") {
        Ok(admin) => {
            let name = format!("pds_fanout_{:08x}", rand::random::<u32>());
            let mut c = PgConnection::connect(&admin).await.expect("postgres");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut c)
                .await
                .expect("create database");
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            (format!("{base}/{name}"), Some((admin, name)))
        }
        Err(_) => (dir.path().to_string_lossy().into_owned(), None),
    };
    let mut store_config = StoreConfig::new(location);
    store_config.sqlite_synchronous_full = false;
    let store = Store::open(store_config).await.expect("store");

    let firehose = Firehose::start(store.clone(), config.clone())
        .await
        .expect("firehose");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = sync::routes::<AppState>().with_state(AppState {
        firehose: firehose.clone(),
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let frame_len = frame(1, pad).len();
    println!(
        "{} on {:?}: {subscribers} subscribers, {events} events of {frame_len} bytes, queue {} frames",
        env!("CARGO_PKG_NAME"),
        store.backend(),
        config.max_queued_frames
    );

    // Live.
    let n_events = u64::try_from(events).unwrap_or(u64::MAX);
    let expected_last = i64::try_from(events).unwrap_or(i64::MAX);
    let clients = run_clients(addr, subscribers, None, n_events, expected_last).await;
    while firehose.stats().live_receivers < subscribers {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    let last = append_all(&store, events, pad).await;
    assert_eq!(last, expected_last);
    let written = start.elapsed();
    let mut total = 0u64;
    for c in clients {
        total += c.await.expect("client");
    }
    let live = start.elapsed();
    report("live", subscribers, events, frame_len, total, live);
    println!(
        "  ({} subscribers disconnected with ConsumerTooSlow)",
        firehose.stats().consumer_too_slow
    );
    println!(
        "  (sequencing the events alone took {:.2} s)",
        written.as_secs_f64()
    );

    // Replay from cursor 0 (every event comes from the database).
    let start = Instant::now();
    let clients = run_clients(addr, subscribers, Some(0), n_events, last).await;
    let mut total = 0u64;
    for c in clients {
        total += c.await.expect("client");
    }
    report(
        "replay",
        subscribers,
        events,
        frame_len,
        total,
        start.elapsed(),
    );
    println!("stats: {:?}", firehose.stats());

    firehose.shutdown();
    firehose.wait_closed(Duration::from_secs(10)).await;
    store.close().await;
    if let Some((admin, name)) = pg {
        if let Ok(mut c) = PgConnection::connect(&admin).await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await;
        }
    }
}

fn report(
    what: &str,
    subscribers: usize,
    events: usize,
    frame_len: usize,
    frames: u64,
    t: Duration,
) {
    let secs = t.as_secs_f64();
    let expected = (subscribers * events) as u64;
    println!(
        "{what}: {frames}/{expected} frames in {secs:.2} s: {:.0} events/s per subscriber, {:.0} frames/s total, {:.1} MB/s",
        events as f64 / secs,
        frames as f64 / secs,
        frames as f64 * frame_len as f64 / secs / 1e6,
    );
}
