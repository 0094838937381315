//! The lazily loaded, mutable MST.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::{Bound, ControlFlow};

use atproto_data::cid_for_dag_cbor;
use cid::Cid;

use super::key::{key_height, validate_key};
use super::node::{decode_node, encode_node, NodeData};
use super::MstError;
use crate::blockstore::{BlockMap, BlockStore};

/// A pointer to a subtree: either just its CID (not loaded) or the node.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    Stub(Cid),
    Node(Box<Node>),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) left: Option<Link>,
    pub(crate) entries: Vec<Entry>,
    /// The node's CID when it is unchanged since loaded or last sealed.
    pub(crate) cid: Option<Cid>,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) value: Cid,
    pub(crate) right: Option<Link>,
}

impl Node {
    fn empty() -> Self {
        Node {
            left: None,
            entries: Vec::new(),
            cid: None,
        }
    }

    /// The pointer of gap `i` (0 = left of the first entry).
    pub(crate) fn gap(&self, i: usize) -> &Option<Link> {
        if i == 0 {
            &self.left
        } else {
            &self.entries[i - 1].right
        }
    }

    fn gap_mut(&mut self, i: usize) -> &mut Option<Link> {
        if i == 0 {
            &mut self.left
        } else {
            &mut self.entries[i - 1].right
        }
    }

    fn last_gap_mut(&mut self) -> &mut Option<Link> {
        match self.entries.last_mut() {
            Some(e) => &mut e.right,
            None => &mut self.left,
        }
    }

    fn is_void(&self) -> bool {
        self.entries.is_empty() && self.left.is_none()
    }

    /// Index of the first entry whose key is >= `key`.
    pub(crate) fn position(&self, key: &str) -> usize {
        self.entries.partition_point(|e| e.key.as_str() < key)
    }

    fn from_data(data: NodeData, cid: Cid) -> Self {
        Node {
            left: data.left.map(Link::Stub),
            entries: data
                .entries
                .into_iter()
                .map(|e| Entry {
                    key: e.key,
                    value: e.value,
                    right: e.right.map(Link::Stub),
                })
                .collect(),
            cid: Some(cid),
        }
    }
}

/// Fetch and decode a node block, checking it belongs at `height` (when known).
pub(crate) fn load_node<S: BlockStore + ?Sized>(
    store: &S,
    cid: &Cid,
    height: Option<u32>,
) -> Result<Node, MstError> {
    let bytes = store.get(cid)?.ok_or(MstError::MissingBlock(*cid))?;
    load_node_bytes(cid, &bytes, height)
}

/// Decode a node block, checking it belongs at `height` (when known).
pub(crate) fn load_node_bytes(
    cid: &Cid,
    bytes: &[u8],
    height: Option<u32>,
) -> Result<Node, MstError> {
    let data = decode_node(bytes).map_err(|e| MstError::InvalidNode {
        cid: *cid,
        reason: e.to_string(),
    })?;
    if let Some(expected) = height {
        match data.height() {
            Some(h) if h != expected => {
                return Err(MstError::InvalidNode {
                    cid: *cid,
                    reason: format!("node at height {expected} holds keys of height {h}"),
                })
            }
            None if data.left.is_none() => {
                return Err(MstError::InvalidNode {
                    cid: *cid,
                    reason: "empty node inside the tree".into(),
                })
            }
            None if expected == 0 => {
                return Err(MstError::InvalidNode {
                    cid: *cid,
                    reason: "a node at height 0 has a subtree".into(),
                })
            }
            _ => {}
        }
    }
    Ok(Node::from_data(data, *cid))
}

/// Borrow the node behind a link, loading a stub without caching it.
pub(crate) fn view<'a, S: BlockStore + ?Sized>(
    link: &'a Link,
    height: u32,
    store: &S,
) -> Result<Cow<'a, Node>, MstError> {
    match link {
        Link::Node(n) => Ok(Cow::Borrowed(n)),
        Link::Stub(cid) => Ok(Cow::Owned(load_node(store, cid, Some(height))?)),
    }
}

/// Resolve a link in place (loading a stub) and return the node.
fn resolve<'a, S: BlockStore + ?Sized>(
    link: &'a mut Link,
    height: u32,
    store: &S,
) -> Result<&'a mut Node, MstError> {
    if let Link::Stub(cid) = link {
        let node = load_node(store, cid, Some(height))?;
        *link = Link::Node(Box::new(node));
    }
    match link {
        Link::Node(n) => Ok(n),
        // Just replaced above.
        Link::Stub(cid) => Err(MstError::MissingBlock(*cid)),
    }
}

/// Bookkeeping of blocks created and replaced by mutations.
#[derive(Debug, Default, Clone)]
struct Changes {
    /// Node blocks sealed since the last `commit`.
    pending: BlockMap,
    /// CIDs of previously existing nodes replaced since the last `commit`.
    removed: Vec<Cid>,
}

impl Changes {
    /// Mark a node modified: forget its CID, remembering it as replaced.
    fn touch(&mut self, node: &mut Node) {
        if let Some(c) = node.cid.take() {
            if self.pending.remove(&c).is_none() {
                self.removed.push(c);
            }
        }
    }
}

/// The result of sealing a set of changes: the new root, the node blocks
/// created, and the node CIDs no longer part of the tree.
#[derive(Debug, Clone, Default)]
pub struct MstCommit {
    /// The root CID after the changes.
    pub root: Cid,
    /// Every MST node block created by the changes (including the root).
    pub new_blocks: BlockMap,
    /// CIDs of MST nodes of the previous tree that the new tree no longer holds.
    pub removed: Vec<Cid>,
}

/// Options for [`Mst::list`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions<'a> {
    /// Only keys with this prefix (e.g. `"app.bsky.feed.post/"`).
    pub prefix: Option<&'a str>,
    /// Lower bound on keys.
    pub start: Option<Bound<&'a str>>,
    /// Upper bound on keys.
    pub end: Option<Bound<&'a str>>,
    /// Largest key first.
    pub reverse: bool,
    /// At most this many results.
    pub limit: Option<usize>,
}

/// A Merkle Search Tree, loaded lazily from a [`BlockStore`].
///
/// Only the nodes an operation touches are fetched; untouched subtrees stay
/// CID pointers, so operations work on partial trees and report
/// [`MstError::MissingBlock`] when they need a block the store lacks.
/// Mutations are atomic: every block an operation needs is fetched before
/// anything changes, so after a `MissingBlock` error the tree is unchanged
/// and the operation can be retried once the block is available.
#[derive(Debug, Clone)]
pub struct Mst {
    /// None = the empty tree.
    root: Option<Link>,
    /// Height of the root slot (may exceed the canonical height until the
    /// tree is trimmed when sealing).
    height: u32,
    changes: Changes,
}

impl Default for Mst {
    fn default() -> Self {
        Self::new()
    }
}

/// The CID of the empty MST node `{e: [], l: null}`.
pub fn empty_root_cid() -> Cid {
    cid_for_dag_cbor(&encode_node(None, std::iter::empty()))
}

impl Mst {
    /// A new, empty tree.
    pub fn new() -> Self {
        Mst {
            root: None,
            height: 0,
            changes: Changes::default(),
        }
    }

    /// Open the tree whose root node is `root`. Only the root block is read.
    pub fn load<S: BlockStore + ?Sized>(store: &S, root: Cid) -> Result<Self, MstError> {
        let node = load_node(store, &root, None)?;
        let mut mst = Mst::new();
        match node.entries.first() {
            Some(e) => {
                mst.height = key_height(e.key.as_bytes());
                if mst.height == 0
                    && (node.left.is_some() || node.entries.iter().any(|e| e.right.is_some()))
                {
                    return Err(MstError::InvalidNode {
                        cid: root,
                        reason: "a node at height 0 has a subtree".into(),
                    });
                }
                mst.root = Some(Link::Node(Box::new(node)));
            }
            None if node.left.is_some() => {
                return Err(MstError::InvalidNode {
                    cid: root,
                    reason: "root node without entries (the tree is not trimmed)".into(),
                });
            }
            None => {
                // The empty tree: its one node is replaced by the first insert.
                mst.changes.removed.push(root);
            }
        }
        Ok(mst)
    }

    /// Build a tree from (key, value) pairs, in any order (keys validated,
    /// duplicates rejected).
    pub fn from_entries<I, K>(entries: I) -> Result<Self, MstError>
    where
        I: IntoIterator<Item = (K, Cid)>,
        K: Into<String>,
    {
        let mut list: Vec<(String, Cid)> =
            entries.into_iter().map(|(k, v)| (k.into(), v)).collect();
        for (k, _) in &list {
            validate_key(k)?;
        }
        list.sort_by(|a, b| a.0.cmp(&b.0));
        for w in list.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(MstError::KeyExists(w[0].0.clone()));
            }
        }
        let with_heights: Vec<(String, Cid, u32)> = list
            .into_iter()
            .map(|(k, v)| {
                let h = key_height(k.as_bytes());
                (k, v, h)
            })
            .collect();
        let height = with_heights.iter().map(|e| e.2).max().unwrap_or(0);
        let mut mst = Mst::new();
        mst.height = height;
        mst.root = build_sorted(&with_heights, height);
        Ok(mst)
    }

    /// Whether the tree holds no keys. (A tree whose root is not loaded is
    /// never empty: its root was loaded by [`Mst::load`].)
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The value stored under `key`.
    pub fn get<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        key: &str,
    ) -> Result<Option<Cid>, MstError> {
        let hk = key_height(key.as_bytes());
        match self.root.as_ref() {
            Some(root) if hk <= self.height => get_in(root, self.height, store, key, hk),
            _ => Ok(None),
        }
    }

    /// Add a new key. Fails with [`MstError::KeyExists`] if present.
    pub fn insert<S: BlockStore + ?Sized>(
        &mut self,
        store: &S,
        key: &str,
        value: Cid,
    ) -> Result<(), MstError> {
        validate_key(key)?;
        let hk = key_height(key.as_bytes());
        if self.height < hk {
            self.lift(hk);
        }
        if prepare_search(&mut self.root, self.height, key, store)? {
            return Err(MstError::KeyExists(key.to_owned()));
        }
        insert_at(
            &mut self.root,
            self.height,
            key,
            hk,
            value,
            &mut self.changes,
            store,
        )
    }

    /// Change the value of an existing key, returning the previous value.
    /// Fails with [`MstError::KeyNotFound`] if absent.
    pub fn update<S: BlockStore + ?Sized>(
        &mut self,
        store: &S,
        key: &str,
        value: Cid,
    ) -> Result<Cid, MstError> {
        let hk = key_height(key.as_bytes());
        if hk > self.height || !prepare_search(&mut self.root, self.height, key, store)? {
            return Err(MstError::KeyNotFound(key.to_owned()));
        }
        update_at(
            &mut self.root,
            self.height,
            key,
            value,
            &mut self.changes,
            store,
        )
    }

    /// Set a key's value whether or not it exists; returns the previous value.
    pub fn put<S: BlockStore + ?Sized>(
        &mut self,
        store: &S,
        key: &str,
        value: Cid,
    ) -> Result<Option<Cid>, MstError> {
        match self.update(store, key, value) {
            Ok(prev) => Ok(Some(prev)),
            Err(MstError::KeyNotFound(_)) => self.insert(store, key, value).map(|()| None),
            Err(e) => Err(e),
        }
    }

    /// Remove a key, returning its value. Fails with
    /// [`MstError::KeyNotFound`] if absent.
    pub fn delete<S: BlockStore + ?Sized>(
        &mut self,
        store: &S,
        key: &str,
    ) -> Result<Cid, MstError> {
        let hk = key_height(key.as_bytes());
        if hk > self.height || !prepare_delete(&mut self.root, self.height, key, store)? {
            return Err(MstError::KeyNotFound(key.to_owned()));
        }
        delete_at(
            &mut self.root,
            self.height,
            key,
            hk,
            &mut self.changes,
            store,
        )
    }

    /// Wrap the root in empty nodes up to `height`.
    fn lift(&mut self, height: u32) {
        if let Some(Link::Node(n)) = &mut self.root {
            if n.is_void() {
                self.changes.touch(n);
                self.root = None;
            }
        }
        if self.root.is_none() {
            self.height = height;
            return;
        }
        while self.height < height {
            let child = self.root.take();
            self.root = Some(Link::Node(Box::new(Node {
                left: child,
                entries: Vec::new(),
                cid: None,
            })));
            self.height += 1;
        }
    }

    /// Remove empty nodes from the top (the root of a canonical tree holds
    /// entries, unless the tree is empty).
    fn trim<S: BlockStore + ?Sized>(&mut self, store: &S) -> Result<(), MstError> {
        loop {
            let Some(link) = self.root.as_mut() else {
                return Ok(());
            };
            let node = resolve(link, self.height, store)?;
            if !node.entries.is_empty() {
                return Ok(());
            }
            self.changes.touch(node);
            let child = node.left.take();
            self.root = child;
            if self.root.is_none() || self.height == 0 {
                self.root = None;
                self.height = 0;
                return Ok(());
            }
            self.height -= 1;
        }
    }

    /// The root CID, sealing (encoding and hashing) every changed node.
    /// Unchanged nodes are never re-encoded.
    pub fn root<S: BlockStore + ?Sized>(&mut self, store: &S) -> Result<Cid, MstError> {
        self.trim(store)?;
        match self.root.as_mut() {
            None => {
                let bytes = encode_node(None, std::iter::empty());
                let cid = cid_for_dag_cbor(&bytes);
                self.changes.pending.put(cid, bytes);
                Ok(cid)
            }
            Some(link) => Ok(seal(link, &mut self.changes.pending)),
        }
    }

    /// Seal the changes made since the last commit (or load): the new root,
    /// the node blocks created and the node CIDs no longer in the tree.
    pub fn commit<S: BlockStore + ?Sized>(&mut self, store: &S) -> Result<MstCommit, MstError> {
        let root = self.root(store)?;
        let mut new_blocks = std::mem::take(&mut self.changes.pending);
        let removed_all = std::mem::take(&mut self.changes.removed);
        let mut seen = HashSet::new();
        let mut removed = Vec::new();
        for c in removed_all {
            // A node rebuilt identical to one it replaced is neither new nor
            // removed (it was already stored).
            if new_blocks.remove(&c).is_none() && seen.insert(c) {
                removed.push(c);
            }
        }
        Ok(MstCommit {
            root,
            new_blocks,
            removed,
        })
    }

    /// Every (key, value) in key order.
    pub fn entries<S: BlockStore + ?Sized>(
        &self,
        store: &S,
    ) -> Result<Vec<(String, Cid)>, MstError> {
        self.list(store, &ListOptions::default())
    }

    /// Keys in order (or reverse order), restricted by prefix and bounds, up
    /// to a limit. Subtrees outside the range are never fetched.
    pub fn list<S: BlockStore + ?Sized>(
        &self,
        store: &S,
        opts: &ListOptions<'_>,
    ) -> Result<Vec<(String, Cid)>, MstError> {
        let mut out = Vec::new();
        let limit = opts.limit.unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(out);
        }
        let lower: Bound<&str> = match (opts.start, opts.prefix) {
            (Some(b), Some(p)) => max_lower(b, Bound::Included(p)),
            (Some(b), None) => b,
            (None, Some(p)) => Bound::Included(p),
            (None, None) => Bound::Unbounded,
        };
        let upper = opts.end.unwrap_or(Bound::Unbounded);
        let range = Range {
            lower,
            upper,
            prefix: opts.prefix,
        };
        if let Some(root) = self.root.as_ref() {
            let _ = walk(
                root,
                self.height,
                store,
                &range,
                opts.reverse,
                &mut |k, v| {
                    out.push((k.to_owned(), *v));
                    if out.len() >= limit {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )?;
        }
        Ok(out)
    }

    /// Number of keys (walks the whole tree).
    pub fn len<S: BlockStore + ?Sized>(&self, store: &S) -> Result<usize, MstError> {
        let mut n = 0usize;
        if let Some(root) = self.root.as_ref() {
            let range = Range {
                lower: Bound::Unbounded,
                upper: Bound::Unbounded,
                prefix: None,
            };
            let _ = walk(root, self.height, store, &range, false, &mut |_, _| {
                n += 1;
                ControlFlow::Continue(())
            })?;
        }
        Ok(n)
    }
}

fn get_in<S: BlockStore + ?Sized>(
    link: &Link,
    h: u32,
    store: &S,
    key: &str,
    hk: u32,
) -> Result<Option<Cid>, MstError> {
    let node = view(link, h, store)?;
    let i = node.position(key);
    if let Some(e) = node.entries.get(i) {
        if e.key == key {
            return Ok(Some(e.value));
        }
    }
    if h == hk || h == 0 {
        return Ok(None);
    }
    match node.gap(i) {
        Some(child) => get_in(child, h - 1, store, key, hk),
        None => Ok(None),
    }
}

fn max_lower<'a>(a: Bound<&'a str>, b: Bound<&'a str>) -> Bound<&'a str> {
    let key = |x: &Bound<&'a str>| match x {
        Bound::Included(s) | Bound::Excluded(s) => Some(*s),
        Bound::Unbounded => None,
    };
    match (key(&a), key(&b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(x), Some(y)) if x > y => a,
        (Some(x), Some(y)) if y > x => b,
        _ => {
            if matches!(a, Bound::Excluded(_)) {
                a
            } else {
                b
            }
        }
    }
}

struct Range<'a> {
    lower: Bound<&'a str>,
    upper: Bound<&'a str>,
    prefix: Option<&'a str>,
}

impl Range<'_> {
    fn above_lower(&self, k: &str) -> bool {
        match self.lower {
            Bound::Included(l) => k >= l,
            Bound::Excluded(l) => k > l,
            Bound::Unbounded => true,
        }
    }
    fn below_upper(&self, k: &str) -> bool {
        let in_upper = match self.upper {
            Bound::Included(u) => k <= u,
            Bound::Excluded(u) => k < u,
            Bound::Unbounded => true,
        };
        // Past the prefix range entirely?
        let in_prefix = match self.prefix {
            Some(p) => k.starts_with(p) || k < p,
            None => true,
        };
        in_upper && in_prefix
    }
    fn contains(&self, k: &str) -> bool {
        self.above_lower(k) && self.below_upper(k) && self.prefix.is_none_or(|p| k.starts_with(p))
    }
}

/// In-order (or reverse) walk of the keys within `range`.
fn walk<S: BlockStore + ?Sized>(
    link: &Link,
    h: u32,
    store: &S,
    range: &Range<'_>,
    reverse: bool,
    f: &mut dyn FnMut(&str, &Cid) -> ControlFlow<()>,
) -> Result<ControlFlow<()>, MstError> {
    let node = view(link, h, store)?;
    let n = node.entries.len();
    // Gap i lies between entry i-1 and entry i.
    let gap_relevant = |i: usize| -> bool {
        let after_lo = i >= n || range.above_lower(&node.entries[i].key);
        let before_hi = i == 0 || range.below_upper(&node.entries[i - 1].key);
        after_lo && before_hi
    };
    let visit_gap = |i: usize, f: &mut dyn FnMut(&str, &Cid) -> ControlFlow<()>| {
        if h > 0 && gap_relevant(i) {
            if let Some(child) = node.gap(i) {
                return walk(child, h - 1, store, range, reverse, f);
            }
        }
        Ok(ControlFlow::Continue(()))
    };
    if !reverse {
        for i in 0..=n {
            if visit_gap(i, f)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
            if let Some(e) = node.entries.get(i) {
                if !range.below_upper(&e.key) {
                    return Ok(ControlFlow::Break(()));
                }
                if range.contains(&e.key) && f(&e.key, &e.value).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
        }
    } else {
        for i in (0..=n).rev() {
            if let Some(e) = node.entries.get(i) {
                if !range.above_lower(&e.key) {
                    return Ok(ControlFlow::Break(()));
                }
                if range.contains(&e.key) && f(&e.key, &e.value).is_break() {
                    return Ok(ControlFlow::Break(()));
                }
            }
            if visit_gap(i, f)?.is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Build the canonical subtree at `height` for sorted keys (all of height <=
/// `height`).
fn build_sorted(keys: &[(String, Cid, u32)], height: u32) -> Option<Link> {
    if keys.is_empty() {
        return None;
    }
    let mut node = Node::empty();
    let mut start = 0;
    for (i, (k, v, h)) in keys.iter().enumerate() {
        if *h == height {
            let child = if height > 0 {
                build_sorted(&keys[start..i], height - 1)
            } else {
                None
            };
            *node.last_gap_mut() = child;
            node.entries.push(Entry {
                key: k.clone(),
                value: *v,
                right: None,
            });
            start = i + 1;
        }
    }
    let tail = if height > 0 {
        build_sorted(&keys[start..], height - 1)
    } else {
        None
    };
    *node.last_gap_mut() = tail;
    Some(Link::Node(Box::new(node)))
}

/// Load every node on the search path of `key` (down to where it is, or to
/// the bottom). Returns whether the key is present.
fn prepare_search<S: BlockStore + ?Sized>(
    slot: &mut Option<Link>,
    mut h: u32,
    key: &str,
    store: &S,
) -> Result<bool, MstError> {
    let mut cur = slot;
    loop {
        let Some(link) = cur else {
            return Ok(false);
        };
        let node = resolve(link, h, store)?;
        let i = node.position(key);
        if node.entries.get(i).is_some_and(|e| e.key == key) {
            return Ok(true);
        }
        if h == 0 {
            return Ok(false);
        }
        h -= 1;
        cur = node.gap_mut(i);
    }
}

/// Load every node a delete of `key` needs: its search path and the facing
/// spines of the two subtrees around it. Returns whether the key is present.
fn prepare_delete<S: BlockStore + ?Sized>(
    slot: &mut Option<Link>,
    mut h: u32,
    key: &str,
    store: &S,
) -> Result<bool, MstError> {
    let mut cur = slot;
    loop {
        let Some(link) = cur else {
            return Ok(false);
        };
        let node = resolve(link, h, store)?;
        let i = node.position(key);
        if node.entries.get(i).is_some_and(|e| e.key == key) {
            if h == 0 {
                return Ok(true);
            }
            // Split borrows of the two gaps around entry i.
            let (before, rest) = node.entries.split_at_mut(i);
            let left_gap = match before.last_mut() {
                Some(e) => &mut e.right,
                None => &mut node.left,
            };
            let right_gap = &mut rest[0].right;
            prepare_merge(left_gap, right_gap, h - 1, store)?;
            return Ok(true);
        }
        if h == 0 {
            return Ok(false);
        }
        h -= 1;
        cur = node.gap_mut(i);
    }
}

fn prepare_merge<S: BlockStore + ?Sized>(
    a: &mut Option<Link>,
    b: &mut Option<Link>,
    h: u32,
    store: &S,
) -> Result<(), MstError> {
    let (Some(la), Some(lb)) = (a, b) else {
        return Ok(());
    };
    let na = resolve(la, h, store)?;
    let nb = resolve(lb, h, store)?;
    if h == 0 {
        return Ok(());
    }
    prepare_merge(na.last_gap_mut(), &mut nb.left, h - 1, store)
}

fn take_node<S: BlockStore + ?Sized>(
    link: Link,
    h: u32,
    store: &S,
    changes: &mut Changes,
) -> Result<Box<Node>, MstError> {
    let mut b = match link {
        Link::Node(b) => b,
        Link::Stub(cid) => Box::new(load_node(store, &cid, Some(h))?),
    };
    changes.touch(&mut b);
    Ok(b)
}

fn normalize(node: Box<Node>) -> Option<Link> {
    if node.is_void() {
        None
    } else {
        Some(Link::Node(node))
    }
}

fn insert_at<S: BlockStore + ?Sized>(
    slot: &mut Option<Link>,
    h: u32,
    key: &str,
    hk: u32,
    value: Cid,
    changes: &mut Changes,
    store: &S,
) -> Result<(), MstError> {
    let Some(link) = slot else {
        // A fresh chain of nodes down to the key's height.
        let mut node = Node::empty();
        if hk == h {
            node.entries.push(Entry {
                key: key.to_owned(),
                value,
                right: None,
            });
        } else {
            insert_at(&mut node.left, h - 1, key, hk, value, changes, store)?;
        }
        *slot = Some(Link::Node(Box::new(node)));
        return Ok(());
    };
    let node = resolve(link, h, store)?;
    changes.touch(node);
    let i = node.position(key);
    if hk == h {
        let gap = node.gap_mut(i).take();
        let (l, r) = if h > 0 {
            split(gap, h - 1, key, changes, store)?
        } else {
            (None, None)
        };
        *node.gap_mut(i) = l;
        node.entries.insert(
            i,
            Entry {
                key: key.to_owned(),
                value,
                right: r,
            },
        );
        Ok(())
    } else {
        insert_at(node.gap_mut(i), h - 1, key, hk, value, changes, store)
    }
}

/// Split the subtree at `h` around `key` (absent) into the parts below and
/// above it.
fn split<S: BlockStore + ?Sized>(
    slot: Option<Link>,
    h: u32,
    key: &str,
    changes: &mut Changes,
    store: &S,
) -> Result<(Option<Link>, Option<Link>), MstError> {
    let Some(link) = slot else {
        return Ok((None, None));
    };
    let mut node = take_node(link, h, store, changes)?;
    let i = node.position(key);
    let gap = node.gap_mut(i).take();
    let (gl, gr) = if h > 0 {
        split(gap, h - 1, key, changes, store)?
    } else {
        (None, None)
    };
    let right_entries = node.entries.split_off(i);
    *node.last_gap_mut() = gl;
    let right = Box::new(Node {
        left: gr,
        entries: right_entries,
        cid: None,
    });
    Ok((normalize(node), normalize(right)))
}

/// Join two adjacent subtrees at `h` (all keys of `a` below those of `b`).
fn merge<S: BlockStore + ?Sized>(
    a: Option<Link>,
    b: Option<Link>,
    h: u32,
    changes: &mut Changes,
    store: &S,
) -> Result<Option<Link>, MstError> {
    let (la, lb) = match (a, b) {
        (None, x) | (x, None) => return Ok(x),
        (Some(la), Some(lb)) => (la, lb),
    };
    let mut na = take_node(la, h, store, changes)?;
    let mut nb = take_node(lb, h, store, changes)?;
    let mid = if h > 0 {
        merge(
            na.last_gap_mut().take(),
            nb.left.take(),
            h - 1,
            changes,
            store,
        )?
    } else {
        None
    };
    *na.last_gap_mut() = mid;
    na.entries.append(&mut nb.entries);
    Ok(normalize(na))
}

fn update_at<S: BlockStore + ?Sized>(
    slot: &mut Option<Link>,
    mut h: u32,
    key: &str,
    value: Cid,
    changes: &mut Changes,
    store: &S,
) -> Result<Cid, MstError> {
    let mut cur = slot;
    loop {
        let Some(link) = cur else {
            return Err(MstError::KeyNotFound(key.to_owned()));
        };
        let node = resolve(link, h, store)?;
        changes.touch(node);
        let i = node.position(key);
        if let Some(e) = node.entries.get_mut(i) {
            if e.key == key {
                return Ok(std::mem::replace(&mut e.value, value));
            }
        }
        if h == 0 {
            return Err(MstError::KeyNotFound(key.to_owned()));
        }
        h -= 1;
        cur = node.gap_mut(i);
    }
}

fn delete_at<S: BlockStore + ?Sized>(
    slot: &mut Option<Link>,
    h: u32,
    key: &str,
    hk: u32,
    changes: &mut Changes,
    store: &S,
) -> Result<Cid, MstError> {
    let Some(link) = slot else {
        return Err(MstError::KeyNotFound(key.to_owned()));
    };
    let node = resolve(link, h, store)?;
    changes.touch(node);
    let i = node.position(key);
    let removed = if hk == h {
        if node.entries.get(i).is_none_or(|e| e.key != key) {
            return Err(MstError::KeyNotFound(key.to_owned()));
        }
        let entry = node.entries.remove(i);
        let before = node.gap_mut(i).take();
        let merged = if h > 0 {
            merge(before, entry.right, h - 1, changes, store)?
        } else {
            None
        };
        *node.gap_mut(i) = merged;
        entry.value
    } else {
        if h == 0 {
            return Err(MstError::KeyNotFound(key.to_owned()));
        }
        delete_at(node.gap_mut(i), h - 1, key, hk, changes, store)?
    };
    if node.is_void() {
        *slot = None;
    }
    Ok(removed)
}

/// Encode every changed node under `link` (children first), recording the
/// blocks in `pending`; returns the link's CID.
fn seal(link: &mut Link, pending: &mut BlockMap) -> Cid {
    match link {
        Link::Stub(cid) => *cid,
        Link::Node(node) => {
            if let Some(cid) = node.cid {
                return cid;
            }
            let left = node.left.as_mut().map(|l| seal(l, pending));
            let rights: Vec<Option<Cid>> = node
                .entries
                .iter_mut()
                .map(|e| e.right.as_mut().map(|r| seal(r, pending)))
                .collect();
            let bytes = encode_node(
                left.as_ref(),
                node.entries
                    .iter()
                    .zip(&rights)
                    .map(|(e, r)| (e.key.as_str(), &e.value, r.as_ref())),
            );
            let cid = cid_for_dag_cbor(&bytes);
            pending.put(cid, bytes);
            node.cid = Some(cid);
            cid
        }
    }
}
