//! atproto-JSON parsing of arbitrary text. Whatever the parser accepts must
//! satisfy the data model, write back to atproto-JSON that reads as the same
//! value, and survive the DAG-CBOR round trip.

#![no_main]

use atproto_data::{from_dag_cbor, to_dag_cbor, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(v) = Value::from_json_str(text) else {
        return;
    };
    assert!(v.validate().is_ok(), "accepted JSON breaks a data-model rule");
    match Value::from_json(&v.to_json()) {
        Ok(back) => assert_eq!(back, v, "atproto-JSON round trip changed the value"),
        Err(e) => panic!("written atproto-JSON does not read back: {e}"),
    }
    let cbor = to_dag_cbor(&v);
    match from_dag_cbor(&cbor) {
        Ok(back) => assert_eq!(back, v, "DAG-CBOR round trip changed the value"),
        Err(e) => panic!("encoded DAG-CBOR does not decode: {e}"),
    }
});
