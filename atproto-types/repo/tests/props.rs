//! Property tests: MST canonical form, diffs, lists, partial trees, CAR.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use atproto_data::cid_for_dag_cbor as cid_for_cbor;
use atproto_repo::car::{load_car, write_car, CarReader};
use atproto_repo::mst::{diff, DiffOp, ListOptions, Mst, MstError};
use atproto_repo::{BlockMap, Cid};
use proptest::prelude::*;

fn value(n: u32) -> Cid {
    let b = n.to_be_bytes();
    cid_for_cbor(&[0x44, b[0], b[1], b[2], b[3]])
}

fn key_strategy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "app.bsky.feed.post",
            "app.bsky.feed.like",
            "com.example.x",
        ]),
        "[a-z0-9]{1,6}",
    )
        .prop_map(|(c, r)| format!("{c}/{r}"))
}

fn keyset(max: usize) -> impl Strategy<Value = BTreeMap<String, u32>> {
    prop::collection::btree_map(key_strategy(), any::<u32>(), 0..max)
}

fn build(store: &BlockMap, entries: &[(String, u32)]) -> Result<Mst, MstError> {
    let mut m = Mst::new();
    for (k, v) in entries {
        m.insert(store, k, value(*v))?;
    }
    Ok(m)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn root_independent_of_order(
        set in keyset(120),
        extra in keyset(40),
        seed in any::<u64>(),
    ) {
        let store = BlockMap::new();
        let sorted: Vec<(String, u32)> = set.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut shuffled = sorted.clone();
        // Deterministic shuffle from the seed.
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let mut a = build(&store, &sorted).expect("build sorted");
        let mut b = build(&store, &shuffled).expect("build shuffled");
        let mut bulk = Mst::from_entries(sorted.iter().map(|(k, v)| (k.clone(), value(*v)))).expect("bulk");
        let ra = a.root(&store).expect("root");
        prop_assert_eq!(ra, b.root(&store).expect("root"));
        prop_assert_eq!(ra, bulk.root(&store).expect("root"));

        // Insert extra keys, then delete them: the same root again.
        let mut c = build(&store, &shuffled).expect("build");
        let extra: Vec<_> = extra.into_iter().filter(|(k, _)| !set.contains_key(k)).collect();
        for (k, v) in &extra {
            c.insert(&store, k, value(*v)).expect("insert extra");
        }
        for (k, _) in extra.iter().rev() {
            c.delete(&store, k).expect("delete extra");
        }
        prop_assert_eq!(ra, c.root(&store).expect("root"));
        let listed = c.entries(&store).expect("entries");
        let expected: Vec<(String, Cid)> = sorted.iter().map(|(k, v)| (k.clone(), value(*v))).collect();
        prop_assert_eq!(listed, expected);
    }

    #[test]
    fn diff_then_apply(a in keyset(80), b in keyset(80), updates in any::<u32>()) {
        let mut store = BlockMap::new();
        let mut b = b;
        // Share some keys with changed values.
        for (i, (k, v)) in a.iter().enumerate() {
            if i % 3 == 0 {
                b.insert(k.clone(), v.wrapping_add(updates % 2));
            }
        }
        let ea: Vec<_> = a.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let eb: Vec<_> = b.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut ma = build(&store, &ea).expect("a");
        let ca = ma.commit(&store).expect("commit a");
        store.extend(ca.new_blocks);
        let mut mb = build(&store, &eb).expect("b");
        let cb = mb.commit(&store).expect("commit b");
        store.extend(cb.new_blocks);

        let d = diff(&store, Some(ca.root), cb.root).expect("diff");
        // Ops match the maps.
        let mut expect_ops = 0;
        for (k, v) in &a {
            match b.get(k) {
                None => expect_ops += 1,
                Some(w) if w != v => expect_ops += 1,
                _ => {}
            }
        }
        expect_ops += b.keys().filter(|k| !a.contains_key(*k)).count();
        prop_assert_eq!(d.ops.len(), expect_ops);

        // Applying the diff to a (loaded lazily) yields b, and its block
        // bookkeeping agrees with the diff's.
        let mut m = atproto_repo::Mst::load(&store, ca.root).expect("load a");
        for op in &d.ops {
            match op {
                DiffOp::Create { key, cid } => m.insert(&store, key, *cid).expect("create"),
                DiffOp::Update { key, cid, .. } => { m.update(&store, key, *cid).expect("update"); }
                DiffOp::Delete { key, .. } => { m.delete(&store, key).expect("delete"); }
            }
        }
        let applied = m.commit(&store).expect("commit");
        prop_assert_eq!(applied.root, cb.root);
        let new_from_apply: BTreeSet<Cid> = applied.new_blocks.cids().copied().collect();
        let new_from_diff: BTreeSet<Cid> = d.new_blocks.cids().copied().collect();
        prop_assert_eq!(new_from_apply, new_from_diff);
        let removed_apply: BTreeSet<Cid> = applied.removed.iter().copied().collect();
        let removed_diff: BTreeSet<Cid> = d.removed.iter().copied().collect();
        prop_assert_eq!(removed_apply, removed_diff);
    }

    #[test]
    fn list_matches_btreemap(
        set in keyset(150),
        start in key_strategy(),
        limit in 0usize..20,
        reverse in any::<bool>(),
    ) {
        let mut store = BlockMap::new();
        let e: Vec<_> = set.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut m = build(&store, &e).expect("build");
        let c = m.commit(&store).expect("commit");
        store.extend(c.new_blocks);
        let lazy = Mst::load(&store, c.root).expect("load");
        let prefix = "app.bsky.feed.like/";
        let opts = ListOptions {
            prefix: Some(prefix),
            start: None,
            end: Some(Bound::Excluded(start.as_str())),
            reverse,
            limit: Some(limit),
        };
        let got = lazy.list(&store, &opts).expect("list");
        let mut want: Vec<(String, Cid)> = set
            .iter()
            .filter(|(k, _)| k.starts_with(prefix) && k.as_str() < start.as_str())
            .map(|(k, v)| (k.clone(), value(*v)))
            .collect();
        if reverse {
            want.reverse();
        }
        want.truncate(limit);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn missing_blocks_leave_tree_unchanged(set in keyset(100), extra in keyset(10)) {
        let mut store = BlockMap::new();
        let e: Vec<_> = set.iter().map(|(k, v)| (k.clone(), *v)).collect();
        let mut full = build(&store, &e).expect("build");
        let c = full.commit(&store).expect("commit");
        store.extend(c.new_blocks);
        // Expected result from the full store.
        let mut expected = Mst::load(&store, c.root).expect("load");
        let ops: Vec<(String, u32, bool)> = extra
            .iter()
            .map(|(k, v)| (k.clone(), *v, set.contains_key(k)))
            .chain(set.keys().take(5).map(|k| (k.clone(), 0, true)))
            .collect();
        let mut seen = BTreeSet::new();
        for (k, v, present) in &ops {
            if !seen.insert(k.clone()) { continue; }
            if *present { expected.delete(&store, k).expect("delete"); } else { expected.insert(&store, k, value(*v)).expect("insert"); }
        }
        let want = expected.root(&store).expect("root");

        // Against a store that starts with only the root and learns blocks on demand.
        let mut partial = BlockMap::new();
        if let Some(b) = store.get(&c.root) { partial.put(c.root, b.clone()); }
        let mut m = Mst::load(&partial, c.root).expect("load");
        let mut fetches = 0;
        let mut seen = BTreeSet::new();
        for (k, v, present) in &ops {
            if !seen.insert(k.clone()) { continue; }
            loop {
                let r = if *present { m.delete(&partial, k).map(|_| ()) } else { m.insert(&partial, k, value(*v)) };
                match r {
                    Ok(()) => break,
                    Err(MstError::MissingBlock(cid)) => {
                        let b = store.get(&cid).expect("block exists in the full store");
                        partial.put(cid, b.clone());
                        fetches += 1;
                        prop_assert!(fetches < 10_000);
                    }
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                }
            }
        }
        let got = loop {
            match m.root(&partial) {
                Ok(r) => break r,
                Err(MstError::MissingBlock(cid)) => {
                    let b = store.get(&cid).expect("block");
                    partial.put(cid, b.clone());
                }
                Err(e) => return Err(TestCaseError::fail(e.to_string())),
            }
        };
        prop_assert_eq!(got, want);
    }

    #[test]
    fn car_round_trip(blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20)) {
        let blocks: Vec<(Cid, Vec<u8>)> = blocks.into_iter().map(|b| (cid_for_cbor(&b), b)).collect();
        let roots: Vec<Cid> = blocks.iter().take(2).map(|(c, _)| *c).collect();
        let car = write_car(&roots, blocks.iter().map(|(c, d)| (c, &d[..])));
        let r = CarReader::new(&car[..]).expect("header");
        prop_assert_eq!(r.roots(), &roots[..]);
        let got: Vec<(Cid, Vec<u8>)> = r.map(|x| x.map(|(c, d)| (c, d.to_vec()))).collect::<Result<_, _>>().expect("blocks");
        prop_assert_eq!(got, blocks.clone());
        let (roots2, map) = load_car(car).expect("load");
        prop_assert_eq!(roots2, roots);
        let distinct: BTreeSet<Cid> = blocks.iter().map(|(c, _)| *c).collect();
        prop_assert_eq!(map.len(), distinct.len());
    }

    #[test]
    fn car_reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = load_car(bytes.clone());
        if let Ok(r) = CarReader::new(&bytes[..]) {
            for b in r { if b.is_err() { break; } }
        }
    }

    #[test]
    fn mutated_car_never_panics(pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let blocks: Vec<(Cid, Vec<u8>)> = (0..4u8).map(|i| { let d = vec![0x82, i, i]; (cid_for_cbor(&d), d) }).collect();
        let mut car = write_car(&[blocks[0].0], blocks.iter().map(|(c, d)| (c, &d[..])));
        let p = pos % car.len();
        car[p] = byte;
        car.truncate(cut % (car.len() + 1));
        let _ = load_car(car);
    }
}
