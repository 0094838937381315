//! The whole vendored lexicon set (`lexicons/` at the workspace root) loads
//! as one catalog with zero errors, and its records validate sample data.

use std::path::PathBuf;

use atproto_data::Value;
use atproto_lexicon::{Catalog, LexDef};

fn lexicons_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../lexicons")
}

fn load() -> Catalog {
    Catalog::from_dir(lexicons_dir()).unwrap_or_else(|e| panic!("lexicons/ does not load:\n{e}"))
}

#[test]
fn every_vendored_lexicon_loads() {
    let catalog = load();
    let files = count_json(&lexicons_dir());
    assert_eq!(catalog.len(), files, "one document per JSON file");
    assert!(catalog.len() >= 300, "only {} documents", catalog.len());

    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for (_, _, nd) in catalog.defs() {
        *kinds.entry(nd.def.type_name()).or_default() += 1;
    }
    println!(
        "loaded {} documents, {} definitions, {} warnings",
        catalog.len(),
        catalog.def_count(),
        catalog.warnings().len()
    );
    println!("definitions by type: {kinds:?}");
    for w in catalog.warnings() {
        println!("{w}");
    }
    assert!(
        catalog
            .defs()
            .all(|(_, _, nd)| !matches!(nd.def, LexDef::Unsupported(_))),
        "unsupported definition types in the vendored set"
    );

    // Every reference resolved.
    for (_, doc, nd) in catalog.defs() {
        nd.def.for_each_ref(|r, _| {
            assert!(
                r.resolved.is_some(),
                "{}#{}: {} unresolved",
                doc.id,
                nd.name,
                r.target
            )
        });
    }
}

fn count_json(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            n += count_json(&p);
        } else if p.extension().is_some_and(|e| e == "json") {
            n += 1;
        }
    }
    n
}

fn nsid(s: &str) -> atproto_syntax::Nsid {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn bluesky_records_validate() {
    let catalog = load();
    let post = Value::from_json_str(
        r#"{"$type": "app.bsky.feed.post", "text": "hello 🌍", "createdAt": "2024-05-01T12:00:00.000Z",
            "langs": ["en"],
            "facets": [{"index": {"byteStart": 0, "byteEnd": 5},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "hello"}]}],
            "embed": {"$type": "app.bsky.embed.images", "images": [{
                "alt": "a picture",
                "image": {"$type": "blob", "ref": {"$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"},
                          "mimeType": "image/jpeg", "size": 12345},
                "aspectRatio": {"width": 4, "height": 3}}]}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let collection = nsid("app.bsky.feed.post");
    catalog
        .validate_record(&collection, &post)
        .unwrap_or_else(|e| panic!("post rejected: {e}"));
    assert!(catalog.validate_rkey(&collection, "3kznmn7xqxl22").is_ok());

    let long = "x".repeat(301);
    let bad = Value::from_json_str(&format!(
        r#"{{"$type": "app.bsky.feed.post", "text": "{long}", "createdAt": "2024-05-01T12:00:00.000Z",
            "embed": {{"$type": "app.bsky.embed.images", "images": [{{
                "alt": 5,
                "image": {{"$type": "blob", "ref": {{"$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"}},
                          "mimeType": "text/plain", "size": 12345}}}}]}}}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let errors = catalog
        .validate_record(&collection, &bad)
        .expect_err("invalid post");
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        vec![
            "embed.images[0].alt: expected a string, found integer",
            "embed.images[0].image: blob mimeType \"text/plain\" is not accepted (accept: image/*)",
            "text: string is longer than maxGraphemes (300)",
        ]
    );

    let profile = Value::from_json_str(
        r#"{"$type": "app.bsky.actor.profile", "displayName": "Alice", "description": "hi"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let profile_nsid = nsid("app.bsky.actor.profile");
    catalog
        .validate_record(&profile_nsid, &profile)
        .unwrap_or_else(|e| panic!("profile rejected: {e}"));
    assert!(catalog.validate_rkey(&profile_nsid, "self").is_ok());
    assert!(catalog.validate_rkey(&profile_nsid, "other").is_err());
}

#[test]
fn ref_graph_covers_authorities() {
    let catalog = load();
    let graph = catalog.ref_graph();
    assert_eq!(graph.len(), catalog.len());
    // app.bsky.feed.post refers to embeds and richtext.
    let post = &graph["app.bsky.feed.post"];
    assert!(post.contains("app.bsky.embed.images"), "{post:?}");
    assert!(post.contains("app.bsky.richtext.facet"), "{post:?}");
    // com.atproto never depends on app.bsky.
    for (from, to) in &graph {
        if from.starts_with("com.atproto.") {
            assert!(
                to.iter().all(|t| t.starts_with("com.atproto.")),
                "{from} -> {to:?}"
            );
        }
    }
}
