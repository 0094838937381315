//! Syntax vectors: every line of `*_syntax_valid.txt` must parse (and keep
//! its exact string through `as_str` and a serde round trip); every line of
//! `*_syntax_invalid.txt` and `*_parse_invalid.txt` must be rejected. Each
//! test collects all failures before asserting, so one run shows everything.

use std::fmt::Display;
use std::str::FromStr;

use atproto_types::syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, SyntaxError,
    Tid, Uri,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::common::read_lines;

/// Shorten very long vectors for failure messages.
fn show(line: &str) -> String {
    if line.chars().count() > 80 {
        let head: String = line.chars().take(60).collect();
        format!("{head:?}... ({} chars)", line.chars().count())
    } else {
        format!("{line:?}")
    }
}

fn check<T>(kind: &str, valid: &[&str], invalid: &[&str])
where
    T: FromStr<Err = SyntaxError> + AsRef<str> + Serialize + DeserializeOwned + Display,
{
    let mut failures = Vec::new();
    let mut count = 0usize;
    for file in valid {
        for line in read_lines(&format!("syntax/{file}")) {
            count += 1;
            match line.parse::<T>() {
                Err(e) => failures.push(format!("{file}: {} rejected: {e}", show(&line))),
                Ok(v) => {
                    if v.as_ref() != line || v.to_string() != line {
                        failures.push(format!("{file}: {} not kept verbatim", show(&line)));
                    }
                    let json = serde_json::to_string(&v).unwrap_or_default();
                    let back = serde_json::from_str::<T>(&json);
                    let expected = serde_json::to_string(&line).unwrap_or_default();
                    if json != expected
                        || back.as_ref().map(AsRef::as_ref).ok() != Some(line.as_str())
                    {
                        failures.push(format!(
                            "{file}: {} serde round trip changed it",
                            show(&line)
                        ));
                    }
                }
            }
        }
    }
    for file in invalid {
        for line in read_lines(&format!("syntax/{file}")) {
            count += 1;
            match line.parse::<T>() {
                Ok(_) => failures.push(format!("{file}: {} accepted", show(&line))),
                Err(e) => {
                    if e.reason().is_empty() {
                        failures.push(format!("{file}: {} rejected without a reason", show(&line)));
                    }
                    let json = serde_json::to_string(&line).unwrap_or_default();
                    if serde_json::from_str::<T>(&json).is_ok() {
                        failures.push(format!("{file}: {} accepted by serde", show(&line)));
                    }
                }
            }
        }
    }
    assert!(count > 0, "no {kind} vectors read");
    assert!(
        failures.is_empty(),
        "{} of {count} {kind} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn did() {
    check::<Did>(
        "DID",
        &["did_syntax_valid.txt"],
        &["did_syntax_invalid.txt"],
    );
}

#[test]
fn handle() {
    check::<Handle>(
        "handle",
        &["handle_syntax_valid.txt"],
        &["handle_syntax_invalid.txt"],
    );
}

#[test]
fn nsid() {
    check::<Nsid>(
        "NSID",
        &["nsid_syntax_valid.txt"],
        &["nsid_syntax_invalid.txt"],
    );
}

#[test]
fn at_uri() {
    check::<AtUri>(
        "AT-URI",
        &["aturi_syntax_valid.txt"],
        &["aturi_syntax_invalid.txt"],
    );
}

#[test]
fn at_identifier() {
    check::<AtIdentifier>(
        "AT identifier",
        &["atidentifier_syntax_valid.txt"],
        &["atidentifier_syntax_invalid.txt"],
    );
}

#[test]
fn tid() {
    check::<Tid>(
        "TID",
        &["tid_syntax_valid.txt"],
        &["tid_syntax_invalid.txt"],
    );
}

#[test]
fn record_key() {
    check::<RecordKey>(
        "record key",
        &["recordkey_syntax_valid.txt"],
        &["recordkey_syntax_invalid.txt"],
    );
}

#[test]
fn datetime() {
    check::<Datetime>(
        "datetime",
        &["datetime_syntax_valid.txt"],
        &["datetime_syntax_invalid.txt", "datetime_parse_invalid.txt"],
    );
}

#[test]
fn language() {
    check::<Language>(
        "language",
        &["language_syntax_valid.txt"],
        &["language_syntax_invalid.txt", "language_parse_invalid.txt"],
    );
}

#[test]
fn cid() {
    check::<CidString>(
        "CID",
        &["cid_syntax_valid.txt"],
        &["cid_syntax_invalid.txt"],
    );
}

#[test]
fn uri() {
    check::<Uri>(
        "URI",
        &["uri_syntax_valid.txt"],
        &["uri_syntax_invalid.txt"],
    );
}
