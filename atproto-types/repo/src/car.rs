//! CAR v1 (Content Addressable aRchive) reading and writing.
//!
//! A CAR v1 stream is a header followed by blocks. The header is an unsigned
//! varint length, then that many bytes of DAG-CBOR `{roots: [CID...],
//! version: 1}`. Each block is an unsigned varint length, then that many
//! bytes holding a CID followed by the block's data.
//!
//! The reader is bounded: lengths read from the stream are checked against
//! [`CarLimits`] before any buffer is sized from them, and every block's bytes
//! are hashed and compared with its CID (sha2-256 only). Duplicate and
//! unordered blocks are accepted.

use std::io::{self, Read, Write};

use atproto_data::cbor::{Decoder, Encoder};
use atproto_data::{DecodeError, MAX_NESTED_LEVELS, SHA2_256_CODE};
use bytes::Bytes;
use cid::Cid;
use sha2::{Digest, Sha256};

use crate::blockstore::BlockMap;

/// Limits the reader enforces on untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarLimits {
    /// Largest block section (CID + data) accepted, in bytes.
    pub max_block_size: usize,
    /// Largest header accepted, in bytes.
    pub max_header_size: usize,
    /// Most roots accepted in the header.
    pub max_roots: usize,
}

impl Default for CarLimits {
    /// 2 MiB blocks (records are capped well below that; blobs never live in
    /// repository CARs), 64 KiB headers, 1024 roots.
    fn default() -> Self {
        CarLimits {
            max_block_size: 2 * 1024 * 1024,
            max_header_size: 64 * 1024,
            max_roots: 1024,
        }
    }
}

/// Why a CAR could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// An I/O error from the underlying reader or writer.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The input ended inside the header or a block.
    #[error("truncated CAR: {0}")]
    Truncated(&'static str),
    /// A varint longer than 9 bytes or not minimally encoded.
    #[error("invalid varint in {0}")]
    InvalidVarint(&'static str),
    /// The header is larger than the configured limit.
    #[error("CAR header of {size} bytes exceeds the limit of {limit}")]
    HeaderTooLarge {
        /// Declared size.
        size: u64,
        /// Configured limit.
        limit: usize,
    },
    /// A block section larger than the configured limit.
    #[error("CAR block of {size} bytes exceeds the limit of {limit}")]
    BlockTooLarge {
        /// Declared size.
        size: u64,
        /// Configured limit.
        limit: usize,
    },
    /// The header is not a valid CAR v1 header.
    #[error("invalid CAR header: {0}")]
    InvalidHeader(String),
    /// The header names a version other than 1.
    #[error("unsupported CAR version {0} (only version 1 is supported)")]
    UnsupportedVersion(i64),
    /// A block section does not start with a valid CID.
    #[error("invalid CID in CAR block: {0}")]
    InvalidCid(String),
    /// A block's CID uses a hash function this reader cannot check.
    #[error("block {cid} uses unsupported multihash code {code:#x} (only sha2-256 is supported)")]
    UnsupportedHash {
        /// The block's CID.
        cid: Cid,
        /// Its multihash code.
        code: u64,
    },
    /// A block's bytes do not hash to its CID.
    #[error("block bytes do not match CID {0}")]
    HashMismatch(Cid),
    /// A zero-length block section.
    #[error("empty block section")]
    EmptySection,
}

const MAX_VARINT_BYTES: usize = 9;

/// Encode an unsigned LEB128 varint.
fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads one varint from a byte source. `Ok(None)` on clean end of input
/// before the first byte.
fn read_varint<R: Read>(r: &mut R, what: &'static str) -> Result<Option<u64>, CarError> {
    let mut value: u64 = 0;
    for i in 0..MAX_VARINT_BYTES {
        let mut b = [0u8; 1];
        let n = loop {
            match r.read(&mut b) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CarError::Io(e)),
            }
        };
        if n == 0 {
            if i == 0 {
                return Ok(None);
            }
            return Err(CarError::Truncated(what));
        }
        let byte = b[0];
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            // Minimal encoding: no trailing zero byte (except a lone zero).
            if byte == 0 && i > 0 {
                return Err(CarError::InvalidVarint(what));
            }
            return Ok(Some(value));
        }
    }
    Err(CarError::InvalidVarint(what))
}

/// Read exactly `len` bytes without trusting `len` for an up-front
/// allocation beyond what the stream actually delivers.
fn read_exact_bounded<R: Read>(
    r: &mut R,
    len: usize,
    what: &'static str,
) -> Result<Vec<u8>, CarError> {
    let mut buf = Vec::with_capacity(len.min(64 * 1024));
    let got = r.by_ref().take(len as u64).read_to_end(&mut buf)?;
    if got != len {
        return Err(CarError::Truncated(what));
    }
    Ok(buf)
}

fn encode_header(roots: &[Cid]) -> Vec<u8> {
    let mut e = Encoder::with_capacity(16 + roots.len() * 40);
    e.map(2);
    e.text("roots");
    e.array(roots.len());
    for r in roots {
        e.link(r);
    }
    e.text("version");
    e.uint(1);
    e.into_bytes()
}

fn decode_header(bytes: &[u8], limits: &CarLimits) -> Result<Vec<Cid>, CarError> {
    let bad = |e: DecodeError| CarError::InvalidHeader(e.to_string());
    let mut d = Decoder::new(bytes);
    let n = d.map_len().map_err(bad)?;
    let mut roots: Option<Vec<Cid>> = None;
    let mut version: Option<i64> = None;
    for _ in 0..n {
        let key = d.key().map_err(bad)?;
        match key {
            "roots" if roots.is_none() => {
                let count = d.array_len().map_err(bad)?;
                if count > limits.max_roots as u64 {
                    return Err(CarError::InvalidHeader(format!(
                        "{count} roots exceed the limit of {}",
                        limits.max_roots
                    )));
                }
                let mut v = Vec::with_capacity(count as usize);
                for _ in 0..count {
                    v.push(d.link().map_err(bad)?);
                }
                roots = Some(v);
            }
            "version" if version.is_none() => {
                version = Some(d.int().map_err(bad)?);
            }
            "roots" | "version" => {
                return Err(CarError::InvalidHeader(format!("repeated key {key:?}")));
            }
            _ => d.skip(MAX_NESTED_LEVELS).map_err(bad)?,
        }
    }
    d.finish().map_err(bad)?;
    match version {
        Some(1) => {}
        Some(v) => return Err(CarError::UnsupportedVersion(v)),
        None => return Err(CarError::InvalidHeader("missing version".into())),
    }
    roots.ok_or_else(|| CarError::InvalidHeader("missing roots".into()))
}

/// Check a block's bytes against its CID.
pub fn verify_block(cid: &Cid, data: &[u8]) -> Result<(), CarError> {
    let mh = cid.hash();
    if mh.code() != SHA2_256_CODE || mh.size() != 32 {
        return Err(CarError::UnsupportedHash {
            cid: *cid,
            code: mh.code(),
        });
    }
    let digest = Sha256::digest(data);
    if digest[..] != mh.digest()[..] {
        return Err(CarError::HashMismatch(*cid));
    }
    Ok(())
}

/// Split a block section into its CID and data, and check the hash.
fn parse_section(section: Bytes) -> Result<(Cid, Bytes), CarError> {
    if section.is_empty() {
        return Err(CarError::EmptySection);
    }
    let mut cursor = io::Cursor::new(&section[..]);
    let cid = Cid::read_bytes(&mut cursor).map_err(|e| CarError::InvalidCid(e.to_string()))?;
    let at = cursor.position() as usize;
    let data = section.slice(at..);
    verify_block(&cid, &data)?;
    Ok((cid, data))
}

/// Streaming CAR v1 reader over any [`Read`]. Iterate it for blocks.
pub struct CarReader<R> {
    reader: R,
    roots: Vec<Cid>,
    limits: CarLimits,
    done: bool,
}

impl<R: Read> CarReader<R> {
    /// Read the header with default limits.
    pub fn new(reader: R) -> Result<Self, CarError> {
        Self::with_limits(reader, CarLimits::default())
    }

    /// Read the header with the given limits.
    pub fn with_limits(mut reader: R, limits: CarLimits) -> Result<Self, CarError> {
        let len = read_varint(&mut reader, "header length")?
            .ok_or(CarError::Truncated("missing header"))?;
        if len > limits.max_header_size as u64 {
            return Err(CarError::HeaderTooLarge {
                size: len,
                limit: limits.max_header_size,
            });
        }
        let header = read_exact_bounded(&mut reader, len as usize, "header")?;
        let roots = decode_header(&header, &limits)?;
        Ok(CarReader {
            reader,
            roots,
            limits,
            done: false,
        })
    }

    /// The roots named in the header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// The next block, `Ok(None)` at the clean end of the stream.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Bytes)>, CarError> {
        if self.done {
            return Ok(None);
        }
        let res = self.read_one();
        if !matches!(res, Ok(Some(_))) {
            self.done = true;
        }
        res
    }

    fn read_one(&mut self) -> Result<Option<(Cid, Bytes)>, CarError> {
        let Some(len) = read_varint(&mut self.reader, "block length")? else {
            return Ok(None);
        };
        if len > self.limits.max_block_size as u64 {
            return Err(CarError::BlockTooLarge {
                size: len,
                limit: self.limits.max_block_size,
            });
        }
        let section = read_exact_bounded(&mut self.reader, len as usize, "block")?;
        parse_section(Bytes::from(section)).map(Some)
    }
}

impl<R: Read> Iterator for CarReader<R> {
    type Item = Result<(Cid, Bytes), CarError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

/// CAR v1 reader over an in-memory buffer; blocks share the buffer (no copy).
pub struct CarSliceReader {
    buf: Bytes,
    pos: usize,
    roots: Vec<Cid>,
    limits: CarLimits,
    done: bool,
}

impl CarSliceReader {
    /// Parse the header with default limits.
    pub fn new(buf: impl Into<Bytes>) -> Result<Self, CarError> {
        Self::with_limits(buf, CarLimits::default())
    }

    /// Parse the header with the given limits.
    pub fn with_limits(buf: impl Into<Bytes>, limits: CarLimits) -> Result<Self, CarError> {
        let buf = buf.into();
        let mut r = CarSliceReader {
            buf,
            pos: 0,
            roots: Vec::new(),
            limits,
            done: false,
        };
        let len = r
            .varint("header length")?
            .ok_or(CarError::Truncated("missing header"))?;
        if len > limits.max_header_size as u64 {
            return Err(CarError::HeaderTooLarge {
                size: len,
                limit: limits.max_header_size,
            });
        }
        let header = r.take_section(len, "header")?;
        r.roots = decode_header(&header, &limits)?;
        Ok(r)
    }

    /// The roots named in the header.
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    fn varint(&mut self, what: &'static str) -> Result<Option<u64>, CarError> {
        let mut rest = &self.buf[self.pos..];
        let before = rest.len();
        let v = read_varint(&mut rest, what)?;
        self.pos += before - rest.len();
        Ok(v)
    }

    fn take_section(&mut self, len: u64, what: &'static str) -> Result<Bytes, CarError> {
        let remaining = (self.buf.len() - self.pos) as u64;
        if len > remaining {
            return Err(CarError::Truncated(what));
        }
        let end = self.pos + len as usize;
        let b = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(b)
    }

    /// The next block, `Ok(None)` at the end.
    pub fn next_block(&mut self) -> Result<Option<(Cid, Bytes)>, CarError> {
        if self.done {
            return Ok(None);
        }
        let res = self.read_one();
        if !matches!(res, Ok(Some(_))) {
            self.done = true;
        }
        res
    }

    fn read_one(&mut self) -> Result<Option<(Cid, Bytes)>, CarError> {
        let Some(len) = self.varint("block length")? else {
            return Ok(None);
        };
        if len > self.limits.max_block_size as u64 {
            return Err(CarError::BlockTooLarge {
                size: len,
                limit: self.limits.max_block_size,
            });
        }
        let section = self.take_section(len, "block")?;
        parse_section(section).map(Some)
    }
}

impl Iterator for CarSliceReader {
    type Item = Result<(Cid, Bytes), CarError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_block().transpose()
    }
}

/// Read a whole CAR held in memory: its roots and its blocks (duplicates
/// collapse; every block's hash is checked).
pub fn load_car(bytes: impl Into<Bytes>) -> Result<(Vec<Cid>, BlockMap), CarError> {
    load_car_with_limits(bytes, CarLimits::default())
}

/// [`load_car`] with explicit limits.
pub fn load_car_with_limits(
    bytes: impl Into<Bytes>,
    limits: CarLimits,
) -> Result<(Vec<Cid>, BlockMap), CarError> {
    let mut r = CarSliceReader::with_limits(bytes, limits)?;
    let mut blocks = BlockMap::new();
    while let Some((cid, data)) = r.next_block()? {
        blocks.put(cid, data);
    }
    Ok((r.roots, blocks))
}

/// Streaming CAR v1 writer: the header is written on creation, each block as
/// it is given, so output is produced incrementally.
pub struct CarWriter<W: Write> {
    writer: W,
    scratch: Vec<u8>,
    blocks: usize,
}

impl<W: Write> CarWriter<W> {
    /// Write the header naming `roots`.
    pub fn new(mut writer: W, roots: &[Cid]) -> Result<Self, CarError> {
        let header = encode_header(roots);
        let mut scratch = Vec::with_capacity(16);
        write_varint(&mut scratch, header.len() as u64);
        writer.write_all(&scratch)?;
        writer.write_all(&header)?;
        Ok(CarWriter {
            writer,
            scratch,
            blocks: 0,
        })
    }

    /// Write one block. The caller vouches that `data` hashes to `cid`.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> Result<(), CarError> {
        self.scratch.clear();
        let cid_len = cid.encoded_len();
        write_varint(&mut self.scratch, (cid_len + data.len()) as u64);
        cid.write_bytes(&mut self.scratch)
            .map_err(|e| CarError::InvalidCid(e.to_string()))?;
        self.writer.write_all(&self.scratch)?;
        self.writer.write_all(data)?;
        self.blocks += 1;
        Ok(())
    }

    /// Blocks written so far.
    pub fn blocks_written(&self) -> usize {
        self.blocks
    }

    /// Flush and return the underlying writer.
    pub fn finish(mut self) -> Result<W, CarError> {
        self.writer.flush()?;
        Ok(self.writer)
    }
}

/// Write a CAR to a byte vector: `roots`, then `blocks` in the given order.
pub fn write_car<'a>(
    roots: &[Cid],
    blocks: impl IntoIterator<Item = (&'a Cid, &'a [u8])>,
) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    if let Ok(mut w) = CarWriter::new(&mut out, roots) {
        for (cid, data) in blocks {
            if w.write_block(cid, data).is_err() {
                break;
            }
        }
    }
    out
}

/// Write a CAR of a [`BlockMap`] (blocks in no particular order).
pub fn write_car_from_map(roots: &[Cid], blocks: &BlockMap) -> Vec<u8> {
    write_car(roots, blocks.iter().map(|(c, b)| (c, &b[..])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_data::{cid_for_dag_cbor, cid_for_raw, RAW_CODEC};

    fn sample() -> (Vec<Cid>, Vec<(Cid, Vec<u8>)>) {
        let blocks: Vec<(Cid, Vec<u8>)> = (0..5u8)
            .map(|i| {
                let data = vec![0x43, i, i, i];
                (cid_for_dag_cbor(&data), data)
            })
            .chain(std::iter::once({
                let d = b"raw data".to_vec();
                (cid_for_raw(&d), d)
            }))
            .collect();
        (vec![blocks[0].0], blocks)
    }

    #[test]
    fn round_trip_stream_and_slice() {
        let (roots, blocks) = sample();
        let car = write_car(&roots, blocks.iter().map(|(c, d)| (c, &d[..])));
        let mut r = CarReader::new(&car[..]).expect("header");
        assert_eq!(r.roots(), &roots[..]);
        let got: Vec<_> = r.by_ref().collect::<Result<_, _>>().expect("blocks");
        assert_eq!(got.len(), blocks.len());
        for ((c, d), (gc, gd)) in blocks.iter().zip(&got) {
            assert_eq!(c, gc);
            assert_eq!(&d[..], &gd[..]);
        }
        let (roots2, map) = load_car(car.clone()).expect("load");
        assert_eq!(roots2, roots);
        assert_eq!(map.len(), blocks.len());
    }

    #[test]
    fn duplicates_and_order_tolerated() {
        let (roots, blocks) = sample();
        let mut order: Vec<_> = blocks.iter().rev().collect();
        order.push(&blocks[2]);
        let car = write_car(&roots, order.iter().map(|(c, d)| (c, &d[..])));
        let (_, map) = load_car(car).expect("load");
        assert_eq!(map.len(), blocks.len());
    }

    #[test]
    fn rejects_bad_hash() {
        let (roots, blocks) = sample();
        let car = write_car(&roots, [(&blocks[0].0, &blocks[1].1[..])]);
        assert!(matches!(load_car(car), Err(CarError::HashMismatch(_))));
    }

    #[test]
    fn rejects_truncated_and_oversized() {
        let (roots, blocks) = sample();
        let car = write_car(&roots, blocks.iter().map(|(c, d)| (c, &d[..])));
        for cut in 0..car.len() {
            let r = load_car(car[..cut].to_vec());
            // Any cut either fails or ends cleanly at a section boundary.
            if let Ok((_, m)) = r {
                assert!(m.len() < blocks.len());
            }
        }
        let limits = CarLimits {
            max_block_size: 3,
            ..CarLimits::default()
        };
        assert!(matches!(
            load_car_with_limits(car.clone(), limits),
            Err(CarError::BlockTooLarge { .. })
        ));
        // A huge declared length must fail without allocating it.
        let mut evil = Vec::new();
        write_varint(&mut evil, u64::MAX >> 8);
        assert!(load_car(evil).is_err());
    }

    #[test]
    fn rejects_non_sha256() {
        let data = b"x".to_vec();
        let mh = multihash::Multihash::<64>::wrap(0x13, &[0u8; 64]).expect("mh");
        let cid = Cid::new_v1(RAW_CODEC, mh);
        let car = write_car(&[], [(&cid, &data[..])]);
        assert!(matches!(
            load_car(car),
            Err(CarError::UnsupportedHash { code: 0x13, .. })
        ));
    }

    #[test]
    fn header_versions() {
        let mut e = Encoder::new();
        e.map(2);
        e.text("roots");
        e.array(0);
        e.text("version");
        e.uint(2);
        let mut car = Vec::new();
        write_varint(&mut car, e.as_bytes().len() as u64);
        car.extend_from_slice(e.as_bytes());
        assert!(matches!(
            load_car(car),
            Err(CarError::UnsupportedVersion(2))
        ));
    }
}
