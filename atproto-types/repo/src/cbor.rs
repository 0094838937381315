//! A small, strict DAG-CBOR reader and writer for the fixed shapes this crate
//! encodes on its hot paths (MST nodes, commits, CAR headers).
//!
//! Encoding is canonical: shortest-form heads, map keys in DAG-CBOR order
//! (shorter keys first, then bytewise). Decoding rejects non-minimal heads,
//! indefinite lengths, and reads every length against the remaining input
//! before allocating, so untrusted bytes can never cause a large allocation.

use cid::Cid;

/// CBOR major types.
pub(crate) const MAJOR_UINT: u8 = 0;
pub(crate) const MAJOR_NINT: u8 = 1;
pub(crate) const MAJOR_BYTES: u8 = 2;
pub(crate) const MAJOR_TEXT: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;
pub(crate) const MAJOR_MAP: u8 = 5;
pub(crate) const MAJOR_TAG: u8 = 6;
pub(crate) const MAJOR_SIMPLE: u8 = 7;

/// The tag DAG-CBOR uses for CID links.
const TAG_CID: u64 = 42;
const NULL: u8 = 0xf6;

/// Why a DAG-CBOR object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// The input ended inside an item.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// Bytes remained after the top-level item.
    #[error("trailing bytes after the object")]
    TrailingBytes,
    /// A head used more bytes than needed, or an indefinite length.
    #[error("non-canonical or indefinite-length CBOR head")]
    NonCanonical,
    /// An item of another type than the schema requires.
    #[error("expected {expected}")]
    Unexpected {
        /// What the schema wanted at this point.
        expected: &'static str,
    },
    /// A text string that is not UTF-8.
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    /// A tag-42 link whose bytes are not a CID.
    #[error("invalid CID link: {0}")]
    InvalidCid(String),
    /// A map key missing, repeated, out of order, or unknown.
    #[error("map field {0}")]
    Field(String),
}

/// Canonical DAG-CBOR writer into a byte vector.
#[derive(Default)]
pub(crate) struct Encoder {
    pub(crate) buf: Vec<u8>,
}

impl Encoder {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Encoder {
            buf: Vec::with_capacity(n),
        }
    }

    pub(crate) fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        if arg < 24 {
            self.buf.push(m | arg as u8);
        } else if arg <= u64::from(u8::MAX) {
            self.buf.push(m | 24);
            self.buf.push(arg as u8);
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

    pub(crate) fn uint(&mut self, v: u64) {
        self.head(MAJOR_UINT, v);
    }

    pub(crate) fn text(&mut self, s: &str) {
        self.head(MAJOR_TEXT, s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.head(MAJOR_BYTES, b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn null(&mut self) {
        self.buf.push(NULL);
    }

    pub(crate) fn link(&mut self, cid: &Cid) {
        self.head(MAJOR_TAG, TAG_CID);
        let len = cid.encoded_len();
        self.head(MAJOR_BYTES, len as u64 + 1);
        self.buf.push(0);
        // Writing into a Vec cannot fail.
        let _ = cid.write_bytes(&mut self.buf);
    }

    pub(crate) fn opt_link(&mut self, cid: Option<&Cid>) {
        match cid {
            Some(c) => self.link(c),
            None => self.null(),
        }
    }

    pub(crate) fn map(&mut self, n: usize) {
        self.head(MAJOR_MAP, n as u64);
    }

    pub(crate) fn array(&mut self, n: usize) {
        self.head(MAJOR_ARRAY, n as u64);
    }
}

/// Strict DAG-CBOR reader over a byte slice.
pub(crate) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    pub(crate) fn finish(&self) -> Result<(), CborError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(CborError::TrailingBytes)
        }
    }

    fn byte(&mut self) -> Result<u8, CborError> {
        let b = *self.buf.get(self.pos).ok_or(CborError::UnexpectedEnd)?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Result<u8, CborError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or(CborError::UnexpectedEnd)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], CborError> {
        let remaining = self.buf.len() - self.pos;
        let n = usize::try_from(n).map_err(|_| CborError::UnexpectedEnd)?;
        if n > remaining {
            return Err(CborError::UnexpectedEnd);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Read a head: (major type, argument). Rejects non-minimal encodings and
    /// indefinite lengths. For major 7 the argument is the raw simple value.
    pub(crate) fn head(&mut self) -> Result<(u8, u64), CborError> {
        let ib = self.byte()?;
        let major = ib >> 5;
        let info = ib & 0x1f;
        let arg = match info {
            0..=23 => u64::from(info),
            24 => {
                let v = u64::from(self.byte()?);
                if v < 24 && major != MAJOR_SIMPLE {
                    return Err(CborError::NonCanonical);
                }
                v
            }
            25 => {
                let b = self.take(2)?;
                let v = u64::from(u16::from_be_bytes([b[0], b[1]]));
                if v <= u64::from(u8::MAX) {
                    return Err(CborError::NonCanonical);
                }
                v
            }
            26 => {
                let b = self.take(4)?;
                let v = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                if v <= u64::from(u16::MAX) {
                    return Err(CborError::NonCanonical);
                }
                v
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                let v = u64::from_be_bytes(a);
                if v <= u64::from(u32::MAX) {
                    return Err(CborError::NonCanonical);
                }
                v
            }
            _ => return Err(CborError::NonCanonical),
        };
        Ok((major, arg))
    }

    fn expect_head(&mut self, major: u8, what: &'static str) -> Result<u64, CborError> {
        let (m, arg) = self.head()?;
        if m != major {
            return Err(CborError::Unexpected { expected: what });
        }
        Ok(arg)
    }

    pub(crate) fn map_len(&mut self) -> Result<u64, CborError> {
        self.expect_head(MAJOR_MAP, "a map")
    }

    pub(crate) fn array_len(&mut self) -> Result<u64, CborError> {
        let n = self.expect_head(MAJOR_ARRAY, "an array")?;
        // Every element takes at least one byte.
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(CborError::UnexpectedEnd);
        }
        Ok(n)
    }

    pub(crate) fn uint(&mut self) -> Result<u64, CborError> {
        self.expect_head(MAJOR_UINT, "an unsigned integer")
    }

    /// A signed integer (major 0 or 1) within i64.
    pub(crate) fn int(&mut self) -> Result<i64, CborError> {
        let (m, arg) = self.head()?;
        match m {
            MAJOR_UINT => i64::try_from(arg).map_err(|_| CborError::Unexpected {
                expected: "an integer within 64-bit range",
            }),
            MAJOR_NINT => {
                let v = i64::try_from(arg).map_err(|_| CborError::Unexpected {
                    expected: "an integer within 64-bit range",
                })?;
                Ok(-1 - v)
            }
            _ => Err(CborError::Unexpected {
                expected: "an integer",
            }),
        }
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], CborError> {
        let n = self.expect_head(MAJOR_BYTES, "a byte string")?;
        self.take(n)
    }

    pub(crate) fn text(&mut self) -> Result<&'a str, CborError> {
        let n = self.expect_head(MAJOR_TEXT, "a text string")?;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|_| CborError::InvalidUtf8)
    }

    /// Whether the next item is `null`; consumes it if so.
    pub(crate) fn null(&mut self) -> Result<bool, CborError> {
        if self.peek()? == NULL {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    pub(crate) fn link(&mut self) -> Result<Cid, CborError> {
        let tag = self.expect_head(MAJOR_TAG, "a CID link (tag 42)")?;
        if tag != TAG_CID {
            return Err(CborError::Unexpected {
                expected: "a CID link (tag 42)",
            });
        }
        let b = self.bytes()?;
        match b.split_first() {
            Some((0, rest)) => {
                let cid = Cid::try_from(rest).map_err(|e| CborError::InvalidCid(e.to_string()))?;
                // Reject trailing garbage after the CID inside the link bytes.
                if cid.encoded_len() != rest.len() {
                    return Err(CborError::InvalidCid("trailing bytes after CID".into()));
                }
                Ok(cid)
            }
            _ => Err(CborError::InvalidCid(
                "link bytes must start with the 0x00 multibase prefix".into(),
            )),
        }
    }

    pub(crate) fn opt_link(&mut self) -> Result<Option<Cid>, CborError> {
        if self.null()? {
            Ok(None)
        } else {
            self.link().map(Some)
        }
    }

    /// Skip one complete item of any type (bounded depth).
    pub(crate) fn skip(&mut self, depth: u32) -> Result<(), CborError> {
        if depth > 64 {
            return Err(CborError::Unexpected {
                expected: "nesting at most 64 deep",
            });
        }
        let (m, arg) = self.head()?;
        match m {
            MAJOR_UINT | MAJOR_NINT => Ok(()),
            MAJOR_BYTES | MAJOR_TEXT => self.take(arg).map(|_| ()),
            MAJOR_ARRAY => {
                for _ in 0..arg {
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            MAJOR_MAP => {
                for _ in 0..arg {
                    self.skip(depth + 1)?;
                    self.skip(depth + 1)?;
                }
                Ok(())
            }
            MAJOR_TAG => self.skip(depth + 1),
            _ => match arg {
                20..=22 => Ok(()),
                // Floats are not allowed by atproto; other simple values neither.
                _ => Err(CborError::Unexpected {
                    expected: "no floats or undefined",
                }),
            },
        }
    }
}

/// Read a map whose keys must be exactly `keys` (given in DAG-CBOR canonical
/// order), calling `f(index, decoder)` for each value. Keys in `optional`
/// positions may be absent.
pub(crate) fn read_struct<'a>(
    d: &mut Decoder<'a>,
    keys: &[&str],
    required: &[bool],
    mut f: impl FnMut(usize, &mut Decoder<'a>) -> Result<(), CborError>,
) -> Result<(), CborError> {
    let n = d.map_len()?;
    let mut next = 0usize;
    for _ in 0..n {
        let k = d.text()?;
        let idx = keys[next..]
            .iter()
            .position(|x| *x == k)
            .map(|i| i + next)
            .ok_or_else(|| {
                CborError::Field(format!("{k:?} is unknown, repeated or out of order"))
            })?;
        for (skipped, req) in required.iter().enumerate().take(idx).skip(next) {
            if *req {
                return Err(CborError::Field(format!("{:?} is missing", keys[skipped])));
            }
        }
        f(idx, d)?;
        next = idx + 1;
    }
    for (skipped, req) in required.iter().enumerate().skip(next) {
        if *req {
            return Err(CborError::Field(format!("{:?} is missing", keys[skipped])));
        }
    }
    Ok(())
}
