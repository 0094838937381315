//! Property tests: DAG-CBOR and atproto-JSON round trips, canonical
//! encoding, and a decoder that never panics on arbitrary bytes.

use std::collections::BTreeMap;

use atproto_data::{
    cid_for_dag_cbor, cid_for_raw, from_dag_cbor, to_dag_cbor, Cid, Value, MAX_NESTED_LEVELS,
};
use proptest::prelude::*;

fn arb_cid() -> impl Strategy<Value = Cid> {
    (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..16)).prop_map(|(raw, seed)| {
        if raw {
            cid_for_raw(&seed)
        } else {
            cid_for_dag_cbor(&seed)
        }
    })
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-c]{0,3}", "[a-zA-Z0-9_.$-]{0,12}", "\\PC{0,6}",]
        .prop_filter("reserved keys", |k| {
            k != "$link" && k != "$bytes" && k != "$type"
        })
}

fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Integer),
        prop_oneof![
            Just(0i64),
            Just(23),
            Just(24),
            Just(255),
            Just(256),
            Just(-24),
            Just(-25),
            Just(65536),
            Just(i64::MIN),
            Just(i64::MAX)
        ]
        .prop_map(Value::Integer),
        "\\PC{0,20}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        arb_cid().prop_map(Value::Link),
        // A well-formed blob now and then.
        (arb_cid(), "[a-z]{1,5}/[a-z]{1,5}", 0i64..1_000_000).prop_map(|(c, m, s)| {
            let raw = cid_for_raw(&c.to_bytes());
            Value::map_from_iter([
                ("$type", Value::from("blob")),
                ("ref", Value::Link(raw)),
                ("mimeType", Value::from(m)),
                ("size", Value::Integer(s)),
            ])
        }),
    ]
}

fn arb_value() -> impl Strategy<Value = Value> {
    arb_leaf().prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(arb_key(), inner.clone(), 0..8).prop_map(Value::Map),
            (
                "[a-z]{1,8}(\\.[a-z]{1,8}){2}",
                proptest::collection::btree_map(arb_key(), inner, 0..4)
            )
                .prop_map(|(t, mut m): (String, BTreeMap<String, Value>)| {
                    m.insert("$type".into(), Value::String(t));
                    Value::Map(m)
                }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn generated_values_are_valid(v in arb_value()) {
        prop_assert!(v.validate().is_ok(), "{:?}", v.validate());
    }

    #[test]
    fn cbor_round_trip(v in arb_value()) {
        let bytes = to_dag_cbor(&v);
        let back = from_dag_cbor(&bytes);
        prop_assert_eq!(back.as_ref(), Ok(&v));
        // Canonical: re-encoding the decoded value gives identical bytes.
        if let Ok(back) = back {
            prop_assert_eq!(to_dag_cbor(&back), bytes);
        }
    }

    #[test]
    fn json_round_trip(v in arb_value()) {
        let j = v.to_json();
        prop_assert_eq!(Value::from_json(&j), Ok(v.clone()));
        let text = serde_json::to_string(&v).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed: Value = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed, v);
    }

    #[test]
    fn map_keys_sorted_length_first(m in proptest::collection::btree_map(arb_key(), Just(Value::Null), 0..20)) {
        let bytes = to_dag_cbor(&Value::Map(m.clone()));
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by(|a, b| (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes())));
        // Expected encoding written out by hand from the sorted keys.
        let mut want = vec![];
        let n = keys.len();
        if n < 24 { want.push(0xa0 | n as u8); } else { want.push(0xb8); want.push(n as u8); }
        for k in keys {
            let l = k.len();
            if l < 24 { want.push(0x60 | l as u8); } else { want.push(0x78); want.push(l as u8); }
            want.extend_from_slice(k.as_bytes());
            want.push(0xf6);
        }
        prop_assert_eq!(bytes, want);
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(v) = from_dag_cbor(&bytes) {
            prop_assert_eq!(to_dag_cbor(&v), bytes);
        }
    }

    #[test]
    fn mutated_encodings_never_panic(v in arb_value(), pos in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = to_dag_cbor(&v);
        let i = pos.index(bytes.len());
        if cut {
            bytes.truncate(i);
        } else {
            bytes[i] = byte;
        }
        // Whatever the decoder accepts must be canonical.
        if let Ok(v) = from_dag_cbor(&bytes) {
            prop_assert_eq!(to_dag_cbor(&v), bytes);
        }
    }
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let mut v = Value::Null;
    for _ in 0..MAX_NESTED_LEVELS {
        v = Value::Array(vec![v]);
    }
    assert!(from_dag_cbor(&to_dag_cbor(&v)).is_ok());
    let deeper = Value::Array(vec![v]);
    assert!(from_dag_cbor(&to_dag_cbor(&deeper)).is_err());
    assert!(deeper.validate().is_err());
}
