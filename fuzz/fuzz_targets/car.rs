//! CAR v1 reading of arbitrary bytes, walking every block: the slice and
//! streaming readers must agree, never panic, and whatever they accept must
//! round-trip through the writer. Blocks that decode as MST nodes or commits
//! must re-encode to identical bytes, and a commit root's tree is walked.

#![no_main]

use atproto_repo::car::{load_car, write_car, CarReader};
use atproto_repo::commit::Commit;
use atproto_repo::mst::{decode_node, encode_node_data, Mst};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The block decoders on the raw input too (hash-checked CAR blocks are
    // hard for the fuzzer to reach).
    if let Ok(node) = decode_node(data) {
        assert_eq!(&encode_node_data(&node)[..], data, "node not canonical");
    }
    if let Ok(commit) = Commit::from_cbor(data) {
        assert_eq!(&commit.to_cbor()[..], data, "commit not canonical");
    }
    let sliced = load_car(data.to_vec());
    let mut streamed = Vec::new();
    let stream_ok = match CarReader::new(data) {
        Ok(r) => {
            let mut ok = true;
            for b in r {
                match b {
                    Ok(b) => streamed.push(b),
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            ok
        }
        Err(_) => false,
    };
    assert_eq!(
        sliced.is_ok(),
        stream_ok,
        "slice and stream readers disagree"
    );
    let Ok((roots, blocks)) = sliced else {
        return;
    };
    for (cid, bytes) in &streamed {
        assert_eq!(blocks.get(cid), Some(bytes), "readers saw different blocks");
    }
    // Writer round trip.
    let again = write_car(&roots, streamed.iter().map(|(c, b)| (c, &b[..])));
    let (roots2, blocks2) = load_car(again).expect("own output reads back");
    assert_eq!(roots, roots2);
    assert_eq!(blocks, blocks2);
    // Block decoders: canonical or rejected.
    for (_, bytes) in blocks.iter() {
        if let Ok(node) = decode_node(bytes) {
            assert_eq!(
                &encode_node_data(&node)[..],
                &bytes[..],
                "node not canonical"
            );
        }
        if let Ok(commit) = Commit::from_cbor(bytes) {
            assert_eq!(&commit.to_cbor()[..], &bytes[..], "commit not canonical");
        }
    }
    // Walk the tree of a commit root, if any.
    if let Some(root) = roots.first().and_then(|r| blocks.get(r)) {
        if let Ok(commit) = Commit::from_cbor(root) {
            if let Ok(mst) = Mst::load(&blocks, commit.data) {
                let _ = mst.entries(&blocks);
            }
        }
    }
});
