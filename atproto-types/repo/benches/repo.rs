//! Benchmarks: MST inserts (10k and 100k keys, root computed), and CAR
//! write/read of a 10k-record repository.

use std::hint::black_box;
use std::time::Duration;

use atproto_data::cid_for_dag_cbor as cid_for_cbor;
use atproto_repo::car::{load_car, write_car_from_map, CarReader};
use atproto_repo::{BlockMap, Cid, Mst};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

/// TID-like record keys in a scrambled order.
fn keys(n: usize) -> Vec<(String, Cid)> {
    let mut out: Vec<(String, Cid)> = (0..n as u64)
        .map(|i| {
            const ALPHA: &[u8] = b"234567abcdefghijklmnopqrstuvwxyz";
            let mut v = (1_700_000_000_000_000u64 + i * 1_000) << 10;
            let mut s = [0u8; 13];
            for c in s.iter_mut().rev() {
                *c = ALPHA[(v & 31) as usize];
                v >>= 5;
            }
            let rkey = String::from_utf8_lossy(&s).into_owned();
            let cid = cid_for_cbor(&i.to_be_bytes());
            (format!("app.bsky.feed.post/{rkey}"), cid)
        })
        .collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..out.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.swap(i, (x % (i as u64 + 1)) as usize);
    }
    out
}

fn insert_all(entries: &[(String, Cid)]) -> Cid {
    let store = BlockMap::new();
    let mut m = Mst::new();
    for (k, v) in entries {
        if m.insert(&store, k, *v).is_err() {
            break;
        }
    }
    m.root(&store).unwrap_or_default()
}

fn mst_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("mst");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    let k10 = keys(10_000);
    g.bench_function("insert_10k_and_root", |b| {
        b.iter(|| black_box(insert_all(&k10)))
    });
    let k100 = keys(100_000);
    g.bench_function("insert_100k_and_root", |b| {
        b.iter(|| black_box(insert_all(&k100)))
    });
    g.bench_function("bulk_build_100k_and_root", |b| {
        b.iter(|| {
            let mut m = Mst::from_entries(k100.iter().cloned()).unwrap_or_default();
            black_box(m.root(&BlockMap::new()).unwrap_or_default())
        })
    });
    g.finish();
}

/// A 10k-record repository: record blocks (~100 bytes each) and MST nodes.
fn repo_blocks() -> (Cid, BlockMap) {
    let mut blocks = BlockMap::new();
    let mut entries = Vec::new();
    for (i, (k, _)) in keys(10_000).into_iter().enumerate() {
        let mut rec = vec![0xa1, 0x64, b't', b'e', b'x', b't', 0x78, 90];
        rec.extend(std::iter::repeat_n(b'a' + (i % 26) as u8, 90));
        rec.extend_from_slice(&(i as u32).to_be_bytes());
        let cid = blocks.put_cbor(rec);
        entries.push((k, cid));
    }
    let mut m = Mst::from_entries(entries).unwrap_or_default();
    let commit = m.commit(&BlockMap::new()).unwrap_or_default();
    let root = commit.root;
    blocks.extend(commit.new_blocks);
    (root, blocks)
}

fn car_benches(c: &mut Criterion) {
    let (root, blocks) = repo_blocks();
    let car = write_car_from_map(&[root], &blocks);
    eprintln!(
        "10k-record repo CAR: {} blocks, {} bytes",
        blocks.len(),
        car.len()
    );
    let mut g = c.benchmark_group("car_10k_records");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("write", |b| {
        b.iter(|| black_box(write_car_from_map(&[root], &blocks).len()))
    });
    g.bench_function("read_load_car", |b| {
        b.iter_batched(
            || car.clone(),
            |bytes| black_box(load_car(bytes).map(|(_, m)| m.len()).unwrap_or(0)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("read_streaming", |b| {
        b.iter(|| {
            let mut n = 0usize;
            if let Ok(r) = CarReader::new(&car[..]) {
                for blk in r.flatten() {
                    n += blk.1.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, mst_benches, car_benches);
criterion_main!(benches);
