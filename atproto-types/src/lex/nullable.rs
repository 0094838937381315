//! Properties that are both optional and nullable.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The value of a nullable property: `null` or a value.
///
/// An optional nullable property is an `Option<Nullable<T>>`: `None` when
/// absent, `Some(Nullable::Null)` for an explicit `null`, and
/// `Some(Nullable::Value(v))` otherwise. Generated fields of that type
/// carry `#[serde(default, skip_serializing_if = "Option::is_none",
/// deserialize_with = "deserialize_some")]` so the three cases round-trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Nullable<T> {
    /// An explicit `null`.
    #[default]
    Null,
    /// A value.
    Value(T),
}

impl<T> Nullable<T> {
    /// The value, if not null.
    pub fn value(&self) -> Option<&T> {
        match self {
            Nullable::Null => None,
            Nullable::Value(v) => Some(v),
        }
    }

    /// The value, if not null.
    pub fn into_option(self) -> Option<T> {
        match self {
            Nullable::Null => None,
            Nullable::Value(v) => Some(v),
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Nullable::Null)
    }

    /// A reference to the value inside.
    pub fn as_ref(&self) -> Nullable<&T> {
        match self {
            Nullable::Null => Nullable::Null,
            Nullable::Value(v) => Nullable::Value(v),
        }
    }
}

impl<T> From<Option<T>> for Nullable<T> {
    fn from(o: Option<T>) -> Self {
        match o {
            None => Nullable::Null,
            Some(v) => Nullable::Value(v),
        }
    }
}

impl<T> From<Nullable<T>> for Option<T> {
    fn from(n: Nullable<T>) -> Self {
        n.into_option()
    }
}

impl<T: Serialize> Serialize for Nullable<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Nullable::Null => s.serialize_none(),
            Nullable::Value(v) => s.serialize_some(v),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Nullable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Nullable::from)
    }
}

/// `deserialize_with` for an optional nullable field: a present property
/// (even `null`) is `Some`; an absent one falls back to the field's
/// `#[serde(default)]` (`None`).
pub fn deserialize_some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
