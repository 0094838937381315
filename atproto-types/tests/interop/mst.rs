//! Vectors for mst: key heights, common prefix lengths, and a tree of the
//! example keys (built in several orders, and taken apart again).

use atproto_types::repo::mst::{common_prefix_len, key_height, validate_key, Mst};
use atproto_types::repo::{BlockMap, Cid};
use serde_json::Value;

use super::common::{read_json, read_lines};

fn items(rel: &str) -> Vec<Value> {
    match read_json(rel) {
        Value::Array(items) if !items.is_empty() => items,
        other => panic!("{rel}: expected a non-empty array, got {other}"),
    }
}

#[test]
fn key_heights() {
    let mut failures = Vec::new();
    for v in items("mst/key_heights.json") {
        let (Some(key), Some(height)) = (v["key"].as_str(), v["height"].as_u64()) else {
            failures.push(format!("malformed vector {v}"));
            continue;
        };
        let got = key_height(key.as_bytes());
        if u64::from(got) != height {
            failures.push(format!("{key:?}: height {got}, expected {height}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn common_prefix() {
    let mut failures = Vec::new();
    for v in items("mst/common_prefix.json") {
        let (Some(l), Some(r), Some(len)) =
            (v["left"].as_str(), v["right"].as_str(), v["len"].as_u64())
        else {
            failures.push(format!("malformed vector {v}"));
            continue;
        };
        let got = common_prefix_len(l.as_bytes(), r.as_bytes());
        if got as u64 != len {
            failures.push(format!("{l:?} / {r:?}: {got}, expected {len}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A deterministic record CID per index.
fn value(i: usize) -> Cid {
    let mut m = BlockMap::new();
    m.put_cbor(vec![0x19, (i >> 8) as u8, i as u8])
}

#[test]
fn example_keys_tree() {
    let keys = read_lines("mst/example_keys.txt");
    let mut failures = Vec::new();
    for k in &keys {
        if let Err(e) = validate_key(k) {
            failures.push(format!("example key rejected: {e}"));
        }
    }
    let pairs: Vec<(String, Cid)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.clone(), value(i)))
        .collect();
    let store = BlockMap::new();

    // Bulk build vs. insertion in three orders: the same root.
    let mut bulk = match Mst::from_entries(pairs.clone()) {
        Ok(m) => m,
        Err(e) => panic!("bulk build: {e}"),
    };
    let expected = bulk.root(&store).map_err(|e| e.to_string());
    let mut orders: Vec<(&str, Vec<(String, Cid)>)> = vec![("forward", pairs.clone())];
    orders.push(("reverse", pairs.iter().rev().cloned().collect()));
    let mut interleaved = pairs.clone();
    interleaved.sort_by_key(|(k, _)| {
        let h = key_height(k.as_bytes());
        (std::cmp::Reverse(h), k.clone())
    });
    orders.push(("height-first", interleaved));
    for (name, order) in &orders {
        let mut m = Mst::new();
        for (k, v) in order {
            if let Err(e) = m.insert(&store, k, *v) {
                failures.push(format!("{name}: insert {k}: {e}"));
            }
        }
        let got = m.root(&store).map_err(|e| e.to_string());
        if got != expected {
            failures.push(format!("{name}: root {got:?} != bulk root {expected:?}"));
        }
    }

    // Persist, reload lazily, read back every key in order, then delete all.
    let mut stored = BlockMap::new();
    let commit = bulk.commit(&store);
    match commit {
        Ok(c) => {
            stored.extend(c.new_blocks);
            match Mst::load(&stored, c.root) {
                Ok(mut m) => {
                    let mut sorted = pairs.clone();
                    sorted.sort();
                    match m.entries(&stored) {
                        Ok(listed) if listed == sorted => {}
                        Ok(_) => failures.push("listing differs from the sorted keys".into()),
                        Err(e) => failures.push(format!("listing: {e}")),
                    }
                    for (k, v) in &pairs {
                        match m.get(&stored, k) {
                            Ok(Some(got)) if got == *v => {}
                            other => failures.push(format!("get {k}: {other:?}")),
                        }
                    }
                    for (k, _) in &pairs {
                        if let Err(e) = m.delete(&stored, k) {
                            failures.push(format!("delete {k}: {e}"));
                        }
                    }
                    match m.root(&stored) {
                        Ok(r) if r == atproto_types::repo::mst::empty_root_cid() => {}
                        other => failures.push(format!("after deleting all: {other:?}")),
                    }
                }
                Err(e) => failures.push(format!("reload: {e}")),
            }
        }
        Err(e) => failures.push(format!("commit: {e}")),
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
