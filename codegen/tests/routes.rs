//! Route emission on a tiny sample namespace: a JSON query, a JSON
//! procedure with a named error, a binary upload, a CAR download and a
//! subscription.

use atproto_codegen::naming::Names;
use atproto_codegen::routes::{
    auth_type_name, method_name, namespace_routes, namespaces, trait_name, BodyKind, MethodKind,
};
use atproto_lexicon::Catalog;

const DOCS: &[(&str, &str)] = &[
    (
        "getThing.json",
        r#"{"lexicon": 1, "id": "com.example.demo.getThing", "defs": {"main": {
            "type": "query", "description": "Get a thing.",
            "parameters": {"type": "params", "required": ["uris"], "properties": {
                "uris": {"type": "array", "items": {"type": "string", "format": "at-uri"}},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50}}},
            "output": {"encoding": "application/json", "schema": {"type": "object",
                "required": ["count"], "properties": {"count": {"type": "integer"}}}}}}}"#,
    ),
    (
        "putThing.json",
        r#"{"lexicon": 1, "id": "com.example.demo.putThing", "defs": {"main": {
            "type": "procedure",
            "input": {"encoding": "application/json", "schema": {"type": "object",
                "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 10}}}},
            "errors": [{"name": "ThingExists"}]}}}"#,
    ),
    (
        "uploadThing.json",
        r#"{"lexicon": 1, "id": "com.example.demo.uploadThing", "defs": {"main": {
            "type": "procedure",
            "input": {"encoding": "*/*"},
            "output": {"encoding": "application/json", "schema": {"type": "object",
                "required": ["size"], "properties": {"size": {"type": "integer"}}}}}}}"#,
    ),
    (
        "getCar.json",
        r#"{"lexicon": 1, "id": "com.example.demo.getCar", "defs": {"main": {
            "type": "query", "output": {"encoding": "application/vnd.ipld.car"}}}}"#,
    ),
    (
        "subscribeThings.json",
        r##"{"lexicon": 1, "id": "com.example.demo.subscribeThings", "defs": {
            "main": {"type": "subscription",
                "parameters": {"type": "params", "properties": {"cursor": {"type": "integer"}}},
                "message": {"schema": {"type": "union", "refs": ["#thing"]}},
                "errors": [{"name": "FutureCursor"}]},
            "thing": {"type": "object", "required": ["seq"], "properties": {"seq": {"type": "integer"}}}}}"##,
    ),
    (
        "thing.json",
        r#"{"lexicon": 1, "id": "com.example.other.thing", "defs": {"main": {
            "type": "record", "key": "tid", "record": {"type": "object", "properties": {}}}}}"#,
    ),
];

fn sample() -> Catalog {
    match Catalog::from_json_strs(DOCS.iter().copied()) {
        Ok(c) => c,
        Err(e) => panic!("sample lexicons: {e}"),
    }
}

#[test]
fn names() {
    assert_eq!(trait_name("com.atproto.repo"), "ComAtprotoRepo");
    assert_eq!(trait_name("app.bsky.unspecced"), "AppBskyUnspecced");
    assert_eq!(method_name("createRecord"), "create_record");
    assert_eq!(method_name("getPostThreadV2"), "get_post_thread_v2");
    assert_eq!(auth_type_name("createRecord"), "CreateRecordAuth");
}

#[test]
fn namespaces_and_kinds() {
    let catalog = sample();
    let ns = namespaces(&catalog);
    assert_eq!(ns.keys().collect::<Vec<_>>(), ["com.example.demo"]);
    let methods = &ns["com.example.demo"];
    let kinds: Vec<(&str, MethodKind, BodyKind, BodyKind)> = methods
        .iter()
        .map(|m| (m.name.as_str(), m.kind, m.input, m.output))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "getCar",
                MethodKind::Query,
                BodyKind::None,
                BodyKind::Binary
            ),
            (
                "getThing",
                MethodKind::Query,
                BodyKind::None,
                BodyKind::Json
            ),
            (
                "putThing",
                MethodKind::Procedure,
                BodyKind::Json,
                BodyKind::None
            ),
            (
                "subscribeThings",
                MethodKind::Subscription,
                BodyKind::None,
                BodyKind::None
            ),
            (
                "uploadThing",
                MethodKind::Procedure,
                BodyKind::Binary,
                BodyKind::Json
            ),
        ]
    );
}

#[test]
fn emitted_routes() {
    let catalog = sample();
    let names = Names::new(&catalog, "crate");
    let ns = namespaces(&catalog);
    let source =
        match namespace_routes(&names, "crate", "com.example.demo", &ns["com.example.demo"]) {
            Ok(s) => s,
            Err(e) => panic!("emission failed: {e}"),
        };
    insta::assert_snapshot!(source);
}

#[test]
fn vendored_lexicons_emit() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../lexicons");
    let catalog = match Catalog::from_dir(&dir) {
        Ok(c) => c,
        Err(e) => panic!("vendored lexicons: {e}"),
    };
    let names = Names::new(&catalog, "crate");
    let all = match atproto_codegen::routes::all_namespace_routes(&catalog, &names, "crate") {
        Ok(a) => a,
        Err(e) => panic!("emission failed: {e}"),
    };
    let repo = &all["com.atproto.repo"];
    assert!(repo.contains("pub trait ComAtprotoRepo: crate::xrpc::XrpcState"));
    assert!(repo.contains("type CreateRecordAuth: crate::xrpc::XrpcAuth<Self>;"));
    assert!(repo.contains("crate::xrpc::BinaryInputCodec(\"*/*\")"));
    let sync = &all["com.atproto.sync"];
    assert!(sync.contains("crate::xrpc::subscription("));
    assert!(sync.contains("crate::xrpc::BinaryOutputCodec(\"application/vnd.ipld.car\")"));
    let methods: usize = namespaces(&catalog).values().map(Vec::len).sum();
    assert!(methods > 300, "{methods} methods");
}
