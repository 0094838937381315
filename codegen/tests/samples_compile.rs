//! Compiles the code generated for the sample lexicons
//! (`tests/samples_generated/`, kept current by `tests/samples.rs`) against
//! the `atproto-types` runtime, and exercises it.

#[path = "samples_generated/lexicons/mod.rs"]
#[allow(dead_code, clippy::large_enum_variant)]
mod lexicons;

use atproto_types::lex::{LexRecord, Nullable};
use lexicons::com::example::{
    any_key, by_nsid, defs, get_repo, get_thing_v2, profile, subscribe_things, thing, type_,
    upload_thing,
};
use serde_json::{json, Value as Json};

const CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(j: Json) -> T {
    let v: T = match serde_json::from_value(j.clone()) {
        Ok(v) => v,
        Err(e) => panic!("does not parse: {e}\n{j:#}"),
    };
    match serde_json::to_value(&v) {
        Ok(back) => assert_eq!(back, j),
        Err(e) => panic!("does not serialize: {e}"),
    }
    v
}

#[test]
fn constants() {
    assert_eq!(get_thing_v2::NSID, "com.example.getThingV2");
    assert_eq!(upload_thing::INPUT_ENCODING, "*/*");
    assert_eq!(get_repo::OUTPUT_ENCODING, "application/vnd.ipld.car");
    assert_eq!(type_::MAIN, "com.example.type");
    assert_eq!(defs::HOT, "com.example.defs#hot");
    assert_eq!(defs::NSID_TOKEN, "com.example.defs#nsid");
    assert_eq!(<thing::post::Record as LexRecord>::KEY, "tid");
    assert_eq!(<profile::Record as LexRecord>::KEY, "literal:self");
    assert_eq!(<by_nsid::Record as LexRecord>::KEY, "nsid");
    assert_eq!(<any_key::Record as LexRecord>::KEY, "any");
}

#[test]
fn keywords_nullable_and_enums() {
    let j = json!({
        "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        "count": -100,
        "type": "t",
        "ref": "r",
        "self": "s",
        "match": 3,
        "extraData": "collides",
        "nullableRequired": null,
        "nullableOptional": null,
        "sort": "com.example.defs#hot",
        "mode": "b",
        "inline": {"kind": "!hide", "nested": {"$type": "com.example.defs#option", "value": 1}},
        "unlisted": true
    });
    let e: defs::Everything = round_trip(j.clone());
    assert_eq!(e.type_, "t");
    assert_eq!(e.extra_data_2.as_deref(), Some("collides"));
    assert!(e.extra_data.contains_key("unlisted"));
    assert_eq!(e.nullable_required, None);
    assert_eq!(e.nullable_optional, Some(Nullable::Null));
    assert_eq!(e.sort, Some(defs::EverythingSort::Hot));
    assert_eq!(e.mode, Some(defs::EverythingMode::B));
    let inline = e.inline.as_ref().and_then(|i| i.kind.clone());
    assert_eq!(inline, Some(defs::EverythingInlineKind::Hide));

    let mut bad = j;
    bad["mode"] = json!("c");
    assert!(serde_json::from_value::<defs::Everything>(bad).is_err());
}

#[test]
fn cyclic_and_ambiguous_unions() {
    let j = json!({
        "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.example.thing.post/3k2akfmbxy32c",
        "parent": {
            "$type": "com.example.thing.post#view",
            "post": {
                "$type": "com.example.thing.post",
                "text": "hi",
                "createdAt": "2024-11-25T20:00:00Z",
                "embed": {"$type": "org.other.strongRef", "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/com.example.thing.post/3k2akfmbxy32b", "cid": CID}
            }
        },
        "node": {"next": {"next": {}}, "other": {"back": {}}}
    });
    let v: thing::view::View = round_trip(j);
    match &v.parent {
        Some(thing::view::ViewParent::PostView(p)) => {
            assert!(matches!(
                p.post.embed,
                Some(thing::post::RecordEmbed::StrongRef(_))
            ));
        }
        other => panic!("wrong parent {other:?}"),
    }
}

#[test]
fn closed_and_empty_unions() {
    use thing::post::RecordLabels;
    let ok = json!({"$type": "com.example.defs#option", "value": 2});
    let _: RecordLabels = round_trip(ok);
    let other = json!({"$type": "com.example.defs#params", "x": 2});
    assert!(serde_json::from_value::<RecordLabels>(other).is_err());

    // An open union with no members keeps everything as Unknown.
    let any = json!({"$type": "x.y.z", "a": [1, 2]});
    let u: defs::EmptyOpenOpen = round_trip(any);
    assert_eq!(u.type_name(), "x.y.z");
}

#[test]
fn params_messages_and_errors() {
    let p: get_thing_v2::Params = round_trip(json!({"uris": [], "limit": 5}));
    assert!(p.tags.is_empty());
    assert_eq!(p.limit, Some(5));
    let empty = subscribe_things::Params::default();
    assert_eq!(empty.cursor, None);
    let j = json!({"$type": "com.example.subscribeThings#commit", "seq": 5, "blocks": {"$bytes": "AAEC"}, "since": null});
    let m: subscribe_things::Message = round_trip(j);
    match m {
        subscribe_things::Message::Commit(c) => {
            assert_eq!(c.blocks.0, vec![0, 1, 2]);
            assert_eq!(c.since, Some(Nullable::Null));
        }
        other => panic!("wrong message {other:?}"),
    }
    assert_eq!(get_thing_v2::Error::OtherError.as_str(), "Other");
    assert_eq!(
        get_thing_v2::Error::from("Other"),
        get_thing_v2::Error::OtherError
    );
    assert_eq!(
        get_thing_v2::Error::from("Nope"),
        get_thing_v2::Error::Other("Nope".into())
    );
    assert!(upload_thing::Error::KNOWN_VALUES.is_empty());
}
