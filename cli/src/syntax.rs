//! `atproto syntax <kind>`: check values read one per line from stdin.
//!
//! Lines are split on `\n` only and taken verbatim (no trimming; a `\r` is
//! part of the value); an empty segment after the final newline is not a
//! value. For each value the output is a line `valid` or
//! `invalid: <reason>`. The exit status is 0 unless stdin can not be read or
//! stdout can not be written.

use std::io::{BufWriter, Read, Write};
use std::process::ExitCode;

use atproto_types::syntax::{
    AtIdentifier, AtUri, CidString, Datetime, Did, Handle, Language, Nsid, RecordKey, SyntaxError,
    Tid, Uri,
};

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Did,
    Handle,
    Nsid,
    AtUri,
    AtIdentifier,
    Tid,
    RecordKey,
    Datetime,
    Language,
    Cid,
    Uri,
}

/// Check one value against a kind.
fn check(kind: Kind, value: &str) -> Result<(), SyntaxError> {
    match kind {
        Kind::Did => value.parse::<Did>().map(drop),
        Kind::Handle => value.parse::<Handle>().map(drop),
        Kind::Nsid => value.parse::<Nsid>().map(drop),
        Kind::AtUri => value.parse::<AtUri>().map(drop),
        Kind::AtIdentifier => value.parse::<AtIdentifier>().map(drop),
        Kind::Tid => value.parse::<Tid>().map(drop),
        Kind::RecordKey => value.parse::<RecordKey>().map(drop),
        Kind::Datetime => value.parse::<Datetime>().map(drop),
        Kind::Language => value.parse::<Language>().map(drop),
        Kind::Cid => value.parse::<CidString>().map(drop),
        Kind::Uri => value.parse::<Uri>().map(drop),
    }
}

/// The output line for one raw value (bytes between newlines).
fn verdict(kind: Kind, raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Err(_) => "invalid: value is not valid UTF-8".to_owned(),
        Ok(value) => match check(kind, value) {
            Ok(()) => "valid".to_owned(),
            Err(e) => format!("invalid: {}", e.reason()),
        },
    }
}

/// The values in `input`: split on `\n`, dropping only the empty segment
/// after a final newline.
fn values(input: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    let empty = input.is_empty();
    body.split(|&b| b == b'\n').filter(move |_| !empty)
}

pub fn run(kind: Kind) -> ExitCode {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        return crate::fail(format!("reading stdin: {e}"));
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for raw in values(&input) {
        if let Err(e) = writeln!(out, "{}", verdict(kind, raw)) {
            return crate::fail(format!("writing stdout: {e}"));
        }
    }
    if let Err(e) = out.flush() {
        return crate::fail(format!("writing stdout: {e}"));
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &str) -> Vec<&[u8]> {
        values(input.as_bytes()).collect()
    }

    #[test]
    fn splitting() {
        assert!(split("").is_empty());
        assert_eq!(split("\n"), [b"".as_slice()]);
        assert_eq!(split("a"), [b"a".as_slice()]);
        assert_eq!(split("a\n"), [b"a".as_slice()]);
        assert_eq!(split("a\n\nb"), [b"a".as_slice(), b"", b"b"]);
        assert_eq!(split("a\r\n b \n"), [b"a\r".as_slice(), b" b "]);
        assert_eq!(split("a\n\n"), [b"a".as_slice(), b""]);
    }

    #[test]
    fn verdicts() {
        assert_eq!(verdict(Kind::Did, b"did:plc:abc"), "valid");
        assert!(verdict(Kind::Did, b"not a did").starts_with("invalid: "));
        assert!(verdict(Kind::Handle, b"alice.test\r").starts_with("invalid: "));
        assert_eq!(verdict(Kind::AtUri, b"at://alice.test/a.b.c/d"), "valid");
        assert_eq!(verdict(Kind::Tid, b"3jzfcijpj2z2a"), "valid");
        assert_eq!(
            verdict(Kind::Cid, b"\xff\xfe"),
            "invalid: value is not valid UTF-8"
        );
        // reasons stay on one line
        let v = verdict(Kind::RecordKey, b"a\rb");
        assert!(!v.contains('\r') && !v.contains('\n'), "{v}");
    }
}
