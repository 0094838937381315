//! The real `pds` binary: zero-config start, `pds serve`, a bad
//! configuration stopping the start, graceful exit on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pds");

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The binary run in `dir` with only `env` set (plus PATH).
fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Reads stdout until the listening line; returns the lines read.
fn wait_until_listening(child: &mut Child) -> Vec<String> {
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout line");
        let done = line.starts_with("PDS listening on");
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

fn http_get(port: u16, path: &str) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

fn sigterm(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: sending a signal to our own child process by its pid.
    let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(rc, 0, "kill(SIGTERM)");
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("the server did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_and_stop(args: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let port_s = port.to_string();
    // Nothing but the port: everything else is the zero-config default.
    let mut child = command(dir.path(), args, &[("PDS_PORT", &port_s)])
        .spawn()
        .expect("spawn pds");
    let banner = wait_until_listening(&mut child);
    let text = banner.join("\n");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");

    let root = http_get(port, "/");
    assert!(root.starts_with("HTTP/1.1 200"), "{root}");
    assert!(root.contains("AT Protocol Personal Data Server"), "{root}");
    let health = http_get(port, "/xrpc/_health");
    assert!(health.contains("\"version\""), "{health}");
    let describe = http_get(port, "/xrpc/com.atproto.server.describeServer");
    assert!(
        describe.contains("\"availableUserDomains\":[\".test\"]"),
        "{describe}"
    );

    // The rest of the banner says how to create the first account.
    let mut rest = String::new();
    let _ = child.stdout.take();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "exit status {status:?}");
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut rest);
    }
    assert!(rest.contains("shutting down"), "stderr: {rest}");
    assert!(
        rest.contains("path=/xrpc/_health status=200"),
        "request log: {rest}"
    );

    // SQLite, disk blobs and the 0600 secrets file under ./data.
    let data = dir.path().join("data");
    assert!(data.join("pds.sqlite").exists());
    assert!(data.join("blobs").is_dir());
    let secrets = data.join("secrets.toml");
    let text = std::fs::read_to_string(&secrets).expect("secrets file");
    for key in [
        "PDS_JWT_SECRET",
        "PDS_ADMIN_PASSWORD",
        "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
        "PDS_KEY_ENCRYPTION_SECRET",
    ] {
        assert!(text.contains(key), "{key} missing from the secrets file");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secrets)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn zero_config_start_and_sigterm() {
    run_and_stop(&[]);
}

#[test]
fn serve_subcommand() {
    run_and_stop(&["serve"]);
}

#[test]
fn banner_explains_the_first_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port().to_string();
    let mut child = command(dir.path(), &[], &[("PDS_PORT", &port)])
        .spawn()
        .expect("spawn pds");
    let stdout = child.stdout.take().expect("stdout");
    let mut text = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        let end = line.contains("com.atproto.server.createAccount");
        text.push_str(&line);
        text.push('\n');
        if end {
            break;
        }
    }
    sigterm(&child);
    wait_exit(&mut child, Duration::from_secs(20));
    assert!(text.contains("createInviteCode"), "{text}");
    assert!(text.contains("alice.test"), "{text}");
    // The generated admin password is shown for the dev setup.
    let secrets = std::fs::read_to_string(dir.path().join("data/secrets.toml")).expect("secrets");
    let admin = secrets
        .lines()
        .find_map(|l| l.strip_prefix("PDS_ADMIN_PASSWORD = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("admin password line");
    assert!(text.contains(&admin), "{text}");
}

#[test]
fn bad_configuration_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("PDS_PORT", "eighty")], "PDS_PORT"),
        (&[("PDS_INVITE_REQUIRED", "perhaps")], "PDS_INVITE_REQUIRED"),
        (
            &[
                ("PDS_BLOBSTORE_S3_BUCKET", "b"),
                ("PDS_BLOBSTORE_DISK_LOCATION", "/tmp/x"),
            ],
            "PDS_BLOBSTORE_DISK_LOCATION",
        ),
    ];
    for (env, named) in cases {
        let out = command(dir.path(), &[], env).output().expect("run pds");
        assert!(!out.status.success(), "{env:?} started");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(named), "{env:?}: {stderr}");
    }
    // A config file with an unknown key, and one that sets the port.
    let file = dir.path().join("pds.toml");
    std::fs::write(&file, "PDS_PORTT = 1\n").expect("write");
    let out = command(dir.path(), &["--config", "pds.toml"], &[])
        .output()
        .expect("run pds");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PDS_PORTT"));

    let port = free_port();
    std::fs::write(&file, format!("PDS_PORT = {port}\n")).expect("write");
    let mut child = command(dir.path(), &["serve", "--config", "pds.toml"], &[])
        .spawn()
        .expect("spawn");
    let banner = wait_until_listening(&mut child).join("\n");
    assert!(banner.contains(&format!(":{port}")), "{banner}");
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
    // PDS_CONFIG_FILE names it too; the environment wins over the file.
    let port2 = free_port();
    let port2_s = port2.to_string();
    let mut child = command(
        dir.path(),
        &[],
        &[("PDS_CONFIG_FILE", "pds.toml"), ("PDS_PORT", &port2_s)],
    )
    .spawn()
    .expect("spawn");
    let banner = wait_until_listening(&mut child).join("\n");
    assert!(banner.contains(&format!(":{port2}")), "{banner}");
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
}
