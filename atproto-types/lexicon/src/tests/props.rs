//! Property tests: length and range limits hold for arbitrary inputs.

use atproto_data::Value;
use proptest::prelude::*;
use serde_json::json;

use super::fixtures::schema_catalog;
use crate::formats::grapheme_count;
use crate::Catalog;

fn field_ok(cat: &Catalog, v: Value) -> bool {
    cat.validate("com.example.schema", &Value::map_from_iter([("f", v)]))
        .is_ok()
}

proptest! {
    #[test]
    fn graphemes_within_limits_pass_beyond_fail(s in "\\PC{0,40}", min in 0u64..8, extra in 0u64..8) {
        let max = min + extra;
        let cat = schema_catalog(json!({"type": "string", "minGraphemes": min, "maxGraphemes": max}));
        let n = grapheme_count(&s) as u64;
        prop_assert_eq!(field_ok(&cat, Value::String(s.clone())), n >= min && n <= max);
    }

    #[test]
    fn arbitrary_unicode_graphemes(s in any::<String>(), max in 0u64..20) {
        let cat = schema_catalog(json!({"type": "string", "maxGraphemes": max}));
        let n = grapheme_count(&s) as u64;
        prop_assert_eq!(field_ok(&cat, Value::String(s)), n <= max);
    }

    #[test]
    fn byte_lengths_within_limits_pass_beyond_fail(s in any::<String>(), min in 0u64..16, extra in 0u64..16) {
        let max = min + extra;
        let cat = schema_catalog(json!({"type": "string", "minLength": min, "maxLength": max}));
        let n = s.len() as u64;
        prop_assert_eq!(field_ok(&cat, Value::String(s)), n >= min && n <= max);
    }

    #[test]
    fn integer_ranges_hold(x in any::<i64>(), a in any::<i64>(), b in any::<i64>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let cat = schema_catalog(json!({"type": "integer", "minimum": lo, "maximum": hi}));
        prop_assert_eq!(field_ok(&cat, Value::Integer(x)), lo <= x && x <= hi);
    }

    #[test]
    fn array_lengths_hold(len in 0usize..12, min in 0u64..6, extra in 0u64..6) {
        let max = min + extra;
        let cat = schema_catalog(json!({"type": "array", "items": {"type": "integer"},
            "minLength": min, "maxLength": max}));
        let v = Value::Array(vec![Value::Integer(1); len]);
        prop_assert_eq!(field_ok(&cat, v), (len as u64) >= min && (len as u64) <= max);
    }

    /// Any JSON document either loads or yields error diagnostics; never a
    /// panic.
    #[test]
    fn parsing_never_panics(j in arb_json()) {
        let (doc, diags) = crate::parse_document(&j, "prop");
        prop_assert!(doc.is_some() || diags.iter().any(|d| d.is_error()));
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "type",
            "object",
            "string",
            "record",
            "ref",
            "union",
            "main",
            "#x",
            "a.b.c",
            "integer",
            "array",
            "params",
            "tid",
            "literal:self",
            "com.example.x",
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "lexicon",
                    "id",
                    "defs",
                    "main",
                    "type",
                    "properties",
                    "items",
                    "refs",
                    "ref",
                    "record",
                    "key",
                    "required",
                    "parameters",
                    "output",
                    "schema",
                ])
                .prop_map(str::to_owned),
                inner,
                0..5,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
