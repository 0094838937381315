//! Turning client writes into prepared records: `$type`, lexicon
//! validation, record keys, blob references, one DAG-CBOR encoding each.
//!
//! The rules are the reference PDS's:
//!
//! * a record without `$type` gets the collection; with validation on (not
//!   `validate: false`) a different `$type` is rejected;
//! * `validate: true` requires a known lexicon; `validate: false` skips
//!   lexicon validation; unset validates when the lexicon is known and
//!   reports `validationStatus` `valid` or `unknown`;
//! * a validated record with a string `createdAt` must hold an atproto
//!   datetime;
//! * every record obeys the data model (well-formed blobs, `$type`...);
//! * record keys always have record-key syntax; with validation on and a
//!   known lexicon they must also fit its key type (`tid`, `literal:self`...).

use std::str::FromStr;

use atproto_data::{Blob, Value};
use atproto_lexicon::{Catalog, ValidationErrors};
use atproto_syntax::{Datetime, Nsid, RecordKey};
use bytes::Bytes;
use cid::Cid;

use crate::error::{RepoWriteError, Result};

/// Multicodec of raw blobs.
const RAW_CODEC: u64 = 0x55;

/// One write of a batch, as the XRPC handlers receive it.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// A new record (`createRecord`, `applyWrites#create`). Without `rkey`
    /// a TID is generated. Fails if the record exists.
    Create {
        collection: String,
        rkey: Option<String>,
        record: Value,
        validate: Option<bool>,
    },
    /// Put a record (`putRecord`, `applyWrites#update`): replace it, or
    /// create it if absent. `swap_record`: `Some(Some(cid))` requires the
    /// current record to be `cid`, `Some(None)` requires it to be absent.
    /// Writing the record it already holds changes nothing.
    Update {
        collection: String,
        rkey: String,
        record: Value,
        validate: Option<bool>,
        swap_record: Option<Option<Cid>>,
    },
    /// Remove a record (`deleteRecord`, `applyWrites#delete`). Deleting an
    /// absent record changes nothing (unless a swap says it must exist).
    Delete {
        collection: String,
        rkey: String,
        swap_record: Option<Option<Cid>>,
    },
}

impl Write {
    /// The collection written.
    pub fn collection(&self) -> &str {
        match self {
            Write::Create { collection, .. }
            | Write::Update { collection, .. }
            | Write::Delete { collection, .. } => collection,
        }
    }
}

/// The outcome of lexicon validation for one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValidationStatus {
    /// Validated against a known lexicon.
    Valid,
    /// The lexicon is unknown; the record was not validated.
    Unknown,
}

impl ValidationStatus {
    /// `valid` / `unknown`, as `validationStatus` in XRPC outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationStatus::Valid => "valid",
            ValidationStatus::Unknown => "unknown",
        }
    }
}

/// A record ready to write: validated, encoded once, its blobs found.
#[derive(Clone, Debug)]
pub(crate) struct PreparedRecord {
    pub cid: Cid,
    pub bytes: Bytes,
    pub blobs: Vec<Cid>,
    pub status: Option<ValidationStatus>,
}

/// A write ready to apply.
#[derive(Clone, Debug)]
pub(crate) enum PreparedWrite {
    Create {
        collection: Nsid,
        /// `None`: generate a TID (checked against `key_check` then).
        rkey: Option<String>,
        record: PreparedRecord,
        /// Whether the lexicon's key type applies to a generated key.
        key_check: bool,
    },
    Update {
        collection: Nsid,
        rkey: String,
        record: PreparedRecord,
        swap: Option<Option<Cid>>,
    },
    Delete {
        collection: Nsid,
        rkey: String,
        swap: Option<Option<Cid>>,
    },
}

fn invalid(msg: impl Into<String>) -> RepoWriteError {
    RepoWriteError::InvalidRequest(msg.into())
}

fn parse_collection(c: &str) -> Result<Nsid> {
    Nsid::from_str(c).map_err(|e| invalid(format!("Invalid collection {c:?}: {e}")))
}

pub(crate) fn parse_rkey(rkey: &str) -> Result<()> {
    RecordKey::from_str(rkey)
        .map(|_| ())
        .map_err(|e| invalid(format!("Invalid record key {rkey:?}: {e}")))
}

/// Checks `rkey` against the lexicon's key type (known lexicons only).
pub(crate) fn check_key_type(catalog: &Catalog, collection: &Nsid, rkey: &str) -> Result<()> {
    match catalog.validate_rkey(collection, rkey) {
        Ok(()) => Ok(()),
        Err(e) if e.is_unknown_lexicon() => Ok(()),
        Err(e) => Err(invalid(format!("Invalid record key for {collection}: {e}"))),
    }
}

fn record_errors(collection: &Nsid, e: &ValidationErrors) -> RepoWriteError {
    invalid(format!("Invalid {collection} record: {e}"))
}

/// Every blob (`$type: blob` map) anywhere in `v`, in order, without
/// duplicates. A blob whose ref is not a raw-codec CID is rejected.
pub(crate) fn collect_blobs(v: &Value, path: &mut String, out: &mut Vec<Cid>) -> Result<()> {
    match v {
        Value::Map(m) => {
            if matches!(m.get("$type"), Some(Value::String(t)) if t == "blob") {
                let blob = Blob::from_value(v)
                    .map_err(|e| invalid(format!("Invalid blob at {}: {e}", display_path(path))))?;
                if blob.r#ref.codec() != RAW_CODEC {
                    return Err(invalid(format!(
                        "Invalid blob ref at {}: {} is not a raw CID",
                        display_path(path),
                        blob.r#ref
                    )));
                }
                if !out.contains(&blob.r#ref) {
                    out.push(blob.r#ref);
                }
                return Ok(());
            }
            for (k, child) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                collect_blobs(child, path, out)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                collect_blobs(child, path, out)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "the record"
    } else {
        path
    }
}

/// `$type`, data model, lexicon validation, `createdAt`, blobs, encoding.
pub(crate) fn prepare_record(
    catalog: &Catalog,
    collection: &Nsid,
    mut record: Value,
    validate: Option<bool>,
) -> Result<PreparedRecord> {
    let check = validate != Some(false);
    let Some(map) = record.as_map_mut() else {
        return Err(invalid(format!(
            "Invalid {collection} record: a record must be an object, not {}",
            record.kind_name()
        )));
    };
    match map.get("$type") {
        None => {
            map.insert(
                "$type".to_owned(),
                Value::String(collection.as_str().to_owned()),
            );
        }
        Some(Value::String(t)) if t == collection.as_str() => {}
        Some(Value::String(t)) if check => {
            return Err(invalid(format!(
                "Invalid $type: expected {collection}, got {t}"
            )));
        }
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(invalid(format!(
                "Invalid $type: expected a string, got {}",
                other.kind_name()
            )));
        }
    }
    record
        .validate()
        .map_err(|e| invalid(format!("Invalid {collection} record: {e}")))?;

    let status = if check {
        match catalog.validate_record(collection, &record) {
            Ok(()) => {
                if let Some(Value::String(created)) = record.get("createdAt") {
                    if Datetime::from_str(created).is_err() {
                        return Err(invalid(format!(
                            "Invalid {collection} record: createdAt must be a valid atproto \
                             datetime (both RFC-3339 and ISO-8601)"
                        )));
                    }
                }
                Some(ValidationStatus::Valid)
            }
            Err(e) if e.is_unknown_lexicon() => {
                if validate == Some(true) {
                    return Err(invalid(format!(
                        "Lexicon not found: {collection} (validation was required)"
                    )));
                }
                Some(ValidationStatus::Unknown)
            }
            Err(e) => return Err(record_errors(collection, &e)),
        }
    } else {
        None
    };

    let mut blobs = Vec::new();
    collect_blobs(&record, &mut String::new(), &mut blobs)?;
    let bytes = atproto_data::to_dag_cbor(&record);
    let cid = atproto_data::cid_for_dag_cbor(&bytes);
    Ok(PreparedRecord {
        cid,
        bytes: Bytes::from(bytes),
        blobs,
        status,
    })
}

/// Prepares one write (everything that does not need the repository).
pub(crate) fn prepare_write(catalog: &Catalog, write: Write) -> Result<PreparedWrite> {
    match write {
        Write::Create {
            collection,
            rkey,
            record,
            validate,
        } => {
            let collection = parse_collection(&collection)?;
            let key_check = validate != Some(false);
            if let Some(k) = &rkey {
                parse_rkey(k)?;
                if key_check {
                    check_key_type(catalog, &collection, k)?;
                }
            }
            let record = prepare_record(catalog, &collection, record, validate)?;
            Ok(PreparedWrite::Create {
                collection,
                rkey,
                record,
                key_check,
            })
        }
        Write::Update {
            collection,
            rkey,
            record,
            validate,
            swap_record,
        } => {
            let collection = parse_collection(&collection)?;
            parse_rkey(&rkey)?;
            if validate != Some(false) {
                check_key_type(catalog, &collection, &rkey)?;
            }
            let record = prepare_record(catalog, &collection, record, validate)?;
            Ok(PreparedWrite::Update {
                collection,
                rkey,
                record,
                swap: swap_record,
            })
        }
        Write::Delete {
            collection,
            rkey,
            swap_record,
        } => {
            let collection = parse_collection(&collection)?;
            parse_rkey(&rkey)?;
            Ok(PreparedWrite::Delete {
                collection,
                rkey,
                swap: swap_record,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> &'static Catalog {
        atproto_types::lex::try_catalog().expect("embedded catalog")
    }

    fn nsid(s: &str) -> Nsid {
        Nsid::from_str(s).expect("nsid")
    }

    fn json(s: &str) -> Value {
        Value::from_json_str(s).expect("json")
    }

    #[test]
    fn type_defaults_to_collection_and_mismatch_is_rejected() {
        let c = nsid("app.bsky.feed.post");
        let p = prepare_record(
            catalog(),
            &c,
            json(r#"{"text": "hi", "createdAt": "2024-01-01T00:00:00.000Z"}"#),
            None,
        )
        .expect("valid");
        assert_eq!(p.status, Some(ValidationStatus::Valid));
        let decoded = atproto_data::from_dag_cbor(&p.bytes).expect("cbor");
        assert_eq!(decoded.type_name(), Some("app.bsky.feed.post"));
        assert_eq!(p.cid, atproto_data::cid_for_dag_cbor(&p.bytes));

        let bad = json(r#"{"$type": "app.bsky.feed.like", "text": "hi"}"#);
        let err = prepare_record(catalog(), &c, bad.clone(), None).unwrap_err();
        assert!(err.to_string().contains("Invalid $type"), "{err}");
        // validate: false keeps a mismatching $type.
        let p = prepare_record(catalog(), &c, bad, Some(false)).expect("unvalidated");
        assert_eq!(p.status, None);
    }

    #[test]
    fn blobs_are_found_anywhere() {
        let link = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy";
        let rec = json(&format!(
            r#"{{"a": [{{"x": {{"$type": "blob", "ref": {{"$link": "{link}"}}, "mimeType": "image/png", "size": 3}}}}],
                "b": {{"$type": "blob", "ref": {{"$link": "{link}"}}, "mimeType": "image/png", "size": 3}}}}"#
        ));
        let mut out = Vec::new();
        collect_blobs(&rec, &mut String::new(), &mut out).expect("blobs");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].to_string(), link);
        // A dag-cbor CID is not a blob ref.
        let bad = json(
            r#"{"b": {"$type": "blob", "ref": {"$link": "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"}, "mimeType": "image/png", "size": 3}}"#,
        );
        let err = collect_blobs(&bad, &mut String::new(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("b"), "{err}");
    }

    #[test]
    fn key_types() {
        let c = nsid("app.bsky.actor.profile");
        assert!(check_key_type(catalog(), &c, "self").is_ok());
        assert!(check_key_type(catalog(), &c, "other").is_err());
        let post = nsid("app.bsky.feed.post");
        assert!(check_key_type(catalog(), &post, "3jzfcijpj2z2a").is_ok());
        assert!(check_key_type(catalog(), &post, "not-a-tid").is_err());
        assert!(check_key_type(catalog(), &nsid("com.example.thing"), "anything").is_ok());
        assert!(parse_rkey("..").is_err());
        assert!(parse_rkey("a/b").is_err());
    }
}
