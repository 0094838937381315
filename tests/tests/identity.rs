//! `com.atproto.identity`, the well-known identity routes and account
//! migration (createAccount with an existing DID), against the real PLC
//! directory, on both backends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use atproto_types::crypto::{Algorithm, PrivateKey};
use futures_util::StreamExt;
use pds::plc::{self, GenesisInput, OpFields};
use pds::service_auth::{self, NewToken};
use pds_tests::{both_backends, plc_url, Backend, Options, TestPds};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

const CREATE_ACCOUNT: &str = "com.atproto.server.createAccount";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn firehose(pds: &TestPds) -> Socket {
    let ws = pds.url.replacen("http://", "ws://", 1);
    let (socket, _) = tokio_tungstenite::connect_async(format!(
        "{ws}/xrpc/com.atproto.sync.subscribeRepos?cursor=0"
    ))
    .await
    .expect("WebSocket connect");
    socket
}

/// Reads frames until one of type `t` for `did` matches `pred`.
async fn expect_frame(
    socket: &mut Socket,
    t: &str,
    did: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no {t} frame within 10 s"))
            .expect("stream open")
            .expect("frame");
        let Message::Binary(bytes) = msg else {
            continue;
        };
        let (header, used) = atproto_types::data::decode_prefix(&bytes).expect("frame header");
        let body = atproto_types::data::from_dag_cbor(&bytes[used..])
            .expect("frame body")
            .to_json();
        let header = header.to_json();
        assert_eq!(header["op"], 1, "error frame: {body}");
        if header["t"] == t && body["did"] == did && pred(&body) {
            return body;
        }
    }
}

/// Asserts a 200 answer without a body.
fn done(r: pds_tests::Reply) {
    assert_eq!(r.status, 200, "{}", r.text());
}

async fn plc_get(path: &str) -> Value {
    let res = reqwest::Client::new()
        .get(format!("{}{path}", plc_url()))
        .send()
        .await
        .expect("PLC request");
    assert!(res.status().is_success(), "PLC {path}: {}", res.status());
    res.json().await.expect("PLC JSON")
}

async fn xrpc_get(pds: &TestPds, nsid_and_query: &str, bearer: Option<&str>) -> pds_tests::Reply {
    pds.get(&format!("/xrpc/{nsid_and_query}"), bearer).await
}

async fn get_with_host(pds: &TestPds, path: &str, host: &str) -> pds_tests::Reply {
    pds.request(
        pds.client
            .get(format!("{}{path}", pds.url))
            .header("host", host),
    )
    .await
}

/// An account on the test server: (did, access JWT).
async fn account(pds: &TestPds, handle: &str, email: &str) -> (String, String) {
    let out = pds.create_account(handle, email, "correct horse").await;
    (
        out["did"].as_str().expect("did").to_owned(),
        out["accessJwt"].as_str().expect("jwt").to_owned(),
    )
}

fn service_jwt(key: &PrivateKey, iss: &str, aud: &str, lxm: Option<&str>) -> String {
    service_auth::sign(
        key,
        &NewToken {
            iss,
            aud,
            lxm,
            exp: None,
        },
    )
}

/// A did:plc made by the test (as another PDS would), pointing elsewhere:
/// (did, rotation key, signing key).
async fn foreign_plc_did(pds: &TestPds, handle: &str) -> (String, PrivateKey, PrivateKey) {
    let rotation = PrivateKey::generate(Algorithm::K256);
    let signing = PrivateKey::generate(Algorithm::K256);
    let keys = vec![rotation.did_key()];
    let g = plc::genesis(
        &GenesisInput {
            signing_key: &signing.did_key(),
            rotation_keys: &keys,
            handle,
            pds_endpoint: "https://old-pds.example.com",
        },
        &rotation,
    );
    pds.state
        .plc
        .submit(&g.did, &g.op)
        .await
        .expect("genesis accepted");
    (g.did, rotation, signing)
}

both_backends! {
    async fn resolve_handle_and_well_known(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, _) = account(&pds, "alice.test", "alice@example.com").await;

        let out = xrpc_get(&pds, "com.atproto.identity.resolveHandle?handle=Alice.Test", None)
            .await
            .ok();
        assert_eq!(out["did"], did.as_str());
        // A handle of ours that nobody holds, and a malformed one.
        let r = xrpc_get(&pds, "com.atproto.identity.resolveHandle?handle=bob.test", None).await;
        assert!(r.assert_error(400, "InvalidRequest").contains("Unable to resolve handle"));
        xrpc_get(&pds, "com.atproto.identity.resolveHandle?handle=not_a_handle", None)
            .await
            .assert_error(400, "InvalidRequest");
        xrpc_get(&pds, "com.atproto.identity.resolveHandle", None)
            .await
            .assert_error(400, "InvalidRequest");

        // /.well-known/atproto-did by Host.
        let r = get_with_host(&pds, "/.well-known/atproto-did", "alice.test").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), did);
        assert!(r.header("content-type").unwrap_or("").starts_with("text/plain"));
        let r = get_with_host(&pds, "/.well-known/atproto-did", "alice.test:8080").await;
        assert_eq!(r.text(), did);
        for host in ["bob.test", "example.com", "localhost"] {
            let r = get_with_host(&pds, "/.well-known/atproto-did", host).await;
            assert_eq!(r.status, 404, "{host}");
            assert_eq!(r.text(), "User not found");
        }

        // /.well-known/did.json: the service's own did:web.
        let r = get_with_host(&pds, "/.well-known/did.json", "localhost").await;
        let doc = r.ok();
        assert_eq!(doc["id"], "did:web:localhost");
        assert_eq!(doc["service"][0]["id"], "#atproto_pds");
        assert_eq!(doc["service"][0]["type"], "AtprotoPersonalDataServer");
        assert_eq!(doc["service"][0]["serviceEndpoint"], pds.state.config.public_url.as_str());
        assert_eq!(get_with_host(&pds, "/.well-known/did.json", "unknown.example.com").await.status, 404);

        // A did:web account hosted here: its document from what we hold.
        let web_did = "did:web:web.example.com";
        let key = PrivateKey::generate(Algorithm::K256);
        let mut new = pds_store::NewAccount::new(web_did, "webby.test");
        new.signing_key_ciphertext = Some(pds.state.key_cipher.seal(web_did, &key).expect("seal"));
        pds.state.store.accounts().create(new, None).await.expect("account stored");
        let doc = get_with_host(&pds, "/.well-known/did.json", "web.example.com").await.ok();
        assert_eq!(doc["id"], web_did);
        assert_eq!(doc["alsoKnownAs"], json!(["at://webby.test"]));
        assert_eq!(doc["verificationMethod"][0]["id"], format!("{web_did}#atproto"));
        assert_eq!(doc["verificationMethod"][0]["publicKeyMultibase"], key.public_key().to_multibase());
        assert_eq!(doc["service"][0]["serviceEndpoint"], pds.state.config.public_url.as_str());
        let data = pds::identity::doc::atproto_data(web_did, &doc).expect("atproto data");
        assert_eq!(data.signing_key, key.did_key());
    }

    async fn update_handle(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, jwt) = account(&pds, "alice.test", "alice@example.com").await;
        account(&pds, "bob.test", "bob@example.com").await;
        let mut socket = firehose(&pds).await;

        done(pds.xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": "Alice2.test"}), Some(&jwt))
            .await);
        // The PLC directory's document names the new handle.
        let doc = plc_get(&format!("/{did}")).await;
        assert_eq!(doc["alsoKnownAs"], json!(["at://alice2.test"]));
        let log = plc_get(&format!("/{did}/log")).await;
        assert_eq!(log.as_array().map(Vec::len), Some(2), "{log}");
        // The firehose announces it.
        let ev = expect_frame(&mut socket, "#identity", &did, |b| b["handle"] == "alice2.test").await;
        assert!(ev["seq"].as_i64().is_some());
        // Resolution and sessions follow.
        let out = xrpc_get(&pds, "com.atproto.identity.resolveHandle?handle=alice2.test", None).await.ok();
        assert_eq!(out["did"], did.as_str());
        xrpc_get(&pds, "com.atproto.identity.resolveHandle?handle=alice.test", None)
            .await
            .assert_error(400, "InvalidRequest");
        let session = xrpc_get(&pds, "com.atproto.server.getSession", Some(&jwt)).await.ok();
        assert_eq!(session["handle"], "alice2.test");

        // The same handle again: accepted, announced again, no PLC change.
        done(pds.xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": "alice2.test"}), Some(&jwt))
            .await);
        expect_frame(&mut socket, "#identity", &did, |b| b["handle"] == "alice2.test").await;
        let log = plc_get(&format!("/{did}/log")).await;
        assert_eq!(log.as_array().map(Vec::len), Some(2));

        // Errors.
        let post = |h: &'static str| {
            let jwt = jwt.clone();
            let pds = &pds;
            async move {
                pds.xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": h}), Some(&jwt)).await
            }
        };
        assert!(post("bob.test").await.assert_error(400, "InvalidRequest").contains("Handle already taken"));
        post("ab.test").await.assert_error(400, "InvalidHandle");
        post("admin.test").await.assert_error(400, "HandleNotAvailable");
        post("alice.local").await.assert_error(400, "InvalidHandle");
        post("not a handle").await.assert_error(400, "InvalidRequest");
        pds.xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": "carol.test"}), None)
            .await
            .assert_error(401, "AuthMissing");
        // Nothing changed.
        let doc = plc_get(&format!("/{did}")).await;
        assert_eq!(doc["alsoKnownAs"], json!(["at://alice2.test"]));
    }

    async fn plc_operation_flow(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, jwt) = account(&pds, "alice.test", "alice@example.com").await;
        let server_key = pds.state.plc_rotation_key.did_key();

        // Recommended credentials: this server's keys, handle and endpoint.
        let creds = xrpc_get(&pds, "com.atproto.identity.getRecommendedDidCredentials", Some(&jwt)).await.ok();
        let doc = plc_get(&format!("/{did}/data")).await;
        assert_eq!(creds["rotationKeys"], json!([server_key]));
        assert_eq!(creds["alsoKnownAs"], json!(["at://alice.test"]));
        assert_eq!(creds["verificationMethods"], doc["verificationMethods"]);
        assert_eq!(creds["services"]["atproto_pds"]["endpoint"], pds.state.config.public_url.as_str());

        // Signing needs a token.
        pds.xrpc_post("com.atproto.identity.signPlcOperation", &json!({}), Some(&jwt))
            .await
            .assert_error(400, "InvalidRequest");
        pds.xrpc_post("com.atproto.identity.signPlcOperation", &json!({"token": "AAAAA-BBBBB"}), Some(&jwt))
            .await
            .assert_error(400, "InvalidToken");

        // The emailed token (queued for the account's address).
        let r = pds.post("/xrpc/com.atproto.identity.requestPlcOperationSignature", None, Some(&jwt)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let queued = pds.state.store.notifications().history("alice@example.com", 10).await.expect("history");
        let n = queued.iter().find(|n| n.kind == "plc_operation").expect("a queued PLC email");
        assert_eq!(n.channel, "email");
        let payload: Value = serde_json::from_str(&n.payload).expect("payload");
        let token = payload["token"].as_str().expect("token").to_owned();
        assert_eq!(token.len(), 11);

        // Sign: a new rotation key first, the rest kept.
        let extra = PrivateKey::generate(Algorithm::P256).did_key();
        let signed = pds
            .xrpc_post(
                "com.atproto.identity.signPlcOperation",
                &json!({"token": token.to_lowercase(), "rotationKeys": [extra, server_key]}),
                Some(&jwt),
            )
            .await
            .ok();
        let op = signed["operation"].clone();
        assert_eq!(op["type"], "plc_operation");
        assert_eq!(op["rotationKeys"], json!([extra, server_key]));
        assert_eq!(op["alsoKnownAs"], json!(["at://alice.test"]));
        let last = plc_get(&format!("/{did}/log/last")).await;
        assert_eq!(op["prev"], plc::op_cid(&last).expect("cid").as_str());
        // Single use.
        pds.xrpc_post("com.atproto.identity.signPlcOperation", &json!({"token": token}), Some(&jwt))
            .await
            .assert_error(400, "InvalidToken");

        // Submit refusals (checked before anything is sent).
        let submit = |op: Value| {
            let jwt = jwt.clone();
            let pds = &pds;
            async move {
                pds.xrpc_post("com.atproto.identity.submitPlcOperation", &json!({"operation": op}), Some(&jwt)).await
            }
        };
        let with = |k: &str, v: Value| {
            let mut o = op.clone();
            o[k] = v;
            o
        };
        let cases = [
            (with("type", json!("plc_tombstone")), "Invalid operation"),
            (with("rotationKeys", json!([extra])), "Rotation keys do not include server's rotation key"),
            (with("services", json!({"atproto_pds": {"type": "Other", "endpoint": pds.state.config.public_url}})), "Incorrect type on atproto_pds service"),
            (with("services", json!({"atproto_pds": {"type": "AtprotoPersonalDataServer", "endpoint": "https://elsewhere.example"}})), "Incorrect endpoint on atproto_pds service"),
            (with("verificationMethods", json!({"atproto": extra})), "Incorrect signing key"),
            (with("alsoKnownAs", json!(["at://mallory.test"])), "Incorrect handle in alsoKnownAs"),
        ];
        for (bad, message) in cases {
            let r = submit(bad).await;
            assert_eq!(r.assert_error(400, "InvalidRequest"), message);
        }
        assert_eq!(plc_get(&format!("/{did}/log")).await.as_array().map(Vec::len), Some(1));
        // A tampered signature: the directory refuses it.
        let mut forged = op.clone();
        forged["sig"] = json!("AAAA");
        let r = submit(forged).await;
        assert!(r.status >= 400, "{}", r.text());

        let mut socket = firehose(&pds).await;
        done(submit(op.clone()).await);
        let data = plc_get(&format!("/{did}/data")).await;
        assert_eq!(data["rotationKeys"], json!([extra, server_key]));
        expect_frame(&mut socket, "#identity", &did, |b| b["seq"].as_i64() > Some(4)).await;

        // Without a session: 401.
        pds.post("/xrpc/com.atproto.identity.requestPlcOperationSignature", None, None)
            .await
            .assert_error(401, "AuthMissing");
    }

    async fn migration_with_service_auth(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, rotation, signing) = foreign_plc_did(&pds, "mover.test").await;
        let aud = pds.state.config.service_did.clone();
        let body = json!({"did": did, "handle": "mover.test", "email": "mover@example.com", "password": "pw pw pw"});
        let create = |token: Option<String>| {
            let pds = &pds;
            let body = body.clone();
            async move {
                let mut req = pds.client.post(format!("{}/xrpc/{CREATE_ACCOUNT}", pds.url)).json(&body);
                if let Some(t) = token {
                    req = req.bearer_auth(t);
                }
                pds.request(req).await
            }
        };

        // No auth, or auth from another DID.
        let r = create(None).await;
        assert!(r.assert_error(401, "AuthenticationRequired").contains("Missing auth to create account with did"));
        let (other, _, other_key) = foreign_plc_did(&pds, "other.test").await;
        let r = create(Some(service_jwt(&other_key, &other, &aud, Some(CREATE_ACCOUNT)))).await;
        r.assert_error(401, "AuthenticationRequired");
        // Bad tokens, by the reference's names.
        create(Some(service_jwt(&signing, &did, &aud, Some("com.atproto.repo.createRecord"))))
            .await
            .assert_error(401, "BadJwtLexiconMethod");
        create(Some(service_jwt(&signing, &did, &aud, None)))
            .await
            .assert_error(401, "BadJwtLexiconMethod");
        create(Some(service_jwt(&signing, &did, "did:web:elsewhere.example", Some(CREATE_ACCOUNT))))
            .await
            .assert_error(401, "BadJwtAudience");
        create(Some(service_jwt(&rotation, &did, &aud, Some(CREATE_ACCOUNT))))
            .await
            .assert_error(401, "BadJwtSignature");
        create(Some("not-a-jwt".into())).await.assert_error(401, "BadJwt");
        let expired = service_auth::sign(&signing, &NewToken { iss: &did, aud: &aud, lxm: Some(CREATE_ACCOUNT), exp: Some(service_auth::now_secs() - 10) });
        create(Some(expired)).await.assert_error(401, "JwtExpired");

        // The account is created deactivated; nothing is announced.
        let out = create(Some(service_jwt(&signing, &did, &aud, Some(CREATE_ACCOUNT)))).await.ok();
        assert_eq!(out["did"], did.as_str());
        assert_eq!(out["handle"], "mover.test");
        assert_eq!(out["didDoc"]["id"], did.as_str());
        let jwt = out["accessJwt"].as_str().expect("jwt").to_owned();
        let session = xrpc_get(&pds, "com.atproto.server.getSession", Some(&jwt)).await.ok();
        assert_eq!(session["active"], false);
        assert_eq!(session["status"], "deactivated");
        let account = pds.state.store.accounts().get(&did).await.expect("get").expect("account");
        assert_eq!(account.status, pds_store::AccountStatus::Deactivated);
        assert_eq!(pds.state.store.sequencer().current_seq().await.expect("seq"), 0);
        // The same DID twice: refused.
        let r = create(Some(service_jwt(&signing, &did, &aud, Some(CREATE_ACCOUNT)))).await;
        assert_eq!(r.status, 400, "{}", r.text());

        // The DID document does not point here yet.
        let err = pds::identity::check_did_doc_for_service(&pds.state, &did).await.expect_err("not ours yet");
        assert!(matches!(err, pds::identity::ServiceDocError::RotationKey), "{err}");

        // The old PDS (the test, holding the rotation key) moves the DID
        // with the recommended credentials.
        let creds = xrpc_get(&pds, "com.atproto.identity.getRecommendedDidCredentials", Some(&jwt)).await.ok();
        assert_eq!(creds["alsoKnownAs"], json!(["at://mover.test"]));
        let new_key = creds["verificationMethods"]["atproto"].as_str().expect("key").to_owned();
        assert_ne!(new_key, signing.did_key());
        let last = plc_get(&format!("/{did}/log/last")).await;
        let fields = OpFields {
            rotation_keys: creds["rotationKeys"].as_array().expect("keys").clone(),
            verification_methods: creds["verificationMethods"].clone(),
            also_known_as: creds["alsoKnownAs"].as_array().expect("aka").clone(),
            services: creds["services"].clone(),
        };
        let op = plc::update_op(&fields, &plc::op_cid(&last).expect("cid"), &rotation).expect("op");
        // The deactivated account submits it through this server.
        done(
            pds.xrpc_post("com.atproto.identity.submitPlcOperation", &json!({"operation": op}), Some(&jwt))
                .await,
        );
        assert_eq!(plc_get(&format!("/{did}/data")).await["rotationKeys"], creds["rotationKeys"]);
        pds::identity::check_did_doc_for_service(&pds.state, &did).await.expect("now ours");
    }

    async fn migration_takes_the_reserved_key(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, _rotation, signing) = foreign_plc_did(&pds, "keeper.test").await;
        let aud = pds.state.config.service_did.clone();
        // A key reserved for another DID and one reserved for no DID are
        // not taken.
        let unbound = pds.xrpc_post("com.atproto.server.reserveSigningKey", &json!({}), None).await.ok();
        let elsewhere = pds
            .xrpc_post("com.atproto.server.reserveSigningKey", &json!({"did": "did:plc:abcdefghijklmnopqrstuvwx"}), None)
            .await
            .ok();
        let reserved = pds.xrpc_post("com.atproto.server.reserveSigningKey", &json!({"did": did}), None).await.ok();
        let reserved = reserved["signingKey"].as_str().expect("signingKey").to_owned();
        assert!(reserved.starts_with("did:key:z"), "{reserved}");

        let out = pds
            .request(
                pds.client
                    .post(format!("{}/xrpc/{CREATE_ACCOUNT}", pds.url))
                    .bearer_auth(service_jwt(&signing, &did, &aud, Some(CREATE_ACCOUNT)))
                    .json(&json!({"did": did, "handle": "keeper.test", "email": "keeper@example.com", "password": "pw pw pw"})),
            )
            .await
            .ok();
        let jwt = out["accessJwt"].as_str().expect("jwt").to_owned();
        // The account's key is the reserved one: the recommended
        // credentials (and so the DID document after the PLC update) name it.
        let creds = xrpc_get(&pds, "com.atproto.identity.getRecommendedDidCredentials", Some(&jwt)).await.ok();
        assert_eq!(creds["verificationMethods"]["atproto"], reserved.as_str());
        let key = pds::identity::account_signing_key(&pds.state, &did).await.expect("key");
        assert_eq!(key.did_key(), reserved);
        // The reservation is used up: reserving again for the DID gives a
        // new key; the other reservations are untouched.
        let again = pds.xrpc_post("com.atproto.server.reserveSigningKey", &json!({"did": did}), None).await.ok();
        assert_ne!(again["signingKey"], reserved.as_str());
        for other in [&unbound, &elsewhere] {
            let k = other["signingKey"].as_str().expect("key");
            assert!(pds.state.store.accounts().get_reserved_key(k).await.expect("get").is_some(), "{k}");
        }

        // Without a reservation, a migrating account gets a new key.
        let (did2, _, signing2) = foreign_plc_did(&pds, "fresh.test").await;
        let out = pds
            .request(
                pds.client
                    .post(format!("{}/xrpc/{CREATE_ACCOUNT}", pds.url))
                    .bearer_auth(service_jwt(&signing2, &did2, &aud, Some(CREATE_ACCOUNT)))
                    .json(&json!({"did": did2, "handle": "fresh.test", "email": "fresh@example.com", "password": "pw pw pw"})),
            )
            .await
            .ok();
        assert_eq!(out["did"], did2.as_str());
        let key2 = pds::identity::account_signing_key(&pds.state, &did2).await.expect("key");
        for k in [&reserved, &signing2.did_key(), &unbound["signingKey"].as_str().expect("k").to_owned()] {
            assert_ne!(&key2.did_key(), k);
        }
    }

    async fn bring_your_own_did_web(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let served = Arc::new(Mutex::new(Value::Null));
        let port = serve_did_json(served.clone()).await;
        let did = format!("did:web:localhost%3A{port}");
        let key = PrivateKey::generate(Algorithm::P256);
        *served.lock().unwrap() = pds::identity::doc::build(&did, Some("webby.test"), &key.did_key(), "https://old-pds.example.com");
        let aud = pds.state.config.service_did.clone();

        let out = pds
            .request(
                pds.client
                    .post(format!("{}/xrpc/{CREATE_ACCOUNT}", pds.url))
                    .bearer_auth(service_jwt(&key, &did, &aud, Some(CREATE_ACCOUNT)))
                    .json(&json!({"did": did, "handle": "webby.test", "email": "webby@example.com", "password": "pw pw pw"})),
            )
            .await
            .ok();
        assert_eq!(out["did"], did.as_str());
        assert_eq!(out["didDoc"]["id"], did.as_str());
        let jwt = out["accessJwt"].as_str().expect("jwt").to_owned();
        let account = pds.state.store.accounts().get(&did).await.expect("get").expect("account");
        assert_eq!(account.status, pds_store::AccountStatus::Deactivated);

        // Activation's check: the document must name this PDS and the
        // account's new key (no rotation keys for did:web).
        let err = pds::identity::check_did_doc_for_service(&pds.state, &did).await.expect_err("not ours yet");
        assert!(matches!(err, pds::identity::ServiceDocError::Endpoint), "{err}");
        let creds = xrpc_get(&pds, "com.atproto.identity.getRecommendedDidCredentials", Some(&jwt)).await.ok();
        let new_key = creds["verificationMethods"]["atproto"].as_str().expect("key").to_owned();
        *served.lock().unwrap() = pds::identity::doc::build(&did, Some("webby.test"), &key.did_key(), &pds.state.config.public_url);
        let err = pds::identity::check_did_doc_for_service(&pds.state, &did).await.expect_err("old key");
        assert!(matches!(err, pds::identity::ServiceDocError::SigningKey), "{err}");
        *served.lock().unwrap() = pds::identity::doc::build(&did, Some("webby.test"), &new_key, &pds.state.config.public_url);
        pds::identity::check_did_doc_for_service(&pds.state, &did).await.expect("now ours");

        // A did:web host that serves nothing: the issuer cannot be resolved.
        let gone = "did:web:localhost%3A9";
        let r = pds
            .request(
                pds.client
                    .post(format!("{}/xrpc/{CREATE_ACCOUNT}", pds.url))
                    .bearer_auth(service_jwt(&key, gone, &aud, Some(CREATE_ACCOUNT)))
                    .json(&json!({"did": gone, "handle": "gone.test", "email": "gone@example.com", "password": "pw pw pw"})),
            )
            .await;
        r.assert_error(401, "AuthenticationRequired");
    }
}

/// A minimal HTTP server answering every request with the JSON in `doc`
/// (a did:web host); returns its port.
async fn serve_did_json(doc: Arc<Mutex<Value>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let doc = doc.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut read = 0;
                // Read the request head.
                while read < buf.len() {
                    match stream.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                    if buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf[..read]).to_string();
                let (status, body) = if head.starts_with("GET /.well-known/did.json ") {
                    ("200 OK", doc.lock().unwrap().to_string())
                } else {
                    ("404 Not Found", "{}".to_owned())
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    port
}

/// A minimal DNS server on UDP answering TXT queries from `records`
/// (lower-case name without the final dot → TXT value) and NXDOMAIN
/// otherwise; returns its address.
async fn serve_dns(records: Arc<Mutex<Vec<(String, String)>>>) -> std::net::SocketAddr {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let q = &buf[..n];
            if q.len() < 12 {
                continue;
            }
            // The question's name.
            let mut i = 12;
            let mut labels = Vec::new();
            while i < q.len() && q[i] != 0 {
                let len = q[i] as usize;
                let Some(label) = q.get(i + 1..i + 1 + len) else {
                    break;
                };
                labels.push(String::from_utf8_lossy(label).to_ascii_lowercase());
                i += 1 + len;
            }
            let question_end = i + 5;
            if question_end > q.len() {
                continue;
            }
            let name = labels.join(".");
            let qtype = u16::from_be_bytes([q[i + 1], q[i + 2]]);
            let answer = records
                .lock()
                .unwrap()
                .iter()
                .find(|(n, _)| *n == name)
                .filter(|_| qtype == 16)
                .map(|(_, v)| v.clone());
            let mut out = Vec::new();
            out.extend_from_slice(&q[0..2]);
            let rcode: u16 = if answer.is_some() { 0 } else { 3 };
            out.extend_from_slice(&(0x8180u16 | rcode).to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&u16::from(answer.is_some()).to_be_bytes());
            out.extend_from_slice(&[0, 0, 0, 0]);
            out.extend_from_slice(&q[12..question_end]);
            if let Some(v) = answer {
                out.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
                let data = v.as_bytes();
                out.extend_from_slice(&((data.len() + 1) as u16).to_be_bytes());
                out.push(data.len() as u8);
                out.extend_from_slice(data);
            }
            let _ = socket.send_to(&out, peer).await;
        }
    });
    addr
}

both_backends! {
    // Only handles whose TXT record answers are used: a handle without
    // one would fall back to HTTPS on the public network.
    async fn external_handles_by_dns(backend: Backend) {
        let records = Arc::new(Mutex::new(Vec::new()));
        let dns = serve_dns(records.clone()).await;
        let pds = TestPds::start(
            Options::new(backend)
                .with_plc()
                .set("PDS_HANDLE_RESOLVER_NAMESERVERS", &dns.to_string()),
        )
        .await;
        let (did, jwt) = account(&pds, "alice.test", "alice@example.com").await;
        records.lock().unwrap().extend([
            ("_atproto.alice.example.com".to_owned(), format!("did={did}")),
            ("_atproto.wrong.example.com".to_owned(), "did=did:plc:someoneelse".to_owned()),
        ]);

        // resolveHandle of handles that are not ours: by DNS.
        let out = xrpc_get(&pds, "com.atproto.identity.resolveHandle?handle=alice.example.com", None).await.ok();
        assert_eq!(out["did"], did.as_str());
        let out = xrpc_get(&pds, "com.atproto.identity.resolveHandle?handle=wrong.example.com", None).await.ok();
        assert_eq!(out["did"], "did:plc:someoneelse");

        // updateHandle to an external handle: it must resolve to the DID.
        let r = pds.xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": "wrong.example.com"}), Some(&jwt)).await;
        assert_eq!(r.assert_error(400, "InvalidRequest"), "External handle did not resolve to DID");
        let mut socket = firehose(&pds).await;
        done(pds.xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": "Alice.Example.com"}), Some(&jwt))
            .await);
        let doc = plc_get(&format!("/{did}")).await;
        assert_eq!(doc["alsoKnownAs"], json!(["at://alice.example.com"]));
        expect_frame(&mut socket, "#identity", &did, |b| b["handle"] == "alice.example.com").await;
        let session = xrpc_get(&pds, "com.atproto.server.getSession", Some(&jwt)).await.ok();
        assert_eq!(session["handle"], "alice.example.com");

        // A migrating account may keep its external handle, if it resolves
        // to its DID.
        let (mover, _, key) = foreign_plc_did(&pds, "mover.example.com").await;
        records.lock().unwrap().push(("_atproto.mover.example.com".to_owned(), format!("did={mover}")));
        let aud = pds.state.config.service_did.clone();
        let create = |handle: &'static str| {
            let pds = &pds;
            let token = service_jwt(&key, &mover, &aud, Some(CREATE_ACCOUNT));
            let mover = mover.clone();
            async move {
                pds.request(
                    pds.client
                        .post(format!("{}/xrpc/{CREATE_ACCOUNT}", pds.url))
                        .bearer_auth(token)
                        .json(&json!({"did": mover, "handle": handle, "email": "mover@example.com"})),
                )
                .await
            }
        };
        let r = create("wrong.example.com").await;
        assert_eq!(r.assert_error(400, "InvalidRequest"), "External handle did not resolve to DID");
        let out = create("mover.example.com").await.ok();
        assert_eq!(out["handle"], "mover.example.com");
        assert_eq!(out["did"], mover.as_str());
        // Without a DID, a handle outside our domains is refused outright.
        let r = pds
            .xrpc_post(CREATE_ACCOUNT, &json!({"handle": "new.example.com", "email": "new@example.com", "password": "pw pw pw"}), None)
            .await;
        r.assert_error(400, "UnsupportedDomain");
    }
}

both_backends! {
    async fn did_web_account_updates_handle(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let served = Arc::new(Mutex::new(Value::Null));
        let port = serve_did_json(served.clone()).await;
        let did = format!("did:web:localhost%3A{port}");
        // An active did:web account (as after a completed migration).
        let key = PrivateKey::generate(Algorithm::K256);
        let mut new = pds_store::NewAccount::new(did.as_str(), "webby.test");
        new.email = Some("webby@example.com".into());
        new.password_hash = Some(
            pds_store::password::hash_password("pw pw pw", pds_store::password::KdfParams::default())
                .expect("hash"),
        );
        new.signing_key_ciphertext = Some(pds.state.key_cipher.seal(&did, &key).expect("seal"));
        pds.state.store.accounts().create(new, None).await.expect("account stored");
        let public_url = pds.state.config.public_url.clone();
        *served.lock().unwrap() = pds::identity::doc::build(&did, Some("webby.test"), &key.did_key(), &public_url);
        pds::identity::check_did_doc_for_service(&pds.state, &did).await.expect("the document points here");
        let jwt = pds.login("webby.test", "pw pw pw").await["accessJwt"].as_str().expect("jwt").to_owned();

        // The document does not claim the new handle yet: refused, nothing changes.
        let r = pds.xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": "webby2.test"}), Some(&jwt)).await;
        assert_eq!(r.assert_error(400, "InvalidRequest"), "DID is not properly configured for handle");
        let account = pds.state.store.accounts().get(&did).await.expect("get").expect("account");
        assert_eq!(account.handle.as_deref(), Some("webby.test"));

        // Once it does, the handle changes and is announced.
        *served.lock().unwrap() = pds::identity::doc::build(&did, Some("webby2.test"), &key.did_key(), &public_url);
        let mut socket = firehose(&pds).await;
        done(pds.xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": "webby2.test"}), Some(&jwt)).await);
        expect_frame(&mut socket, "#identity", &did, |b| b["handle"] == "webby2.test").await;
        let out = xrpc_get(&pds, "com.atproto.identity.resolveHandle?handle=webby2.test", None).await.ok();
        assert_eq!(out["did"], did.as_str());
        // Credentials for a did:web: no PLC involved.
        let creds = xrpc_get(&pds, "com.atproto.identity.getRecommendedDidCredentials", Some(&jwt)).await.ok();
        assert_eq!(creds["alsoKnownAs"], json!(["at://webby2.test"]));
        assert_eq!(creds["verificationMethods"]["atproto"], key.did_key().as_str());
    }
}

both_backends! {
    async fn hosted_did_web_account(backend: Backend) {
        // No PLC directory: a hosted did:web needs none.
        let pds = TestPds::start(Options::new(backend)).await;
        let mut socket = firehose(&pds).await;
        let did = "did:web:webby.test";
        let out = pds.xrpc_post(CREATE_ACCOUNT, &json!({"handle": "webby.test",
            "email": "webby@example.com", "password": "correct horse", "did": did}), None)
            .await
            .ok();
        assert_eq!(out["did"], did);
        assert_eq!(out["didDoc"]["id"], did);
        let jwt = out["accessJwt"].as_str().expect("jwt").to_owned();
        // Its document, served on the handle's host, names the account's key
        // and this PDS.
        let doc = get_with_host(&pds, "/.well-known/did.json", "webby.test").await.ok();
        assert_eq!(doc, out["didDoc"]);
        let creds = xrpc_get(&pds, "com.atproto.identity.getRecommendedDidCredentials", Some(&jwt)).await.ok();
        let data = pds::identity::doc::atproto_data(did, &doc).expect("atproto data");
        assert_eq!(Some(data.signing_key.as_str()), creds["verificationMethods"]["atproto"].as_str());
        assert_eq!(data.pds, pds.state.config.public_url);
        assert_eq!(data.handle.as_deref(), Some("webby.test"));
        assert_eq!(get_with_host(&pds, "/.well-known/atproto-did", "webby.test").await.text(), did);
        // The account works: the usual creation events, then writes.
        expect_frame(&mut socket, "#identity", did, |b| b["handle"] == "webby.test").await;
        pds.xrpc_post("com.atproto.repo.createRecord", &json!({"repo": did,
            "collection": "app.bsky.feed.post", "record": {"$type": "app.bsky.feed.post",
            "text": "hosted", "createdAt": "2024-01-01T00:00:00.000Z"}}), Some(&jwt))
            .await
            .ok();
        assert_eq!(pds.get(&format!("/xrpc/com.atproto.sync.getLatestCommit?did={did}"), None).await.status, 200);

        // Only the did:web of the handle itself, on a service domain, is
        // hosted; any other DID is a migration and needs the DID's auth.
        for (handle, other) in [("carol.test", "did:web:someone.test"), ("dave.test", "did:web:elsewhere.example")] {
            pds.xrpc_post(CREATE_ACCOUNT, &json!({"handle": handle,
                "email": format!("{handle}@example.com"), "password": "correct horse", "did": other}), None)
                .await
                .assert_error(401, "AuthenticationRequired");
        }
        // The handle is taken with its did:web.
        pds.xrpc_post(CREATE_ACCOUNT, &json!({"handle": "webby.test",
            "email": "webby2@example.com", "password": "correct horse", "did": did}), None)
            .await
            .assert_error(400, "InvalidRequest");
    }

    async fn tombstoned_did(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let (did, jwt) = account(&pds, "alice.test", "alice@example.com").await;
        done(pds.post("/xrpc/com.atproto.identity.requestPlcOperationSignature", None, Some(&jwt)).await);
        let queued = pds.state.store.notifications().history("alice@example.com", 10).await.expect("history");
        let payload: Value = serde_json::from_str(&queued[0].payload).expect("payload");
        let token = payload["token"].as_str().expect("token").to_owned();

        // The server's rotation key tombstones the DID in the directory.
        let last = plc_get(&format!("/{did}/log/last")).await;
        let unsigned = json!({"type": "plc_tombstone", "prev": plc::op_cid(&last).expect("cid")});
        let bytes = atproto_types::data::to_dag_cbor(&atproto_types::data::Value::from_json(&unsigned).expect("value"));
        let sig = base64_url(&pds.state.plc_rotation_key.sign(&bytes));
        let mut tombstone = unsigned.clone();
        tombstone["sig"] = json!(sig);
        pds.state.plc.submit(&did, &tombstone).await.expect("tombstone accepted");

        let r = pds
            .xrpc_post("com.atproto.identity.signPlcOperation", &json!({"token": token}), Some(&jwt))
            .await;
        assert_eq!(r.assert_error(400, "InvalidRequest"), "Did is tombstoned");
        let r = pds
            .xrpc_post("com.atproto.identity.updateHandle", &json!({"handle": "alice2.test"}), Some(&jwt))
            .await;
        assert_eq!(r.assert_error(400, "InvalidRequest"), "Did is tombstoned");
        let account = pds.state.store.accounts().get(&did).await.expect("get").expect("account");
        assert_eq!(account.handle.as_deref(), Some("alice.test"));
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
