//! Error types: [`DataError`] for data-model violations (atproto-JSON input,
//! typed conversions, serde) and [`DecodeError`] for DAG-CBOR input.

use std::fmt;

use thiserror::Error;

/// Why a value does not fit the atproto data model.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DataErrorKind {
    /// A JSON number that is not an integer (or an integer-valued float
    /// outside the range where a float holds integers exactly).
    #[error("floats are not allowed in the atproto data model (found {0})")]
    Float(String),
    /// An integer outside the signed 64-bit range.
    #[error("integer {0} is outside the signed 64-bit range")]
    IntegerOutOfRange(String),
    /// An integer-valued number written as a float (`1e17`, `2.0e16`)
    /// beyond the range where floats hold every integer exactly.
    #[error("number {0} is not exactly representable as written; write the integer without fraction or exponent")]
    InexactInteger(String),
    /// `$type` present but not a string.
    #[error("`$type` must be a string, found {0}")]
    TypeNotString(&'static str),
    /// `$type` present but empty.
    #[error("`$type` must not be an empty string")]
    TypeEmpty,
    /// `{"$link": x}` where `x` is not a string.
    #[error("`$link` must be a string, found {0}")]
    LinkNotString(&'static str),
    /// A `$link` object with other keys.
    #[error("a `$link` object must have exactly one key, found also `{0}`")]
    LinkExtraKey(String),
    /// `{"$bytes": x}` where `x` is not a string.
    #[error("`$bytes` must be a string, found {0}")]
    BytesNotString(&'static str),
    /// A `$bytes` object with other keys.
    #[error("a `$bytes` object must have exactly one key, found also `{0}`")]
    BytesExtraKey(String),
    /// `$bytes` is not valid standard base64.
    #[error("`$bytes` is not valid base64 (RFC 4648 section 4, optional padding): {0}")]
    InvalidBase64(String),
    /// A CID that does not parse.
    #[error("invalid CID: {0}")]
    InvalidCid(String),
    /// A CIDv0; atproto links are CIDv1.
    #[error("CIDv0 is not allowed: atproto links must be CIDv1")]
    CidV0,
    /// A `$type: blob` map without one of its required fields.
    #[error("blob is missing required field `{0}`")]
    BlobMissingField(&'static str),
    /// A `$type: blob` map with a field of the wrong type.
    #[error("blob field `{field}` must be {expected}, found {found}")]
    BlobFieldType {
        /// The field name.
        field: &'static str,
        /// What the field must be.
        expected: &'static str,
        /// What it was.
        found: &'static str,
    },
    /// A blob with an empty `mimeType`.
    #[error("blob `mimeType` must not be empty")]
    BlobEmptyMimeType,
    /// A blob with a negative `size`.
    #[error("blob `size` must not be negative (found {0})")]
    BlobNegativeSize(i64),
    /// A legacy blob (`{cid, mimeType}`) that is malformed.
    #[error("legacy blob: {0}")]
    LegacyBlob(&'static str),
    /// A map key reserved for atproto-JSON (`$link`, `$bytes`) inside a map:
    /// such a map has no atproto-JSON representation.
    #[error("map key `{0}` is reserved by the data model and may not appear as an ordinary key")]
    ReservedKey(String),
    /// Containers nested deeper than the limit.
    #[error("containers nested deeper than {0} levels")]
    TooDeep(usize),
    /// A map or array with more elements than the limit.
    #[error("container has {len} elements, more than the limit of {max}")]
    ContainerTooLong {
        /// Its element count.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A map key longer than the limit.
    #[error("map key is {len} bytes long, more than the limit of {max}")]
    KeyTooLong {
        /// The key length in bytes.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Atproto data at the top level must be an object.
    #[error("the top level must be an object, found {0}")]
    NotAnObject(&'static str),
    /// A typed conversion found the wrong kind of value.
    #[error("expected {expected}, found {found}")]
    WrongKind {
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A typed conversion is missing a field.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// An error reported by serde while converting to or from a Rust type.
    #[error("{0}")]
    Serde(String),
}

/// Where in a value something went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A map key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A data-model violation, with the path to the offending value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct DataError {
    /// Segments stored innermost first (they are added while unwinding).
    rev_path: Vec<PathSegment>,
    kind: DataErrorKind,
}

impl DataError {
    /// An error at the root of the value.
    pub fn new(kind: DataErrorKind) -> Self {
        DataError {
            rev_path: Vec::new(),
            kind,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &DataErrorKind {
        &self.kind
    }

    /// Path segments from the root to the offending value.
    pub fn path(&self) -> impl Iterator<Item = &PathSegment> {
        self.rev_path.iter().rev()
    }

    /// The path rendered like `rcrd.items[2].$type` (empty at the root).
    pub fn path_string(&self) -> String {
        let mut s = String::new();
        for seg in self.path() {
            match seg {
                PathSegment::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                PathSegment::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        s
    }

    /// Prefix the path with a map key (used while unwinding).
    pub(crate) fn in_key(mut self, key: &str) -> Self {
        self.rev_path.push(PathSegment::Key(key.to_owned()));
        self
    }

    /// Prefix the path with an array index (used while unwinding).
    pub(crate) fn in_index(mut self, i: usize) -> Self {
        self.rev_path.push(PathSegment::Index(i));
        self
    }
}

impl From<DataErrorKind> for DataError {
    fn from(kind: DataErrorKind) -> Self {
        DataError::new(kind)
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rev_path.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "at {}: {}", self.path_string(), self.kind)
        }
    }
}

/// Why bytes are not strict DAG-CBOR (or not atproto data).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended inside an item.
    #[error("unexpected end of input")]
    UnexpectedEof,
    /// A string, byte string or container length larger than what is left.
    #[error("length {len} exceeds the {remaining} bytes left")]
    LengthExceedsInput {
        /// The declared length.
        len: u64,
        /// Bytes left in the input.
        remaining: usize,
    },
    /// Bytes after the top-level item.
    #[error("{0} trailing bytes after the top-level item")]
    TrailingBytes(usize),
    /// A float (major type 7, additional info 25, 26 or 27).
    #[error("floats are not allowed")]
    Float,
    /// An indefinite-length item (additional info 31).
    #[error("indefinite-length items are not allowed")]
    IndefiniteLength,
    /// A "break" stop code outside an indefinite-length item.
    #[error("unexpected break stop code")]
    UnexpectedBreak,
    /// Additional information 28, 29 or 30.
    #[error("reserved additional information value {0}")]
    ReservedAdditionalInfo(u8),
    /// An integer, length or tag not encoded in the shortest form.
    #[error("non-canonical (not shortest) encoding of the argument {0}")]
    NonMinimal(u64),
    /// An integer outside the signed 64-bit range.
    #[error("integer outside the signed 64-bit range")]
    IntegerOutOfRange,
    /// A tag other than 42.
    #[error("tag {0} is not allowed (only tag 42, CID, is)")]
    UnsupportedTag(u64),
    /// A simple value other than false, true and null (including undefined).
    #[error("simple value {0} is not allowed (only false, true and null are)")]
    UnsupportedSimple(u8),
    /// A text string that is not UTF-8.
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    /// A map key that is not a text string.
    #[error("map key must be a text string, found {0}")]
    NonStringKey(&'static str),
    /// A map key that appears twice.
    #[error("duplicate map key `{0}`")]
    DuplicateKey(String),
    /// Map keys not in canonical order (length first, then bytewise).
    #[error("map key `{key}` is out of canonical order (after `{previous}`)")]
    KeyOrder {
        /// The key out of order.
        key: String,
        /// The key before it.
        previous: String,
    },
    /// Tag 42 on something other than a byte string.
    #[error("tag 42 must wrap a byte string, found {0}")]
    LinkNotBytes(&'static str),
    /// A tag-42 byte string without the 0x00 multibase prefix.
    #[error("tag 42 byte string must start with the 0x00 multibase prefix")]
    LinkMissingPrefix,
    /// A tag-42 byte string that is not a CID.
    #[error("tag 42 holds an invalid CID: {0}")]
    InvalidCid(String),
    /// A CID with bytes after it, or not in its canonical binary form.
    #[error("tag 42 CID bytes are not canonical (trailing or non-minimal bytes)")]
    NonCanonicalCid,
    /// A data-model rule on the decoded value.
    #[error("{0}")]
    DataModel(DataErrorKind),
    /// An item of another type than a fixed shape requires at this point.
    #[error("expected {expected}, found {found}")]
    UnexpectedType {
        /// What the shape requires.
        expected: &'static str,
        /// What the input holds.
        found: &'static str,
    },
    /// A map of a fixed shape without one of its required keys.
    #[error("required map key `{0}` is missing")]
    MissingField(&'static str),
    /// A map of a fixed shape with a key it does not define, or a key
    /// repeated or out of canonical order.
    #[error("map key `{0}` is unknown, repeated or out of order")]
    UnexpectedField(String),
}

/// A DAG-CBOR decoding failure, with the byte offset of the offending item.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid DAG-CBOR at byte {offset}: {kind}")]
pub struct DecodeError {
    /// Byte offset where the offending item starts.
    pub offset: usize,
    /// What went wrong.
    pub kind: DecodeErrorKind,
}

impl DecodeError {
    /// An error at byte `offset`.
    pub fn new(offset: usize, kind: DecodeErrorKind) -> Self {
        DecodeError { offset, kind }
    }
}
