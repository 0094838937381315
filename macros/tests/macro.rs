//! `lexicons!` on the sample documents in `tests/lexicons/`: a record
//! referencing `com.atproto.repo.strongRef` and `com.atproto.label.defs`
//! (types of `atproto_types`), and a defs document with a self-reference,
//! a token and knownValues.

atproto_macros::lexicons!("tests/lexicons");

/// The same documents generated inside a module.
mod nested {
    atproto_macros::lexicons!("tests/lexicons", crate_root = "crate::nested");
}

/// A document in a namespace of the vendored lexicons (`com.atproto.repo`),
/// next to the vendored `com.atproto.repo.strongRef` it references.
mod shared {
    atproto_macros::lexicons!("tests/shared_lexicons", crate_root = "crate::shared",);
}

use atproto_types::lex::LexRecord;
use atproto_types::lexicon::Catalog;
use atproto_types::lexicons::com::atproto::{label, repo::strong_ref};
use lexicons::com::example::{defs, thing};
use serde_json::{json, Value as Json};

const URI: &str = "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.example.thing/3k2akfmbxy32c";
const CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

fn sample() -> Json {
    json!({
        "$type": "com.example.thing",
        "name": "a thing",
        "subject": {"uri": URI, "cid": CID},
        "labels": {
            "$type": "com.atproto.label.defs#selfLabels",
            "values": [{"val": "spoiler"}]
        },
        "tags": ["one", "two"],
        "detail": {
            "kind": "com.example.defs#big",
            "parent": {"kind": "tiny"},
            "related": [{"uri": URI, "cid": CID}]
        },
        "createdAt": "2024-05-01T12:00:00.000Z",
        "somethingNew": {"kept": true}
    })
}

#[test]
fn record_round_trips_through_json() {
    let j = sample();
    let record: thing::Record = serde_json::from_value(j.clone()).expect("parses");
    assert_eq!(record.name, "a thing");
    assert_eq!(record.tags.as_deref().map(<[String]>::len), Some(2));

    // Refs to vendored lexicons are the atproto_types types themselves.
    let subject: &strong_ref::Main = &record.subject;
    assert_eq!(subject.uri.as_str(), URI);
    let labels = record.labels.as_ref().expect("labels");
    assert!(matches!(labels, thing::RecordLabels::SelfLabels(l)
        if l.values.len() == 1 && l.values[0].val == "spoiler"));
    let _: Option<&label::defs::SelfLabels> = match labels {
        thing::RecordLabels::SelfLabels(l) => Some(l),
        _ => None,
    };

    let detail: &defs::Detail = record.detail.as_ref().expect("detail");
    assert_eq!(detail.kind, Some(defs::DetailKind::Big));
    let parent = detail.parent.as_deref().expect("parent");
    assert_eq!(
        parent.kind,
        Some(defs::DetailKind::Other("tiny".to_owned()))
    );
    assert_eq!(defs::BIG, "com.example.defs#big");

    let back = serde_json::to_value(&record).expect("serializes");
    assert_eq!(back, j);
}

#[test]
fn record_metadata() {
    assert_eq!(<thing::Record as LexRecord>::NSID, "com.example.thing");
    assert_eq!(<thing::Record as LexRecord>::KEY, "tid");
    // Required fields are required.
    let mut missing = sample();
    missing.as_object_mut().map(|o| o.remove("subject"));
    assert!(serde_json::from_value::<thing::Record>(missing).is_err());
}

#[test]
fn nested_invocation() {
    let record: nested::lexicons::com::example::thing::Record =
        serde_json::from_value(sample()).expect("parses");
    let detail: &nested::lexicons::com::example::defs::Detail =
        record.detail.as_ref().expect("detail");
    assert!(detail.parent.is_some());
    assert_eq!(serde_json::to_value(&record).expect("serializes"), sample());
}

#[test]
fn sources_build_a_catalog_with_the_vendored_lexicons() {
    let nsids: Vec<&str> = lexicons::LEXICON_SOURCES.iter().map(|(n, _)| *n).collect();
    assert_eq!(nsids, ["com.example.defs", "com.example.thing"]);
    let on_disk = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/lexicons/com/example/thing.json"
    ))
    .expect("read");
    assert_eq!(lexicons::LEXICON_SOURCES[1].1, on_disk);

    let mut builder = Catalog::builder();
    for (nsid, text) in atproto_types::lex::LEXICON_SOURCES
        .iter()
        .chain(lexicons::LEXICON_SOURCES)
    {
        builder.add_json_str(nsid, text);
    }
    let catalog = builder.build().expect("one catalog");
    let collection = "com.example.thing".parse().expect("nsid");
    let value = atproto_types::data::Value::from_json_object(&sample()).expect("data");
    assert!(catalog.validate_record(&collection, &value).is_ok());

    let mut bad = sample();
    bad["tags"] = json!(["1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    let value = atproto_types::data::Value::from_json_object(&bad).expect("data");
    let errors = catalog
        .validate_record(&collection, &value)
        .expect_err("too many tags");
    assert!(errors.to_string().starts_with("tags: "), "{errors}");
}

#[test]
fn document_in_a_vendored_namespace() {
    let j = json!({"about": {"uri": URI, "cid": CID}, "text": "hi"});
    let note: shared::lexicons::com::atproto::repo::note::Main =
        serde_json::from_value(j.clone()).expect("parses");
    let about: &strong_ref::Main = &note.about;
    assert_eq!(about.cid.as_str(), CID);
    assert_eq!(serde_json::to_value(&note).expect("serializes"), j);
    assert_eq!(shared::lexicons::LEXICON_SOURCES.len(), 1);
}
