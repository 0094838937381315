//! Blobs as files: `<root>/tmp/<random>` while uploading,
//! `<root>/blobs/<did>/<cid>` once permanent. The move is a `rename` within
//! one filesystem, after the file's contents are synced, so a crash leaves
//! either no blob or the whole blob.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cid::Cid;
use tokio::io::AsyncRead;

use super::{check_did_for_key, random_key, spool_to_file, BlobRead, BlobStore, TempBlob};
use crate::error::{Result, StoreError};

/// Blob store on the local filesystem.
#[derive(Clone, Debug)]
pub struct DiskBlobStore {
    root: PathBuf,
}

impl DiskBlobStore {
    /// Uses (creating) `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<DiskBlobStore> {
        let root = root.into();
        tokio::fs::create_dir_all(root.join("tmp")).await?;
        tokio::fs::create_dir_all(root.join("blobs")).await?;
        Ok(DiskBlobStore { root })
    }

    fn temp_path(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::InvalidInput(format!("bad temp key {key:?}")));
        }
        Ok(self.root.join("tmp").join(key))
    }

    fn blob_dir(&self, did: &str) -> Result<PathBuf> {
        check_did_for_key(did)?;
        Ok(self.root.join("blobs").join(did))
    }

    fn blob_path(&self, did: &str, cid: &Cid) -> Result<PathBuf> {
        Ok(self.blob_dir(did)?.join(cid.to_string()))
    }

    /// Number of files in the temporary area (leftovers of failed uploads).
    pub async fn temp_count(&self) -> Result<usize> {
        let mut n = 0;
        let mut rd = tokio::fs::read_dir(self.root.join("tmp")).await?;
        while rd.next_entry().await?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

async fn sync_dir(dir: &Path) -> Result<()> {
    let d = tokio::fs::File::open(dir).await?;
    d.sync_all().await?;
    Ok(())
}

#[async_trait]
impl BlobStore for DiskBlobStore {
    async fn put_temp(
        &self,
        reader: &mut (dyn AsyncRead + Unpin + Send),
        max_size: Option<u64>,
    ) -> Result<TempBlob> {
        let key = random_key();
        let path = self.temp_path(&key)?;
        let (cid, size) = spool_to_file(reader, &path, max_size).await?;
        Ok(TempBlob { key, cid, size })
    }

    async fn make_permanent(&self, temp: &TempBlob, did: &str) -> Result<()> {
        let from = self.temp_path(&temp.key)?;
        let dir = self.blob_dir(did)?;
        tokio::fs::create_dir_all(&dir).await?;
        let to = dir.join(temp.cid.to_string());
        tokio::fs::rename(&from, &to).await?;
        sync_dir(&dir).await
    }

    async fn discard_temp(&self, temp: &TempBlob) -> Result<()> {
        match tokio::fs::remove_file(self.temp_path(&temp.key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, did: &str, cid: &Cid) -> Result<Option<BlobRead>> {
        match tokio::fs::File::open(self.blob_path(did, cid)?).await {
            Ok(f) => {
                let size = f.metadata().await?.len();
                Ok(Some(BlobRead {
                    size,
                    reader: Box::pin(f),
                }))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, did: &str, cid: &Cid) -> Result<()> {
        match tokio::fs::remove_file(self.blob_path(did, cid)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn exists(&self, did: &str, cid: &Cid) -> Result<bool> {
        Ok(tokio::fs::try_exists(self.blob_path(did, cid)?).await?)
    }

    async fn purge_temp(&self, age: std::time::Duration) -> Result<u64> {
        super::purge_dir_older_than(&self.root.join("tmp"), age).await
    }
}
