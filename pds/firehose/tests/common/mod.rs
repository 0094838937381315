//! Test harness: a fresh store per test (`pds_testkit`), a real HTTP server
//! on loopback serving subscribeRepos through the generated `ComAtprotoSync`
//! routes, and a tokio-tungstenite client.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use atproto_types::data::Value;
use atproto_types::lexicons::com::atproto::sync::{self as sync, subscribe_repos, ComAtprotoSync};
use atproto_types::xrpc::{self, Frame, NoAuth, NotImplemented, XrpcError, XrpcRequest, XrpcState};
use pds_firehose::{Firehose, FirehoseConfig};
use pds_store::{NewEvent, Store};
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub use futures_util::{SinkExt, StreamExt};

pub use pds_testkit::TestDb;

// ---------------------------------------------------------------------------
// Events with recognisable frames.

pub const TEST_T: &str = "#test";

/// A real frame (`{op: 1, t: "#test"}` + body) carrying its own seq, its
/// DID, and `pad` bytes derived from the seq.
pub fn test_frame(did: &str, seq: i64, pad: usize) -> Vec<u8> {
    let fill = u8::try_from(seq.rem_euclid(251)).unwrap_or(0);
    Frame::Message {
        t: TEST_T.to_owned(),
        body: Value::Map(BTreeMap::from([
            ("seq".to_owned(), Value::Integer(seq)),
            ("did".to_owned(), Value::String(did.to_owned())),
            ("pad".to_owned(), Value::Bytes(vec![fill; pad])),
        ])),
    }
    .encode()
}

pub fn event(did: &str, pad: usize) -> NewEvent {
    let did_owned = did.to_owned();
    NewEvent::new(did, "commit", move |seq, _time| {
        test_frame(&did_owned, seq, pad)
    })
}

/// Appends `n` events (in one transaction when `n > 1`); returns their seqs.
pub async fn append(store: &Store, did: &str, n: usize, pad: usize) -> Vec<i64> {
    let events = (0..n).map(|_| event(did, pad)).collect();
    store
        .sequencer()
        .append_many(events)
        .await
        .expect("append events")
}

// ---------------------------------------------------------------------------
// The server.

#[derive(Clone)]
pub struct AppState {
    pub firehose: Firehose,
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

    /// Exactly how the PDS wires it.
    async fn subscribe_repos(
        &self,
        _: NoAuth,
        req: XrpcRequest<subscribe_repos::Params, xrpc::WebSocketUpgrade>,
    ) -> Result<xrpc::Response, XrpcError<subscribe_repos::Error>> {
        Ok(self.firehose.subscribe_repos(req.input, req.params.cursor))
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub firehose: Firehose,
    task: JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.firehose.shutdown();
        self.task.abort();
    }
}

/// A config for tests: fast polls, no pings unless asked.
pub fn test_config() -> FirehoseConfig {
    FirehoseConfig {
        poll_interval: Duration::from_millis(50),
        ping_interval: None,
        close_timeout: Duration::from_secs(10),
        ..FirehoseConfig::default()
    }
}

pub async fn serve(store: &Store, config: FirehoseConfig) -> TestServer {
    serve_with(store, config, None).await
}

/// Serves on loopback; `send_buffer` shrinks the kernel send buffer of the
/// accepted sockets (inherited from the listener on Linux).
pub async fn serve_with(
    store: &Store,
    config: FirehoseConfig,
    send_buffer: Option<u32>,
) -> TestServer {
    let firehose = Firehose::start(store.clone(), config)
        .await
        .expect("start firehose");
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = send_buffer {
        socket.set_send_buffer_size(size).expect("SO_SNDBUF");
    }
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(1024).expect("listen");
    let addr = listener.local_addr().expect("local addr");
    let app = sync::routes::<AppState>().with_state(AppState {
        firehose: firehose.clone(),
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestServer {
        addr,
        firehose,
        task,
    }
}

impl TestServer {
    pub async fn connect(&self, cursor: Option<i64>) -> Client {
        connect(self.addr, cursor, None).await
    }

    /// Waits until `n` subscriber tasks listen to the live ring.
    pub async fn wait_live(&self, n: usize) {
        wait_until(Duration::from_secs(20), || {
            self.firehose.stats().live_receivers >= n
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{n} live subscribers expected; stats {:?}",
                self.firehose.stats()
            )
        });
    }

    pub async fn wait_active(&self, n: usize) {
        wait_until(Duration::from_secs(20), || {
            self.firehose.stats().active_subscribers == n
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "{n} active subscribers expected; stats {:?}",
                self.firehose.stats()
            )
        });
    }
}

/// Polls `cond` every 5 ms until it holds (`Some`) or `timeout` passes.
pub async fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> Option<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond() {
            return Some(());
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

// ---------------------------------------------------------------------------
// The client.

pub type Client = WebSocketStream<TcpStream>;

/// Connects a WebSocket client; `recv_buffer` shrinks its kernel receive
/// buffer.
pub async fn connect(addr: SocketAddr, cursor: Option<i64>, recv_buffer: Option<u32>) -> Client {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    let stream = socket.connect(addr).await.expect("connect");
    let query = cursor.map(|c| format!("?cursor={c}")).unwrap_or_default();
    let url = format!("ws://{addr}/xrpc/com.atproto.sync.subscribeRepos{query}");
    let (client, response) = tokio_tungstenite::client_async(url, stream)
        .await
        .expect("websocket handshake");
    assert_eq!(response.status(), 101);
    client
}

/// What a client read.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    /// A `#test` event frame: its seq and DID.
    Event {
        seq: i64,
        did: String,
    },
    /// An `#info` frame.
    Info {
        name: String,
    },
    /// An error frame.
    Error {
        name: String,
    },
    Ping,
    Pong(Vec<u8>),
    Close(Option<u16>),
    /// The stream ended (or failed) without a close frame.
    End,
    /// Nothing within the timeout.
    Timeout,
}

/// Decodes a binary frame, checking that a `#test` frame's padding is the
/// one its seq implies (the bytes arrived intact).
pub fn decode(bytes: &[u8]) -> Got {
    match Frame::decode(bytes).expect("frame decodes") {
        Frame::Message { t, body } => {
            let Value::Map(map) = body else {
                panic!("frame body is not a map")
            };
            match t.as_str() {
                TEST_T => {
                    let Some(Value::Integer(seq)) = map.get("seq") else {
                        panic!("#test frame without seq: {map:?}")
                    };
                    let Some(Value::String(did)) = map.get("did") else {
                        panic!("#test frame without did")
                    };
                    let Some(Value::Bytes(pad)) = map.get("pad") else {
                        panic!("#test frame without pad")
                    };
                    let expected = test_frame(did, *seq, pad.len());
                    assert_eq!(bytes, expected.as_slice(), "frame bytes of seq {seq}");
                    Got::Event {
                        seq: *seq,
                        did: did.clone(),
                    }
                }
                "#info" => {
                    let Some(Value::String(name)) = map.get("name") else {
                        panic!("#info without name")
                    };
                    assert!(
                        matches!(map.get("message"), Some(Value::String(_))),
                        "#info has a message"
                    );
                    Got::Info { name: name.clone() }
                }
                other => panic!("unexpected frame type {other}"),
            }
        }
        Frame::Error { error, .. } => Got::Error { name: error },
    }
}

pub async fn next(client: &mut Client, timeout: Duration) -> Got {
    match tokio::time::timeout(timeout, client.next()).await {
        Err(_) => Got::Timeout,
        Ok(None) | Ok(Some(Err(_))) => Got::End,
        Ok(Some(Ok(msg))) => match msg {
            Message::Binary(b) => decode(&b),
            Message::Ping(_) => Got::Ping,
            Message::Pong(p) => Got::Pong(p.to_vec()),
            Message::Close(c) => Got::Close(c.map(|f| u16::from(f.code))),
            Message::Text(t) => panic!("unexpected text message {t}"),
            Message::Frame(_) => panic!("unexpected raw frame"),
        },
    }
}

/// The next message that is not a ping.
pub async fn next_data(client: &mut Client, timeout: Duration) -> Got {
    loop {
        match next(client, timeout).await {
            Got::Ping => continue,
            other => return other,
        }
    }
}

/// Reads `n` event frames; returns their seqs. Panics on anything else.
pub async fn read_events(client: &mut Client, n: usize) -> Vec<i64> {
    let mut seqs = Vec::with_capacity(n);
    while seqs.len() < n {
        match next_data(client, Duration::from_secs(20)).await {
            Got::Event { seq, .. } => seqs.push(seq),
            other => panic!("expected event {} of {n}, got {other:?}", seqs.len() + 1),
        }
    }
    seqs
}

/// Reads events until one with `seq >= last`; returns every seq read.
pub async fn read_until(client: &mut Client, last: i64) -> Vec<i64> {
    let mut seqs = Vec::new();
    loop {
        match next_data(client, Duration::from_secs(20)).await {
            Got::Event { seq, .. } => {
                seqs.push(seq);
                if seq >= last {
                    return seqs;
                }
            }
            other => panic!(
                "expected events up to {last}, got {other:?} after {:?}",
                seqs.last()
            ),
        }
    }
}

pub fn assert_contiguous(seqs: &[i64], first: i64, last: i64) {
    let expected: Vec<i64> = (first..=last).collect();
    if seqs != expected.as_slice() {
        let dups = seqs.windows(2).filter(|w| w[1] <= w[0]).count();
        let gaps = seqs.windows(2).filter(|w| w[1] > w[0] + 1).count();
        panic!(
            "expected seqs {first}..={last} ({} events), got {} events (first {:?}, last {:?}, {dups} out of order or duplicated, {gaps} gaps)",
            expected.len(),
            seqs.len(),
            seqs.first(),
            seqs.last()
        );
    }
}

pub fn close_code(c: CloseCode) -> u16 {
    u16::from(c)
}
