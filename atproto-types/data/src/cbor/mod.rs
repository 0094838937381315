//! DAG-CBOR: canonical encoding and strict decoding, in two layers.
//!
//! - Values: [`to_dag_cbor`] / [`write_dag_cbor`] encode a [`Value`];
//!   [`from_dag_cbor`] and [`decode_prefix`] decode one, also checking the
//!   data-model rules (`$type`, blobs, reserved keys, nesting, container
//!   and key sizes).
//! - Fixed shapes: [`Encoder`] and [`Decoder`] write and read DAG-CBOR item
//!   by item without building a [`Value`] (MST nodes, commits, CAR headers,
//!   event-stream frames). The value codec is built on them, so heads,
//!   shortest-form checks, tag 42 links, UTF-8 checks and allocation bounds
//!   have one implementation.
//!
//! Encoding rules (DAG-CBOR): shortest-form arguments, definite lengths,
//! map keys sorted by length then bytewise, links as tag 42 over a byte
//! string holding `0x00` followed by the binary CID. No floats.
//!
//! The decoders accept exactly that form and nothing else, never allocate
//! more than the remaining input could hold, and bound nesting depth.

use std::collections::BTreeMap;

use crate::error::{DataErrorKind, DecodeError, DecodeErrorKind};
use crate::model::{check_container_len, check_map_fields, is_reserved_key, MAX_NESTED_LEVELS};
use crate::value::Value;

mod decoder;
mod encoder;

pub use decoder::Decoder;
pub use encoder::{head_len, link_len, Encoder};

#[cfg(test)]
use decoder::parse_binary_cid;
use decoder::{enter, int_from_head};

/// Major type 0: unsigned integer.
pub const MAJOR_UNSIGNED: u8 = 0;
/// Major type 1: negative integer (`-1 - argument`).
pub const MAJOR_NEGATIVE: u8 = 1;
/// Major type 2: byte string.
pub const MAJOR_BYTES: u8 = 2;
/// Major type 3: text string.
pub const MAJOR_TEXT: u8 = 3;
/// Major type 4: array.
pub const MAJOR_ARRAY: u8 = 4;
/// Major type 5: map.
pub const MAJOR_MAP: u8 = 5;
/// Major type 6: tag.
pub const MAJOR_TAG: u8 = 6;
/// Major type 7: simple values and floats.
pub const MAJOR_SIMPLE: u8 = 7;

/// The tag of a CID link.
pub const TAG_CID: u64 = 42;

const SIMPLE_FALSE: u8 = 0xf4;
const SIMPLE_TRUE: u8 = 0xf5;
const SIMPLE_NULL: u8 = 0xf6;

// ---------------------------------------------------------------- encoding

/// Encode a value as canonical DAG-CBOR.
pub fn to_dag_cbor(v: &Value) -> Vec<u8> {
    let mut e = Encoder::with_capacity(encoded_len(v));
    e.value(v);
    e.into_bytes()
}

/// Append the canonical DAG-CBOR encoding of a value to `out`.
pub fn write_dag_cbor(v: &Value, out: &mut Vec<u8>) {
    let mut e = Encoder::from_vec(std::mem::take(out));
    e.value(v);
    *out = e.into_bytes();
}

impl Encoder {
    /// A [`Value`], canonically (map keys in DAG-CBOR order).
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.null(),
            Value::Bool(b) => self.bool(*b),
            Value::Integer(i) => self.int(*i),
            Value::String(s) => self.text(s),
            Value::Bytes(b) => self.bytes(b),
            Value::Link(c) => self.link(c),
            Value::Array(a) => {
                self.array(a.len());
                for item in a {
                    self.value(item);
                }
            }
            Value::Map(m) => {
                self.map(m.len());
                // A BTreeMap iterates bytewise. When key lengths never
                // decrease in that order it already is canonical (length
                // first, then bytewise); otherwise a stable sort by length
                // makes it so.
                let in_order = m
                    .keys()
                    .zip(m.keys().skip(1))
                    .all(|(a, b)| a.len() <= b.len());
                if in_order {
                    for (k, item) in m {
                        self.text(k);
                        self.value(item);
                    }
                } else {
                    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                    entries.sort_by_key(|(k, _)| k.len());
                    for (k, item) in entries {
                        self.text(k);
                        self.value(item);
                    }
                }
            }
        }
    }
}

/// Exact size of the canonical encoding.
fn encoded_len(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Integer(i) => head_len(if *i >= 0 { *i as u64 } else { !*i as u64 }),
        Value::String(s) => head_len(s.len() as u64) + s.len(),
        Value::Bytes(b) => head_len(b.len() as u64) + b.len(),
        Value::Link(c) => link_len(c),
        Value::Array(a) => head_len(a.len() as u64) + a.iter().map(encoded_len).sum::<usize>(),
        Value::Map(m) => {
            head_len(m.len() as u64)
                + m.iter()
                    .map(|(k, item)| head_len(k.len() as u64) + k.len() + encoded_len(item))
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
    let mut d = ValueDecoder {
        d: Decoder::new(bytes),
        max_depth,
    };
    let v = d.value(0)?;
    d.d.finish()?;
    Ok(v)
}

/// Decode one strict DAG-CBOR item from the start of `bytes`, returning it
/// and the number of bytes it used (for concatenated items, such as an
/// event-stream frame's header and body).
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut d = ValueDecoder {
        d: Decoder::new(bytes),
        max_depth: MAX_NESTED_LEVELS,
    };
    let v = d.value(0)?;
    Ok((v, d.d.position()))
}

/// Builds a [`Value`] from a [`Decoder`], adding the data-model rules.
struct ValueDecoder<'a> {
    d: Decoder<'a>,
    max_depth: usize,
}

impl<'a> ValueDecoder<'a> {
    fn data_err(at: usize, kind: DataErrorKind) -> DecodeError {
        DecodeError::new(at, DecodeErrorKind::DataModel(kind))
    }

    /// One item; `depth` counts the containers around it.
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let at = self.d.position();
        let (major, n) = self.d.head()?;
        match major {
            MAJOR_UNSIGNED | MAJOR_NEGATIVE => int_from_head(major, n, at).map(Value::Integer),
            MAJOR_BYTES => Ok(Value::Bytes(self.d.take(n, at)?.to_vec())),
            MAJOR_TEXT => Ok(Value::String(self.d.str_content(n, at)?.to_owned())),
            MAJOR_ARRAY => {
                enter(depth, self.max_depth, at)?;
                check_container_len(n).map_err(|k| Self::data_err(at, k))?;
                // Every item takes at least one byte.
                self.d.check_fits(n, 1, at)?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::Array(items))
            }
            MAJOR_MAP => self.map(n, depth, at),
            MAJOR_TAG => {
                if n != TAG_CID {
                    return Err(DecodeError::new(at, DecodeErrorKind::UnsupportedTag(n)));
                }
                self.d.link_content().map(Value::Link)
            }
            // `head` only returns false (20), true (21) and null (22) of
            // major 7.
            _ => match n {
                20 => Ok(Value::Bool(false)),
                21 => Ok(Value::Bool(true)),
                _ => Ok(Value::Null),
            },
        }
    }

    fn map(&mut self, n: u64, depth: usize, at: usize) -> Result<Value, DecodeError> {
        enter(depth, self.max_depth, at)?;
        check_container_len(n).map_err(|k| Self::data_err(at, k))?;
        // Every entry takes at least two bytes.
        self.d.check_fits(n, 2, at)?;
        let mut map = BTreeMap::new();
        let mut prev: Option<&'a str> = None;
        for _ in 0..n {
            let key_at = self.d.position();
            let key = self.d.key()?;
            if let Some(p) = prev {
                match (p.len(), p.as_bytes()).cmp(&(key.len(), key.as_bytes())) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => {
                        return Err(DecodeError::new(
                            key_at,
                            DecodeErrorKind::DuplicateKey(key.to_owned()),
                        ))
                    }
                    std::cmp::Ordering::Greater => {
                        return Err(DecodeError::new(
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
                return Err(Self::data_err(
                    key_at,
                    DataErrorKind::ReservedKey(key.to_owned()),
                ));
            }
            prev = Some(key);
            let item = self.value(depth + 1)?;
            map.insert(key.to_owned(), item);
        }
        check_map_fields(&map).map_err(|e| Self::data_err(at, e.kind().clone()))?;
        Ok(Value::Map(map))
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
