//! Validation rules, one by one.

use atproto_data::{Cid, Value};
use serde_json::{json, Value as Json};

use super::fixtures::*;
use crate::*;

fn val(j: Json) -> Value {
    Value::from_json(&j).unwrap_or_else(|e| panic!("test value {j}: {e}"))
}

fn nsid(s: &str) -> atproto_syntax::Nsid {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn post(extra: Json) -> Value {
    let mut base = json!({"$type": "com.example.feed.post", "text": "hello",
        "createdAt": "2024-01-01T00:00:00.000Z"});
    if let (Some(b), Json::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    val(base)
}

/// Validate a post; the rendered errors (empty when valid).
fn check_post(cat: &Catalog, value: &Value) -> Vec<String> {
    let before = value.clone();
    let r = cat.validate_record(&nsid("com.example.feed.post"), value);
    assert_eq!(&before, value, "validation changed the value");
    match r {
        Ok(()) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

/// Validate `{"f": value}` against a one-field schema.
fn check_field(schema: Json, value: Value) -> Vec<String> {
    let cat = schema_catalog(schema);
    let v = Value::map_from_iter([("f", value)]);
    match cat.validate("com.example.schema", &v) {
        Ok(()) => Vec::new(),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn blob(mime: &str, size: i64) -> Value {
    val(json!({"$type": "blob", "ref": {"$link": RAW_CID}, "mimeType": mime, "size": size}))
}

#[test]
fn valid_records_pass() {
    let cat = post_catalog();
    assert_eq!(check_post(&cat, &post(json!({}))), Vec::<String>::new());
    let full = post(json!({
        "note": null,
        "embed": {"$type": "com.example.embed.images", "images": [
            {"image": blob("image/png", 10), "alt": "a cat"}]},
        "langs": ["en", "pt-BR"],
        "reply": {"root": {"uri": "at://did:plc:abc/com.example.feed.post/3kznmn7xqxl22", "cid": CBOR_CID}},
        "tags": ["short"],
        "kind": "something-else",
        "flag": true,
        "attachment": blob("video/mp4", 1000),
        "anyBlob": blob("application/octet-stream", 1 << 40),
        "raw": {"$bytes": "AQID"},
        "link": {"$link": CBOR_CID},
        "extra": {"$type": "com.example.whatever", "x": [1, 2, {"y": null}]},
        "choice": {"$type": "com.example.feed.post#replyRef",
                   "root": {"uri": "at://did:plc:abc/a.b.c/x", "cid": CBOR_CID}},
        "count": 10,
        "mode": "x",
        "fixed": "k",
        "unexpected": {"fields": "are ignored"}
    }));
    assert_eq!(check_post(&cat, &full), Vec::<String>::new());
}

#[test]
fn record_type_is_checked() {
    let cat = post_catalog();
    let mut v = post(json!({}));
    if let Value::Map(m) = &mut v {
        m.remove("$type");
    }
    assert_eq!(
        check_post(&cat, &v),
        vec!["$type: record is missing $type (must be \"com.example.feed.post\")"]
    );
    let v = post(json!({"$type": "com.example.feed.like"}));
    assert_eq!(
        check_post(&cat, &v),
        vec!["$type: record $type must be \"com.example.feed.post\", found \"com.example.feed.like\""]
    );
    let v = post(json!({"$type": "com.example.feed.post#main"}));
    assert_eq!(check_post(&cat, &v).len(), 1);
    assert_eq!(
        check_post(&cat, &val(json!([1]))),
        vec!["expected a record object, found array"]
    );
}

#[test]
fn unknown_collections_and_non_records() {
    let cat = post_catalog();
    let e = cat
        .validate_record(&nsid("com.example.nope"), &post(json!({})))
        .expect_err("unknown");
    assert!(e.is_unknown_lexicon());
    assert_eq!(e.to_string(), "no lexicon for collection com.example.nope");
    let e = cat
        .validate_record(&nsid("com.example.embed.external"), &post(json!({})))
        .expect_err("not a record");
    assert!(!e.is_unknown_lexicon());
    assert_eq!(e.errors()[0].kind, ValidationErrorKind::NotValidatable);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let cat = post_catalog();
    let long_alt = "🏳️‍🌈".repeat(1001);
    let v = post(json!({
        "text": 5,
        "createdAt": "yesterday",
        "embed": {"$type": "com.example.embed.images", "images": [
            {"image": blob("image/png", 10), "alt": "fine"},
            {"image": blob("text/plain", 2_000_000), "alt": long_alt}]},
        "langs": ["en", "x y", "fr", "de"],
        "count": -1,
    }));
    let e = check_post(&cat, &v);
    // Format reasons come from atproto-syntax; only their prefix is fixed here.
    let expected = [
        "count: -1 is less than minimum (0)",
        "createdAt: string is not a valid datetime: ",
        "embed.images[1].alt: string is longer than maxGraphemes (1000)",
        "embed.images[1].image: blob mimeType \"text/plain\" is not accepted (accept: image/*)",
        "embed.images[1].image: blob is larger than maxSize (1000000 bytes): 2000000 bytes",
        "langs: array has 4 elements, more than maxLength (3)",
        "langs[1]: string is not a valid language: ",
        "text: expected a string, found integer",
    ];
    assert_eq!(e.len(), expected.len(), "{e:#?}");
    for (got, want) in e.iter().zip(expected) {
        assert!(
            got.starts_with(want),
            "{got:?} does not start with {want:?}"
        );
    }
}

#[test]
fn required_and_nullable() {
    let cat = post_catalog();
    let v = val(json!({"$type": "com.example.feed.post"}));
    assert_eq!(
        check_post(&cat, &v),
        vec![
            "createdAt: required field is missing",
            "text: required field is missing"
        ]
    );
    // `note` is nullable, `text` (required) and `langs` are not.
    assert!(check_post(&cat, &post(json!({"note": null}))).is_empty());
    assert_eq!(
        check_post(&cat, &post(json!({"text": null, "langs": null}))),
        vec![
            "langs: null is not allowed (the field is not nullable)",
            "text: null is not allowed (the field is not nullable)",
        ]
    );
}

#[test]
fn wrong_types() {
    let cases = [
        (
            json!({"type": "boolean"}),
            json!("true"),
            "f: expected a boolean, found string",
        ),
        (
            json!({"type": "integer"}),
            json!(true),
            "f: expected an integer, found boolean",
        ),
        (
            json!({"type": "string"}),
            json!(1),
            "f: expected a string, found integer",
        ),
        (
            json!({"type": "bytes"}),
            json!("AQID"),
            "f: expected bytes, found string",
        ),
        (
            json!({"type": "cid-link"}),
            json!(CBOR_CID),
            "f: expected a cid-link, found string",
        ),
        (
            json!({"type": "blob"}),
            json!(3),
            "f: expected a blob, found integer",
        ),
        (
            json!({"type": "array", "items": {"type": "integer"}}),
            json!({}),
            "f: expected an array, found object",
        ),
        (
            json!({"type": "object", "properties": {}}),
            json!([]),
            "f: expected an object, found array",
        ),
        (
            json!({"type": "unknown"}),
            json!("x"),
            "f: expected an object (unknown), found string",
        ),
        (
            json!({"type": "union", "refs": []}),
            json!(1),
            "f: expected an object with $type (union), found integer",
        ),
    ];
    for (schema, value, expected) in cases {
        assert_eq!(
            check_field(schema.clone(), val(value)),
            vec![expected],
            "{schema}"
        );
    }
}

#[test]
fn const_enum_and_known_values() {
    assert!(check_field(
        json!({"type": "boolean", "const": false}),
        Value::Bool(false)
    )
    .is_empty());
    assert_eq!(
        check_field(
            json!({"type": "boolean", "const": false}),
            Value::Bool(true)
        ),
        vec!["f: value must be false (const), found true"]
    );
    assert_eq!(
        check_field(json!({"type": "integer", "const": 42}), Value::Integer(41)),
        vec!["f: value must be 42 (const), found 41"]
    );
    assert_eq!(
        check_field(json!({"type": "string", "const": "a"}), val(json!("b"))),
        vec!["f: value must be \"a\" (const), found \"b\""]
    );
    assert!(check_field(
        json!({"type": "integer", "enum": [1, 2]}),
        Value::Integer(2)
    )
    .is_empty());
    assert_eq!(
        check_field(
            json!({"type": "integer", "enum": [1, 2]}),
            Value::Integer(3)
        ),
        vec!["f: 3 is not one of the allowed values [1, 2]"]
    );
    assert_eq!(
        check_field(json!({"type": "string", "enum": ["a"]}), val(json!("b"))),
        vec!["f: \"b\" is not one of the allowed values [\"a\"]"]
    );
    // knownValues are open.
    assert!(check_field(
        json!({"type": "string", "knownValues": ["a"]}),
        val(json!("zzz"))
    )
    .is_empty());
    // Defaults are not applied (validation never changes the value) and do
    // not make a field required.
    assert!(check_field(json!({"type": "integer", "default": 3}), Value::Integer(9)).is_empty());
}

#[test]
fn integer_ranges() {
    let s = json!({"type": "integer", "minimum": -5, "maximum": 5});
    for ok in [-5, 0, 5] {
        assert!(
            check_field(s.clone(), Value::Integer(ok)).is_empty(),
            "{ok}"
        );
    }
    assert_eq!(
        check_field(s.clone(), Value::Integer(6)),
        vec!["f: 6 is greater than maximum (5)"]
    );
    assert_eq!(
        check_field(s, Value::Integer(-6)),
        vec!["f: -6 is less than minimum (-5)"]
    );
    let extreme = json!({"type": "integer"});
    assert!(check_field(extreme.clone(), Value::Integer(i64::MAX)).is_empty());
    assert!(check_field(extreme, Value::Integer(i64::MIN)).is_empty());
}

#[test]
fn string_lengths_are_utf8_bytes() {
    let s = json!({"type": "string", "minLength": 2, "maxLength": 4});
    assert!(check_field(s.clone(), val(json!("ab"))).is_empty());
    assert!(check_field(s.clone(), val(json!("é"))).is_empty()); // 2 bytes
    assert!(check_field(s.clone(), val(json!("éé"))).is_empty()); // 4 bytes
    assert_eq!(
        check_field(s.clone(), val(json!("ééé"))),
        vec!["f: string is longer than maxLength (4 bytes): 6 bytes"]
    );
    assert_eq!(
        check_field(s.clone(), val(json!("a"))),
        vec!["f: string is shorter than minLength (2 bytes): 1 bytes"]
    );
    assert_eq!(check_field(s, val(json!("🙂"))).len(), 0); // 4 bytes
}

#[test]
fn string_graphemes() {
    let s = json!({"type": "string", "minGraphemes": 2, "maxGraphemes": 3});
    // Each of these is one grapheme cluster of many bytes.
    for cluster in [
        "🇩🇪",
        "🏳️‍🌈",
        "👩‍👩‍👦‍👦",
        "👍🏽",
        "e\u{301}",
        "\u{1100}\u{1161}\u{11A8}",
    ] {
        let two = cluster.repeat(2);
        let three = cluster.repeat(3);
        let four = cluster.repeat(4);
        assert!(
            check_field(s.clone(), val(json!(two))).is_empty(),
            "{cluster:?}"
        );
        assert!(
            check_field(s.clone(), val(json!(three))).is_empty(),
            "{cluster:?}"
        );
        assert_eq!(
            check_field(s.clone(), val(json!(four))),
            vec!["f: string is longer than maxGraphemes (3)"],
            "{cluster:?}"
        );
        assert_eq!(
            check_field(s.clone(), val(json!(cluster))),
            vec!["f: string is shorter than minGraphemes (2)"],
            "{cluster:?}"
        );
    }
    assert_eq!(
        check_field(s.clone(), val(json!(""))),
        vec!["f: string is shorter than minGraphemes (2)"]
    );
    assert!(check_field(json!({"type": "string", "maxGraphemes": 0}), val(json!(""))).is_empty());
}

#[test]
fn string_formats() {
    let cases = [
        ("did", "did:plc:z72i7hdynmk6r22z27h6tvur", "did:"),
        ("handle", "alice.bsky.social", "alice"),
        ("at-identifier", "alice.bsky.social", "@alice"),
        ("nsid", "app.bsky.feed.post", "app.bsky"),
        (
            "at-uri",
            "at://did:plc:abc/app.bsky.feed.post/3kznmn7xqxl22",
            "https://x.com",
        ),
        ("cid", CBOR_CID, "Qm"),
        ("datetime", "1985-04-12T23:20:50.123Z", "1985-04-12"),
        ("language", "ja", "123"),
        ("uri", "https://example.com", "example.com"),
        ("tid", "3kznmn7xqxl22", "3kznmn7xqxl2"),
        ("record-key", "self", ".."),
    ];
    for (format, good, bad) in cases {
        let s = json!({"type": "string", "format": format});
        assert!(
            check_field(s.clone(), val(json!(good))).is_empty(),
            "{format} {good}"
        );
        let e = check_field(s, val(json!(bad)));
        assert_eq!(e.len(), 1, "{format} {bad}: {e:?}");
        assert!(
            e[0].starts_with(&format!("f: string is not a valid {format}: ")),
            "{e:?}"
        );
    }
    // Unknown formats are not checked.
    let (doc, _) = parse(doc_with(
        "main",
        json!({"type": "string", "format": "color"}),
    ));
    let LexDef::String(s) = doc.expect("valid").main().cloned().expect("main") else {
        panic!()
    };
    assert_eq!(s.format, Some(StringFormat::Other("color".into())));
}

#[test]
fn bytes_and_links() {
    let s = json!({"type": "bytes", "minLength": 2, "maxLength": 3});
    assert!(check_field(s.clone(), Value::Bytes(vec![1, 2])).is_empty());
    assert_eq!(
        check_field(s.clone(), Value::Bytes(vec![1])),
        vec!["f: bytes are shorter than minLength (2): 1 bytes"]
    );
    assert_eq!(
        check_field(s, Value::Bytes(vec![0; 4])),
        vec!["f: bytes are longer than maxLength (3): 4 bytes"]
    );
    let cid = Cid::try_from(CBOR_CID).expect("cid");
    assert!(check_field(json!({"type": "cid-link"}), Value::Link(cid)).is_empty());
    assert_eq!(
        check_field(json!({"type": "cid-link"}), val(json!({"link": CBOR_CID}))),
        vec!["f: expected a cid-link, found object"]
    );
}

#[test]
fn arrays() {
    let s = json!({"type": "array", "minLength": 1, "maxLength": 2, "items": {"type": "integer", "maximum": 9}});
    assert!(check_field(s.clone(), val(json!([1, 2]))).is_empty());
    assert_eq!(
        check_field(s.clone(), val(json!([]))),
        vec!["f: array has 0 elements, fewer than minLength (1)"]
    );
    assert_eq!(
        check_field(s, val(json!([10, "x", 3]))),
        vec![
            "f: array has 3 elements, more than maxLength (2)",
            "f[0]: 10 is greater than maximum (9)",
            "f[1]: expected an integer, found string",
        ]
    );
    // Nested arrays and objects.
    let s = json!({"type": "array", "items": {"type": "array", "items": {"type": "object",
        "required": ["a"], "properties": {"a": {"type": "boolean"}}}}});
    assert_eq!(
        check_field(s, val(json!([[{"a": true}], [{"a": 1}, {}]]))),
        vec![
            "f[1][0].a: expected a boolean, found integer",
            "f[1][1].a: required field is missing"
        ]
    );
}

#[test]
fn blobs() {
    let image = json!({"type": "blob", "accept": ["image/*"], "maxSize": 100});
    assert!(check_field(image.clone(), blob("image/png", 100)).is_empty());
    assert!(check_field(image.clone(), blob("IMAGE/JPEG", 1)).is_empty());
    assert_eq!(
        check_field(image.clone(), blob("image/png", 101)),
        vec!["f: blob is larger than maxSize (100 bytes): 101 bytes"]
    );
    assert_eq!(
        check_field(image.clone(), blob("video/mp4", 1)),
        vec!["f: blob mimeType \"video/mp4\" is not accepted (accept: image/*)"]
    );
    let any = json!({"type": "blob", "accept": ["*/*"]});
    assert!(check_field(any, blob("application/x-whatever", 1)).is_empty());
    let exact = json!({"type": "blob", "accept": ["image/png", "image/jpeg"]});
    assert!(check_field(exact.clone(), blob("image/jpeg", 1)).is_empty());
    assert_eq!(check_field(exact, blob("image/gif", 1)).len(), 1);
    let no_accept = json!({"type": "blob"});
    assert!(check_field(no_accept.clone(), blob("text/plain", 1)).is_empty());

    // A blob whose ref is a DAG-CBOR CID (as in the interop vectors) is a
    // data-model matter, not a lexicon one.
    let cid = Cid::try_from(CBOR_CID).expect("cid");
    let cbor_ref = Value::map_from_iter([
        ("$type", Value::from("blob")),
        ("ref", Value::Link(cid)),
        ("mimeType", Value::from("image/png")),
        ("size", Value::Integer(5)),
    ]);
    assert!(check_field(image.clone(), cbor_ref).is_empty());

    // Legacy blobs: no size to check.
    let legacy = val(json!({"cid": CBOR_CID, "mimeType": "image/png"}));
    assert!(check_field(image.clone(), legacy).is_empty());
    let legacy_bad = Value::map_from_iter([
        ("cid", Value::from("nope")),
        ("mimeType", Value::from("image/png")),
    ]);
    let e = check_field(image.clone(), legacy_bad);
    assert!(
        e[0].starts_with("f.cid: legacy blob cid is not a valid CID"),
        "{e:?}"
    );

    // Malformed blobs (built directly; from_json would refuse them).
    let malformed = Value::map_from_iter([
        ("$type", Value::from("blob")),
        ("ref", Value::from("x")),
        ("mimeType", Value::Integer(1)),
        ("size", Value::Integer(-1)),
    ]);
    assert_eq!(
        check_field(image.clone(), malformed),
        vec![
            "f.mimeType: expected a string, found integer",
            "f.ref: expected a cid-link, found string",
            "f.size: blob size must not be negative, found -1",
        ]
    );
    let untyped = val(json!({"type": "blob", "size": 1, "mimeType": "image/png"}));
    assert_eq!(
        check_field(image, untyped),
        vec!["f: a blob must have $type \"blob\" (or be a legacy {cid, mimeType} blob)"]
    );
}

#[test]
fn unions() {
    let cat = post_catalog();
    // Listed variant, validated.
    let e = check_post(
        &cat,
        &post(json!({"embed": {"$type": "com.example.embed.external", "uri": "nope"}})),
    );
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("embed.uri: string is not a valid uri"),
        "{e:?}"
    );
    // Open union: unknown but well-formed `$type` accepted without checks.
    for t in ["com.example.embed.video", "com.other.thing#view"] {
        assert!(
            check_post(&cat, &post(json!({"embed": {"$type": t, "x": 1}}))).is_empty(),
            "{t}"
        );
    }
    // Open union: malformed `$type` (the `lex:` form is for schemas only).
    assert_eq!(
        check_post(
            &cat,
            &post(json!({"embed": {"$type": "lex:com.example.embed.video"}}))
        )
        .len(),
        1
    );
    assert_eq!(
        check_post(&cat, &post(json!({"embed": {"$type": "video"}}))),
        vec!["embed.$type: $type \"video\" is not a valid type name (nsid or nsid#name)"]
    );
    // `#main` is never written in `$type`.
    assert_eq!(
        check_post(&cat, &post(json!({"embed": {"$type": "com.example.embed.images#main", "images": []}}))),
        vec!["embed.$type: $type \"com.example.embed.images#main\" must not end in #main (use the bare NSID)"]
    );
    // Missing `$type`.
    assert_eq!(
        check_post(&cat, &post(json!({"embed": {"images": []}}))),
        vec!["embed.$type: union value is missing $type"]
    );
    // Closed union.
    assert_eq!(
        check_post(&cat, &post(json!({"choice": {"$type": "com.example.other", "root": {}}}))),
        vec!["choice.$type: $type \"com.example.other\" is not one of the closed union's types [\"com.example.feed.post#replyRef\"]"]
    );
    // Local variant names resolve to absolute `$type`s.
    let e = check_post(
        &cat,
        &post(json!({"choice": {"$type": "com.example.feed.post#replyRef"}})),
    );
    assert_eq!(e, vec!["choice.root: required field is missing"]);
}

#[test]
fn nested_refs() {
    let cat = post_catalog();
    let e = check_post(
        &cat,
        &post(
            json!({"reply": {"root": {"uri": "not-a-uri", "cid": "x"}}, "tags": ["ok", "far too long"]}),
        ),
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with("reply.root.cid: string is not a valid cid"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("reply.root.uri: string is not a valid at-uri"),
        "{e:?}"
    );
    assert_eq!(
        e[2],
        "tags[1]: string is longer than maxLength (10 bytes): 12 bytes"
    );
}

#[test]
fn unknown_must_be_a_plain_object() {
    let s = json!({"type": "unknown"});
    assert!(check_field(s.clone(), val(json!({}))).is_empty());
    assert!(check_field(s.clone(), val(json!({"$type": "a.b.c", "x": [1]}))).is_empty());
    assert_eq!(
        check_field(s.clone(), Value::Bool(false)),
        vec!["f: expected an object (unknown), found boolean"]
    );
    assert_eq!(
        check_field(s.clone(), Value::Bytes(vec![1])),
        vec!["f: expected an object (unknown), found bytes"]
    );
    assert_eq!(
        check_field(
            s.clone(),
            Value::Link(Cid::try_from(CBOR_CID).expect("cid"))
        ),
        vec!["f: expected an object (unknown), found cid-link"]
    );
    assert_eq!(
        check_field(s, blob("image/png", 1)),
        vec!["f: expected an object (unknown), found a blob"]
    );
}

#[test]
fn recursion_is_bounded() {
    let cat = catalog(&[
        json!({"lexicon": 1, "id": "com.example.tree", "defs": {"main": {
        "type": "object", "properties": {"child": {"type": "ref", "ref": "com.example.tree"}}}}}),
    ]);
    let mut deep = Value::empty_map();
    for _ in 0..(MAX_VALIDATION_DEPTH * 3) {
        deep = Value::map_from_iter([("child", deep)]);
    }
    let e = cat
        .validate("com.example.tree", &deep)
        .expect_err("too deep");
    assert_eq!(e.len(), 1);
    assert_eq!(e.errors()[0].kind, ValidationErrorKind::TooDeep);
    let mut shallow = Value::empty_map();
    for _ in 0..50 {
        shallow = Value::map_from_iter([("child", shallow)]);
    }
    assert!(cat.validate("com.example.tree", &shallow).is_ok());
}

#[test]
fn validate_any_def() {
    let cat = post_catalog();
    assert!(cat
        .validate("com.example.feed.defs#tag", &val(json!("abc")))
        .is_ok());
    assert_eq!(
        cat.validate("com.example.feed.defs#tag", &val(json!("abcdefghijk")))
            .expect_err("long")
            .to_string(),
        "string is longer than maxLength (10 bytes): 11 bytes"
    );
    assert!(cat
        .validate(
            "com.example.embed.images#image",
            &val(json!({"image": blob("image/png", 1), "alt": ""}))
        )
        .is_ok());
    // A record def validates as a record (with `$type`).
    assert!(cat
        .validate("com.example.feed.post", &post(json!({})))
        .is_ok());
    assert!(cat
        .validate("com.example.feed.post#main", &post(json!({})))
        .is_ok());
    let e = cat
        .validate("com.example.feed.defs#token", &Value::empty_map())
        .expect_err("token");
    assert_eq!(e.errors()[0].kind, ValidationErrorKind::NotValidatable);
    let e = cat
        .validate("com.example.nope#x", &Value::empty_map())
        .expect_err("unknown");
    assert!(e.is_unknown_lexicon());
}

#[test]
fn record_keys() {
    let cases = [
        (RecordKey::Tid, "3kznmn7xqxl22", true),
        (RecordKey::Tid, "self", false),
        (RecordKey::Nsid, "app.bsky.feed.post", true),
        (RecordKey::Nsid, "self", false),
        (RecordKey::Any, "self", true),
        (RecordKey::Any, "a:b~c", true),
        (RecordKey::Any, "..", false),
        (RecordKey::Any, "a/b", false),
        (RecordKey::Literal("self".into()), "self", true),
        (RecordKey::Literal("self".into()), "other", false),
    ];
    for (key, rkey, ok) in cases {
        assert_eq!(key.check(rkey).is_ok(), ok, "{key} {rkey}");
    }
    let e = RecordKey::Literal("self".into())
        .check("me")
        .expect_err("literal");
    assert_eq!(
        e.to_string(),
        "record key \"me\" is not valid for key type literal:self: the only allowed key is \"self\""
    );
    let cat = post_catalog();
    let c = nsid("com.example.feed.post");
    assert!(cat.validate_rkey(&c, "3kznmn7xqxl22").is_ok());
    assert!(cat.validate_rkey(&c, "self").is_err());
    assert!(cat
        .validate_rkey(&nsid("com.example.nope"), "self")
        .expect_err("unknown")
        .is_unknown_lexicon());
}

fn xrpc_catalog() -> Catalog {
    let mut docs = post_docs();
    docs.push(
        json!({"lexicon": 1, "id": "com.example.getThing", "defs": {"main": {
        "type": "query",
        "parameters": {"type": "params", "required": ["actor"], "properties": {
            "actor": {"type": "string", "format": "at-identifier"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
            "reverse": {"type": "boolean"},
            "tags": {"type": "array", "maxLength": 2, "items": {"type": "string", "maxLength": 5}},
            "ids": {"type": "array", "items": {"type": "integer"}}}},
        "output": {"encoding": "application/json", "schema": {"type": "object",
            "required": ["items"], "properties": {"items": {"type": "array",
                "items": {"type": "ref", "ref": "com.example.repo.strongRef"}}}}}}}}),
    );
    docs.push(json!({"lexicon": 1, "id": "com.example.doThing", "defs": {"main": {
        "type": "procedure",
        "input": {"encoding": "application/json", "schema": {"type": "ref", "ref": "com.example.embed.external"}},
        "output": {"encoding": "application/json", "schema": {"type": "union", "refs": ["com.example.embed.external"]}}}}}));
    docs.push(
        json!({"lexicon": 1, "id": "com.example.upload", "defs": {"main": {
        "type": "procedure", "input": {"encoding": "*/*"}}}}),
    );
    docs.push(json!({"lexicon": 1, "id": "com.example.subscribe", "defs": {
        "main": {"type": "subscription", "message": {"schema": {"type": "union", "refs": ["#commit", "#info"]}}},
        "commit": {"type": "object", "required": ["seq"], "properties": {"seq": {"type": "integer"}}},
        "info": {"type": "object", "properties": {"name": {"type": "string"}}}}}));
    catalog(&docs)
}

#[test]
fn xrpc_bodies_and_messages() {
    let cat = xrpc_catalog();
    assert!(cat
        .validate_input("com.example.doThing", &val(json!({"uri": "https://x.com"})))
        .is_ok());
    assert_eq!(
        cat.validate_input("com.example.doThing", &val(json!({})))
            .expect_err("missing")
            .to_string(),
        "uri: required field is missing"
    );
    assert!(cat
        .validate_output(
            "com.example.doThing",
            &val(json!({"$type": "com.example.embed.external", "uri": "https://x.com"}))
        )
        .is_ok());
    assert!(cat
        .validate_output("com.example.getThing", &val(json!({"items": []})))
        .is_ok());
    assert_eq!(
        cat.validate_output(
            "com.example.getThing",
            &val(json!({"items": [{"uri": "x"}]}))
        )
        .expect_err("bad")
        .len(),
        2
    );
    // A body without schema accepts anything; no body declared is an error.
    assert!(cat
        .validate_input("com.example.upload", &val(json!({"x": 1})))
        .is_ok());
    assert!(cat
        .validate_input("com.example.getThing", &val(json!({})))
        .is_err());
    assert!(cat
        .validate_input("com.example.feed.post", &val(json!({})))
        .is_err());
    assert!(cat
        .validate_input("com.example.nope", &val(json!({})))
        .expect_err("unknown")
        .is_unknown_lexicon());

    // Subscription messages: type from the frame header, no `$type` needed.
    assert!(cat
        .validate_message("com.example.subscribe", "#commit", &val(json!({"seq": 1})))
        .is_ok());
    assert_eq!(
        cat.validate_message("com.example.subscribe", "#commit", &val(json!({})))
            .expect_err("missing seq")
            .to_string(),
        "seq: required field is missing"
    );
    assert!(cat
        .validate_message(
            "com.example.subscribe",
            "com.example.subscribe#info",
            &val(json!({"name": "x"}))
        )
        .is_ok());
    // Unknown message types in an open union are let through.
    assert!(cat
        .validate_message("com.example.subscribe", "#future", &val(json!({})))
        .is_ok());
}

#[test]
fn query_parameters() {
    let cat = xrpc_catalog();
    let p = cat
        .parse_params(
            "com.example.getThing",
            [
                ("actor", "alice.example.com"),
                ("reverse", "true"),
                ("tags", "a"),
                ("tags", "b"),
                ("ids", "7"),
                ("other", "x"),
            ],
        )
        .expect("valid");
    assert_eq!(p.get("actor"), Some(&Value::from("alice.example.com")));
    assert_eq!(p.get("limit"), Some(&Value::Integer(50)), "default applied");
    assert_eq!(p.get("reverse"), Some(&Value::Bool(true)));
    assert_eq!(p.get("tags"), Some(&val(json!(["a", "b"]))));
    assert_eq!(p.get("ids"), Some(&val(json!([7]))));
    assert!(!p.contains_key("other"));

    let e = cat
        .parse_params(
            "com.example.getThing",
            [
                ("limit", "0"),
                ("reverse", "yes"),
                ("tags", "a"),
                ("tags", "b"),
                ("tags", "toolong"),
                ("ids", "x"),
                ("actor", "a"),
                ("actor", "b"),
            ],
        )
        .expect_err("invalid");
    let msgs: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        vec![
            "actor: parameter given more than once",
            "ids[0]: expected an integer, found \"x\"",
            "reverse: expected true or false, found \"yes\"",
            "limit: 0 is less than minimum (1)",
            "tags: array has 3 elements, more than maxLength (2)",
            "tags[2]: string is longer than maxLength (5 bytes): 7 bytes",
        ]
    );
    let e = cat
        .parse_params("com.example.getThing", [])
        .expect_err("missing");
    assert_eq!(e.to_string(), "actor: required parameter is missing");
    assert!(cat
        .parse_params("com.example.doThing", [("x", "y")])
        .expect("no params")
        .is_empty());
}

#[test]
fn error_display() {
    let e = ValidationError {
        path: "embed.images[0].alt".into(),
        message: "string is longer than maxGraphemes (1000)".into(),
        kind: ValidationErrorKind::Constraint,
    };
    assert_eq!(
        e.to_string(),
        "embed.images[0].alt: string is longer than maxGraphemes (1000)"
    );
    let cat = post_catalog();
    let errors = cat
        .validate_record(
            &nsid("com.example.feed.post"),
            &val(json!({"$type": "com.example.feed.post"})),
        )
        .expect_err("invalid");
    assert_eq!(
        errors.to_string(),
        "createdAt: required field is missing; text: required field is missing"
    );
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.kind == ValidationErrorKind::Required)
            .count(),
        2
    );
}
