//! `com.atproto.repo`: record writes (createRecord, putRecord,
//! deleteRecord, applyWrites) through [`pds_repo::RepoWriter`], and record
//! reads (getRecord, listRecords) from the store's record index; blobs
//! (uploadBlob, listMissingBlobs; see [`crate::api::blobs`]) and whole-repo
//! import (importRepo, see `pds_repo`'s import module).
//!
//! Blobs a record references are checked before the write (uploaded by the
//! account and not taken down: `BlobNotFound`; the reference's `mimeType`
//! and `size` are the stored blob's: `InvalidMimeType`, `InvalidSize`); a
//! blob whose last reference a commit removes is deleted with it.
//!
//! Writes follow the reference PDS: the repo is resolved (DID or handle,
//! deactivated accounts included); an unknown repo is 400 `InvalidRequest`
//! "Could not find repo", a deactivated one 400 "Account is deactivated",
//! another account's repo 401 `AuthenticationRequired`.

use atproto_types::crypto::{Algorithm, PrivateKey, PublicKey};
use atproto_types::data::{Blob, BlobRef, Cid, Value};
use atproto_types::lex::Nullable;
use atproto_types::lexicons::com::atproto::repo::defs::CommitMeta;
use atproto_types::lexicons::com::atproto::repo::{
    apply_writes, create_record, delete_record, describe_repo, get_record, import_repo,
    list_missing_blobs, list_records, put_record, upload_blob, ComAtprotoRepo,
};
use atproto_types::syntax::{AtIdentifier, AtUri, CidString};
use atproto_types::xrpc::http::StatusCode;
use atproto_types::xrpc::{BinaryInput, NoAuth, XrpcError, XrpcRequest};
use pds_repo::{CommitOutcome, RepoWriteError, ValidationStatus, Write};
use pds_store::{Account, AccountStatus};

use crate::api::blobs;
use crate::auth::{AccessFullDeactivatedOk, AccessStandard, AccessStandardDeactivatedOk};
use crate::error::ApiError;
use crate::identity::account_signing_key;
use crate::rate_limit::{self, Key, WritePoints};
use crate::state::AppState;

/// Most writes in one `applyWrites` (the reference's).
pub const MAX_WRITES: usize = 200;

/// The account a repo identifier names (any status but deleted).
pub(crate) async fn find_account(
    state: &AppState,
    repo: &AtIdentifier,
) -> Result<Option<Account>, ApiError> {
    let accounts = state.store.accounts();
    let account = match repo {
        AtIdentifier::Did(did) => accounts.get(did.as_str()).await?,
        AtIdentifier::Handle(h) => accounts.get_by_handle(&h.as_str().to_lowercase()).await?,
    };
    Ok(account.filter(|a| a.status != AccountStatus::Deleted))
}

/// Spends the points of a repository write in the account's shared
/// `repo-write-*` limits.
async fn repo_write_limit<P, I>(
    state: &AppState,
    req: &XrpcRequest<P, I>,
    auth: &AccessStandard,
    points: WritePoints,
) -> Result<(), rate_limit::RateLimited> {
    rate_limit::consume(
        state,
        req.extensions(),
        rate_limit::REPO_WRITE,
        Key::Did(&auth.did),
        points.points(),
    )
    .await
}

/// The DID and decrypted signing key of the repo a write names, after the
/// reference's checks.
async fn writable<E>(
    state: &AppState,
    auth: &AccessStandard,
    repo: &AtIdentifier,
) -> Result<(String, PrivateKey), XrpcError<E>> {
    // The caller's own repo by DID (the usual case): the account read while
    // authenticating this request, rather than the same row again.
    let fetched;
    let account = match repo {
        AtIdentifier::Did(did) if did.as_str() == auth.did => &auth.account,
        _ => {
            fetched = find_account(state, repo).await?.ok_or_else(|| {
                XrpcError::invalid_request(format!("Could not find repo: {}", repo.as_str()))
            })?;
            &fetched
        }
    };
    if account.status == AccountStatus::Deactivated || account.deactivated_at.is_some() {
        return Err(XrpcError::invalid_request("Account is deactivated"));
    }
    if account.did != auth.did {
        return Err(XrpcError::authentication_required(
            "Authentication Required",
        ));
    }
    if account.status == AccountStatus::Takendown {
        return Err(XrpcError::new(
            StatusCode::UNAUTHORIZED,
            "AccountTakedown",
            Some("Account has been taken down".into()),
        ));
    }
    let key = account_signing_key(state, &account.did).await?;
    Ok((account.did.clone(), key))
}

/// The `#atproto` verification key of the account's DID document, if it
/// resolves (did:plc only).
async fn did_doc_key(state: &AppState, did: &str) -> Option<PublicKey> {
    if !did.starts_with("did:plc:") {
        return None;
    }
    let doc = match state.plc.resolve(did).await {
        Ok(doc) => doc?,
        Err(e) => {
            tracing::warn!(%did, error = %e, "could not resolve the DID document of an import");
            return None;
        }
    };
    doc["verificationMethod"]
        .as_array()?
        .iter()
        .find(|m| {
            m["id"]
                .as_str()
                .is_some_and(|id| id == "#atproto" || id == format!("{did}#atproto"))
        })
        .and_then(|m| {
            let key = m["publicKeyMultibase"].as_str()?;
            // `Multikey`, or a legacy type naming the curve (with a bare
            // multibase point), as older directories serve.
            match m["type"]
                .as_str()
                .and_then(Algorithm::from_legacy_verification_method_type)
            {
                Some(alg) => PublicKey::parse_with_algorithm(alg, key).ok(),
                None => PublicKey::from_multibase(key).ok(),
            }
        })
}

fn parse_cid<E>(s: &CidString, field: &str) -> Result<Cid, XrpcError<E>> {
    Cid::try_from(s.as_str())
        .map_err(|_| XrpcError::invalid_request(format!("Invalid CID in {field}: {}", s.as_str())))
}

fn opt_cid<E>(s: &Option<CidString>, field: &str) -> Result<Option<Cid>, XrpcError<E>> {
    s.as_ref().map(|c| parse_cid(c, field)).transpose()
}

/// The XRPC error of a failed write.
fn write_error<E>(e: RepoWriteError) -> XrpcError<E> {
    let bad =
        |name: &'static str, m: String| XrpcError::new(StatusCode::BAD_REQUEST, name, Some(m));
    match e {
        RepoWriteError::InvalidSwap(m) => bad("InvalidSwap", m),
        RepoWriteError::InvalidRequest(m) => XrpcError::invalid_request(m),
        RepoWriteError::RecordAlreadyExists { uri } => {
            XrpcError::invalid_request(format!("Record already exists: {uri}"))
        }
        RepoWriteError::BlobNotFound(cid) => {
            bad("BlobNotFound", format!("Could not find blob: {cid}"))
        }
        RepoWriteError::RepoNotFound(did) => {
            XrpcError::invalid_request(format!("Could not find repo: {did}"))
        }
        e @ (RepoWriteError::TooManyWrites { .. } | RepoWriteError::CommitTooLarge { .. }) => {
            XrpcError::invalid_request(e.to_string())
        }
        other => ApiError::from(other).into(),
    }
}

async fn apply<E>(
    state: &AppState,
    did: &str,
    key: &PrivateKey,
    writes: Vec<Write>,
    swap_commit: Option<Cid>,
) -> Result<CommitOutcome, XrpcError<E>> {
    let started = pds_store::now_ms();
    let outcome = state
        .repo
        .apply_writes(did, key, writes, swap_commit)
        .await
        .map_err(write_error)?;
    if let Some(commit) = &outcome.commit {
        blobs::delete_unreferenced(state, did, &commit.unreferenced_blobs, started).await;
    }
    Ok(outcome)
}

fn internal<E>(what: &str, e: impl std::fmt::Display) -> XrpcError<E> {
    ApiError::Internal(format!("{what}: {e}")).into()
}

fn commit_meta<E>(outcome: &CommitOutcome) -> Result<Option<CommitMeta>, XrpcError<E>> {
    outcome
        .commit
        .as_ref()
        .map(|c| {
            Ok(CommitMeta {
                cid: c
                    .cid
                    .to_string()
                    .parse()
                    .map_err(|e| internal("commit cid", e))?,
                rev: c.rev.parse().map_err(|e| internal("commit rev", e))?,
                extra_data: Default::default(),
            })
        })
        .transpose()
}

/// `uri` and `cid` of one write's result.
fn uri_cid<E>(
    outcome: &CommitOutcome,
    index: usize,
) -> Result<(AtUri, CidString, Option<ValidationStatus>), XrpcError<E>> {
    let r = outcome
        .results
        .get(index)
        .ok_or_else(|| internal::<E>("write result", "missing"))?;
    let cid = r
        .cid
        .ok_or_else(|| internal::<E>("write result", "no cid"))?;
    Ok((
        r.uri.parse().map_err(|e| internal("record uri", e))?,
        cid.to_string()
            .parse()
            .map_err(|e| internal("record cid", e))?,
        r.validation_status,
    ))
}

fn status_str(v: Option<ValidationStatus>) -> Option<&'static str> {
    v.map(|s| match s {
        ValidationStatus::Valid => "valid",
        ValidationStatus::Unknown => "unknown",
    })
}

/// The stored record `did/collection/rkey`: its CID and value (taken-down
/// records are absent).
async fn read_record(
    state: &AppState,
    did: &str,
    collection: &str,
    rkey: &str,
) -> Result<Option<(Cid, Value)>, ApiError> {
    let found = state
        .store
        .repo()
        .get_record_with_value(did, collection, rkey)
        .await?;
    let Some((entry, Some(bytes))) = found else {
        return Ok(None);
    };
    if entry.takedown_ref.is_some() {
        return Ok(None);
    }
    let value = atproto_types::data::from_dag_cbor(&bytes)
        .map_err(|e| ApiError::Internal(format!("record block {}: {e}", entry.cid)))?;
    Ok(Some((entry.cid, value)))
}

impl ComAtprotoRepo for AppState {
    type ApplyWritesAuth = AccessStandard;
    type CreateRecordAuth = AccessStandard;
    type DeleteRecordAuth = AccessStandard;
    type DescribeRepoAuth = NoAuth;
    type GetRecordAuth = NoAuth;
    type ImportRepoAuth = AccessFullDeactivatedOk;
    type ListMissingBlobsAuth = AccessStandardDeactivatedOk;
    type ListRecordsAuth = NoAuth;
    type PutRecordAuth = AccessStandard;
    type UploadBlobAuth = AccessStandardDeactivatedOk;

    async fn create_record(
        &self,
        auth: AccessStandard,
        req: XrpcRequest<create_record::Params, create_record::Input>,
    ) -> Result<create_record::Output, XrpcError<create_record::Error>> {
        let points = WritePoints {
            creates: 1,
            ..Default::default()
        };
        repo_write_limit(self, &req, &auth, points).await?;
        let input = req.input;
        let (did, key) = writable(self, &auth, &input.repo).await?;
        let swap_commit = opt_cid(&input.swap_commit, "swapCommit")?;
        blobs::check_record_blobs(self, &did, [&input.record]).await?;
        let write = Write::Create {
            collection: input.collection.as_str().to_owned(),
            rkey: input.rkey.map(|k| k.as_str().to_owned()),
            record: input.record,
            validate: input.validate,
        };
        let outcome = apply(self, &did, &key, vec![write], swap_commit).await?;
        let (uri, cid, status) = uri_cid(&outcome, 0)?;
        Ok(create_record::Output {
            cid,
            commit: commit_meta(&outcome)?,
            uri,
            validation_status: status_str(status).map(create_record::OutputValidationStatus::from),
            extra_data: Default::default(),
        })
    }

    async fn put_record(
        &self,
        auth: AccessStandard,
        req: XrpcRequest<put_record::Params, put_record::Input>,
    ) -> Result<put_record::Output, XrpcError<put_record::Error>> {
        // An update's points, whether or not the record exists (as the
        // reference counts putRecord).
        let points = WritePoints {
            updates: 1,
            ..Default::default()
        };
        repo_write_limit(self, &req, &auth, points).await?;
        let input = req.input;
        let (did, key) = writable(self, &auth, &input.repo).await?;
        let swap_commit = opt_cid(&input.swap_commit, "swapCommit")?;
        let swap_record = match &input.swap_record {
            None => None,
            Some(Nullable::Null) => Some(None),
            Some(Nullable::Value(c)) => Some(Some(parse_cid(c, "swapRecord")?)),
        };
        blobs::check_record_blobs(self, &did, [&input.record]).await?;
        let write = Write::Update {
            collection: input.collection.as_str().to_owned(),
            rkey: input.rkey.as_str().to_owned(),
            record: input.record,
            validate: input.validate,
            swap_record,
        };
        let outcome = apply(self, &did, &key, vec![write], swap_commit).await?;
        let (uri, cid, status) = uri_cid(&outcome, 0)?;
        Ok(put_record::Output {
            cid,
            commit: commit_meta(&outcome)?,
            uri,
            validation_status: status_str(status).map(put_record::OutputValidationStatus::from),
            extra_data: Default::default(),
        })
    }

    async fn delete_record(
        &self,
        auth: AccessStandard,
        req: XrpcRequest<delete_record::Params, delete_record::Input>,
    ) -> Result<delete_record::Output, XrpcError<delete_record::Error>> {
        let points = WritePoints {
            deletes: 1,
            ..Default::default()
        };
        repo_write_limit(self, &req, &auth, points).await?;
        let input = req.input;
        let (did, key) = writable(self, &auth, &input.repo).await?;
        let swap_commit = opt_cid(&input.swap_commit, "swapCommit")?;
        let swap_record = opt_cid(&input.swap_record, "swapRecord")?.map(Some);
        let write = Write::Delete {
            collection: input.collection.as_str().to_owned(),
            rkey: input.rkey.as_str().to_owned(),
            swap_record,
        };
        let outcome = apply(self, &did, &key, vec![write], swap_commit).await?;
        Ok(delete_record::Output {
            commit: commit_meta(&outcome)?,
            extra_data: Default::default(),
        })
    }

    async fn apply_writes(
        &self,
        auth: AccessStandard,
        req: XrpcRequest<apply_writes::Params, apply_writes::Input>,
    ) -> Result<apply_writes::Output, XrpcError<apply_writes::Error>> {
        let mut points = WritePoints::default();
        for w in &req.input.writes {
            match w {
                apply_writes::InputWrites::Create(_) => points.creates += 1,
                apply_writes::InputWrites::Update(_) => points.updates += 1,
                apply_writes::InputWrites::Delete(_) => points.deletes += 1,
            }
        }
        repo_write_limit(self, &req, &auth, points).await?;
        let input = req.input;
        if input.writes.len() > MAX_WRITES {
            return Err(XrpcError::invalid_request(format!(
                "Too many writes. Max: {MAX_WRITES}"
            )));
        }
        let (did, key) = writable(self, &auth, &input.repo).await?;
        let swap_commit = opt_cid(&input.swap_commit, "swapCommit")?;
        let validate = input.validate;
        blobs::check_record_blobs(
            self,
            &did,
            input.writes.iter().filter_map(|w| match w {
                apply_writes::InputWrites::Create(c) => Some(&c.value),
                apply_writes::InputWrites::Update(u) => Some(&u.value),
                apply_writes::InputWrites::Delete(_) => None,
            }),
        )
        .await?;
        let kinds: Vec<u8> = input
            .writes
            .iter()
            .map(|w| match w {
                apply_writes::InputWrites::Create(_) => 0,
                apply_writes::InputWrites::Update(_) => 1,
                apply_writes::InputWrites::Delete(_) => 2,
            })
            .collect();
        let writes = input
            .writes
            .into_iter()
            .map(|w| match w {
                apply_writes::InputWrites::Create(c) => Write::Create {
                    collection: c.collection.as_str().to_owned(),
                    rkey: c.rkey.map(|k| k.as_str().to_owned()),
                    record: c.value,
                    validate,
                },
                apply_writes::InputWrites::Update(u) => Write::Update {
                    collection: u.collection.as_str().to_owned(),
                    rkey: u.rkey.as_str().to_owned(),
                    record: u.value,
                    validate,
                    swap_record: None,
                },
                apply_writes::InputWrites::Delete(d) => Write::Delete {
                    collection: d.collection.as_str().to_owned(),
                    rkey: d.rkey.as_str().to_owned(),
                    swap_record: None,
                },
            })
            .collect();
        let outcome = apply(self, &did, &key, writes, swap_commit).await?;
        let mut results = Vec::with_capacity(kinds.len());
        for (i, kind) in kinds.iter().enumerate() {
            results.push(match kind {
                0 => {
                    let (uri, cid, status) = uri_cid(&outcome, i)?;
                    apply_writes::OutputResults::CreateResult(apply_writes::CreateResult {
                        cid,
                        uri,
                        validation_status: status_str(status)
                            .map(apply_writes::CreateResultValidationStatus::from),
                        extra_data: Default::default(),
                    })
                }
                1 => {
                    let (uri, cid, status) = uri_cid(&outcome, i)?;
                    apply_writes::OutputResults::UpdateResult(apply_writes::UpdateResult {
                        cid,
                        uri,
                        validation_status: status_str(status)
                            .map(apply_writes::UpdateResultValidationStatus::from),
                        extra_data: Default::default(),
                    })
                }
                _ => apply_writes::OutputResults::DeleteResult(apply_writes::DeleteResult {
                    extra_data: Default::default(),
                }),
            });
        }
        Ok(apply_writes::Output {
            commit: commit_meta(&outcome)?,
            results: Some(results),
            extra_data: Default::default(),
        })
    }

    async fn upload_blob(
        &self,
        auth: AccessStandardDeactivatedOk,
        req: XrpcRequest<upload_blob::Params, BinaryInput>,
    ) -> Result<upload_blob::Output, XrpcError<upload_blob::Error>> {
        rate_limit::consume(self, req.extensions(), rate_limit::UPLOAD_BLOB, Key::Ip, 1).await?;
        let meta = blobs::upload(self, &auth.did, req.input).await?;
        if meta.takedown_ref.is_some() {
            return Err(XrpcError::invalid_request(
                "Blob has been takendown, cannot re-upload",
            ));
        }
        Ok(upload_blob::Output {
            blob: BlobRef::Blob(Blob {
                r#ref: meta.cid,
                mime_type: meta.mime_type,
                size: meta.size,
                extra: Default::default(),
            }),
            extra_data: Default::default(),
        })
    }

    async fn import_repo(
        &self,
        auth: AccessFullDeactivatedOk,
        req: XrpcRequest<import_repo::Params, BinaryInput>,
    ) -> Result<(), XrpcError<import_repo::Error>> {
        let did = auth.did;
        // At most the import limit in memory: the whole repository is
        // verified before anything is written.
        let car = req.input.collect().await.map_err(XrpcError::widen)?;
        let started = pds_store::now_ms();
        let key = account_signing_key(self, &did).await?;
        let mut trusted = vec![key.public_key()];
        trusted.extend(did_doc_key(self, &did).await);
        let outcome = self
            .repo
            .import_repo(&did, &key, car, &trusted)
            .await
            .map_err(write_error)?;
        blobs::delete_unreferenced(self, &did, &outcome.commit.unreferenced_blobs, started).await;
        tracing::info!(
            %did,
            records = outcome.records,
            removed = outcome.removed_records,
            rev = %outcome.commit.rev,
            "repository imported"
        );
        Ok(())
    }

    async fn list_missing_blobs(
        &self,
        auth: AccessStandardDeactivatedOk,
        req: XrpcRequest<list_missing_blobs::Params, ()>,
    ) -> Result<list_missing_blobs::Output, XrpcError<list_missing_blobs::Error>> {
        let p = req.params;
        let (limit, after) = blobs::page_params(p.limit, p.cursor.as_deref())?;
        let missing = self
            .store
            .blobs()
            .list_missing(&auth.did, after.as_ref(), limit)
            .await
            .map_err(ApiError::from)?;
        let cursor = missing.last().map(|m| m.cid.to_string());
        let blobs = missing
            .into_iter()
            .map(|m| {
                Ok(list_missing_blobs::RecordBlob {
                    cid: m
                        .cid
                        .to_string()
                        .parse()
                        .map_err(|e| internal("blob cid", e))?,
                    record_uri: m
                        .record_uri
                        .parse()
                        .map_err(|e| internal("record uri", e))?,
                    extra_data: Default::default(),
                })
            })
            .collect::<Result<Vec<_>, XrpcError<list_missing_blobs::Error>>>()?;
        Ok(list_missing_blobs::Output {
            blobs,
            cursor,
            extra_data: Default::default(),
        })
    }

    async fn describe_repo(
        &self,
        _: NoAuth,
        req: XrpcRequest<describe_repo::Params, ()>,
    ) -> Result<describe_repo::Output, XrpcError<describe_repo::Error>> {
        let repo = req.params.repo;
        let account = find_account(self, &repo)
            .await?
            .filter(|a| a.status == AccountStatus::Active)
            .ok_or_else(|| {
                XrpcError::invalid_request(format!("Could not find user: {}", repo.as_str()))
            })?;
        let did = account.did.as_str();
        let doc = if did.starts_with("did:plc:") {
            self.plc
                .resolve(did)
                .await
                .map_err(|e| XrpcError::invalid_request(format!("Could not resolve DID: {e}")))?
        } else {
            None
        };
        let doc =
            doc.ok_or_else(|| XrpcError::invalid_request(format!("Could not resolve DID: {did}")))?;
        let doc_handle = doc["alsoKnownAs"]
            .as_array()
            .and_then(|aka| {
                aka.iter()
                    .filter_map(|v| v.as_str())
                    .find_map(|v| v.strip_prefix("at://"))
            })
            .map(str::to_lowercase);
        let handle_text = account.handle.as_deref().unwrap_or("handle.invalid");
        let handle_is_correct = doc_handle.as_deref() == Some(handle_text);
        let did_doc = Value::from_json(&doc).map_err(|e| internal("DID document", e))?;
        let collections = self
            .store
            .repo()
            .list_collections(did)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        Ok(describe_repo::Output {
            collections,
            did: did.parse().map_err(|e| internal("stored DID", e))?,
            did_doc,
            handle: handle_text
                .parse()
                .or_else(|_| "handle.invalid".parse())
                .map_err(|e| internal("handle", e))?,
            handle_is_correct,
            extra_data: Default::default(),
        })
    }

    async fn get_record(
        &self,
        _: NoAuth,
        req: XrpcRequest<get_record::Params, ()>,
    ) -> Result<get_record::Output, XrpcError<get_record::Error>> {
        let p = req.params;
        // Taken-down accounts' records are not served (the reference's
        // `getDidForActor`).
        let account = find_account(self, &p.repo)
            .await?
            .filter(|a| a.status != AccountStatus::Takendown);
        let did = account
            .as_ref()
            .map(|a| a.did.as_str())
            .unwrap_or(p.repo.as_str());
        let uri_text = format!("at://{did}/{}/{}", p.collection.as_str(), p.rkey.as_str());
        let not_found = || {
            XrpcError::from(get_record::Error::RecordNotFound)
                .with_message(format!("Could not locate record: {uri_text}"))
        };
        let Some(account) = account else {
            return Err(not_found());
        };
        let want = opt_cid(&p.cid, "cid")?;
        let Some((cid, value)) =
            read_record(self, &account.did, p.collection.as_str(), p.rkey.as_str()).await?
        else {
            return Err(not_found());
        };
        if want.is_some_and(|w| w != cid) {
            return Err(not_found());
        }
        Ok(get_record::Output {
            cid: Some(
                cid.to_string()
                    .parse()
                    .map_err(|e| internal("record cid", e))?,
            ),
            uri: uri_text.parse().map_err(|e| internal("record uri", e))?,
            value,
            extra_data: Default::default(),
        })
    }

    async fn list_records(
        &self,
        _: NoAuth,
        req: XrpcRequest<list_records::Params, ()>,
    ) -> Result<list_records::Output, XrpcError<list_records::Error>> {
        let p = req.params;
        let limit = p.limit.unwrap_or(50);
        if !(1..=100).contains(&limit) {
            return Err(XrpcError::invalid_request(format!(
                "limit must be between 1 and 100, got {limit}"
            )));
        }
        let account = find_account(self, &p.repo)
            .await?
            .filter(|a| a.status != AccountStatus::Takendown)
            .ok_or_else(|| {
                XrpcError::invalid_request(format!("Could not find repo: {}", p.repo.as_str()))
            })?;
        let did = account.did;
        let entries = self
            .store
            .repo()
            .list_records_with_values(
                &did,
                p.collection.as_str(),
                u32::try_from(limit).unwrap_or(50),
                p.cursor.as_deref(),
                p.reverse.unwrap_or(false),
            )
            .await
            .map_err(ApiError::from)?;
        let cursor = entries.last().map(|(e, _)| e.rkey.clone());
        let mut records = Vec::with_capacity(entries.len());
        for (entry, bytes) in entries {
            if entry.takedown_ref.is_some() {
                continue;
            }
            let Some(bytes) = bytes else {
                continue;
            };
            let value = atproto_types::data::from_dag_cbor(&bytes)
                .map_err(|e| internal("record block", e))?;
            records.push(list_records::RecordDef {
                cid: entry
                    .cid
                    .to_string()
                    .parse()
                    .map_err(|e| internal("record cid", e))?,
                uri: entry
                    .uri(&did)
                    .parse()
                    .map_err(|e| internal("record uri", e))?,
                value,
                extra_data: Default::default(),
            });
        }
        Ok(list_records::Output {
            cursor,
            records,
            extra_data: Default::default(),
        })
    }
}
