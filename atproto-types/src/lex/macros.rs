//! Macros the generated lexicon code expands to. Each one turns a short,
//! readable declaration into a type with its serde implementations, so the
//! generated files stay thin.

/// A string enum from a lexicon `knownValues` (`open`: unlisted values are
/// kept in an `Other(String)` variant) or `enum` (`closed`: unlisted values
/// are rejected). Serializes as the string.
///
/// ```
/// atproto_types::lex_string_enum! {
///     /// How to sort.
///     pub open enum Sort {
///         Newest = "newest",
///         Oldest = "oldest",
///     }
/// }
/// let s: Sort = serde_json::from_str("\"top\"").unwrap();
/// assert_eq!(s, Sort::Other("top".into()));
/// assert_eq!(Sort::Newest.as_str(), "newest");
/// ```
#[macro_export]
macro_rules! lex_string_enum {
    (
        $(#[$meta:meta])*
        $vis:vis open enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[allow(clippy::enum_variant_names)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value the lexicon does not list.
            Other(::std::string::String),
        }

        impl $name {
            /// The values the lexicon lists.
            pub const KNOWN_VALUES: &'static [&'static str] = &[$($value),*];

            /// The string form.
            pub fn as_str(&self) -> &str {
                match *self {
                    $(Self::$variant => $value,)*
                    Self::Other(ref s) => s.as_str(),
                }
            }

            /// The variant of a listed value.
            pub fn from_known(s: &str) -> ::std::option::Option<Self> {
                match s {
                    $($value => ::std::option::Option::Some(Self::$variant),)*
                    _ => ::std::option::Option::None,
                }
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from_known(s).unwrap_or_else(|| Self::Other(s.to_owned()))
            }
        }

        impl ::std::convert::From<::std::string::String> for $name {
            fn from(s: ::std::string::String) -> Self {
                Self::from_known(&s).unwrap_or(Self::Other(s))
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                ::std::result::Result::Ok(Self::from(s))
            }
        }

        $crate::__lex_string_common!($name);

        impl<'de> $crate::lex::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::lex::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                $crate::lex::string_value(d).map(Self::from)
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis closed enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(clippy::enum_variant_names)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            /// The allowed values.
            pub const VALUES: &'static [&'static str] = &[$($value),*];

            /// The string form.
            pub fn as_str(&self) -> &'static str {
                match *self {
                    $(Self::$variant => $value,)*
                }
            }

            /// The variant of an allowed value.
            pub fn from_known(s: &str) -> ::std::option::Option<Self> {
                match s {
                    $($value => ::std::option::Option::Some(Self::$variant),)*
                    _ => ::std::option::Option::None,
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::lex::UnknownValue;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::from_known(s).ok_or_else(|| $crate::lex::UnknownValue::new(s, Self::VALUES))
            }
        }

        $crate::__lex_string_common!($name);

        impl<'de> $crate::lex::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::lex::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let s = $crate::lex::string_value(d)?;
                Self::from_known(&s).ok_or_else(|| {
                    <D::Error as $crate::lex::__private::serde::de::Error>::unknown_variant(
                        &s,
                        Self::VALUES,
                    )
                })
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lex_string_common {
    ($name:ident) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl $crate::lex::__private::serde::Serialize for $name {
            fn serialize<S: $crate::lex::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

/// The named errors of an XRPC endpoint: an open string enum (unlisted
/// error names land in `Other`) that is also a `std::error::Error`.
#[macro_export]
macro_rules! lex_error {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $value:literal),* $(,)?
        }
    ) => {
        $crate::lex_string_enum! {
            $(#[$meta])*
            $vis open enum $name {
                $($(#[$vmeta])* $variant = $value),*
            }
        }

        impl ::std::error::Error for $name {}
    };
}

/// A union: an enum dispatched on `$type`. `open` unions keep values of
/// unlisted types in `Unknown(Value)`; `closed` ones reject them. A value
/// whose `$type` is listed but that does not match the variant's schema is
/// an error. Serialization writes `$type` first.
#[macro_export]
macro_rules! lex_union {
    (
        $(#[$meta:meta])*
        $vis:vis open union $name:ident {
            $($(#[$vmeta:meta])* $variant:ident($ty:ty) = $tag:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::enum_variant_names)]
        $vis enum $name {
            $($(#[$vmeta])* $variant($ty),)*
            /// A value of a type the lexicon does not list, kept as is.
            Unknown($crate::data::Value),
        }

        impl $name {
            /// The `$type`s the lexicon lists.
            pub const TYPES: &'static [&'static str] = &[$($tag),*];

            /// The `$type` of this value.
            pub fn type_name(&self) -> &str {
                match *self {
                    $(Self::$variant(_) => $tag,)*
                    Self::Unknown(ref v) => v.type_name().unwrap_or(""),
                }
            }
        }

        impl $crate::lex::__private::serde::Serialize for $name {
            fn serialize<S: $crate::lex::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                match *self {
                    $(Self::$variant(ref v) => $crate::lex::union::serialize_tagged(s, $tag, v),)*
                    Self::Unknown(ref v) => $crate::lex::__private::serde::Serialize::serialize(v, s),
                }
            }
        }

        impl<'de> $crate::lex::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::lex::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let (ty, value) = $crate::lex::union::read(d)?;
                match ty.as_str() {
                    $($tag => $crate::lex::union::variant(&ty, value).map(Self::$variant),)*
                    _ => $crate::lex::union::unknown(&ty, value).map(Self::Unknown),
                }
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis closed union $name:ident {
            $($(#[$vmeta:meta])* $variant:ident($ty:ty) = $tag:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::enum_variant_names)]
        $vis enum $name {
            $($(#[$vmeta])* $variant($ty),)*
        }

        impl $name {
            /// The `$type`s the lexicon allows.
            pub const TYPES: &'static [&'static str] = &[$($tag),*];

            /// The `$type` of this value.
            pub fn type_name(&self) -> &'static str {
                match *self {
                    $(Self::$variant(_) => $tag,)*
                }
            }
        }

        impl $crate::lex::__private::serde::Serialize for $name {
            fn serialize<S: $crate::lex::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                match *self {
                    $(Self::$variant(ref v) => $crate::lex::union::serialize_tagged(s, $tag, v),)*
                }
            }
        }

        impl<'de> $crate::lex::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::lex::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let (ty, value) = $crate::lex::union::read(d)?;
                match ty.as_str() {
                    $($tag => $crate::lex::union::variant(&ty, value).map(Self::$variant),)*
                    _ => {
                        let _ = value;
                        ::std::result::Result::Err($crate::lex::union::unexpected(&ty, Self::TYPES))
                    }
                }
            }
        }
    };
}

/// Serde and [`LexRecord`](crate::lex::LexRecord) for a record struct
/// declared with `#[serde(remote = "Self")]`: serialization writes `$type`
/// (the record's NSID) first; deserialization requires it.
#[macro_export]
macro_rules! lex_record {
    ($name:ident = $nsid:literal, key = $key:literal) => {
        impl $crate::lex::LexRecord for $name {
            const NSID: &'static str = $nsid;
            const KEY: &'static str = $key;
        }

        impl $crate::lex::__private::serde::Serialize for $name {
            fn serialize<S: $crate::lex::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                $name::serialize(self, $crate::lex::union::TaggedSerializer::new(s, $nsid))
            }
        }

        impl<'de> $crate::lex::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::lex::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let record = $name::deserialize(d)?;
                $crate::lex::de::check_record_type(&record.extra_data, $nsid)?;
                ::std::result::Result::Ok(record)
            }
        }
    };
}
