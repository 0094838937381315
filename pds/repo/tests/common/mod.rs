//! Test harness: `pds_testkit` (a fresh SQLite directory or PostgreSQL
//! database per test, `both_backends!`), accounts with repositories, and a checker that
//! decodes every stored `#commit` frame and verifies it (lexicon, signature,
//! sync 1.1 inversion, chain links, gap-free seqs).

#![allow(dead_code)]

use std::collections::HashMap;

use atproto_crypto::{Algorithm, PrivateKey, PublicKey};
use atproto_data::Value;
use atproto_repo::sync::verify_commit_car;
use atproto_repo::{Cid, OpAction, RepoOp};
use atproto_types::lexicons::com::atproto::sync::subscribe_repos;
use atproto_types::xrpc::Frame;
use pds_repo::{RepoWriter, Write};
use pds_store::{NewAccount, Store};

pub const FIREHOSE: &str = "com.atproto.sync.subscribeRepos";

pub use pds_testkit::TestDb;

pub fn key() -> PrivateKey {
    PrivateKey::generate(Algorithm::K256)
}

pub fn json(s: &str) -> Value {
    Value::from_json_str(s).expect("json")
}

/// A valid `app.bsky.feed.post` (without `$type`: the writer adds it).
pub fn post(text: &str) -> Value {
    json(&format!(
        r#"{{"text": {}, "createdAt": "2024-05-01T12:00:00.000Z"}}"#,
        serde_json::Value::String(text.to_owned())
    ))
}

pub fn create(collection: &str, rkey: Option<&str>, record: Value) -> Write {
    Write::Create {
        collection: collection.to_owned(),
        rkey: rkey.map(str::to_owned),
        record,
        validate: None,
    }
}

pub fn update(collection: &str, rkey: &str, record: Value) -> Write {
    Write::Update {
        collection: collection.to_owned(),
        rkey: rkey.to_owned(),
        record,
        validate: None,
        swap_record: None,
    }
}

pub fn delete(collection: &str, rkey: &str) -> Write {
    Write::Delete {
        collection: collection.to_owned(),
        rkey: rkey.to_owned(),
        swap_record: None,
    }
}

/// An account whose (empty) repository is created with it, as the
/// account-creation flow does.
pub async fn account(writer: &RepoWriter, did: &str) -> PrivateKey {
    let k = key();
    let genesis = writer
        .prepare_genesis(did, &k, Vec::new())
        .expect("genesis");
    writer
        .store()
        .accounts()
        .create(
            NewAccount::new(did, format!("{}.test", did.replace(':', "-"))),
            Some(genesis.data),
        )
        .await
        .expect("create account");
    k
}

/// The rkey of an `at://` URI.
pub fn rkey_of(uri: &str) -> String {
    uri.rsplit('/').next().expect("uri").to_owned()
}

/// A decoded, verified `#commit` event.
#[derive(Clone, Debug)]
pub struct CheckedCommit {
    pub seq: i64,
    pub commit: Cid,
    pub rev: String,
    pub since: Option<String>,
    pub prev_data: Option<Cid>,
    pub data: Cid,
    pub prev: Option<Cid>,
    pub ops: Vec<RepoOp>,
}

fn link(v: Option<&Value>) -> Option<Cid> {
    v.and_then(Value::as_link).copied()
}

/// Decodes and verifies every stored event: seqs are gap-free from the
/// first; every `#commit` frame validates against the lexicon, decodes into
/// the generated type, has a CAR whose root is its commit, signed by the
/// account key, whose ops invert to `prevData` using only the CAR's blocks;
/// per repository, `since` / `prevData` / the commit's `prev` link to the
/// previous commit, and the last commit is the stored root.
pub async fn check_log(
    store: &Store,
    keys: &HashMap<String, PublicKey>,
) -> HashMap<String, Vec<CheckedCommit>> {
    let events = store
        .sequencer()
        .events_after(0, 1_000_000)
        .await
        .expect("events");
    let catalog = atproto_types::lex::try_catalog().expect("catalog");
    let mut chains: HashMap<String, Vec<CheckedCommit>> = HashMap::new();
    for pair in events.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "seq gap");
    }
    for ev in &events {
        let Frame::Message { t, body } = Frame::decode(&ev.event).expect("frame") else {
            panic!("error frame stored");
        };
        assert_eq!(t, format!("#{}", ev.event_type));
        catalog
            .validate_message(FIREHOSE, &t, &body)
            .unwrap_or_else(|e| panic!("{t} at seq {} violates the lexicon: {e}", ev.seq));
        assert_eq!(body.get_i64("seq"), Some(ev.seq));
        if t != "#commit" {
            continue;
        }
        let typed: subscribe_repos::Commit =
            atproto_data::from_value(&body).expect("generated #commit type");
        assert!(!typed.rebase && !typed.too_big && typed.blobs.is_empty());
        let did = body.get_str("repo").expect("repo").to_owned();
        assert_eq!(did, ev.did);
        let ops: Vec<RepoOp> = body
            .get("ops")
            .and_then(Value::as_array)
            .expect("ops")
            .iter()
            .map(|o| RepoOp {
                action: OpAction::parse(o.get_str("action").expect("action")).expect("action"),
                path: o.get_str("path").expect("path").to_owned(),
                cid: link(o.get("cid")),
                prev: link(o.get("prev")),
            })
            .collect();
        for (o, raw) in ops
            .iter()
            .zip(body.get("ops").and_then(Value::as_array).unwrap_or(&[]))
        {
            // `cid` is always present (null for deletes); `prev` never on creates.
            assert!(raw.get("cid").is_some());
            assert_eq!(o.action == OpAction::Create, raw.get("prev").is_none());
        }
        let blocks = body
            .get("blocks")
            .and_then(Value::as_bytes)
            .expect("blocks");
        let prev_data = link(body.get("prevData")).expect("prevData is always sent");
        let pk = keys.get(&did).expect("key of the repo");
        let commit = verify_commit_car(blocks, &ops, prev_data, Some(pk))
            .unwrap_or_else(|e| panic!("seq {}: #commit does not verify: {e}", ev.seq));
        let (roots, _) = atproto_repo::load_car(blocks.to_vec()).expect("car");
        let commit_cid = link(body.get("commit")).expect("commit");
        assert_eq!(roots.first(), Some(&commit_cid));
        assert_eq!(commit.rev.as_str(), body.get_str("rev").expect("rev"));
        assert_eq!(commit.did.as_str(), did);
        let checked = CheckedCommit {
            seq: ev.seq,
            commit: commit_cid,
            rev: commit.rev.as_str().to_owned(),
            since: body.get_str("since").map(str::to_owned),
            prev_data: Some(prev_data),
            data: commit.data,
            prev: commit.prev,
            ops,
        };
        let chain = chains.entry(did).or_default();
        match chain.last() {
            None => assert_eq!(checked.since, None, "first commit has a since"),
            Some(p) => {
                assert_eq!(checked.since.as_deref(), Some(p.rev.as_str()), "since link");
                assert_eq!(checked.prev_data, Some(p.data), "prevData link");
                // v3 commits may leave `prev` null; when set it must link.
                assert!(
                    checked.prev.is_none() || checked.prev == Some(p.commit),
                    "commit prev link"
                );
                assert!(checked.rev > p.rev, "rev not increasing");
            }
        }
        chain.push(checked);
    }
    for (did, chain) in &chains {
        let root = store
            .repo()
            .get_root(did)
            .await
            .expect("root")
            .expect("repo");
        let last = chain.last().expect("non-empty chain");
        assert_eq!(root.cid, last.commit, "stored root is the last commit");
        assert_eq!(root.rev, last.rev);
    }
    chains
}
