//! Proofs of presence and absence of keys.

use cid::Cid;

use super::key::key_height;
use super::tree::{load_node, load_node_bytes, Link, Node};
use super::MstError;
use crate::blockstore::{BlockMap, BlockStore};

/// The CIDs of the nodes on the search path of `key`, from the root down to
/// the node holding it, or — when absent — down to the deepest node at or
/// above the key's height whose gap would hold it. Together these nodes
/// prove the key's value (or its absence) against the root CID: every key
/// of height `h` sits in the node of height `h` on its search path.
pub fn proof_path<S: BlockStore + ?Sized>(
    store: &S,
    root: Cid,
    key: &str,
) -> Result<Vec<Cid>, MstError> {
    let hk = key_height(key.as_bytes());
    let mut path = vec![root];
    let mut node = load_node(store, &root, None)?;
    let Some(first) = node.entries.first() else {
        return Ok(path);
    };
    let mut h = key_height(first.key.as_bytes());
    loop {
        let i = node.position(key);
        if node.entries.get(i).is_some_and(|e| e.key == key) || h <= hk || h == 0 {
            return Ok(path);
        }
        let next = match node.gap(i) {
            Some(Link::Stub(c)) => *c,
            _ => return Ok(path),
        };
        h -= 1;
        node = load_node(store, &next, Some(h))?;
        path.push(next);
    }
}

/// The blocks proving `key`'s presence or absence under `root`, together
/// with its neighbours:
///
/// * key present: the nodes on its search path, plus the rightmost spine of
///   the subtree just before it and the leftmost spine of the subtree just
///   after it (down to the bottom), which hold its nearest neighbour keys;
/// * key absent: every node on its search path down to the bottom of the
///   tree (the gap where it would sit, with the keys on either side).
///
/// These are the MST nodes a sync 1.1 consumer needs to invert an operation
/// on `key`: re-inserting an absent key splits the subtrees along its path,
/// and removing a present key merges the facing spines of its neighbours.
pub fn covering_proof<S: BlockStore + ?Sized>(
    store: &S,
    root: Cid,
    key: &str,
) -> Result<BlockMap, MstError> {
    let mut blocks = BlockMap::new();
    let fetch = |cid: &Cid, height: Option<u32>, blocks: &mut BlockMap| {
        let bytes = store.get(cid)?.ok_or(MstError::MissingBlock(*cid))?;
        let node = load_node_bytes(cid, &bytes, height)?;
        blocks.put(*cid, bytes);
        Ok::<_, MstError>(node)
    };
    let mut node = fetch(&root, None, &mut blocks)?;
    let Some(first) = node.entries.first() else {
        return Ok(blocks);
    };
    let mut h = key_height(first.key.as_bytes());
    loop {
        let i = node.position(key);
        if node.entries.get(i).is_some_and(|e| e.key == key) {
            if h == 0 {
                return Ok(blocks);
            }
            // Rightmost spine of the gap before, leftmost spine of the gap after.
            let mut next = gap_cid(&node, i);
            let mut hh = h;
            while let Some(c) = next {
                hh -= 1;
                let n = fetch(&c, Some(hh), &mut blocks)?;
                next = if hh == 0 {
                    None
                } else {
                    gap_cid(&n, n.entries.len())
                };
            }
            let mut next = gap_cid(&node, i + 1);
            let mut hh = h;
            while let Some(c) = next {
                hh -= 1;
                let n = fetch(&c, Some(hh), &mut blocks)?;
                next = if hh == 0 { None } else { gap_cid(&n, 0) };
            }
            return Ok(blocks);
        }
        if h == 0 {
            return Ok(blocks);
        }
        match gap_cid(&node, i) {
            Some(c) => {
                h -= 1;
                node = fetch(&c, Some(h), &mut blocks)?;
            }
            None => return Ok(blocks),
        }
    }
}

fn gap_cid(node: &Node, i: usize) -> Option<Cid> {
    match node.gap(i) {
        Some(Link::Stub(c)) => Some(*c),
        _ => None,
    }
}
