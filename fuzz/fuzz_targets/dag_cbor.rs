//! Strict DAG-CBOR decoding of arbitrary bytes. Whatever the decoder
//! accepts must be canonical (re-encodes to the identical bytes) and must
//! survive the atproto-JSON round trip.

#![no_main]

use atproto_data::{decode_prefix, from_dag_cbor, to_dag_cbor, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = from_dag_cbor(data) {
        assert_eq!(to_dag_cbor(&v), data, "accepted input is not canonical");
        assert!(v.validate().is_ok(), "accepted input breaks a data-model rule");
        let json = v.to_json();
        match Value::from_json(&json) {
            Ok(back) => assert_eq!(back, v, "atproto-JSON round trip changed the value"),
            Err(e) => panic!("decoded value has no valid atproto-JSON form: {e}"),
        }
    }
    if let Ok((v, used)) = decode_prefix(data) {
        assert!(used <= data.len());
        assert_eq!(to_dag_cbor(&v), &data[..used], "accepted prefix is not canonical");
    }
});
