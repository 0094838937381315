//! Data-model vectors: `data-model-fixtures.json` (atproto-JSON <-> DAG-CBOR
//! <-> CID), `data-model-valid.json` and `data-model-invalid.json`.

use atproto_types::data::{cid_for_dag_cbor, from_dag_cbor, to_dag_cbor, Value};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;

const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn vectors(rel: &str) -> Vec<serde_json::Value> {
    match super::common::read_json(rel) {
        serde_json::Value::Array(a) => {
            assert!(!a.is_empty(), "{rel} holds no vectors");
            a
        }
        other => panic!("{rel}: expected an array, found {other}"),
    }
}

fn assert_no_failures(what: &str, total: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {total} {what} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn data_model_fixtures() {
    let fixtures = vectors("data-model/data-model-fixtures.json");
    let mut failures = Vec::new();
    for (i, f) in fixtures.iter().enumerate() {
        let json = &f["json"];
        let Some(b64) = f["cbor_base64"].as_str() else {
            failures.push(format!("#{i}: no cbor_base64"));
            continue;
        };
        let Some(cid) = f["cid"].as_str() else {
            failures.push(format!("#{i}: no cid"));
            continue;
        };
        let cbor = match B64.decode(b64) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("#{i}: fixture base64: {e}"));
                continue;
            }
        };
        // JSON -> Value -> CBOR, and the CID.
        match Value::from_json(json) {
            Ok(v) => {
                let ours = to_dag_cbor(&v);
                if ours != cbor {
                    failures.push(format!(
                        "#{i}: JSON->CBOR differs: got {}, want {b64}",
                        B64.encode(&ours)
                    ));
                }
                let ours_cid = cid_for_dag_cbor(&ours).to_string();
                if ours_cid != cid {
                    failures.push(format!("#{i}: CID {ours_cid}, want {cid}"));
                }
            }
            Err(e) => failures.push(format!("#{i}: JSON rejected: {e}")),
        }
        // CBOR -> Value -> JSON.
        match from_dag_cbor(&cbor) {
            Ok(v) => {
                if v.to_json() != *json {
                    failures.push(format!(
                        "#{i}: CBOR->JSON differs: got {}, want {json}",
                        v.to_json()
                    ));
                }
                let cid_of_fixture = cid_for_dag_cbor(&cbor).to_string();
                if cid_of_fixture != cid {
                    failures.push(format!(
                        "#{i}: CID of fixture bytes {cid_of_fixture}, want {cid}"
                    ));
                }
                if to_dag_cbor(&v) != cbor {
                    failures.push(format!("#{i}: CBOR->Value->CBOR is not identical"));
                }
            }
            Err(e) => failures.push(format!("#{i}: CBOR rejected: {e}")),
        }
    }
    assert_no_failures("fixture", fixtures.len(), &failures);
}

#[test]
fn data_model_valid() {
    let cases = vectors("data-model/data-model-valid.json");
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let note = c["note"].as_str().unwrap_or("(no note)");
        match Value::from_json_object(&c["json"]) {
            Ok(v) => {
                // Valid data must survive DAG-CBOR and atproto-JSON round trips.
                let bytes = to_dag_cbor(&v);
                match from_dag_cbor(&bytes) {
                    Ok(back) if back == v => {}
                    Ok(back) => failures.push(format!("#{i} {note}: CBOR round trip gave {back}")),
                    Err(e) => failures.push(format!("#{i} {note}: own CBOR rejected: {e}")),
                }
                match Value::from_json_object(&v.to_json()) {
                    Ok(back) if back == v => {}
                    Ok(back) => failures.push(format!("#{i} {note}: JSON round trip gave {back}")),
                    Err(e) => failures.push(format!("#{i} {note}: own JSON rejected: {e}")),
                }
            }
            Err(e) => failures.push(format!("#{i} {note}: rejected: {e}")),
        }
    }
    assert_no_failures("valid", cases.len(), &failures);
}

#[test]
fn data_model_invalid() {
    let cases = vectors("data-model/data-model-invalid.json");
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let note = c["note"].as_str().unwrap_or("(no note)");
        if let Ok(v) = Value::from_json_object(&c["json"]) {
            failures.push(format!("#{i} {note}: accepted as {v}"));
        }
    }
    assert_no_failures("invalid", cases.len(), &failures);
}
