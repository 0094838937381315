#![cfg(feature = "app-bsky")]
//! Property tests: the generated types (typed parse) and the generic
//! lexicon validator (`lex::catalog()`) agree about records.
//!
//! Records of `app.bsky.feed.post` (facets, reply, embeds: images, external,
//! record, recordWithMedia and unlisted open-union types; langs, selfLabels,
//! tags), `app.bsky.actor.profile`, `app.bsky.graph.follow`,
//! `app.bsky.feed.like`, `app.bsky.feed.threadgate` and
//! `app.bsky.feed.postgate`, plus the `com.atproto.repo.applyWrites` input
//! (the closed union), are generated from a small schema description
//! written out by hand below (an oracle independent of the validator's IR).
//! Valid documents stay within every constraint and carry extra, undeclared
//! fields at every object level. Mutated documents are a valid document
//! with exactly one thing wrong.
//!
//! For every document (valid or mutated), with "typed parse" meaning both
//! `serde_json::from_value::<T>` on the JSON itself and on the JSON of its
//! data-model `Value`:
//!
//! 1. generic-valid ⇒ typed parse succeeds, and typed → JSON → `Value`
//!    equals the original `Value` (extra fields and `$type`s survive);
//! 2. typed parse fails ⇒ generic validation fails (or the JSON is not
//!    atproto data at all).
//!
//! 3. For mutated documents the class of the mutation decides the outcome
//!    exactly:
//!    * **structural** (wrong data-model type, required field missing or
//!      `null`, bad string format, union `$type` rules: missing `$type`,
//!      unlisted `$type` in a closed union, a listed `$type` whose body is
//!      malformed; blob shape): the generic validator rejects with errors of
//!      exactly the expected [`ValidationErrorKind`] and the typed parse
//!      rejects too;
//!    * **constraint** (byte lengths, grapheme counts, integer ranges, array
//!      lengths, blob MIME type and size): the generic validator rejects
//!      with only `Constraint` errors, and the typed parse *accepts* (the
//!      generated structs do not check constraints) and holds the value
//!      faithfully (typed → JSON → `Value` is the original `Value`);
//!    * **data model** (non-integral floats, integers beyond i64, malformed
//!      `$link`/`$bytes`, a `$type: blob` map that is not a blob, a `$type`
//!      that is not a non-empty string): `Value::from_json` rejects, so there
//!      is nothing to validate, and the typed parse of the JSON rejects too.
//!
//! Disagreements found earlier each have a minimal example at the end of
//! this file, asserting the behaviour the properties require.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use atproto_types::data::Value;
use atproto_types::lexicon::{ValidationErrorKind, ValidationErrors};
use atproto_types::lexicons::app::bsky::{actor::profile, feed, graph::follow};
use atproto_types::lexicons::com::atproto::repo::apply_writes;
use base64::Engine;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

// ---------------------------------------------------------------------------
// The two sides.

/// What is generated: records of these collections, and the applyWrites
/// input (whose `writes` items are the only closed union).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Post,
    Profile,
    Follow,
    Like,
    Threadgate,
    Postgate,
    ApplyWrites,
}

impl Kind {
    fn nsid(self) -> &'static str {
        match self {
            Kind::Post => "app.bsky.feed.post",
            Kind::Profile => "app.bsky.actor.profile",
            Kind::Follow => "app.bsky.graph.follow",
            Kind::Like => "app.bsky.feed.like",
            Kind::Threadgate => "app.bsky.feed.threadgate",
            Kind::Postgate => "app.bsky.feed.postgate",
            Kind::ApplyWrites => "com.atproto.repo.applyWrites",
        }
    }

    fn is_record(self) -> bool {
        self != Kind::ApplyWrites
    }
}

/// Parse into `T` and serialize back to JSON.
fn typed_as<T: Serialize + DeserializeOwned>(j: &Json) -> Result<Json, String> {
    let t: T = serde_json::from_value(j.clone()).map_err(|e| e.to_string())?;
    match serde_json::to_value(&t) {
        Ok(back) => Ok(back),
        Err(e) => panic!("a parsed typed value does not serialize: {e}"),
    }
}

/// The typed side: parse `j` as the generated type of `kind` and write it
/// back as JSON.
fn typed(kind: Kind, j: &Json) -> Result<Json, String> {
    match kind {
        Kind::Post => typed_as::<feed::post::Record>(j),
        Kind::Profile => typed_as::<profile::Record>(j),
        Kind::Follow => typed_as::<follow::Record>(j),
        Kind::Like => typed_as::<feed::like::Record>(j),
        Kind::Threadgate => typed_as::<feed::threadgate::Record>(j),
        Kind::Postgate => typed_as::<feed::postgate::Record>(j),
        Kind::ApplyWrites => typed_as::<apply_writes::Input>(j),
    }
}

/// The generic side: validate a data-model value against the lexicon.
fn generic(kind: Kind, v: &Value) -> Result<(), ValidationErrors> {
    let catalog = atproto_types::lex::catalog();
    if kind.is_record() {
        let nsid = match kind.nsid().parse() {
            Ok(n) => n,
            Err(e) => panic!("{} is not an NSID: {e}", kind.nsid()),
        };
        catalog.validate_record(&nsid, v)
    } else {
        catalog.validate_input(kind.nsid(), v)
    }
}

/// Everything both sides say about one JSON document.
struct Outcome {
    /// `Value::from_json`.
    data: Result<Value, String>,
    /// Generic validation (when the JSON is atproto data).
    generic: Option<Result<(), ValidationErrors>>,
    /// Typed parse of the JSON as given, written back.
    typed_json: Result<Json, String>,
    /// Typed parse of the JSON of the data-model value, written back.
    typed_value: Option<Result<Json, String>>,
}

fn run(kind: Kind, j: &Json) -> Outcome {
    let data = Value::from_json(j).map_err(|e| e.to_string());
    let generic = data.as_ref().ok().map(|v| generic(kind, v));
    let typed_value = data.as_ref().ok().map(|v| typed(kind, &v.to_json()));
    Outcome {
        data,
        generic,
        typed_json: typed(kind, j),
        typed_value,
    }
}

/// The typed output read back as a data-model value, compared with the
/// original one.
fn same_value(back: &Json, original: &Value) -> Result<(), TestCaseError> {
    match Value::from_json(back) {
        Ok(v) => {
            prop_assert_eq!(&v, original, "typed round trip changed the value");
            Ok(())
        }
        Err(e) => Err(TestCaseError::fail(format!(
            "typed output is not atproto data: {e}\n{back:#}"
        ))),
    }
}

/// Properties 1 and 2, for any document.
fn check_agreement(j: &Json, o: &Outcome) -> Result<(), TestCaseError> {
    if let (Ok(value), Some(Ok(()))) = (&o.data, &o.generic) {
        match (&o.typed_json, &o.typed_value) {
            (Ok(from_json), Some(Ok(from_value))) => {
                same_value(from_json, value)?;
                same_value(from_value, value)?;
            }
            (a, b) => {
                return Err(TestCaseError::fail(format!(
                    "generic-valid but typed parse failed: {a:?} / {b:?}\n{j:#}"
                )))
            }
        }
    }
    if let Err(e) = &o.typed_json {
        prop_assert!(
            o.data.is_err() || matches!(o.generic, Some(Err(_))),
            "typed parse failed ({e}) but the generic validator accepts\n{j:#}"
        );
    }
    if let Some(Err(e)) = &o.typed_value {
        prop_assert!(
            matches!(o.generic, Some(Err(_))),
            "typed parse of the value failed ({e}) but the generic validator accepts\n{j:#}"
        );
    }
    Ok(())
}

/// A valid document: the generic validator accepts it (so property 1 is
/// exercised on every case), and properties 1 and 2 hold.
fn check_valid(kind: Kind, j: &Json) -> Result<(), TestCaseError> {
    let o = run(kind, j);
    match &o.generic {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            return Err(TestCaseError::fail(format!(
                "generated valid document rejected: {e}\n{j:#}"
            )))
        }
        None => {
            return Err(TestCaseError::fail(format!(
                "generated valid document is not atproto data: {:?}\n{j:#}",
                o.data.err()
            )))
        }
    }
    check_agreement(j, &o)
}

/// Properties 1 and 2, and property 3 for the mutation's class.
fn check_mutated(kind: Kind, bad: &Bad) -> Result<(), TestCaseError> {
    let j = &bad.json;
    let o = run(kind, j);
    check_agreement(j, &o)?;
    let what = &bad.what;
    match bad.class {
        Class::Structural(expected) => {
            let errors = match &o.generic {
                Some(Err(e)) => e,
                Some(Ok(())) => {
                    return Err(TestCaseError::fail(format!(
                        "structural mutation `{what}` accepted by the generic validator\n{j:#}"
                    )))
                }
                None => {
                    return Err(TestCaseError::fail(format!(
                        "structural mutation `{what}` is not atproto data: {:?}\n{j:#}",
                        o.data.err()
                    )))
                }
            };
            prop_assert!(
                errors.iter().all(|e| e.kind == expected),
                "`{}`: expected only {:?} errors, got {}\n{:#}",
                what,
                expected,
                errors,
                j
            );
            prop_assert!(
                o.typed_json.is_err(),
                "structural mutation `{}` accepted by the typed parse\n{:#}",
                what,
                j
            );
            prop_assert!(
                matches!(o.typed_value, Some(Err(_))),
                "structural mutation `{}` accepted by the typed parse of the value\n{:#}",
                what,
                j
            );
        }
        Class::Constraint => {
            let (value, errors) = match (&o.data, &o.generic) {
                (Ok(v), Some(Err(e))) => (v, e),
                _ => {
                    return Err(TestCaseError::fail(format!(
                        "constraint mutation `{what}` not rejected by the generic validator \
                         (data: {:?})\n{j:#}",
                        o.data.as_ref().err()
                    )))
                }
            };
            prop_assert!(
                errors
                    .iter()
                    .all(|e| e.kind == ValidationErrorKind::Constraint),
                "`{}`: expected only constraint errors, got {}\n{:#}",
                what,
                errors,
                j
            );
            match &o.typed_json {
                Ok(back) => same_value(back, value)?,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "constraint mutation `{what}` rejected by the typed parse ({e}); \
                         typed structs do not check constraints\n{j:#}"
                    )))
                }
            }
        }
        Class::DataModel => {
            prop_assert!(
                o.data.is_err(),
                "data-model mutation `{}` read as atproto data\n{:#}",
                what,
                j
            );
            prop_assert!(
                o.typed_json.is_err(),
                "data-model mutation `{}` accepted by the typed parse\n{:#}",
                what,
                j
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The schemas, written out from the lexicons (only what is generated).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fmt {
    AtIdentifier,
    AtUri,
    Cid,
    Datetime,
    Did,
    Language,
    Nsid,
    RecordKey,
    Uri,
}

#[derive(Debug)]
enum S {
    Str {
        fmt: Option<Fmt>,
        max_len: Option<usize>,
        max_graphemes: Option<usize>,
    },
    Int {
        min: Option<i64>,
        max: Option<i64>,
    },
    Bool,
    Blob {
        accept: &'static [&'static str],
        max_size: i64,
    },
    Arr {
        items: Box<S>,
        max: Option<usize>,
    },
    Obj(Obj),
    Union {
        closed: bool,
        variants: Vec<(&'static str, Obj)>,
    },
    Unknown,
}

#[derive(Debug)]
struct Obj {
    fields: Vec<Field>,
}

#[derive(Debug)]
struct Field {
    name: &'static str,
    required: bool,
    schema: S,
}

fn string() -> S {
    S::Str {
        fmt: None,
        max_len: None,
        max_graphemes: None,
    }
}

fn text(max_len: Option<usize>, max_graphemes: Option<usize>) -> S {
    S::Str {
        fmt: None,
        max_len,
        max_graphemes,
    }
}

fn fmt(f: Fmt) -> S {
    S::Str {
        fmt: Some(f),
        max_len: None,
        max_graphemes: None,
    }
}

fn int(min: Option<i64>, max: Option<i64>) -> S {
    S::Int { min, max }
}

fn blob(accept: &'static [&'static str], max_size: i64) -> S {
    S::Blob { accept, max_size }
}

fn arr(items: S, max: Option<usize>) -> S {
    S::Arr {
        items: Box::new(items),
        max,
    }
}

fn open_union(variants: Vec<(&'static str, Obj)>) -> S {
    S::Union {
        closed: false,
        variants,
    }
}

fn req(name: &'static str, schema: S) -> Field {
    Field {
        name,
        required: true,
        schema,
    }
}

fn opt(name: &'static str, schema: S) -> Field {
    Field {
        name,
        required: false,
        schema,
    }
}

fn obj(fields: Vec<Field>) -> Obj {
    Obj { fields }
}

fn strong_ref() -> S {
    S::Obj(obj(vec![
        req("uri", fmt(Fmt::AtUri)),
        req("cid", fmt(Fmt::Cid)),
    ]))
}

fn self_labels() -> S {
    open_union(vec![(
        "com.atproto.label.defs#selfLabels",
        obj(vec![req(
            "values",
            arr(
                S::Obj(obj(vec![req("val", text(Some(128), None))])),
                Some(10),
            ),
        )]),
    )])
}

fn embed_images() -> Obj {
    let aspect = obj(vec![
        req("width", int(Some(1), None)),
        req("height", int(Some(1), None)),
    ]);
    let image = obj(vec![
        req("alt", string()),
        req("image", blob(&["image/*"], 2_000_000)),
        opt("aspectRatio", S::Obj(aspect)),
    ]);
    obj(vec![req("images", arr(S::Obj(image), Some(4)))])
}

fn embed_external() -> Obj {
    obj(vec![req(
        "external",
        S::Obj(obj(vec![
            req("uri", fmt(Fmt::Uri)),
            req("title", string()),
            req("description", string()),
            opt("thumb", blob(&["image/*"], 1_000_000)),
            opt("associatedRefs", arr(strong_ref(), None)),
        ])),
    )])
}

fn embed_record() -> Obj {
    obj(vec![req("record", strong_ref())])
}

fn post() -> Obj {
    let facet = obj(vec![
        req(
            "index",
            S::Obj(obj(vec![
                req("byteStart", int(Some(0), None)),
                req("byteEnd", int(Some(0), None)),
            ])),
        ),
        req(
            "features",
            arr(
                open_union(vec![
                    (
                        "app.bsky.richtext.facet#mention",
                        obj(vec![req("did", fmt(Fmt::Did))]),
                    ),
                    (
                        "app.bsky.richtext.facet#link",
                        obj(vec![req("uri", fmt(Fmt::Uri))]),
                    ),
                    (
                        "app.bsky.richtext.facet#tag",
                        obj(vec![req("tag", text(Some(640), Some(64)))]),
                    ),
                ]),
                None,
            ),
        ),
    ]);
    let record_with_media = obj(vec![
        req("record", S::Obj(embed_record())),
        req(
            "media",
            open_union(vec![
                ("app.bsky.embed.images", embed_images()),
                ("app.bsky.embed.external", embed_external()),
            ]),
        ),
    ]);
    obj(vec![
        req("text", text(Some(3000), Some(300))),
        opt("facets", arr(S::Obj(facet), None)),
        opt(
            "reply",
            S::Obj(obj(vec![
                req("root", strong_ref()),
                req("parent", strong_ref()),
            ])),
        ),
        opt(
            "embed",
            open_union(vec![
                ("app.bsky.embed.images", embed_images()),
                ("app.bsky.embed.external", embed_external()),
                ("app.bsky.embed.record", embed_record()),
                ("app.bsky.embed.recordWithMedia", record_with_media),
            ]),
        ),
        opt("langs", arr(fmt(Fmt::Language), Some(3))),
        opt("labels", self_labels()),
        opt("tags", arr(text(Some(640), Some(64)), Some(8))),
        req("createdAt", fmt(Fmt::Datetime)),
    ])
}

fn profile() -> Obj {
    const IMAGES: &[&str] = &["image/png", "image/jpeg"];
    obj(vec![
        opt("displayName", text(Some(640), Some(64))),
        opt("description", text(Some(2560), Some(256))),
        opt("pronouns", text(Some(200), Some(20))),
        opt("website", fmt(Fmt::Uri)),
        opt("avatar", blob(IMAGES, 1_000_000)),
        opt("banner", blob(IMAGES, 1_000_000)),
        opt("labels", self_labels()),
        opt("joinedViaStarterPack", strong_ref()),
        opt("pinnedPost", strong_ref()),
        opt("createdAt", fmt(Fmt::Datetime)),
    ])
}

fn follow() -> Obj {
    obj(vec![
        req("subject", fmt(Fmt::Did)),
        req("createdAt", fmt(Fmt::Datetime)),
        opt("via", strong_ref()),
    ])
}

fn like() -> Obj {
    obj(vec![
        req("subject", strong_ref()),
        req("createdAt", fmt(Fmt::Datetime)),
        opt("via", strong_ref()),
    ])
}

fn threadgate() -> Obj {
    obj(vec![
        req("post", fmt(Fmt::AtUri)),
        opt(
            "allow",
            arr(
                open_union(vec![
                    ("app.bsky.feed.threadgate#mentionRule", obj(vec![])),
                    ("app.bsky.feed.threadgate#followerRule", obj(vec![])),
                    ("app.bsky.feed.threadgate#followingRule", obj(vec![])),
                    (
                        "app.bsky.feed.threadgate#listRule",
                        obj(vec![req("list", fmt(Fmt::AtUri))]),
                    ),
                ]),
                Some(5),
            ),
        ),
        req("createdAt", fmt(Fmt::Datetime)),
        opt("hiddenReplies", arr(fmt(Fmt::AtUri), Some(300))),
    ])
}

fn postgate() -> Obj {
    obj(vec![
        req("createdAt", fmt(Fmt::Datetime)),
        req("post", fmt(Fmt::AtUri)),
        opt("detachedEmbeddingUris", arr(fmt(Fmt::AtUri), Some(50))),
        opt(
            "embeddingRules",
            arr(
                open_union(vec![("app.bsky.feed.postgate#disableRule", obj(vec![]))]),
                Some(5),
            ),
        ),
    ])
}

fn apply_writes_input() -> Obj {
    // `rkey` of `#create` also has maxLength 512, which the record-key
    // format implies; only the format is mutated.
    let create = obj(vec![
        req("collection", fmt(Fmt::Nsid)),
        opt("rkey", fmt(Fmt::RecordKey)),
        req("value", S::Unknown),
    ]);
    let update = obj(vec![
        req("collection", fmt(Fmt::Nsid)),
        req("rkey", fmt(Fmt::RecordKey)),
        req("value", S::Unknown),
    ]);
    let delete = obj(vec![
        req("collection", fmt(Fmt::Nsid)),
        req("rkey", fmt(Fmt::RecordKey)),
    ]);
    obj(vec![
        req("repo", fmt(Fmt::AtIdentifier)),
        opt("validate", S::Bool),
        req(
            "writes",
            arr(
                S::Union {
                    closed: true,
                    variants: vec![
                        ("com.atproto.repo.applyWrites#create", create),
                        ("com.atproto.repo.applyWrites#update", update),
                        ("com.atproto.repo.applyWrites#delete", delete),
                    ],
                },
                None,
            ),
        ),
        opt("swapCommit", fmt(Fmt::Cid)),
    ])
}

fn schema(kind: Kind) -> &'static Obj {
    static SCHEMAS: OnceLock<BTreeMap<&'static str, Obj>> = OnceLock::new();
    let all = SCHEMAS.get_or_init(|| {
        BTreeMap::from([
            (Kind::Post.nsid(), post()),
            (Kind::Profile.nsid(), profile()),
            (Kind::Follow.nsid(), follow()),
            (Kind::Like.nsid(), like()),
            (Kind::Threadgate.nsid(), threadgate()),
            (Kind::Postgate.nsid(), postgate()),
            (Kind::ApplyWrites.nsid(), apply_writes_input()),
        ])
    });
    match all.get(kind.nsid()) {
        Some(o) => o,
        None => panic!("no schema for {kind:?}"),
    }
}

// ---------------------------------------------------------------------------
// Valid values.

type Strat<T> = BoxedStrategy<T>;

fn one_of<T: std::fmt::Debug + 'static>(arms: Vec<Strat<T>>) -> Strat<T> {
    proptest::strategy::Union::new(arms).boxed()
}

fn cid_string(raw: bool) -> Strat<String> {
    any::<[u8; 8]>()
        .prop_map(move |b| {
            if raw {
                atproto_types::data::cid_for_raw(&b).to_string()
            } else {
                atproto_types::data::cid_for_dag_cbor(&b).to_string()
            }
        })
        .boxed()
}

fn domain() -> Strat<String> {
    "[a-z][a-z0-9]{0,8}\\.(com|org|test|social)".boxed()
}

fn did() -> Strat<String> {
    prop_oneof![
        "did:plc:[a-z2-7]{24}".boxed(),
        domain().prop_map(|d| format!("did:web:{d}")).boxed(),
    ]
    .boxed()
}

fn tid() -> Strat<String> {
    "[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}".boxed()
}

/// NSIDs that no generated union lists.
fn unlisted_nsid() -> Strat<String> {
    (
        "[a-z][a-z0-9]{0,8}",
        "[a-z][a-zA-Z0-9]{0,10}",
        "(#[a-z][a-zA-Z0-9]{0,6})?",
    )
        .prop_filter("#main is not a type name", |(_, _, frag)| frag != "#main")
        .prop_map(|(a, b, frag)| format!("org.{a}.{b}{frag}"))
        .boxed()
}

fn valid_fmt(f: Fmt) -> Strat<String> {
    match f {
        Fmt::Datetime => {
            let frac = prop_oneof![Just(String::new()), "\\.[0-9]{1,6}"];
            let tz = prop_oneof![
                Just("Z".to_owned()),
                (0u32..24, 0u32..60).prop_map(|(h, m)| format!("+{h:02}:{m:02}")),
                (0u32..24, 0u32..60)
                    .prop_filter("-00:00 is not allowed", |(h, m)| (*h, *m) != (0, 0))
                    .prop_map(|(h, m)| format!("-{h:02}:{m:02}")),
            ];
            (
                (1900u32..2100, 1u32..=12, 1u32..=28),
                (0u32..24, 0u32..60, 0u32..60),
                frac,
                tz,
            )
                .prop_map(|((y, mo, d), (h, mi, s), frac, tz)| {
                    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{tz}")
                })
                .boxed()
        }
        Fmt::Did => did(),
        Fmt::AtIdentifier => prop_oneof![did(), domain()].boxed(),
        Fmt::AtUri => {
            let authority = prop_oneof![did(), domain()];
            let collection = select(vec![
                "app.bsky.feed.post",
                "app.bsky.graph.list",
                "app.bsky.feed.generator",
            ]);
            (authority, collection, tid())
                .prop_map(|(a, c, k)| format!("at://{a}/{c}/{k}"))
                .boxed()
        }
        Fmt::Uri => (domain(), "[a-z0-9]{0,8}")
            .prop_map(|(d, p)| format!("https://{d}/{p}"))
            .boxed(),
        Fmt::Language => prop_oneof![
            "[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2})?".boxed(),
            select(vec!["i-klingon", "en-GB-oed", "x-private", "sgn-BE-FR"])
                .prop_map(str::to_owned)
                .boxed(),
        ]
        .boxed(),
        Fmt::Cid => cid_string(false),
        Fmt::Nsid => prop_oneof![
            select(vec!["app.bsky.feed.post", "app.bsky.actor.profile"]).prop_map(str::to_owned),
            "[a-z]{2,5}\\.[a-z]{2,8}\\.[a-z][a-zA-Z]{0,8}",
        ]
        .boxed(),
        Fmt::RecordKey => prop_oneof![
            tid(),
            Just("self".to_owned()),
            "[a-zA-Z0-9_~-][a-zA-Z0-9._:~-]{0,15}",
        ]
        .boxed(),
    }
}

/// Strings that are not of format `f`.
fn bad_fmt(f: Fmt) -> Vec<&'static str> {
    match f {
        Fmt::Datetime => vec![
            "2024-01-01",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "2024-02-30T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00-00:00",
            "2024-01-01t00:00:00z",
            "1985-04-12T23:20:50.Z",
            "now",
            "",
        ],
        Fmt::Did => vec![
            "did:plc",
            "did:",
            "plc:abc",
            "did:PLC:abc",
            "did:plc:abc:",
            "alice.test",
            "",
        ],
        Fmt::AtIdentifier => vec!["did:plc", "not an identifier", "alice", "", "@alice.test"],
        Fmt::AtUri => vec![
            "https://example.com/x",
            "at://",
            "did:plc:abc/app.bsky.feed.post/3k",
            "at://did:plc:abc/app.bsky.feed.post/3k 2",
            "",
        ],
        Fmt::Uri => vec![
            "not a uri",
            "example.com",
            "",
            "://x",
            "https://exa mple.com",
        ],
        Fmt::Language => vec!["e", "en_US", "123", "", "en-", "-en", "en--US"],
        Fmt::Cid => vec![
            "bafy",
            "not-a-cid",
            "",
            "QmNLei78zWmzUdbeRB3CiUfAizWUrbeeZh5K1rhAQKCh51",
        ],
        Fmt::Nsid => vec!["notnsid", "a..b", "1.2.3", "", "com.example.a-b#c"],
        Fmt::RecordKey => vec![".", "..", "a/b", "", "has space"],
    }
}

/// A cluster of 8 bytes that is one grapheme.
const THUMB: &str = "\u{1F44D}\u{1F3FD}";
/// A cluster of 25 bytes that is one grapheme.
const FAMILY: &str = "\u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F466}\u{200D}\u{1F466}";

fn valid_str(
    fmt: Option<Fmt>,
    max_len: Option<usize>,
    max_graphemes: Option<usize>,
) -> Strat<Json> {
    if let Some(f) = fmt {
        return valid_fmt(f).prop_map(Json::from).boxed();
    }
    // At most 4 bytes and one grapheme per character.
    let n = [Some(40), max_graphemes, max_len.map(|l| l / 4)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(40);
    let any_text = match proptest::string::string_regex(&format!("\\PC{{0,{n}}}")) {
        Ok(r) => r.boxed(),
        Err(e) => panic!("regex: {e}"),
    };
    let mut arms = vec![any_text];
    // Exactly at the limits.
    if let Some(g) = max_graphemes {
        if max_len.is_none_or(|l| THUMB.len() * g <= l) {
            arms.push(Just(THUMB.repeat(g)).boxed());
        }
    }
    if let (Some(l), None) = (max_len, max_graphemes) {
        arms.push(Just("a".repeat(l)).boxed());
    }
    one_of(arms).prop_map(Json::from).boxed()
}

fn valid_int(min: Option<i64>, max: Option<i64>) -> Strat<Json> {
    let lo = min.unwrap_or(i64::MIN);
    let hi = max.unwrap_or(i64::MAX);
    prop_oneof![(lo..=hi), Just(lo), Just(hi), (lo.max(0)..=hi.min(10_000))]
        .prop_map(Json::from)
        .boxed()
}

fn accepted_mime(accept: &'static [&'static str]) -> Strat<String> {
    one_of(
        accept
            .iter()
            .map(|p| match p.strip_suffix("/*") {
                Some(ty) => "[a-z][a-z0-9.+-]{0,8}"
                    .prop_map(move |sub| format!("{ty}/{sub}"))
                    .boxed(),
                None => Just((*p).to_owned()).boxed(),
            })
            .collect(),
    )
}

/// Valid blobs, with undeclared fields; a legacy blob's `cid` is a CID or
/// only CID syntax (base32 that need not decode).
fn valid_blob(accept: &'static [&'static str], max_size: i64) -> Strat<Json> {
    let legacy_cid = prop_oneof![cid_string(true), "b[a-z2-7]{7,40}".boxed()];
    let with_extras = |j: Json, ex: Vec<(String, Json)>| {
        let mut m = match j {
            Json::Object(m) => m,
            _ => unreachable!(),
        };
        m.extend(ex);
        Json::Object(m)
    };
    prop_oneof![
        (
            cid_string(true),
            accepted_mime(accept),
            0..=max_size,
            extras()
        )
            .prop_map(move |(c, m, s, ex)| {
                with_extras(
                    json!({"$type": "blob", "ref": {"$link": c}, "mimeType": m, "size": s}),
                    ex,
                )
            }),
        (legacy_cid, accepted_mime(accept), extras())
            .prop_map(move |(c, m, ex)| with_extras(json!({"cid": c, "mimeType": m}), ex)),
    ]
    .boxed()
}

/// Any atproto data (no floats), with links and bytes.
fn data_value() -> Strat<Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        "\\PC{0,12}".prop_map(Json::from),
        cid_string(false).prop_map(|c| json!({"$link": c})),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(|b| {
            json!({"$bytes": base64::engine::general_purpose::STANDARD_NO_PAD.encode(b)})
        }),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Json::Array),
            proptest::collection::btree_map("[a-z]{1,4}", inner.clone(), 0..3)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
            (
                unlisted_nsid(),
                proptest::collection::btree_map("[a-z]{1,4}", inner, 0..3)
            )
                .prop_map(|(t, m)| {
                    let mut o: Map<String, Json> = m.into_iter().collect();
                    o.insert("$type".into(), Json::from(t));
                    Json::Object(o)
                }),
        ]
    })
    .boxed()
}

/// Undeclared fields (no declared field name starts with `x`).
fn extras() -> Strat<Vec<(String, Json)>> {
    proptest::collection::vec(("x[a-zA-Z0-9]{0,5}", data_value()), 0..3).boxed()
}

fn valid(s: &'static S) -> Strat<Json> {
    match s {
        S::Str {
            fmt,
            max_len,
            max_graphemes,
        } => valid_str(*fmt, *max_len, *max_graphemes),
        S::Int { min, max } => valid_int(*min, *max),
        S::Bool => any::<bool>().prop_map(Json::from).boxed(),
        S::Blob { accept, max_size } => valid_blob(accept, *max_size),
        S::Arr { items, max } => {
            proptest::collection::vec(valid(items), 0..=max.unwrap_or(3).min(3))
                .prop_map(Json::Array)
                .boxed()
        }
        S::Obj(o) => valid_obj(o),
        S::Union { closed, variants } => {
            let mut arms: Vec<Strat<Json>> = variants
                .iter()
                .map(|(tag, o)| valid_obj(o).prop_map(move |j| with_type(j, tag)).boxed())
                .collect();
            if !closed {
                // An unlisted type in an open union is valid, body and all.
                arms.push(
                    (unlisted_nsid(), extras())
                        .prop_map(|(t, ex)| with_type(object(ex), &t))
                        .boxed(),
                );
            }
            one_of(arms)
        }
        S::Unknown => (unlisted_nsid(), extras())
            .prop_map(|(t, ex)| with_type(object(ex), &t))
            .boxed(),
    }
}

fn object(fields: Vec<(String, Json)>) -> Json {
    Json::Object(fields.into_iter().collect())
}

fn with_type(mut j: Json, t: &str) -> Json {
    if let Json::Object(m) = &mut j {
        m.insert("$type".into(), Json::from(t));
    }
    j
}

/// The declared fields of `o` except `skip` (optional ones present or
/// not), valid, plus undeclared ones.
fn valid_fields(o: &'static Obj, skip: Option<usize>) -> Strat<Vec<(String, Json)>> {
    let fields: Vec<Strat<Option<(String, Json)>>> = o
        .fields
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, f)| {
            let name = f.name;
            let v = valid(&f.schema).prop_map(move |j| Some((name.to_owned(), j)));
            if f.required {
                v.boxed()
            } else {
                prop_oneof![Just(None), v].boxed()
            }
        })
        .collect();
    (fields, extras())
        .prop_map(|(fs, mut ex)| {
            let mut all: Vec<(String, Json)> = fs.into_iter().flatten().collect();
            all.append(&mut ex);
            all
        })
        .boxed()
}

fn valid_obj(o: &'static Obj) -> Strat<Json> {
    valid_fields(o, None).prop_map(object).boxed()
}

fn valid_doc(kind: Kind) -> Strat<Json> {
    let doc = valid_obj(schema(kind));
    if kind.is_record() {
        doc.prop_map(move |j| with_type(j, kind.nsid())).boxed()
    } else {
        doc
    }
}

// ---------------------------------------------------------------------------
// Mutations: a valid value with exactly one thing wrong.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Both reject; the generic errors are all of this kind.
    Structural(ValidationErrorKind),
    /// The generic validator rejects (constraint errors only); the typed
    /// parse accepts.
    Constraint,
    /// Not atproto data; the typed parse rejects.
    DataModel,
}

#[derive(Clone, Debug)]
struct Bad {
    json: Json,
    class: Class,
    what: String,
}

/// Mutations of one schema position, with the number of distinct kinds of
/// mutation they draw from: mixing weighs arms by it, so every kind of
/// mutation is about equally likely however deep it sits.
struct Muts {
    kinds: u32,
    strat: Strat<Bad>,
}

impl Muts {
    fn map(self, f: impl Fn(Bad) -> Bad + 'static) -> Muts {
        Muts {
            kinds: self.kinds,
            strat: self.strat.prop_map(f).boxed(),
        }
    }
}

fn mix(arms: Vec<Muts>) -> Muts {
    let kinds = arms.iter().map(|m| m.kinds).sum();
    let weighted = arms.into_iter().map(|m| (m.kinds, m.strat)).collect();
    Muts {
        kinds,
        strat: proptest::strategy::Union::new_weighted(weighted).boxed(),
    }
}

/// One kind of mutation: any of `values`.
fn bad_const(values: Vec<Json>, class: Class, what: &'static str) -> Muts {
    bad_from(select(values), class, what, |j| j)
}

/// One kind of mutation, made by `f`.
fn bad_from<T: std::fmt::Debug + 'static>(
    s: impl Strategy<Value = T> + 'static,
    class: Class,
    what: &'static str,
    f: impl Fn(T) -> Json + 'static,
) -> Muts {
    Muts {
        kinds: 1,
        strat: s
            .prop_map(move |t| Bad {
                json: f(t),
                class,
                what: what.to_owned(),
            })
            .boxed(),
    }
}

const WRONG_TYPE: Class = Class::Structural(ValidationErrorKind::WrongType);

fn bad_str(fmt: Option<Fmt>, max_len: Option<usize>, max_graphemes: Option<usize>) -> Muts {
    let mut arms = vec![bad_const(
        vec![json!(42), json!(true), json!(["x"]), json!({"a": "x"})],
        WRONG_TYPE,
        "string of the wrong type",
    )];
    if let Some(f) = fmt {
        arms.push(bad_from(
            select(bad_fmt(f)),
            Class::Structural(ValidationErrorKind::Format),
            "string not of its format",
            Json::from,
        ));
    }
    // Constraints are mutated only on strings without a format.
    if fmt.is_none() {
        if let Some(l) = max_len {
            arms.push(bad_from(
                1..20usize,
                Class::Constraint,
                "string over maxLength",
                move |k| Json::from("a".repeat(l + k)),
            ));
            if let Some(g) = max_graphemes {
                // Exactly maxGraphemes, over maxLength.
                if FAMILY.len() * g > l {
                    arms.push(bad_from(
                        Just(()),
                        Class::Constraint,
                        "string over maxLength, within maxGraphemes",
                        move |()| Json::from(FAMILY.repeat(g)),
                    ));
                }
            }
        }
        if let Some(g) = max_graphemes {
            arms.push(bad_from(
                (1..4usize, any::<bool>()),
                Class::Constraint,
                "string over maxGraphemes, within maxLength",
                move |(k, ascii)| {
                    let cluster = if ascii { "a" } else { THUMB };
                    let s = cluster.repeat(g + k);
                    assert!(max_len.is_none_or(|l| s.len() <= l));
                    Json::from(s)
                },
            ));
        }
    }
    mix(arms)
}

fn bad_int(min: Option<i64>, max: Option<i64>) -> Muts {
    let mut arms = vec![
        bad_const(
            vec![json!("5"), json!(false), json!([1])],
            WRONG_TYPE,
            "integer of the wrong type",
        ),
        bad_from(
            -1_000_000_000i64..1_000_000_000,
            Class::DataModel,
            "non-integral float",
            |x| json!(x as f64 + 0.5),
        ),
        bad_from(
            (i64::MAX as u64 + 1)..=u64::MAX,
            Class::DataModel,
            "integer beyond i64",
            Json::from,
        ),
    ];
    if let Some(min) = min {
        arms.push(bad_from(
            prop_oneof![i64::MIN..min, Just(min - 1)],
            Class::Constraint,
            "integer below minimum",
            Json::from,
        ));
    }
    if let Some(max) = max {
        arms.push(bad_from(
            prop_oneof![(max + 1)..=i64::MAX, Just(max + 1)],
            Class::Constraint,
            "integer above maximum",
            Json::from,
        ));
    }
    mix(arms)
}

fn bad_blob(accept: &'static [&'static str], max_size: i64) -> Muts {
    let link = || cid_string(true).prop_map(|c| json!({"$link": c}));
    let mime = move || accepted_mime(accept);
    let blob_kind = Class::Structural(ValidationErrorKind::Blob);
    // A MIME type outside `accept` (image/gif only where images are not
    // all accepted).
    let refused = if accept.contains(&"image/*") {
        vec!["text/plain", "video/mp4", "application/pdf"]
    } else {
        vec!["text/plain", "video/mp4", "image/gif"]
    };
    mix(vec![
        bad_const(
            vec![json!("image.png"), json!(1), json!([])],
            WRONG_TYPE,
            "blob of the wrong type",
        ),
        bad_from(
            (link(), select(refused), 0..=max_size),
            Class::Constraint,
            "blob of a MIME type not accepted",
            |(l, m, s)| json!({"$type": "blob", "ref": l, "mimeType": m, "size": s}),
        ),
        bad_from(
            (link(), mime(), (max_size + 1)..=i64::MAX),
            Class::Constraint,
            "blob over maxSize",
            |(l, m, s)| json!({"$type": "blob", "ref": l, "mimeType": m, "size": s}),
        ),
        bad_from(
            (link(), mime(), 0..=max_size),
            blob_kind,
            "blob with neither $type nor cid",
            |(l, m, s)| json!({"ref": l, "mimeType": m, "size": s}),
        ),
        bad_from(
            (
                link(),
                mime(),
                0..=max_size,
                select(vec!["image", "Blob", "app.bsky.embed.images"]),
            ),
            blob_kind,
            "blob with another $type",
            |(l, m, s, t)| json!({"$type": t, "ref": l, "mimeType": m, "size": s}),
        ),
        bad_from(
            cid_string(true),
            blob_kind,
            "legacy blob without mimeType",
            |c| json!({"cid": c}),
        ),
        bad_from(
            cid_string(true),
            blob_kind,
            "legacy blob with an empty mimeType",
            |c| json!({"cid": c, "mimeType": ""}),
        ),
        bad_from(
            (mime(), any::<i64>()),
            WRONG_TYPE,
            "legacy blob with a cid that is not a string",
            |(m, c)| json!({"cid": c, "mimeType": m}),
        ),
        bad_from(
            (link(), mime()),
            Class::DataModel,
            "$type blob without size",
            |(l, m)| json!({"$type": "blob", "ref": l, "mimeType": m}),
        ),
        bad_from(
            (link(), mime(), i64::MIN..0),
            Class::DataModel,
            "$type blob with a negative size",
            |(l, m, s)| json!({"$type": "blob", "ref": l, "mimeType": m, "size": s}),
        ),
        bad_from(
            (cid_string(true), mime(), 0..=max_size),
            Class::DataModel,
            "$type blob with a string ref",
            |(c, m, s)| json!({"$type": "blob", "ref": c, "mimeType": m, "size": s}),
        ),
    ])
}

fn bad_arr(items: &'static S, max: Option<usize>) -> Muts {
    // Room for one more item within maxLength.
    let cap = max.unwrap_or(3).min(3);
    let mut arms = vec![
        bad_const(
            vec![json!({}), json!("x"), json!(1)],
            WRONG_TYPE,
            "array of the wrong type",
        ),
        bad_from(
            (
                proptest::collection::vec(valid(items), 0..cap),
                any::<prop::sample::Index>(),
            ),
            WRONG_TYPE,
            "null item",
            |(mut v, i)| {
                v.insert(i.index(v.len() + 1), Json::Null);
                Json::Array(v)
            },
        ),
    ];
    if let Some(bad_item) = bad(items) {
        arms.push(Muts {
            kinds: bad_item.kinds,
            strat: (
                proptest::collection::vec(valid(items), 0..cap),
                bad_item.strat,
                any::<prop::sample::Index>(),
            )
                .prop_map(|(mut v, b, i)| {
                    let at = i.index(v.len() + 1);
                    v.insert(at, b.json);
                    Bad {
                        json: Json::Array(v),
                        class: b.class,
                        what: format!("[{at}]: {}", b.what),
                    }
                })
                .boxed(),
        });
    }
    if let Some(max) = max {
        arms.push(bad_from(
            proptest::collection::vec(valid(items), (max + 1)..=(max + 2)),
            Class::Constraint,
            "array over maxLength",
            Json::Array,
        ));
    }
    mix(arms)
}

/// One field of `o` wrong (the object stays an object).
fn bad_fields(o: &'static Obj) -> Muts {
    let mut arms = Vec::new();
    for (i, f) in o.fields.iter().enumerate() {
        let name = f.name;
        let others = || valid_fields(o, Some(i));
        if let Some(b) = bad(&f.schema) {
            arms.push(Muts {
                kinds: b.kinds,
                strat: (others(), b.strat)
                    .prop_map(move |(mut fs, b)| {
                        fs.push((name.to_owned(), b.json));
                        Bad {
                            json: object(fs),
                            class: b.class,
                            what: format!("{name}: {}", b.what),
                        }
                    })
                    .boxed(),
            });
        }
        let named = move |b: Bad| Bad {
            what: format!("{name}: {}", b.what),
            ..b
        };
        if f.required {
            arms.push(
                bad_from(
                    others(),
                    Class::Structural(ValidationErrorKind::Required),
                    "required field missing",
                    object,
                )
                .map(named),
            );
        }
        // No field is nullable: `null` is wrong in any of them.
        {
            arms.push(
                bad_from(
                    others(),
                    Class::Structural(ValidationErrorKind::NotNullable),
                    if f.required {
                        "required field null"
                    } else {
                        "optional field null"
                    },
                    move |mut fs| {
                        fs.push((name.to_owned(), Json::Null));
                        object(fs)
                    },
                )
                .map(named),
            );
        }
    }
    // An undeclared field that is not atproto data.
    let not_data = select(vec![
        json!(2.5),
        json!(-0.25),
        json!({"$link": "not a cid"}),
        json!({"$bytes": "!!"}),
        json!({"$link": CID, "x": 1}),
        json!({"$type": ""}),
        json!({"$type": 7}),
        json!({"$type": "blob", "mimeType": "image/png"}),
        json!([1, [2, 3.5]]),
    ]);
    arms.push(bad_from(
        (valid_fields(o, None), not_data),
        Class::DataModel,
        "undeclared field that is not atproto data",
        |(mut fs, v)| {
            fs.push(("xNotData".to_owned(), v));
            object(fs)
        },
    ));
    mix(arms)
}

fn bad_union(closed: bool, variants: &'static [(&'static str, Obj)]) -> Muts {
    let type_kind = Class::Structural(ValidationErrorKind::Type);
    let mut arms = vec![bad_const(
        vec![json!("x"), json!([]), json!(3)],
        WRONG_TYPE,
        "union of the wrong type",
    )];
    for (tag, o) in variants {
        let tag: &'static str = tag;
        let tagged = move |b: Bad| Bad {
            what: format!("{tag}: {}", b.what),
            ..b
        };
        arms.push(bad_fields(o).map(move |b| {
            let b = tagged(b);
            Bad {
                json: with_type(b.json, tag),
                ..b
            }
        }));
        arms.push(bad_from(valid_obj(o), type_kind, "member without $type", |j| j).map(tagged));
        arms.push(
            bad_from(
                (
                    valid_obj(o),
                    select(vec![json!(1), json!(""), json!(null), json!({})]),
                ),
                Class::DataModel,
                "member with a $type that is not a non-empty string",
                |(mut j, t)| {
                    if let Json::Object(m) = &mut j {
                        m.insert("$type".into(), t);
                    }
                    j
                },
            )
            .map(tagged),
        );
    }
    if closed {
        // Another name in the namespace of the listed types (which are
        // all lowercase, so a name ending in `X` is not one of them).
        let base = match variants.first().and_then(|(t, _)| t.split_once('#')) {
            Some((b, _)) => b,
            None => panic!("closed union types are nsid#name"),
        };
        arms.push(bad_from(
            ("[a-z][a-zA-Z]{0,8}", valid_fields(&variants[0].1, None)),
            type_kind,
            "closed union member of an unlisted $type",
            move |(name, fs)| with_type(object(fs), &format!("{base}#{name}X")),
        ));
    }
    if !closed {
        // An ill-formed `$type` (a listed type with `#main`, a `lex:` URI,
        // not a type name at all) on a listed member's body.
        for (tag, o) in variants {
            let tag: &'static str = tag;
            let ill_formed = if tag.contains('#') {
                vec![format!("lex:{tag}"), "not a type".to_owned()]
            } else {
                vec![
                    format!("{tag}#main"),
                    format!("lex:{tag}"),
                    "not a type".to_owned(),
                ]
            };
            arms.push(bad_from(
                (valid_fields(o, None), select(ill_formed)),
                type_kind,
                "open union member with an ill-formed $type",
                move |(fs, t)| with_type(object(fs), &t),
            ));
        }
    }
    mix(arms)
}

/// Wrong values of schema `s`.
fn bad(s: &'static S) -> Option<Muts> {
    match s {
        S::Str {
            fmt,
            max_len,
            max_graphemes,
        } => Some(bad_str(*fmt, *max_len, *max_graphemes)),
        S::Int { min, max } => Some(bad_int(*min, *max)),
        S::Bool => Some(bad_const(
            vec![json!("true"), json!(1), json!({})],
            WRONG_TYPE,
            "boolean of the wrong type",
        )),
        S::Blob { accept, max_size } => Some(bad_blob(accept, *max_size)),
        S::Arr { items, max } => Some(bad_arr(items, *max)),
        S::Obj(o) => Some(mix(vec![
            bad_const(
                vec![json!("x"), json!([]), json!(5), json!(true)],
                WRONG_TYPE,
                "object of the wrong type",
            ),
            bad_fields(o),
        ])),
        S::Union { closed, variants } => Some(bad_union(*closed, variants)),
        S::Unknown => Some(bad_const(
            vec![
                json!("text"),
                json!(1),
                json!(true),
                json!(["x"]),
                json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": 1}),
            ],
            WRONG_TYPE,
            "unknown that is not an object, or is a blob",
        )),
    }
}

/// Mutated documents.
fn bad_doc(kind: Kind) -> Strat<Bad> {
    let mut fields = bad_fields(schema(kind));
    if kind.is_record() {
        fields = fields.map(move |b| Bad {
            json: with_type(b.json, kind.nsid()),
            ..b
        });
    }
    let mut arms = vec![
        bad_const(
            vec![json!("x"), json!([]), json!(1)],
            WRONG_TYPE,
            "document of the wrong type",
        ),
        fields,
    ];
    if kind.is_record() {
        let type_kind = Class::Structural(ValidationErrorKind::Type);
        arms.push(bad_from(
            valid_fields(schema(kind), None),
            type_kind,
            "record without $type",
            object,
        ));
        let others: Vec<&'static str> = [
            Kind::Post,
            Kind::Profile,
            Kind::Follow,
            Kind::Like,
            Kind::Threadgate,
            Kind::Postgate,
        ]
        .into_iter()
        .filter(|k| *k != kind)
        .map(Kind::nsid)
        .collect();
        arms.push(bad_from(
            (valid_fields(schema(kind), None), select(others)),
            type_kind,
            "record of another collection's $type",
            |(fs, t)| with_type(object(fs), t),
        ));
    }
    mix(arms).strat
}

// ---------------------------------------------------------------------------
// The properties.

fn cfg(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// For each kind: a test of valid documents and one of mutated documents,
/// with their case counts (posts have by far the most kinds of mutation).
macro_rules! agreement_tests {
    ($($valid:ident, $mutated:ident => $kind:expr, $valid_cases:expr, $mutated_cases:expr;)*) => {
        $(
            proptest! {
                #![proptest_config(cfg($valid_cases))]
                #[test]
                fn $valid(j in valid_doc($kind)) {
                    check_valid($kind, &j)?;
                }
            }

            proptest! {
                #![proptest_config(cfg($mutated_cases))]
                #[test]
                fn $mutated(b in bad_doc($kind)) {
                    check_mutated($kind, &b)?;
                }
            }
        )*
    };
}

agreement_tests! {
    valid_posts_agree, mutated_posts_agree => Kind::Post, 384, 1536;
    valid_profiles_agree, mutated_profiles_agree => Kind::Profile, 256, 768;
    valid_follows_agree, mutated_follows_agree => Kind::Follow, 256, 256;
    valid_likes_agree, mutated_likes_agree => Kind::Like, 256, 384;
    valid_threadgates_agree, mutated_threadgates_agree => Kind::Threadgate, 256, 512;
    valid_postgates_agree, mutated_postgates_agree => Kind::Postgate, 256, 384;
    valid_apply_writes_agree, mutated_apply_writes_agree => Kind::ApplyWrites, 256, 768;
}

// ---------------------------------------------------------------------------
// Disagreements found earlier (now fixed): minimal examples, asserting
// what the properties require.

const CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
const BLOB_CID: &str = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy";

fn minimal_post(extra: &[(&str, Json)]) -> Json {
    let mut j =
        json!({"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2024-11-25T20:00:00Z"});
    if let Json::Object(m) = &mut j {
        for (k, v) in extra {
            m.insert((*k).to_owned(), v.clone());
        }
    }
    j
}

fn image_embed(image: Json) -> Json {
    json!({"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": image}]})
}

/// Properties 1 and 2 on one document, as a plain assertion.
fn assert_agreement(kind: Kind, j: &Json) {
    let o = run(kind, j);
    if let Err(e) = check_agreement(j, &o) {
        panic!("{e}");
    }
}

/// Both sides reject `j` (the structural or data-model class).
fn assert_both_reject(kind: Kind, j: &Json) {
    let o = run(kind, j);
    assert!(
        o.data.is_err() || matches!(o.generic, Some(Err(_))),
        "generic side accepts\n{j:#}"
    );
    assert!(o.typed_json.is_err(), "typed parse accepts\n{j:#}");
}

#[test]
fn blob_extra_fields_round_trip() {
    for image in [
        json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": 1, "x": 1}),
        json!({"cid": BLOB_CID, "mimeType": "image/png", "x": 1}),
    ] {
        assert_agreement(Kind::Post, &minimal_post(&[("embed", image_embed(image))]));
    }
}

#[test]
fn legacy_blob_cid_is_checked_alike() {
    let image = json!({"cid": "bafyfakefakefake", "mimeType": "image/png"});
    assert_agreement(Kind::Post, &minimal_post(&[("embed", image_embed(image))]));
}

#[test]
fn null_in_optional_field_is_rejected() {
    for field in ["langs", "embed", "reply", "facets", "labels", "tags"] {
        assert_both_reject(Kind::Post, &minimal_post(&[(field, Json::Null)]));
    }
}

#[test]
fn record_type_is_checked_by_the_typed_parse() {
    let mut missing = minimal_post(&[]);
    if let Json::Object(m) = &mut missing {
        m.remove("$type");
    }
    assert_both_reject(Kind::Post, &missing);
    assert_both_reject(
        Kind::Post,
        &minimal_post(&[("$type", json!("app.bsky.feed.like"))]),
    );
}

#[test]
fn open_union_rejects_ill_formed_type_names() {
    for t in [
        "app.bsky.embed.images#main",
        "lex:app.bsky.embed.images",
        "not a type",
    ] {
        assert_both_reject(
            Kind::Post,
            &minimal_post(&[("embed", json!({"$type": t, "images": []}))]),
        );
    }
}

#[test]
fn unknown_field_must_be_an_object() {
    let blob =
        json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": 1});
    for value in [json!("text"), json!(1), blob] {
        let j = json!({"repo": "alice.test", "writes": [{
            "$type": "com.atproto.repo.applyWrites#create",
            "collection": "app.bsky.feed.post",
            "value": value,
        }]});
        assert_both_reject(Kind::ApplyWrites, &j);
    }
}

#[test]
fn integral_float_in_integer_field() {
    let image =
        json!({"$type": "blob", "ref": {"$link": BLOB_CID}, "mimeType": "image/png", "size": 1});
    let embed = json!({"$type": "app.bsky.embed.images", "images": [
        {"alt": "", "image": image, "aspectRatio": {"width": 2.0, "height": 1}}
    ]});
    assert_agreement(Kind::Post, &minimal_post(&[("embed", embed)]));
}

#[test]
fn blob_type_on_a_declared_object_is_not_data() {
    let root =
        json!({"$type": "blob", "uri": "at://did:plc:abc/app.bsky.feed.post/3k", "cid": CID});
    let reply = json!({"root": root.clone(), "parent": root});
    assert_both_reject(Kind::Post, &minimal_post(&[("reply", reply)]));
}
