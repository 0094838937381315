//! Data-model rules shared by the JSON and CBOR decoders and by
//! [`Value::validate`](crate::Value::validate).

use std::collections::BTreeMap;

use cid::{Cid, Version};

use crate::error::{DataError, DataErrorKind};
use crate::value::Value;

/// Maximum nesting of containers (maps and arrays; the top-level container
/// is level 1). `MAX_CBOR_NESTED_LEVELS` of the atproto data-validation
/// guide.
pub const MAX_NESTED_LEVELS: usize = 32;

/// Maximum number of elements in one map or array
/// (`MAX_CBOR_CONTAINER_LEN` of the data-validation guide).
pub const MAX_CONTAINER_LEN: usize = 128 * 1024;

/// Maximum length in bytes of a map key
/// (`MAX_CBOR_OBJECT_KEY_LEN` of the data-validation guide).
pub const MAX_OBJECT_KEY_LEN: usize = 8192;

/// Keys that atproto-JSON gives a meaning of their own: a map holding them
/// as ordinary keys could not be written as atproto-JSON.
pub(crate) fn is_reserved_key(k: &str) -> bool {
    k == "$link" || k == "$bytes"
}

/// Links must be CIDv1.
pub(crate) fn check_cid(c: &Cid) -> Result<(), DataErrorKind> {
    match c.version() {
        Version::V0 => Err(DataErrorKind::CidV0),
        Version::V1 => Ok(()),
    }
}

pub(crate) fn check_container_len(len: u64) -> Result<(), DataErrorKind> {
    if len > MAX_CONTAINER_LEN as u64 {
        Err(DataErrorKind::ContainerTooLong {
            len,
            max: MAX_CONTAINER_LEN,
        })
    } else {
        Ok(())
    }
}

pub(crate) fn check_key_len(len: u64) -> Result<(), DataErrorKind> {
    if len > MAX_OBJECT_KEY_LEN as u64 {
        Err(DataErrorKind::KeyTooLong {
            len,
            max: MAX_OBJECT_KEY_LEN,
        })
    } else {
        Ok(())
    }
}

/// Rules on a map's own fields, once its children are values: `$type`
/// must be a non-empty string, and a `$type: blob` map must be a blob.
pub(crate) fn check_map_fields(map: &BTreeMap<String, Value>) -> Result<(), DataError> {
    match map.get("$type") {
        None => Ok(()),
        Some(Value::String(s)) if s.is_empty() => {
            Err(DataError::new(DataErrorKind::TypeEmpty).in_key("$type"))
        }
        Some(Value::String(s)) if s == "blob" => check_blob(map),
        Some(Value::String(_)) => Ok(()),
        Some(other) => {
            Err(DataError::new(DataErrorKind::TypeNotString(other.kind_name())).in_key("$type"))
        }
    }
}

/// Check the fields of a `$type: blob` map: `ref` a raw-codec link,
/// `mimeType` a non-empty string, `size` a non-negative integer.
pub(crate) fn check_blob(map: &BTreeMap<String, Value>) -> Result<(), DataError> {
    blob_fields(map).map(|_| ())
}

/// The checked `(ref, mimeType, size)` of a `$type: blob` map.
pub(crate) fn blob_fields(map: &BTreeMap<String, Value>) -> Result<(Cid, &str, i64), DataError> {
    let field_type = |field: &'static str, expected: &'static str, found: &Value| {
        DataError::new(DataErrorKind::BlobFieldType {
            field,
            expected,
            found: found.kind_name(),
        })
        .in_key(field)
    };
    let cid = match map.get("ref") {
        None => return Err(DataErrorKind::BlobMissingField("ref").into()),
        Some(Value::Link(c)) => *c,
        Some(other) => return Err(field_type("ref", "a cid-link", other)),
    };
    let mime = match map.get("mimeType") {
        None => return Err(DataErrorKind::BlobMissingField("mimeType").into()),
        Some(Value::String(s)) if s.is_empty() => {
            return Err(DataError::new(DataErrorKind::BlobEmptyMimeType).in_key("mimeType"))
        }
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(field_type("mimeType", "a string", other)),
    };
    let size = match map.get("size") {
        None => return Err(DataErrorKind::BlobMissingField("size").into()),
        Some(Value::Integer(i)) if *i < 0 => {
            return Err(DataError::new(DataErrorKind::BlobNegativeSize(*i)).in_key("size"))
        }
        Some(Value::Integer(i)) => *i,
        Some(other) => return Err(field_type("size", "an integer", other)),
    };
    Ok((cid, mime, size))
}

/// Walk a whole value checking every rule. `depth` counts the containers
/// enclosing `v`.
pub(crate) fn validate_tree(v: &Value, depth: usize) -> Result<(), DataError> {
    match v {
        Value::Link(c) => check_cid(c).map_err(DataError::new),
        Value::Array(a) => {
            if depth >= MAX_NESTED_LEVELS {
                return Err(DataErrorKind::TooDeep(MAX_NESTED_LEVELS).into());
            }
            check_container_len(a.len() as u64)?;
            for (i, item) in a.iter().enumerate() {
                validate_tree(item, depth + 1).map_err(|e| e.in_index(i))?;
            }
            Ok(())
        }
        Value::Map(m) => {
            if depth >= MAX_NESTED_LEVELS {
                return Err(DataErrorKind::TooDeep(MAX_NESTED_LEVELS).into());
            }
            check_container_len(m.len() as u64)?;
            for (k, item) in m {
                check_key_len(k.len() as u64).map_err(|e| DataError::new(e).in_key(k))?;
                if is_reserved_key(k) {
                    return Err(DataErrorKind::ReservedKey(k.clone()).into());
                }
                validate_tree(item, depth + 1).map_err(|e| e.in_key(k))?;
            }
            check_map_fields(m)
        }
        Value::Null | Value::Bool(_) | Value::Integer(_) | Value::String(_) | Value::Bytes(_) => {
            Ok(())
        }
    }
}
