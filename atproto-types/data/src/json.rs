//! atproto-JSON: `{"$link": "<cid>"}` for links, `{"$bytes": "<base64>"}`
//! for bytes, everything else as plain JSON; no floats.

use std::collections::BTreeMap;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use cid::Cid;
use serde_json::{Map, Number, Value as Json};

use crate::error::{DataError, DataErrorKind};
use crate::model::{
    check_cid, check_container_len, check_key_len, check_map_fields, MAX_NESTED_LEVELS,
};
use crate::value::Value;

/// Standard alphabet, accepting input with or without `=` padding, and
/// ignoring non-zero trailing bits (the lexicon interop vectors treat
/// `{"$bytes": "123"}` as valid).
pub(crate) const BASE64_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Standard alphabet, no padding: how `$bytes` is written.
pub(crate) const BASE64_OUT: GeneralPurpose = base64::engine::general_purpose::STANDARD_NO_PAD;

/// Largest integer a float holds exactly, with every smaller one
/// (JavaScript's `Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn json_kind(j: &Json) -> &'static str {
    match j {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Parse a CID string for a link: any multibase the CID library reads, but
/// only CIDv1.
pub(crate) fn parse_cid_str(s: &str) -> Result<Cid, DataErrorKind> {
    let cid = Cid::try_from(s).map_err(|e| DataErrorKind::InvalidCid(format!("{s:?}: {e}")))?;
    check_cid(&cid)?;
    Ok(cid)
}

/// Decode atproto `$bytes` base64 (standard alphabet, padding optional).
pub(crate) fn decode_base64(s: &str) -> Result<Vec<u8>, DataErrorKind> {
    BASE64_LENIENT
        .decode(s)
        .map_err(|e| DataErrorKind::InvalidBase64(e.to_string()))
}

/// Encode bytes as atproto `$bytes` base64 (standard alphabet, no padding).
pub(crate) fn encode_base64(b: &[u8]) -> String {
    BASE64_OUT.encode(b)
}

fn number(n: &Number) -> Result<Value, DataErrorKind> {
    if let Some(i) = n.as_i64() {
        return Ok(Value::Integer(i));
    }
    if n.is_u64() {
        return Err(DataErrorKind::IntegerOutOfRange(n.to_string()));
    }
    match n.as_f64() {
        // An integer written with a fraction or exponent (`123.0`): accept
        // it while the float holds it exactly.
        Some(f) if f.is_finite() && f.fract() == 0.0 => {
            if f.abs() <= MAX_SAFE_INTEGER {
                Ok(Value::Integer(f as i64))
            } else if f.abs() >= 9_223_372_036_854_775_808.0 {
                Err(DataErrorKind::IntegerOutOfRange(n.to_string()))
            } else {
                Err(DataErrorKind::InexactInteger(n.to_string()))
            }
        }
        _ => Err(DataErrorKind::Float(n.to_string())),
    }
}

/// A `{"$link": ..}` object (already known to hold the key).
fn link_object(obj: &Map<String, Json>) -> Result<Value, DataError> {
    if let Some(k) = obj.keys().find(|k| *k != "$link") {
        return Err(DataErrorKind::LinkExtraKey(k.clone()).into());
    }
    match obj.get("$link") {
        Some(Json::String(s)) => parse_cid_str(s)
            .map(Value::Link)
            .map_err(|e| DataError::new(e).in_key("$link")),
        Some(other) => {
            Err(DataError::new(DataErrorKind::LinkNotString(json_kind(other))).in_key("$link"))
        }
        None => Err(DataErrorKind::MissingField("$link").into()),
    }
}

/// A `{"$bytes": ..}` object (already known to hold the key).
fn bytes_object(obj: &Map<String, Json>) -> Result<Value, DataError> {
    if let Some(k) = obj.keys().find(|k| *k != "$bytes") {
        return Err(DataErrorKind::BytesExtraKey(k.clone()).into());
    }
    match obj.get("$bytes") {
        Some(Json::String(s)) => decode_base64(s)
            .map(Value::Bytes)
            .map_err(|e| DataError::new(e).in_key("$bytes")),
        Some(other) => {
            Err(DataError::new(DataErrorKind::BytesNotString(json_kind(other))).in_key("$bytes"))
        }
        None => Err(DataErrorKind::MissingField("$bytes").into()),
    }
}

fn from_json_at(j: &Json, depth: usize) -> Result<Value, DataError> {
    match j {
        Json::Null => Ok(Value::Null),
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(n) => number(n).map_err(DataError::new),
        Json::String(s) => Ok(Value::String(s.clone())),
        Json::Array(a) => {
            if depth >= MAX_NESTED_LEVELS {
                return Err(DataErrorKind::TooDeep(MAX_NESTED_LEVELS).into());
            }
            check_container_len(a.len() as u64)?;
            let mut out = Vec::with_capacity(a.len());
            for (i, item) in a.iter().enumerate() {
                out.push(from_json_at(item, depth + 1).map_err(|e| e.in_index(i))?);
            }
            Ok(Value::Array(out))
        }
        Json::Object(obj) => {
            if obj.contains_key("$link") {
                return link_object(obj);
            }
            if obj.contains_key("$bytes") {
                return bytes_object(obj);
            }
            if depth >= MAX_NESTED_LEVELS {
                return Err(DataErrorKind::TooDeep(MAX_NESTED_LEVELS).into());
            }
            check_container_len(obj.len() as u64)?;
            let mut map = BTreeMap::new();
            for (k, item) in obj {
                check_key_len(k.len() as u64).map_err(|e| DataError::new(e).in_key(k))?;
                let v = from_json_at(item, depth + 1).map_err(|e| e.in_key(k))?;
                map.insert(k.clone(), v);
            }
            check_map_fields(&map)?;
            Ok(Value::Map(map))
        }
    }
}

impl Value {
    /// Read atproto-JSON. Rejects floats (a number with a fraction or
    /// exponent is accepted only when it is an integer a float holds
    /// exactly, like `123.0`), integers outside i64, malformed `$link` and
    /// `$bytes` objects (wrong type, extra keys, bad CID or base64), `$type`
    /// that is not a non-empty string, malformed `$type: blob` maps, and
    /// nesting deeper than [`MAX_NESTED_LEVELS`](crate::MAX_NESTED_LEVELS).
    pub fn from_json(j: &Json) -> Result<Value, DataError> {
        from_json_at(j, 0)
    }

    /// [`Value::from_json`], also requiring an object at the top level (as
    /// for records and other atproto data nodes).
    pub fn from_json_object(j: &Json) -> Result<Value, DataError> {
        match j {
            Json::Object(obj) if !obj.contains_key("$link") && !obj.contains_key("$bytes") => {
                from_json_at(j, 0)
            }
            Json::Object(_) => {
                let v = from_json_at(j, 0)?;
                Err(DataErrorKind::NotAnObject(v.kind_name()).into())
            }
            other => Err(DataErrorKind::NotAnObject(json_kind(other)).into()),
        }
    }

    /// Parse atproto-JSON text ([`Value::from_json`] on the parsed JSON).
    pub fn from_json_str(s: &str) -> Result<Value, DataError> {
        let j: Json = serde_json::from_str(s)
            .map_err(|e| DataError::new(DataErrorKind::Serde(format!("invalid JSON: {e}"))))?;
        Value::from_json(&j)
    }

    /// Write atproto-JSON: links as `{"$link": "<base32 CID>"}`, bytes as
    /// `{"$bytes": "<base64, no padding>"}`.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Integer(i) => Json::Number((*i).into()),
            Value::String(s) => Json::String(s.clone()),
            Value::Bytes(b) => {
                let mut m = Map::new();
                m.insert("$bytes".to_owned(), Json::String(encode_base64(b)));
                Json::Object(m)
            }
            Value::Link(c) => {
                let mut m = Map::new();
                m.insert("$link".to_owned(), Json::String(c.to_string()));
                Json::Object(m)
            }
            Value::Array(a) => Json::Array(a.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                Json::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{cid_for_dag_cbor, cid_for_raw};

    fn kind(j: Json) -> DataErrorKind {
        match Value::from_json(&j) {
            Ok(v) => panic!("{j} accepted as {v:?}"),
            Err(e) => e.kind().clone(),
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(Value::from_json(&json!(123)), Ok(Value::Integer(123)));
        assert_eq!(Value::from_json(&json!(123.0)), Ok(Value::Integer(123)));
        assert_eq!(Value::from_json(&json!(-0.0)), Ok(Value::Integer(0)));
        assert_eq!(
            Value::from_json(&json!(i64::MIN)),
            Ok(Value::Integer(i64::MIN))
        );
        assert_eq!(
            Value::from_json(&json!(i64::MAX)),
            Ok(Value::Integer(i64::MAX))
        );
        let parsed: Json = serde_json::from_str("1e2").expect("json");
        assert_eq!(Value::from_json(&parsed), Ok(Value::Integer(100)));
        assert!(matches!(kind(json!(123.456)), DataErrorKind::Float(_)));
        assert!(matches!(kind(json!(0.5)), DataErrorKind::Float(_)));
        assert!(matches!(
            kind(json!(u64::MAX)),
            DataErrorKind::IntegerOutOfRange(_)
        ));
        assert!(matches!(
            kind(json!(1e19)),
            DataErrorKind::IntegerOutOfRange(_)
        ));
        assert!(matches!(
            kind(json!(9007199254740993.0)),
            DataErrorKind::InexactInteger(_)
        ));
        let big: Json = serde_json::from_str("123456789012345678901234567890").expect("json");
        assert!(matches!(
            kind(big),
            DataErrorKind::IntegerOutOfRange(_) | DataErrorKind::Float(_)
        ));
    }

    #[test]
    fn links_and_bytes() {
        let cid = cid_for_dag_cbor(b"x");
        let v = Value::from_json(&json!({"$link": cid.to_string()}));
        assert_eq!(v, Ok(Value::Link(cid)));
        assert_eq!(
            Value::Link(cid).to_json(),
            json!({"$link": cid.to_string()})
        );
        assert_eq!(
            Value::from_json(&json!({"$bytes": "AQID"})),
            Ok(Value::Bytes(vec![1, 2, 3]))
        );
        assert_eq!(
            Value::from_json(&json!({"$bytes": "AQI="})),
            Ok(Value::Bytes(vec![1, 2]))
        );
        assert_eq!(
            Value::from_json(&json!({"$bytes": "AQI"})),
            Ok(Value::Bytes(vec![1, 2]))
        );
        assert_eq!(
            Value::from_json(&json!({"$bytes": ""})),
            Ok(Value::Bytes(vec![]))
        );
        assert_eq!(Value::Bytes(vec![1, 2]).to_json(), json!({"$bytes": "AQI"}));
        assert_eq!(
            Value::Bytes(vec![0xfb, 0xff]).to_json(),
            json!({"$bytes": "+/8"})
        );
        // The URL-safe alphabet is not standard base64; non-zero trailing
        // bits are ignored (the lexicon interop vectors accept them).
        assert!(matches!(
            kind(json!({"$bytes": "-_8"})),
            DataErrorKind::InvalidBase64(_)
        ));
        assert_eq!(
            Value::from_json(&json!({"$bytes": "AQJ"})),
            Ok(Value::Bytes(vec![1, 2]))
        );
        let v0 = cid::Cid::new_v0(*cid.hash()).expect("v0").to_string();
        assert_eq!(kind(json!({"$link": v0})), DataErrorKind::CidV0);
        assert!(matches!(
            kind(json!({"$link": "bafy"})),
            DataErrorKind::InvalidCid(_)
        ));
        assert_eq!(
            kind(json!({"$link": cid.to_string(), "$bytes": "AA"})),
            DataErrorKind::LinkExtraKey("$bytes".into())
        );
    }

    #[test]
    fn type_and_blobs() {
        let raw = cid_for_raw(b"blob");
        let good = json!({"$type": "blob", "ref": {"$link": raw.to_string()}, "mimeType": "image/png", "size": 4});
        assert!(Value::from_json(&good).is_ok());
        assert!(Value::from_json(&json!({"$type": "com.example.x", "ref": 1})).is_ok());
        let mut bad = good.clone();
        bad["size"] = json!(-1);
        assert_eq!(kind(bad), DataErrorKind::BlobNegativeSize(-1));
        let mut bad = good.clone();
        bad["mimeType"] = json!("");
        assert_eq!(kind(bad), DataErrorKind::BlobEmptyMimeType);
        // Blob refs are normally raw-codec CIDs, but the lexicon interop
        // vectors hold dag-cbor refs as valid, so any CIDv1 link is accepted.
        let mut other_codec = good.clone();
        other_codec["ref"] = json!({"$link": cid_for_dag_cbor(b"x").to_string()});
        assert!(Value::from_json(&other_codec).is_ok());
        let mut bad = good.clone();
        bad["ref"] = json!(raw.to_string());
        assert!(matches!(
            kind(bad),
            DataErrorKind::BlobFieldType { field: "ref", .. }
        ));
        let mut bad = good;
        bad.as_object_mut().map(|m| m.remove("mimeType"));
        assert_eq!(kind(bad), DataErrorKind::BlobMissingField("mimeType"));
        assert_eq!(
            kind(json!({"$type": false})),
            DataErrorKind::TypeNotString("boolean")
        );
        // Nested errors carry their path.
        let e = Value::from_json(&json!({"a": [0, {"$type": ""}]})).expect_err("empty $type");
        assert_eq!(e.path_string(), "a[1].$type");
        assert_eq!(
            e.to_string(),
            "at a[1].$type: `$type` must not be an empty string"
        );
    }

    #[test]
    fn top_level_object() {
        assert!(Value::from_json_object(&json!({"a": 1})).is_ok());
        assert_eq!(
            Value::from_json_object(&json!("blah")).map_err(|e| e.kind().clone()),
            Err(DataErrorKind::NotAnObject("string"))
        );
        assert_eq!(
            Value::from_json_object(&json!({"$bytes": "AA"})).map_err(|e| e.kind().clone()),
            Err(DataErrorKind::NotAnObject("bytes"))
        );
        assert!(Value::from_json(&json!("blah")).is_ok());
    }

    #[test]
    fn depth() {
        let mut j = json!(1);
        for _ in 0..MAX_NESTED_LEVELS {
            j = json!([j]);
        }
        assert!(Value::from_json(&j).is_ok());
        // `$link` objects are not containers.
        let mut l = json!({"$link": cid_for_raw(b"").to_string()});
        for _ in 0..MAX_NESTED_LEVELS {
            l = json!({ "k": l });
        }
        assert!(Value::from_json(&l).is_ok());
        let text = serde_json::to_string(&l).expect("json");
        assert!(serde_json::from_str::<Value>(&text).is_ok());
        let deeper = json!([j]);
        assert_eq!(
            kind(deeper.clone()),
            DataErrorKind::TooDeep(MAX_NESTED_LEVELS)
        );
        let text = serde_json::to_string(&deeper).expect("json");
        assert!(serde_json::from_str::<Value>(&text).is_err());
    }

    #[test]
    fn json_text() {
        let v = Value::from_json_str(r#"{"a": [1, null, true, "x"], "b": {"$bytes": "AA"}}"#)
            .expect("valid");
        assert_eq!(v.get("b"), Some(&Value::Bytes(vec![0])));
        assert!(Value::from_json_str("{").is_err());
        assert_eq!(
            v.to_string(),
            r#"{"a":[1,null,true,"x"],"b":{"$bytes":"AA"}}"#
        );
    }
}
