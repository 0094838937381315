//! Canonical DAG-CBOR encoding and strict decoding.
//!
//! Encoding rules (DAG-CBOR): shortest-form arguments, definite lengths,
//! map keys sorted by length then bytewise, links as tag 42 over a byte
//! string holding `0x00` followed by the binary CID. No floats.
//!
//! The decoder accepts exactly that form and nothing else, never allocates
//! more than the remaining input could hold, and bounds nesting depth.

use std::collections::BTreeMap;

use cid::{Cid, Version};

use crate::error::{DataErrorKind, DecodeError, DecodeErrorKind};
use crate::model::{
    check_container_len, check_key_len, check_map_fields, is_reserved_key, MAX_NESTED_LEVELS,
};
use crate::value::Value;

const MAJOR_UNSIGNED: u8 = 0;
const MAJOR_NEGATIVE: u8 = 1;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

const TAG_CID: u64 = 42;
const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;

// ---------------------------------------------------------------- encoding

/// Encode a value as canonical DAG-CBOR.
pub fn to_dag_cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(v));
    write_dag_cbor(v, &mut out);
    out
}

/// Append the canonical DAG-CBOR encoding of a value to `out`.
pub fn write_dag_cbor(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Integer(i) => {
            if *i >= 0 {
                write_header(out, MAJOR_UNSIGNED, *i as u64);
            } else {
                // -1 - i, which is !i for two's complement; never overflows.
                write_header(out, MAJOR_NEGATIVE, !*i as u64);
            }
        }
        Value::String(s) => {
            write_header(out, MAJOR_TEXT, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            write_header(out, MAJOR_BYTES, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Link(c) => {
            write_header(out, MAJOR_TAG, TAG_CID);
            write_header(out, MAJOR_BYTES, 1 + cid_len(c) as u64);
            out.push(0x00);
            write_cid(out, c);
        }
        Value::Array(a) => {
            write_header(out, MAJOR_ARRAY, a.len() as u64);
            for item in a {
                write_dag_cbor(item, out);
            }
        }
        Value::Map(m) => {
            write_header(out, MAJOR_MAP, m.len() as u64);
            // A BTreeMap iterates bytewise. When key lengths never decrease
            // in that order it already is canonical (length first, then
            // bytewise); otherwise a stable sort by length makes it so.
            let in_order = m
                .keys()
                .zip(m.keys().skip(1))
                .all(|(a, b)| a.len() <= b.len());
            if in_order {
                for (k, item) in m {
                    write_entry(out, k, item);
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_by_key(|(k, _)| k.len());
                for (k, item) in entries {
                    write_entry(out, k, item);
                }
            }
        }
    }
}

fn write_entry(out: &mut Vec<u8>, k: &str, item: &Value) {
    write_header(out, MAJOR_TEXT, k.len() as u64);
    out.extend_from_slice(k.as_bytes());
    write_dag_cbor(item, out);
}

fn write_header(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.push(m | 24);
        out.push(n as u8);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn header_len(n: u64) -> usize {
    if n < 24 {
        1
    } else if n <= u64::from(u8::MAX) {
        2
    } else if n <= u64::from(u16::MAX) {
        3
    } else if n <= u64::from(u32::MAX) {
        5
    } else {
        9
    }
}

fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Length of the binary CID (same bytes as `Cid::to_bytes`).
fn cid_len(c: &Cid) -> usize {
    let h = c.hash();
    let mh = varint_len(h.code()) + varint_len(u64::from(h.size())) + h.digest().len();
    match c.version() {
        Version::V0 => mh,
        Version::V1 => varint_len(1) + varint_len(c.codec()) + mh,
    }
}

/// Write the binary CID (same bytes as `Cid::to_bytes`) without going
/// through `io::Write`.
fn write_cid(out: &mut Vec<u8>, c: &Cid) {
    if c.version() == Version::V1 {
        write_varint(out, 1);
        write_varint(out, c.codec());
    }
    let h = c.hash();
    write_varint(out, h.code());
    write_varint(out, u64::from(h.size()));
    out.extend_from_slice(h.digest());
}

/// Exact size of the canonical encoding.
fn encoded_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Integer(i) => header_len(if *i >= 0 { *i as u64 } else { !*i as u64 }),
        Value::String(s) => header_len(s.len() as u64) + s.len(),
        Value::Bytes(b) => header_len(b.len() as u64) + b.len(),
        Value::Link(c) => {
            let n = 1 + cid_len(c);
            2 + header_len(n as u64) + n
        }
        Value::Array(a) => header_len(a.len() as u64) + a.iter().map(encoded_len).sum::<usize>(),
        Value::Map(m) => {
            header_len(m.len() as u64)
                + m.iter()
                    .map(|(k, item)| header_len(k.len() as u64) + k.len() + encoded_len(item))
                    .sum::<usize>()
        }
    }
}

// ---------------------------------------------------------------- decoding

/// Decode exactly one strict DAG-CBOR item filling all of `bytes`, checking
/// the data-model rules, with nesting bounded by [`MAX_NESTED_LEVELS`].
pub fn from_dag_cbor(bytes: &[u8]) -> Result<Value, DecodeError> {
    from_dag_cbor_with_max_depth(bytes, MAX_NESTED_LEVELS)
}

/// [`from_dag_cbor`] with another nesting limit (containers; the top-level
/// container is level 1). Keep it modest: decoding recurses once per level.
pub fn from_dag_cbor_with_max_depth(bytes: &[u8], max_depth: usize) -> Result<Value, DecodeError> {
    let mut d = Decoder {
        buf: bytes,
        pos: 0,
        max_depth,
    };
    let v = d.value(0)?;
    if d.pos != bytes.len() {
        return Err(DecodeError::new(
            d.pos,
            DecodeErrorKind::TrailingBytes(bytes.len() - d.pos),
        ));
    }
    Ok(v)
}

/// Decode one strict DAG-CBOR item from the start of `bytes`, returning it
/// and the number of bytes it used (for concatenated items, such as an
/// event-stream frame's header and body).
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut d = Decoder {
        buf: bytes,
        pos: 0,
        max_depth: MAX_NESTED_LEVELS,
    };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    max_depth: usize,
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
fn parse_binary_cid(bytes: &[u8]) -> Result<Cid, DecodeErrorKind> {
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

fn major_name(major: u8) -> &'static str {
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

impl<'a> Decoder<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn err(&self, at: usize, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(at, kind)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        match self.buf.get(self.pos) {
            Some(b) => {
                self.pos += 1;
                Ok(*b)
            }
            None => Err(self.err(self.pos, DecodeErrorKind::UnexpectedEof)),
        }
    }

    fn take(&mut self, len: u64, at: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        let slice = usize::try_from(len)
            .ok()
            .and_then(|n| self.buf.get(self.pos..self.pos.checked_add(n)?));
        match slice {
            Some(s) => {
                self.pos += s.len();
                Ok(s)
            }
            None => Err(self.err(at, DecodeErrorKind::LengthExceedsInput { len, remaining })),
        }
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let at = self.pos;
        match self.buf.get(at..at + N) {
            Some(s) => {
                let mut a = [0u8; N];
                a.copy_from_slice(s);
                self.pos += N;
                Ok(a)
            }
            None => Err(self.err(at, DecodeErrorKind::UnexpectedEof)),
        }
    }

    /// The argument of a header (majors 0-6) in shortest form.
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

    fn enter(&self, depth: usize, at: usize) -> Result<(), DecodeError> {
        if depth >= self.max_depth {
            Err(self.err(
                at,
                DecodeErrorKind::DataModel(DataErrorKind::TooDeep(self.max_depth)),
            ))
        } else {
            Ok(())
        }
    }

    fn text(&mut self, len: u64, at: usize) -> Result<&'a str, DecodeError> {
        let raw = self.take(len, at)?;
        std::str::from_utf8(raw).map_err(|_| self.err(at, DecodeErrorKind::InvalidUtf8))
    }

    /// One item; `depth` counts the containers around it.
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let at = self.pos;
        let ib = self.byte()?;
        let major = ib >> 5;
        let info = ib & 0x1f;
        if major == MAJOR_SIMPLE {
            return match ib {
                FALSE => Ok(Value::Bool(false)),
                TRUE => Ok(Value::Bool(true)),
                NULL => Ok(Value::Null),
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
        match major {
            MAJOR_UNSIGNED => i64::try_from(n)
                .map(Value::Integer)
                .map_err(|_| self.err(at, DecodeErrorKind::IntegerOutOfRange)),
            MAJOR_NEGATIVE => i64::try_from(n)
                .map(|n| Value::Integer(!n))
                .map_err(|_| self.err(at, DecodeErrorKind::IntegerOutOfRange)),
            MAJOR_BYTES => Ok(Value::Bytes(self.take(n, at)?.to_vec())),
            MAJOR_TEXT => Ok(Value::String(self.text(n, at)?.to_owned())),
            MAJOR_ARRAY => {
                self.enter(depth, at)?;
                check_container_len(n).map_err(|k| self.err(at, DecodeErrorKind::DataModel(k)))?;
                // Every item takes at least one byte.
                let remaining = self.remaining();
                if n > remaining as u64 {
                    return Err(self.err(
                        at,
                        DecodeErrorKind::LengthExceedsInput { len: n, remaining },
                    ));
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            MAJOR_MAP => self.map(n, depth, at),
            MAJOR_TAG => {
                if n != TAG_CID {
                    return Err(self.err(at, DecodeErrorKind::UnsupportedTag(n)));
                }
                self.link()
            }
            _ => Err(self.err(at, DecodeErrorKind::ReservedAdditionalInfo(info))),
        }
    }

    fn map(&mut self, n: u64, depth: usize, at: usize) -> Result<Value, DecodeError> {
        self.enter(depth, at)?;
        check_container_len(n).map_err(|k| self.err(at, DecodeErrorKind::DataModel(k)))?;
        // Every entry takes at least two bytes.
        let remaining = self.remaining();
        if n > (remaining / 2) as u64 {
            return Err(self.err(
                at,
                DecodeErrorKind::LengthExceedsInput { len: n, remaining },
            ));
        }
        let mut map = BTreeMap::new();
        let mut prev: Option<&'a str> = None;
        for _ in 0..n {
            let key_at = self.pos;
            let kb = self.byte()?;
            let kmajor = kb >> 5;
            if kmajor != MAJOR_TEXT {
                return Err(self.err(key_at, DecodeErrorKind::NonStringKey(major_name(kmajor))));
            }
            let klen = self.argument(kb & 0x1f, key_at)?;
            check_key_len(klen).map_err(|k| self.err(key_at, DecodeErrorKind::DataModel(k)))?;
            let key = self.text(klen, key_at)?;
            if let Some(p) = prev {
                match (p.len(), p.as_bytes()).cmp(&(key.len(), key.as_bytes())) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        return Err(self.err(key_at, DecodeErrorKind::DuplicateKey(key.to_owned())))
                    }
                    std::cmp::Ordering::Greater => {
                        return Err(self.err(
                            key_at,
                            DecodeErrorKind::KeyOrder {
                                key: key.to_owned(),
                                previous: p.to_owned(),
                            },
                        ))
                    }
                }
            }
            if is_reserved_key(key) {
                return Err(self.err(
                    key_at,
                    DecodeErrorKind::DataModel(DataErrorKind::ReservedKey(key.to_owned())),
                ));
            }
            prev = Some(key);
            let item = self.value(depth + 1)?;
            map.insert(key.to_owned(), item);
        }
        check_map_fields(&map)
            .map_err(|e| self.err(at, DecodeErrorKind::DataModel(e.kind().clone())))?;
        Ok(Value::Map(map))
    }

    /// The content of tag 42: a byte string `0x00 || binary CID`.
    fn link(&mut self) -> Result<Value, DecodeError> {
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
        let cid = parse_binary_cid(cid_bytes).map_err(|k| self.err(at, k))?;
        Ok(Value::Link(cid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cid_for_dag_cbor, cid_for_raw};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("test hex"))
            .collect()
    }

    fn enc(v: &Value) -> String {
        to_dag_cbor(v).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn kind(h: &str) -> DecodeErrorKind {
        match from_dag_cbor(&hex(h)) {
            Ok(v) => panic!("{h} decoded to {v:?}"),
            Err(e) => e.kind,
        }
    }

    #[test]
    fn integers_use_shortest_form() {
        let cases: &[(i64, &str)] = &[
            (0, "00"),
            (23, "17"),
            (24, "1818"),
            (255, "18ff"),
            (256, "190100"),
            (65535, "19ffff"),
            (65536, "1a00010000"),
            (4294967295, "1affffffff"),
            (4294967296, "1b0000000100000000"),
            (i64::MAX, "1b7fffffffffffffff"),
            (-1, "20"),
            (-24, "37"),
            (-25, "3818"),
            (-256, "38ff"),
            (-257, "390100"),
            (i64::MIN, "3b7fffffffffffffff"),
        ];
        for (i, h) in cases {
            assert_eq!(enc(&Value::Integer(*i)), *h, "{i}");
            assert_eq!(from_dag_cbor(&hex(h)), Ok(Value::Integer(*i)), "{h}");
        }
    }

    #[test]
    fn scalars_and_containers() {
        assert_eq!(enc(&Value::Null), "f6");
        assert_eq!(enc(&Value::Bool(true)), "f5");
        assert_eq!(enc(&Value::Bool(false)), "f4");
        assert_eq!(enc(&Value::from("a")), "6161");
        assert_eq!(enc(&Value::Bytes(vec![1, 2])), "420102");
        assert_eq!(enc(&Value::Array(vec![])), "80");
        assert_eq!(enc(&Value::empty_map()), "a0");
        let long = "x".repeat(300);
        let e = to_dag_cbor(&Value::from(long.as_str()));
        assert_eq!(&e[..3], &[0x79, 0x01, 0x2c]);
        assert_eq!(e.len(), 303);
    }

    #[test]
    fn map_keys_are_length_first() {
        let v = Value::map_from_iter([
            ("b", Value::from(1)),
            ("aa", Value::from(2)),
            ("a", Value::from(3)),
            ("ab", Value::from(4)),
        ]);
        // a, b, aa, ab
        assert_eq!(enc(&v), "a461610361620162616102626162 04".replace(' ', ""));
        assert_eq!(from_dag_cbor(&to_dag_cbor(&v)), Ok(v));
    }

    #[test]
    fn links() {
        let cid = cid_for_raw(b"blob");
        let v = Value::Link(cid);
        let e = to_dag_cbor(&v);
        assert_eq!(&e[..4], &[0xd8, 0x2a, 0x58, 0x25]);
        assert_eq!(e[4], 0x00);
        assert_eq!(&e[5..], cid.to_bytes().as_slice());
        assert_eq!(from_dag_cbor(&e), Ok(v));
    }

    #[test]
    fn encoded_len_is_exact() {
        let v = Value::map_from_iter([
            ("l", Value::Link(cid_for_dag_cbor(b"x"))),
            ("s", Value::from("x".repeat(70000).as_str())),
            ("n", Value::Integer(-70000)),
            ("a", Value::Array(vec![Value::Bytes(vec![0; 300]); 30])),
        ]);
        let bytes = to_dag_cbor(&v);
        assert_eq!(bytes.len(), encoded_len(&v));
    }

    #[test]
    fn rejects_floats_and_specials() {
        assert_eq!(kind("f93c00"), DecodeErrorKind::Float);
        assert_eq!(kind("fa3f800000"), DecodeErrorKind::Float);
        assert_eq!(kind("fb3ff0000000000000"), DecodeErrorKind::Float);
        assert_eq!(kind("f7"), DecodeErrorKind::UnsupportedSimple(23));
        assert_eq!(kind("f0"), DecodeErrorKind::UnsupportedSimple(16));
        assert_eq!(kind("f820"), DecodeErrorKind::UnsupportedSimple(32));
        assert_eq!(kind("ff"), DecodeErrorKind::UnexpectedBreak);
        assert_eq!(kind("fc"), DecodeErrorKind::ReservedAdditionalInfo(28));
        assert_eq!(kind("1c"), DecodeErrorKind::ReservedAdditionalInfo(28));
    }

    #[test]
    fn rejects_indefinite_and_non_minimal() {
        for h in ["5f4100ff", "7f6161ff", "9f01ff", "bf616101ff"] {
            assert_eq!(kind(h), DecodeErrorKind::IndefiniteLength, "{h}");
        }
        assert_eq!(kind("1817"), DecodeErrorKind::NonMinimal(23));
        assert_eq!(kind("1900ff"), DecodeErrorKind::NonMinimal(255));
        assert_eq!(kind("1a0000ffff"), DecodeErrorKind::NonMinimal(65535));
        assert_eq!(
            kind("1b00000000ffffffff"),
            DecodeErrorKind::NonMinimal(0xffff_ffff)
        );
        assert_eq!(kind("3817"), DecodeErrorKind::NonMinimal(23));
        assert_eq!(kind("780161"), DecodeErrorKind::NonMinimal(1));
        assert_eq!(kind("9800"), DecodeErrorKind::NonMinimal(0));
        assert_eq!(kind("b800"), DecodeErrorKind::NonMinimal(0));
        // A non-minimal length on a map key.
        assert_eq!(kind("a178016101"), DecodeErrorKind::NonMinimal(1));
    }

    #[test]
    fn rejects_out_of_range_integers() {
        assert_eq!(
            kind("1b8000000000000000"),
            DecodeErrorKind::IntegerOutOfRange
        );
        assert_eq!(
            kind("1bffffffffffffffff"),
            DecodeErrorKind::IntegerOutOfRange
        );
        assert_eq!(
            kind("3b8000000000000000"),
            DecodeErrorKind::IntegerOutOfRange
        );
    }

    #[test]
    fn rejects_bad_maps() {
        assert_eq!(kind("a10101"), DecodeErrorKind::NonStringKey("integer"));
        assert_eq!(
            kind("a1410101"),
            DecodeErrorKind::NonStringKey("byte string")
        );
        assert_eq!(
            kind("a2616101616102"),
            DecodeErrorKind::DuplicateKey("a".into())
        );
        assert_eq!(
            kind("a2616201616101"),
            DecodeErrorKind::KeyOrder {
                key: "a".into(),
                previous: "b".into()
            }
        );
        // "aa" before "b": bytewise order, but not length-first.
        assert_eq!(
            kind("a2626161016162 01".replace(' ', "").as_str()),
            DecodeErrorKind::KeyOrder {
                key: "b".into(),
                previous: "aa".into()
            }
        );
        assert_eq!(
            kind("a1652474797065f6"),
            DecodeErrorKind::DataModel(DataErrorKind::TypeNotString("null"))
        );
        assert_eq!(
            kind("a165247479706560"),
            DecodeErrorKind::DataModel(DataErrorKind::TypeEmpty)
        );
        assert_eq!(
            kind("a165246c696e6b6161"),
            DecodeErrorKind::DataModel(DataErrorKind::ReservedKey("$link".into()))
        );
    }

    #[test]
    fn rejects_bad_tags_and_links() {
        assert_eq!(kind("c000"), DecodeErrorKind::UnsupportedTag(0));
        assert_eq!(kind("d82b00"), DecodeErrorKind::UnsupportedTag(43));
        assert_eq!(kind("d9002a4100"), DecodeErrorKind::NonMinimal(42));
        assert_eq!(
            kind("d82a6161"),
            DecodeErrorKind::LinkNotBytes("text string")
        );
        assert_eq!(kind("d82a40"), DecodeErrorKind::LinkMissingPrefix);
        let cid = cid_for_raw(b"x").to_bytes();
        let mut bad_prefix = vec![0xd8, 0x2a, 0x58, (cid.len() + 1) as u8, 0x01];
        bad_prefix.extend_from_slice(&cid);
        assert_eq!(
            from_dag_cbor(&bad_prefix).map_err(|e| e.kind),
            Err(DecodeErrorKind::LinkMissingPrefix)
        );
        let mut trailing = vec![0xd8, 0x2a, 0x58, (cid.len() + 2) as u8, 0x00];
        trailing.extend_from_slice(&cid);
        trailing.push(0);
        assert_eq!(
            from_dag_cbor(&trailing).map_err(|e| e.kind),
            Err(DecodeErrorKind::NonCanonicalCid)
        );
        // CIDv0 (bare sha2-256 multihash).
        let mut v0 = vec![0xd8, 0x2a, 0x58, 35, 0x00, 0x12, 0x20];
        v0.extend_from_slice(&[7; 32]);
        assert_eq!(
            from_dag_cbor(&v0).map_err(|e| e.kind),
            Err(DecodeErrorKind::DataModel(DataErrorKind::CidV0))
        );
        // Truncated CID.
        let mut short = vec![0xd8, 0x2a, 0x4a, 0x00];
        short.extend_from_slice(&cid[..9]);
        let e = from_dag_cbor(&short).map_err(|e| e.kind);
        assert!(matches!(e, Err(DecodeErrorKind::InvalidCid(_))), "{e:?}");
    }

    #[test]
    fn binary_cid_rules() {
        let good = cid_for_dag_cbor(b"x").to_bytes();
        assert_eq!(parse_binary_cid(&good), Ok(cid_for_dag_cbor(b"x")));
        // codec 0x71 written in two bytes (0xf1 0x00): not shortest form.
        let mut long_codec = vec![0x01, 0xf1, 0x00];
        long_codec.extend_from_slice(&good[2..]);
        assert_eq!(
            parse_binary_cid(&long_codec),
            Err(DecodeErrorKind::NonCanonicalCid)
        );
        let mut v2 = good.clone();
        v2[0] = 0x02;
        assert!(matches!(
            parse_binary_cid(&v2),
            Err(DecodeErrorKind::InvalidCid(_))
        ));
        // Digest longer than 64 bytes.
        let mut big = vec![0x01, 0x55, 0x12, 0x41];
        big.extend_from_slice(&[0; 65]);
        assert!(matches!(
            parse_binary_cid(&big),
            Err(DecodeErrorKind::InvalidCid(_))
        ));
        // Ten-byte varint.
        let huge = [
            0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(matches!(
            parse_binary_cid(&huge),
            Err(DecodeErrorKind::InvalidCid(_))
        ));
        // An empty identity digest is a well-formed CID.
        let identity = [0x01, 0x55, 0x00, 0x00];
        let c = parse_binary_cid(&identity).expect("identity CID");
        assert_eq!(c.to_bytes(), identity);
    }

    #[test]
    fn map_order_fast_path_and_sorted_path_agree() {
        let same_len =
            Value::map_from_iter([("b", Value::Null), ("a", Value::Null), ("c", Value::Null)]);
        assert_eq!(enc(&same_len), "a3616 1f66162f66163f6".replace(' ', ""));
        let commit_like = Value::map_from_iter([
            ("did", Value::Null),
            ("rev", Value::Null),
            ("sig", Value::Null),
            ("data", Value::Null),
            ("prev", Value::Null),
            ("version", Value::Null),
        ]);
        let bytes = to_dag_cbor(&commit_like);
        assert_eq!(from_dag_cbor(&bytes), Ok(commit_like));
        // did, rev, sig, data, prev, version
        assert_eq!(&bytes[1..5], b"\x63did");
        assert_eq!(&bytes[bytes.len() - 9..bytes.len() - 1], b"\x67version");
    }

    #[test]
    fn rejects_truncation_trailing_and_bad_utf8() {
        assert_eq!(kind(""), DecodeErrorKind::UnexpectedEof);
        assert_eq!(kind("0000"), DecodeErrorKind::TrailingBytes(1));
        assert_eq!(kind("62c328"), DecodeErrorKind::InvalidUtf8);
        assert_eq!(kind("19"), DecodeErrorKind::UnexpectedEof);
        assert_eq!(kind("811a00"), DecodeErrorKind::UnexpectedEof);
        assert_eq!(
            kind("8201"),
            DecodeErrorKind::LengthExceedsInput {
                len: 2,
                remaining: 1
            }
        );
        // Huge declared lengths are refused before allocating.
        assert_eq!(
            kind("5b00000001000000000102"),
            DecodeErrorKind::LengthExceedsInput {
                len: 1 << 32,
                remaining: 2
            }
        );
        assert_eq!(
            kind("9a0001000001"),
            DecodeErrorKind::LengthExceedsInput {
                len: 65536,
                remaining: 1
            }
        );
        assert_eq!(
            kind("9b0000000100000000"),
            DecodeErrorKind::DataModel(DataErrorKind::ContainerTooLong {
                len: 1 << 32,
                max: crate::MAX_CONTAINER_LEN
            })
        );
    }

    #[test]
    fn depth_is_bounded() {
        let nest = |n: usize| {
            let mut b = vec![0x81; n - 1];
            b.push(0x80);
            b
        };
        assert!(from_dag_cbor(&nest(MAX_NESTED_LEVELS)).is_ok());
        assert_eq!(
            from_dag_cbor(&nest(MAX_NESTED_LEVELS + 1)).map_err(|e| e.kind),
            Err(DecodeErrorKind::DataModel(DataErrorKind::TooDeep(
                MAX_NESTED_LEVELS
            )))
        );
        // Far deeper input fails fast, without recursion trouble.
        assert!(from_dag_cbor(&nest(1_000_000)).is_err());
        assert!(from_dag_cbor_with_max_depth(&nest(100), 100).is_ok());
    }

    #[test]
    fn decode_prefix_reports_length() {
        let mut b = to_dag_cbor(&Value::map_from_iter([("op", Value::from(1))]));
        let first = b.len();
        b.extend(to_dag_cbor(&Value::from("body")));
        let (v, used) = decode_prefix(&b).expect("prefix");
        assert_eq!(used, first);
        assert_eq!(v.get_i64("op"), Some(1));
        assert_eq!(from_dag_cbor(&b[used..]), Ok(Value::from("body")));
    }

    #[test]
    fn error_offsets() {
        let e = from_dag_cbor(&hex("82 01 f93c00".replace(' ', "").as_str()));
        assert_eq!(e.map_err(|e| e.offset), Err(2));
    }
}
