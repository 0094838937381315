//! `pds`: the Personal Data Server.
//!
//! `pds` and `pds serve` start the server with the configuration from the
//! environment (the reference PDS's variables) and an optional TOML file
//! (`--config FILE` or `PDS_CONFIG_FILE`). Logs go to stderr; `RUST_LOG`
//! filters them (default `info`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use pds::{Config, Server};
use tracing_subscriber::EnvFilter;

/// mimalloc for Rust's allocations: a request makes many small, short-lived
/// ones (decoded records, strings, response buffers), where glibc's malloc
/// spent a fifth of `listRecords` (consolidating its fast bins). C code
/// (SQLite) still uses glibc's, with the threshold below.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` and `mi_option_purge_delay` of mimalloc
/// v3's `mi_option_t` (`mimalloc.h`; libmimalloc-sys names only some).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps mimalloc's resident memory close to what is in use: commit arena
/// memory as it is used, and return freed pages at once rather than after
/// 10 ms (measured idle RSS 46 MB with the defaults, 25 MB with these, at
/// the same throughput). It must run before the first allocation creates
/// mimalloc's first arena, so it runs as an ELF constructor, before `main`
/// and the Rust runtime's own set-up.
extern "C" fn tune_mimalloc() {
    // SAFETY: sets two allocator options by their documented ids.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_MIMALLOC: extern "C" fn() = tune_mimalloc;

#[derive(Parser)]
#[command(name = "pds", version, about = "atproto Personal Data Server")]
struct Cli {
    /// TOML file with settings (same keys as the environment variables;
    /// the environment wins).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
}

/// Allocations at least this large get their own mappings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 << 20;

/// Fixes glibc's mmap threshold. By default glibc raises it to the size of
/// the largest mapped block freed so far (up to 32 MiB), so after the
/// first password hash freed its 19 MiB of Argon2 memory every later one
/// came from the heap of the thread running it and stayed resident after
/// it was freed (a dozen logins left ~230 MB). With a fixed threshold,
/// blocks that large are always mapped and unmapped when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_mmap_threshold() {
    // SAFETY: mallopt only sets an allocator parameter; it is called before
    // any other thread exists.
    let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
    if ok != 1 {
        eprintln!("pds: mallopt(M_MMAP_THRESHOLD) failed; memory may stay resident after logins");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_mmap_threshold() {}

fn main() -> ExitCode {
    #[cfg(not(target_os = "linux"))]
    tune_mimalloc();
    fix_mmap_threshold();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pds: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => match runtime.block_on(serve(cli.config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pds: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn serve(config_file: Option<PathBuf>) -> Result<(), pds::StartError> {
    let config = Config::load(config_file.as_deref())?;
    let addr = SocketAddr::new(config.bind, config.port);
    let server = Server::start(config).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| pds::StartError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let shutdown = pds::shutdown_signal();
    print_banner(&server, addr);
    server.serve(listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

fn print_banner(server: &Server, addr: SocketAddr) {
    let c = &server.state().config;
    let (generated, file) = server.generated_secrets();
    if !generated.is_empty() {
        tracing::warn!(
            file = %file.display(),
            secrets = generated.join(", "),
            "generated development secrets (set them in the environment for production)"
        );
    }
    let database = match &c.database_url {
        Some(_) => "PostgreSQL".to_owned(),
        None => format!("SQLite in {}", c.data_directory.display()),
    };
    let local = format!("http://{addr}");
    let domain = c
        .handle_domains
        .first()
        .map(String::as_str)
        .unwrap_or(".test");
    let mut out = String::new();
    out.push_str(&format!(
        "PDS listening on {local} (public URL {})\n",
        c.public_url
    ));
    out.push_str(&format!(
        "  service DID: {}\n  database:    {database}\n",
        c.service_did
    ));
    out.push_str(&format!("  PLC:         {}\n", c.plc_url));
    out.push_str(&format!("  secrets:     {}\n\n", file.display()));
    out.push_str("Create the first account:\n");
    let admin = server.dev_admin_password().unwrap_or("$PDS_ADMIN_PASSWORD");
    let mut invite = "";
    if c.invite_required {
        out.push_str(&format!(
            "  curl -s -u \"admin:{admin}\" -H 'content-type: application/json' \\\n    \
             -d '{{\"useCount\": 1}}' {local}/xrpc/com.atproto.server.createInviteCode\n"
        ));
        invite = ", \"inviteCode\": \"<code from above>\"";
    }
    out.push_str(&format!(
        "  curl -s -H 'content-type: application/json' \\\n    \
         -d '{{\"handle\": \"alice{domain}\", \"email\": \"alice@example.com\", \"password\": \"<password>\"{invite}}}' \\\n    \
         {local}/xrpc/com.atproto.server.createAccount\n"
    ));
    if c.plc_url == pds::config::DEFAULT_PLC_URL {
        out.push_str(&format!(
            "  (the account's did:plc is registered at {}; set PDS_DID_PLC_URL to use another directory)\n",
            c.plc_url
        ));
    }
    // Not `println!`: a closed stdout (e.g. piped to `head`) must not stop
    // the server.
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{out}");
    let _ = stdout.flush();
}
