//! The strict, bounded DAG-CBOR reader.

use cid::Cid;

use super::{
    MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_NEGATIVE, MAJOR_SIMPLE, MAJOR_TAG, MAJOR_TEXT,
    MAJOR_UNSIGNED, SIMPLE_FALSE, SIMPLE_NULL, SIMPLE_TRUE, TAG_CID,
};
use crate::error::{DataErrorKind, DecodeError, DecodeErrorKind};
use crate::model::check_key_len;

/// Strict DAG-CBOR reader: a cursor over a byte slice.
///
/// Every read checks the DAG-CBOR rules for the item it reads: heads in
/// shortest form, definite lengths, no floats, no simple values but
/// `false`, `true` and `null`, no tag but 42 (whose content must be a byte
/// string holding `0x00` and a canonical binary CIDv1), UTF-8 text, and
/// integers within the signed 64-bit range. Declared lengths are checked
/// against the remaining input before anything is sliced or allocated, so
/// untrusted input can never cause a large allocation. Errors carry the byte
/// offset of the offending item.
///
/// Typed reads ([`uint`](Decoder::uint), [`text`](Decoder::text),
/// [`link`](Decoder::link), ...) serve fixed shapes;
/// [`read_struct`](Decoder::read_struct) reads a map with known keys in
/// canonical order, and [`skip`](Decoder::skip) passes over a value of any
/// shape with bounded nesting.
///
/// ```
/// use atproto_data::cbor::{Decoder, Encoder};
///
/// let mut e = Encoder::new();
/// e.map(2);
/// e.text("n");
/// e.int(-3);
/// e.text("name");
/// e.text("x");
/// let bytes = e.into_bytes();
///
/// let mut d = Decoder::new(&bytes);
/// let (mut n, mut name) = (0, "");
/// d.read_struct(&["n", "name"], &[true, true], |i, d| {
///     match i {
///         0 => n = d.int()?,
///         _ => name = d.text()?,
///     }
///     Ok(())
/// })?;
/// d.finish()?;
/// assert_eq!((n, name), (-3, "x"));
/// # Ok::<(), atproto_data::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// What a head is, for error messages.
pub(crate) fn major_name(major: u8) -> &'static str {
    match major {
        MAJOR_UNSIGNED | MAJOR_NEGATIVE => "integer",
        MAJOR_BYTES => "byte string",
        MAJOR_TEXT => "text string",
        MAJOR_ARRAY => "array",
        MAJOR_MAP => "map",
        MAJOR_TAG => "tag",
        _ => "simple value or float",
    }
}

/// What a decoded head is, for error messages (simple values by name).
fn head_name(major: u8, arg: u64) -> &'static str {
    match (major, arg) {
        (MAJOR_SIMPLE, 20 | 21) => "boolean",
        (MAJOR_SIMPLE, 22) => "null",
        _ => major_name(major),
    }
}

impl<'a> Decoder<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// The offset of the next byte to read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Fail unless all of the input has been read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::new(
                self.pos,
                DecodeErrorKind::TrailingBytes(n),
            )),
        }
    }

    #[inline]
    fn err(&self, at: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(at, kind)
    }

    /// The next byte, not consumed.
    #[inline]
    fn peek(&self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(b) => Ok(*b),
            None => Err(self.err(self.pos, DecodeErrorKind::UnexpectedEof)),
        }
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek()?;
        self.pos += 1;
        Ok(b)
    }

    /// `len` bytes of content of the item starting at `at`.
    #[inline]
    pub(crate) fn take(&mut self, len: u64, at: usize) -> Result<&'a [u8], DecodeError> {
        let slice = usize::try_from(len)
            .ok()
            .and_then(|n| self.buf.get(self.pos..self.pos.checked_add(n)?));
        match slice {
            Some(s) => {
                self.pos += s.len();
                Ok(s)
            }
            None => Err(self.err(
                at,
                DecodeErrorKind::LengthExceedsInput {
                    len,
                    remaining: self.remaining(),
                },
            )),
        }
    }

    #[inline]
    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.pos;
        match self.buf.get(at..at.saturating_add(N)) {
            Some(s) => {
                let mut a = [0u8; N];
                a.copy_from_slice(s);
                self.pos += N;
                Ok(a)
            }
            None => Err(self.err(at, DecodeErrorKind::UnexpectedEof)),
        }
    }

    /// The argument of a head (majors 0-6) in shortest form.
    #[inline]
    fn argument(&mut self, info: u8, at: usize) -> Result<u64, DecodeError> {
        let (n, min) = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => (u64::from(self.fixed::<1>()?[0]), 24),
            25 => (u64::from(u16::from_be_bytes(self.fixed()?)), 0x100),
            26 => (u64::from(u32::from_be_bytes(self.fixed()?)), 0x1_0000),
            27 => (u64::from_be_bytes(self.fixed()?), 0x1_0000_0000),
            31 => return Err(self.err(at, DecodeErrorKind::IndefiniteLength)),
            _ => return Err(self.err(at, DecodeErrorKind::ReservedAdditionalInfo(info))),
        };
        if n < min {
            return Err(self.err(at, DecodeErrorKind::NonMinimal(n)));
        }
        Ok(n)
    }

    /// Read one head: its major type and argument.
    ///
    /// For majors 0 to 6 the argument is the integer, length or tag number,
    /// checked to be in shortest form and definite. Of major 7 only `false`,
    /// `true` and `null` are accepted, returned as `(7, 20)`, `(7, 21)` and
    /// `(7, 22)`; floats, other simple values and break codes are errors.
    /// The content of strings and containers is left to the caller.
    #[inline]
    pub fn head(&mut self) -> Result<(u8, u64), DecodeError> {
        let at = self.pos;
        let ib = self.byte()?;
        let major = ib >> 5;
        let info = ib & 0x1f;
        if major == MAJOR_SIMPLE {
            return match ib {
                SIMPLE_FALSE | SIMPLE_TRUE | SIMPLE_NULL => Ok((MAJOR_SIMPLE, u64::from(info))),
                0xf9..=0xfb => Err(self.err(at, DecodeErrorKind::Float)),
                0xfc..=0xfe => Err(self.err(at, DecodeErrorKind::ReservedAdditionalInfo(info))),
                0xff => Err(self.err(at, DecodeErrorKind::UnexpectedBreak)),
                0xf8 => {
                    let s = self.fixed::<1>()?[0];
                    Err(self.err(at, DecodeErrorKind::UnsupportedSimple(s)))
                }
                _ => Err(self.err(at, DecodeErrorKind::UnsupportedSimple(info))),
            };
        }
        let n = self.argument(info, at)?;
        Ok((major, n))
    }

    /// A head of the given major type.
    #[inline]
    fn expect(&mut self, major: u8, expected: &'static str) -> Result<u64, DecodeError> {
        let at = self.pos;
        let (m, n) = self.head()?;
        if m != major {
            return Err(self.err(
                at,
                DecodeErrorKind::UnexpectedType {
                    expected,
                    found: head_name(m, n),
                },
            ));
        }
        Ok(n)
    }

    /// Fail unless `n` items of at least `min_item_len` bytes each could
    /// fit in the remaining input (checked before anything is sized by `n`).
    #[inline]
    pub(crate) fn check_fits(
        &self,
        n: u64,
        min_item_len: usize,
        at: usize,
    ) -> Result<(), DecodeError> {
        let remaining = self.remaining();
        if n > (remaining / min_item_len.max(1)) as u64 {
            return Err(self.err(
                at,
                DecodeErrorKind::LengthExceedsInput { len: n, remaining },
            ));
        }
        Ok(())
    }

    /// A UTF-8 string of `len` bytes, the content of the item at `at`.
    #[inline]
    pub(crate) fn str_content(&mut self, len: u64, at: usize) -> Result<&'a str, DecodeError> {
        let raw = self.take(len, at)?;
        std::str::from_utf8(raw).map_err(|_| self.err(at, DecodeErrorKind::InvalidUtf8))
    }

    /// An unsigned integer (major type 0).
    #[inline]
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        self.expect(MAJOR_UNSIGNED, "an unsigned integer")
    }

    /// An integer within the signed 64-bit range (major type 0 or 1).
    #[inline]
    pub fn int(&mut self) -> Result<i64, DecodeError> {
        let at = self.pos;
        let (major, n) = self.head()?;
        match major {
            MAJOR_UNSIGNED | MAJOR_NEGATIVE => int_from_head(major, n, at),
            _ => Err(self.err(
                at,
                DecodeErrorKind::UnexpectedType {
                    expected: "an integer",
                    found: head_name(major, n),
                },
            )),
        }
    }

    /// `true` or `false`.
    #[inline]
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        let at = self.pos;
        match self.head()? {
            (MAJOR_SIMPLE, 20) => Ok(false),
            (MAJOR_SIMPLE, 21) => Ok(true),
            (m, n) => Err(self.err(
                at,
                DecodeErrorKind::UnexpectedType {
                    expected: "a boolean",
                    found: head_name(m, n),
                },
            )),
        }
    }

    /// Whether the next item is `null`; consumes it if so, and reads
    /// nothing otherwise (including at the end of the input).
    #[inline]
    pub fn try_null(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&SIMPLE_NULL) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A byte string, borrowed from the input.
    #[inline]
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let n = self.expect(MAJOR_BYTES, "a byte string")?;
        self.take(n, at)
    }

    /// A text string, borrowed from the input.
    #[inline]
    pub fn text(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let n = self.expect(MAJOR_TEXT, "a text string")?;
        self.str_content(n, at)
    }

    /// A CID link (tag 42).
    #[inline]
    pub fn link(&mut self) -> Result<Cid, DecodeError> {
        let at = self.pos;
        let tag = self.expect(MAJOR_TAG, "a CID link (tag 42)")?;
        if tag != TAG_CID {
            return Err(self.err(at, DecodeErrorKind::UnsupportedTag(tag)));
        }
        self.link_content()
    }

    /// A CID link, or `None` for `null`.
    #[inline]
    pub fn opt_link(&mut self) -> Result<Option<Cid>, DecodeError> {
        if self.try_null() {
            Ok(None)
        } else {
            self.link().map(Some)
        }
    }

    /// The head of a map: its number of entries, at most what the remaining
    /// input could hold.
    #[inline]
    pub fn map_len(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        let n = self.expect(MAJOR_MAP, "a map")?;
        // Every entry takes at least two bytes.
        self.check_fits(n, 2, at)?;
        Ok(n)
    }

    /// The head of an array: its number of items, at most what the
    /// remaining input could hold.
    #[inline]
    pub fn array_len(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        let n = self.expect(MAJOR_ARRAY, "an array")?;
        // Every item takes at least one byte.
        self.check_fits(n, 1, at)?;
        Ok(n)
    }

    /// A map key: a text string of at most
    /// [`MAX_OBJECT_KEY_LEN`](crate::MAX_OBJECT_KEY_LEN) bytes.
    #[inline]
    pub fn key(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let ib = self.byte()?;
        let major = ib >> 5;
        if major != MAJOR_TEXT {
            return Err(self.err(at, DecodeErrorKind::NonStringKey(major_name(major))));
        }
        let len = self.argument(ib & 0x1f, at)?;
        check_key_len(len).map_err(|k| self.err(at, DecodeErrorKind::DataModel(k)))?;
        self.str_content(len, at)
    }

    /// The content of tag 42: a byte string `0x00 || binary CIDv1`.
    pub(crate) fn link_content(&mut self) -> Result<Cid, DecodeError> {
        let at = self.pos;
        let ib = self.byte()?;
        let major = ib >> 5;
        if major != MAJOR_BYTES {
            return Err(self.err(at, DecodeErrorKind::LinkNotBytes(major_name(major))));
        }
        let len = self.argument(ib & 0x1f, at)?;
        let raw = self.take(len, at)?;
        let Some((&0x00, cid_bytes)) = raw.split_first() else {
            return Err(self.err(at, DecodeErrorKind::LinkMissingPrefix));
        };
        parse_binary_cid(cid_bytes).map_err(|k| self.err(at, k))
    }

    /// Skip one complete item of any shape, checking it as strictly as the
    /// typed reads do (map keys must be text strings, but their order is
    /// not checked), with containers nested at most `max_depth` levels (the
    /// item itself, if a container, is level 1).
    pub fn skip(&mut self, max_depth: usize) -> Result<(), DecodeError> {
        self.skip_at(0, max_depth)
    }

    fn skip_at(&mut self, depth: usize, max_depth: usize) -> Result<(), DecodeError> {
        let at = self.pos;
        let (major, n) = self.head()?;
        match major {
            MAJOR_UNSIGNED | MAJOR_NEGATIVE => int_from_head(major, n, at).map(drop),
            MAJOR_BYTES => self.take(n, at).map(drop),
            MAJOR_TEXT => self.str_content(n, at).map(drop),
            MAJOR_ARRAY => {
                enter(depth, max_depth, at)?;
                self.check_fits(n, 1, at)?;
                for _ in 0..n {
                    self.skip_at(depth + 1, max_depth)?;
                }
                Ok(())
            }
            MAJOR_MAP => {
                enter(depth, max_depth, at)?;
                self.check_fits(n, 2, at)?;
                for _ in 0..n {
                    self.key()?;
                    self.skip_at(depth + 1, max_depth)?;
                }
                Ok(())
            }
            MAJOR_TAG => {
                if n != TAG_CID {
                    return Err(self.err(at, DecodeErrorKind::UnsupportedTag(n)));
                }
                self.link_content().map(drop)
            }
            // `head` only returns false, true and null of major 7.
            _ => Ok(()),
        }
    }

    /// Read a map whose keys are among `keys`, given in DAG-CBOR canonical
    /// order (shorter first, then bytewise), calling `f(index, decoder)` to
    /// read the value of `keys[index]`. The map must hold each key at most
    /// once, in that order, and no other key; `keys[i]` may be absent
    /// unless `required[i]` (positions past the end of `required` are
    /// optional).
    pub fn read_struct(
        &mut self,
        keys: &[&'static str],
        required: &[bool],
        mut f: impl FnMut(usize, &mut Decoder<'a>) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        let map_at = self.pos;
        let n = self.map_len()?;
        let mut next = 0usize;
        for _ in 0..n {
            let key_at = self.pos;
            let k = self.key()?;
            let idx = match keys.get(next) {
                // The usual case: the next key in order.
                Some(x) if *x == k => next,
                _ => {
                    let Some(idx) = keys
                        .get(next..)
                        .and_then(|rest| rest.iter().position(|x| *x == k))
                        .map(|i| i + next)
                    else {
                        return Err(
                            self.err(key_at, DecodeErrorKind::UnexpectedField(k.to_owned()))
                        );
                    };
                    missing(keys, required, next, idx, key_at)?;
                    idx
                }
            };
            f(idx, self)?;
            next = idx + 1;
        }
        if next < keys.len() {
            missing(keys, required, next, keys.len(), map_at)?;
        }
        Ok(())
    }
}

/// The first required key in `keys[from..to]`, as an error.
#[cold]
fn missing(
    keys: &[&'static str],
    required: &[bool],
    from: usize,
    to: usize,
    at: usize,
) -> Result<(), DecodeError> {
    for i in from..to {
        if let (Some(key), Some(true)) = (keys.get(i), required.get(i)) {
            return Err(DecodeError::new(at, DecodeErrorKind::MissingField(key)));
        }
    }
    Ok(())
}

/// Fail if a container at `depth` (the number of containers around it)
/// would exceed `max_depth` levels.
#[inline]
pub(crate) fn enter(depth: usize, max_depth: usize, at: usize) -> Result<(), DecodeError> {
    if depth >= max_depth {
        Err(DecodeError::new(
            at,
            DecodeErrorKind::DataModel(DataErrorKind::TooDeep(max_depth)),
        ))
    } else {
        Ok(())
    }
}

/// The integer of a major 0 or 1 head, within the signed 64-bit range.
#[inline]
pub(crate) fn int_from_head(major: u8, n: u64, at: usize) -> Result<i64, DecodeError> {
    match i64::try_from(n) {
        Ok(n) if major == MAJOR_NEGATIVE => Ok(!n),
        Ok(n) => Ok(n),
        Err(_) => Err(DecodeError::new(at, DecodeErrorKind::IntegerOutOfRange)),
    }
}

/// Read one unsigned varint (multiformats: at most 9 bytes, shortest form).
fn read_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, DecodeErrorKind> {
    let mut n: u64 = 0;
    for i in 0..9 {
        let Some(&b) = bytes.get(*pos) else {
            return Err(DecodeErrorKind::InvalidCid("truncated varint".into()));
        };
        *pos += 1;
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(DecodeErrorKind::NonCanonicalCid);
            }
            return Ok(n);
        }
    }
    Err(DecodeErrorKind::InvalidCid(
        "varint longer than 9 bytes".into(),
    ))
}

/// A binary CIDv1 filling all of `bytes`: version, codec, multihash code,
/// digest length, digest; varints in shortest form.
pub(crate) fn parse_binary_cid(bytes: &[u8]) -> Result<Cid, DecodeErrorKind> {
    if bytes.starts_with(&[0x12, 0x20]) {
        return Err(DecodeErrorKind::DataModel(DataErrorKind::CidV0));
    }
    let mut pos = 0;
    let version = read_varint(bytes, &mut pos)?;
    if version != 1 {
        return Err(DecodeErrorKind::InvalidCid(format!(
            "unsupported CID version {version}"
        )));
    }
    let codec = read_varint(bytes, &mut pos)?;
    let code = read_varint(bytes, &mut pos)?;
    let size = read_varint(bytes, &mut pos)?;
    let rest = bytes.get(pos..).unwrap_or_default();
    if size > 64 {
        return Err(DecodeErrorKind::InvalidCid(format!(
            "digest of {size} bytes is too long"
        )));
    }
    if (rest.len() as u64) < size {
        return Err(DecodeErrorKind::InvalidCid("truncated digest".into()));
    }
    if rest.len() as u64 > size {
        return Err(DecodeErrorKind::NonCanonicalCid);
    }
    let hash = multihash::Multihash::<64>::wrap(code, rest)
        .map_err(|e| DecodeErrorKind::InvalidCid(e.to_string()))?;
    Ok(Cid::new_v1(codec, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cbor::Encoder;
    use crate::{cid_for_dag_cbor, MAX_OBJECT_KEY_LEN};

    fn kind(r: Result<impl std::fmt::Debug, DecodeError>) -> DecodeErrorKind {
        match r {
            Ok(v) => panic!("decoded to {v:?}"),
            Err(e) => e.kind,
        }
    }

    #[test]
    fn typed_reads() {
        let cid = cid_for_dag_cbor(b"x");
        let mut e = Encoder::new();
        e.array(9);
        e.uint(7);
        e.int(-7);
        e.bool(true);
        e.null();
        e.bytes(b"ab");
        e.text("hé");
        e.link(&cid);
        e.opt_link(None);
        e.opt_link(Some(&cid));
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.array_len(), Ok(9));
        assert_eq!(d.uint(), Ok(7));
        assert_eq!(d.int(), Ok(-7));
        assert_eq!(d.bool(), Ok(true));
        assert!(d.try_null());
        assert!(!d.try_null());
        assert_eq!(d.bytes(), Ok(&b"ab"[..]));
        assert_eq!(d.text(), Ok("hé"));
        assert_eq!(d.link(), Ok(cid));
        assert_eq!(d.opt_link(), Ok(None));
        assert_eq!(d.opt_link(), Ok(Some(cid)));
        assert_eq!(d.finish(), Ok(()));
        assert!(!d.try_null());
        assert_eq!(kind(d.uint()), DecodeErrorKind::UnexpectedEof);
    }

    #[test]
    fn type_mismatches_name_both_sides() {
        assert_eq!(
            kind(Decoder::new(&[0x20]).uint()),
            DecodeErrorKind::UnexpectedType {
                expected: "an unsigned integer",
                found: "integer"
            }
        );
        assert_eq!(
            kind(Decoder::new(&[0xf6]).link()),
            DecodeErrorKind::UnexpectedType {
                expected: "a CID link (tag 42)",
                found: "null"
            }
        );
        assert_eq!(
            kind(Decoder::new(&[0x61, b'a']).int()),
            DecodeErrorKind::UnexpectedType {
                expected: "an integer",
                found: "text string"
            }
        );
        assert_eq!(
            kind(Decoder::new(&[0xc1, 0x00]).link()),
            DecodeErrorKind::UnsupportedTag(1)
        );
        assert_eq!(
            kind(Decoder::new(&[0x1b, 0x80, 0, 0, 0, 0, 0, 0, 0]).int()),
            DecodeErrorKind::IntegerOutOfRange
        );
        let e = Decoder::new(&[0x01, 0x02]).finish();
        assert_eq!(
            e.map_err(|e| e.kind),
            Err(DecodeErrorKind::TrailingBytes(2))
        );
        let mut d = Decoder::new(&[0x01, 0x61]);
        assert_eq!(d.uint(), Ok(1));
        let e = d.text().expect_err("truncated");
        assert_eq!(e.offset, 1);
    }

    #[test]
    fn lengths_are_bounded_by_the_input() {
        assert_eq!(
            kind(Decoder::new(&[0x9a, 0x00, 0x01, 0x00, 0x00, 0x01]).array_len()),
            DecodeErrorKind::LengthExceedsInput {
                len: 65536,
                remaining: 1
            }
        );
        assert_eq!(
            kind(Decoder::new(&[0xa2, 0x61, 0x61, 0x01]).map_len()),
            DecodeErrorKind::LengthExceedsInput {
                len: 2,
                remaining: 3
            }
        );
        assert_eq!(
            kind(Decoder::new(&[0x5b, 0, 0, 0, 1, 0, 0, 0, 0, 1]).bytes()),
            DecodeErrorKind::LengthExceedsInput {
                len: 1 << 32,
                remaining: 1
            }
        );
    }

    #[test]
    fn keys() {
        assert_eq!(Decoder::new(&[0x61, b'k']).key(), Ok("k"));
        assert_eq!(
            kind(Decoder::new(&[0x41, b'k']).key()),
            DecodeErrorKind::NonStringKey("byte string")
        );
        let mut long = Encoder::new();
        long.text(&"k".repeat(MAX_OBJECT_KEY_LEN + 1));
        assert_eq!(
            kind(Decoder::new(long.as_bytes()).key()),
            DecodeErrorKind::DataModel(DataErrorKind::KeyTooLong {
                len: MAX_OBJECT_KEY_LEN as u64 + 1,
                max: MAX_OBJECT_KEY_LEN
            })
        );
    }

    fn struct_of(entries: &[(&str, u64)]) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(entries.len());
        for (k, v) in entries {
            e.text(k);
            e.uint(*v);
        }
        e.into_bytes()
    }

    fn read(bytes: &[u8]) -> Result<[Option<u64>; 3], DecodeError> {
        let mut got = [None; 3];
        let mut d = Decoder::new(bytes);
        d.read_struct(&["a", "b", "cc"], &[true, false, true], |i, d| {
            got[i] = Some(d.uint()?);
            Ok(())
        })?;
        d.finish()?;
        Ok(got)
    }

    #[test]
    fn read_struct_rules() {
        assert_eq!(
            read(&struct_of(&[("a", 1), ("b", 2), ("cc", 3)])),
            Ok([Some(1), Some(2), Some(3)])
        );
        assert_eq!(
            read(&struct_of(&[("a", 1), ("cc", 3)])),
            Ok([Some(1), None, Some(3)])
        );
        assert_eq!(
            kind(read(&struct_of(&[("a", 1), ("b", 2)]))),
            DecodeErrorKind::MissingField("cc")
        );
        assert_eq!(
            kind(read(&struct_of(&[("b", 2), ("cc", 3)]))),
            DecodeErrorKind::MissingField("a")
        );
        for bad in [
            &[("a", 1), ("a", 1), ("cc", 3)][..],
            &[("a", 1), ("cc", 3), ("b", 2)],
            &[("a", 1), ("d", 2), ("cc", 3)],
        ] {
            assert!(
                matches!(
                    kind(read(&struct_of(bad))),
                    DecodeErrorKind::UnexpectedField(_)
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            kind(read(&[0xa0, 0x00])),
            DecodeErrorKind::MissingField("a")
        );
        let mut trailing = struct_of(&[("a", 1), ("cc", 3)]);
        trailing.push(0);
        assert_eq!(kind(read(&trailing)), DecodeErrorKind::TrailingBytes(1));
    }

    #[test]
    fn skip_checks_and_bounds() {
        let cid = cid_for_dag_cbor(b"x");
        let mut e = Encoder::new();
        e.map(2);
        e.text("l");
        e.link(&cid);
        e.text("a");
        e.array(3);
        e.int(-5);
        e.bool(false);
        e.bytes(b"z");
        e.text("after");
        let bytes = e.into_bytes();
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.skip(2), Ok(()));
        assert_eq!(d.text(), Ok("after"));
        assert_eq!(kind(Decoder::new(&bytes).skip(1)), {
            DecodeErrorKind::DataModel(DataErrorKind::TooDeep(1))
        });

        let nest = |n: usize| {
            let mut b = vec![0x81; n - 1];
            b.push(0x80);
            b
        };
        assert_eq!(Decoder::new(&nest(64)).skip(64), Ok(()));
        assert_eq!(
            kind(Decoder::new(&nest(65)).skip(64)),
            DecodeErrorKind::DataModel(DataErrorKind::TooDeep(64))
        );
        assert!(Decoder::new(&nest(1_000_000)).skip(64).is_err());

        for (bad, want) in [
            (&[0xf9, 0x3c, 0x00][..], DecodeErrorKind::Float),
            (&[0xf7], DecodeErrorKind::UnsupportedSimple(23)),
            (&[0xc0, 0x00], DecodeErrorKind::UnsupportedTag(0)),
            (&[0x9f, 0xff], DecodeErrorKind::IndefiniteLength),
            (&[0x18, 0x01], DecodeErrorKind::NonMinimal(1)),
            (&[0x62, 0xc3, 0x28], DecodeErrorKind::InvalidUtf8),
            (
                &[0xa1, 0x01, 0x01],
                DecodeErrorKind::NonStringKey("integer"),
            ),
            (&[0xd8, 0x2a, 0x40], DecodeErrorKind::LinkMissingPrefix),
            (
                &[0x3b, 0x80, 0, 0, 0, 0, 0, 0, 0],
                DecodeErrorKind::IntegerOutOfRange,
            ),
        ] {
            assert_eq!(kind(Decoder::new(bad).skip(8)), want, "{bad:02x?}");
        }
    }
}
