//! Firehose (`com.atproto.sync.subscribeRepos`) events, built ready to send.
//!
//! Each builder returns a [`NewEvent`] whose encoder the sequencer calls
//! inside the commit's transaction with the assigned seq and time; the
//! stored bytes are the whole frame (header `{op: 1, t: "#commit"}` then the
//! body, both DAG-CBOR), so replaying the log never re-encodes anything.

use std::collections::BTreeMap;

use atproto_data::Value;
use atproto_repo::car::write_car;
use atproto_repo::RepoOp;
use cid::Cid;
use pds_store::NewEvent;

/// The `event_type` under which `#commit` events are stored.
pub const COMMIT_EVENT: &str = "commit";
/// The `event_type` of `#sync` events.
pub const SYNC_EVENT: &str = "sync";
/// The `event_type` of `#identity` events.
pub const IDENTITY_EVENT: &str = "identity";
/// The `event_type` of `#account` events.
pub const ACCOUNT_EVENT: &str = "account";

/// A frame: header `{op: 1, t}` then `body`, both DAG-CBOR.
pub fn encode_frame(t: &str, body: &Value) -> Vec<u8> {
    let header = Value::Map(BTreeMap::from([
        ("op".to_owned(), Value::Integer(1)),
        ("t".to_owned(), Value::String(t.to_owned())),
    ]));
    let mut out = Vec::new();
    atproto_data::write_dag_cbor(&header, &mut out);
    atproto_data::write_dag_cbor(body, &mut out);
    out
}

/// Milliseconds since the epoch as an atproto datetime
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`), the form the reference PDS sends.
pub fn format_time(ms: i64) -> String {
    let dt = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default();
    match atproto_syntax::Datetime::from_utc(dt) {
        Ok(d) => d.into_inner(),
        Err(_) => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn op_value(op: &RepoOp) -> Value {
    let mut m = BTreeMap::from([
        ("action".to_owned(), s(op.action.as_str())),
        ("path".to_owned(), s(&op.path)),
        ("cid".to_owned(), op.cid.map_or(Value::Null, Value::Link)),
    ]);
    // sync 1.1: the previous CID of updates and deletes; absent for creates.
    if let Some(prev) = op.prev {
        m.insert("prev".to_owned(), Value::Link(prev));
    }
    Value::Map(m)
}

/// What a `#commit` event says (everything but seq and time).
#[derive(Clone, Debug)]
pub struct CommitEventData {
    /// The repository.
    pub did: String,
    /// The commit block's CID (the CAR's root).
    pub commit: Cid,
    /// The commit's rev.
    pub rev: String,
    /// The previous commit's rev (`None` for a new repository).
    pub since: Option<String>,
    /// The CAR of the commit, the new records and the MST nodes needed to
    /// invert the ops (sync 1.1).
    pub blocks: Vec<u8>,
    /// The operations, with previous CIDs.
    pub ops: Vec<RepoOp>,
    /// The MST root before the commit.
    pub prev_data: Option<Cid>,
}

impl CommitEventData {
    /// The frame body for `seq` at `time_ms`.
    pub fn into_body(self, seq: i64, time_ms: i64) -> Value {
        let mut m = BTreeMap::from([
            ("seq".to_owned(), Value::Integer(seq)),
            ("rebase".to_owned(), Value::Bool(false)),
            ("tooBig".to_owned(), Value::Bool(false)),
            ("repo".to_owned(), Value::String(self.did)),
            ("commit".to_owned(), Value::Link(self.commit)),
            ("rev".to_owned(), Value::String(self.rev)),
            (
                "since".to_owned(),
                self.since.map_or(Value::Null, Value::String),
            ),
            ("blocks".to_owned(), Value::Bytes(self.blocks)),
            (
                "ops".to_owned(),
                Value::Array(self.ops.iter().map(op_value).collect()),
            ),
            ("blobs".to_owned(), Value::Array(Vec::new())),
            ("time".to_owned(), Value::String(format_time(time_ms))),
        ]);
        if let Some(prev) = self.prev_data {
            m.insert("prevData".to_owned(), Value::Link(prev));
        }
        Value::Map(m)
    }

    /// The event to sequence.
    pub fn into_event(self) -> NewEvent {
        let did = self.did.clone();
        NewEvent::new(did, COMMIT_EVENT, move |seq, time| {
            encode_frame("#commit", &self.into_body(seq, time))
        })
    }
}

/// A `#sync` event: the repository is now at `commit` (account creation,
/// repo import, recovery). `blocks` is a CAR holding just the commit block.
pub fn sync_event(did: &str, commit_cid: Cid, commit_block: &[u8], rev: &str) -> NewEvent {
    let car = write_car(&[commit_cid], [(&commit_cid, commit_block)]);
    let (d, r) = (did.to_owned(), rev.to_owned());
    NewEvent::new(did, SYNC_EVENT, move |seq, time| {
        let body = Value::Map(BTreeMap::from([
            ("seq".to_owned(), Value::Integer(seq)),
            ("did".to_owned(), Value::String(d)),
            ("blocks".to_owned(), Value::Bytes(car)),
            ("rev".to_owned(), Value::String(r)),
            ("time".to_owned(), Value::String(format_time(time))),
        ]));
        encode_frame("#sync", &body)
    })
}

/// An `#identity` event (handle or DID document changed).
pub fn identity_event(did: &str, handle: Option<&str>) -> NewEvent {
    let d = did.to_owned();
    let h = handle.map(str::to_owned);
    NewEvent::new(did, IDENTITY_EVENT, move |seq, time| {
        let mut m = BTreeMap::from([
            ("seq".to_owned(), Value::Integer(seq)),
            ("did".to_owned(), Value::String(d)),
            ("time".to_owned(), Value::String(format_time(time))),
        ]);
        if let Some(h) = h {
            m.insert("handle".to_owned(), Value::String(h));
        }
        encode_frame("#identity", &Value::Map(m))
    })
}

/// An `#account` event: whether the account's repository is served, and if
/// not why (`takendown`, `suspended`, `deleted`, `deactivated`,
/// `desynchronized`, `throttled`).
pub fn account_event(did: &str, active: bool, status: Option<&str>) -> NewEvent {
    let d = did.to_owned();
    let st = status.map(str::to_owned);
    NewEvent::new(did, ACCOUNT_EVENT, move |seq, time| {
        let mut m = BTreeMap::from([
            ("seq".to_owned(), Value::Integer(seq)),
            ("did".to_owned(), Value::String(d)),
            ("time".to_owned(), Value::String(format_time(time))),
            ("active".to_owned(), Value::Bool(active)),
        ]);
        if let Some(st) = st {
            m.insert("status".to_owned(), Value::String(st));
        }
        encode_frame("#account", &Value::Map(m))
    })
}
