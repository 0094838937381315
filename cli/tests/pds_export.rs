//! `atproto car inspect` verifies what the PDS exports: a repository with
//! creates, updates and deletes across collections, fetched with
//! `com.atproto.sync.getRepo` from a real server, checks out (MST rebuilt
//! and matching the commit, every record present, signature valid against
//! the account's key); the same CAR checked against another key does not.

mod common;

use atproto_types::crypto::{Algorithm, PrivateKey};
use common::run as atproto;
use pds_tests::{both_backends, Backend, Options, TestPds};
use serde_json::json;

both_backends! {
    async fn inspect_verifies_a_pds_export(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let out = pds.create_account("alice.test", "alice@example.com", "correct horse").await;
        let did = out["did"].as_str().expect("did").to_owned();
        let jwt = out["accessJwt"].as_str().expect("jwt").to_owned();
        let mut rkeys = Vec::new();
        for i in 0..40 {
            let post = json!({"$type": "app.bsky.feed.post", "text": format!("post {i}"),
                "createdAt": "2024-01-01T00:00:00.000Z"});
            let r = pds
                .xrpc_post("com.atproto.repo.createRecord",
                    &json!({"repo": did, "collection": "app.bsky.feed.post", "record": post}), Some(&jwt))
                .await
                .ok();
            rkeys.push(r["uri"].as_str().expect("uri").rsplit('/').next().expect("rkey").to_owned());
        }
        pds.xrpc_post("com.atproto.repo.putRecord", &json!({"repo": did,
            "collection": "app.bsky.actor.profile", "rkey": "self",
            "record": {"$type": "app.bsky.actor.profile", "displayName": "Alice"}}), Some(&jwt))
            .await
            .ok();
        for rkey in rkeys.iter().step_by(3) {
            pds.xrpc_post("com.atproto.repo.deleteRecord", &json!({"repo": did,
                "collection": "app.bsky.feed.post", "rkey": rkey}), Some(&jwt))
                .await
                .ok();
        }
        let records = 40 - rkeys.iter().step_by(3).count() + 1;

        let car = pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await;
        assert_eq!(car.status, 200, "{}", car.text());
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("export.car");
        std::fs::write(&path, &car.body).expect("write CAR");
        let file = path.display().to_string();
        // The account's key, as the PDS recommends it for the DID document.
        let creds = pds
            .get("/xrpc/com.atproto.identity.getRecommendedDidCredentials", Some(&jwt))
            .await
            .ok();
        let key = creds["verificationMethods"]["atproto"].as_str().expect("did:key").to_owned();

        let r = atproto(&["car", "inspect", &file, "--did-key", &key], "");
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(&format!("did: {did}\n")), "{}", r.stdout);
        assert!(r.stdout.contains(&format!("records: {records}\n")), "{}", r.stdout);
        assert!(r.stdout.contains("mst: ok\n"), "{}", r.stdout);
        assert!(r.stdout.ends_with("signature: valid\n"), "{}", r.stdout);

        let other = PrivateKey::generate(Algorithm::K256).did_key();
        let r = atproto(&["car", "inspect", &file, "--did-key", &other], "");
        assert!(r.stdout.ends_with("signature: invalid\n"), "{}", r.stdout);
        pds.stop().await;
    }
}
