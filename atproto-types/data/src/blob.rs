//! Typed blob references: [`Blob`] (`$type: blob`) and the deprecated
//! [`LegacyBlob`] (`{cid, mimeType}`), joined in [`BlobRef`].

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
}

impl Blob {
    /// A blob reference.
    pub fn new(r#ref: Cid, mime_type: impl Into<String>, size: u64) -> Self {
        Blob {
            r#ref,
            mime_type: mime_type.into(),
            size,
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
        })
    }

    /// The `$type: blob` map. Fails only when `size` exceeds `i64::MAX`.
    pub fn to_value(&self) -> Result<Value, DataError> {
        let size = Value::from_u64(self.size).map_err(|e| e.in_key("size"))?;
        Ok(Value::map_from_iter([
            ("$type", Value::from("blob")),
            ("ref", Value::Link(self.r#ref)),
            ("mimeType", Value::from(self.mime_type.as_str())),
            ("size", size),
        ]))
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
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("$type", "blob")?;
        m.serialize_entry("ref", &CidLink(self.r#ref))?;
        m.serialize_entry("mimeType", &self.mime_type)?;
        m.serialize_entry("size", &self.size)?;
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
    /// The blob CID (a string in the data, not a link).
    pub cid: Cid,
    /// Content type; never empty.
    pub mime_type: String,
}

impl LegacyBlob {
    /// Read a legacy blob map.
    pub fn from_value(v: &Value) -> Result<LegacyBlob, DataError> {
        let map = v.as_map().ok_or_else(|| {
            DataError::new(DataErrorKind::WrongKind {
                expected: "a legacy blob object",
                found: v.kind_name(),
            })
        })?;
        let cid = match map.get("cid") {
            Some(Value::String(s)) => Cid::try_from(s.as_str()).map_err(|e| {
                DataError::new(DataErrorKind::InvalidCid(format!("{s:?}: {e}"))).in_key("cid")
            })?,
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
        Ok(LegacyBlob { cid, mime_type })
    }

    /// The legacy map (for re-encoding existing records unchanged).
    pub fn to_value(&self) -> Value {
        Value::map_from_iter([
            ("cid", Value::String(self.cid.to_string())),
            ("mimeType", Value::from(self.mime_type.as_str())),
        ])
    }
}

impl Serialize for LegacyBlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("cid", &self.cid.to_string())?;
        m.serialize_entry("mimeType", &self.mime_type)?;
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

    /// The blob's CID.
    pub fn cid(&self) -> &Cid {
        match self {
            BlobRef::Blob(b) => &b.r#ref,
            BlobRef::Legacy(l) => &l.cid,
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
