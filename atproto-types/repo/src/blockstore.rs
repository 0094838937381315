//! Content-addressed block storage.

use std::collections::HashMap;
use std::sync::Mutex;

use atproto_data::cid_for_dag_cbor;
use bytes::Bytes;
use cid::Cid;

/// An error from a block store backend.
#[derive(Debug, thiserror::Error)]
#[error("block store: {0}")]
pub struct BlockStoreError(pub Box<dyn std::error::Error + Send + Sync>);

impl BlockStoreError {
    /// Wrap any backend error.
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        BlockStoreError(Box::new(e))
    }
}

/// Read access to blocks by CID. `Ok(None)` means the store does not hold the
/// block (the caller decides whether that is an error, e.g. `MissingBlock`).
pub trait BlockStore {
    /// The bytes of the block named `cid`, if held.
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockStoreError>;

    /// Whether the block is held.
    fn has(&self, cid: &Cid) -> Result<bool, BlockStoreError> {
        Ok(self.get(cid)?.is_some())
    }
}

impl<T: BlockStore + ?Sized> BlockStore for &T {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockStoreError> {
        (**self).get(cid)
    }
}

/// An in-memory map of blocks with byte-size accounting. Also the in-memory
/// [`BlockStore`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockMap {
    blocks: HashMap<Cid, Bytes>,
    bytes: usize,
}

/// The in-memory block store is a [`BlockMap`].
pub type MemoryBlockStore = BlockMap;

impl BlockMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert a block under its (already known) CID. Replacing a block keeps
    /// the size accounting right.
    pub fn put(&mut self, cid: Cid, bytes: impl Into<Bytes>) {
        let bytes = bytes.into();
        self.bytes += bytes.len();
        if let Some(old) = self.blocks.insert(cid, bytes) {
            self.bytes -= old.len();
        }
    }

    /// Hash DAG-CBOR bytes, store them, and return their CID.
    pub fn put_cbor(&mut self, bytes: impl Into<Bytes>) -> Cid {
        let bytes = bytes.into();
        let cid = cid_for_dag_cbor(&bytes);
        self.put(cid, bytes);
        cid
    }

    /// The block named `cid`.
    pub fn get(&self, cid: &Cid) -> Option<&Bytes> {
        self.blocks.get(cid)
    }

    /// Whether the block is held.
    pub fn contains(&self, cid: &Cid) -> bool {
        self.blocks.contains_key(cid)
    }

    /// Remove a block, returning it.
    pub fn remove(&mut self, cid: &Cid) -> Option<Bytes> {
        let old = self.blocks.remove(cid)?;
        self.bytes -= old.len();
        Some(old)
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Total size of the block bytes held.
    pub fn byte_size(&self) -> usize {
        self.bytes
    }

    /// All blocks, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Cid, &Bytes)> {
        self.blocks.iter()
    }

    /// All CIDs, in no particular order.
    pub fn cids(&self) -> impl Iterator<Item = &Cid> {
        self.blocks.keys()
    }

    /// Add every block of `other`.
    pub fn extend(&mut self, other: BlockMap) {
        for (cid, bytes) in other.blocks {
            self.put(cid, bytes);
        }
    }

    /// Copy every block of `other`.
    pub fn extend_from(&mut self, other: &BlockMap) {
        for (cid, bytes) in &other.blocks {
            self.put(*cid, bytes.clone());
        }
    }
}

impl IntoIterator for BlockMap {
    type Item = (Cid, Bytes);
    type IntoIter = std::collections::hash_map::IntoIter<Cid, Bytes>;
    fn into_iter(self) -> Self::IntoIter {
        self.blocks.into_iter()
    }
}

impl FromIterator<(Cid, Bytes)> for BlockMap {
    fn from_iter<I: IntoIterator<Item = (Cid, Bytes)>>(iter: I) -> Self {
        let mut m = BlockMap::new();
        for (c, b) in iter {
            m.put(c, b);
        }
        m
    }
}

impl BlockStore for BlockMap {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockStoreError> {
        Ok(self.blocks.get(cid).cloned())
    }
    fn has(&self, cid: &Cid) -> Result<bool, BlockStoreError> {
        Ok(self.blocks.contains_key(cid))
    }
}

/// Looks in `first`, then in `second`: e.g. the blocks of a pending write
/// over the stored repository.
pub struct LayeredStore<'a, A: ?Sized, B: ?Sized> {
    /// Consulted first.
    pub first: &'a A,
    /// Consulted when `first` lacks the block.
    pub second: &'a B,
}

impl<A: BlockStore + ?Sized, B: BlockStore + ?Sized> BlockStore for LayeredStore<'_, A, B> {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockStoreError> {
        match self.first.get(cid)? {
            Some(b) => Ok(Some(b)),
            None => self.second.get(cid),
        }
    }
}

/// Wraps a store and records the CIDs of every block read through it (found
/// or not): used to compute the exact block set an operation needs.
pub struct RecordingStore<'a, S: ?Sized> {
    inner: &'a S,
    seen: Mutex<Vec<Cid>>,
}

impl<'a, S: BlockStore + ?Sized> RecordingStore<'a, S> {
    /// Record reads through `inner`.
    pub fn new(inner: &'a S) -> Self {
        RecordingStore {
            inner,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// The CIDs read so far, in order (with repeats).
    pub fn take_seen(&self) -> Vec<Cid> {
        match self.seen.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

impl<S: BlockStore + ?Sized> BlockStore for RecordingStore<'_, S> {
    fn get(&self, cid: &Cid) -> Result<Option<Bytes>, BlockStoreError> {
        match self.seen.lock() {
            Ok(mut g) => g.push(*cid),
            Err(p) => p.into_inner().push(*cid),
        }
        self.inner.get(cid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_accounting() {
        let mut m = BlockMap::new();
        let a = m.put_cbor(vec![0xa0]);
        let b = m.put_cbor(vec![0x61, 0x61]);
        assert_eq!(m.len(), 2);
        assert_eq!(m.byte_size(), 3);
        m.put(a, vec![0xa0]);
        assert_eq!(m.byte_size(), 3);
        assert!(m.remove(&b).is_some());
        assert_eq!(m.byte_size(), 1);
        assert!(m.contains(&a));
        // The CID of an empty DAG-CBOR map.
        assert_eq!(
            a.to_string(),
            "bafyreigbtj4x7ip5legnfznufuopl4sg4knzc2cof6duas4b3q2fy6swua"
        );
    }
}
