//! serde glue. [`Value`] (de)serializes as atproto-JSON; [`CidLink`] and
//! [`Bytes`] are field wrappers for serde-derived structs; [`to_value`] and
//! [`from_value`] convert serde types to and from [`Value`].

use std::collections::BTreeMap;
use std::fmt;

use cid::Cid;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{DataError, DataErrorKind};
use crate::json::{decode_base64, encode_base64, parse_cid_str};
use crate::model::{check_container_len, check_key_len, check_map_fields, MAX_NESTED_LEVELS};
use crate::value::Value;

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Integer(i) => s.serialize_i64(*i),
            Value::String(v) => s.serialize_str(v),
            Value::Bytes(b) => Bytes::serialize_slice(b, s),
            Value::Link(c) => CidLink::serialize_cid(c, s),
            Value::Array(a) => s.collect_seq(a),
            Value::Map(m) => s.collect_map(m),
        }
    }
}

/// Builds a [`Value`] while deserializing, tracking nesting depth.
struct ValueSeed {
    depth: usize,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ValueSeed { depth: 0 }.deserialize(d)
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn custom<E: de::Error>(k: DataErrorKind) -> E {
    E::custom(DataError::new(k))
}

const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an atproto data-model value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E: de::Error>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Integer(i))
    }

    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        i64::try_from(u)
            .map(Value::Integer)
            .map_err(|_| custom(DataErrorKind::IntegerOutOfRange(u.to_string())))
    }

    fn visit_i128<E: de::Error>(self, i: i128) -> Result<Value, E> {
        i64::try_from(i)
            .map(Value::Integer)
            .map_err(|_| custom(DataErrorKind::IntegerOutOfRange(i.to_string())))
    }

    fn visit_u128<E: de::Error>(self, u: u128) -> Result<Value, E> {
        i64::try_from(u)
            .map(Value::Integer)
            .map_err(|_| custom(DataErrorKind::IntegerOutOfRange(u.to_string())))
    }

    fn visit_f64<E: de::Error>(self, f: f64) -> Result<Value, E> {
        if f.is_finite() && f.fract() == 0.0 {
            if f.abs() <= MAX_SAFE_INTEGER {
                return Ok(Value::Integer(f as i64));
            }
            if f.abs() >= 9_223_372_036_854_775_808.0 {
                return Err(custom(DataErrorKind::IntegerOutOfRange(f.to_string())));
            }
            return Err(custom(DataErrorKind::InexactInteger(f.to_string())));
        }
        Err(custom(DataErrorKind::Float(f.to_string())))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(b.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, b: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(b))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= MAX_NESTED_LEVELS {
            return Err(custom(DataErrorKind::TooDeep(MAX_NESTED_LEVELS)));
        }
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(ValueSeed {
            depth: self.depth + 1,
        })? {
            out.push(v);
            check_container_len(out.len() as u64).map_err(custom)?;
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        // A `$link` / `$bytes` object is not a container, so allow one level
        // more here and check the depth once the kind of map is known.
        if self.depth > MAX_NESTED_LEVELS {
            return Err(custom(DataErrorKind::TooDeep(MAX_NESTED_LEVELS)));
        }
        let mut map = BTreeMap::new();
        while let Some(k) = access.next_key::<String>()? {
            check_key_len(k.len() as u64).map_err(custom)?;
            let v = access.next_value_seed(ValueSeed {
                depth: self.depth + 1,
            })?;
            map.insert(k, v);
            check_container_len(map.len() as u64).map_err(custom)?;
        }
        if map.contains_key("$link") {
            if let Some(k) = map.keys().find(|k| *k != "$link") {
                return Err(custom(DataErrorKind::LinkExtraKey(k.clone())));
            }
            return match map.remove("$link") {
                Some(Value::String(s)) => parse_cid_str(&s).map(Value::Link).map_err(custom),
                Some(other) => Err(custom(DataErrorKind::LinkNotString(other.kind_name()))),
                None => Err(custom(DataErrorKind::MissingField("$link"))),
            };
        }
        if map.contains_key("$bytes") {
            if let Some(k) = map.keys().find(|k| *k != "$bytes") {
                return Err(custom(DataErrorKind::BytesExtraKey(k.clone())));
            }
            return match map.remove("$bytes") {
                Some(Value::String(s)) => decode_base64(&s).map(Value::Bytes).map_err(custom),
                Some(other) => Err(custom(DataErrorKind::BytesNotString(other.kind_name()))),
                None => Err(custom(DataErrorKind::MissingField("$bytes"))),
            };
        }
        if self.depth >= MAX_NESTED_LEVELS {
            return Err(custom(DataErrorKind::TooDeep(MAX_NESTED_LEVELS)));
        }
        check_map_fields(&map).map_err(de::Error::custom)?;
        Ok(Value::Map(map))
    }
}

/// A CID link field: serializes as `{"$link": "<cid>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CidLink(pub Cid);

impl CidLink {
    fn serialize_cid<S: Serializer>(c: &Cid, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("$link", &c.to_string())?;
        m.end()
    }
}

impl Serialize for CidLink {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        CidLink::serialize_cid(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for CidLink {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Link(c) => Ok(CidLink(c)),
            other => Err(custom(DataErrorKind::WrongKind {
                expected: "a {\"$link\": ..} object",
                found: other.kind_name(),
            })),
        }
    }
}

impl From<Cid> for CidLink {
    fn from(c: Cid) -> Self {
        CidLink(c)
    }
}

impl From<CidLink> for Cid {
    fn from(c: CidLink) -> Self {
        c.0
    }
}

impl From<CidLink> for Value {
    fn from(c: CidLink) -> Self {
        Value::Link(c.0)
    }
}

impl fmt::Display for CidLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A bytes field: serializes as `{"$bytes": "<base64>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    fn serialize_slice<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("$bytes", &encode_base64(b))?;
        m.end()
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Bytes::serialize_slice(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bytes(b) => Ok(Bytes(b)),
            other => Err(custom(DataErrorKind::WrongKind {
                expected: "a {\"$bytes\": ..} object",
                found: other.kind_name(),
            })),
        }
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(b: Vec<u8>) -> Self {
        Bytes(b)
    }
}

impl From<Bytes> for Vec<u8> {
    fn from(b: Bytes) -> Self {
        b.0
    }
}

impl From<Bytes> for Value {
    fn from(b: Bytes) -> Self {
        Value::Bytes(b.0)
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Convert a serde type to a [`Value`] through its atproto-JSON form
/// (use [`CidLink`] and [`Bytes`] for link and bytes fields).
pub fn to_value<T: Serialize + ?Sized>(t: &T) -> Result<Value, DataError> {
    let j =
        serde_json::to_value(t).map_err(|e| DataError::new(DataErrorKind::Serde(e.to_string())))?;
    Value::from_json(&j)
}

/// Convert a [`Value`] to a serde type through its atproto-JSON form.
pub fn from_value<T: DeserializeOwned>(v: &Value) -> Result<T, DataError> {
    serde_json::from_value(v.to_json())
        .map_err(|e| DataError::new(DataErrorKind::Serde(e.to_string())))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{cid_for_dag_cbor, cid_for_raw, to_dag_cbor, Blob, BlobRef};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Record {
        #[serde(rename = "$type")]
        kind: String,
        text: String,
        prev: Option<CidLink>,
        sig: Bytes,
        image: Blob,
        extra: Value,
    }

    fn sample() -> Record {
        Record {
            kind: "com.example.post".into(),
            text: "hi".into(),
            prev: Some(CidLink(cid_for_dag_cbor(b"prev"))),
            sig: Bytes(vec![1, 2, 3, 255]),
            image: Blob::new(cid_for_raw(b"img"), "image/png", 3),
            extra: Value::map_from_iter([("n", Value::Integer(-5))]),
        }
    }

    #[test]
    fn derived_struct_round_trip() {
        let r = sample();
        let v = to_value(&r).expect("to_value");
        assert_eq!(v.get_link("prev"), Some(&cid_for_dag_cbor(b"prev")));
        assert_eq!(v.get("sig"), Some(&Value::Bytes(vec![1, 2, 3, 255])));
        assert_eq!(
            v.get("image").and_then(|b| b.get_link("ref")),
            Some(&cid_for_raw(b"img"))
        );
        let back: Record = from_value(&v).expect("from_value");
        assert_eq!(back, r);
        // Through JSON text as well.
        let text = serde_json::to_string(&r).expect("json");
        let back: Record = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, r);
        // And DAG-CBOR bytes are stable.
        assert_eq!(
            to_dag_cbor(&v),
            to_dag_cbor(&to_value(&back).expect("to_value"))
        );
    }

    #[test]
    fn value_serde_matches_json_mapping() {
        let j = json!({
            "a": {"$link": cid_for_dag_cbor(b"a").to_string()},
            "b": {"$bytes": "AAEC"},
            "c": [1, -2, null, false, "s", 3.0],
        });
        let via_serde: Value = serde_json::from_value(j.clone()).expect("serde");
        let via_mapping = Value::from_json(&j).expect("mapping");
        assert_eq!(via_serde, via_mapping);
        assert_eq!(
            serde_json::to_value(&via_serde).expect("ser"),
            via_serde.to_json()
        );
        for bad in [
            json!({"x": 1.5}),
            json!({"$link": "nope"}),
            json!({"$link": 1}),
            json!({"$bytes": "AA", "x": 1}),
            json!({"$type": ""}),
            json!({"$type": "blob", "size": 1, "mimeType": "a/b"}),
            json!(u64::MAX),
        ] {
            assert!(
                serde_json::from_value::<Value>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn wrappers_reject_wrong_shapes() {
        assert!(serde_json::from_value::<CidLink>(json!("bafy")).is_err());
        assert!(
            serde_json::from_value::<Bytes>(json!({"$link": cid_for_raw(b"").to_string()}))
                .is_err()
        );
        let b: Bytes = serde_json::from_value(json!({"$bytes": "AQID"})).expect("bytes");
        assert_eq!(b.as_ref(), &[1, 2, 3]);
        assert_eq!(
            serde_json::to_value(&b).expect("ser"),
            json!({"$bytes": "AQID"})
        );
    }

    #[test]
    fn blob_ref_forms() {
        let raw = cid_for_raw(b"img");
        let legacy = json!({"cid": raw.to_string(), "mimeType": "image/jpeg"});
        let r: BlobRef = serde_json::from_value(legacy.clone()).expect("legacy");
        assert_eq!(r.cid(), Some(raw));
        assert_eq!(r.size(), None);
        assert_eq!(serde_json::to_value(&r).expect("ser"), legacy);
        let typed = json!({"$type": "blob", "ref": {"$link": raw.to_string()}, "mimeType": "image/jpeg", "size": 10});
        let r: BlobRef = serde_json::from_value(typed.clone()).expect("typed");
        assert_eq!(r.size(), Some(10));
        assert_eq!(r.mime_type(), "image/jpeg");
        assert_eq!(serde_json::to_value(&r).expect("ser"), typed);
        assert!(serde_json::from_value::<BlobRef>(json!({"cid": 1, "mimeType": "a/b"})).is_err());
        assert!(serde_json::from_value::<BlobRef>(json!({"cid": raw.to_string()})).is_err());
        assert!(serde_json::from_value::<Blob>(json!({"$type": "x", "ref": 1})).is_err());
        let v = Value::from_json(&typed).expect("value");
        let b = Blob::from_value(&v).expect("blob");
        assert_eq!(b.to_value(), Ok(v));
        assert!(Blob::new(raw, "a/b", u64::MAX).to_value().is_err());
    }
}
