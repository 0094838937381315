//! Test harness: fresh stores (SQLite directory or PostgreSQL database), a
//! real SMTP sink (aiosmtpd, `support/smtp_sink.py`), local HTTP APIs
//! (axum), and a recording `Sender` for queue semantics.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use pds_notify::{Channel, Notification, NotificationStatus, Rendered, SendError, Sender};
use pds_store::Store;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

// ---------------------------------------------------------------- stores

pub use pds_testkit::TestDb;

/// Polls `f` until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until notification `id` is `status`.
pub async fn wait_status(store: &Store, id: i64, status: NotificationStatus) -> Notification {
    eventually(
        &format!("notification {id} to be {status}"),
        Duration::from_secs(30),
        || async {
            let n = store
                .notifications()
                .get(id)
                .await
                .expect("get")
                .expect("exists");
            (n.status == status).then_some(n)
        },
    )
    .await
}

// ---------------------------------------------------------------- SMTP sink

pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support")
}

/// One message the sink accepted.
#[derive(Debug, serde::Deserialize)]
pub struct SunkMail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    pub login: Option<String>,
    pub tls: bool,
    pub from: String,
    pub to: String,
    pub subject: String,
    pub content_type: String,
    pub text: Option<String>,
    pub html: Option<String>,
    pub raw: String,
}

/// aiosmtpd on 127.0.0.1, run by `support/smtp_sink.py`.
pub struct SmtpSink {
    pub port: u16,
    out: tempfile::TempDir,
    child: Child,
}

#[derive(Default)]
pub struct SinkOptions {
    pub auth: Option<(String, String)>,
    /// Implicit TLS with (cert PEM path, key PEM path).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// STARTTLS (required) with (cert PEM path, key PEM path).
    pub starttls: Option<(PathBuf, PathBuf)>,
}

impl SmtpSink {
    pub async fn start(opts: SinkOptions) -> SmtpSink {
        let out = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new("python3");
        cmd.arg(support_dir().join("smtp_sink.py"))
            .arg("--dir")
            .arg(out.path());
        if let Some((u, p)) = &opts.auth {
            cmd.arg("--auth").arg(format!("{u}:{p}"));
        }
        if let Some((c, k)) = &opts.tls {
            cmd.arg("--tls").arg(c).arg(k);
        }
        if let Some((c, k)) = &opts.starttls {
            cmd.arg("--starttls").arg(c).arg(k);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("run python3 support/smtp_sink.py");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        let port = match (read, line.trim().strip_prefix("READY ")) {
            (Ok(Ok(_)), Some(p)) => p.parse().expect("port"),
            _ => panic!(
                "the SMTP sink did not start (got {line:?}); it needs aiosmtpd: \
                 `pip install aiosmtpd==1.4.6`"
            ),
        };
        SmtpSink { port, out, child }
    }

    /// Messages accepted so far, in order.
    pub fn messages(&self) -> Vec<SunkMail> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.out.path())
            .expect("read sink dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                serde_json::from_slice(&std::fs::read(p).expect("read mail")).expect("mail json")
            })
            .collect()
    }

    pub fn count(&self) -> usize {
        self.messages().len()
    }

    /// Waits until at least `n` messages arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<SunkMail> {
        eventually(
            &format!("{n} messages at the SMTP sink"),
            Duration::from_secs(60),
            || async {
                let m = self.messages();
                (m.len() >= n).then_some(m)
            },
        )
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// A test CA and a server certificate for 127.0.0.1 / localhost, written to
/// `dir`; returns (CA PEM, cert path, key path).
pub fn make_certs(dir: &Path) -> (Vec<u8>, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "pds-notify test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca cert");
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("params");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).expect("cert");
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (ca.pem().into_bytes(), cert_path, key_path)
}

// ---------------------------------------------------------------- HTTP APIs

/// One request a mock API received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub json: serde_json::Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

type Responder = dyn Fn(usize, &Recorded) -> (StatusCode, serde_json::Value) + Send + Sync;

/// An HTTP API on 127.0.0.1 (axum): records each request and answers with
/// `respond(index, request)`.
pub struct MockApi {
    pub base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MockApi {
    pub async fn start(
        respond: impl Fn(usize, &Recorded) -> (StatusCode, serde_json::Value) + Send + Sync + 'static,
    ) -> MockApi {
        let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
        let respond: Arc<Responder> = Arc::new(respond);
        let reqs = requests.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let reqs = reqs.clone();
                let respond = respond.clone();
                async move {
                    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    let rec = Recorded {
                        method,
                        path: uri.path().to_owned(),
                        headers,
                        json,
                    };
                    let index = {
                        let mut r = reqs.lock().expect("lock");
                        r.push(rec.clone());
                        r.len() - 1
                    };
                    let (status, body) = respond(index, &rec);
                    (status, axum::Json(body)).into_response()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        MockApi {
            base: format!("http://{addr}"),
            requests,
            task,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for MockApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------- recorder

/// One call of a [`Recorder`].
#[derive(Clone, Debug)]
pub struct Call {
    pub recipient: String,
    pub message: Rendered,
    pub at: Instant,
}

type Behavior = dyn Fn(usize, &str) -> Result<(), SendError> + Send + Sync;

/// A `Sender` that records every call and answers with `behavior(index,
/// recipient)` after `delay`; delivered calls are the `Ok` ones.
pub struct Recorder {
    channel: Channel,
    delay: Duration,
    behavior: Box<Behavior>,
    calls: Mutex<Vec<Call>>,
    delivered: Mutex<HashMap<String, usize>>,
}

impl Recorder {
    pub fn new(
        channel: Channel,
        delay: Duration,
        behavior: impl Fn(usize, &str) -> Result<(), SendError> + Send + Sync + 'static,
    ) -> Arc<Recorder> {
        Arc::new(Recorder {
            channel,
            delay,
            behavior: Box::new(behavior),
            calls: Mutex::default(),
            delivered: Mutex::default(),
        })
    }

    pub fn ok(channel: Channel) -> Arc<Recorder> {
        Recorder::new(channel, Duration::ZERO, |_, _| Ok(()))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    /// Successful deliveries per recipient.
    pub fn delivered(&self) -> HashMap<String, usize> {
        self.delivered.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Sender for Recorder {
    fn channel(&self) -> Channel {
        self.channel
    }

    async fn send(&self, recipient: &str, message: &Rendered) -> Result<(), SendError> {
        let index = {
            let mut c = self.calls.lock().expect("lock");
            c.push(Call {
                recipient: recipient.to_owned(),
                message: message.clone(),
                at: Instant::now(),
            });
            c.len() - 1
        };
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let r = (self.behavior)(index, recipient);
        if r.is_ok() {
            *self
                .delivered
                .lock()
                .expect("lock")
                .entry(recipient.to_owned())
                .or_default() += 1;
        }
        r
    }
}
