//! `com.atproto.sync`: getLatestCommit, getRepoStatus, getRepo (streamed
//! CAR), getRecord (proof CAR), getBlocks, listRepos, the deprecated
//! getHead and getCheckout, getBlob (streamed, with headers that keep
//! browsers from rendering it), listBlobs (blobs referenced by records,
//! optionally since a rev).
//!
//! Repo availability as the reference's `assertRepoAvailability`: an
//! unknown (or deleted) account is 400 `RepoNotFound`, a taken-down one
//! `RepoTakendown`, a deactivated one `RepoDeactivated` (getBlob and
//! listBlobs let the account itself through).

use atproto_types::data::Cid;
use atproto_types::lexicons::com::atproto::sync::{
    get_blob, get_blocks, get_checkout, get_head, get_latest_commit, get_record, get_repo,
    get_repo_status, list_blobs, list_repos, subscribe_repos, ComAtprotoSync,
};
use atproto_types::repo::car::write_car;
use atproto_types::xrpc::http::header::{self, HeaderValue};
use atproto_types::xrpc::http::StatusCode;
use atproto_types::xrpc::{
    BinaryOutput, NoAuth, NotImplemented, Response, WebSocketUpgrade, XrpcError, XrpcRequest,
};
use axum::body::Body;
use pds_repo::RepoWriteError;
use pds_store::{Account, AccountStatus};

use crate::api::blobs;
use crate::auth::OptionalAccess;
use crate::error::ApiError;
use crate::state::AppState;

/// Bytes per read when streaming a blob.
const BLOB_READ_CHUNK: usize = 256 * 1024;

fn bad<E>(name: &'static str, message: String) -> XrpcError<E> {
    XrpcError::new(StatusCode::BAD_REQUEST, name, Some(message))
}

fn internal<E>(what: &str, e: impl std::fmt::Display) -> XrpcError<E> {
    ApiError::Internal(format!("{what}: {e}")).into()
}

/// The account of `did` if its repository may be served.
async fn available<E>(state: &AppState, did: &str) -> Result<Account, XrpcError<E>> {
    let account = state
        .store
        .accounts()
        .get(did)
        .await
        .map_err(ApiError::from)?
        .filter(|a| a.status != AccountStatus::Deleted)
        .ok_or_else(|| {
            bad(
                "RepoNotFound",
                format!("Could not find repo for DID: {did}"),
            )
        })?;
    match account.status {
        AccountStatus::Takendown => Err(bad(
            "RepoTakendown",
            format!("Repo has been takendown: {did}"),
        )),
        AccountStatus::Deactivated => Err(bad(
            "RepoDeactivated",
            format!("Repo has been deactivated: {did}"),
        )),
        _ => Ok(account),
    }
}

/// [`available`], except that the account itself may read its own repo in
/// any state but deleted (the reference's `isUserOrAdmin` bypass).
async fn available_to<E>(
    state: &AppState,
    did: &str,
    viewer: &OptionalAccess,
) -> Result<Account, XrpcError<E>> {
    if viewer.0.as_ref().is_some_and(|t| t.did == did) {
        return state
            .store
            .accounts()
            .get(did)
            .await
            .map_err(ApiError::from)?
            .filter(|a| a.status != AccountStatus::Deleted)
            .ok_or_else(|| {
                bad(
                    "RepoNotFound",
                    format!("Could not find repo for DID: {did}"),
                )
            });
    }
    available(state, did).await
}

fn repo_error<E>(e: RepoWriteError) -> XrpcError<E> {
    match e {
        RepoWriteError::RepoNotFound(did) => bad(
            "RepoNotFound",
            format!("Could not find repo for DID: {did}"),
        ),
        other => ApiError::from(other).into(),
    }
}

fn status_name(status: AccountStatus) -> (bool, Option<&'static str>) {
    match status {
        AccountStatus::Active => (true, None),
        AccountStatus::Deactivated => (false, Some("deactivated")),
        AccountStatus::Takendown => (false, Some("takendown")),
        AccountStatus::Deleted => (false, Some("deleted")),
    }
}

impl ComAtprotoSync for AppState {
    type GetBlobAuth = OptionalAccess;
    type GetBlocksAuth = NoAuth;
    type GetCheckoutAuth = NoAuth;
    type GetHeadAuth = NoAuth;
    type GetHostStatusAuth = NotImplemented;
    type GetLatestCommitAuth = NoAuth;
    type GetRecordAuth = NoAuth;
    type GetRepoAuth = NoAuth;
    type GetRepoStatusAuth = NoAuth;
    type ListBlobsAuth = OptionalAccess;
    type ListHostsAuth = NotImplemented;
    type ListReposAuth = NoAuth;
    type ListReposByCollectionAuth = NotImplemented;
    type NotifyOfUpdateAuth = NotImplemented;
    type RequestCrawlAuth = NotImplemented;
    type SubscribeReposAuth = NoAuth;

    async fn subscribe_repos(
        &self,
        _: NoAuth,
        req: XrpcRequest<subscribe_repos::Params, WebSocketUpgrade>,
    ) -> Result<Response, XrpcError<subscribe_repos::Error>> {
        Ok(self.firehose.subscribe_repos(req.input, req.params.cursor))
    }

    async fn get_latest_commit(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_latest_commit::Params, ()>,
    ) -> Result<get_latest_commit::Output, XrpcError<get_latest_commit::Error>> {
        let did = req.params.did.as_str();
        available(self, did).await?;
        let root = self
            .store
            .repo()
            .get_root(did)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                bad(
                    "RepoNotFound",
                    format!("Could not find root for DID: {did}"),
                )
            })?;
        Ok(get_latest_commit::Output {
            cid: root
                .cid
                .to_string()
                .parse()
                .map_err(|e| internal("root cid", e))?,
            rev: root.rev.parse().map_err(|e| internal("root rev", e))?,
            extra_data: Default::default(),
        })
    }

    async fn get_repo_status(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_repo_status::Params, ()>,
    ) -> Result<get_repo_status::Output, XrpcError<get_repo_status::Error>> {
        let did = req.params.did.as_str();
        let account = self
            .store
            .accounts()
            .get(did)
            .await
            .map_err(ApiError::from)?
            .filter(|a| a.status != AccountStatus::Deleted)
            .ok_or_else(|| {
                bad(
                    "RepoNotFound",
                    format!("Could not find repo for DID: {did}"),
                )
            })?;
        let (active, status) = status_name(account.status);
        let rev = if active {
            self.store
                .repo()
                .get_root(did)
                .await
                .map_err(ApiError::from)?
                .map(|r| r.rev.parse().map_err(|e| internal("root rev", e)))
                .transpose()?
        } else {
            None
        };
        Ok(get_repo_status::Output {
            active,
            did: req.params.did,
            rev,
            status: status.map(get_repo_status::OutputStatus::from),
            extra_data: Default::default(),
        })
    }

    async fn get_repo(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_repo::Params, ()>,
    ) -> Result<BinaryOutput, XrpcError<get_repo::Error>> {
        let did = req.params.did.as_str();
        available(self, did).await?;
        let since = req.params.since.as_ref().map(|t| t.as_str());
        let stream = self
            .repo
            .get_repo_car(did, since)
            .await
            .map_err(repo_error)?;
        Ok(BinaryOutput::car(Body::from_stream(stream)))
    }

    async fn get_checkout(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_checkout::Params, ()>,
    ) -> Result<BinaryOutput, XrpcError<get_checkout::Error>> {
        let did = req.params.did.as_str();
        available(self, did).await?;
        let stream = self
            .repo
            .get_repo_car(did, None)
            .await
            .map_err(repo_error)?;
        Ok(BinaryOutput::car(Body::from_stream(stream)))
    }

    async fn get_head(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_head::Params, ()>,
    ) -> Result<get_head::Output, XrpcError<get_head::Error>> {
        let did = req.params.did.as_str();
        available(self, did).await?;
        let root = self
            .store
            .repo()
            .get_root(did)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| {
                XrpcError::from(get_head::Error::HeadNotFound)
                    .with_message(format!("Could not find root for DID: {did}"))
            })?;
        Ok(get_head::Output {
            root: root
                .cid
                .to_string()
                .parse()
                .map_err(|e| internal("root cid", e))?,
            extra_data: Default::default(),
        })
    }

    async fn get_blocks(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_blocks::Params, ()>,
    ) -> Result<BinaryOutput, XrpcError<get_blocks::Error>> {
        let did = req.params.did.as_str();
        available(self, did).await?;
        let mut cids: Vec<Cid> = Vec::with_capacity(req.params.cids.len());
        for c in &req.params.cids {
            let cid = Cid::try_from(c.as_str()).map_err(|_| {
                XrpcError::invalid_request(format!("Invalid CID in cids: {}", c.as_str()))
            })?;
            if !cids.contains(&cid) {
                cids.push(cid);
            }
        }
        let got = self
            .store
            .repo()
            .get_blocks(did, &cids)
            .await
            .map_err(ApiError::from)?;
        if !got.missing.is_empty() {
            let missing: Vec<String> = got.missing.iter().map(Cid::to_string).collect();
            return Err(XrpcError::from(get_blocks::Error::BlockNotFound)
                .with_message(format!("Could not find cids: {}", missing.join(","))));
        }
        // In the order asked for; a CAR with no roots, like the reference's.
        let blocks = cids
            .iter()
            .filter_map(|c| got.blocks.get(c).map(|b| (c, &b[..])));
        Ok(BinaryOutput::car(write_car(&[], blocks)))
    }

    async fn get_record(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_record::Params, ()>,
    ) -> Result<BinaryOutput, XrpcError<get_record::Error>> {
        let p = req.params;
        let did = p.did.as_str();
        available(self, did).await?;
        let (car, cid) = self
            .repo
            .record_proof_car(did, p.collection.as_str(), p.rkey.as_str())
            .await
            .map_err(repo_error)?;
        if cid.is_none() {
            return Err(
                XrpcError::from(get_record::Error::RecordNotFound).with_message(format!(
                    "Could not locate record: at://{did}/{}/{}",
                    p.collection.as_str(),
                    p.rkey.as_str()
                )),
            );
        }
        Ok(BinaryOutput::car(car))
    }

    async fn get_blob(
        &self,
        auth: OptionalAccess,
        req: XrpcRequest<get_blob::Params, ()>,
    ) -> Result<BinaryOutput, XrpcError<get_blob::Error>> {
        let p = req.params;
        let did = p.did.as_str();
        available_to(self, did, &auth).await?;
        let cid = Cid::try_from(p.cid.as_str())
            .map_err(|_| XrpcError::invalid_request(format!("Invalid CID: {}", p.cid.as_str())))?;
        let not_found =
            || XrpcError::from(get_blob::Error::BlobNotFound).with_message("Blob not found");
        let meta = self
            .store
            .blobs()
            .get_meta(did, &cid)
            .await
            .map_err(ApiError::from)?
            .filter(|m| m.takedown_ref.is_none())
            .ok_or_else(not_found)?;
        let read = self
            .blobstore
            .get(did, &cid)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(not_found)?;
        let mut out = BinaryOutput::new(
            &meta.mime_type,
            // Large reads: each read of a file is a hand-off to tokio's
            // blocking pool, so 4 KiB chunks (the default) made 256 of
            // them per megabyte.
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
                read.reader,
                BLOB_READ_CHUNK,
            )),
        );
        let headers = &mut out.headers;
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(read.size));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{cid}\"")) {
            headers.insert(header::CONTENT_DISPOSITION, v);
        }
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        );
        Ok(out)
    }

    async fn list_blobs(
        &self,
        auth: OptionalAccess,
        req: XrpcRequest<list_blobs::Params, ()>,
    ) -> Result<list_blobs::Output, XrpcError<list_blobs::Error>> {
        let p = req.params;
        let did = p.did.as_str();
        available_to(self, did, &auth).await?;
        let (limit, after) = blobs::page_params(p.limit, p.cursor.as_deref())?;
        // Blobs referenced by records (written after `since`), as the
        // reference: uploaded but unreferenced blobs are not listed.
        let since = p.since.as_ref().map(|t| t.as_str()).unwrap_or("");
        let cids = self
            .store
            .blobs()
            .list_referenced_since(did, since, after.as_ref(), limit)
            .await
            .map_err(ApiError::from)?;
        let cursor = cids.last().map(|c| c.to_string());
        let cids = cids
            .iter()
            .map(|c| c.to_string().parse().map_err(|e| internal("blob cid", e)))
            .collect::<Result<Vec<_>, XrpcError<list_blobs::Error>>>()?;
        Ok(list_blobs::Output {
            cids,
            cursor,
            extra_data: Default::default(),
        })
    }

    async fn list_repos(
        &self,
        _: NoAuth,
        req: XrpcRequest<list_repos::Params, ()>,
    ) -> Result<list_repos::Output, XrpcError<list_repos::Error>> {
        let limit = req.params.limit.unwrap_or(500);
        if !(1..=1000).contains(&limit) {
            return Err(XrpcError::invalid_request(format!(
                "limit must be between 1 and 1000, got {limit}"
            )));
        }
        let entries = self
            .store
            .repo()
            .list_repos(
                req.params.cursor.as_deref(),
                u32::try_from(limit).unwrap_or(500),
            )
            .await
            .map_err(ApiError::from)?;
        let cursor = if entries.len() as i64 >= limit {
            entries.last().map(|e| e.did.clone())
        } else {
            None
        };
        let mut repos = Vec::with_capacity(entries.len());
        for e in entries {
            let (active, status) = status_name(e.status);
            repos.push(list_repos::Repo {
                active: Some(active),
                did: e.did.parse().map_err(|err| internal("stored did", err))?,
                head: e
                    .cid
                    .to_string()
                    .parse()
                    .map_err(|err| internal("root cid", err))?,
                rev: e.rev.parse().map_err(|err| internal("root rev", err))?,
                status: status.map(list_repos::RepoStatus::from),
                extra_data: Default::default(),
            });
        }
        Ok(list_repos::Output {
            cursor,
            repos,
            extra_data: Default::default(),
        })
    }
}
