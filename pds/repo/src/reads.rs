//! Repository reads for the sync endpoints: the repository as a CAR
//! stream (`com.atproto.sync.getRepo`) and record proofs
//! (`com.atproto.sync.getRecord`).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use atproto_repo::car::write_car;
use atproto_repo::mst::covering_proof;
use atproto_repo::{BlockStore, Commit, Mst};
use bytes::Bytes;
use cid::Cid;
use futures_core::Stream;
use pds_store::RepoSnapshot;
use tokio::sync::mpsc;

use crate::blocks::{mst_halt, BlockView, Fetcher, Halt};
use crate::error::{RepoWriteError, Result};
use crate::writer::RepoWriter;

/// Blocks per database page of a CAR export.
const PAGE: u32 = 500;

/// Pages read ahead of the client while it receives the CAR.
const READ_AHEAD: usize = 2;

/// How long the client may take to accept one page before the export ends
/// (releasing its snapshot and database connection).
const CLIENT_PAGE_TIMEOUT: Duration = Duration::from_secs(60);

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

/// A repository as a CAR v1 byte stream: the header (root: the commit the
/// repository was at when the stream was opened), then its blocks in CID
/// order, page by page.
///
/// The export is a snapshot of that commit: the root and every page are
/// read in one read transaction ([`RepoSnapshot`]), so commits landing
/// while the CAR is sent (which delete the blocks they replace) change
/// nothing in it, and memory stays at a few pages whatever the size of the
/// repository. A full export sends every block of the repository; an
/// export `since` a rev sends the blocks written by later revs. A task
/// reads up to [`READ_AHEAD`] pages ahead of the client; dropping the
/// stream stops it and ends the read transaction, and so does a client
/// that takes longer than [`CLIENT_PAGE_TIMEOUT`] to accept a page (the
/// stream then ends with an error, so the response is cut off rather than
/// looking complete).
pub struct RepoCarStream {
    did: String,
    /// The CAR header, until sent.
    header: Option<Bytes>,
    pages: mpsc::Receiver<Result<Bytes>>,
    /// Set by the reading task when it gave up on a slow client.
    abandoned: Arc<AtomicBool>,
}

impl std::fmt::Debug for RepoCarStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoCarStream")
            .field("did", &self.did)
            .finish_non_exhaustive()
    }
}

impl Stream for RepoCarStream {
    type Item = Result<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(header) = this.header.take() {
            return Poll::Ready(Some(Ok(header)));
        }
        match this.pages.poll_recv(cx) {
            // Fail rather than end: an early end would look complete.
            Poll::Ready(None) if this.abandoned.swap(false, Ordering::SeqCst) => {
                Poll::Ready(Some(Err(RepoWriteError::Internal(
                    "export abandoned: the client stopped reading".into(),
                ))))
            }
            other => other,
        }
    }
}

/// Reads the snapshot's blocks page by page into `out` until the last
/// page, an error (sent as the last item) or the receiver is dropped.
/// Page size and client timeout of an export.
struct Paging {
    page: u32,
    client_timeout: Duration,
}

async fn send_pages(
    mut snapshot: RepoSnapshot,
    since: Option<String>,
    paging: Paging,
    out: mpsc::Sender<Result<Bytes>>,
    abandoned: Arc<AtomicBool>,
) {
    let mut after: Option<Cid> = None;
    loop {
        let page = snapshot
            .list_blocks(since.as_deref(), after.as_ref(), paging.page)
            .await;
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                let _ = out.send(Err(e.into())).await;
                return;
            }
        };
        let Some(last) = page.last().map(|(c, _)| *c) else {
            return;
        };
        let more = page.len() >= usize::try_from(paging.page).unwrap_or(usize::MAX);
        let sent = tokio::time::timeout(
            paging.client_timeout,
            out.send(Ok(Bytes::from(car_sections(&page)))),
        )
        .await;
        match sent {
            Ok(Ok(())) => {}
            // The client went away.
            Ok(Err(_)) => return,
            // The client stopped reading.
            Err(_) => {
                abandoned.store(true, Ordering::SeqCst);
                return;
            }
        }
        if !more {
            return;
        }
        after = Some(last);
    }
}

impl RepoWriter {
    /// The repository of `did` as a CAR stream rooted at its current commit
    /// (see [`RepoCarStream`]): every block, or with `since` (a rev) only
    /// the blocks written by later commits.
    pub async fn get_repo_car(&self, did: &str, since: Option<&str>) -> Result<RepoCarStream> {
        self.open_car(did, since, PAGE, CLIENT_PAGE_TIMEOUT).await
    }

    /// [`RepoWriter::get_repo_car`] with `page` blocks per query and
    /// `client_timeout` per page.
    async fn open_car(
        &self,
        did: &str,
        since: Option<&str>,
        page: u32,
        client_timeout: Duration,
    ) -> Result<RepoCarStream> {
        let snapshot = self
            .store()
            .repo()
            .snapshot(did)
            .await?
            .ok_or_else(|| RepoWriteError::RepoNotFound(did.to_owned()))?;
        let header = Bytes::from(write_car(&[snapshot.root().cid], std::iter::empty()));
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let abandoned = Arc::new(AtomicBool::new(false));
        tokio::spawn(send_pages(
            snapshot,
            since.map(str::to_owned),
            Paging {
                page,
                client_timeout,
            },
            tx,
            abandoned.clone(),
        ));
        Ok(RepoCarStream {
            did: did.to_owned(),
            header: Some(header),
            pages: rx,
            abandoned,
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

#[cfg(test)]
mod tests {
    use super::*;
    use pds_store::{NewAccount, RepoCommitData};
    use pds_testkit::{Backend, TestDb};

    /// An export whose client reads nothing fills its read-ahead, then
    /// gives up after the client timeout: it releases its snapshot, and the
    /// stream ends with an error after the pages it had queued.
    #[tokio::test]
    async fn abandoned_export_fails_and_releases_its_snapshot() {
        // Two connections: one snapshot slot.
        let db = TestDb::open(Backend::Sqlite, |c| c.max_connections = 2).await;
        let did = "did:plc:abandoned";
        db.store
            .accounts()
            .create(NewAccount::new(did, "abandoned.test"), None)
            .await
            .unwrap();
        let blocks: Vec<(Cid, Vec<u8>)> = (0..6u8)
            .map(|i| {
                let bytes = vec![0x82, 0x01, i];
                (atproto_data::cid_for_dag_cbor(&bytes), bytes)
            })
            .collect();
        let mut data = RepoCommitData::new(blocks[0].0, "rev000000001");
        data.put_blocks = blocks;
        db.store
            .repo()
            .begin_write(did)
            .await
            .unwrap()
            .commit(data)
            .await
            .unwrap();
        let writer = RepoWriter::new(db.store.clone()).unwrap();
        let mut stream = writer
            .open_car(did, None, 1, Duration::from_millis(50))
            .await
            .unwrap();
        // Waits for the only slot: the export's task must have given up.
        let later = db.store.repo().snapshot(did).await.unwrap().unwrap();
        assert_eq!(later.root().cid, stream_root(&mut stream).await);
        let mut pages = 0;
        let last = loop {
            match std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
                Some(Ok(_)) => pages += 1,
                other => break other,
            }
        };
        assert_eq!(pages, READ_AHEAD, "the queued pages, then the error");
        assert!(matches!(last, Some(Err(RepoWriteError::Internal(_)))));
        let end = std::future::poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await;
        assert!(end.is_none());
    }

    /// The header's root, read from the stream's first item.
    async fn stream_root(stream: &mut RepoCarStream) -> Cid {
        let header = std::future::poll_fn(|cx| Pin::new(&mut *stream).poll_next(cx))
            .await
            .unwrap()
            .unwrap();
        let (roots, _) = atproto_repo::car::load_car(header).unwrap();
        roots[0]
    }
}
