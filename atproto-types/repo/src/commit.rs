//! Signed repository commits (version 3).
//!
//! A commit is the DAG-CBOR object `{did, version: 3, data, rev, prev, sig}`:
//! `data` links the MST root, `rev` is a TID that increases with every
//! commit, `prev` is the previous commit's CID or null, and `sig` is the
//! signature of the account's signing key over the DAG-CBOR encoding of the
//! same object without `sig`.

use std::str::FromStr;

use atproto_crypto::{PrivateKey, PublicKey};
use atproto_data::cbor::{Decoder, Encoder};
use atproto_data::{cid_for_dag_cbor, DecodeError, DecodeErrorKind, MAX_NESTED_LEVELS};
use atproto_syntax::{Did, Tid};
use cid::Cid;

/// The commit version this crate writes.
pub const COMMIT_VERSION: u8 = 3;

/// Why a commit could not be decoded or verified.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Not the commit schema.
    #[error("invalid commit object: {0}")]
    Cbor(#[from] DecodeError),
    /// The `did` field is not a DID.
    #[error("invalid commit did {0:?}")]
    InvalidDid(String),
    /// The `rev` field is not a TID.
    #[error("invalid commit rev {0:?}")]
    InvalidRev(String),
    /// A version other than 2 or 3.
    #[error("unsupported commit version {0}")]
    UnsupportedVersion(i64),
    /// The signature does not verify with the key.
    #[error("commit signature is invalid: {0}")]
    BadSignature(String),
}

/// A commit before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedCommit {
    /// The account's DID.
    pub did: Did,
    /// The format version (3 for new commits; 2 is read for compatibility).
    pub version: u8,
    /// The MST root.
    pub data: Cid,
    /// The revision: a TID, increasing with every commit of the repository.
    pub rev: Tid,
    /// The previous commit, if any.
    pub prev: Option<Cid>,
}

/// A signed commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The account's DID.
    pub did: Did,
    /// The format version.
    pub version: u8,
    /// The MST root.
    pub data: Cid,
    /// The revision TID.
    pub rev: Tid,
    /// The previous commit, if any.
    pub prev: Option<Cid>,
    /// The signature (64-byte compact low-S ECDSA).
    pub sig: Vec<u8>,
}

fn encode(
    did: &Did,
    version: u8,
    data: &Cid,
    rev: &Tid,
    prev: Option<&Cid>,
    sig: Option<&[u8]>,
) -> Vec<u8> {
    let mut e = Encoder::with_capacity(200);
    // Canonical key order: did, rev, sig, data, prev, version.
    e.map(if sig.is_some() { 6 } else { 5 });
    e.text("did");
    e.text(did.as_str());
    e.text("rev");
    e.text(rev.as_str());
    if let Some(sig) = sig {
        e.text("sig");
        e.bytes(sig);
    }
    e.text("data");
    e.link(data);
    e.text("prev");
    e.opt_link(prev);
    e.text("version");
    e.uint(u64::from(version));
    e.into_bytes()
}

impl UnsignedCommit {
    /// A version-3 commit.
    pub fn new(did: Did, data: Cid, rev: Tid, prev: Option<Cid>) -> Self {
        UnsignedCommit {
            did,
            version: COMMIT_VERSION,
            data,
            rev,
            prev,
        }
    }

    /// The DAG-CBOR bytes that are signed.
    pub fn to_cbor(&self) -> Vec<u8> {
        encode(
            &self.did,
            self.version,
            &self.data,
            &self.rev,
            self.prev.as_ref(),
            None,
        )
    }

    /// Sign with the account's key.
    pub fn sign(self, key: &PrivateKey) -> Commit {
        let sig = key.sign(&self.to_cbor());
        Commit {
            did: self.did,
            version: self.version,
            data: self.data,
            rev: self.rev,
            prev: self.prev,
            sig: sig.to_vec(),
        }
    }
}

impl Commit {
    /// The commit without its signature.
    pub fn unsigned(&self) -> UnsignedCommit {
        UnsignedCommit {
            did: self.did.clone(),
            version: self.version,
            data: self.data,
            rev: self.rev.clone(),
            prev: self.prev,
        }
    }

    /// The bytes the signature covers.
    pub fn unsigned_bytes(&self) -> Vec<u8> {
        self.unsigned().to_cbor()
    }

    /// The commit block's DAG-CBOR bytes.
    pub fn to_cbor(&self) -> Vec<u8> {
        encode(
            &self.did,
            self.version,
            &self.data,
            &self.rev,
            self.prev.as_ref(),
            Some(&self.sig),
        )
    }

    /// The commit block's bytes and CID.
    pub fn to_block(&self) -> (Cid, Vec<u8>) {
        let bytes = self.to_cbor();
        (cid_for_dag_cbor(&bytes), bytes)
    }

    /// Decode a commit block strictly (canonical DAG-CBOR, exactly the six
    /// fields, version 2 or 3).
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, CommitError> {
        let mut d = Decoder::new(bytes);
        let mut did = "";
        let mut rev = "";
        let mut sig: &[u8] = &[];
        let mut data = None;
        let mut prev = None;
        let mut version = 0i64;
        d.read_struct(
            &["did", "rev", "sig", "data", "prev", "version"],
            &[true; 6],
            |i, d| {
                match i {
                    0 => did = d.text()?,
                    1 => rev = d.text()?,
                    2 => sig = d.bytes()?,
                    3 => data = Some(d.link()?),
                    4 => prev = d.opt_link()?,
                    _ => version = d.int()?,
                }
                Ok(())
            },
        )?;
        d.finish()?;
        let version = match version {
            2 => 2,
            3 => 3,
            v => return Err(CommitError::UnsupportedVersion(v)),
        };
        let data =
            data.ok_or_else(|| DecodeError::new(0, DecodeErrorKind::MissingField("data")))?;
        Ok(Commit {
            did: Did::from_str(did).map_err(|_| CommitError::InvalidDid(did.to_owned()))?,
            version,
            data,
            rev: Tid::from_str(rev).map_err(|_| CommitError::InvalidRev(rev.to_owned()))?,
            prev,
            sig: sig.to_vec(),
        })
    }

    /// Check the signature with the account's public key.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CommitError> {
        key.verify(&self.unsigned_bytes(), &self.sig)
            .map_err(|e| CommitError::BadSignature(e.to_string()))
    }
}

/// Whether a DAG-CBOR block looks like a commit (a map with the commit's
/// fields), without fully validating it.
pub fn looks_like_commit(bytes: &[u8]) -> bool {
    let mut d = Decoder::new(bytes);
    let Ok(n) = d.map_len() else {
        return false;
    };
    let mut seen = 0;
    for _ in 0..n {
        let Ok(k) = d.key() else {
            return false;
        };
        if matches!(k, "did" | "data" | "rev" | "version" | "sig") {
            seen += 1;
        }
        if d.skip(MAX_NESTED_LEVELS).is_err() {
            return false;
        }
    }
    seen == 5
}

#[cfg(test)]
mod tests {
    use super::*;
    use atproto_crypto::Algorithm;

    #[test]
    fn sign_encode_decode_verify() {
        for alg in [Algorithm::K256, Algorithm::P256] {
            let key = PrivateKey::generate(alg);
            let data = cid_for_dag_cbor(&[0xa0]);
            let did = Did::from_str("did:plc:abcdefghijklmnopqrstuvwx").expect("did");
            let rev = Tid::from_str("3jzfcijpj2z2a").expect("tid");
            let commit = UnsignedCommit::new(did, data, rev, None).sign(&key);
            let bytes = commit.to_cbor();
            let back = Commit::from_cbor(&bytes).expect("decodes");
            assert_eq!(back, commit);
            assert!(looks_like_commit(&bytes));
            assert!(back.verify(&key.public_key()).is_ok());
            let other = PrivateKey::generate(alg);
            assert!(back.verify(&other.public_key()).is_err());
            let mut tampered = back.clone();
            tampered.prev = Some(data);
            assert!(tampered.verify(&key.public_key()).is_err());
        }
    }
}
