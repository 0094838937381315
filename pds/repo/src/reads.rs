//! Repository reads for the sync endpoints: the repository as a CAR
//! stream (`com.atproto.sync.getRepo`) and record proofs
//! (`com.atproto.sync.getRecord`).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use atproto_repo::car::write_car;
use atproto_repo::mst::{covering_proof, decode_node};
use atproto_repo::{BlockStore, Commit, Mst};
use bytes::Bytes;
use cid::Cid;
use futures_core::Stream;
use pds_store::Store;

use crate::blocks::{mst_halt, BlockView, Fetcher, Halt};
use crate::error::{RepoWriteError, Result};
use crate::writer::RepoWriter;

/// Blocks per database page of a CAR export.
const PAGE: u32 = 500;

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// CAR v1 sections (length-prefixed CID + bytes) of `blocks`.
fn car_sections(blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(blocks.iter().map(|(_, b)| b.len() + 48).sum());
    for (cid, bytes) in blocks {
        let c = cid.to_bytes();
        varint(
            u64::try_from(c.len() + bytes.len()).unwrap_or(u64::MAX),
            &mut out,
        );
        out.extend_from_slice(&c);
        out.extend_from_slice(bytes);
    }
    out
}

type PageFuture = Pin<Box<dyn Future<Output = Result<Vec<(Cid, Vec<u8>)>>> + Send>>;

/// How many times a full export re-reads the tree when commits keep
/// replacing it while it is being read.
const SNAPSHOT_ATTEMPTS: usize = 5;

/// A repository as a CAR v1 byte stream: the header (root: the commit the
/// repository was at when the stream was opened), then its blocks.
///
/// A full export is a snapshot of that commit: before the stream is
/// returned, the commit and every MST node are read (a commit landing
/// meanwhile deletes the nodes it replaces: the read starts again at the
/// new root), and the record CIDs they reach are collected; the records
/// are then read page by page. Commits never delete record blocks (only
/// [`RepoWriter::collect_garbage`] does), so a commit landing during the
/// stream does not change what it sends; a record collected by a full
/// garbage collection meanwhile ends the stream with an error.
///
/// An export `since` a rev sends the blocks written by later revs page by
/// page, in CID order. It is not a snapshot (nor is the reference PDS's):
/// a commit landing meanwhile may add its blocks to the pages not yet read,
/// or delete nodes of the exported commit not yet sent.
pub struct RepoCarStream {
    store: Store,
    did: String,
    since: Option<String>,
    /// Encoded CAR parts ready to send (header, commit and MST nodes).
    ready: std::collections::VecDeque<Bytes>,
    /// A full export's record CIDs not yet requested.
    records: std::vec::IntoIter<Cid>,
    full: bool,
    pending: Option<PageFuture>,
}

impl std::fmt::Debug for RepoCarStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoCarStream")
            .field("did", &self.did)
            .field("since", &self.since)
            .finish_non_exhaustive()
    }
}

impl RepoCarStream {
    /// The next page of a `since` export, after `after`.
    fn since_page(&self, after: Option<Cid>) -> PageFuture {
        let (store, did, since) = (self.store.clone(), self.did.clone(), self.since.clone());
        Box::pin(async move {
            Ok(store
                .repo()
                .list_blocks(&did, since.as_deref(), after.as_ref(), PAGE)
                .await?)
        })
    }

    /// The next page of a full export's records, if any remain.
    fn record_page(&mut self) -> Option<PageFuture> {
        let cids: Vec<Cid> = self.records.by_ref().take(PAGE as usize).collect();
        if cids.is_empty() {
            return None;
        }
        let (store, did) = (self.store.clone(), self.did.clone());
        Some(Box::pin(async move {
            let mut got = store.repo().get_blocks(&did, &cids).await?;
            if let Some(m) = got.missing.first() {
                return Err(RepoWriteError::MissingBlock(*m));
            }
            Ok(cids
                .into_iter()
                .filter_map(|c| got.blocks.remove(&c).map(|b| (c, b)))
                .collect())
        }))
    }
}

impl Stream for RepoCarStream {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(part) = this.ready.pop_front() {
            if this.ready.is_empty() && this.pending.is_none() {
                this.pending = if this.full {
                    this.record_page()
                } else {
                    Some(this.since_page(None))
                };
            }
            return Poll::Ready(Some(Ok(part)));
        }
        let Some(fut) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match fut.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => {
                this.pending = None;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Ok(page)) => {
                let Some(last) = page.last().map(|(c, _)| *c) else {
                    this.pending = None;
                    return Poll::Ready(None);
                };
                this.pending = if this.full {
                    this.record_page()
                } else {
                    let more = u32::try_from(page.len()).unwrap_or(u32::MAX) >= PAGE;
                    more.then(|| this.since_page(Some(last)))
                };
                Poll::Ready(Some(Ok(Bytes::from(car_sections(&page)))))
            }
        }
    }
}

/// A commit with its MST: the CAR sections of the commit block and every
/// node, and the record CIDs the tree holds (each once, in tree order).
/// Record blocks read per round trip while taking a snapshot.
const SNAPSHOT_RECORD_PAGE: usize = 500;

struct Snapshot {
    sections: Vec<u8>,
    records: Vec<Cid>,
}

impl RepoWriter {
    /// The repository of `did` as a CAR stream rooted at its current commit:
    /// every block (a consistent snapshot of that commit), or with `since`
    /// (a rev) only the blocks written by later commits.
    pub async fn get_repo_car(&self, did: &str, since: Option<&str>) -> Result<RepoCarStream> {
        let mut stream = RepoCarStream {
            store: self.store().clone(),
            did: did.to_owned(),
            since: since.map(str::to_owned),
            ready: std::collections::VecDeque::new(),
            records: Vec::new().into_iter(),
            full: since.is_none(),
            pending: None,
        };
        if since.is_some() {
            let root = self.current_root(did).await?;
            stream
                .ready
                .push_back(Bytes::from(write_car(&[root], std::iter::empty())));
            return Ok(stream);
        }
        let mut attempt = 0;
        let (root, snapshot) = loop {
            attempt += 1;
            let root = self.current_root(did).await?;
            match self.snapshot(did, root).await {
                Ok(s) => break (root, s),
                // The tree was replaced while it was read: read the new one.
                Err(RepoWriteError::MissingBlock(_))
                    if attempt < SNAPSHOT_ATTEMPTS && self.current_root(did).await? != root => {}
                Err(e) => return Err(e),
            }
        };
        stream
            .ready
            .push_back(Bytes::from(write_car(&[root], std::iter::empty())));
        stream.ready.push_back(Bytes::from(snapshot.sections));
        stream.records = snapshot.records.into_iter();
        Ok(stream)
    }

    async fn current_root(&self, did: &str) -> Result<Cid> {
        Ok(self
            .store()
            .repo()
            .get_root(did)
            .await?
            .ok_or_else(|| RepoWriteError::RepoNotFound(did.to_owned()))?
            .cid)
    }

    /// Reads the commit `root` and its MST, one tree level per round trip
    /// (blocks in the cache are not read again).
    async fn snapshot(&self, did: &str, root: Cid) -> Result<Snapshot> {
        let commit_bytes = match self.cache().get(&root) {
            Some(b) => b.to_vec(),
            None => self
                .store()
                .repo()
                .get_block(did, &root)
                .await?
                .ok_or(RepoWriteError::MissingBlock(root))?,
        };
        let commit = Commit::from_cbor(&commit_bytes).map_err(RepoWriteError::internal)?;
        let mut sections = car_sections(&[(root, commit_bytes)]);
        let mut records = Vec::new();
        let mut seen_records = HashSet::new();
        let mut seen_nodes = HashSet::from([commit.data]);
        let mut frontier = vec![commit.data];
        while !frontier.is_empty() {
            let mut level: Vec<(Cid, Vec<u8>)> = Vec::with_capacity(frontier.len());
            let mut wanted = Vec::new();
            for c in frontier {
                match self.cache().get(&c) {
                    Some(b) => level.push((c, b.to_vec())),
                    None => wanted.push(c),
                }
            }
            if !wanted.is_empty() {
                let mut got = self.store().repo().get_blocks(did, &wanted).await?;
                if let Some(m) = got.missing.first() {
                    return Err(RepoWriteError::MissingBlock(*m));
                }
                level.extend(
                    wanted
                        .into_iter()
                        .filter_map(|c| got.blocks.remove(&c).map(|b| (c, b))),
                );
            }
            let mut next = Vec::new();
            for (cid, bytes) in &level {
                let node = decode_node(bytes).map_err(|e| {
                    RepoWriteError::Internal(format!("invalid MST node {cid}: {e}"))
                })?;
                let subtrees = node
                    .left
                    .into_iter()
                    .chain(node.entries.iter().filter_map(|e| e.right));
                next.extend(subtrees.filter(|c| seen_nodes.insert(*c)));
                for e in node.entries {
                    if seen_records.insert(e.value) {
                        records.push(e.value);
                    }
                }
            }
            sections.extend_from_slice(&car_sections(&level));
            frontier = next;
        }
        // Record blocks are read here too: a commit deletes the blocks of
        // the records it replaces, so reading them later, while the CAR is
        // sent, could miss some. The snapshot is whole before a byte goes.
        for page in records.chunks(SNAPSHOT_RECORD_PAGE) {
            let mut got = self.store().repo().get_blocks(did, page).await?;
            if let Some(m) = got.missing.first() {
                return Err(RepoWriteError::MissingBlock(*m));
            }
            let blocks: Vec<(Cid, Vec<u8>)> = page
                .iter()
                .filter_map(|c| got.blocks.remove(c).map(|b| (*c, b)))
                .collect();
            sections.extend_from_slice(&car_sections(&blocks));
        }
        Ok(Snapshot {
            sections,
            records: Vec::new(),
        })
    }

    /// A CAR proving the record `collection/rkey` (or its absence) in the
    /// current commit: the commit block (the root), the MST nodes covering
    /// the key, and the record block if present. Also returns the record's
    /// CID.
    pub async fn record_proof_car(
        &self,
        did: &str,
        collection: &str,
        rkey: &str,
    ) -> Result<(Vec<u8>, Option<Cid>)> {
        let root = self
            .store()
            .repo()
            .get_root(did)
            .await?
            .ok_or_else(|| RepoWriteError::RepoNotFound(did.to_owned()))?;
        let fetcher = Fetcher {
            store: self.store(),
            cache: self.cache(),
            did,
        };
        let mut view = BlockView::new(self.cache());
        let commit_cid = root.cid;
        let commit_bytes = fetcher
            .run(&mut view, |v| match v.get(&commit_cid) {
                Ok(Some(b)) => Ok(b),
                Ok(None) => Err(Halt::Missing(vec![commit_cid])),
                Err(e) => Err(Halt::Fail(RepoWriteError::internal(e))),
            })
            .await?;
        let commit = Commit::from_cbor(&commit_bytes).map_err(RepoWriteError::internal)?;
        let key = format!("{collection}/{rkey}");
        let data = commit.data;
        let (proof, record_cid) = fetcher
            .run(&mut view, |v| {
                let proof = covering_proof(v, data, &key)
                    .map_err(|e| mst_halt(e, RepoWriteError::internal))?;
                let mst = Mst::load(v, data).map_err(|e| mst_halt(e, RepoWriteError::internal))?;
                let cid = mst
                    .get(v, &key)
                    .map_err(|e| mst_halt(e, RepoWriteError::internal))?;
                Ok((proof, cid))
            })
            .await?;
        let record = match record_cid {
            Some(c) => Some(
                self.store()
                    .repo()
                    .get_block(did, &c)
                    .await?
                    .ok_or(RepoWriteError::MissingBlock(c))?,
            ),
            None => None,
        };
        let mut blocks: Vec<(&Cid, &[u8])> = vec![(&commit_cid, &commit_bytes[..])];
        blocks.extend(proof.iter().map(|(c, b)| (c, &b[..])));
        if let (Some(c), Some(b)) = (record_cid.as_ref(), record.as_ref()) {
            blocks.push((c, &b[..]));
        }
        Ok((write_car(&[commit_cid], blocks), record_cid))
    }
}
