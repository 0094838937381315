//! Lexicon vectors: `lexicon/lexicon-valid.json` documents must load and
//! `lexicon/lexicon-invalid.json` documents must be rejected; every file of
//! `lexicon/catalog/` must load; `lexicon/record-data-valid.json` records
//! must validate against `catalog/record.json` and
//! `lexicon/record-data-invalid.json` records must not. Each test collects
//! all failures before asserting.

use std::path::PathBuf;

use atproto_types::data::Value;
use atproto_types::lexicon::{parse_document, Catalog, LexDoc};
use atproto_types::syntax::Nsid;

use super::common::{read, read_json, vectors_dir};

/// The `[{name, ...}]` cases of a vector file.
fn cases(rel: &str) -> Vec<serde_json::Value> {
    match read_json(rel) {
        serde_json::Value::Array(cases) => {
            assert!(!cases.is_empty(), "{rel} holds no vectors");
            cases
        }
        other => panic!("{rel}: expected an array of cases, found {other}"),
    }
}

fn name_of(case: &serde_json::Value) -> String {
    case.get("name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("<unnamed>")
        .to_owned()
}

#[test]
fn lexicon_documents_valid() {
    let mut failures = Vec::new();
    let cases = cases("lexicon/lexicon-valid.json");
    for case in &cases {
        let name = name_of(case);
        let Some(doc) = case.get("lexicon") else {
            failures.push(format!("{name}: vector has no `lexicon`"));
            continue;
        };
        match LexDoc::from_json(doc) {
            Ok(parsed) => {
                // The IR serialises back to a document that reads the same.
                let json = serde_json::to_value(&parsed).unwrap_or_default();
                match LexDoc::from_json(&json) {
                    Ok(again) if again == parsed => {}
                    Ok(_) => failures.push(format!("{name}: serde round trip changed the IR")),
                    Err(e) => failures.push(format!("{name}: re-reading the IR failed: {e}")),
                }
            }
            Err(e) => failures.push(format!("{name}: rejected: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} valid lexicon documents failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn lexicon_documents_invalid() {
    let mut failures = Vec::new();
    let cases = cases("lexicon/lexicon-invalid.json");
    for case in &cases {
        let name = name_of(case);
        let Some(doc) = case.get("lexicon") else {
            failures.push(format!("{name}: vector has no `lexicon`"));
            continue;
        };
        let (parsed, diagnostics) = parse_document(doc, &name);
        if parsed.is_some() || !diagnostics.iter().any(|d| d.is_error()) {
            failures.push(format!("{name}: accepted"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid lexicon documents were accepted:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn catalog_files() -> Vec<PathBuf> {
    let dir = vectors_dir().join("lexicon/catalog");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no catalog files in {}", dir.display());
    files
}

/// Every catalog document is valid on its own, and the set loads as a
/// catalog (references outside the set, like `app.bsky.actor.defs`, are
/// allowed to stay unresolved here).
#[test]
fn lexicon_catalog_files_load() {
    let mut failures = Vec::new();
    let files = catalog_files();
    let mut builder = Catalog::builder().allow_unresolved_refs(true);
    for path in &files {
        let rel = format!(
            "lexicon/catalog/{}",
            path.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        let text = read(&rel);
        match LexDoc::from_json_str(&text) {
            Ok(_) => {}
            Err(e) => failures.push(format!("{rel}: {e}")),
        }
        builder.add_json_str(&rel, &text);
    }
    match builder.build() {
        Ok(catalog) => {
            if catalog.len() != files.len() {
                failures.push(format!(
                    "catalog holds {} documents, expected {}",
                    catalog.len(),
                    files.len()
                ));
            }
            for expected in [
                "example.lexicon.permissionset",
                "example.lexicon.procedure",
                "example.lexicon.query",
                "example.lexicon.record",
                "example.lexicon.subscription",
            ] {
                if catalog.doc_by_nsid(expected).is_none() {
                    failures.push(format!("{expected} missing from the catalog"));
                }
            }
            // Expected warnings only: the reference into app.bsky (not
            // loaded here) and the wildcard `lxm` the spec does not support
            // in lexicon permission sets.
            for w in catalog.warnings() {
                if !w.message.starts_with("unknown ref app.bsky.")
                    && !w.message.starts_with("a wildcard lxm")
                {
                    failures.push(format!("unexpected warning: {w}"));
                }
            }
        }
        Err(e) => failures.push(format!("catalog failed to load: {e}")),
    }
    assert!(
        failures.is_empty(),
        "catalog files:\n{}",
        failures.join("\n")
    );
}

/// With the vendored lexicon set alongside, the catalog files load strictly:
/// every reference (including `app.bsky.actor.defs#preferences`) resolves.
#[test]
fn lexicon_catalog_files_load_with_vendored_set() {
    let lexicons = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../lexicons");
    let mut builder = Catalog::builder();
    builder.add_dir(&lexicons);
    for path in catalog_files() {
        builder.add_file(&path);
    }
    let catalog = builder
        .build()
        .unwrap_or_else(|e| panic!("catalog files + lexicons/ do not load: {e}"));
    let procedure = catalog
        .doc_id("example.lexicon.procedure")
        .unwrap_or_else(|| panic!("example.lexicon.procedure missing"));
    let deps: Vec<&str> = catalog
        .doc_dependencies(procedure)
        .filter_map(|d| catalog.doc(d))
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(deps, vec!["app.bsky.actor.defs"]);
}

fn record_catalog() -> Catalog {
    Catalog::from_json_strs([(
        "lexicon/catalog/record.json",
        read("lexicon/catalog/record.json").as_str(),
    )])
    .unwrap_or_else(|e| panic!("lexicon/catalog/record.json does not load: {e}"))
}

fn collection() -> Nsid {
    "example.lexicon.record"
        .parse()
        .unwrap_or_else(|e| panic!("NSID: {e}"))
}

#[test]
fn lexicon_record_data_valid() {
    let catalog = record_catalog();
    let collection = collection();
    let mut failures = Vec::new();
    let cases = cases("lexicon/record-data-valid.json");
    for case in &cases {
        let name = name_of(case);
        let Some(data) = case.get("data") else {
            failures.push(format!("{name}: vector has no `data`"));
            continue;
        };
        let value = match Value::from_json(data) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: not valid atproto data: {e}"));
                continue;
            }
        };
        let before = value.clone();
        if let Err(e) = catalog.validate_record(&collection, &value) {
            failures.push(format!("{name}: rejected: {e}"));
        }
        if value != before {
            failures.push(format!("{name}: validation changed the value"));
        }
        if let Some(rkey) = case.get("rkey").and_then(serde_json::Value::as_str) {
            if let Err(e) = catalog.validate_rkey(&collection, rkey) {
                failures.push(format!("{name}: record key rejected: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} valid records failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn lexicon_record_data_invalid() {
    let catalog = record_catalog();
    let collection = collection();
    let mut failures = Vec::new();
    let cases = cases("lexicon/record-data-invalid.json");
    for case in &cases {
        let name = name_of(case);
        let Some(data) = case.get("data") else {
            failures.push(format!("{name}: vector has no `data`"));
            continue;
        };
        // Data that is not even valid atproto data is rejected before any
        // lexicon is consulted; that counts as a rejection too.
        let Ok(value) = Value::from_json(data) else {
            continue;
        };
        if catalog.validate_record(&collection, &value).is_ok() {
            failures.push(format!("{name}: accepted"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid records were accepted:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The invalid records are rejected by the lexicon validator itself (not
/// only by the data-model reader), with a path to the problem.
#[test]
fn lexicon_record_data_invalid_paths() {
    let catalog = record_catalog();
    let collection = collection();
    let mut failures = Vec::new();
    let mut by_validator = 0usize;
    for case in cases("lexicon/record-data-invalid.json") {
        let name = name_of(&case);
        let Some(Ok(value)) = case.get("data").map(Value::from_json) else {
            continue;
        };
        match catalog.validate_record(&collection, &value) {
            Ok(()) => failures.push(format!("{name}: accepted")),
            Err(errors) => {
                by_validator += 1;
                if errors.iter().any(|e| e.path.is_empty()) {
                    failures.push(format!("{name}: an error has no path: {errors}"));
                }
            }
        }
    }
    assert!(by_validator > 0, "no invalid record reached the validator");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
