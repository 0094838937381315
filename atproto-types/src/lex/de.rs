//! Deserialization helpers used by the generated object fields
//! (`#[serde(deserialize_with = "…")]`), so that a typed parse accepts and
//! rejects what the lexicon validator does:
//!
//! * [`int`] / [`opt_int`] — integers, including integral floats (`2.0`),
//!   which the data model reads as integers;
//! * [`non_null`] — an optional, non-nullable field: absent is `None`, an
//!   explicit `null` is an error;
//! * [`unknown`] / [`opt_unknown`] — a lexicon `unknown`: any object but a
//!   blob;
//! * [`extra_data`] — the undeclared properties of an object, which must
//!   not make it a `$type: blob` map;
//! * [`check_record_type`] — a record's own `$type`.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, Visitor};

use super::ExtraData;
use crate::data::Value;

/// An integer: a JSON integer within `i64`, or a float with an integral
/// value within `i64` (as `Value::from_json` reads it).
struct Int(i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format_args!("integer {v} is beyond i64")))
            }
            fn visit_f64<E: Error>(self, v: f64) -> Result<Int, E> {
                // -2^63 is exact as an f64; 2^63 is the first value above.
                const LIMIT: f64 = 9_223_372_036_854_775_808.0;
                if v.fract() == 0.0 && (-LIMIT..LIMIT).contains(&v) {
                    Ok(Int(v as i64))
                } else {
                    Err(E::invalid_type(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A required integer field.
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Int::deserialize(d).map(|i| i.0)
}

/// An optional, non-nullable integer field (with `#[serde(default)]`).
pub fn opt_int<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Int::deserialize(d).map(|i| Some(i.0))
}

/// An optional, non-nullable field (with `#[serde(default)]`): present
/// means a value, never `null`. `T` itself is read, and the generated
/// types (and the syntax and data types) reject `null`; the lexicon
/// `unknown`, which holds any data, has [`opt_unknown`].
pub fn non_null<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Check the value of a lexicon `unknown`: an object, and not a blob.
fn check_unknown<E: Error>(v: Value) -> Result<Value, E> {
    match &v {
        Value::Map(m) => {
            if m.get("$type").and_then(Value::as_str) == Some("blob") {
                Err(E::custom("expected an object (unknown), found a blob"))
            } else {
                Ok(v)
            }
        }
        other => Err(E::custom(format_args!(
            "expected an object (unknown), found {}",
            other.kind_name()
        ))),
    }
}

/// A required `unknown` field.
pub fn unknown<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    check_unknown(Value::deserialize(d)?)
}

/// An optional, non-nullable `unknown` field (with `#[serde(default)]`).
pub fn opt_unknown<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    check_unknown(Value::deserialize(d)?).map(Some)
}

/// The undeclared properties of an object (`#[serde(flatten)]`). A
/// declared object carrying `"$type": "blob"` is not atproto data.
pub fn extra_data<'de, D: Deserializer<'de>>(d: D) -> Result<ExtraData, D::Error> {
    let extra = ExtraData::deserialize(d)?;
    if extra.get("$type").and_then(Value::as_str) == Some("blob") {
        return Err(D::Error::custom(
            "an object with `$type` \"blob\" must be a blob",
        ));
    }
    Ok(extra)
}

/// A record's `$type` (kept in its undeclared properties) must be the
/// record's NSID.
pub fn check_record_type<E: Error>(extra: &ExtraData, nsid: &str) -> Result<(), E> {
    match extra.get("$type") {
        Some(Value::String(t)) if t == nsid => Ok(()),
        Some(Value::String(t)) => Err(E::custom(format_args!(
            "record `$type` must be {nsid:?}, found {t:?}"
        ))),
        Some(_) => Err(E::custom("record `$type` is not a string")),
        None => Err(E::custom(format_args!(
            "record is missing `$type` (must be {nsid:?})"
        ))),
    }
}
