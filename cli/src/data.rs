//! `atproto data encode` / `atproto data decode`: atproto-JSON <-> DAG-CBOR.

use std::io::{Read, Write};
use std::process::ExitCode;

use atproto_types::data::{cid_for_dag_cbor, from_dag_cbor, to_dag_cbor, Value};
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

/// Standard alphabet, padding optional on input.
const B64_IN: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn read_stdin() -> Result<String, String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .map_err(|e| format!("reading stdin: {e}"))?;
    Ok(s)
}

fn print(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => crate::fail(format!("writing stdout: {e}")),
    }
}

/// Read one atproto-JSON object on stdin; print its CID (dag-cbor) on line
/// 1 and its DAG-CBOR bytes in padded standard base64 on line 2.
pub fn encode() -> ExitCode {
    let input = match read_stdin() {
        Ok(s) => s,
        Err(e) => return crate::fail(e),
    };
    let json: serde_json::Value = match serde_json::from_str(&input) {
        Ok(j) => j,
        Err(e) => return crate::fail(format!("invalid JSON: {e}")),
    };
    let value = match Value::from_json_object(&json) {
        Ok(v) => v,
        Err(e) => return crate::fail(format!("invalid atproto data: {e}")),
    };
    let bytes = to_dag_cbor(&value);
    let cid = cid_for_dag_cbor(&bytes);
    print(&format!("{cid}\n{}\n", STANDARD.encode(&bytes)))
}

/// Read base64 DAG-CBOR on stdin (surrounding whitespace ignored, padding
/// optional); print the value as compact atproto-JSON on one line.
pub fn decode() -> ExitCode {
    let input = match read_stdin() {
        Ok(s) => s,
        Err(e) => return crate::fail(e),
    };
    let bytes = match B64_IN.decode(input.trim()) {
        Ok(b) => b,
        Err(e) => return crate::fail(format!("invalid base64: {e}")),
    };
    let value = match from_dag_cbor(&bytes) {
        Ok(v) => v,
        Err(e) => return crate::fail(e),
    };
    if let Value::Map(_) = value {
        print(&format!("{}\n", value.to_json()))
    } else {
        crate::fail(format!(
            "invalid atproto data: the top level must be an object, found {}",
            value.kind_name()
        ))
    }
}
