//! Blob stores: the same behaviour checks against the disk store and the S3
//! store, the latter talking to a real S3-compatible server (moto's server
//! mode, `pip install 'moto[server]'`) started on loopback by the test.

mod common;

use pds_store::blobstore::{blob_cid, BlobStore, DiskBlobStore};
use pds_store::StoreError;
use tokio::io::AsyncReadExt;

async fn read_all(store: &dyn BlobStore, did: &str, cid: &cid::Cid) -> Option<Vec<u8>> {
    let mut r = store.get(did, cid).await.unwrap()?;
    let mut out = Vec::new();
    r.reader.read_to_end(&mut out).await.unwrap();
    assert_eq!(r.size, out.len() as u64);
    Some(out)
}

/// Every permanent blob, paging `limit` at a time.
async fn list_all(store: &dyn BlobStore, limit: u32) -> Vec<(String, cid::Cid)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let now = pds_store::now_ms();
    for _ in 0..1000 {
        let page = store.list_page(cursor.as_deref(), limit).await.unwrap();
        assert!(page.blobs.len() <= limit as usize);
        for b in page.blobs {
            assert!(
                (now - 3_600_000..=now + 60_000).contains(&b.modified_at),
                "modification time in ms: {}",
                b.modified_at
            );
            out.push((b.did, b.cid));
        }
        match page.next {
            Some(n) => cursor = Some(n),
            None => return out,
        }
    }
    panic!("listing does not end");
}

/// The behaviour every blob store must have.
async fn exercise(store: &dyn BlobStore) {
    let did = "did:plc:blobber";
    // Small blob: temp, then permanent.
    let mut body: &[u8] = b"hello blob";
    let temp = store.put_temp(&mut body, None).await.unwrap();
    assert_eq!(temp.cid, blob_cid(b"hello blob").unwrap());
    assert_eq!(temp.size, 10);
    assert!(
        !store.exists(did, &temp.cid).await.unwrap(),
        "not visible before permanent"
    );
    store.make_permanent(&temp, did).await.unwrap();
    assert!(store.exists(did, &temp.cid).await.unwrap());
    assert_eq!(
        read_all(store, did, &temp.cid).await.unwrap(),
        b"hello blob"
    );
    // Per-account keys.
    assert!(!store
        .exists("did:plc:someone-else", &temp.cid)
        .await
        .unwrap());

    // 8 MiB streamed from a generator: CID computed while streaming.
    let size = 8u64 * 1024 * 1024;
    let mut gen = tokio::io::repeat(7).take(size);
    let big = store.put_temp(&mut gen, Some(size)).await.unwrap();
    assert_eq!(big.size, size);
    let expected = blob_cid(&vec![7u8; usize::try_from(size).unwrap()]).unwrap();
    assert_eq!(big.cid, expected);
    store.make_permanent(&big, did).await.unwrap();
    let back = read_all(store, did, &big.cid).await.unwrap();
    assert_eq!(blob_cid(&back).unwrap(), expected);

    // Listing: every permanent blob once, in pages of any size; temporary
    // objects are not listed.
    let mut body: &[u8] = b"another account's blob";
    let other = store.put_temp(&mut body, None).await.unwrap();
    store
        .make_permanent(&other, "did:web:other.example")
        .await
        .unwrap();
    let mut body: &[u8] = b"still uploading";
    let pending = store.put_temp(&mut body, None).await.unwrap();
    let mut expected = vec![
        (did.to_owned(), temp.cid),
        (did.to_owned(), big.cid),
        ("did:web:other.example".to_owned(), other.cid),
    ];
    expected.sort();
    for limit in [1, 2, 1000] {
        let mut got = list_all(store, limit).await;
        got.sort();
        assert_eq!(got, expected, "page size {limit}");
    }
    store.discard_temp(&pending).await.unwrap();
    store
        .delete("did:web:other.example", &other.cid)
        .await
        .unwrap();

    // Over the limit: rejected, nothing kept.
    let mut gen = tokio::io::repeat(1).take(300_000);
    let r = store.put_temp(&mut gen, Some(100_000)).await;
    assert!(
        matches!(r, Err(StoreError::BlobTooLarge { limit: 100_000 })),
        "{r:?}"
    );

    // Discarded temp objects never appear.
    let mut body: &[u8] = b"discard me";
    let t = store.put_temp(&mut body, None).await.unwrap();
    store.discard_temp(&t).await.unwrap();
    store.discard_temp(&t).await.unwrap();
    assert!(store.make_permanent(&t, did).await.is_err());
    assert!(!store.exists(did, &t.cid).await.unwrap());

    // Temporary objects abandoned by a crash are purged by age.
    let mut body: &[u8] = b"abandoned upload";
    let t = store.put_temp(&mut body, None).await.unwrap();
    assert_eq!(
        store
            .purge_temp(std::time::Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store.purge_temp(std::time::Duration::ZERO).await.unwrap(),
        1
    );
    assert!(store.make_permanent(&t, did).await.is_err());

    // Delete is idempotent; absent blobs read as None.
    store.delete(did, &temp.cid).await.unwrap();
    store.delete(did, &temp.cid).await.unwrap();
    assert!(!store.exists(did, &temp.cid).await.unwrap());
    assert!(store.get(did, &temp.cid).await.unwrap().is_none());
    // Keys cannot be steered by a hostile DID.
    assert!(matches!(
        store.exists("did:plc:../../x", &temp.cid).await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_blob_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = DiskBlobStore::open(dir.path()).await.unwrap();
    exercise(&store).await;
    assert_eq!(store.temp_count().await.unwrap(), 0, "no leftovers in tmp/");
}

#[cfg(feature = "s3")]
mod s3 {
    use super::*;
    use pds_store::blobstore::{S3BlobStore, S3Config};
    use pds_store::now_ms;
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    /// A moto S3 server on a free loopback port, killed on drop.
    struct Moto {
        child: Child,
        port: u16,
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn start_moto() -> Moto {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the S3 blob store tests need moto's S3 server ({bin}: {e}); \
                     install it with `pip install 'moto[server]'` or set MOTO_SERVER"
                )
            });
        let moto = Moto { child, port };
        let up = common::wait_until(Duration::from_secs(60), || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        assert!(up, "moto_server did not start on port {port}");
        moto
    }

    async fn s3_store(moto: &Moto, dir: &std::path::Path, bucket: &str) -> S3BlobStore {
        S3BlobStore::new(S3Config {
            bucket: bucket.into(),
            region: "us-east-1".into(),
            endpoint: Some(format!("http://127.0.0.1:{}", moto.port)),
            force_path_style: true,
            access_key_id: "test".into(),
            secret_access_key: "test".into(),
            temp_dir: dir.join("spool"),
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_blob_store_against_moto() {
        let moto = start_moto().await;
        let dir = tempfile::tempdir().unwrap();
        let store = s3_store(&moto, dir.path(), "pds-blobs").await;
        store.create_bucket().await.unwrap();
        exercise(&store).await;
        let leftovers = std::fs::read_dir(dir.path().join("spool")).unwrap().count();
        assert_eq!(leftovers, 0, "spool files are removed");

        // A missing bucket is an error, not "absent" (GET tells NoSuchBucket
        // from NoSuchKey; HEAD responses carry no error code).
        let wrong = s3_store(&moto, dir.path(), "no-such-bucket").await;
        let r = wrong.get("did:plc:x", &blob_cid(b"x").unwrap()).await;
        assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_upload_and_orphan_cleanup_with_database() {
        let moto = start_moto().await;
        let db = common::TestDb::sqlite().await;
        let store = s3_store(&moto, db.dir(), "pds-orphans").await;
        store.create_bucket().await.unwrap();
        common::make_account(&db.store, "did:plc:s3").await;
        let mut body: &[u8] = b"an image";
        let meta = db
            .store
            .blobs()
            .upload(&store, "did:plc:s3", "image/png", &mut body, Some(1 << 20))
            .await
            .unwrap();
        assert!(store.exists("did:plc:s3", &meta.cid).await.unwrap());
        let later = now_ms() + 1000;
        assert!(db
            .store
            .blobs()
            .delete_orphan(&store, "did:plc:s3", &meta.cid, later)
            .await
            .unwrap());
        assert!(!store.exists("did:plc:s3", &meta.cid).await.unwrap());
        assert!(db
            .store
            .blobs()
            .get_meta("did:plc:s3", &meta.cid)
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn s3_unrecorded_objects_are_swept() {
        let moto = start_moto().await;
        let db = common::TestDb::sqlite().await;
        let store = s3_store(&moto, db.dir(), "pds-sweep").await;
        store.create_bucket().await.unwrap();
        common::unrecorded_objects_are_swept(&db.store, &store).await;
    }
}
