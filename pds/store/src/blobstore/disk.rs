//! Blobs as files: `<root>/tmp/<random>` while uploading,
//! `<root>/blobs/<did>/<cid>` once permanent. The move is a `rename` within
//! one filesystem, after the file's contents are synced, so a crash leaves
//! either no blob or the whole blob.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use cid::Cid;
use tokio::io::AsyncRead;

use super::{
    check_did_for_key, random_key, spool_to_file, system_time_ms, BlobPage, BlobRead, BlobStore,
    StoredBlob, TempBlob,
};
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

/// The names of the entries of `dir`, sorted bytewise (empty if `dir` is
/// absent; names that are not UTF-8 are skipped: no blob key has them).
async fn sorted_names(dir: &Path) -> Result<Vec<String>> {
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut names = Vec::new();
    while let Some(entry) = rd.next_entry().await? {
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort_unstable();
    Ok(names)
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

    /// Order: by DID directory name, then by file name; the cursor is
    /// `<did>/<cid>` of the last entry looked at.
    async fn list_page(&self, cursor: Option<&str>, limit: u32) -> Result<BlobPage> {
        let (after_did, after_name) = match cursor {
            Some(c) => c
                .split_once('/')
                .ok_or_else(|| StoreError::InvalidInput(format!("bad blob cursor {c:?}")))?,
            None => ("", ""),
        };
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        let mut page = BlobPage::default();
        let mut looked = 0usize;
        let dids = sorted_names(&self.root.join("blobs")).await?;
        for did in dids.iter().filter(|d| d.as_str() >= after_did) {
            if check_did_for_key(did).is_err() {
                continue;
            }
            let dir = self.root.join("blobs").join(did);
            for name in sorted_names(&dir).await? {
                if did == after_did && name.as_str() <= after_name {
                    continue;
                }
                if looked == limit {
                    return Ok(page);
                }
                looked += 1;
                page.next = Some(format!("{did}/{name}"));
                let Ok(cid) = Cid::try_from(name.as_str()) else {
                    continue;
                };
                let meta = match tokio::fs::metadata(dir.join(&name)).await {
                    Ok(m) => m,
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                if !meta.is_file() {
                    continue;
                }
                page.blobs.push(StoredBlob {
                    did: did.clone(),
                    cid,
                    modified_at: meta.modified().map(system_time_ms).unwrap_or(0),
                });
            }
        }
        page.next = None;
        Ok(page)
    }
}
