//! Round trips through the generated types, and the runtime behaviour of
//! unions, enums, nullable fields and errors.

use serde_json::{json, Value as Json};

use crate::lex::Nullable;
use crate::lexicons::com::atproto::repo::{put_record, strong_ref};

fn parse<T: serde::de::DeserializeOwned>(j: &Json) -> T {
    match serde_json::from_value(j.clone()) {
        Ok(v) => v,
        Err(e) => panic!("does not parse: {e}\n{j:#}"),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Json {
    match serde_json::to_value(v) {
        Ok(j) => j,
        Err(e) => panic!("does not serialize: {e}"),
    }
}

/// Parse into `T` and serialize back to the same JSON; also through the
/// atproto data model (DAG-CBOR form).
fn round_trip<T: serde::Serialize + serde::de::DeserializeOwned>(j: &Json) -> T {
    let v: T = parse(j);
    assert_eq!(&to_json(&v), j, "JSON round trip");
    let model = match crate::data::to_value(&v) {
        Ok(m) => m,
        Err(e) => panic!("to data model: {e}"),
    };
    let expected = match crate::data::Value::from_json(j) {
        Ok(m) => m,
        Err(e) => panic!("fixture is not atproto data: {e}"),
    };
    assert_eq!(model, expected, "data model round trip");
    let cbor = crate::data::to_dag_cbor(&model);
    assert!(matches!(crate::data::from_dag_cbor(&cbor), Ok(ref back) if *back == model));
    v
}

const CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
#[cfg(feature = "app-bsky")]
const BLOB_CID: &str = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy";

#[test]
fn nullable_optional_field_distinguishes_absent_null_and_value() {
    let base = json!({
        "repo": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        "collection": "app.bsky.actor.profile",
        "rkey": "self",
        "record": {"$type": "app.bsky.actor.profile", "displayName": "x"},
    });
    let absent: put_record::Input = round_trip(&base);
    assert_eq!(absent.swap_record, None);

    let mut with_null = base.clone();
    with_null["swapRecord"] = Json::Null;
    let null: put_record::Input = round_trip(&with_null);
    assert_eq!(null.swap_record, Some(Nullable::Null));

    let mut with_value = base;
    with_value["swapRecord"] = json!(CID);
    let value: put_record::Input = round_trip(&with_value);
    assert!(matches!(value.swap_record, Some(Nullable::Value(ref c)) if c.as_str() == CID));
}

#[test]
fn extra_fields_are_kept() {
    let j =
        json!({"uri": "at://did:plc:abc/app.bsky.feed.post/3k2a", "cid": CID, "note": {"x": 1}});
    let r: strong_ref::Main = round_trip(&j);
    assert_eq!(r.extra_data.len(), 1);
    assert!(r.extra_data.contains_key("note"));
}

#[test]
fn invalid_formats_are_rejected() {
    let j = json!({"uri": "not an at-uri", "cid": CID});
    assert!(serde_json::from_value::<strong_ref::Main>(j).is_err());
}

#[test]
fn errors_map_names() {
    assert_eq!(put_record::Error::InvalidSwap.as_str(), "InvalidSwap");
    assert_eq!(
        "InvalidSwap".parse::<put_record::Error>(),
        Ok(put_record::Error::InvalidSwap)
    );
    assert_eq!(
        put_record::Error::from("RateLimitExceeded"),
        put_record::Error::Other("RateLimitExceeded".into())
    );
    assert_eq!(put_record::Error::KNOWN_VALUES, ["InvalidSwap"]);
    assert_eq!(put_record::NSID, "com.atproto.repo.putRecord");
}

#[test]
fn open_string_enum() {
    use put_record::OutputValidationStatus as S;
    let v: S = parse(&json!("valid"));
    assert_eq!(v, S::Valid);
    let other: S = parse(&json!("maybe"));
    assert_eq!(other, S::Other("maybe".into()));
    assert_eq!(to_json(&other), json!("maybe"));
}

#[test]
fn closed_enum_rejects_other_values() {
    crate::lex_string_enum! {
        pub closed enum Mode { A = "a", B = "b" }
    }
    assert_eq!(parse::<Mode>(&json!("a")), Mode::A);
    assert!(serde_json::from_value::<Mode>(json!("c")).is_err());
    assert!("c".parse::<Mode>().is_err());
    assert_eq!(Mode::VALUES, ["a", "b"]);
}

#[test]
fn closed_union_rejects_other_types() {
    use crate::lexicons::com::atproto::repo::apply_writes::{Input, InputWrites};
    let j = json!({
        "repo": "alice.test",
        "writes": [
            {"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": {"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2024-11-25T20:00:00Z"}},
            {"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": "3k2akfmbxy32c"}
        ]
    });
    let input: Input = round_trip(&j);
    assert!(matches!(input.writes[0], InputWrites::Create(_)));
    assert!(matches!(input.writes[1], InputWrites::Delete(_)));
    let other = json!({"$type": "com.atproto.repo.applyWrites#upsert", "collection": "x.y.z"});
    assert!(serde_json::from_value::<InputWrites>(other).is_err());
}

#[test]
fn embedded_catalog_loads() {
    let catalog = crate::lex::catalog();
    assert_eq!(catalog.len(), crate::lex::LEXICON_SOURCES.len());
    assert!(catalog.record("app.bsky.feed.post").is_some());
    assert!(catalog.record("com.atproto.lexicon.schema").is_some());
}

#[test]
fn subscription_message_union() {
    use crate::lexicons::com::atproto::sync::subscribe_repos::Message;
    let j = json!({
        "$type": "com.atproto.sync.subscribeRepos#identity",
        "seq": 42,
        "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
        "time": "2024-11-25T20:00:00.000Z",
        "handle": "alice.test",
    });
    let m: Message = round_trip(&j);
    assert!(matches!(m, Message::Identity(_)));
    assert_eq!(m.type_name(), "com.atproto.sync.subscribeRepos#identity");
    // Unknown message types are kept.
    let j = json!({"$type": "com.atproto.sync.subscribeRepos#future", "seq": 1});
    let m: Message = round_trip(&j);
    assert!(matches!(m, Message::Unknown(_)));
    assert_eq!(m.type_name(), "com.atproto.sync.subscribeRepos#future");
    // A listed type that does not match its schema is an error, not Unknown.
    let bad = json!({"$type": "com.atproto.sync.subscribeRepos#identity", "seq": "x"});
    let err = serde_json::from_value::<Message>(bad)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|e| e.contains("com.atproto.sync.subscribeRepos#identity")),
        "{err:?}"
    );
    // No `$type`.
    assert!(serde_json::from_value::<Message>(json!({"seq": 1})).is_err());
}

#[cfg(feature = "app-bsky")]
mod bsky {
    use super::*;
    use crate::lex::LexRecord;
    use crate::lexicons::app::bsky::{actor::profile, embed, feed::post, richtext::facet};

    fn post_json() -> Json {
        json!({
            "$type": "app.bsky.feed.post",
            "text": "hello @alice.test, see https://example.com 🦋",
            "createdAt": "2024-11-25T20:00:00.123Z",
            "langs": ["en", "pt-BR"],
            "facets": [
                {
                    "index": {"byteStart": 6, "byteEnd": 17},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz"}]
                },
                {
                    "index": {"byteStart": 23, "byteEnd": 42},
                    "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com"}]
                }
            ],
            "reply": {
                "root": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3k2akfmbxy32c", "cid": CID},
                "parent": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3k2akfmbxy32c", "cid": CID}
            },
            "embed": {
                "$type": "app.bsky.embed.images",
                "images": [{
                    "alt": "a butterfly",
                    "image": {"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/jpeg", "size": 123456},
                    "aspectRatio": {"width": 1200, "height": 800}
                }]
            },
            "labels": {"$type": "com.atproto.label.defs#selfLabels", "values": [{"val": "nudity"}]},
            "tags": ["rust"],
            "via": "some-client",
            "clientData": {"draft": false, "n": 3}
        })
    }

    #[test]
    fn post_round_trips() {
        let j = post_json();
        let p: post::Record = round_trip(&j);
        assert_eq!(p.text, "hello @alice.test, see https://example.com 🦋");
        assert!(matches!(p.embed, Some(post::RecordEmbed::Images(_))));
        let facets = p.facets.as_deref().unwrap_or_default();
        assert_eq!(facets.len(), 2);
        assert!(matches!(
            facets[0].features.first(),
            Some(facet::MainFeatures::Mention(_))
        ));
        // Undeclared fields are kept; `$type` is written once.
        assert!(p.extra_data.contains_key("via"));
        assert!(p.extra_data.contains_key("clientData"));
        assert_eq!(<post::Record as LexRecord>::NSID, "app.bsky.feed.post");
        assert_eq!(<post::Record as LexRecord>::KEY, "tid");
        let text = match serde_json::to_string(&p) {
            Ok(t) => t,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(text.matches("\"$type\":\"app.bsky.feed.post\"").count(), 1);
        assert!(text.starts_with("{\"$type\":\"app.bsky.feed.post\""));
    }

    #[test]
    fn post_built_in_code_gets_its_type() {
        let p = post::Record {
            created_at: match "2024-11-25T20:00:00Z".parse() {
                Ok(d) => d,
                Err(e) => panic!("{e}"),
            },
            embed: None,
            entities: None,
            facets: None,
            labels: None,
            langs: None,
            reply: None,
            tags: None,
            text: "hi".into(),
            extra_data: Default::default(),
        };
        assert_eq!(
            to_json(&p),
            json!({"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-11-25T20:00:00Z"})
        );
    }

    #[test]
    fn record_with_media_and_unknown_embed() {
        let mut j = post_json();
        j["embed"] = json!({
            "$type": "app.bsky.embed.recordWithMedia",
            "record": {
                "$type": "app.bsky.embed.record",
                "record": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3k2akfmbxy32c", "cid": CID}
            },
            "media": {
                "$type": "app.bsky.embed.external",
                "external": {"uri": "https://example.com", "title": "Example", "description": ""}
            }
        });
        let p: post::Record = round_trip(&j);
        match &p.embed {
            Some(post::RecordEmbed::RecordWithMedia(rwm)) => {
                assert!(matches!(
                    rwm.media,
                    embed::record_with_media::MainMedia::External(_)
                ));
            }
            other => panic!("wrong embed: {other:?}"),
        }
        // An embed type from the future is kept verbatim.
        j["embed"] = json!({"$type": "app.bsky.embed.hologram", "depth": 3});
        let p: post::Record = round_trip(&j);
        assert!(matches!(p.embed, Some(post::RecordEmbed::Unknown(_))));
        // A listed embed type with a bad shape is an error.
        j["embed"] = json!({"$type": "app.bsky.embed.images", "images": "nope"});
        assert!(serde_json::from_value::<post::Record>(j).is_err());
    }

    #[test]
    fn profile_round_trips() {
        let j = json!({
            "$type": "app.bsky.actor.profile",
            "displayName": "Alice",
            "description": "I write Rust.\nShe/her",
            "avatar": {"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": 9000},
            "banner": {"cid": BLOB_CID, "mimeType": "image/jpeg"},
            "pinnedPost": {"uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3k2akfmbxy32c", "cid": CID},
            "createdAt": "2023-04-01T00:00:00.000Z",
            "somethingNew": [1, 2, 3]
        });
        let p: profile::Record = round_trip(&j);
        assert_eq!(p.display_name.as_deref(), Some("Alice"));
        assert!(matches!(p.banner, Some(crate::data::BlobRef::Legacy(_))));
        assert_eq!(<profile::Record as LexRecord>::KEY, "literal:self");
    }

    #[test]
    fn cyclic_thread_view_deserializes() {
        use crate::lexicons::app::bsky::feed::defs::{ThreadViewPost, ThreadViewPostParent};
        let post = |rkey: &str| {
            json!({
                "uri": format!("at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/{rkey}"),
                "cid": CID,
                "author": {"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "alice.test"},
                "record": {"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2024-11-25T20:00:00Z"},
                "indexedAt": "2024-11-25T20:00:01Z"
            })
        };
        let j = json!({
            "post": post("3k2akfmbxy32c"),
            "parent": {
                "$type": "app.bsky.feed.defs#threadViewPost",
                "post": post("3k2akfmbxy32b"),
                "parent": {"$type": "app.bsky.feed.defs#notFoundPost", "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3k2akfmbxy32a", "notFound": true}
            }
        });
        let t: ThreadViewPost = round_trip(&j);
        match t.parent.as_ref() {
            Some(ThreadViewPostParent::ThreadViewPost(p)) => {
                assert!(matches!(
                    p.parent.as_ref(),
                    Some(ThreadViewPostParent::NotFoundPost(_))
                ));
            }
            other => panic!("wrong parent: {other:?}"),
        }
    }
}
