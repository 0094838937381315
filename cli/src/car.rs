//! `atproto car inspect`: roots and block count; for a repository CAR, the
//! commit's DID and rev, the record count, an MST check and a signature check.

use std::path::Path;
use std::process::ExitCode;

use atproto_types::crypto::PublicKey;
use atproto_types::repo::commit::{looks_like_commit, Commit};
use atproto_types::repo::mst::Mst;
use atproto_types::repo::{load_car, BlockMap, Cid};

/// Walk the tree: every node must be present and valid, and rebuilding the
/// tree from its entries must give the same root (canonical structure).
/// Returns the record count and the MST verdict.
fn check_mst(blocks: &BlockMap, data: Cid) -> (Option<usize>, Result<(), String>) {
    let mst = match Mst::load(blocks, data) {
        Ok(m) => m,
        Err(e) => return (None, Err(e.to_string())),
    };
    let entries = match mst.entries(blocks) {
        Ok(e) => e,
        Err(e) => return (None, Err(e.to_string())),
    };
    let count = entries.len();
    let missing = entries.iter().filter(|(_, c)| !blocks.contains(c)).count();
    let rebuilt = Mst::from_entries(entries.iter().cloned()).and_then(|mut m| m.root(blocks));
    let verdict = match rebuilt {
        Err(e) => Err(e.to_string()),
        Ok(r) if r != data => Err(format!("rebuilt root {r} differs from data {data}")),
        Ok(_) if missing > 0 => Err(format!("{missing} record blocks missing from the CAR")),
        Ok(_) => Ok(()),
    };
    (Some(count), verdict)
}

/// Prints `roots:` and `blocks:`; for a repository CAR also `did:`, `rev:`,
/// `records:`, `mst: ok|mismatch (<reason>)` and `signature: valid|invalid|not
/// checked`. Exits 1 if the file cannot be read or is not a valid CAR, or if
/// the --did-key value is not a key.
pub fn inspect(file: &Path, did_key: Option<&str>) -> ExitCode {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return crate::fail(format_args!("reading {}: {e}", file.display())),
    };
    let key = match did_key.map(|k| PublicKey::parse(k.trim())).transpose() {
        Ok(k) => k,
        Err(e) => return crate::fail(format_args!("--did-key: {e}")),
    };
    let (roots, blocks) = match load_car(bytes) {
        Ok(r) => r,
        Err(e) => return crate::fail(format_args!("malformed CAR: {e}")),
    };
    let names: Vec<String> = roots.iter().map(Cid::to_string).collect();
    println!("roots: {}", names.join(", "));
    println!("blocks: {}", blocks.len());
    let Some(root_bytes) = roots.first().and_then(|r| blocks.get(r)) else {
        return ExitCode::SUCCESS;
    };
    if !looks_like_commit(root_bytes) {
        return ExitCode::SUCCESS;
    }
    let commit = match Commit::from_cbor(root_bytes) {
        Ok(c) => c,
        Err(e) => return crate::fail(format_args!("root block is not a valid commit: {e}")),
    };
    println!("did: {}", commit.did.as_str());
    println!("rev: {}", commit.rev.as_str());
    let (count, verdict) = check_mst(&blocks, commit.data);
    match count {
        Some(n) => println!("records: {n}"),
        None => println!("records: unknown"),
    }
    match verdict {
        Ok(()) => println!("mst: ok"),
        Err(reason) => println!("mst: mismatch ({reason})"),
    }
    match key {
        None => println!("signature: not checked"),
        Some(k) => match commit.verify(&k) {
            Ok(()) => println!("signature: valid"),
            Err(e) => {
                println!("signature: invalid");
                eprintln!("reason: {e}");
            }
        },
    }
    ExitCode::SUCCESS
}
