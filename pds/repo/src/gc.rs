//! Full garbage collection of a repository's blocks: a repair pass.
//!
//! Commits already delete what they make unreachable: the MST nodes they
//! replace, the previous commit, and the blocks of replaced or deleted
//! records that no other record of the repository names (the store checks
//! the record index in the commit's transaction). This pass walks the
//! current tree under the write lock and deletes every stored block it
//! does not reach: leftovers of imports or of older versions, never
//! needed in normal operation (the churn tests check it finds nothing).

use std::collections::HashSet;

use atproto_repo::mst::decode_node;
use atproto_repo::Commit;
use cid::Cid;

use crate::error::{RepoWriteError, Result};
use crate::writer::RepoWriter;

impl RepoWriter {
    /// Deletes every block of `did` not reachable from its current commit
    /// (the commit, its MST nodes and the records they hold). Reads the tree
    /// one level per round trip. Returns how many blocks were deleted.
    pub async fn collect_garbage(&self, did: &str) -> Result<u64> {
        let txn = self.store().repo().begin_write(did).await?;
        let root = txn
            .current()
            .cloned()
            .ok_or_else(|| RepoWriteError::RepoNotFound(did.to_owned()))?;
        let commit_bytes = self
            .store()
            .repo()
            .get_block(did, &root.cid)
            .await?
            .ok_or(RepoWriteError::MissingBlock(root.cid))?;
        let commit = Commit::from_cbor(&commit_bytes).map_err(RepoWriteError::internal)?;
        let mut reachable: HashSet<Cid> = HashSet::from([root.cid]);
        let mut frontier = vec![commit.data];
        while !frontier.is_empty() {
            let mut found = Vec::with_capacity(frontier.len());
            let mut wanted = Vec::new();
            for c in &frontier {
                match self.cache().get(c) {
                    Some(b) => found.push((*c, b.to_vec())),
                    None => wanted.push(*c),
                }
            }
            if !wanted.is_empty() {
                let got = self.store().repo().get_blocks(did, &wanted).await?;
                if let Some(m) = got.missing.first() {
                    return Err(RepoWriteError::MissingBlock(*m));
                }
                found.extend(got.blocks);
            }
            let mut next = Vec::new();
            for (cid, bytes) in found {
                let node = decode_node(&bytes).map_err(|e| {
                    RepoWriteError::Internal(format!("invalid MST node {cid}: {e}"))
                })?;
                reachable.insert(cid);
                next.extend(node.left);
                for e in node.entries {
                    reachable.insert(e.value);
                    next.extend(e.right);
                }
            }
            frontier = next;
        }
        Ok(txn.collect_garbage(&reachable).await?)
    }
}
