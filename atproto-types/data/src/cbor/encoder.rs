//! The canonical DAG-CBOR writer.

use cid::{Cid, Version};

use super::{
    MAJOR_ARRAY, MAJOR_BYTES, MAJOR_MAP, MAJOR_NEGATIVE, MAJOR_TAG, MAJOR_TEXT, MAJOR_UNSIGNED,
    SIMPLE_FALSE, SIMPLE_NULL, SIMPLE_TRUE, TAG_CID,
};

/// Canonical DAG-CBOR writer appending to a byte vector.
///
/// Every method writes one complete item, or the head of a container whose
/// items the caller writes next. Heads are always in shortest form and
/// lengths definite. Map entries are written in the order the caller gives
/// them: for canonical output, write keys in DAG-CBOR order (shorter keys
/// first, then bytewise), as [`Encoder::value`] does for maps.
///
/// ```
/// use atproto_data::cbor::Encoder;
///
/// let mut e = Encoder::new();
/// e.map(2);
/// e.text("a");
/// e.uint(1);
/// e.text("bb");
/// e.null();
/// assert_eq!(e.into_bytes(), [0xa2, 0x61, b'a', 0x01, 0x62, b'b', b'b', 0xf6]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }

    /// A writer appending to `buf`.
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Encoder { buf }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// A head: major type and argument, in shortest form.
    #[inline]
    pub fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        if arg < 24 {
            self.buf.push(m | arg as u8);
        } else if arg <= u64::from(u8::MAX) {
            self.buf.extend_from_slice(&[m | 24, arg as u8]);
        } else if arg <= u64::from(u16::MAX) {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(arg as u16).to_be_bytes());
        } else if arg <= u64::from(u32::MAX) {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(arg as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&arg.to_be_bytes());
        }
    }

    /// An unsigned integer (major type 0).
    #[inline]
    pub fn uint(&mut self, v: u64) {
        self.head(MAJOR_UNSIGNED, v);
    }

    /// A signed integer (major type 0 or 1).
    #[inline]
    pub fn int(&mut self, v: i64) {
        if v >= 0 {
            self.head(MAJOR_UNSIGNED, v as u64);
        } else {
            // -1 - v, which is !v in two's complement; never overflows.
            self.head(MAJOR_NEGATIVE, !v as u64);
        }
    }

    /// A text string.
    #[inline]
    pub fn text(&mut self, s: &str) {
        self.head(MAJOR_TEXT, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// A byte string.
    #[inline]
    pub fn bytes(&mut self, b: &[u8]) {
        self.head(MAJOR_BYTES, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// `null`.
    #[inline]
    pub fn null(&mut self) {
        self.buf.push(SIMPLE_NULL);
    }

    /// `true` or `false`.
    #[inline]
    pub fn bool(&mut self, b: bool) {
        self.buf.push(if b { SIMPLE_TRUE } else { SIMPLE_FALSE });
    }

    /// A CID link: tag 42 over a byte string holding `0x00` and the binary
    /// CID.
    #[inline]
    pub fn link(&mut self, cid: &Cid) {
        self.head(MAJOR_TAG, TAG_CID);
        self.head(MAJOR_BYTES, 1 + cid_len(cid) as u64);
        self.buf.push(0x00);
        write_cid(&mut self.buf, cid);
    }

    /// A CID link, or `null` for `None`.
    #[inline]
    pub fn opt_link(&mut self, cid: Option<&Cid>) {
        match cid {
            Some(c) => self.link(c),
            None => self.null(),
        }
    }

    /// The head of a map of `n` entries; write `n` key-value pairs next.
    #[inline]
    pub fn map(&mut self, n: usize) {
        self.head(MAJOR_MAP, n as u64);
    }

    /// The head of an array of `n` items; write `n` items next.
    #[inline]
    pub fn array(&mut self, n: usize) {
        self.head(MAJOR_ARRAY, n as u64);
    }
}

/// The size of a head with argument `arg`.
#[inline]
pub fn head_len(arg: u64) -> usize {
    if arg < 24 {
        1
    } else if arg <= u64::from(u8::MAX) {
        2
    } else if arg <= u64::from(u16::MAX) {
        3
    } else if arg <= u64::from(u32::MAX) {
        5
    } else {
        9
    }
}

/// The size of the link item [`Encoder::link`] writes for `cid`.
#[inline]
pub fn link_len(cid: &Cid) -> usize {
    let n = 1 + cid_len(cid);
    // Tag 42 takes two bytes.
    2 + head_len(n as u64) + n
}

#[inline]
fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

#[inline]
fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Length of the binary CID (same bytes as `Cid::to_bytes`).
#[inline]
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
#[inline]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cid_for_dag_cbor, cid_for_raw};

    #[test]
    fn heads_and_scalars() {
        let mut e = Encoder::new();
        e.int(-1);
        e.int(i64::MIN);
        e.uint(u64::MAX);
        e.bool(true);
        e.bool(false);
        e.null();
        assert_eq!(
            e.as_bytes(),
            [
                &[0x20, 0x3b][..],
                &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                &[0x1b],
                &[0xff; 8],
                &[0xf5, 0xf4, 0xf6],
            ]
            .concat()
        );
        for n in [0u64, 23, 24, 255, 256, 65535, 65536, 1 << 32, u64::MAX] {
            let mut e = Encoder::new();
            e.head(MAJOR_ARRAY, n);
            assert_eq!(e.as_bytes().len(), head_len(n), "{n}");
        }
    }

    #[test]
    fn links_match_cid_bytes() {
        for cid in [cid_for_raw(b"x"), cid_for_dag_cbor(b"y")] {
            let mut e = Encoder::from_vec(vec![0x81]);
            e.link(&cid);
            let b = e.into_bytes();
            assert_eq!(&b[..5], &[0x81, 0xd8, 0x2a, 0x58, 0x25]);
            assert_eq!(b[5], 0x00);
            assert_eq!(&b[6..], cid.to_bytes().as_slice());
            assert_eq!(b.len() - 1, link_len(&cid));
        }
        let mut e = Encoder::new();
        e.opt_link(None);
        assert_eq!(e.into_bytes(), [0xf6]);
    }
}
