//! The [`Value`] type: one node of the atproto data model.

use std::collections::BTreeMap;
use std::fmt;

use cid::Cid;

use crate::error::{DataError, DataErrorKind};

/// A value in the atproto data model.
///
/// Maps are keyed by strings and kept in a `BTreeMap`; the DAG-CBOR encoder
/// applies the canonical (length-first) key order on output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Value {
    /// `null`.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A signed 64-bit integer.
    Integer(i64),
    /// A UTF-8 string.
    String(String),
    /// A byte string (`{"$bytes": ..}` in JSON).
    Bytes(Vec<u8>),
    /// A CID link (tag 42 in CBOR, `{"$link": ..}` in JSON).
    Link(Cid),
    /// An array.
    Array(Vec<Value>),
    /// A map with string keys.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Build a map from key/value pairs (later duplicates win).
    pub fn map_from_iter<K, I>(iter: I) -> Value
    where
        K: Into<String>,
        I: IntoIterator<Item = (K, Value)>,
    {
        Value::Map(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// Build an array from values.
    pub fn array_from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Value {
        Value::Array(iter.into_iter().collect())
    }

    /// An empty map.
    pub fn empty_map() -> Value {
        Value::Map(BTreeMap::new())
    }

    /// The data-model kind name: `null`, `boolean`, `integer`, `string`,
    /// `bytes`, `cid-link`, `array` or `object`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Integer(_) => "integer",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Link(_) => "cid-link",
            Value::Array(_) => "array",
            Value::Map(_) => "object",
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a byte string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The CID, if this is a link.
    pub fn as_link(&self) -> Option<&Cid> {
        match self {
            Value::Link(c) => Some(c),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The elements, mutably, if this is an array.
    pub fn as_array_mut(&mut self) -> Option<&mut Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entries, mutably, if this is a map.
    pub fn as_map_mut(&mut self) -> Option<&mut BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Take the map out, if this is one.
    pub fn into_map(self) -> Option<BTreeMap<String, Value>> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Take the array out, if this is one.
    pub fn into_array(self) -> Option<Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Map lookup: `None` when this is not a map or the key is absent.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// Map lookup of a string field.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Map lookup of an integer field.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// Map lookup of a link field.
    pub fn get_link(&self, key: &str) -> Option<&Cid> {
        self.get(key).and_then(Value::as_link)
    }

    /// The `$type` of a map, if it has a string one.
    pub fn type_name(&self) -> Option<&str> {
        self.get_str("$type")
    }

    /// Array index lookup.
    pub fn index(&self, i: usize) -> Option<&Value> {
        self.as_array().and_then(|a| a.get(i))
    }

    /// Insert into a map; returns the previous value. Errors if this is not a map.
    pub fn insert(&mut self, key: impl Into<String>, v: Value) -> Result<Option<Value>, DataError> {
        match self {
            Value::Map(m) => Ok(m.insert(key.into(), v)),
            other => Err(DataError::new(DataErrorKind::WrongKind {
                expected: "object",
                found: other.kind_name(),
            })),
        }
    }

    /// An integer from a `u64`, failing above `i64::MAX`.
    pub fn from_u64(u: u64) -> Result<Value, DataError> {
        i64::try_from(u)
            .map(Value::Integer)
            .map_err(|_| DataError::new(DataErrorKind::IntegerOutOfRange(u.to_string())))
    }

    /// Check every data-model rule on a value built in code (decoders check
    /// these already): nesting depth and container limits, `$type` is a
    /// non-empty string, `$type: blob` maps are well-formed, no `$link` /
    /// `$bytes` keys in maps, links are CIDv1.
    pub fn validate(&self) -> Result<(), DataError> {
        crate::model::validate_tree(self, 0)
    }

    /// Require a map at the top level, as atproto records and blocks are.
    pub fn into_object(self) -> Result<BTreeMap<String, Value>, DataError> {
        match self {
            Value::Map(m) => Ok(m),
            other => Err(DataError::new(DataErrorKind::NotAnObject(
                other.kind_name(),
            ))),
        }
    }
}

impl fmt::Display for Value {
    /// Compact atproto-JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Self {
                Value::Integer(i64::from(i))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl From<Cid> for Value {
    fn from(c: Cid) -> Self {
        Value::Link(c)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}

impl From<BTreeMap<String, Value>> for Value {
    fn from(m: BTreeMap<String, Value>) -> Self {
        Value::Map(m)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        match o {
            Some(v) => v.into(),
            None => Value::Null,
        }
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Value {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        Value::map_from_iter(iter)
    }
}

impl FromIterator<Value> for Value {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        Value::Array(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors() {
        let v = Value::map_from_iter([
            ("$type", Value::from("app.bsky.feed.post")),
            ("n", Value::from(5)),
            ("a", Value::array_from_iter([Value::Null, true.into()])),
        ]);
        assert_eq!(v.type_name(), Some("app.bsky.feed.post"));
        assert_eq!(v.get_i64("n"), Some(5));
        assert_eq!(
            v.get("a").and_then(|a| a.index(1)),
            Some(&Value::Bool(true))
        );
        assert!(v.get("missing").is_none());
        assert!(Value::Null.get("x").is_none());
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert!(Value::from_u64(u64::MAX).is_err());
        assert_eq!(Value::from_u64(7).ok(), Some(Value::Integer(7)));
        let mut m = Value::empty_map();
        assert!(m.insert("k", 1.into()).is_ok());
        assert!(Value::Null.insert("k", 1.into()).is_err());
        assert!(Value::from("x").into_object().is_err());
    }
}
