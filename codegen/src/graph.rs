//! The by-value containment graph between generated types. A cycle of
//! by-value uses (fields, union variants, aliases) would make a type
//! infinitely large, so inside each strongly connected component the back
//! edges of a depth-first search are boxed: that breaks every cycle and
//! boxes nothing outside cycles. Vectors already store their elements on
//! the heap and are not edges.

use std::collections::{HashMap, HashSet};

use crate::ir::{ItemKey, ItemKind, Lowered, Ty};

/// The by-value uses that must be boxed.
#[derive(Debug)]
pub(crate) struct Components {
    boxed: HashSet<(ItemKey, ItemKey)>,
}

impl Components {
    /// Whether a by-value use of `to` inside `from` must be boxed.
    pub fn needs_box(&self, from: ItemKey, to: ItemKey) -> bool {
        self.boxed.contains(&(from, to))
    }
}

fn direct_targets(lowered: &Lowered, ty: &Ty, out: &mut Vec<ItemKey>) {
    match ty {
        Ty::Item(k) => out.push(*k),
        Ty::Def(d) => {
            if let Some(k) = lowered.def_items.get(d) {
                out.push(*k);
            }
        }
        Ty::Vec(_) => {}
        Ty::Bool
        | Ty::Int
        | Ty::Str
        | Ty::Format(_)
        | Ty::Bytes
        | Ty::CidLink
        | Ty::Blob
        | Ty::Unknown => {}
    }
}

/// Compute the components (Tarjan's algorithm, iterative).
pub(crate) fn components(lowered: &Lowered) -> Components {
    // Number the nodes.
    let mut keys: Vec<ItemKey> = Vec::new();
    for (m, module) in lowered.modules.iter().enumerate() {
        for i in 0..module.items.len() {
            keys.push(ItemKey { module: m, item: i });
        }
    }
    let index_of: HashMap<ItemKey, usize> = keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
    let mut targets = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        targets.clear();
        if let Some(item) = lowered.item(*key) {
            match &item.kind {
                ItemKind::Struct { fields, .. } => {
                    for f in fields {
                        direct_targets(lowered, &f.ty, &mut targets);
                    }
                }
                ItemKind::Union { variants, .. } => {
                    for v in variants {
                        direct_targets(lowered, &v.ty, &mut targets);
                    }
                }
                ItemKind::Alias(t) => direct_targets(lowered, t, &mut targets),
                ItemKind::StrEnum { .. } | ItemKind::Error { .. } | ItemKind::Const(_) => {}
            }
        }
        edges[n] = targets
            .iter()
            .filter_map(|k| index_of.get(k).copied())
            .collect();
    }

    const UNVISITED: usize = usize::MAX;
    let n = keys.len();
    let mut index = vec![UNVISITED; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack: Vec<usize> = Vec::new();
    let mut comp = vec![UNVISITED; n];
    let mut next_index = 0usize;
    let mut next_comp = 0usize;
    // Call stack of (node, next edge position).
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        calls.push((root, 0));
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = calls.last_mut() {
            if let Some(&w) = edges[v].get(*pos) {
                *pos += 1;
                if index[w] == UNVISITED {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp[w] = next_comp;
                    if w == v {
                        break;
                    }
                }
                next_comp += 1;
            }
        }
    }
    // Within each cyclic component, box the back edges of a depth-first
    // search (started from the lowest node, edges in field order):
    // removing them leaves no cycle, and every other edge stays unboxed.
    let mut size = vec![0usize; next_comp];
    for &c in &comp {
        if c != UNVISITED {
            size[c] += 1;
        }
    }
    let mut boxed = HashSet::new();
    let mut state = vec![0u8; n]; // 0 new, 1 on the DFS path, 2 done
    for root in 0..n {
        let c = comp[root];
        let cyclic = c != UNVISITED && (size[c] > 1 || edges[root].contains(&root));
        if !cyclic || state[root] != 0 {
            continue;
        }
        let mut calls: Vec<(usize, usize)> = vec![(root, 0)];
        state[root] = 1;
        while let Some(&mut (v, ref mut pos)) = calls.last_mut() {
            if let Some(&w) = edges[v].get(*pos) {
                *pos += 1;
                if comp[w] != c {
                    continue;
                }
                match state[w] {
                    0 => {
                        state[w] = 1;
                        calls.push((w, 0));
                    }
                    1 => {
                        boxed.insert((keys[v], keys[w]));
                    }
                    _ => {}
                }
                continue;
            }
            state[v] = 2;
            calls.pop();
        }
    }
    Components { boxed }
}
