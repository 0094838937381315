//! Blobs in an S3-compatible bucket, under `blocks/<did>/<cid>` (the
//! reference PDS's layout).
//!
//! Uploads are spooled to a local temporary file while the CID and size are
//! computed (bounded memory), then [`BlobStore::make_permanent`] streams the
//! file to its final key with one `PutObject`: S3 makes an object visible
//! whole or not at all, so there is no half-written blob, and nothing needs
//! renaming inside the bucket.

use std::io::ErrorKind;
use std::path::PathBuf;

use async_trait::async_trait;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use cid::Cid;
use tokio::io::AsyncRead;

use super::{
    check_did_for_key, random_key, spool_to_file, BlobPage, BlobRead, BlobStore, StoredBlob,
    TempBlob,
};
use crate::error::{Result, StoreError};

/// Connection settings of an S3 blob store.
#[derive(Clone, Debug)]
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    /// Custom endpoint (MinIO, R2, a local test server...); AWS when `None`.
    pub endpoint: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`), needed by most non-AWS servers.
    pub force_path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Local directory for spooling uploads.
    pub temp_dir: PathBuf,
}

/// Blob store on S3.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    temp_dir: PathBuf,
}

fn backend_err<E: std::error::Error>(what: &str, e: E) -> StoreError {
    StoreError::Backend(format!("S3 {what}: {}", DisplayErrorContext(e)))
}

impl S3BlobStore {
    /// Builds the client (rustls with ring; plain HTTP allowed for local endpoints).
    pub async fn new(config: S3Config) -> Result<S3BlobStore> {
        tokio::fs::create_dir_all(&config.temp_dir).await?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let creds = Credentials::new(
            config.access_key_id,
            config.secret_access_key,
            None,
            None,
            "pds-config",
        );
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region))
            .credentials_provider(creds)
            .http_client(http)
            .force_path_style(config.force_path_style)
            // Many S3-compatible servers reject the newer default checksums.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        Ok(S3BlobStore {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket,
            temp_dir: config.temp_dir,
        })
    }

    /// Creates the bucket (development and test setups).
    pub async fn create_bucket(&self) -> Result<()> {
        self.client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| backend_err("CreateBucket", e))?;
        Ok(())
    }

    fn temp_path(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::InvalidInput(format!("bad temp key {key:?}")));
        }
        Ok(self.temp_dir.join(key))
    }

    fn object_key(did: &str, cid: &Cid) -> Result<String> {
        check_did_for_key(did)?;
        Ok(format!("{KEY_PREFIX}{did}/{cid}"))
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
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
        let path = self.temp_path(&temp.key)?;
        let key = Self::object_key(did, &temp.cid)?;
        let body = ByteStream::from_path(&path)
            .await
            .map_err(|e| backend_err("reading spooled upload", e))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(i64::try_from(temp.size).unwrap_or(i64::MAX))
            .body(body)
            .send()
            .await
            .map_err(|e| backend_err("PutObject", e))?;
        self.discard_temp(temp).await
    }

    async fn discard_temp(&self, temp: &TempBlob) -> Result<()> {
        match tokio::fs::remove_file(self.temp_path(&temp.key)?).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn get(&self, did: &str, cid: &Cid) -> Result<Option<BlobRead>> {
        let key = Self::object_key(did, cid)?;
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let size = out
                    .content_length()
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0);
                Ok(Some(BlobRead {
                    size,
                    reader: Box::pin(out.body.into_async_read()),
                }))
            }
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    Ok(None)
                } else {
                    Err(backend_err("GetObject", e))
                }
            }
        }
    }

    async fn delete(&self, did: &str, cid: &Cid) -> Result<()> {
        let key = Self::object_key(did, cid)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| backend_err("DeleteObject", e))?;
        Ok(())
    }

    async fn exists(&self, did: &str, cid: &Cid) -> Result<bool> {
        let key = Self::object_key(did, cid)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                    Ok(false)
                } else {
                    Err(backend_err("HeadObject", e))
                }
            }
        }
    }

    async fn purge_temp(&self, age: std::time::Duration) -> Result<u64> {
        super::purge_dir_older_than(&self.temp_dir, age).await
    }

    /// `ListObjectsV2` under `blocks/`, in key order; the cursor is the
    /// last key of the page (`StartAfter`).
    async fn list_page(&self, cursor: Option<&str>, limit: u32) -> Result<BlobPage> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(KEY_PREFIX)
            .set_start_after(cursor.map(str::to_owned))
            .max_keys(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .send()
            .await
            .map_err(|e| backend_err("ListObjectsV2", e))?;
        let mut page = BlobPage::default();
        let mut last = None;
        for obj in out.contents() {
            let Some(key) = obj.key() else { continue };
            last = Some(key.to_owned());
            let Some((did, cid)) = key
                .strip_prefix(KEY_PREFIX)
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            if check_did_for_key(did).is_err() {
                continue;
            }
            let Ok(cid) = Cid::try_from(cid) else {
                continue;
            };
            page.blobs.push(StoredBlob {
                did: did.to_owned(),
                cid,
                modified_at: obj
                    .last_modified()
                    .and_then(|t| t.to_millis().ok())
                    .unwrap_or(0),
            });
        }
        if out.is_truncated() == Some(true) {
            page.next = last;
        }
        Ok(page)
    }
}

/// Prefix of every blob key.
const KEY_PREFIX: &str = "blocks/";
