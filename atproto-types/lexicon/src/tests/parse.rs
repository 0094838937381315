//! Lexicon document checks.

use serde_json::json;

use super::fixtures::*;
use crate::*;

fn has_error(errors: &[String], needle: &str) -> bool {
    errors.iter().any(|e| e.contains(needle))
}

#[test]
fn minimal_documents_load() {
    let (doc, diags) = parse(doc_with("demo", json!({"type": "integer"})));
    assert!(diags.is_empty(), "{diags:?}");
    let doc = doc.expect("valid");
    assert_eq!(doc.id.as_str(), "com.example.test");
    assert_eq!(doc.lexicon, 1);
    assert!(matches!(doc.def("demo"), Some(LexDef::Integer(_))));
    assert!(doc.main().is_none());
}

#[test]
fn document_fields_are_checked() {
    let e = errors_of(
        json!({"lexicon": "one", "id": "com.example.test", "defs": {"a": {"type": "integer"}}}),
    );
    assert!(
        has_error(&e, "lexicon version must be the integer 1"),
        "{e:?}"
    );
    let e = errors_of(
        json!({"lexicon": 2, "id": "com.example.test", "defs": {"a": {"type": "integer"}}}),
    );
    assert!(
        has_error(&e, "lexicon version must be the integer 1"),
        "{e:?}"
    );
    let e = errors_of(json!({"id": "com.example.test", "defs": {"a": {"type": "integer"}}}));
    assert!(has_error(&e, "missing required field \"lexicon\""), "{e:?}");
    let e = errors_of(json!({"lexicon": 1, "id": 2, "defs": {"a": {"type": "integer"}}}));
    assert!(has_error(&e, "id must be an NSID string"), "{e:?}");
    let e =
        errors_of(json!({"lexicon": 1, "id": "one-two-three", "defs": {"a": {"type": "integer"}}}));
    assert!(
        has_error(
            &e,
            "test.json: id: id \"one-two-three\" is not a valid NSID"
        ),
        "{e:?}"
    );
    let e = errors_of(json!({"lexicon": 1, "defs": {"a": {"type": "integer"}}}));
    assert!(has_error(&e, "missing required field \"id\""), "{e:?}");
    let e = errors_of(json!({"lexicon": 1, "id": "com.example.test"}));
    assert!(has_error(&e, "missing required field \"defs\""), "{e:?}");
    let e = errors_of(json!({"lexicon": 1, "id": "com.example.test", "defs": {}}));
    assert!(has_error(&e, "at least one definition"), "{e:?}");
    let e = errors_of(json!({"lexicon": 1, "id": "com.example.test", "defs": []}));
    assert!(has_error(&e, "defs must be an object"), "{e:?}");
    let e = errors_of(json!([1, 2]));
    assert!(has_error(&e, "must be a JSON object"), "{e:?}");
    let e = errors_of(
        json!({"lexicon": 1, "id": "com.example.test", "revision": -1,
        "defs": {"a": {"type": "integer"}}}),
    );
    assert!(
        has_error(&e, "revision: must be a non-negative integer"),
        "{e:?}"
    );
}

#[test]
fn diagnostics_name_the_document_and_path() {
    let e = errors_of(doc_with(
        "main",
        json!({"type": "record", "key": "tid", "record": {"type": "object", "properties": {
            "a": {"type": "string", "maxLength": "ten"}}}}),
    ));
    assert_eq!(
        e,
        vec!["com.example.test: defs.main.record.properties.a.maxLength: must be a non-negative integer, found a string"]
    );
}

#[test]
fn invalid_def_names() {
    for bad in ["1abc", "", "a#b", "a.b", "a b"] {
        let e = errors_of(doc_with(bad, json!({"type": "integer"})));
        assert!(has_error(&e, "invalid definition name"), "{bad}: {e:?}");
    }
    for good in ["main", "viewerState", "a1", "snake_case", "kebab-case"] {
        assert!(errors_of(doc_with(good, json!({"type": "integer"}))).is_empty());
    }
}

#[test]
fn primary_types_only_as_main() {
    let defs = [
        json!({"type": "record", "key": "any", "record": {"type": "object", "properties": {}}}),
        json!({"type": "query"}),
        json!({"type": "procedure"}),
        json!({"type": "subscription", "message": {"schema": {"type": "union", "refs": []}}}),
        json!({"type": "permission-set", "permissions": []}),
    ];
    for def in defs {
        assert!(errors_of(doc_with("main", def.clone())).is_empty(), "{def}");
        let e = errors_of(doc_with("demo", def.clone()));
        assert!(has_error(&e, "must be named \"main\""), "{def}: {e:?}");
    }
}

#[test]
fn meta_types_are_not_named_defs() {
    for ty in [
        json!({"type": "ref", "ref": "com.atproto.repo.strongRef"}),
        json!({"type": "union", "refs": []}),
        json!({"type": "unknown"}),
        json!({"type": "params", "properties": {}}),
        json!({"type": "permission", "resource": "repo"}),
    ] {
        let e = errors_of(doc_with("demo", ty.clone()));
        assert!(
            has_error(&e, "can not be used as a named definition"),
            "{ty}: {e:?}"
        );
    }
}

#[test]
fn named_schema_defs() {
    for ty in [
        json!({"type": "token", "description": "d"}),
        json!({"type": "object", "properties": {}}),
        json!({"type": "boolean"}),
        json!({"type": "integer"}),
        json!({"type": "string"}),
        json!({"type": "bytes"}),
        json!({"type": "cid-link"}),
        json!({"type": "blob"}),
        json!({"type": "array", "items": {"type": "integer"}}),
    ] {
        let (doc, diags) = parse(doc_with("demo", ty.clone()));
        assert!(diags.is_empty(), "{ty}: {diags:?}");
        let doc = doc.expect("valid");
        let def = doc.def("demo").expect("def");
        assert_eq!(Some(def.type_name()), ty["type"].as_str());
    }
}

#[test]
fn record_checks() {
    let e = errors_of(doc_with(
        "main",
        json!({"type": "record", "key": "any", "record": {"properties": {"b": {"type": "boolean"}}}}),
    ));
    assert!(
        has_error(&e, "defs.main.record: missing required field \"type\""),
        "{e:?}"
    );
    let e = errors_of(doc_with(
        "main",
        json!({"type": "record", "key": "any", "record": {"type": "string"}}),
    ));
    assert!(has_error(&e, "must have type \"object\""), "{e:?}");
    let e = errors_of(doc_with("main", json!({"type": "record", "key": "any"})));
    assert!(has_error(&e, "missing required field \"record\""), "{e:?}");
    let e = errors_of(doc_with(
        "main",
        json!({"type": "record", "record": {"type": "object", "properties": {}}}),
    ));
    assert!(has_error(&e, "missing required field \"key\""), "{e:?}");

    for (key, expected) in [
        ("tid", RecordKey::Tid),
        ("nsid", RecordKey::Nsid),
        ("any", RecordKey::Any),
        ("literal:self", RecordKey::Literal("self".into())),
    ] {
        let (doc, diags) = parse(doc_with(
            "main",
            json!({"type": "record", "key": key, "record": {"type": "object", "properties": {}}}),
        ));
        assert!(diags.is_empty(), "{key}: {diags:?}");
        let doc = doc.expect("valid");
        assert_eq!(doc.record().map(|r| r.key.clone()), Some(expected));
        assert_eq!(
            doc.record().map(|r| r.key.to_string()).as_deref(),
            Some(key)
        );
    }
    for key in ["literal:", "literal:..", "literal:a/b", "self", "TID", ""] {
        let e = errors_of(doc_with(
            "main",
            json!({"type": "record", "key": key, "record": {"type": "object", "properties": {}}}),
        ));
        assert!(has_error(&e, "defs.main.key"), "{key}: {e:?}");
    }
}

#[test]
fn xrpc_checks() {
    let e = errors_of(doc_with(
        "main",
        json!({"type": "query", "input": {"encoding": "application/json"}}),
    ));
    assert!(has_error(&e, "a query can not have an input"), "{e:?}");

    let e = errors_of(doc_with(
        "main",
        json!({"type": "query", "parameters": {"type": "params", "properties": {
            "o": {"type": "object", "properties": {}}}}}),
    ));
    assert!(
        has_error(
            &e,
            "defs.main.parameters.properties.o: type \"object\" is not allowed in params"
        ),
        "{e:?}"
    );

    let e = errors_of(doc_with(
        "main",
        json!({"type": "query", "parameters": {"type": "params", "properties": {
            "a": {"type": "array", "items": {"type": "blob"}}}}}),
    ));
    assert!(
        has_error(
            &e,
            "parameters.properties.a.items: type \"blob\" is not allowed in params"
        ),
        "{e:?}"
    );

    let e = errors_of(doc_with(
        "main",
        json!({"type": "query", "parameters": {"type": "object", "properties": {}}}),
    ));
    assert!(
        has_error(&e, "parameters must have type \"params\""),
        "{e:?}"
    );

    let e = errors_of(doc_with(
        "main",
        json!({"type": "query", "parameters": {"type": "params", "required": ["x"], "properties": {}}}),
    ));
    assert!(
        has_error(&e, "required property \"x\" is not defined"),
        "{e:?}"
    );

    let e = errors_of(doc_with(
        "main",
        json!({"type": "query", "output": {"schema": {"type": "object", "properties": {}}}}),
    ));
    assert!(
        has_error(&e, "defs.main.output: missing required field \"encoding\""),
        "{e:?}"
    );

    let e = errors_of(doc_with(
        "main",
        json!({"type": "procedure", "input": {"encoding": "application/json", "schema": {"type": "string"}}}),
    ));
    assert!(
        has_error(&e, "a body schema must be an object, a ref or a union"),
        "{e:?}"
    );

    let e = errors_of(doc_with(
        "main",
        json!({"type": "query", "errors": [{"name": "Bad Name"}, {"description": "no name"}, 3]}),
    ));
    assert!(
        has_error(&e, "errors[0].name: error name \"Bad Name\""),
        "{e:?}"
    );
    assert!(
        has_error(&e, "errors[1]: missing required field \"name\""),
        "{e:?}"
    );
    assert!(
        has_error(&e, "errors[2]: an error must be an object"),
        "{e:?}"
    );

    let e = errors_of(doc_with(
        "main",
        json!({"type": "subscription", "message": {"schema": {"type": "object", "properties": {}}}}),
    ));
    assert!(has_error(&e, "must be a union of refs"), "{e:?}");

    let (doc, diags) = parse(doc_with(
        "main",
        json!({"type": "procedure", "description": "Do it.",
            "parameters": {"type": "params", "required": ["q"], "properties": {
                "q": {"type": "string", "maxLength": 10},
                "n": {"type": "integer", "default": 5},
                "b": {"type": "boolean"},
                "u": {"type": "unknown"},
                "list": {"type": "array", "items": {"type": "string"}, "maxLength": 3}}},
            "input": {"encoding": "*/*"},
            "output": {"encoding": "application/json", "description": "out",
                "schema": {"type": "ref", "ref": "#out"}},
            "errors": [{"name": "Nope", "description": "nope"}]}),
    ));
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:?}");
    // The ref to #out is not checked by the document on its own.
    let doc = doc.expect("valid");
    let Some(LexDef::Procedure(p)) = doc.main() else {
        panic!("not a procedure")
    };
    assert_eq!(p.description.as_deref(), Some("Do it."));
    let params = p.parameters.as_ref().expect("params");
    assert!(params.is_required("q"));
    assert!(matches!(
        params.properties.get("list"),
        Some(LexParam::Array(_))
    ));
    assert!(matches!(
        params.properties.get("u"),
        Some(LexParam::Unknown(_))
    ));
    assert_eq!(p.input.as_ref().map(|b| b.encoding.as_str()), Some("*/*"));
    let Some(LexBodySchema::Ref(r)) = p.output.as_ref().and_then(|o| o.schema.as_ref()) else {
        panic!("output not a ref")
    };
    assert_eq!(r.target.to_string(), "com.example.test#out");
    assert_eq!(p.errors[0].name, "Nope");
}

#[test]
fn schema_checks() {
    let cases = [
        (
            json!({"type": "string", "minLength": 5, "maxLength": 2}),
            "minLength (5) is greater than maxLength (2)",
        ),
        (
            json!({"type": "string", "minGraphemes": 5, "maxGraphemes": 2}),
            "minGraphemes (5) is greater than maxGraphemes (2)",
        ),
        (
            json!({"type": "string", "const": "a", "default": "a"}),
            "const and default are mutually exclusive",
        ),
        (
            json!({"type": "integer", "const": 1, "default": 1}),
            "const and default are mutually exclusive",
        ),
        (
            json!({"type": "boolean", "const": true, "default": true}),
            "const and default are mutually exclusive",
        ),
        (
            json!({"type": "integer", "minimum": 5, "maximum": 2}),
            "minimum (5) is greater than maximum (2)",
        ),
        (
            json!({"type": "integer", "minimum": 1.5}),
            "minimum: must be a 64-bit integer, found a float",
        ),
        (
            json!({"type": "integer", "enum": [1, "two"]}),
            "enum[1]: must be an integer",
        ),
        (
            json!({"type": "string", "knownValues": "a"}),
            "knownValues: must be an array of strings",
        ),
        (
            json!({"type": "boolean", "default": "yes"}),
            "default: must be a boolean",
        ),
        (
            json!({"type": "bytes", "minLength": 5, "maxLength": 2}),
            "minLength (5) is greater than maxLength (2)",
        ),
        (
            json!({"type": "array", "items": {"type": "integer"}, "minLength": 3, "maxLength": 1}),
            "minLength (3) is greater than maxLength (1)",
        ),
        (json!({"type": "array"}), "missing required field \"items\""),
        (
            json!({"type": "array", "items": {"type": "token"}}),
            "type \"token\" can not be used as array items",
        ),
        (
            json!({"type": "blob", "accept": ["*"]}),
            "invalid MIME pattern \"*\"",
        ),
        (
            json!({"type": "blob", "accept": ["text/ht*"]}),
            "invalid MIME pattern \"text/ht*\"",
        ),
        (
            json!({"type": "blob", "maxSize": -1}),
            "maxSize: must be a non-negative integer",
        ),
        (
            json!({"type": "union", "refs": [], "closed": true}),
            "a closed union must have at least one ref",
        ),
        (json!({"type": "union"}), "missing required field \"refs\""),
        (
            json!({"type": "union", "refs": [1]}),
            "refs[0]: a union ref must be a string",
        ),
        (
            json!({"type": "union", "refs": ["not a ref"]}),
            "refs[0]: invalid ref \"not a ref\"",
        ),
        (json!({"type": "ref"}), "missing required field \"ref\""),
        (
            json!({"type": "ref", "ref": "com.example#x"}),
            "invalid ref \"com.example#x\"",
        ),
        (json!({"type": "ref", "ref": "#"}), "invalid ref \"#\""),
        (json!({"type": "ref", "ref": "a.b.c#x#y"}), "invalid ref"),
        (
            json!({"type": "object", "required": ["x"], "properties": {}}),
            "required property \"x\" is not defined in properties",
        ),
        (
            json!({"type": "object"}),
            "missing required field \"properties\"",
        ),
        (
            json!({"type": "object", "properties": {"r": {"type": "record", "key": "tid"}}}),
            "type \"record\" can not be used as a field schema",
        ),
        (
            json!({"type": "object", "properties": {"p": {"type": "params"}}}),
            "type \"params\" can not be used as a field schema",
        ),
        (
            json!({"type": "object", "properties": {"x": {"maxLength": 3}}}),
            "properties.x: missing required field \"type\"",
        ),
        (
            json!({"type": "object", "properties": {"x": "string"}}),
            "properties.x: expected a schema object",
        ),
        (
            json!({"type": "object", "properties": {"x": {"type": 3}}}),
            "properties.x.type: type must be a string",
        ),
    ];
    for (schema, expected) in cases {
        let e = errors_of(doc_with(
            "main",
            json!({"type": "object", "properties": {"f": schema}}),
        ));
        assert!(
            has_error(&e, expected),
            "{schema}: expected {expected:?}, got {e:?}"
        );
    }
}

#[test]
fn unknown_types_and_fields_are_warnings() {
    let w = warnings_of(
        json!({"lexicon": 1, "id": "com.example.test", "extra": 1, "defs": {
            "future": {"type": "hologram", "description": "from the future"},
            "main": {"type": "object", "properties": {
                "a": {"type": "string", "format": "color", "maxLenght": 3},
                "b": {"type": "float"},
            }},
        }}),
    );
    let joined = w.join("\n");
    assert!(
        joined.contains("warning: com.example.test: extra: unrecognised top-level field"),
        "{joined}"
    );
    assert!(
        joined.contains("defs.future: unknown schema type \"hologram\""),
        "{joined}"
    );
    assert!(
        joined.contains("properties.a.format: unknown string format \"color\""),
        "{joined}"
    );
    assert!(
        joined.contains("properties.a.maxLenght: unrecognised field"),
        "{joined}"
    );
    assert!(
        joined.contains("properties.b: unknown schema type \"float\""),
        "{joined}"
    );

    let (doc, _) = parse(json!({"lexicon": 1, "id": "com.example.test", "defs": {
        "future": {"type": "hologram", "description": "from the future"},
        "main": {"type": "object", "properties": {"b": {"type": "float"}}},
    }}));
    let doc = doc.expect("valid");
    let Some(LexDef::Unsupported(u)) = doc.def("future") else {
        panic!("not kept")
    };
    assert_eq!(u.type_name, "hologram");
    assert_eq!(u.description.as_deref(), Some("from the future"));
    let Some(LexDef::Object(o)) = doc.main() else {
        panic!("no main")
    };
    assert!(matches!(
        o.properties.get("b"),
        Some(LexType::Unsupported(_))
    ));
    // Unsupported schemas serialise verbatim.
    let back = serde_json::to_value(&doc).expect("serialise");
    assert_eq!(
        back["defs"]["future"],
        json!({"type": "hologram", "description": "from the future"})
    );
}

#[test]
fn permission_sets() {
    let (doc, diags) = parse(doc_with(
        "main",
        json!({"type": "permission-set", "title": "T", "title:lang": {"fr": "T fr"},
        "detail": "D", "detail:lang": {"pt-BR": "D br"},
        "permissions": [
            {"type": "permission", "resource": "repo", "collection": ["com.example.a"], "action": ["create", "delete"]},
            {"type": "permission", "resource": "rpc", "lxm": ["com.example.b"], "aud": "*"},
            {"type": "permission", "resource": "rpc", "lxm": ["com.example.c"], "inheritAud": true},
            {"type": "permission", "resource": "blob", "accept": ["image/*"]},
        ]}),
    ));
    assert!(diags.is_empty(), "{diags:?}");
    let doc = doc.expect("valid");
    let Some(LexDef::PermissionSet(ps)) = doc.main() else {
        panic!("not a permission set")
    };
    assert_eq!(ps.title.as_deref(), Some("T"));
    assert_eq!(ps.title_lang.get("fr").map(String::as_str), Some("T fr"));
    assert_eq!(
        ps.detail_lang.get("pt-BR").map(String::as_str),
        Some("D br")
    );
    assert_eq!(ps.permissions.len(), 4);
    let LexPermission::Repo(repo) = &ps.permissions[0] else {
        panic!("repo")
    };
    assert_eq!(repo.action, vec![RepoAction::Create, RepoAction::Delete]);
    let LexPermission::Rpc(rpc) = &ps.permissions[2] else {
        panic!("rpc")
    };
    assert!(rpc.inherit_aud && rpc.aud.is_none());
    assert!(matches!(&ps.permissions[3], LexPermission::Other(o) if o.resource == "blob"));

    let bad = [
        (
            json!({"type": "permission", "resource": "repo", "collection": []}),
            "collection must not be empty",
        ),
        (
            json!({"type": "permission", "resource": "repo"}),
            "missing required field \"collection\"",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["nope"]}),
            "is not a valid NSID",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["a.b.c"], "action": ["read"]}),
            "unknown repo action \"read\"",
        ),
        (
            json!({"type": "permission", "resource": "repo", "collection": ["a.b.c", "a.b.c"]}),
            "duplicate collection",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": ["a.b.c"]}),
            "needs \"aud\" unless \"inheritAud\"",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": ["*"], "aud": "*"}),
            "can not both be wildcards",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": ["a.b.c"], "aud": "did:web:x.com#svc"}),
            "can not name a fixed service",
        ),
        (
            json!({"type": "permission", "resource": "rpc", "lxm": [], "aud": "*"}),
            "lxm must not be empty",
        ),
        (
            json!({"type": "perm", "resource": "rpc"}),
            "must have type \"permission\"",
        ),
        (
            json!({"type": "permission"}),
            "missing required field \"resource\"",
        ),
    ];
    for (perm, expected) in bad {
        let e = errors_of(doc_with(
            "main",
            json!({"type": "permission-set", "permissions": [perm]}),
        ));
        assert!(
            has_error(&e, expected),
            "{perm}: expected {expected:?}, got {e:?}"
        );
    }
    let e = errors_of(doc_with("main", json!({"type": "permission-set"})));
    assert!(
        has_error(&e, "missing required field \"permissions\""),
        "{e:?}"
    );
    let e = errors_of(doc_with(
        "main",
        json!({"type": "permission-set", "title:lang": {"123": "x"}, "permissions": []}),
    ));
    assert!(has_error(&e, "not a valid language tag"), "{e:?}");
}

#[test]
fn descriptions_are_kept() {
    let docs = post_docs();
    let (doc, _) = parse(docs[0].clone());
    let doc = doc.expect("valid");
    assert_eq!(doc.description.as_deref(), Some("A post."));
    let record = doc.record().expect("record");
    assert_eq!(
        record.description.as_deref(),
        Some("Record containing a post.")
    );
    assert_eq!(
        record
            .record
            .properties
            .get("text")
            .and_then(LexType::description),
        Some("The primary post content.")
    );
}

#[test]
fn documents_round_trip_through_serde() {
    let mut all = post_docs();
    all.push(doc_with(
        "main",
        json!({"type": "subscription", "description": "s",
            "parameters": {"type": "params", "properties": {"cursor": {"type": "integer"}}},
            "message": {"schema": {"type": "union", "refs": ["#a"]}},
            "errors": [{"name": "FutureCursor"}]}),
    ));
    all.push(json!({"lexicon": 1, "id": "com.example.perm", "defs": {"main": {
        "type": "permission-set", "title": "t", "title:lang": {"fr": "x"},
        "permissions": [
            {"type": "permission", "resource": "repo", "collection": ["a.b.c"], "action": ["update"]},
            {"type": "permission", "resource": "rpc", "lxm": ["a.b.c"], "inheritAud": true},
            {"type": "permission", "resource": "account", "attr": "email"}]}}}));
    for json in all {
        let doc = LexDoc::from_json(&json).expect("valid");
        let back = serde_json::to_value(&doc).expect("serialise");
        assert_eq!(back, json, "serialised form differs");
        let again: LexDoc = serde_json::from_value(back).expect("deserialise");
        assert_eq!(again, doc);
    }
}

#[test]
fn deserialize_reports_errors() {
    let r: Result<LexDoc, _> =
        serde_json::from_value(json!({"lexicon": 1, "id": "bad id", "defs": {}}));
    let e = r.expect_err("invalid").to_string();
    assert!(e.contains("not a valid NSID"), "{e}");
    let e = LexDoc::from_json_str("{not json")
        .expect_err("invalid")
        .to_string();
    assert!(e.contains("not valid JSON"), "{e}");
}

#[test]
fn refs_are_made_absolute() {
    let (doc, _) = parse(doc_with(
        "main",
        json!({"type": "object", "properties": {
            "l": {"type": "ref", "ref": "#other"},
            "g": {"type": "ref", "ref": "com.example.other"},
            "m": {"type": "ref", "ref": "com.example.other#main"},
            "u": {"type": "union", "refs": ["#x", "a.b.c#y"]}}}),
    ));
    let doc = doc.expect("valid");
    let Some(LexDef::Object(o)) = doc.main() else {
        panic!()
    };
    let target = |name: &str| match o.properties.get(name) {
        Some(LexType::Ref(r)) => (r.reference.clone(), r.target.clone(), r.resolved),
        _ => panic!("{name} is not a ref"),
    };
    let (raw, t, resolved) = target("l");
    assert_eq!(
        (raw.as_str(), t.nsid.as_str(), t.name.as_str()),
        ("#other", "com.example.test", "other")
    );
    assert_eq!(resolved, None);
    assert_eq!(target("g").1, target("m").1);
    assert_eq!(target("g").1.to_string(), "com.example.other");
    assert!(target("g").1.is_main());
    let Some(LexType::Union(u)) = o.properties.get("u") else {
        panic!()
    };
    assert_eq!(u.refs[0].target.to_string(), "com.example.test#x");
    assert_eq!(u.refs[1].target.type_name(), "a.b.c#y");
    assert!(u.variant("com.example.test#x").is_some());
    assert!(u.variant("a.b.c#y").is_some());
    assert!(u.variant("a.b.c").is_none());
}

#[test]
fn def_ref_matching() {
    let main = DefRef::parse("a.b.c", None).expect("valid");
    assert!(main.matches_type("a.b.c"));
    assert!(!main.matches_type("a.b.c#main"));
    let named = DefRef::parse("a.b.c#x", None).expect("valid");
    assert!(named.matches_type("a.b.c#x"));
    assert!(!named.matches_type("a.b.c"));
    assert_eq!(DefRef::parse("a.b.c#main", None).expect("valid"), main);
    assert!(matches!(
        DefRef::parse("#x", None),
        Err(RefSyntaxError::LocalWithoutBase)
    ));
    assert!(matches!(
        DefRef::parse("a.b.c#", None),
        Err(RefSyntaxError::BadName(_))
    ));
    assert!(matches!(
        DefRef::parse("nope#x", None),
        Err(RefSyntaxError::BadNsid(_))
    ));
}
