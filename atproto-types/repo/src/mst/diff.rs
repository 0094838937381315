//! Differences between two MSTs held in a block store.

use std::collections::HashSet;

use bytes::Bytes;
use cid::Cid;

use super::key::key_height;
use super::node::{decode_node, NodeData};
use super::MstError;
use crate::blockstore::{BlockMap, BlockStore};

/// One changed key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffOp {
    /// A key present only in the new tree.
    Create {
        /// The key.
        key: String,
        /// Its value.
        cid: Cid,
    },
    /// A key whose value changed.
    Update {
        /// The key.
        key: String,
        /// The old value.
        prev: Cid,
        /// The new value.
        cid: Cid,
    },
    /// A key present only in the old tree.
    Delete {
        /// The key.
        key: String,
        /// The old value.
        prev: Cid,
    },
}

impl DiffOp {
    /// The key the op is about.
    pub fn key(&self) -> &str {
        match self {
            DiffOp::Create { key, .. }
            | DiffOp::Update { key, .. }
            | DiffOp::Delete { key, .. } => key,
        }
    }
}

/// The difference from an old tree to a new one.
#[derive(Debug, Clone, Default)]
pub struct MstDiff {
    /// Changed keys, in key order.
    pub ops: Vec<DiffOp>,
    /// MST node blocks of the new tree that the old tree lacks.
    pub new_blocks: BlockMap,
    /// MST node CIDs of the old tree that the new tree lacks: once the old
    /// tree is no longer needed, these blocks are garbage (record blocks are
    /// not included: see the `prev` CIDs of updates and deletes).
    pub removed: Vec<Cid>,
}

enum Tok {
    /// A subtree; `None` height = a root whose height is not known yet.
    Sub(Cid, Option<u32>),
    Leaf(String, Cid),
}

struct Frame {
    node: NodeData,
    height: u32,
    /// Token position: `2i` is gap `i`, `2i + 1` is entry `i`.
    pos: usize,
}

struct Walker<'a, S: ?Sized> {
    store: &'a S,
    root: Option<Cid>,
    stack: Vec<Frame>,
    visited: Vec<(Cid, Bytes)>,
}

impl<'a, S: BlockStore + ?Sized> Walker<'a, S> {
    fn new(store: &'a S, root: Option<Cid>) -> Self {
        Walker {
            store,
            root,
            stack: Vec::new(),
            visited: Vec::new(),
        }
    }

    fn current(&mut self) -> Option<Tok> {
        if let Some(r) = self.root {
            return Some(Tok::Sub(r, None));
        }
        loop {
            let f = self.stack.last_mut()?;
            let n = f.node.entries.len();
            if f.pos > 2 * n {
                self.stack.pop();
                continue;
            }
            if f.pos % 2 == 0 {
                let i = f.pos / 2;
                let gap = if i == 0 {
                    f.node.left
                } else {
                    f.node.entries[i - 1].right
                };
                match gap {
                    Some(c) if f.height > 0 => return Some(Tok::Sub(c, Some(f.height - 1))),
                    _ => f.pos += 1,
                }
            } else {
                let e = &f.node.entries[f.pos / 2];
                return Some(Tok::Leaf(e.key.clone(), e.value));
            }
        }
    }

    /// Step past the current token (which `current` has positioned).
    fn advance(&mut self) {
        if self.root.take().is_some() {
            return;
        }
        if let Some(f) = self.stack.last_mut() {
            f.pos += 1;
        }
    }

    /// Replace the current subtree token with the subtree's contents.
    fn expand(&mut self, cid: Cid, height: Option<u32>) -> Result<(), MstError> {
        self.advance();
        let bytes = self.store.get(&cid)?.ok_or(MstError::MissingBlock(cid))?;
        let node = decode_node(&bytes).map_err(|e| MstError::InvalidNode {
            cid,
            reason: e.to_string(),
        })?;
        let h = match (height, node.height()) {
            (Some(expected), Some(h)) if expected != h => {
                return Err(MstError::InvalidNode {
                    cid,
                    reason: format!("node at height {expected} holds keys of height {h}"),
                })
            }
            (Some(expected), _) => expected,
            (None, Some(h)) => h,
            (None, None) if node.left.is_some() => {
                return Err(MstError::InvalidNode {
                    cid,
                    reason: "root node without entries (the tree is not trimmed)".into(),
                })
            }
            (None, None) => 0,
        };
        if height.is_some() && node.entries.is_empty() && node.left.is_none() {
            return Err(MstError::InvalidNode {
                cid,
                reason: "empty node inside the tree".into(),
            });
        }
        // Keys must lie at their own height (checked for the first entry by
        // decode_node for the rest).
        if let Some(e) = node.entries.first() {
            if key_height(e.key.as_bytes()) != h {
                return Err(MstError::InvalidNode {
                    cid,
                    reason: "misplaced key".into(),
                });
            }
        }
        self.visited.push((cid, bytes));
        self.stack.push(Frame {
            node,
            height: h,
            pos: 0,
        });
        Ok(())
    }
}

fn higher(a: Option<u32>, b: Option<u32>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(x), Some(y)) => x >= y,
    }
}

/// The changes from the tree rooted at `old` (None = empty) to the tree
/// rooted at `new`, reading both from `store`. Subtrees with equal CIDs are
/// skipped without being read.
pub fn diff<S: BlockStore + ?Sized>(
    store: &S,
    old: Option<Cid>,
    new: Cid,
) -> Result<MstDiff, MstError> {
    let mut a = Walker::new(store, old);
    let mut b = Walker::new(store, Some(new));
    let mut ops = Vec::new();
    loop {
        match (a.current(), b.current()) {
            (None, None) => break,
            (Some(Tok::Sub(ca, ha)), Some(Tok::Sub(cb, hb))) => {
                if ca == cb {
                    a.advance();
                    b.advance();
                } else {
                    let (ea, eb) = (higher(ha, hb), higher(hb, ha));
                    if ea {
                        a.expand(ca, ha)?;
                    }
                    if eb {
                        b.expand(cb, hb)?;
                    }
                }
            }
            (Some(Tok::Sub(ca, ha)), _) => a.expand(ca, ha)?,
            (_, Some(Tok::Sub(cb, hb))) => b.expand(cb, hb)?,
            (Some(Tok::Leaf(ka, va)), Some(Tok::Leaf(kb, vb))) => {
                if ka == kb {
                    if va != vb {
                        ops.push(DiffOp::Update {
                            key: kb,
                            prev: va,
                            cid: vb,
                        });
                    }
                    a.advance();
                    b.advance();
                } else if ka < kb {
                    ops.push(DiffOp::Delete { key: ka, prev: va });
                    a.advance();
                } else {
                    ops.push(DiffOp::Create { key: kb, cid: vb });
                    b.advance();
                }
            }
            (Some(Tok::Leaf(ka, va)), None) => {
                ops.push(DiffOp::Delete { key: ka, prev: va });
                a.advance();
            }
            (None, Some(Tok::Leaf(kb, vb))) => {
                ops.push(DiffOp::Create { key: kb, cid: vb });
                b.advance();
            }
        }
    }
    let old_seen: HashSet<Cid> = a.visited.iter().map(|(c, _)| *c).collect();
    let new_seen: HashSet<Cid> = b.visited.iter().map(|(c, _)| *c).collect();
    let mut new_blocks = BlockMap::new();
    for (cid, bytes) in b.visited {
        if !old_seen.contains(&cid) {
            new_blocks.put(cid, bytes);
        }
    }
    let mut removed: Vec<Cid> = Vec::new();
    let mut dedup = HashSet::new();
    for (cid, _) in a.visited {
        if !new_seen.contains(&cid) && dedup.insert(cid) {
            removed.push(cid);
        }
    }
    Ok(MstDiff {
        ops,
        new_blocks,
        removed,
    })
}
