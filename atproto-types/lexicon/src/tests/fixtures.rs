//! Small lexicon sets shared by the tests.

use serde_json::{json, Value as Json};

use crate::{parse_document, Catalog, Diagnostic, LexDoc};

/// Parse one document, returning it (if valid) and all diagnostics.
pub fn parse(json: Json) -> (Option<LexDoc>, Vec<Diagnostic>) {
    parse_document(&json, "test.json")
}

/// The error diagnostics of a document, rendered.
pub fn errors_of(json: Json) -> Vec<String> {
    parse(json)
        .1
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect()
}

/// The warning diagnostics of a valid document, rendered.
pub fn warnings_of(json: Json) -> Vec<String> {
    let (doc, diags) = parse(json);
    assert!(doc.is_some(), "document rejected: {diags:?}");
    diags.iter().map(ToString::to_string).collect()
}

/// A document with a single def named `name`.
pub fn doc_with(name: &str, def: Json) -> Json {
    json!({"lexicon": 1, "id": "com.example.test", "defs": {name: def}})
}

/// A catalog from JSON documents.
pub fn catalog(docs: &[Json]) -> Catalog {
    let mut b = Catalog::builder();
    for (i, d) in docs.iter().enumerate() {
        b.add_json(&format!("doc{i}.json"), d);
    }
    b.build()
        .unwrap_or_else(|e| panic!("catalog does not load: {e}"))
}

/// A catalog holding one document with `main` and `other` defs of the
/// given schemas (for single-rule validation tests).
pub fn schema_catalog(schema: Json) -> Catalog {
    catalog(&[json!({"lexicon": 1, "id": "com.example.schema", "defs": {
        "main": {"type": "object", "properties": {"f": schema}},
    }})])
}

pub fn post_docs() -> Vec<Json> {
    vec![
        json!({"lexicon": 1, "id": "com.example.feed.post", "description": "A post.", "defs": {
            "main": {"type": "record", "key": "tid", "description": "Record containing a post.",
                "record": {"type": "object", "required": ["text", "createdAt"], "nullable": ["note"],
                    "properties": {
                        "text": {"type": "string", "maxLength": 3000, "maxGraphemes": 300,
                                 "description": "The primary post content."},
                        "createdAt": {"type": "string", "format": "datetime"},
                        "note": {"type": "string"},
                        "embed": {"type": "union", "refs": [
                            "com.example.embed.images", "com.example.embed.external"]},
                        "langs": {"type": "array", "maxLength": 3,
                                  "items": {"type": "string", "format": "language"}},
                        "reply": {"type": "ref", "ref": "#replyRef"},
                        "tags": {"type": "array", "items": {"type": "ref", "ref": "com.example.feed.defs#tag"}},
                        "kind": {"type": "string", "knownValues": ["a", "com.example.feed.defs#token"]},
                        "flag": {"type": "boolean", "const": true},
                        "attachment": {"type": "blob", "accept": ["image/*", "video/mp4"], "maxSize": 1000},
                        "anyBlob": {"type": "blob", "accept": ["*/*"]},
                        "raw": {"type": "bytes", "maxLength": 4, "minLength": 1},
                        "link": {"type": "cid-link"},
                        "extra": {"type": "unknown"},
                        "choice": {"type": "union", "refs": ["#replyRef"], "closed": true},
                        "count": {"type": "integer", "minimum": 0, "maximum": 10},
                        "mode": {"type": "string", "enum": ["x", "y"]},
                        "fixed": {"type": "string", "const": "k"},
                    }}},
            "replyRef": {"type": "object", "required": ["root"], "properties": {
                "root": {"type": "ref", "ref": "com.example.repo.strongRef"}}},
        }}),
        json!({"lexicon": 1, "id": "com.example.feed.defs", "defs": {
            "tag": {"type": "string", "maxLength": 10},
            "token": {"type": "token", "description": "A token."},
        }}),
        json!({"lexicon": 1, "id": "com.example.embed.images", "defs": {
            "main": {"type": "object", "required": ["images"], "properties": {
                "images": {"type": "array", "maxLength": 4, "items": {"type": "ref", "ref": "#image"}}}},
            "image": {"type": "object", "required": ["image", "alt"], "properties": {
                "image": {"type": "blob", "accept": ["image/*"], "maxSize": 1000000},
                "alt": {"type": "string", "maxGraphemes": 1000}}},
        }}),
        json!({"lexicon": 1, "id": "com.example.embed.external", "defs": {
            "main": {"type": "object", "required": ["uri"], "properties": {
                "uri": {"type": "string", "format": "uri"}}},
        }}),
        json!({"lexicon": 1, "id": "com.example.repo.strongRef", "defs": {
            "main": {"type": "object", "required": ["uri", "cid"], "properties": {
                "uri": {"type": "string", "format": "at-uri"},
                "cid": {"type": "string", "format": "cid"}}},
        }}),
    ]
}

pub fn post_catalog() -> Catalog {
    catalog(&post_docs())
}

/// A raw-codec CID (valid as a blob ref everywhere).
pub const RAW_CID: &str = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity";
/// A DAG-CBOR CID.
pub const CBOR_CID: &str = "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq";
