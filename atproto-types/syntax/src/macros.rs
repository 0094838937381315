//! Shared trait implementations for the string newtypes.
//!
//! Every type using [`string_newtype!`] defines, itself:
//! `fn from_string(String) -> Result<Self, SyntaxError>`, `fn as_str(&self)`
//! and `fn into_inner(self)`.

/// Conversions, formatting and serde for a validated string newtype.
macro_rules! string_newtype {
    ($ty:ident) => {
        impl ::std::str::FromStr for $ty {
            type Err = $crate::SyntaxError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::from_string(s.to_owned())
            }
        }

        impl ::std::convert::TryFrom<String> for $ty {
            type Error = $crate::SyntaxError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::from_string(s)
            }
        }

        impl ::std::convert::TryFrom<&str> for $ty {
            type Error = $crate::SyntaxError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::from_string(s.to_owned())
            }
        }

        impl ::std::convert::From<$ty> for String {
            fn from(v: $ty) -> String {
                v.into_inner()
            }
        }

        impl ::std::convert::AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({:?})", stringify!($ty), self.as_str())
            }
        }

        impl ::std::cmp::PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl ::std::cmp::PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                Self::from_string(s).map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}

/// `PartialEq`/`Eq`/`Hash`/`PartialOrd`/`Ord` by the verbatim string.
macro_rules! string_eq_ord {
    ($ty:ident) => {
        impl ::std::cmp::PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl ::std::cmp::Eq for $ty {}

        impl ::std::hash::Hash for $ty {
            fn hash<H: ::std::hash::Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl ::std::cmp::PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<::std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl ::std::cmp::Ord for $ty {
            fn cmp(&self, other: &Self) -> ::std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }
    };
}
