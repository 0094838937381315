//! `atproto mst`: key heights and root CIDs.

use std::io::Read;
use std::process::ExitCode;
use std::str::FromStr;

use atproto_types::repo::mst::{key_height, Mst};
use atproto_types::repo::{BlockMap, Cid};

/// Prints the MST height of `key` (any string: the height is defined for
/// every byte string, valid MST key or not).
pub fn height(key: &str) -> ExitCode {
    println!("{}", key_height(key.as_bytes()));
    ExitCode::SUCCESS
}

fn parse(input: &str) -> Result<Vec<(String, Cid)>, String> {
    let mut entries = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(key), Some(cid), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("line {}: expected `<key> <cid>`", n + 1));
        };
        let cid =
            Cid::from_str(cid).map_err(|e| format!("line {}: bad CID {cid:?}: {e}", n + 1))?;
        entries.push((key.to_owned(), cid));
    }
    Ok(entries)
}

/// Reads `<key> <cid>` lines on stdin and prints the root CID of the MST
/// holding them (the empty node's CID for no lines). Invalid keys,
/// duplicate keys or bad CIDs: exit 1 with the reason on stderr.
pub fn root() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        return crate::fail(format_args!("reading stdin: {e}"));
    }
    let entries = match parse(&input) {
        Ok(e) => e,
        Err(e) => return crate::fail(e),
    };
    let mut mst = match Mst::from_entries(entries) {
        Ok(m) => m,
        Err(e) => return crate::fail(e),
    };
    match mst.root(&BlockMap::new()) {
        Ok(cid) => {
            println!("{cid}");
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(e),
    }
}
