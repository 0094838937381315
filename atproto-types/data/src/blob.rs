//! Typed blob references: [`Blob`] (`$type: blob`) and the deprecated
//! [`LegacyBlob`] (`{cid, mimeType}`), joined in [`BlobRef`].
//!
//! Both keep the fields a blob carries beyond its own (`extra`), so a record
//! holding them round-trips exactly (and keeps its CID). A legacy blob's
//! `cid` is kept as the string it is, checked as CID *syntax* only (as the
//! lexicon validator checks it): old records hold strings that do not decode.

use std::collections::BTreeMap;

use cid::Cid;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{DataError, DataErrorKind};
use crate::model::blob_fields;
use crate::serde_impl::CidLink;
use crate::value::Value;

/// A blob reference: `{"$type": "blob", "ref": <raw CID link>, "mimeType", "size"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Blob {
    /// CID of the blob bytes (raw codec).
    pub r#ref: Cid,
    /// Content type; never empty.
    pub mime_type: String,
    /// Length in bytes.
    pub size: u64,
    /// Any other fields of the map, kept as they are.
    pub extra: BTreeMap<String, Value>,
}

/// The fields of `map` other than `known`.
fn extra_fields(map: &BTreeMap<String, Value>, known: &[&str]) -> BTreeMap<String, Value> {
    map.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

const BLOB_FIELDS: &[&str] = &["$type", "ref", "mimeType", "size"];
const LEGACY_FIELDS: &[&str] = &["cid", "mimeType"];

impl Blob {
    /// A blob reference.
    pub fn new(r#ref: Cid, mime_type: impl Into<String>, size: u64) -> Self {
        Blob {
            r#ref,
            mime_type: mime_type.into(),
            size,
            extra: BTreeMap::new(),
        }
    }

    /// The blob's CID.
    pub fn cid(&self) -> &Cid {
        &self.r#ref
    }

    /// Read a `$type: blob` map, checking every field.
    pub fn from_value(v: &Value) -> Result<Blob, DataError> {
        let map = v.as_map().ok_or_else(|| {
            DataError::new(DataErrorKind::WrongKind {
                expected: "a blob object",
                found: v.kind_name(),
            })
        })?;
        Blob::from_map(map)
    }

    fn from_map(map: &BTreeMap<String, Value>) -> Result<Blob, DataError> {
        match map.get("$type") {
            Some(Value::String(t)) if t == "blob" => {}
            Some(Value::String(_)) => {
                return Err(DataError::new(DataErrorKind::WrongKind {
                    expected: "`$type` \"blob\"",
                    found: "another `$type`",
                })
                .in_key("$type"))
            }
            Some(other) => {
                return Err(
                    DataError::new(DataErrorKind::TypeNotString(other.kind_name())).in_key("$type"),
                )
            }
            None => return Err(DataErrorKind::BlobMissingField("$type").into()),
        }
        let (r#ref, mime, size) = blob_fields(map)?;
        Ok(Blob {
            r#ref,
            mime_type: mime.to_owned(),
            size: u64::try_from(size).map_err(|_| DataErrorKind::BlobNegativeSize(size))?,
            extra: extra_fields(map, BLOB_FIELDS),
        })
    }

    /// The `$type: blob` map. Fails only when `size` exceeds `i64::MAX`.
    pub fn to_value(&self) -> Result<Value, DataError> {
        let size = Value::from_u64(self.size).map_err(|e| e.in_key("size"))?;
        let mut map = self.extra.clone();
        map.insert("$type".into(), Value::from("blob"));
        map.insert("ref".into(), Value::Link(self.r#ref));
        map.insert("mimeType".into(), Value::from(self.mime_type.as_str()));
        map.insert("size".into(), size);
        Ok(Value::Map(map))
    }
}

impl TryFrom<&Value> for Blob {
    type Error = DataError;
    fn try_from(v: &Value) -> Result<Self, DataError> {
        Blob::from_value(v)
    }
}

impl TryFrom<&Blob> for Value {
    type Error = DataError;
    fn try_from(b: &Blob) -> Result<Self, DataError> {
        b.to_value()
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extra = self
            .extra
            .iter()
            .filter(|(k, _)| !BLOB_FIELDS.contains(&k.as_str()));
        let mut m = s.serialize_map(Some(4 + extra.clone().count()))?;
        m.serialize_entry("$type", "blob")?;
        m.serialize_entry("ref", &CidLink(self.r#ref))?;
        m.serialize_entry("mimeType", &self.mime_type)?;
        m.serialize_entry("size", &self.size)?;
        for (k, v) in extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Blob::from_value(&v).map_err(D::Error::custom)
    }
}

/// The deprecated blob form `{"cid": "<CID string>", "mimeType": ..}`:
/// read it, never write new ones.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LegacyBlob {
    /// The blob CID as written (a string in the data, not a link), checked
    /// as CID syntax only: see [`LegacyBlob::parse_cid`].
    pub cid: String,
    /// Content type; never empty.
    pub mime_type: String,
    /// Any other fields of the map, kept as they are.
    pub extra: BTreeMap<String, Value>,
}

impl LegacyBlob {
    /// The CID, when the string decodes as one.
    pub fn parse_cid(&self) -> Option<Cid> {
        Cid::try_from(self.cid.as_str()).ok()
    }

    /// Read a legacy blob map.
    pub fn from_value(v: &Value) -> Result<LegacyBlob, DataError> {
        let map = v.as_map().ok_or_else(|| {
            DataError::new(DataErrorKind::WrongKind {
                expected: "a legacy blob object",
                found: v.kind_name(),
            })
        })?;
        let cid = match map.get("cid") {
            Some(Value::String(s)) => {
                check_cid_syntax(s).map_err(|e| {
                    DataError::new(DataErrorKind::InvalidCid(format!("{s:?}: {e}"))).in_key("cid")
                })?;
                s.clone()
            }
            Some(_) => {
                return Err(
                    DataError::new(DataErrorKind::LegacyBlob("`cid` must be a string"))
                        .in_key("cid"),
                )
            }
            None => return Err(DataErrorKind::LegacyBlob("missing `cid`").into()),
        };
        let mime_type = match map.get("mimeType") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::String(_)) => {
                return Err(DataError::new(DataErrorKind::BlobEmptyMimeType).in_key("mimeType"))
            }
            Some(_) => {
                return Err(DataError::new(DataErrorKind::LegacyBlob(
                    "`mimeType` must be a string",
                ))
                .in_key("mimeType"))
            }
            None => return Err(DataErrorKind::LegacyBlob("missing `mimeType`").into()),
        };
        Ok(LegacyBlob {
            cid,
            mime_type,
            extra: extra_fields(map, LEGACY_FIELDS),
        })
    }

    /// The legacy map (for re-encoding existing records unchanged).
    pub fn to_value(&self) -> Value {
        let mut map = self.extra.clone();
        map.insert("cid".into(), Value::String(self.cid.clone()));
        map.insert("mimeType".into(), Value::from(self.mime_type.as_str()));
        Value::Map(map)
    }
}

/// The lexicon `cid` string format (CIDv1 syntax with a multibase prefix,
/// not decoded), as `atproto_syntax::CidString` checks it.
fn check_cid_syntax(s: &str) -> Result<(), &'static str> {
    const B58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const B32HEX: &str = "0123456789abcdefghijklmnopqrstuv";
    const B32HEXU: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUV";
    const B32: &str = "abcdefghijklmnopqrstuvwxyz234567";
    const B32U: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    if s.starts_with("Qm") && s.len() == 46 {
        return Err("CIDv0 is not supported, only CIDv1");
    }
    let len = s.chars().count();
    if !(8..=512).contains(&len) {
        return Err("a CID string has 8 to 512 characters");
    }
    let mut chars = s.chars();
    let (alphabet, padded) = match chars.next().unwrap_or(' ') {
        '0' => ("01", false),
        '7' => ("01234567", false),
        '9' => ("0123456789", false),
        'f' => ("0123456789abcdef", false),
        'F' => ("0123456789ABCDEF", false),
        'v' => (B32HEX, false),
        'V' => (B32HEXU, false),
        't' => (B32HEX, true),
        'T' => (B32HEXU, true),
        'b' => (B32, false),
        'B' => (B32U, false),
        'c' => (B32, true),
        'C' => (B32U, true),
        'h' => ("ybndrfg8ejkmcpqxot1uwisza345h769", false),
        'k' => ("0123456789abcdefghijklmnopqrstuvwxyz", false),
        'K' => ("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", false),
        'z' | 'Z' => (B58, false),
        'm' => (B64, false),
        'M' => (B64, true),
        'u' => (B64URL, false),
        'U' => (B64URL, true),
        _ => return Err("a CID string starts with a multibase prefix"),
    };
    let mut padding = false;
    for c in chars {
        if padded && c == '=' {
            padding = true;
        } else if padding || !alphabet.contains(c) {
            return Err("a CID string holds only its base's characters (and final padding)");
        }
    }
    Ok(())
}

impl Serialize for LegacyBlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let extra = self
            .extra
            .iter()
            .filter(|(k, _)| !LEGACY_FIELDS.contains(&k.as_str()));
        let mut m = s.serialize_map(Some(2 + extra.clone().count()))?;
        m.serialize_entry("cid", &self.cid)?;
        m.serialize_entry("mimeType", &self.mime_type)?;
        for (k, v) in extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for LegacyBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        LegacyBlob::from_value(&v).map_err(D::Error::custom)
    }
}

/// A blob reference in either form: what a lexicon `blob` field holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BlobRef {
    /// The current `$type: blob` form.
    Blob(Blob),
    /// The deprecated `{cid, mimeType}` form.
    Legacy(LegacyBlob),
}

impl BlobRef {
    /// Read either form: a map with `$type` must be a `Blob`; one without
    /// must be a legacy blob.
    pub fn from_value(v: &Value) -> Result<BlobRef, DataError> {
        match v.get("$type") {
            Some(_) => Blob::from_value(v).map(BlobRef::Blob),
            None => LegacyBlob::from_value(v).map(BlobRef::Legacy),
        }
    }

    /// The value in its own form (legacy stays legacy).
    pub fn to_value(&self) -> Result<Value, DataError> {
        match self {
            BlobRef::Blob(b) => b.to_value(),
            BlobRef::Legacy(l) => Ok(l.to_value()),
        }
    }

    /// The blob's CID; `None` for a legacy blob whose CID string does not
    /// decode.
    pub fn cid(&self) -> Option<Cid> {
        match self {
            BlobRef::Blob(b) => Some(b.r#ref),
            BlobRef::Legacy(l) => l.parse_cid(),
        }
    }

    /// The content type.
    pub fn mime_type(&self) -> &str {
        match self {
            BlobRef::Blob(b) => &b.mime_type,
            BlobRef::Legacy(l) => &l.mime_type,
        }
    }

    /// The size, unknown for legacy blobs.
    pub fn size(&self) -> Option<u64> {
        match self {
            BlobRef::Blob(b) => Some(b.size),
            BlobRef::Legacy(_) => None,
        }
    }
}

impl From<Blob> for BlobRef {
    fn from(b: Blob) -> Self {
        BlobRef::Blob(b)
    }
}

impl Serialize for BlobRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BlobRef::Blob(b) => b.serialize(s),
            BlobRef::Legacy(l) => l.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for BlobRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        BlobRef::from_value(&v).map_err(D::Error::custom)
    }
}
