//! Machinery shared by the generated union enums (see [`lex_union!`]):
//! reading a `$type`-tagged object and writing one.
//!
//! Deserializing a union buffers the object (as a `serde_json::Value`),
//! reads its `$type`, and deserializes the matching variant from the
//! buffer. Serializing a variant writes `"$type"` first and then the
//! variant's own fields, skipping any `$type` the variant itself carries
//! (so a value read from data and written back has exactly one, correct,
//! `$type`).
//!
//! [`lex_union!`]: crate::lex_union

use std::fmt;

use serde::de::{Deserialize, DeserializeOwned, Error as DeError};
use serde::ser::{self, Error as SerError, Impossible, Serialize, SerializeMap, Serializer};

/// The key holding an object's type name.
pub const TYPE_KEY: &str = "$type";

/// Read one union value: an object whose `$type` is a string. Returns the
/// type name and the whole object (still holding `$type`).
pub fn read<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<(String, serde_json::Value), D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let type_name = match &value {
        serde_json::Value::Object(map) => match map.get(TYPE_KEY) {
            Some(serde_json::Value::String(t)) => t.clone(),
            Some(_) => return Err(D::Error::custom("union value: `$type` is not a string")),
            None => return Err(D::Error::custom("union value without `$type`")),
        },
        _ => return Err(D::Error::custom("union value is not an object")),
    };
    Ok((type_name, value))
}

/// Deserialize the variant named by `type_name` from the buffered object. A
/// value that names a listed variant but does not match its schema is an
/// error naming the type (never silently an unknown variant).
pub fn variant<T: DeserializeOwned, E: DeError>(
    type_name: &str,
    value: serde_json::Value,
) -> Result<T, E> {
    T::deserialize(value).map_err(|e| E::custom(format_args!("invalid `{type_name}`: {e}")))
}

/// The raw value of an unknown variant of an open union, checked against
/// the atproto data model. Its `$type` must be a well-formed type name, as
/// the lexicon validator requires: an NSID or `nsid#name`, not ending in
/// `#main` (the bare NSID names a main definition) and not a `lex:` URI.
pub fn unknown<E: DeError>(
    type_name: &str,
    value: serde_json::Value,
) -> Result<crate::data::Value, E> {
    if type_name.ends_with("#main") {
        return Err(E::custom(format_args!(
            "union `$type` {type_name:?} must not end in #main (use the bare NSID)"
        )));
    }
    if type_name.starts_with(crate::lexicon::LEX_URI_PREFIX)
        || crate::lexicon::DefRef::parse(type_name, None).is_err()
    {
        return Err(E::custom(format_args!(
            "union `$type` {type_name:?} is not a valid type name (nsid or nsid#name)"
        )));
    }
    crate::data::Value::from_json(&value)
        .map_err(|e| E::custom(format_args!("invalid `{type_name}`: {e}")))
}

/// The error of a closed union given a `$type` it does not list.
pub fn unexpected<E: DeError>(type_name: &str, expected: &'static [&'static str]) -> E {
    E::unknown_variant(type_name, expected)
}

/// Serialize `value` (which must serialize as an object) with `"$type":
/// type_name` written first; a `$type` written by `value` itself is
/// dropped.
pub fn serialize_tagged<S: Serializer, T: Serialize + ?Sized>(
    s: S,
    type_name: &str,
    value: &T,
) -> Result<S::Ok, S::Error> {
    value.serialize(TaggedSerializer {
        inner: s,
        type_name,
    })
}

/// A serializer that writes objects with a leading `$type` entry. Anything
/// but a struct or a map is an error.
pub struct TaggedSerializer<'a, S> {
    inner: S,
    type_name: &'a str,
}

impl<'a, S: Serializer> TaggedSerializer<'a, S> {
    /// Wrap `inner`, tagging objects with `type_name`.
    pub fn new(inner: S, type_name: &'a str) -> Self {
        TaggedSerializer { inner, type_name }
    }

    fn begin(self, len: Option<usize>) -> Result<TaggedMap<S::SerializeMap>, S::Error> {
        let mut map = self.inner.serialize_map(len.map(|n| n + 1))?;
        map.serialize_entry(TYPE_KEY, self.type_name)?;
        Ok(TaggedMap {
            map,
            skip_value: false,
        })
    }

    fn not_an_object<T>(self, what: &str) -> Result<T, S::Error> {
        Err(S::Error::custom(format_args!(
            "a `$type`-tagged value ({}) must be an object, not {what}",
            self.type_name
        )))
    }
}

/// The map being written by a [`TaggedSerializer`].
pub struct TaggedMap<M> {
    map: M,
    skip_value: bool,
}

impl<M: SerializeMap> SerializeMap for TaggedMap<M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), M::Error> {
        if is_type_key(key) {
            self.skip_value = true;
            Ok(())
        } else {
            self.map.serialize_key(key)
        }
    }

    fn serialize_value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), M::Error> {
        if std::mem::take(&mut self.skip_value) {
            Ok(())
        } else {
            self.map.serialize_value(value)
        }
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), M::Error> {
        if is_type_key(key) {
            Ok(())
        } else {
            self.map.serialize_entry(key, value)
        }
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.map.end()
    }
}

impl<M: SerializeMap> ser::SerializeStruct for TaggedMap<M> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_field<V: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &V,
    ) -> Result<(), M::Error> {
        if key == TYPE_KEY {
            Ok(())
        } else {
            self.map.serialize_entry(key, value)
        }
    }

    fn skip_field(&mut self, _key: &'static str) -> Result<(), M::Error> {
        Ok(())
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.map.end()
    }
}

/// Whether a map key serializes as the string `$type`.
fn is_type_key<K: Serialize + ?Sized>(key: &K) -> bool {
    key.serialize(TypeKeyProbe).unwrap_or(false)
}

/// Answers "is this the string `$type`?" for a map key.
struct TypeKeyProbe;

#[derive(Debug)]
struct ProbeError;

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a string key")
    }
}

impl std::error::Error for ProbeError {}

impl ser::Error for ProbeError {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        ProbeError
    }
}

macro_rules! probe_false {
    ($($name:ident($($arg:ty),*)),* $(,)?) => {
        $(fn $name(self, $(_: $arg),*) -> Result<bool, ProbeError> { Ok(false) })*
    };
}

impl Serializer for TypeKeyProbe {
    type Ok = bool;
    type Error = ProbeError;
    type SerializeSeq = Impossible<bool, ProbeError>;
    type SerializeTuple = Impossible<bool, ProbeError>;
    type SerializeTupleStruct = Impossible<bool, ProbeError>;
    type SerializeTupleVariant = Impossible<bool, ProbeError>;
    type SerializeMap = Impossible<bool, ProbeError>;
    type SerializeStruct = Impossible<bool, ProbeError>;
    type SerializeStructVariant = Impossible<bool, ProbeError>;

    fn serialize_str(self, v: &str) -> Result<bool, ProbeError> {
        Ok(v == TYPE_KEY)
    }

    probe_false!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_bytes(&[u8]),
        serialize_none(),
        serialize_unit(),
        serialize_unit_struct(&'static str),
        serialize_unit_variant(&'static str, u32, &'static str),
    );

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<bool, ProbeError> {
        v.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<bool, ProbeError> {
        v.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _v: &T,
    ) -> Result<bool, ProbeError> {
        Ok(false)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, ProbeError> {
        Err(ProbeError)
    }

    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, ProbeError> {
        Err(ProbeError)
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, ProbeError> {
        Err(ProbeError)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, ProbeError> {
        Err(ProbeError)
    }

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, ProbeError> {
        Err(ProbeError)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, ProbeError> {
        Err(ProbeError)
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, ProbeError> {
        Err(ProbeError)
    }
}

impl<'a, S: Serializer> Serializer for TaggedSerializer<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Impossible<S::Ok, S::Error>;
    type SerializeTuple = Impossible<S::Ok, S::Error>;
    type SerializeTupleStruct = Impossible<S::Ok, S::Error>;
    type SerializeTupleVariant = Impossible<S::Ok, S::Error>;
    type SerializeMap = TaggedMap<S::SerializeMap>;
    type SerializeStruct = TaggedMap<S::SerializeMap>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.begin(len)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.begin(Some(len))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<S::Ok, S::Error> {
        v.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        v.serialize(self)
    }

    fn serialize_bool(self, _v: bool) -> Result<S::Ok, S::Error> {
        self.not_an_object("a boolean")
    }
    fn serialize_i8(self, _v: i8) -> Result<S::Ok, S::Error> {
        self.not_an_object("an integer")
    }
    fn serialize_i16(self, _v: i16) -> Result<S::Ok, S::Error> {
        self.not_an_object("an integer")
    }
    fn serialize_i32(self, _v: i32) -> Result<S::Ok, S::Error> {
        self.not_an_object("an integer")
    }
    fn serialize_i64(self, _v: i64) -> Result<S::Ok, S::Error> {
        self.not_an_object("an integer")
    }
    fn serialize_u8(self, _v: u8) -> Result<S::Ok, S::Error> {
        self.not_an_object("an integer")
    }
    fn serialize_u16(self, _v: u16) -> Result<S::Ok, S::Error> {
        self.not_an_object("an integer")
    }
    fn serialize_u32(self, _v: u32) -> Result<S::Ok, S::Error> {
        self.not_an_object("an integer")
    }
    fn serialize_u64(self, _v: u64) -> Result<S::Ok, S::Error> {
        self.not_an_object("an integer")
    }
    fn serialize_f32(self, _v: f32) -> Result<S::Ok, S::Error> {
        self.not_an_object("a float")
    }
    fn serialize_f64(self, _v: f64) -> Result<S::Ok, S::Error> {
        self.not_an_object("a float")
    }
    fn serialize_char(self, _v: char) -> Result<S::Ok, S::Error> {
        self.not_an_object("a string")
    }
    fn serialize_str(self, _v: &str) -> Result<S::Ok, S::Error> {
        self.not_an_object("a string")
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<S::Ok, S::Error> {
        self.not_an_object("bytes")
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.not_an_object("null")
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.not_an_object("null")
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<S::Ok, S::Error> {
        self.not_an_object("null")
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.not_an_object("a string")
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.not_an_object("an enum variant")
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.not_an_object("an array")
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.not_an_object("an array")
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.not_an_object("an array")
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.not_an_object("an enum variant")
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.not_an_object("an enum variant")
    }
}
