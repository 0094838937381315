//! Runtime support for the generated lexicon types in
//! [`crate::lexicons`].
//!
//! The generated code is thin: each type is a plain serde struct or one of
//! the macros below, and the shared behaviour lives here.
//!
//! * [`lex_string_enum!`](crate::lex_string_enum) — `knownValues` (open
//!   enums with an `Other(String)` variant) and `enum` (closed enums);
//! * [`lex_union!`](crate::lex_union) — unions dispatched on `$type`, with
//!   the machinery in [`union`];
//! * [`lex_error!`](crate::lex_error) — the named errors of an endpoint;
//! * [`lex_record!`](crate::lex_record) — records, which always serialize
//!   their `$type`, and the [`LexRecord`] trait;
//! * [`Nullable`] — a property that is both optional and nullable
//!   (`Option<Nullable<T>>`: absent, `null`, or a value);
//! * [`de`] — how generated fields are read (integral floats as integers,
//!   no `null` in non-nullable fields, `unknown` as a non-blob object);
//! * [`ExtraData`] — properties a lexicon does not declare, kept by every
//!   generated object so records round-trip exactly;
//! * [`LEXICON_SOURCES`] and [`catalog`] — every lexicon document the types
//!   were generated from, for generic validation at run time.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::de::{Deserialize, Deserializer};

use crate::lexicon::{Catalog, LexiconError};

pub mod de;
mod macros;
mod nullable;
#[cfg(test)]
mod tests;
pub mod union;

pub use nullable::{deserialize_some, Nullable};

/// Properties of an object that its lexicon does not declare, by name
/// (`$type` included when the data carries one).
pub type ExtraData = BTreeMap<String, crate::data::Value>;

/// A generated record type.
pub trait LexRecord: serde::Serialize + serde::de::DeserializeOwned {
    /// The record type's NSID (its collection, and its `$type`).
    const NSID: &'static str;
    /// The record key scheme as written in the lexicon: `tid`, `nsid`,
    /// `any` or `literal:<value>`.
    const KEY: &'static str;
}

/// A string that is not one of a closed enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {value:?}, expected one of {expected:?}")]
pub struct UnknownValue {
    /// The value given.
    pub value: String,
    /// The allowed values.
    pub expected: &'static [&'static str],
}

impl UnknownValue {
    /// `value` is not among `expected`.
    pub fn new(value: &str, expected: &'static [&'static str]) -> UnknownValue {
        UnknownValue {
            value: value.to_owned(),
            expected,
        }
    }
}

/// Deserialize a string (used by the enum macros).
pub fn string_value<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

// `LEXICON_SOURCES`, written by the build script.
include!(concat!(env!("OUT_DIR"), "/lexicon_sources.rs"));

static CATALOG: OnceLock<Result<Catalog, LexiconError>> = OnceLock::new();

/// The catalog of every lexicon in [`LEXICON_SOURCES`] (all namespaces,
/// whatever features are enabled), built on first use.
pub fn try_catalog() -> Result<&'static Catalog, &'static LexiconError> {
    CATALOG
        .get_or_init(|| Catalog::from_json_strs(LEXICON_SOURCES.iter().copied()))
        .as_ref()
}

/// The catalog of every lexicon in [`LEXICON_SOURCES`], built on first use.
///
/// The build script generated the types from these same documents, so
/// they are known to load; [`try_catalog`] is the non-panicking form.
pub fn catalog() -> &'static Catalog {
    match try_catalog() {
        Ok(c) => c,
        Err(e) => {
            panic!("the embedded lexicons were checked at build time but failed to load: {e}")
        }
    }
}

/// Number of embedded lexicon documents.
pub fn lexicon_count() -> usize {
    LEXICON_SOURCES.len()
}

#[doc(hidden)]
pub mod __private {
    pub use serde;
}
