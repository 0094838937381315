//! The OpenAPI document of the vendored lexicons: every query and
//! procedure has a path, and every `$ref` resolves inside the document.

use std::path::Path;

use atproto_codegen::openapi::{dangling_refs, openapi, operation_counts};
use atproto_lexicon::{Catalog, LexDef};
use serde_json::Value;

fn vendored() -> Catalog {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lexicons");
    match Catalog::from_dir(&dir) {
        Ok(c) => c,
        Err(e) => panic!("vendored lexicons do not load: {e}"),
    }
}

#[test]
fn every_method_has_a_path() {
    let catalog = vendored();
    let doc = openapi(&catalog);
    let paths = doc["paths"].as_object().expect("paths object");
    let (mut queries, mut procedures) = (0, 0);
    for doc_ in catalog.docs() {
        let nsid = doc_.id.as_str();
        let key = format!("/xrpc/{nsid}");
        match doc_.main() {
            Some(LexDef::Query(_)) => {
                queries += 1;
                let op = &paths[&key]["get"];
                assert_eq!(op["operationId"], nsid, "{key}");
            }
            Some(LexDef::Procedure(_)) => {
                procedures += 1;
                let op = &paths[&key]["post"];
                assert_eq!(op["operationId"], nsid, "{key}");
            }
            _ => {}
        }
    }
    let counts = operation_counts(&doc);
    assert!(queries > 100 && procedures > 100);
    // Subscriptions are GET paths too.
    let subscriptions = catalog
        .docs()
        .iter()
        .filter(|d| matches!(d.main(), Some(LexDef::Subscription(_))))
        .count();
    assert_eq!(counts.get("get"), Some(&(queries + subscriptions)));
    assert_eq!(counts.get("post"), Some(&procedures));
    assert_eq!(paths.len(), queries + procedures + subscriptions);
}

#[test]
fn all_refs_resolve() {
    let doc = openapi(&vendored());
    assert_eq!(doc["openapi"], "3.1.0");
    let dangling = dangling_refs(&doc);
    assert!(dangling.is_empty(), "dangling refs: {dangling:?}");
    // Component keys are valid OpenAPI names.
    for key in doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
    {
        assert!(
            key.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
            "{key}"
        );
    }
}

#[test]
fn shapes() {
    let doc = openapi(&vendored());
    let create = &doc["paths"]["/xrpc/com.atproto.repo.createRecord"]["post"];
    assert_eq!(create["tags"][0], "com.atproto.repo");
    let input = &create["requestBody"]["content"]["application/json"]["schema"];
    assert_eq!(input["type"], "object");
    assert!(input["required"]
        .as_array()
        .expect("required")
        .contains(&Value::from("repo")));
    assert_eq!(input["properties"]["repo"]["format"], "at-identifier");
    assert_eq!(
        create["responses"]["400"]["x-atproto-errors"][0]["name"],
        "InvalidSwap"
    );
    assert_eq!(
        create["responses"]["401"]["$ref"],
        "#/components/responses/AuthenticationRequired"
    );

    // Arrays are repeated keys.
    let get_posts = &doc["paths"]["/xrpc/app.bsky.feed.getPosts"]["get"];
    let uris = &get_posts["parameters"][0];
    assert_eq!(uris["name"], "uris");
    assert_eq!(uris["required"], true);
    assert_eq!(uris["explode"], true);
    assert_eq!(uris["schema"]["type"], "array");
    assert_eq!(uris["schema"]["items"]["format"], "at-uri");

    // Binary bodies.
    let upload = &doc["paths"]["/xrpc/com.atproto.repo.uploadBlob"]["post"];
    assert_eq!(
        upload["requestBody"]["content"]["*/*"]["schema"]["format"],
        "binary"
    );
    let get_repo = &doc["paths"]["/xrpc/com.atproto.sync.getRepo"]["get"];
    assert!(get_repo["responses"]["200"]["content"]["application/vnd.ipld.car"].is_object());

    // Records, unions, tokens.
    let schemas = &doc["components"]["schemas"];
    let post = &schemas["app.bsky.feed.post"];
    assert_eq!(post["properties"]["$type"]["const"], "app.bsky.feed.post");
    assert_eq!(post["properties"]["createdAt"]["format"], "date-time");
    assert_eq!(post["x-atproto-record-key"], "tid");
    let embed = &post["properties"]["embed"];
    assert_eq!(embed["discriminator"]["propertyName"], "$type");
    assert_eq!(
        embed["discriminator"]["mapping"]["app.bsky.embed.images"],
        "#/components/schemas/app.bsky.embed.images"
    );
    assert_eq!(
        schemas["app.bsky.feed.defs.postView"]["properties"]["$type"]["const"],
        "app.bsky.feed.defs#postView"
    );
    assert_eq!(
        schemas["com.atproto.moderation.defs.reasonSpam"]["const"],
        "com.atproto.moderation.defs#reasonSpam"
    );
    // Subscriptions.
    let sub = &doc["paths"]["/xrpc/com.atproto.sync.subscribeRepos"]["get"];
    assert!(sub["responses"]["101"].is_object());
    assert!(sub["x-atproto-subscription"]["messages"]
        .as_array()
        .expect("messages")
        .contains(&Value::from("com.atproto.sync.subscribeRepos#commit")));
}
