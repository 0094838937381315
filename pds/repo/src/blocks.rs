//! Synchronous block access for the MST over an asynchronous store.
//!
//! The MST code is synchronous and reports [`MstError::MissingBlock`] when
//! it needs a block it was not given (leaving the tree unchanged). A
//! [`BlockView`] answers from the blocks fetched so far and the process-wide
//! [`BlockCache`]; [`Fetcher::run`] runs a synchronous step, and whenever the
//! step stops on missing blocks, fetches them from the store in one round
//! trip and runs it again.

use std::collections::HashMap;

use atproto_repo::{BlockStore, BlockStoreError, MstError, RepoError};
use bytes::Bytes;
use cid::Cid;
use pds_store::Store;

use crate::cache::BlockCache;
use crate::error::{RepoWriteError, Result};

/// The blocks one operation has seen: fetched ones, then the cache.
pub(crate) struct BlockView<'a> {
    local: HashMap<Cid, Bytes>,
    cache: &'a BlockCache,
}

impl<'a> BlockView<'a> {
    pub(crate) fn new(cache: &'a BlockCache) -> BlockView<'a> {
        BlockView {
            local: HashMap::new(),
            cache,
        }
    }

    fn holds(&self, cid: &Cid) -> bool {
        self.local.contains_key(cid)
    }
}

impl BlockStore for BlockView<'_> {
    fn get(&self, cid: &Cid) -> std::result::Result<Option<Bytes>, BlockStoreError> {
        if let Some(b) = self.local.get(cid) {
            return Ok(Some(b.clone()));
        }
        Ok(self.cache.get(cid))
    }
}

/// Why a synchronous step stopped.
pub(crate) enum Halt {
    /// It needs these blocks (fetch them and run it again).
    Missing(Vec<Cid>),
    /// It failed for good.
    Fail(RepoWriteError),
}

impl From<RepoWriteError> for Halt {
    fn from(e: RepoWriteError) -> Self {
        Halt::Fail(e)
    }
}

/// An MST error as a [`Halt`]: a missing block is fetched, anything else
/// is mapped by `other`.
pub(crate) fn mst_halt(e: MstError, other: impl FnOnce(MstError) -> RepoWriteError) -> Halt {
    match e {
        MstError::MissingBlock(c) => Halt::Missing(vec![c]),
        e => Halt::Fail(other(e)),
    }
}

/// A repo error as a [`Halt`].
pub(crate) fn repo_halt(e: RepoError) -> Halt {
    match e {
        RepoError::Mst(e) => mst_halt(e, |e| match e {
            MstError::KeyExists(k) => RepoWriteError::InvalidRequest(format!(
                "record already exists in the repository tree: {k}"
            )),
            MstError::KeyNotFound(k) => RepoWriteError::InvalidRequest(format!(
                "record not found in the repository tree: {k}"
            )),
            MstError::InvalidKey(k) => RepoWriteError::InvalidRequest(k.to_string()),
            other => RepoWriteError::internal(other),
        }),
        RepoError::DuplicateKey(k) => Halt::Fail(RepoWriteError::InvalidRequest(format!(
            "more than one write to {k} in one batch"
        ))),
        other => Halt::Fail(RepoWriteError::internal(other)),
    }
}

/// Fetches missing blocks of one repository into a view.
pub(crate) struct Fetcher<'s> {
    pub store: &'s Store,
    pub cache: &'s BlockCache,
    pub did: &'s str,
}

impl Fetcher<'_> {
    /// Fetches `cids` (one round trip) into `view` and the cache.
    async fn fetch(&self, view: &mut BlockView<'_>, cids: Vec<Cid>) -> Result<()> {
        let mut wanted: Vec<Cid> = Vec::with_capacity(cids.len());
        for c in cids {
            if !view.holds(&c) && !wanted.contains(&c) {
                wanted.push(c);
            }
        }
        if wanted.is_empty() {
            // The step asked again for blocks it was given: it would loop.
            return Err(RepoWriteError::Internal(
                "a block reported missing was already fetched".into(),
            ));
        }
        let got = self.store.repo().get_blocks(self.did, &wanted).await?;
        self.cache.record_fetch(got.blocks.len());
        if let Some(m) = got.missing.first() {
            return Err(RepoWriteError::MissingBlock(*m));
        }
        for (c, b) in got.blocks {
            let b = Bytes::from(b);
            self.cache.put(c, b.clone());
            view.local.insert(c, b);
        }
        Ok(())
    }

    /// Runs `step` until it no longer stops on missing blocks.
    pub(crate) async fn run<T>(
        &self,
        view: &mut BlockView<'_>,
        mut step: impl FnMut(&BlockView<'_>) -> std::result::Result<T, Halt>,
    ) -> Result<T> {
        loop {
            match step(view) {
                Ok(v) => return Ok(v),
                Err(Halt::Fail(e)) => return Err(e),
                Err(Halt::Missing(cids)) => self.fetch(view, cids).await?,
            }
        }
    }
}
