//! The `syntax`, `data`, `crypto`, `mst` and `car` commands run as a
//! process. Keys, signatures, trees and CAR files are made here with the
//! library crates, and the binary's output is checked against them.

mod common;

use atproto_types::crypto::{Algorithm, PrivateKey};
use atproto_types::data::{cid_for_dag_cbor, to_dag_cbor, Value};
use atproto_types::repo::car::write_car_from_map;
use atproto_types::repo::mst::{empty_root_cid, key_height, Mst};
use atproto_types::repo::{apply_writes, BlockMap, Cid, RecordWrite};
use atproto_types::syntax::{Did, Tid};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::run;

#[test]
fn syntax_checks_each_line() {
    let r = run(
        &["syntax", "did"],
        "did:plc:ewvi7nxzyoun6zhxrhs64oiz\nnot a did\n\ndid:web:example.com\n",
    );
    assert_eq!(r.code, 0);
    let lines = r.lines();
    assert_eq!(lines.len(), 4, "{}", r.stdout);
    assert_eq!(lines[0], "valid");
    assert!(lines[1].starts_with("invalid: "));
    assert!(lines[2].starts_with("invalid: "), "empty line");
    assert_eq!(lines[3], "valid");

    let r = run(&["syntax", "nsid"], "app.bsky.feed.post\napp");
    assert_eq!(r.code, 0);
    assert_eq!(r.lines()[0], "valid");
    assert!(r.lines()[1].starts_with("invalid: "));

    let r = run(&["syntax", "tid"], "3jzfcijpj2z2a\n");
    assert_eq!(r.stdout, "valid\n");
    let r = run(
        &["syntax", "at-uri"],
        "at://alice.test/app.bsky.feed.post/3jzfcijpj2z2a\n",
    );
    assert_eq!(r.stdout, "valid\n");
    let r = run(&["syntax", "record-key"], ".\n");
    assert!(r.stdout.starts_with("invalid: "), "{}", r.stdout);
}

#[test]
fn data_encode_and_decode() {
    let json = serde_json::json!({
        "$type": "com.example.thing",
        "text": "héllo",
        "n": 42,
        "bytes": {"$bytes": "AQID"},
        "link": {"$link": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
        "list": [true, null, {"z": 1, "a": 2}],
    });
    let value = Value::from_json_object(&json).expect("atproto data");
    let bytes = to_dag_cbor(&value);
    let cid = cid_for_dag_cbor(&bytes);

    let r = run(&["data", "encode"], &json.to_string());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{cid}\n{}\n", STANDARD.encode(&bytes)));

    let r = run(
        &["data", "decode"],
        &format!("  {}\n", STANDARD.encode(&bytes)),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.lines().len(), 1);
    let back: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON");
    assert_eq!(back, json);

    // Errors: exit 1, reason on stderr.
    let r = run(&["data", "encode"], "[1, 2]");
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    let r = run(&["data", "encode"], r#"{"f": 1.5}"#);
    assert_eq!(r.code, 1);
    let r = run(&["data", "decode"], "!!!");
    assert_eq!(r.code, 1);
    let r = run(
        &["data", "decode"],
        &STANDARD.encode(to_dag_cbor(&Value::Integer(1))),
    );
    assert_eq!(r.code, 1, "top level must be an object");
}

#[test]
fn crypto_verify_and_did_key() {
    for (alg, name) in [(Algorithm::P256, "ES256"), (Algorithm::K256, "ES256K")] {
        let key = PrivateKey::generate(alg);
        let did_key = key.did_key();
        let message = b"a message to sign";
        let signature = key.sign(message);
        let msg_b64 = STANDARD.encode(message);
        let sig_b64 = STANDARD.encode(signature);

        let verify = |key: &str, msg: &str, sig: &str| {
            run(
                &[
                    "crypto",
                    "verify",
                    "--key",
                    key,
                    "--alg",
                    name,
                    "--message-base64",
                    msg,
                    "--signature-base64",
                    sig,
                ],
                "",
            )
        };
        let r = verify(&did_key, &msg_b64, &sig_b64);
        assert_eq!((r.stdout.as_str(), r.code), ("valid\n", 0), "{}", r.stderr);

        // URL-safe, unpadded base64 and a multibase key are accepted too.
        let multibase = key.public_key().to_multibase();
        let r = verify(
            &multibase,
            &URL_SAFE_NO_PAD.encode(message),
            &URL_SAFE_NO_PAD.encode(signature),
        );
        assert_eq!(r.stdout, "valid\n", "{}", r.stderr);

        // Another message, another key, a mangled signature: invalid, exit 0.
        let r = verify(&did_key, &STANDARD.encode(b"another message"), &sig_b64);
        assert_eq!((r.stdout.as_str(), r.code), ("invalid\n", 0));
        let other = PrivateKey::generate(alg).did_key();
        let r = verify(&other, &msg_b64, &sig_b64);
        assert_eq!(r.stdout, "invalid\n");
        let r = verify(&did_key, &msg_b64, "AAAA");
        assert_eq!(r.stdout, "invalid\n");
        assert!(r.stderr.starts_with("reason: "), "{}", r.stderr);

        let hex = key.to_hex();
        let r = run(
            &[
                "crypto",
                "did-key",
                "--alg",
                name,
                "--private-key-hex",
                hex.as_str(),
            ],
            "",
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(r.stdout, format!("{did_key}\n"));
    }

    // A key of the other curve does not verify as this one.
    let k = PrivateKey::generate(Algorithm::K256);
    let sig = STANDARD.encode(k.sign(b"m"));
    let r = run(
        &[
            "crypto",
            "verify",
            "--key",
            &k.did_key(),
            "--alg",
            "ES256",
            "--message-base64",
            &STANDARD.encode(b"m"),
            "--signature-base64",
            &sig,
        ],
        "",
    );
    assert_eq!((r.stdout.as_str(), r.code), ("invalid\n", 0));

    let r = run(
        &[
            "crypto",
            "did-key",
            "--alg",
            "ES256",
            "--private-key-hex",
            "zz",
        ],
        "",
    );
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
}

fn record_cid(n: usize) -> (Cid, Vec<u8>) {
    let json = serde_json::json!({"$type": "com.example.thing", "n": n});
    let bytes = to_dag_cbor(&Value::from_json_object(&json).expect("data"));
    (cid_for_dag_cbor(&bytes), bytes)
}

#[test]
fn mst_height_and_root() {
    for key in [
        "com.example.record/3jqfcqzm3fo2j",
        "com.example.record/3jqfcqzm3fp2j",
        "com.example.record/3jqfcqzm3fs2j",
        "",
        "any string at all",
    ] {
        let r = run(&["mst", "height", key], "");
        assert_eq!(r.code, 0);
        assert_eq!(r.stdout, format!("{}\n", key_height(key.as_bytes())));
    }

    let r = run(&["mst", "root"], "");
    assert_eq!(r.stdout, format!("{}\n", empty_root_cid()));

    let entries: Vec<(String, Cid)> = (0..50)
        .map(|i| (format!("com.example.record/key{i:03}"), record_cid(i).0))
        .collect();
    let expected = Mst::from_entries(entries.clone())
        .and_then(|mut m| m.root(&BlockMap::new()))
        .expect("root");
    let input: String = entries
        .iter()
        .map(|(k, c)| format!("{k} {c}\r\n"))
        .collect();
    let r = run(&["mst", "root"], &format!("\n{input}\n"));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, format!("{expected}\n"));

    // Bad lines, bad keys, duplicates: exit 1.
    let (cid, _) = record_cid(0);
    for bad in [
        "only-a-key\n".to_owned(),
        format!("a/b {cid} extra\n"),
        "a/b notacid\n".to_owned(),
        format!("no-slash {cid}\n"),
        format!("a/b {cid}\na/b {cid}\n"),
    ] {
        let r = run(&["mst", "root"], &bad);
        assert_eq!(r.code, 1, "{bad:?}: {}", r.stdout);
        assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    }
}

#[test]
fn car_inspect_repository() {
    let key = PrivateKey::generate(Algorithm::K256);
    let did: Did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz".parse().expect("did");
    let rev: Tid = "3jzfcijpj2z2a".parse().expect("tid");
    let mut records = BlockMap::new();
    let mut writes = Vec::new();
    for i in 0..7 {
        let (cid, bytes) = record_cid(i);
        records.put(cid, bytes);
        writes.push(RecordWrite::Create {
            key: format!("com.example.thing/3jzfcijpj2z{}a", (b'a' + i as u8) as char),
            cid,
        });
    }
    let result = apply_writes(
        &BlockMap::new(),
        did.clone(),
        rev.clone(),
        None,
        &writes,
        &records,
        &key,
    )
    .expect("commit");
    let car = write_car_from_map(&[result.commit_cid], &result.new_blocks);
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("repo.car");
    std::fs::write(&path, &car).expect("write CAR");
    let file = path.display().to_string();

    let r = run(&["car", "inspect", &file, "--did-key", &key.did_key()], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "roots: {}\nblocks: {}\ndid: {}\nrev: {}\nrecords: 7\nmst: ok\nsignature: valid\n",
            result.commit_cid,
            result.new_blocks.len(),
            did.as_str(),
            rev.as_str(),
        )
    );

    let r = run(&["car", "inspect", &file], "");
    assert!(
        r.stdout.ends_with("signature: not checked\n"),
        "{}",
        r.stdout
    );

    let other = PrivateKey::generate(Algorithm::K256).did_key();
    let r = run(&["car", "inspect", &file, "--did-key", &other], "");
    assert_eq!(r.code, 0);
    assert!(r.stdout.ends_with("signature: invalid\n"), "{}", r.stdout);

    // A record block missing from the CAR.
    let mut partial = result.new_blocks.clone();
    let (first, _) = record_cid(0);
    partial.remove(&first);
    let partial_path = tmp.path().join("partial.car");
    std::fs::write(
        &partial_path,
        write_car_from_map(&[result.commit_cid], &partial),
    )
    .expect("write CAR");
    let r = run(&["car", "inspect", &partial_path.display().to_string()], "");
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .contains("mst: mismatch (1 record blocks missing from the CAR)"),
        "{}",
        r.stdout
    );

    // A CAR that is not a repository: roots and blocks only.
    let (cid, bytes) = record_cid(99);
    let mut one = BlockMap::new();
    one.put(cid, bytes);
    let plain = tmp.path().join("plain.car");
    std::fs::write(&plain, write_car_from_map(&[cid], &one)).expect("write CAR");
    let r = run(&["car", "inspect", &plain.display().to_string()], "");
    assert_eq!(r.stdout, format!("roots: {cid}\nblocks: 1\n"));

    // Not a CAR at all.
    let junk = tmp.path().join("junk.car");
    std::fs::write(&junk, b"not a car").expect("write");
    let r = run(&["car", "inspect", &junk.display().to_string()], "");
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("error: malformed CAR"), "{}", r.stderr);
}

/// URL-safe base64 may start with `-`: such values are arguments, not flags.
#[test]
fn crypto_verify_accepts_values_starting_with_a_hyphen() {
    let r = run(
        &[
            "crypto",
            "verify",
            "--key",
            "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
            "--alg",
            "ES256K",
            "--message-base64",
            "-AAA",
            "--signature-base64",
            "-BBB",
        ],
        "",
    );
    assert_eq!(
        (r.stdout.as_str(), r.code),
        ("invalid\n", 0),
        "{}",
        r.stderr
    );
}
