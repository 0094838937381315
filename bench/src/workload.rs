//! The workload, run against one server, phase after phase:
//! accounts, record writes (1, 8, 64 clients), record reads (getRecord,
//! listRecords), firehose (subscribers while writes run; then replay from a
//! cursor), blobs
//! (uploadBlob of 1 MB images, getBlob), export (getRepo of a 10,000-record
//! repo), then footprint figures.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::{json, Map, Value as Json};
use tokio_tungstenite::tungstenite::Message;

use crate::stats::{cpu_seconds, status_bytes, Latencies, RssSampler};

#[derive(clap::Args)]
pub struct RunArgs {
    /// The server's base URL (loopback only).
    #[arg(long)]
    url: String,
    /// The server's process id (for memory and CPU figures).
    #[arg(long)]
    pid: u32,
    /// Name of this server in the table.
    #[arg(long)]
    name: String,
    /// Where to write the figures (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Seconds each timed phase runs.
    #[arg(long, default_value_t = 10)]
    phase_secs: u64,
    /// Accounts the writers and readers spread over.
    #[arg(long, default_value_t = 16)]
    accounts: usize,
    /// Records in the repo that getRepo exports.
    #[arg(long, default_value_t = 10_000)]
    export_records: usize,
    /// Firehose subscribers.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Concurrent writers while the firehose is measured.
    #[arg(long, default_value_t = 8)]
    firehose_writers: usize,
    /// Start-up time measured by the caller (milliseconds).
    #[arg(long)]
    startup_ms: Option<f64>,
    /// Size of what must be installed to run the server (bytes).
    #[arg(long)]
    install_bytes: Option<u64>,
    /// Shell command printing the bytes of the server's data on disk; run
    /// after the workload.
    #[arg(long)]
    disk_usage_cmd: Option<String>,
    /// Which parts of the workload to run (comma-separated: writes, reads,
    /// firehose, blobs, export); all by default. For profiling one part:
    /// the table of `bench/run` always runs everything. Reads need writes.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "writes,reads,firehose,blobs,export"
    )]
    phases: Vec<String>,
}

impl RunArgs {
    fn runs(&self, part: &str) -> bool {
        self.phases.iter().any(|p| p == part)
    }
}

/// The figures of one run: a flat map of metric name to number (or null
/// when it could not be measured), with notes.
struct Figures {
    metrics: Map<String, Json>,
    phases: Vec<Json>,
    notes: Vec<String>,
}

impl Figures {
    fn set(&mut self, key: &str, value: Option<f64>) {
        let v = value
            .filter(|v| v.is_finite())
            .map_or(Json::Null, |v| json!((v * 1000.0).round() / 1000.0));
        self.metrics.insert(key.to_owned(), v);
    }
}

/// One signed-in account.
#[derive(Clone)]
struct Account {
    did: String,
    auth: String,
}

#[derive(Clone)]
struct Ctx {
    http: reqwest::Client,
    url: String,
    pid: u32,
}

/// A phase's CPU and wall clocks, to report the driver's and the server's
/// CPU use.
struct PhaseClock {
    name: String,
    start: Instant,
    driver_cpu: f64,
    server_cpu: f64,
    pid: String,
}

impl PhaseClock {
    fn start(name: &str, pid: u32) -> Self {
        eprintln!("  phase {name}");
        PhaseClock {
            name: name.to_owned(),
            start: Instant::now(),
            driver_cpu: cpu_seconds("self"),
            server_cpu: cpu_seconds(&pid.to_string()),
            pid: pid.to_string(),
        }
    }

    /// Records the phase; returns the server's peak memory during it.
    fn finish(self, figures: &mut Figures, rss: &RssSampler) -> u64 {
        let peak = rss.take_peak();
        let wall = self.start.elapsed().as_secs_f64();
        let driver = cpu_seconds("self") - self.driver_cpu;
        let server = cpu_seconds(&self.pid) - self.server_cpu;
        figures.phases.push(json!({
            "phase": self.name,
            "wall_s": round3(wall),
            "driver_cpu_s": round3(driver),
            "driver_cpu_pct": round3(100.0 * driver / wall.max(1e-9)),
            "server_cpu_s": round3(server),
            "server_cpu_pct": round3(100.0 * server / wall.max(1e-9)),
            "server_peak_rss_mb": round3(peak as f64 / MB),
        }));
        peak
    }
}

const MB: f64 = 1024.0 * 1024.0;
const COLLECTION: &str = "app.bsky.feed.post";
const PASSWORD: &str = "bench-password-1234";

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

pub async fn run(args: RunArgs) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    let ctx = Ctx {
        http,
        url: args.url.trim_end_matches('/').to_owned(),
        pid: args.pid,
    };
    let phase = Duration::from_secs(args.phase_secs);
    let mut f = Figures {
        metrics: Map::new(),
        phases: Vec::new(),
        notes: Vec::new(),
    };
    let driver_cpu_start = cpu_seconds("self");
    f.set("load_avg_before", load_average());

    // Idle: the server has just answered its first request; let it settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = status_bytes(ctx.pid, "VmRSS").ok_or("cannot read the server's memory")?;
    f.set("idle_rss_mb", Some(idle as f64 / MB));
    f.set("startup_ms", args.startup_ms);
    f.set("install_mb", args.install_bytes.map(|b| b as f64 / MB));
    let rss = RssSampler::start(ctx.pid, Duration::from_millis(10));

    let clock = PhaseClock::start("accounts", ctx.pid);
    let tag = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() % 100_000)
        .unwrap_or(0);
    let mut accounts = Vec::new();
    for i in 0..args.accounts + 1 {
        accounts.push(create_account(&ctx, &format!("b{tag}x{i}")).await?);
    }
    let export_account = accounts.pop().ok_or("no account")?;
    clock.finish(&mut f, &rss);

    // Record writes.
    let mut written: Vec<(String, String)> = Vec::new();
    let write_clients: &[usize] = if args.runs("writes") || args.runs("reads") {
        &[1, 8, 64]
    } else {
        &[]
    };
    for &clients in write_clients {
        let clock = PhaseClock::start(&format!("write_c{clients}"), ctx.pid);
        let r = write_phase(&ctx, &accounts, clients, phase, None).await;
        let mut lat = r.latencies;
        f.set(
            &format!("write_c{clients}_rps"),
            Some(r.ok as f64 / r.elapsed),
        );
        f.set(&format!("write_c{clients}_p50_ms"), lat.quantile_ms(0.5));
        f.set(&format!("write_c{clients}_p99_ms"), lat.quantile_ms(0.99));
        f.set(&format!("write_c{clients}_errors"), Some(r.errors as f64));
        if let Some(e) = r.first_error {
            f.notes.push(format!("write_c{clients}: {e}"));
        }
        written.extend(r.uris);
        clock.finish(&mut f, &rss);
    }
    if written.is_empty() && args.runs("reads") {
        return Err("no record could be written".into());
    }

    // Record reads.
    if args.runs("reads") {
        read_phases(&ctx, &accounts, &written, phase, &rss, &mut f).await;
    }

    // Firehose.
    if args.runs("firehose") {
        let clock = PhaseClock::start("firehose", ctx.pid);
        let head = firehose_phase(&ctx, &accounts, &args, phase, &mut f).await;
        clock.finish(&mut f, &rss);
        let clock = PhaseClock::start("firehose_replay", ctx.pid);
        replay_phase(&ctx, &args, head, &mut f).await;
        clock.finish(&mut f, &rss);
    }

    // Blobs.
    if args.runs("blobs") {
        let clock = PhaseClock::start("blobs", ctx.pid);
        blob_phase(&ctx, &accounts, phase, &mut f).await;
        clock.finish(&mut f, &rss);
    }

    // Export.
    if args.runs("export") {
        export_phases(&ctx, &export_account, &args, &rss, &mut f).await;
    }
    finish(&args, &ctx, rss, driver_cpu_start, f)
}

/// getRecord then listRecords, each for one phase.
async fn read_phases(
    ctx: &Ctx,
    accounts: &[Account],
    written: &[(String, String)],
    phase: Duration,
    rss: &RssSampler,
    f: &mut Figures,
) {
    let clock = PhaseClock::start("get_record", ctx.pid);
    let r = read_phase(ctx, 16, phase, |i| {
        let (did, rkey) = &written[i % written.len()];
        format!("com.atproto.repo.getRecord?repo={did}&collection={COLLECTION}&rkey={rkey}")
    })
    .await;
    record_read(f, "get_record", r);
    clock.finish(f, rss);
    let clock = PhaseClock::start("list_records", ctx.pid);
    let r = read_phase(ctx, 16, phase, |i| {
        let did = &accounts[i % accounts.len()].did;
        format!("com.atproto.repo.listRecords?repo={did}&collection={COLLECTION}&limit=50")
    })
    .await;
    record_read(f, "list_records", r);
    clock.finish(f, rss);
}

/// Fills one repo with `applyWrites`, then exports it with getRepo.
async fn export_phases(
    ctx: &Ctx,
    export_account: &Account,
    args: &RunArgs,
    rss: &RssSampler,
    f: &mut Figures,
) {
    let clock = PhaseClock::start("export_fill", ctx.pid);
    let started = Instant::now();
    let filled = fill_repo(ctx, export_account, args.export_records).await;
    clock.finish(f, rss);
    match filled {
        Ok(()) => {
            f.set(
                "export_fill_records_per_s",
                Some(args.export_records as f64 / started.elapsed().as_secs_f64()),
            );
            let clock = PhaseClock::start("export", ctx.pid);
            let exported = export(ctx, export_account).await;
            let export_peak = clock.finish(f, rss);
            match exported {
                Ok((seconds, size)) => {
                    f.set("export_s", Some(seconds));
                    f.set("export_car_mb", Some(size as f64 / MB));
                    f.set("export_peak_rss_mb", Some(export_peak as f64 / MB));
                }
                Err(e) => f.notes.push(e),
            }
        }
        // A failure here is a finding, not a reason to lose the run.
        Err(e) => f.notes.push(format!(
            "export not measured: filling the repo failed after {:.1} s: {e}",
            started.elapsed().as_secs_f64()
        )),
    }
}

/// The footprint after the workload; writes the figures.
fn finish(
    args: &RunArgs,
    ctx: &Ctx,
    rss: RssSampler,
    driver_cpu_start: f64,
    mut f: Figures,
) -> Result<(), String> {
    // Footprint after the workload.
    f.set("load_rss_mb", Some(rss.overall_peak() as f64 / MB));
    f.set(
        "after_rss_mb",
        status_bytes(ctx.pid, "VmRSS").map(|b| b as f64 / MB),
    );
    f.set(
        "server_hwm_rss_mb",
        status_bytes(ctx.pid, "VmHWM").map(|b| b as f64 / MB),
    );
    if let Some(cmd) = &args.disk_usage_cmd {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .map_err(|e| format!("disk usage command: {e}"))?;
        let bytes = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse::<f64>()
            .ok();
        f.set("disk_mb", bytes.map(|b| b / MB));
    }
    f.set("driver_cpu_s", Some(cpu_seconds("self") - driver_cpu_start));
    f.set("load_avg_after", load_average());
    let max_driver_pct = f
        .phases
        .iter()
        .filter_map(|p| p["driver_cpu_pct"].as_f64())
        .fold(0.0, f64::max);
    f.set("driver_max_cpu_pct", Some(max_driver_pct));

    let doc = json!({
        "name": args.name,
        "url": ctx.url,
        "metrics": f.metrics,
        "phases": f.phases,
        "notes": f.notes,
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&args.out, text).map_err(|e| format!("{}: {e}", args.out.display()))?;
    Ok(())
}

/// The machine's 1-minute load average (other work on the machine skews
/// every figure; it is recorded beside them).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn record_read(f: &mut Figures, name: &str, r: PhaseResult) {
    let mut lat = r.latencies;
    f.set(&format!("{name}_rps"), Some(r.ok as f64 / r.elapsed));
    f.set(&format!("{name}_p50_ms"), lat.quantile_ms(0.5));
    f.set(&format!("{name}_p99_ms"), lat.quantile_ms(0.99));
    f.set(&format!("{name}_errors"), Some(r.errors as f64));
    if let Some(e) = r.first_error {
        f.notes.push(format!("{name}: {e}"));
    }
}

async fn xrpc_error(resp: reqwest::Response) -> String {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    format!("{status}: {}", body.chars().take(300).collect::<String>())
}

async fn create_account(ctx: &Ctx, name: &str) -> Result<Account, String> {
    let resp = ctx
        .http
        .post(format!("{}/xrpc/com.atproto.server.createAccount", ctx.url))
        .json(&json!({
            "handle": format!("{name}.test"),
            "email": format!("{name}@bench.test"),
            "password": PASSWORD,
        }))
        .send()
        .await
        .map_err(|e| format!("createAccount: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("createAccount: {}", xrpc_error(resp).await));
    }
    let body: Json = resp.json().await.map_err(|e| e.to_string())?;
    let did = body["did"].as_str().ok_or("createAccount: no did")?;
    let jwt = body["accessJwt"]
        .as_str()
        .ok_or("createAccount: no token")?;
    Ok(Account {
        did: did.to_owned(),
        auth: format!("Bearer {jwt}"),
    })
}

fn post(i: usize) -> Json {
    json!({
        "$type": COLLECTION,
        "text": format!("benchmark post number {i}: the quick brown fox jumps over the lazy dog"),
        "createdAt": "2026-01-01T00:00:00.000Z",
    })
}

struct PhaseResult {
    ok: usize,
    errors: usize,
    elapsed: f64,
    latencies: Latencies,
    first_error: Option<String>,
    /// (did, rkey) of the records written.
    uris: Vec<(String, String)>,
}

/// Where the writers of the firehose phase note when each record was
/// requested, keyed by "did/rkey".
type SendTimes = Rc<RefCell<HashMap<String, Instant>>>;

/// `clients` concurrent writers, each creating posts in its account
/// (client i writes to account i mod n) until the phase ends.
async fn write_phase(
    ctx: &Ctx,
    accounts: &[Account],
    clients: usize,
    phase: Duration,
    send_times: Option<SendTimes>,
) -> PhaseResult {
    let started = Instant::now();
    let deadline = started + phase;
    let one = |c: usize| {
        let ctx = ctx.clone();
        let account = accounts[c % accounts.len()].clone();
        let send_times = send_times.clone();
        async move {
            let mut r = PhaseResult {
                ok: 0,
                errors: 0,
                elapsed: 0.0,
                latencies: Latencies::default(),
                first_error: None,
                uris: Vec::new(),
            };
            let mut i = 0;
            while Instant::now() < deadline {
                i += 1;
                let sent = Instant::now();
                let resp = ctx
                    .http
                    .post(format!("{}/xrpc/com.atproto.repo.createRecord", ctx.url))
                    .header("authorization", &account.auth)
                    .json(&json!({
                        "repo": account.did,
                        "collection": COLLECTION,
                        "record": post(c * 1_000_000 + i),
                    }))
                    .send()
                    .await;
                let outcome = match resp {
                    Ok(resp) if resp.status().is_success() => resp
                        .json::<Json>()
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|b| {
                            b["uri"]
                                .as_str()
                                .and_then(|u| u.rsplit('/').next())
                                .map(str::to_owned)
                                .ok_or_else(|| "createRecord: no uri".to_owned())
                        }),
                    Ok(resp) => Err(xrpc_error(resp).await),
                    Err(e) => Err(e.to_string()),
                };
                match outcome {
                    Ok(rkey) => {
                        r.latencies.push(sent.elapsed());
                        r.ok += 1;
                        if let Some(times) = &send_times {
                            times
                                .borrow_mut()
                                .insert(format!("{}/{rkey}", account.did), sent);
                        }
                        r.uris.push((account.did.clone(), rkey));
                    }
                    Err(e) => {
                        r.errors += 1;
                        r.first_error.get_or_insert(format!("createRecord: {e}"));
                        // Do not spin on a failing server.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            r
        }
    };
    let results = futures_util::future::join_all((0..clients).map(one)).await;
    let mut total = PhaseResult {
        ok: 0,
        errors: 0,
        elapsed: started.elapsed().as_secs_f64(),
        latencies: Latencies::default(),
        first_error: None,
        uris: Vec::new(),
    };
    for r in results {
        total.ok += r.ok;
        total.errors += r.errors;
        total.latencies.extend(r.latencies);
        total.uris.extend(r.uris);
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    total
}

/// `clients` concurrent readers GETting `path(i)` for i = 0, 1, 2, ...
/// (a different i per request) until the phase ends.
async fn read_phase(
    ctx: &Ctx,
    clients: usize,
    phase: Duration,
    path: impl Fn(usize) -> String,
) -> PhaseResult {
    let started = Instant::now();
    let deadline = started + phase;
    let next = Rc::new(std::cell::Cell::new(0usize));
    let path = Rc::new(path);
    let one = |ctx: Ctx, next: Rc<std::cell::Cell<usize>>, path: Rc<dyn Fn(usize) -> String>| async move {
        let mut r = PhaseResult {
            ok: 0,
            errors: 0,
            elapsed: 0.0,
            latencies: Latencies::default(),
            first_error: None,
            uris: Vec::new(),
        };
        while Instant::now() < deadline {
            // A stride that visits the written records in a scattered order.
            let i = next.get();
            next.set(i + 1);
            let url = format!("{}/xrpc/{}", ctx.url, path(i.wrapping_mul(7919)));
            let sent = Instant::now();
            let outcome = match ctx.http.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => {
                    resp.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                }
                Ok(resp) => Err(xrpc_error(resp).await),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(()) => {
                    r.latencies.push(sent.elapsed());
                    r.ok += 1;
                }
                Err(e) => {
                    r.errors += 1;
                    r.first_error.get_or_insert(e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        r
    };
    let results = futures_util::future::join_all(
        (0..clients).map(|_| one(ctx.clone(), next.clone(), path.clone())),
    )
    .await;
    let mut total = PhaseResult {
        ok: 0,
        errors: 0,
        elapsed: started.elapsed().as_secs_f64(),
        latencies: Latencies::default(),
        first_error: None,
        uris: Vec::new(),
    };
    for r in results {
        total.ok += r.ok;
        total.errors += r.errors;
        total.latencies.extend(r.latencies);
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    total
}

/// What one firehose subscriber saw: (seq, when received) of each #commit,
/// and "did/rkey" of the first op of each seq (kept by subscriber 0 only).
#[derive(Default)]
struct Seen {
    events: Vec<(i64, Instant)>,
    keys: HashMap<i64, String>,
    error: Option<String>,
}

/// The seq of a `#commit` frame, with its "did/rkey" (of the first op) when
/// `want_key`; `None` for other frames. Walks the frame with the item
/// decoder, skipping what it does not need: a hundred subscribers decode
/// every frame, and the driver shares the machine with the server.
fn decode_commit(frame: &[u8], want_key: bool) -> Result<Option<(i64, String)>, String> {
    let err = |e: atproto_data::DecodeError| e.to_string();
    let mut d = atproto_data::cbor::Decoder::new(frame);
    let mut commit = false;
    for _ in 0..d.map_len().map_err(err)? {
        if d.key().map_err(err)? == "t" {
            commit = d.text().map_err(err)? == "#commit";
        } else {
            d.skip(MAX_DEPTH).map_err(err)?;
        }
    }
    if !commit {
        return Ok(None);
    }
    let (mut seq, mut repo, mut path) = (None, None, None);
    for _ in 0..d.map_len().map_err(err)? {
        match d.key().map_err(err)? {
            "seq" => seq = Some(d.int().map_err(err)?),
            "repo" if want_key => repo = Some(d.text().map_err(err)?),
            "ops" if want_key => {
                for i in 0..d.array_len().map_err(err)? {
                    for _ in 0..d.map_len().map_err(err)? {
                        let key = d.key().map_err(err)?;
                        if i == 0 && key == "path" {
                            path = Some(d.text().map_err(err)?);
                        } else {
                            d.skip(MAX_DEPTH).map_err(err)?;
                        }
                    }
                }
            }
            _ => d.skip(MAX_DEPTH).map_err(err)?,
        }
    }
    d.finish().map_err(err)?;
    let seq = seq.ok_or("commit without seq")?;
    if !want_key {
        return Ok(Some((seq, String::new())));
    }
    let repo = repo.ok_or("commit without repo")?;
    let rkey = path.and_then(|p| p.rsplit('/').next()).unwrap_or_default();
    Ok(Some((seq, format!("{repo}/{rkey}"))))
}

/// Deepest nesting the frame decoder accepts.
const MAX_DEPTH: usize = 32;

async fn subscriber(ws_url: String, index: usize, stop: Rc<std::cell::Cell<bool>>) -> Seen {
    let mut seen = Seen::default();
    let host = ws_url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let connected = match tokio::net::TcpStream::connect(host).await {
        Ok(tcp) => tokio_tungstenite::client_async(ws_url.as_str(), tcp)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let mut socket = match connected {
        Ok((s, _)) => s,
        Err(e) => {
            seen.error = Some(format!("connect: {e}"));
            return seen;
        }
    };
    loop {
        if stop.get() {
            break;
        }
        let msg = match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
            Err(_) => continue,
            Ok(None) => {
                seen.error.get_or_insert("closed by the server".into());
                break;
            }
            Ok(Some(Err(e))) => {
                seen.error.get_or_insert(e.to_string());
                break;
            }
            Ok(Some(Ok(m))) => m,
        };
        let received = Instant::now();
        if let Message::Binary(bytes) = msg {
            match decode_commit(&bytes, index == 0) {
                Ok(Some((seq, key))) => {
                    seen.events.push((seq, received));
                    if index == 0 {
                        seen.keys.insert(seq, key);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    seen.error.get_or_insert(format!("bad frame: {e}"));
                }
            }
        }
    }
    seen
}

/// Returns the highest seq a subscriber saw (0 if none).
async fn firehose_phase(
    ctx: &Ctx,
    accounts: &[Account],
    args: &RunArgs,
    phase: Duration,
    f: &mut Figures,
) -> i64 {
    let ws_url = format!(
        "{}/xrpc/com.atproto.sync.subscribeRepos",
        ctx.url.replacen("http", "ws", 1)
    );
    let stop = Rc::new(std::cell::Cell::new(false));
    let subs = futures_util::future::join_all(
        (0..args.subscribers).map(|i| subscriber(ws_url.clone(), i, stop.clone())),
    );
    let send_times: SendTimes = Rc::default();
    let writer = async {
        // Let every subscriber connect before the first write.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let r = write_phase(
            ctx,
            accounts,
            args.firehose_writers,
            phase,
            Some(send_times.clone()),
        )
        .await;
        // Give delivery time to catch up, then stop.
        tokio::time::sleep(Duration::from_secs(10)).await;
        stop.set(true);
        r
    };
    let (seen, writes) = futures_util::future::join(subs, writer).await;
    let keys = seen.first().map(|s| s.keys.clone()).unwrap_or_default();
    let send_times = send_times.borrow();
    let mut delays = Latencies::default();
    let mut delivered = 0usize;
    let mut first_sent: Option<Instant> = None;
    let mut last_received: Option<Instant> = None;
    for t in send_times.values() {
        first_sent = Some(first_sent.map_or(*t, |f| f.min(*t)));
    }
    let mut complete = 0usize;
    let mut errors = Vec::new();
    for s in &seen {
        let mut mine = 0usize;
        for (seq, received) in &s.events {
            let Some(sent) = keys.get(seq).and_then(|k| send_times.get(k)) else {
                continue;
            };
            mine += 1;
            delays.push(received.saturating_duration_since(*sent));
            last_received = Some(last_received.map_or(*received, |l| l.max(*received)));
        }
        delivered += mine;
        if mine == writes.ok {
            complete += 1;
        }
        if let Some(e) = &s.error {
            errors.push(e.clone());
        }
    }
    let span = match (first_sent, last_received) {
        (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    f.set(
        "firehose_writes_per_s",
        Some(writes.ok as f64 / writes.elapsed),
    );
    f.set(
        "firehose_events_per_s",
        (span > 0.0).then(|| delivered as f64 / span),
    );
    f.set("firehose_p50_ms", delays.quantile_ms(0.5));
    f.set("firehose_p99_ms", delays.quantile_ms(0.99));
    f.set("firehose_complete_subscribers", Some(complete as f64));
    f.set(
        "firehose_delivered_fraction",
        Some(delivered as f64 / (writes.ok * args.subscribers).max(1) as f64),
    );
    if let Some(e) = errors.first() {
        f.notes.push(format!(
            "firehose: {} subscriber(s) ended with an error, e.g. {e}",
            errors.len()
        ));
    }
    if let Some(e) = writes.first_error {
        f.notes.push(format!("firehose writes: {e}"));
    }
    seen.iter()
        .flat_map(|s| s.events.iter().map(|(seq, _)| *seq))
        .max()
        .unwrap_or(0)
}

/// Events (at most) each subscriber of the replay phase asks for.
const REPLAY_EVENTS: i64 = 2000;

/// What one replaying subscriber got: frames, when the last arrived, and
/// the error that ended it, if any.
struct Replayed {
    frames: usize,
    last: Option<Instant>,
    error: Option<String>,
}

/// Reads frames from `ws_url` until none has come for a second (or 30 s
/// before the first), counting them without decoding: the driver stays
/// light while 100 of these run.
async fn replay_subscriber(ws_url: String) -> Replayed {
    let mut out = Replayed {
        frames: 0,
        last: None,
        error: None,
    };
    let host = ws_url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default();
    let connected = match tokio::net::TcpStream::connect(host).await {
        Ok(tcp) => tokio_tungstenite::client_async(ws_url.as_str(), tcp)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let mut socket = match connected {
        Ok((s, _)) => s,
        Err(e) => {
            out.error = Some(format!("connect: {e}"));
            return out;
        }
    };
    loop {
        let idle = if out.frames == 0 {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(1)
        };
        match tokio::time::timeout(idle, socket.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(Err(e))) => {
                out.error = Some(e.to_string());
                break;
            }
            Ok(Some(Ok(Message::Binary(_)))) => {
                out.frames += 1;
                out.last = Some(Instant::now());
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    out
}

/// The firehose's own delivery rate, which the live phase cannot show
/// (there, events/s = subscribers x the write rate): `subscribers`
/// connect at once with a cursor [`REPLAY_EVENTS`] before `head` and
/// receive the stored events. Events/s = frames received by all / (last
/// frame - connect).
async fn replay_phase(ctx: &Ctx, args: &RunArgs, head: i64, f: &mut Figures) {
    let cursor = (head - REPLAY_EVENTS).max(0);
    let ws_url = format!(
        "{}/xrpc/com.atproto.sync.subscribeRepos?cursor={cursor}",
        ctx.url.replacen("http", "ws", 1)
    );
    let started = Instant::now();
    let got = futures_util::future::join_all(
        (0..args.subscribers).map(|_| replay_subscriber(ws_url.clone())),
    )
    .await;
    let total: usize = got.iter().map(|r| r.frames).sum();
    let last = got.iter().filter_map(|r| r.last).max();
    let span = last.map_or(0.0, |l| l.saturating_duration_since(started).as_secs_f64());
    f.set(
        "replay_events_per_s",
        (span > 0.0).then(|| total as f64 / span),
    );
    f.set(
        "replay_min_events",
        got.iter().map(|r| r.frames).min().map(|m| m as f64),
    );
    f.set("replay_s", (span > 0.0).then_some(span));
    let errors: Vec<&String> = got.iter().filter_map(|r| r.error.as_ref()).collect();
    if let Some(e) = errors.first() {
        f.notes.push(format!(
            "firehose replay: {} subscriber(s) ended with an error, e.g. {e}",
            errors.len()
        ));
    }
}

/// A 1,000,000-byte "JPEG" (a JFIF header, then bytes that differ per
/// `n`), the largest image an app.bsky.embed.images post may hold.
fn image(n: u64) -> Vec<u8> {
    let mut data = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while data.len() < 1_000_000 - 2 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(1_000_000 - 2);
    data.extend_from_slice(&[0xFF, 0xD9]);
    data
}

async fn blob_phase(ctx: &Ctx, accounts: &[Account], phase: Duration, f: &mut Figures) {
    // A connection pool of its own: a server that answers an upload before
    // reading its body (as an error reply may) closes that connection, and
    // a later phase must not pick it from the shared pool.
    let own = Ctx {
        http: match reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                f.notes.push(format!("blobs: no HTTP client: {e}"));
                return;
            }
        },
        ..ctx.clone()
    };
    let ctx = &own;
    const CLIENTS: usize = 4;
    const MAX_UPLOADS: u64 = 200;
    let started = Instant::now();
    let deadline = started + phase;
    let next = Rc::new(std::cell::Cell::new(0u64));
    let one = |c: usize, next: Rc<std::cell::Cell<u64>>| {
        let ctx = ctx.clone();
        let account = accounts[c % accounts.len()].clone();
        async move {
            let mut lat = Latencies::default();
            let mut refs = Vec::new();
            let mut error = None;
            while Instant::now() < deadline && next.get() < MAX_UPLOADS {
                let n = next.get();
                next.set(n + 1);
                let body = image(n);
                let sent = Instant::now();
                let resp = ctx
                    .http
                    .post(format!("{}/xrpc/com.atproto.repo.uploadBlob", ctx.url))
                    .header("authorization", &account.auth)
                    .header("content-type", "image/jpeg")
                    .body(body)
                    .send()
                    .await;
                let blob = match resp {
                    Ok(r) if r.status().is_success() => r
                        .json::<Json>()
                        .await
                        .map_err(|e| e.to_string())
                        .map(|b| b["blob"].clone()),
                    Ok(r) => Err(xrpc_error(r).await),
                    Err(e) => Err(e.to_string()),
                };
                match blob {
                    Ok(blob) => {
                        lat.push(sent.elapsed());
                        refs.push((account.clone(), blob));
                    }
                    Err(e) => {
                        error = Some(format!("uploadBlob: {e}"));
                        break;
                    }
                }
            }
            (lat, refs, error)
        }
    };
    let results = futures_util::future::join_all((0..CLIENTS).map(|c| one(c, next.clone()))).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut lat = Latencies::default();
    let mut refs = Vec::new();
    let mut error = None;
    for (l, r, e) in results {
        lat.extend(l);
        refs.extend(r);
        error = error.or(e);
    }
    let uploads = lat.len();
    f.set(
        "blob_upload_per_s",
        (uploads > 0).then(|| uploads as f64 / elapsed),
    );
    f.set("blob_upload_p50_ms", lat.quantile_ms(0.5));
    f.set("blob_upload_p99_ms", lat.quantile_ms(0.99));
    if let Some(e) = error {
        f.notes.push(e);
    }
    if refs.is_empty() {
        f.set("blob_get_rps", None);
        f.set("blob_get_p50_ms", None);
        f.set("blob_get_p99_ms", None);
        f.notes
            .push("blobs: nothing uploaded, so getBlob was not measured".into());
        return;
    }
    // The reference serves only blobs a record refers to: post each one.
    let mut cids = Vec::new();
    for (i, (account, blob)) in refs.iter().enumerate() {
        let Some(cid) = blob["ref"]["$link"].as_str() else {
            f.notes.push("uploadBlob: answer without ref".into());
            continue;
        };
        let mut record = post(i);
        record["embed"] = json!({
            "$type": "app.bsky.embed.images",
            "images": [{ "alt": "", "image": blob }],
        });
        let resp = ctx
            .http
            .post(format!("{}/xrpc/com.atproto.repo.createRecord", ctx.url))
            .header("authorization", &account.auth)
            .json(&json!({ "repo": account.did, "collection": COLLECTION, "record": record }))
            .send()
            .await;
        match resp {
            Ok(r) if r.status().is_success() => cids.push((account.did.clone(), cid.to_owned())),
            Ok(r) => {
                f.notes
                    .push(format!("post with image: {}", xrpc_error(r).await));
                break;
            }
            Err(e) => {
                f.notes.push(format!("post with image: {e}"));
                break;
            }
        }
    }
    if cids.is_empty() {
        return;
    }
    let r = read_phase(ctx, 16, phase, |i| {
        let (did, cid) = &cids[i % cids.len()];
        format!("com.atproto.sync.getBlob?did={did}&cid={cid}")
    })
    .await;
    let mut l = r.latencies;
    f.set("blob_get_rps", Some(r.ok as f64 / r.elapsed));
    f.set("blob_get_p50_ms", l.quantile_ms(0.5));
    f.set("blob_get_p99_ms", l.quantile_ms(0.99));
    if let Some(e) = r.first_error {
        f.notes.push(format!("getBlob: {e}"));
    }
}

/// `sync.getRepo` three times: the median seconds and the CAR's size.
async fn export(ctx: &Ctx, account: &Account) -> Result<(f64, usize), String> {
    let mut times = Vec::new();
    let mut size = 0usize;
    for _ in 0..3 {
        let started = Instant::now();
        let resp = ctx
            .http
            .get(format!(
                "{}/xrpc/com.atproto.sync.getRepo?did={}",
                ctx.url, account.did
            ))
            .send()
            .await
            .map_err(|e| format!("getRepo: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("getRepo: {}", xrpc_error(resp).await));
        }
        let body = resp.bytes().await.map_err(|e| format!("getRepo: {e}"))?;
        times.push(started.elapsed().as_secs_f64());
        size = body.len();
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], size))
}

/// Fills the export account's repo with `n` posts, 200 per applyWrites.
async fn fill_repo(ctx: &Ctx, account: &Account, n: usize) -> Result<(), String> {
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(200);
        let writes: Vec<Json> = (done..done + batch)
            .map(|i| {
                json!({
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": COLLECTION,
                    "value": post(i),
                })
            })
            .collect();
        let resp = ctx
            .http
            .post(format!("{}/xrpc/com.atproto.repo.applyWrites", ctx.url))
            .header("authorization", &account.auth)
            .json(&json!({ "repo": account.did, "writes": writes }))
            .send()
            .await
            .map_err(|e| format!("applyWrites: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("applyWrites: {}", xrpc_error(resp).await));
        }
        done += batch;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_data::Value;

    #[test]
    fn image_is_a_one_megabyte_jpeg_that_differs_per_n() {
        let a = image(1);
        assert_eq!(a.len(), 1_000_000);
        assert_eq!(&a[..3], &[0xFF, 0xD8, 0xFF]);
        assert_eq!(&a[a.len() - 2..], &[0xFF, 0xD9]);
        assert_ne!(a, image(2));
    }

    #[test]
    fn decodes_commit_frames_and_skips_others() {
        let header = Value::Map(
            [
                ("op".to_owned(), Value::Integer(1)),
                ("t".to_owned(), Value::String("#commit".into())),
            ]
            .into_iter()
            .collect(),
        );
        let op = Value::Map(
            [(
                "path".to_owned(),
                Value::String("app.bsky.feed.post/3abc".into()),
            )]
            .into_iter()
            .collect(),
        );
        let later_op = Value::Map(
            [
                ("action".to_owned(), Value::String("create".into())),
                (
                    "path".to_owned(),
                    Value::String("app.bsky.feed.post/3xyz".into()),
                ),
            ]
            .into_iter()
            .collect(),
        );
        let body = Value::Map(
            [
                ("seq".to_owned(), Value::Integer(42)),
                ("repo".to_owned(), Value::String("did:plc:x".into())),
                ("ops".to_owned(), Value::Array(vec![op, later_op])),
                ("blocks".to_owned(), Value::Bytes(vec![1, 2, 3])),
                (
                    "time".to_owned(),
                    Value::String("2026-01-01T00:00:00Z".into()),
                ),
            ]
            .into_iter()
            .collect(),
        );
        let mut frame = atproto_data::to_dag_cbor(&header);
        frame.extend(atproto_data::to_dag_cbor(&body));
        assert_eq!(
            decode_commit(&frame, true),
            Ok(Some((42, "did:plc:x/3abc".to_owned())))
        );
        assert_eq!(decode_commit(&frame, false), Ok(Some((42, String::new()))));
        assert!(decode_commit(&frame[..frame.len() - 1], false).is_err());
        let info = Value::Map(
            [
                ("op".to_owned(), Value::Integer(1)),
                ("t".to_owned(), Value::String("#info".into())),
            ]
            .into_iter()
            .collect(),
        );
        let mut frame = atproto_data::to_dag_cbor(&info);
        frame.extend(atproto_data::to_dag_cbor(&Value::Map(Default::default())));
        assert_eq!(decode_commit(&frame, true), Ok(None));
        assert!(decode_commit(&[0xFF], true).is_err());
    }
}
