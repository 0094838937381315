//! Blob byte stores: where uploaded blobs live, keyed by `(did, cid)`.
//!
//! Upload is two-phase: [`BlobStore::put_temp`] streams the bytes into a
//! temporary object while computing the CID (CIDv1, raw codec 0x55,
//! sha2-256) and size, never holding the whole blob in memory; then
//! [`BlobStore::make_permanent`] moves it into place atomically.

mod disk;
#[cfg(feature = "s3")]
mod s3;

pub use disk::DiskBlobStore;
#[cfg(feature = "s3")]
pub use s3::{S3BlobStore, S3Config};

use std::pin::Pin;

use async_trait::async_trait;
use cid::Cid;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::{Result, StoreError};

/// Multicodec of raw bytes.
pub const RAW_CODEC: u64 = 0x55;

/// A blob streamed into the temporary area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TempBlob {
    /// Backend-specific key of the temporary object.
    pub key: String,
    pub cid: Cid,
    pub size: u64,
}

/// A stored blob opened for reading.
pub struct BlobRead {
    pub size: u64,
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A permanent blob object, as listed by [`BlobStore::list_page`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlob {
    pub did: String,
    pub cid: Cid,
    /// Last modification (upload) time, milliseconds since the epoch.
    pub modified_at: i64,
}

/// One page of [`BlobStore::list_page`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlobPage {
    pub blobs: Vec<StoredBlob>,
    /// Cursor of the next page (opaque); `None` when the listing is done.
    pub next: Option<String>,
}

/// Storage of blob bytes.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Streams `reader` into a temporary object. Fails with
    /// [`StoreError::BlobTooLarge`] (and keeps nothing) past `max_size` bytes.
    async fn put_temp(
        &self,
        reader: &mut (dyn AsyncRead + Unpin + Send),
        max_size: Option<u64>,
    ) -> Result<TempBlob>;
    /// Moves a temporary object to its permanent place under `did`.
    async fn make_permanent(&self, temp: &TempBlob, did: &str) -> Result<()>;
    /// Drops a temporary object that will not be made permanent.
    async fn discard_temp(&self, temp: &TempBlob) -> Result<()>;
    /// Opens a stored blob; `None` if absent.
    async fn get(&self, did: &str, cid: &Cid) -> Result<Option<BlobRead>>;
    /// Deletes a stored blob; deleting an absent blob is not an error.
    async fn delete(&self, did: &str, cid: &Cid) -> Result<()>;
    /// Whether the blob is stored.
    async fn exists(&self, did: &str, cid: &Cid) -> Result<bool>;
    /// Removes temporary objects older than `age` (uploads interrupted by a
    /// crash). Returns how many were removed.
    async fn purge_temp(&self, age: std::time::Duration) -> Result<u64>;
    /// Lists the permanent blobs, at most `limit` per page, in a stable
    /// backend-defined order, starting after `cursor` (a previous page's
    /// `next`). Objects whose key is not a blob key (`<did>/<cid>`) are
    /// skipped. A page may be short, even empty, while `next` is `Some`.
    async fn list_page(&self, cursor: Option<&str>, limit: u32) -> Result<BlobPage>;
}

/// Milliseconds since the epoch of a file or object time.
pub(crate) fn system_time_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Incremental CID and size computation for a streamed blob.
#[derive(Default)]
pub struct CidHasher {
    hasher: Sha256,
    size: u64,
}

impl CidHasher {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The raw-codec CIDv1 of everything fed.
    pub fn finish(self) -> Result<(Cid, u64)> {
        let digest = self.hasher.finalize();
        let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest[..])
            .map_err(|e| StoreError::Backend(format!("multihash: {e}")))?;
        Ok((Cid::new_v1(RAW_CODEC, mh), self.size))
    }
}

/// The CID of a whole in-memory blob (tests, small payloads).
pub fn blob_cid(bytes: &[u8]) -> Result<Cid> {
    let mut h = CidHasher::default();
    h.update(bytes);
    Ok(h.finish()?.0)
}

/// Rejects DIDs that could escape a directory or key prefix.
pub(crate) fn check_did_for_key(did: &str) -> Result<()> {
    let ok = did.starts_with("did:")
        && did.len() <= 2048
        && did
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-' | b'%'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!("not a DID: {did:?}")))
    }
}

/// A random hex name for a temporary object.
pub(crate) fn random_key() -> String {
    let mut raw = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Streams `reader` into a new file at `path`, computing the CID and size on
/// the way and syncing the file. Writes go to the file 256 KiB at a time
/// (each write of a tokio file is a hand-off to the blocking pool). On any
/// error (including exceeding `max_size`) the file is removed.
pub(crate) async fn spool_to_file(
    reader: &mut (dyn AsyncRead + Unpin + Send),
    path: &std::path::Path,
    max_size: Option<u64>,
) -> Result<(Cid, u64)> {
    let mut file =
        tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::create(path).await?);
    let mut hasher = CidHasher::default();
    let mut buf = vec![0u8; 64 * 1024];
    let result: Result<()> = async {
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let chunk = buf.get(..n).unwrap_or_default();
            hasher.update(chunk);
            if let Some(limit) = max_size {
                if hasher.size() > limit {
                    return Err(StoreError::BlobTooLarge { limit });
                }
            }
            file.write_all(chunk).await?;
        }
        file.flush().await?;
        file.get_ref().sync_all().await?;
        Ok(())
    }
    .await;
    drop(file);
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(path).await;
        return Err(e);
    }
    hasher.finish()
}

/// Removes files in `dir` last modified more than `age` ago.
pub(crate) async fn purge_dir_older_than(
    dir: &std::path::Path,
    age: std::time::Duration,
) -> Result<u64> {
    let mut n = 0;
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let now = std::time::SystemTime::now();
    while let Some(entry) = rd.next_entry().await? {
        let meta = entry.metadata().await?;
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|elapsed| elapsed >= age);
        if meta.is_file() && old {
            match tokio::fs::remove_file(entry.path()).await {
                Ok(()) => n += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(n)
}
