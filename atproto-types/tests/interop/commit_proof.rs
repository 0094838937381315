//! Vectors for sync 1.1 commit proofs (firehose/commit-proof-fixtures.json):
//! build the tree of `keys` (all with `leafValue`), apply `adds` and `dels`,
//! check both roots, check that the writer's inversion block set is exactly
//! `blocksInProof` (the new root and the MST nodes needed to undo the ops),
//! and check that inverting the ops over only those blocks, in every order,
//! gives `rootBeforeCommit`.

use std::collections::BTreeSet;
use std::str::FromStr;

use atproto_types::repo::blockstore::LayeredStore;
use atproto_types::repo::mst::Mst;
use atproto_types::repo::sync::{inversion_blocks, invert_ops, RepoOp};
use atproto_types::repo::{BlockMap, Cid};
use serde_json::Value;

use super::common::read_json;

fn strings(v: &Value, field: &str) -> Result<Vec<String>, String> {
    v[field]
        .as_array()
        .ok_or_else(|| format!("missing array {field}"))?
        .iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("non-string in {field}"))
        })
        .collect()
}

fn cid(v: &Value, field: &str) -> Result<Cid, String> {
    let s = v[field]
        .as_str()
        .ok_or_else(|| format!("missing {field}"))?;
    Cid::from_str(s).map_err(|e| format!("{field}: {e}"))
}

/// All orderings of `items` (the fixtures have at most three ops).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

fn check(f: &Value) -> Result<(), String> {
    let leaf = cid(f, "leafValue")?;
    let keys = strings(f, "keys")?;
    let adds = strings(f, "adds")?;
    let dels = strings(f, "dels")?;
    let before_expected = cid(f, "rootBeforeCommit")?;
    let after_expected = cid(f, "rootAfterCommit")?;
    let want: BTreeSet<Cid> = strings(f, "blocksInProof")?
        .iter()
        .map(|s| Cid::from_str(s).map_err(|e| format!("blocksInProof: {e}")))
        .collect::<Result<_, _>>()?;

    let mut store = BlockMap::new();
    let mut mst = Mst::new();
    for k in &keys {
        mst.insert(&store, k, leaf)
            .map_err(|e| format!("insert {k}: {e}"))?;
    }
    let first = mst.commit(&store).map_err(|e| e.to_string())?;
    if first.root != before_expected {
        return Err(format!("root before {} != {before_expected}", first.root));
    }
    store.extend(first.new_blocks);

    let mut ops = Vec::new();
    for k in &adds {
        mst.insert(&store, k, leaf)
            .map_err(|e| format!("add {k}: {e}"))?;
        ops.push(RepoOp::create(k.clone(), leaf));
    }
    for k in &dels {
        let prev = mst.delete(&store, k).map_err(|e| format!("del {k}: {e}"))?;
        ops.push(RepoOp::delete(k.clone(), prev));
    }
    let second = mst.commit(&store).map_err(|e| e.to_string())?;
    if second.root != after_expected {
        return Err(format!("root after {} != {after_expected}", second.root));
    }

    // The writer's block set: new MST nodes plus the inversion proofs.
    let layered = LayeredStore {
        first: &second.new_blocks,
        second: &store,
    };
    let proof = inversion_blocks(&layered, second.root, &ops).map_err(|e| e.to_string())?;
    let mut produced: BTreeSet<Cid> = proof.cids().copied().collect();
    produced.extend(second.new_blocks.cids().copied());
    if produced != want {
        let extra: Vec<String> = produced.difference(&want).map(Cid::to_string).collect();
        let missing: Vec<String> = want.difference(&produced).map(Cid::to_string).collect();
        return Err(format!(
            "proof blocks differ: extra {extra:?}, missing {missing:?}"
        ));
    }

    // Inversion over exactly the fixture's blocks, every order.
    store.extend(second.new_blocks);
    let mut carried = BlockMap::new();
    for c in &want {
        let bytes = store.get(c).ok_or_else(|| format!("no bytes for {c}"))?;
        carried.put(*c, bytes.clone());
    }
    let mut errors = Vec::new();
    for order in permutations(&ops) {
        let names: Vec<&str> = order.iter().map(|o| o.path.as_str()).collect();
        match invert_ops(&carried, after_expected, &order) {
            Ok(r) if r == before_expected => {}
            Ok(r) => errors.push(format!("order {names:?}: inverted to {r}")),
            Err(e) => errors.push(format!("order {names:?}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

#[test]
fn commit_proof_fixtures() {
    let fixtures = match read_json("firehose/commit-proof-fixtures.json") {
        Value::Array(items) if !items.is_empty() => items,
        other => panic!("expected a non-empty array, got {other}"),
    };
    let mut failures = Vec::new();
    for f in &fixtures {
        let name = f["comment"].as_str().unwrap_or("(unnamed)");
        if let Err(e) = check(f) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
