//! `atproto`: a command-line tool for operators and for anyone debugging a
//! repository. Its output formats are a stable interface: acceptance checks
//! read them, so change them only on purpose.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod car;
mod crypto;
mod data;
mod lexicon;
mod mst;
mod syntax;

#[derive(Parser)]
#[command(
    name = "atproto",
    version,
    about = "atproto syntax, data model, crypto, MST, CAR and lexicon tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check values read one per line from stdin; prints `valid` or `invalid: <reason>` per line.
    Syntax {
        #[arg(value_enum)]
        kind: syntax::Kind,
    },
    /// Data model: atproto-JSON <-> DAG-CBOR.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Keys and signatures.
    Crypto {
        #[command(subcommand)]
        command: CryptoCommand,
    },
    /// Merkle Search Tree helpers.
    Mst {
        #[command(subcommand)]
        command: MstCommand,
    },
    /// CAR files.
    Car {
        #[command(subcommand)]
        command: CarCommand,
    },
    /// Lexicon documents: check them, validate records, OpenAPI, generated Rust.
    Lexicon {
        #[command(subcommand)]
        command: lexicon::LexiconCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Read atproto-JSON on stdin; print its CID, then its DAG-CBOR bytes in base64.
    Encode,
    /// Read base64 DAG-CBOR on stdin; print atproto-JSON.
    Decode,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Alg {
    #[value(name = "ES256")]
    Es256,
    #[value(name = "ES256K")]
    Es256k,
}

#[derive(Subcommand)]
enum CryptoCommand {
    /// Verify a signature; prints `valid` or `invalid`.
    Verify {
        /// did:key or multibase public key.
        #[arg(long)]
        key: String,
        #[arg(long, value_enum)]
        alg: Alg,
        #[arg(long = "message-base64", allow_hyphen_values = true)]
        message_base64: String,
        #[arg(long = "signature-base64", allow_hyphen_values = true)]
        signature_base64: String,
    },
    /// Print the did:key of a private key.
    DidKey {
        #[arg(long, value_enum)]
        alg: Alg,
        #[arg(long = "private-key-hex")]
        private_key_hex: String,
    },
}

#[derive(Subcommand)]
enum MstCommand {
    /// Print a key's MST height.
    Height { key: String },
    /// Read `<key> <cid>` lines on stdin; print the root CID of the MST holding them.
    Root,
}

#[derive(Subcommand)]
enum CarCommand {
    /// Print roots and block count; for a repo CAR, the DID, rev, record count and checks.
    Inspect {
        file: PathBuf,
        /// did:key (or multibase key) to verify the commit signature against.
        #[arg(long = "did-key")]
        did_key: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Syntax { kind } => syntax::run(kind),
        Command::Data { command } => match command {
            DataCommand::Encode => data::encode(),
            DataCommand::Decode => data::decode(),
        },
        Command::Crypto { command } => match command {
            CryptoCommand::Verify {
                key,
                alg,
                message_base64,
                signature_base64,
            } => crypto::verify(&key, alg, &message_base64, &signature_base64),
            CryptoCommand::DidKey {
                alg,
                private_key_hex,
            } => crypto::did_key(alg, &private_key_hex),
        },
        Command::Mst { command } => match command {
            MstCommand::Height { key } => mst::height(&key),
            MstCommand::Root => mst::root(),
        },
        Command::Car { command } => match command {
            CarCommand::Inspect { file, did_key } => car::inspect(&file, did_key.as_deref()),
        },
        Command::Lexicon { command } => lexicon::run(command),
    }
}

/// Print an error to stderr and return failure.
pub(crate) fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}
