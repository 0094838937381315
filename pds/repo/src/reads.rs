//! Repository reads for the sync endpoints: the repository as a CAR
//! stream (`com.atproto.sync.getRepo`) and record proofs
//! (`com.atproto.sync.getRecord`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use atproto_repo::car::write_car;
use atproto_repo::mst::covering_proof;
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

/// A repository as a CAR v1 byte stream: the header (root: the commit the
/// repository was at when the stream was opened), then its blocks in
/// pages, in CID order.
///
/// The blocks are read page by page outside any transaction: a commit
/// landing during the export can garbage-collect blocks of the exported
/// commit that are not yet sent, which leaves the CAR incomplete (a client
/// then fetches again), never inconsistent.
pub struct RepoCarStream {
    store: Store,
    did: String,
    since: Option<String>,
    header: Option<Bytes>,
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
    fn page(&self, after: Option<Cid>) -> PageFuture {
        let (store, did, since) = (self.store.clone(), self.did.clone(), self.since.clone());
        Box::pin(async move {
            Ok(store
                .repo()
                .list_blocks(&did, since.as_deref(), after.as_ref(), PAGE)
                .await?)
        })
    }
}

impl Stream for RepoCarStream {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(h) = this.header.take() {
            this.pending = Some(this.page(None));
            return Poll::Ready(Some(Ok(h)));
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
                let full = u32::try_from(page.len()).unwrap_or(u32::MAX) >= PAGE;
                let Some(last) = page.last().map(|(c, _)| *c) else {
                    this.pending = None;
                    return Poll::Ready(None);
                };
                this.pending = full.then(|| this.page(Some(last)));
                Poll::Ready(Some(Ok(Bytes::from(car_sections(&page)))))
            }
        }
    }
}

impl RepoWriter {
    /// The repository of `did` as a CAR stream rooted at its current commit:
    /// every block, or with `since` (a rev) only the blocks written by
    /// later commits.
    pub async fn get_repo_car(&self, did: &str, since: Option<&str>) -> Result<RepoCarStream> {
        let root = self
            .store()
            .repo()
            .get_root(did)
            .await?
            .ok_or_else(|| RepoWriteError::RepoNotFound(did.to_owned()))?;
        let header = write_car(&[root.cid], std::iter::empty());
        Ok(RepoCarStream {
            store: self.store().clone(),
            did: did.to_owned(),
            since: since.map(str::to_owned),
            header: Some(Bytes::from(header)),
            pending: None,
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
