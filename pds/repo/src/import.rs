//! Whole-repository import (`com.atproto.repo.importRepo`): a CAR file
//! replaces an account's repository as one commit.
//!
//! The CAR is checked before anything is written: one root, a commit for
//! the account's DID signed by one of the trusted keys (the caller passes
//! the DID document's key and the account's own), a complete MST (every
//! node and every record block present, records decodable). The import is
//! then stored as a new commit over the imported MST, re-signed with the
//! account's signing key at a fresh rev, in one transaction that indexes
//! every record and its blob references (blobs not uploaded yet are
//! allowed: `listMissingBlobs` lists them), drops the records the CAR does
//! not hold, and sequences a `#sync` event. Blocks no longer reachable are
//! then garbage-collected.

use std::collections::HashSet;
use std::str::FromStr;

use atproto_crypto::{PrivateKey, PublicKey};
use atproto_data::{Blob, Value};
use atproto_repo::car::{load_car_with_limits, CarLimits};
use atproto_repo::mst::decode_node;
use atproto_repo::{Commit, Mst, UnsignedCommit};
use atproto_syntax::{Did, Nsid, RecordKey};
use bytes::Bytes;
use cid::Cid;
use pds_store::{RecordDelete, RecordPut, RepoCommitData, StoreError};

use crate::error::{RepoWriteError, Result};
use crate::events::sync_event;
use crate::writer::{CommitInfo, RepoWriter};

/// Multicodec of raw blobs.
const RAW_CODEC: u64 = 0x55;
/// Multihash code of sha2-256 (the only hash the store accepts).
const SHA2_256: u64 = 0x12;
/// Records listed per page while reading the current index.
const PAGE: u32 = 1000;

/// What an import did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The new commit.
    pub commit: CommitInfo,
    /// Records in the imported repository.
    pub records: usize,
    /// Records of the previous repository that the import removed.
    pub removed_records: usize,
}

fn invalid(m: impl Into<String>) -> RepoWriteError {
    RepoWriteError::InvalidRequest(m.into())
}

/// A record of the imported tree.
struct ImportedRecord {
    collection: String,
    rkey: String,
    cid: Cid,
    blobs: Vec<Cid>,
}

/// Raw-codec blob CIDs anywhere in a record (malformed blob maps are
/// skipped: an imported record is stored as it is).
fn blob_cids(v: &Value, out: &mut Vec<Cid>) {
    match v {
        Value::Map(m) => {
            if matches!(m.get("$type"), Some(Value::String(t)) if t == "blob") {
                if let Ok(b) = Blob::from_value(v) {
                    if b.r#ref.codec() == RAW_CODEC && !out.contains(&b.r#ref) {
                        out.push(b.r#ref);
                    }
                }
                return;
            }
            m.values().for_each(|c| blob_cids(c, out));
        }
        Value::Array(items) => items.iter().for_each(|c| blob_cids(c, out)),
        _ => {}
    }
}

/// The verified content of an import CAR.
struct CheckedImport {
    data: Cid,
    /// Every block reachable from the commit's MST (nodes and records).
    blocks: Vec<(Cid, Vec<u8>)>,
    records: Vec<ImportedRecord>,
}

/// Parses and verifies an import CAR for `did` (see the module docs).
fn check_car(did: &str, car: Bytes, trusted: &[PublicKey]) -> Result<CheckedImport> {
    let (roots, blocks) = load_car_with_limits(car, CarLimits::default())
        .map_err(|e| invalid(format!("Invalid CAR file: {e}")))?;
    let [root] = roots.as_slice() else {
        return Err(invalid("expected one root"));
    };
    let commit_bytes = blocks
        .get(root)
        .ok_or_else(|| invalid(format!("Commit block {root} not found in CAR")))?;
    let commit =
        Commit::from_cbor(commit_bytes).map_err(|e| invalid(format!("Invalid commit: {e}")))?;
    if commit.did.as_str() != did {
        return Err(invalid(format!(
            "Imported repo belongs to {}, not {did}",
            commit.did.as_str()
        )));
    }
    if !trusted.iter().any(|k| commit.verify(k).is_ok()) {
        return Err(invalid(
            "Invalid signature on commit: not signed by the account's signing key",
        ));
    }

    // Every MST node, breadth first.
    let mut reachable: Vec<(Cid, Vec<u8>)> = Vec::new();
    let mut seen: HashSet<Cid> = HashSet::new();
    let mut frontier = vec![commit.data];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for cid in frontier {
            if !seen.insert(cid) {
                continue;
            }
            let bytes = blocks
                .get(&cid)
                .ok_or_else(|| invalid(format!("Missing MST block: {cid}")))?;
            let node =
                decode_node(bytes).map_err(|e| invalid(format!("Invalid MST node {cid}: {e}")))?;
            next.extend(node.left);
            next.extend(node.entries.iter().filter_map(|e| e.right));
            reachable.push((cid, bytes.to_vec()));
        }
        frontier = next;
    }
    // Keys in order (checks key syntax and tree structure).
    let entries = Mst::load(&blocks, commit.data)
        .and_then(|mst| mst.entries(&blocks))
        .map_err(|e| invalid(format!("Invalid MST: {e}")))?;
    let mut records = Vec::with_capacity(entries.len());
    for (key, cid) in entries {
        let (collection, rkey) = key
            .split_once('/')
            .filter(|(c, r)| Nsid::from_str(c).is_ok() && RecordKey::from_str(r).is_ok())
            .ok_or_else(|| invalid(format!("Invalid record key in MST: {key}")))?;
        let bytes = blocks
            .get(&cid)
            .ok_or_else(|| invalid(format!("Missing record block for '{key}': {cid}")))?;
        let value: Value = atproto_data::from_dag_cbor(bytes)
            .map_err(|_| invalid(format!("Could not parse record at '{key}'")))?;
        let mut blobs = Vec::new();
        blob_cids(&value, &mut blobs);
        if seen.insert(cid) {
            reachable.push((cid, bytes.to_vec()));
        }
        records.push(ImportedRecord {
            collection: collection.to_owned(),
            rkey: rkey.to_owned(),
            cid,
            blobs,
        });
    }
    if let Some((cid, _)) = reachable.iter().find(|(c, _)| c.hash().code() != SHA2_256) {
        return Err(invalid(format!("Unsupported hash function in block {cid}")));
    }
    Ok(CheckedImport {
        data: commit.data,
        blocks: reachable,
        records,
    })
}

impl RepoWriter {
    /// Replaces `did`'s repository with the one in `car` (see the module
    /// docs). `trusted` are the keys the imported commit may be signed by;
    /// the new commit is signed with `signing_key`.
    pub async fn import_repo(
        &self,
        did: &str,
        signing_key: &PrivateKey,
        car: Bytes,
        trusted: &[PublicKey],
    ) -> Result<ImportOutcome> {
        let did_parsed = Did::from_str(did).map_err(|e| invalid(format!("invalid DID: {e}")))?;
        let checked = check_car(did, car, trusted)?;
        let store = self.store().repo();
        let txn = store.begin_write(did).await?;
        let current = txn.current().cloned();

        // The current index, to drop the records the import does not hold.
        let keep: HashSet<(&str, &str)> = checked
            .records
            .iter()
            .map(|r| (r.collection.as_str(), r.rkey.as_str()))
            .collect();
        let mut record_deletes = Vec::new();
        for collection in store.list_collections(did).await? {
            let mut cursor: Option<String> = None;
            loop {
                let page = store
                    .list_records(did, &collection, PAGE, cursor.as_deref(), true)
                    .await?;
                let full = page.len() == PAGE as usize;
                cursor = page.last().map(|e| e.rkey.clone());
                for e in page {
                    if !keep.contains(&(e.collection.as_str(), e.rkey.as_str())) {
                        record_deletes.push(RecordDelete {
                            collection: e.collection,
                            rkey: e.rkey,
                        });
                    }
                }
                if !full {
                    break;
                }
            }
        }

        let rev = self.next_rev_after(current.as_ref().map(|r| r.rev.as_str()));
        let commit = UnsignedCommit::new(did_parsed, checked.data, rev, None).sign(signing_key);
        let (commit_cid, commit_bytes) = commit.to_block();
        let rev_s = commit.rev.as_str().to_owned();

        let mut data = RepoCommitData::new(commit_cid, rev_s.clone());
        data.require_blobs = false;
        data.put_blocks = checked.blocks;
        data.put_blocks.push((commit_cid, commit_bytes.clone()));
        data.delete_blocks = current.iter().map(|r| r.cid).collect();
        let records = checked.records.len();
        data.record_puts = checked
            .records
            .into_iter()
            .map(|r| RecordPut {
                collection: r.collection,
                rkey: r.rkey,
                cid: r.cid,
                blobs: r.blobs,
            })
            .collect();
        let removed_records = record_deletes.len();
        data.record_deletes = record_deletes;
        data.events = vec![sync_event(did, commit_cid, &commit_bytes, &rev_s)];
        let out = txn.commit(data).await.map_err(|e| match e {
            StoreError::RepoConflict { .. } => RepoWriteError::Conflict(did.to_owned()),
            other => other.into(),
        })?;
        // The replaced tree's nodes and records.
        self.collect_garbage(did).await?;
        Ok(ImportOutcome {
            commit: CommitInfo {
                cid: commit_cid,
                rev: rev_s,
                seq: out.seqs.first().copied().unwrap_or_default(),
                unreferenced_blobs: out.unreferenced_blobs,
            },
            records,
            removed_records,
        })
    }
}

#[cfg(test)]
mod tests {
    use atproto_crypto::Algorithm;
    use atproto_repo::car::write_car;
    use atproto_repo::BlockMap;
    use atproto_syntax::Tid;

    use super::*;

    const DID: &str = "did:plc:importimportimportimport";

    /// A repository CAR with `records` (key, text), signed by `key`; `drop`
    /// leaves one block out.
    fn car(did: &str, key: &PrivateKey, records: &[(&str, &str)], drop: Option<&str>) -> Bytes {
        let mut blocks = BlockMap::new();
        let mut mst = Mst::new();
        let mut dropped = None;
        for (k, text) in records {
            let json = serde_json::json!({"$type": "app.bsky.feed.post", "text": text,
                "createdAt": "2024-01-01T00:00:00.000Z"});
            let value = Value::from_json(&json).expect("record");
            let cid = blocks.put_cbor(atproto_data::to_dag_cbor(&value));
            if drop == Some(*k) {
                dropped = Some(cid);
            }
            mst.insert(&blocks, k, cid).expect("insert");
        }
        let committed = mst.commit(&blocks).expect("commit");
        for (cid, bytes) in committed.new_blocks.iter() {
            blocks.put(*cid, bytes.clone());
        }
        if let Some(c) = dropped {
            blocks.remove(&c);
        }
        let commit = UnsignedCommit::new(
            Did::from_str(did).expect("did"),
            committed.root,
            Tid::now(),
            None,
        )
        .sign(key);
        let (cid, bytes) = commit.to_block();
        blocks.put(cid, bytes);
        Bytes::from(write_car(&[cid], blocks.iter().map(|(c, b)| (c, &b[..]))))
    }

    fn err(r: Result<CheckedImport>) -> String {
        match r {
            Err(RepoWriteError::InvalidRequest(m)) => m,
            Err(other) => panic!("not InvalidRequest: {other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn accepts_a_complete_signed_repo() {
        let key = PrivateKey::generate(Algorithm::K256);
        let other = PrivateKey::generate(Algorithm::P256);
        let records = [
            ("app.bsky.feed.post/3jzfcijpj2z2a", "one"),
            ("app.bsky.feed.post/3jzfcijpj2z2b", "two"),
        ];
        let ok = check_car(
            DID,
            car(DID, &key, &records, None),
            &[other.public_key(), key.public_key()],
        )
        .expect("valid");
        assert_eq!(ok.records.len(), 2);
        assert_eq!(ok.records[0].rkey, "3jzfcijpj2z2a");
        // Every block stored is one the tree reaches: the MST node(s) and
        // the two records.
        assert!(ok.blocks.len() >= 3);
        assert!(ok.blocks.iter().any(|(c, _)| *c == ok.data));
        // An empty repository is fine too.
        let empty = check_car(DID, car(DID, &key, &[], None), &[key.public_key()]).expect("empty");
        assert!(empty.records.is_empty());
    }

    #[test]
    fn refuses_bad_imports() {
        let key = PrivateKey::generate(Algorithm::K256);
        let records = [("app.bsky.feed.post/3jzfcijpj2z2a", "one")];
        let m = err(check_car(
            DID,
            car(DID, &key, &records, None),
            &[PrivateKey::generate(Algorithm::K256).public_key()],
        ));
        assert!(m.contains("signature"), "{m}");
        let m = err(check_car(
            "did:plc:someoneelsesomeoneelse12",
            car(DID, &key, &records, None),
            &[key.public_key()],
        ));
        assert!(m.contains(DID), "{m}");
        let m = err(check_car(
            DID,
            car(DID, &key, &records, Some(records[0].0)),
            &[key.public_key()],
        ));
        assert!(m.contains("Missing record block"), "{m}");
        let m = err(check_car(
            DID,
            car(DID, &key, &[("not-a-collection/x", "bad key")], None),
            &[key.public_key()],
        ));
        assert!(m.contains("Invalid record key"), "{m}");
        let m = err(check_car(
            DID,
            Bytes::from_static(b"not a car"),
            &[key.public_key()],
        ));
        assert!(m.contains("Invalid CAR"), "{m}");
    }

    #[test]
    fn finds_blob_refs() {
        let link = "bafkreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
        let json = serde_json::json!({"a": [{"$type": "blob", "ref": {"$link": link},
            "mimeType": "image/png", "size": 3}], "b": {"$type": "blob",
            "ref": {"$link": link}, "mimeType": "image/png", "size": 3}});
        let mut out = Vec::new();
        blob_cids(&Value::from_json(&json).expect("value"), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to_string(), link);
    }
}
