//! A process-wide, byte-bounded LRU cache of repository blocks (MST nodes
//! and commits), keyed by CID.
//!
//! Blocks are immutable and named by the hash of their bytes, so an entry is
//! valid forever, whichever repository it came from and whatever happens to
//! the repository afterwards: the cache never needs invalidation, only
//! eviction. A write to a large repository then fetches only the nodes that
//! neither earlier writes (whose new nodes are inserted after commit) nor
//! earlier fetches brought in.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use cid::Cid;

/// Default capacity: 64 MiB of block bytes.
pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

struct Entry {
    bytes: Bytes,
    tick: u64,
}

#[derive(Default)]
struct Lru {
    map: HashMap<Cid, Entry>,
    /// tick -> CID, oldest first.
    order: BTreeMap<u64, Cid>,
    bytes: usize,
    tick: u64,
}

impl Lru {
    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    fn get(&mut self, cid: &Cid) -> Option<Bytes> {
        let tick = self.next_tick();
        let entry = self.map.get_mut(cid)?;
        self.order.remove(&entry.tick);
        entry.tick = tick;
        self.order.insert(tick, *cid);
        Some(entry.bytes.clone())
    }

    fn put(&mut self, cid: Cid, bytes: Bytes, capacity: usize) {
        if bytes.len() > capacity {
            return;
        }
        let tick = self.next_tick();
        let len = bytes.len();
        if let Some(old) = self.map.insert(cid, Entry { bytes, tick }) {
            self.order.remove(&old.tick);
            self.bytes -= old.bytes.len();
        }
        self.order.insert(tick, cid);
        self.bytes += len;
        while self.bytes > capacity {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.map.remove(&victim) {
                self.bytes -= e.bytes.len();
            }
        }
    }
}

/// Counters of a [`BlockCache`] and of the writers using it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups answered by the cache.
    pub hits: u64,
    /// Lookups the cache could not answer.
    pub misses: u64,
    /// Blocks fetched from the database by writers (cache misses that
    /// became database reads).
    pub blocks_fetched: u64,
    /// Database round trips made to fetch them.
    pub fetches: u64,
    /// Blocks currently held.
    pub entries: u64,
    /// Bytes currently held.
    pub bytes: u64,
}

/// A byte-bounded LRU cache of blocks by CID, shared by every writer of a
/// process (cheap to share behind an `Arc`).
pub struct BlockCache {
    capacity: usize,
    inner: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
    blocks_fetched: AtomicU64,
    fetches: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity", &self.capacity)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for BlockCache {
    fn default() -> Self {
        BlockCache::new(DEFAULT_CACHE_BYTES)
    }
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of block bytes (0 disables
    /// caching).
    pub fn new(capacity_bytes: usize) -> BlockCache {
        BlockCache {
            capacity: capacity_bytes,
            inner: Mutex::new(Lru::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            blocks_fetched: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // The LRU's invariants hold between statements; a panic elsewhere
        // while the lock was held cannot leave it half-updated.
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The block named `cid`, if cached (marks it recently used).
    pub fn get(&self, cid: &Cid) -> Option<Bytes> {
        let found = self.lock().get(cid);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches a block. The caller vouches that `bytes` hash to `cid`.
    pub fn put(&self, cid: Cid, bytes: Bytes) {
        if self.capacity > 0 {
            self.lock().put(cid, bytes, self.capacity);
        }
    }

    /// Drops blocks that will not be needed again (the nodes a commit
    /// replaced), to leave the room to live ones.
    pub fn forget(&self, cids: &[Cid]) {
        let mut g = self.lock();
        for c in cids {
            if let Some(e) = g.map.remove(c) {
                g.order.remove(&e.tick);
                g.bytes -= e.bytes.len();
            }
        }
    }

    /// Counts a database fetch of `blocks` blocks.
    pub(crate) fn record_fetch(&self, blocks: usize) {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.blocks_fetched
            .fetch_add(u64::try_from(blocks).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// The counters so far.
    pub fn stats(&self) -> CacheStats {
        let (entries, bytes) = {
            let g = self.lock();
            (g.map.len(), g.bytes)
        };
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            blocks_fetched: self.blocks_fetched.load(Ordering::Relaxed),
            fetches: self.fetches.load(Ordering::Relaxed),
            entries: u64::try_from(entries).unwrap_or(u64::MAX),
            bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
        }
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_data::cid_for_dag_cbor;

    fn block(i: u32, len: usize) -> (Cid, Bytes) {
        let mut b = vec![0x58, 0];
        b.extend(std::iter::repeat_n((i % 251) as u8, len));
        b.extend(i.to_be_bytes());
        (cid_for_dag_cbor(&b), Bytes::from(b))
    }

    #[test]
    fn evicts_least_recently_used_within_the_byte_bound() {
        let cache = BlockCache::new(1000);
        let blocks: Vec<_> = (0..10).map(|i| block(i, 194)).collect(); // 200 bytes each
        for (c, b) in blocks.iter().take(5) {
            cache.put(*c, b.clone());
        }
        assert_eq!(cache.stats().bytes, 1000);
        // Touch block 0 so block 1 becomes the oldest.
        assert!(cache.get(&blocks[0].0).is_some());
        cache.put(blocks[5].0, blocks[5].1.clone());
        assert!(cache.get(&blocks[1].0).is_none());
        assert!(cache.get(&blocks[0].0).is_some());
        assert!(cache.get(&blocks[5].0).is_some());
        let s = cache.stats();
        assert_eq!(s.entries, 5);
        assert!(s.bytes <= 1000);
        assert_eq!(s.misses, 1);
        // Re-putting a block does not double count it.
        cache.put(blocks[5].0, blocks[5].1.clone());
        assert_eq!(cache.stats().bytes, 1000);
        cache.forget(&[blocks[5].0, blocks[9].0]);
        assert!(cache.get(&blocks[5].0).is_none());
        assert_eq!(cache.stats().bytes, 800);
        assert_eq!(cache.stats().entries, 4);
    }

    #[test]
    fn oversized_blocks_and_zero_capacity_are_not_cached() {
        let cache = BlockCache::new(100);
        let (c, b) = block(1, 500);
        cache.put(c, b);
        assert!(cache.get(&c).is_none());
        let off = BlockCache::new(0);
        let (c, b) = block(2, 10);
        off.put(c, b);
        assert!(off.get(&c).is_none());
    }
}
