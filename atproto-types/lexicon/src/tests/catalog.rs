//! Catalog loading and reference resolution.

use serde_json::json;

use super::fixtures::*;
use crate::*;

fn build_errors(docs: &[serde_json::Value]) -> Vec<String> {
    let mut b = Catalog::builder();
    for (i, d) in docs.iter().enumerate() {
        b.add_json(&format!("doc{i}.json"), d);
    }
    match b.build() {
        Ok(_) => Vec::new(),
        Err(e) => e.errors().map(ToString::to_string).collect(),
    }
}

#[test]
fn resolves_every_ref_kind() {
    let cat = post_catalog();
    assert_eq!(cat.len(), 5);
    assert_eq!(cat.def_count(), 8);
    assert!(cat.warnings().is_empty(), "{:?}", cat.warnings());

    // Lookups: `x` and `x#main` are the same.
    let main = cat.resolve("com.example.feed.post").expect("main");
    assert_eq!(cat.resolve("com.example.feed.post#main"), Some(main));
    assert!(matches!(
        cat.get_def("com.example.feed.post"),
        Some(LexDef::Record(_))
    ));
    assert!(matches!(
        cat.get_def("com.example.feed.defs#tag"),
        Some(LexDef::String(_))
    ));
    assert!(cat.get_def("com.example.feed.defs").is_none());
    assert!(cat.get_def("com.example.nope#x").is_none());
    assert_eq!(
        cat.def_ref(main).map(|r| r.to_string()).as_deref(),
        Some("com.example.feed.post")
    );

    let record = cat.record("com.example.feed.post").expect("record");
    let props = &record.record.properties;
    let resolved = |name: &str| match props.get(name) {
        Some(LexType::Ref(r)) => r.resolved,
        _ => None,
    };
    // Local ref.
    assert_eq!(
        resolved("reply"),
        cat.resolve("com.example.feed.post#replyRef")
    );
    // Cross-document refs inside arrays.
    let Some(LexType::Array(tags)) = props.get("tags") else {
        panic!()
    };
    let LexType::Ref(tag) = tags.items.as_ref() else {
        panic!()
    };
    assert_eq!(tag.resolved, cat.resolve("com.example.feed.defs#tag"));
    // Union refs meaning `#main`.
    let Some(LexType::Union(embed)) = props.get("embed") else {
        panic!()
    };
    assert_eq!(
        embed.refs[0].resolved,
        cat.resolve("com.example.embed.images#main")
    );
    assert_eq!(
        embed.refs[1].resolved,
        cat.resolve("com.example.embed.external")
    );

    // Every ref in the catalog is resolved.
    for (_, _, nd) in cat.defs() {
        nd.def
            .for_each_ref(|r, _| assert!(r.resolved.is_some(), "{} unresolved", r.target));
    }
}

#[test]
fn ids_do_not_depend_on_load_order() {
    let docs = post_docs();
    let mut reversed = docs.clone();
    reversed.reverse();
    let a = catalog(&docs);
    let b = catalog(&reversed);
    let ids_a: Vec<&str> = a.docs().iter().map(|d| d.id.as_str()).collect();
    let ids_b: Vec<&str> = b.docs().iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids_a, ids_b);
    assert_eq!(
        a.resolve("com.example.feed.defs#tag"),
        b.resolve("com.example.feed.defs#tag")
    );
    assert_eq!(a.docs(), b.docs());
}

#[test]
fn unknown_refs_name_document_and_path() {
    let mut docs = post_docs();
    docs[0]["defs"]["main"]["record"]["properties"]["embed"]["refs"] = json!([
        "com.example.embed.images",
        "com.example.embed.external",
        "com.example.embed.nope"
    ]);
    docs[0]["defs"]["main"]["record"]["properties"]["reply"] =
        json!({"type": "ref", "ref": "#missing"});
    let e = build_errors(&docs);
    assert_eq!(
        e,
        vec![
            "com.example.feed.post: defs.main.record.properties.embed.refs[2]: unknown ref com.example.embed.nope",
            "com.example.feed.post: defs.main.record.properties.reply.ref: unknown ref com.example.feed.post#missing",
        ]
    );

    // The same in lenient mode: warnings, and the refs stay unresolved.
    let mut b = Catalog::builder().allow_unresolved_refs(true);
    for d in &docs {
        b.add_json("x.json", d);
    }
    let cat = b.build().expect("lenient");
    assert_eq!(cat.warnings().len(), 2);
    assert!(cat.warnings()[0]
        .to_string()
        .starts_with("warning: com.example.feed.post: "));
}

#[test]
fn ref_target_kinds_are_checked() {
    let base = |props: serde_json::Value| {
        vec![
            json!({"lexicon": 1, "id": "com.example.a", "defs": {
                "main": {"type": "object", "properties": props},
                "tok": {"type": "token"},
                "str": {"type": "string"},
                "obj": {"type": "object", "properties": {}}}}),
            json!({"lexicon": 1, "id": "com.example.q", "defs": {"main": {"type": "query"}}}),
            json!({"lexicon": 1, "id": "com.example.r", "defs": {"main": {"type": "record", "key": "tid",
                "record": {"type": "object", "properties": {}}}}}),
        ]
    };
    let cases = [
        (
            json!({"x": {"type": "ref", "ref": "#tok"}}),
            Some("points to a token"),
        ),
        (
            json!({"x": {"type": "ref", "ref": "com.example.q"}}),
            Some("points to a query definition"),
        ),
        (
            json!({"x": {"type": "union", "refs": ["#str"]}}),
            Some("union variants must be objects or records"),
        ),
        (
            json!({"x": {"type": "union", "refs": ["#tok"]}}),
            Some("points to a token"),
        ),
        (json!({"x": {"type": "ref", "ref": "#str"}}), None),
        (json!({"x": {"type": "ref", "ref": "com.example.r"}}), None),
        (
            json!({"x": {"type": "union", "refs": ["#obj", "com.example.r"]}}),
            None,
        ),
    ];
    for (props, expected) in cases {
        let e = build_errors(&base(props.clone()));
        match expected {
            Some(msg) => assert!(e.iter().any(|x| x.contains(msg)), "{props}: {e:?}"),
            None => assert!(e.is_empty(), "{props}: {e:?}"),
        }
    }
}

#[test]
fn duplicates_and_bad_json_are_errors() {
    let d = json!({"lexicon": 1, "id": "com.example.a", "defs": {"x": {"type": "integer"}}});
    let e = build_errors(&[d.clone(), d]);
    assert!(
        e.iter().any(|x| x.contains("duplicate lexicon id")),
        "{e:?}"
    );

    let mut b = Catalog::builder();
    b.add_json_str("broken.json", "{\"lexicon\": 1,");
    let e = b.build().expect_err("broken").to_string();
    assert!(e.contains("broken.json: not valid JSON"), "{e}");
}

#[test]
fn errors_from_several_documents_are_all_reported() {
    let e = build_errors(&[
        json!({"lexicon": 1, "id": "com.example.a", "defs": {"main": {"type": "query", "input": {}}}}),
        json!({"lexicon": 1, "id": "bad", "defs": {"x": {"type": "integer"}}}),
        json!({"lexicon": 1, "id": "com.example.c", "defs": {"x": {"type": "ref", "ref": "#y"}}}),
    ]);
    assert!(
        e.iter()
            .any(|x| x.starts_with("com.example.a: defs.main.input")),
        "{e:?}"
    );
    assert!(e.iter().any(|x| x.starts_with("doc1.json: id:")), "{e:?}");
    assert!(
        e.iter().any(|x| x.starts_with("com.example.c: defs.x:")),
        "{e:?}"
    );
}

#[test]
fn ref_graph() {
    let cat = post_catalog();
    let graph = cat.ref_graph();
    assert_eq!(graph.len(), 5);
    let post: Vec<&str> = graph["com.example.feed.post"].iter().copied().collect();
    assert_eq!(
        post,
        vec![
            "com.example.embed.external",
            "com.example.embed.images",
            "com.example.feed.defs",
            "com.example.repo.strongRef",
        ]
    );
    assert!(graph["com.example.feed.defs"].is_empty());
    let id = cat.doc_id("com.example.embed.images").expect("doc");
    assert_eq!(cat.doc_dependencies(id).count(), 0);
    let closure = cat.doc_closure(cat.doc_id("com.example.feed.post").expect("doc"));
    assert_eq!(closure.len(), 5);

    let main = cat.resolve("com.example.feed.post").expect("main");
    let deps: Vec<String> = cat
        .def_dependencies(main)
        .into_iter()
        .filter_map(|d| cat.def_ref(d))
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        deps,
        vec![
            "com.example.feed.post#replyRef",
            "com.example.embed.images",
            "com.example.embed.external",
            "com.example.feed.defs#tag",
        ]
    );
}

#[test]
fn loads_directory_trees() {
    let dir = std::env::temp_dir().join(format!("atproto-lexicon-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for doc in post_docs() {
        let id = doc["id"].as_str().expect("id").to_owned();
        let path = dir.join(Catalog::conventional_path(&id));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    }
    std::fs::write(dir.join("README.md"), "not a lexicon").expect("write");
    let cat = Catalog::from_dir(&dir).expect("loads");
    assert_eq!(cat.len(), 5);
    let source = cat.source_of("com.example.feed.post").expect("source");
    assert!(source.ends_with("com/example/feed/post.json"), "{source}");

    // A broken file is reported by path.
    std::fs::write(dir.join("com/broken.json"), "[]").expect("write");
    let e = Catalog::from_dir(&dir).expect_err("broken").to_string();
    assert!(
        e.contains("com/broken.json: a lexicon document must be a JSON object"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);

    let e = Catalog::from_dir(dir.join("missing"))
        .expect_err("missing")
        .to_string();
    assert!(e.contains("can not read"), "{e}");
}

#[test]
fn catalog_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Catalog>();
}

#[test]
fn add_doc_reresolves() {
    let docs = post_docs();
    let first = catalog(&docs);
    let mut b = Catalog::builder();
    for d in first.docs() {
        b.add_doc(d.clone());
    }
    let second = b.build().expect("rebuild");
    assert_eq!(first.docs(), second.docs());
}
