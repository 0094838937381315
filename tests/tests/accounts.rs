//! Accounts and sessions over real HTTP, on SQLite and PostgreSQL, with
//! the reference PLC directory on loopback: createAccount (did:plc,
//! handle rules, invites), createSession, getSession, refreshSession
//! (rotation, grace period, reuse), deleteSession, token errors.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use atproto_types::crypto::{Algorithm, PublicKey};
use pds_tests::{both_backends, jwt_claims, jwt_header, plc_url, Backend, Options, TestPds};
use serde_json::{json, Value};

const CREATE: &str = "com.atproto.server.createAccount";
const LOGIN: &str = "com.atproto.server.createSession";
const GET_SESSION: &str = "/xrpc/com.atproto.server.getSession";
const REFRESH: &str = "com.atproto.server.refreshSession";
const DELETE: &str = "com.atproto.server.deleteSession";
const INVITE: &str = "com.atproto.server.createInviteCode";

async fn server(backend: Backend) -> TestPds {
    TestPds::start(Options::new(backend).with_plc()).await
}

fn account(handle: &str, email: &str) -> Value {
    json!({"handle": handle, "email": email, "password": "correct horse"})
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A token signed with the test servers' JWT secret.
fn sign(typ: &str, claims: Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some(typ.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(pds_tests::JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

/// The public key of a DID document verification method, in either form.
fn key_of(method: &Value) -> PublicKey {
    let multibase = method["publicKeyMultibase"]
        .as_str()
        .expect("publicKeyMultibase");
    match method["type"].as_str() {
        Some("Multikey") => PublicKey::from_multibase(multibase).expect("Multikey"),
        Some(legacy) => {
            let alg = Algorithm::from_legacy_verification_method_type(legacy).expect("key type");
            PublicKey::from_legacy_multibase(alg, multibase).expect("legacy key")
        }
        None => panic!("verification method without a type: {method}"),
    }
}

async fn refresh(pds: &TestPds, refresh_jwt: &str) -> pds_tests::Reply {
    pds.post(&format!("/xrpc/{REFRESH}"), None, Some(refresh_jwt))
        .await
}

both_backends! {
    async fn create_account_registers_a_did_plc(backend: Backend) {
        let pds = server(backend).await;
        let out = pds
            .xrpc_post(CREATE, &account("Alice.test", "Alice@Example.com"), None)
            .await
            .ok();
        let did = out["did"].as_str().expect("did").to_owned();
        assert!(did.starts_with("did:plc:") && did.len() == 32, "{did}");
        assert_eq!(out["handle"], "alice.test");
        let access = out["accessJwt"].as_str().expect("accessJwt");
        let refresh_jwt = out["refreshJwt"].as_str().expect("refreshJwt");
        assert_eq!(jwt_header(access)["typ"], "at+jwt");
        assert_eq!(jwt_claims(access)["scope"], "com.atproto.access");
        assert_eq!(jwt_claims(access)["sub"], did.as_str());
        assert_eq!(jwt_claims(access)["aud"], "did:web:localhost");
        assert_eq!(jwt_header(refresh_jwt)["typ"], "refresh+jwt");
        assert_eq!(jwt_claims(refresh_jwt)["scope"], "com.atproto.refresh");
        assert!(jwt_claims(refresh_jwt)["jti"].is_string());
        let exp = jwt_claims(access)["exp"].as_i64().unwrap_or(0);
        assert!((exp - now_secs() - 7200).abs() < 30, "access tokens live 2 hours");
        let exp = jwt_claims(refresh_jwt)["exp"].as_i64().unwrap_or(0);
        assert!((exp - now_secs() - 90 * 86400).abs() < 30, "refresh tokens live 90 days");
        let doc = &out["didDoc"];
        assert_eq!(doc["id"], did.as_str());

        // The PLC directory serves the document: our key, handle, endpoint.
        let plc: Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{}/{did}", plc_url()))
            .send()
            .await
            .expect("PLC resolve")
            .json()
            .await
            .expect("DID document");
        assert_eq!(plc["id"], did.as_str());
        assert_eq!(plc["alsoKnownAs"], json!(["at://alice.test"]));
        assert_eq!(plc["service"][0]["type"], "AtprotoPersonalDataServer");
        assert_eq!(plc["service"][0]["serviceEndpoint"], pds.state.config.public_url.as_str());
        // The same key in both documents (this directory version writes
        // the legacy uncompressed form; current ones write a Multikey).
        let plc_key = key_of(&plc["verificationMethod"][0]);
        assert_eq!(plc_key, key_of(&doc["verificationMethod"][0]));
        let vm_id = plc["verificationMethod"][0]["id"].as_str().unwrap_or("");
        assert!(vm_id.ends_with("#atproto"), "{vm_id}");
        for field in ["id", "alsoKnownAs"] {
            assert_eq!(plc[field], doc[field], "{field}");
        }
        assert_eq!(plc["service"][0]["serviceEndpoint"], doc["service"][0]["serviceEndpoint"]);
        let data: Value = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client")
            .get(format!("{}/{did}/data", plc_url()))
            .send()
            .await
            .expect("PLC data")
            .json()
            .await
            .expect("PLC data JSON");
        assert_eq!(
            data["rotationKeys"],
            json!([pds.state.plc_rotation_key.did_key()])
        );

        // The signing key is stored encrypted and is the document's key.
        let sealed = pds
            .state
            .store
            .accounts()
            .signing_key(&did)
            .await
            .expect("read key")
            .expect("a stored key");
        let key = pds.state.key_cipher.open(&did, &sealed).expect("key opens");
        assert_eq!(data["verificationMethods"]["atproto"], key.did_key().as_str());
        assert_eq!(plc_key, key.public_key());

        // The repository exists and the firehose has the four events in order.
        let root = pds.state.store.repo().get_root(&did).await.expect("root");
        assert!(root.is_some(), "the genesis commit is stored");
        let events = pds
            .state
            .store
            .sequencer()
            .events_after(0, 100)
            .await
            .expect("events");
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e.did == did)
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(kinds, ["identity", "account", "commit", "sync"]);

        // The new session works.
        let s = pds.get(GET_SESSION, Some(access)).await.ok();
        assert_eq!(s["did"], did.as_str());
        assert_eq!(s["handle"], "alice.test");
        assert_eq!(s["email"], "alice@example.com");
        assert_eq!(s["emailConfirmed"], false);
        assert_eq!(s["active"], true);
        assert!(s.get("status").is_none());
        pds.stop().await;
    }

    async fn create_account_errors(backend: Backend) {
        let pds = server(backend).await;
        let err = |handle: &str, email: &str| {
            let body = account(handle, email);
            let pds = &pds;
            async move { pds.xrpc_post(CREATE, &body, None).await }
        };
        // Handle syntax (lexicon check) and rules.
        err("not a handle", "a@example.com").await.assert_error(400, "InvalidRequest");
        let m = err("ab.test", "a@example.com").await.assert_error(400, "InvalidHandle");
        assert_eq!(m, "Handle too short");
        let m = err("a234567890123456789.test", "a@example.com")
            .await
            .assert_error(400, "InvalidHandle");
        assert_eq!(m, "Handle too long");
        err("a.b.test", "a@example.com").await.assert_error(400, "InvalidHandle");
        err("alice.local", "a@example.com").await.assert_error(400, "InvalidHandle");
        err("admin.test", "a@example.com").await.assert_error(400, "HandleNotAvailable");
        err("alice.example.com", "a@example.com")
            .await
            .assert_error(400, "UnsupportedDomain");
        // Email.
        let m = err("alice.test", "not-an-email").await.assert_error(400, "InvalidRequest");
        assert!(m.contains("email"), "{m}");
        let m = pds
            .xrpc_post(CREATE, &json!({"handle": "alice.test", "password": "x"}), None)
            .await
            .assert_error(400, "InvalidRequest");
        assert_eq!(m, "Email is required");
        // Password length.
        let long = "x".repeat(257);
        pds.xrpc_post(
            CREATE,
            &json!({"handle": "alice.test", "email": "a@example.com", "password": long}),
            None,
        )
        .await
        .assert_error(400, "InvalidRequest");
        // Taken handle and email.
        pds.create_account("alice.test", "alice@example.com", "pw-alice").await;
        let m = err("ALICE.test", "other@example.com").await.assert_error(400, "InvalidRequest");
        assert!(m.contains("Handle already taken"), "{m}");
        let m = err("alice2.test", "Alice@example.com").await.assert_error(400, "InvalidRequest");
        assert!(m.contains("Email already taken"), "{m}");
        // Bringing a DID needs service auth.
        pds.xrpc_post(
            CREATE,
            &json!({"handle": "bob.test", "email": "bob@example.com", "did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}),
            None,
        )
        .await
        .assert_error(401, "AuthenticationRequired");
        pds.xrpc_post(
            CREATE,
            &json!({"handle": "bob.test", "email": "bob@example.com", "plcOp": {}}),
            None,
        )
        .await
        .assert_error(400, "InvalidRequest");
        // None of the refused requests created anything.
        let all = pds.state.store.accounts().list(None, 100).await.expect("list");
        assert_eq!(all.len(), 1);
        pds.stop().await;
    }

    async fn invite_codes_when_required(backend: Backend) {
        let pds = TestPds::start(
            Options::new(backend)
                .with_plc()
                .set("PDS_INVITE_REQUIRED", "true"),
        )
        .await;
        let m = pds
            .xrpc_post(CREATE, &account("carol.test", "carol@example.com"), None)
            .await
            .assert_error(400, "InvalidInviteCode");
        assert_eq!(m, "No invite code provided");
        let with_code = |code: &str| {
            json!({"handle": "carol.test", "email": "carol@example.com", "password": "pw", "inviteCode": code})
        };
        pds.xrpc_post(CREATE, &with_code("localhost-aaaaa-bbbbb"), None)
            .await
            .assert_error(400, "InvalidInviteCode");

        // createInviteCode needs the admin password.
        let url = format!("{}/xrpc/{INVITE}", pds.url);
        let body = json!({"useCount": 1});
        pds.request(pds.client.post(&url).json(&body))
            .await
            .assert_error(401, "AuthenticationRequired");
        pds.request(pds.client.post(&url).json(&body).basic_auth("admin", Some("wrong")))
            .await
            .assert_error(401, "AuthenticationRequired");
        pds.request(
            pds.client
                .post(&url)
                .json(&body)
                .basic_auth("root", Some(pds_tests::ADMIN_PASSWORD)),
        )
        .await
        .assert_error(401, "AuthenticationRequired");
        let code = pds
            .request(
                pds.client
                    .post(&url)
                    .json(&body)
                    .basic_auth("admin", Some(pds_tests::ADMIN_PASSWORD)),
            )
            .await
            .ok()["code"]
            .as_str()
            .expect("code")
            .to_owned();
        assert!(code.starts_with("localhost-"), "{code}");

        pds.xrpc_post(CREATE, &with_code(&code), None).await.ok();
        // Single use.
        let again = json!({"handle": "dave.test", "email": "dave@example.com", "password": "pw", "inviteCode": code});
        pds.xrpc_post(CREATE, &again, None)
            .await
            .assert_error(400, "InvalidInviteCode");
        let used = pds
            .state
            .store
            .accounts()
            .get_invite_code(&code)
            .await
            .expect("read code")
            .expect("code exists");
        assert_eq!(used.uses.len(), 1);
        pds.stop().await;
    }

    async fn create_session_by_handle_did_or_email(backend: Backend) {
        let pds = server(backend).await;
        let created = pds.create_account("erin.test", "erin@example.com", "erin-pw").await;
        let did = created["did"].as_str().expect("did");
        for identifier in ["erin.test", "ERIN.TEST", did, "erin@example.com", "Erin@Example.COM"] {
            let s = pds.login(identifier, "erin-pw").await;
            assert_eq!(s["did"], did, "{identifier}");
            assert_eq!(s["handle"], "erin.test");
            assert_eq!(s["email"], "erin@example.com");
            assert_eq!(s["emailConfirmed"], false);
            assert_eq!(s["active"], true);
            assert!(s.get("status").is_none());
            assert!(s.get("didDoc").is_none(), "no didDoc unless PDS_ENABLE_DID_DOC_WITH_SESSION");
            let access = s["accessJwt"].as_str().expect("access");
            assert_eq!(jwt_claims(access)["scope"], "com.atproto.access");
            pds.get(GET_SESSION, Some(access)).await.ok();
        }

        // Wrong password and unknown user: the same answer, in about the
        // same time (both verify an Argon2 hash).
        let bad = |identifier: &str, password: &str| {
            json!({"identifier": identifier, "password": password})
        };
        let t = Instant::now();
        let wrong = pds.xrpc_post(LOGIN, &bad("erin.test", "nope"), None).await;
        let wrong_time = t.elapsed();
        let t = Instant::now();
        let unknown = pds.xrpc_post(LOGIN, &bad("nobody.test", "nope"), None).await;
        let unknown_time = t.elapsed();
        let m = wrong.assert_error(401, "AuthenticationRequired");
        assert_eq!(m, "Invalid identifier or password");
        assert_eq!(unknown.json(), wrong.json());
        assert_eq!(unknown.status, wrong.status);
        assert!(
            unknown_time * 4 >= wrong_time,
            "unknown user answered much faster ({unknown_time:?} vs {wrong_time:?})"
        );
        pds.xrpc_post(LOGIN, &bad("erin@example.com", "nope"), None)
            .await
            .assert_error(401, "AuthenticationRequired");
        pds.xrpc_post(LOGIN, &bad(did, ""), None)
            .await
            .assert_error(401, "AuthenticationRequired");
        pds.stop().await;
    }

    async fn token_errors(backend: Backend) {
        let pds = server(backend).await;
        let created = pds.create_account("frank.test", "frank@example.com", "frank-pw").await;
        let did = created["did"].as_str().expect("did");
        let access = created["accessJwt"].as_str().expect("access");
        let refresh_jwt = created["refreshJwt"].as_str().expect("refresh");

        let m = pds.get(GET_SESSION, None).await.assert_error(401, "AuthMissing");
        assert_eq!(m, "Authentication Required");
        pds.get(GET_SESSION, Some("garbage")).await.assert_error(400, "InvalidToken");
        // A refresh token is not an access token, and vice versa.
        pds.get(GET_SESSION, Some(refresh_jwt)).await.assert_error(400, "InvalidToken");
        refresh(&pds, access).await.assert_error(400, "InvalidToken");
        // Malformed headers and other schemes.
        pds.get_with_authorization(GET_SESSION, "Bearer")
            .await
            .assert_error(400, "InvalidToken");
        pds.get_with_authorization(GET_SESSION, "Token abc")
            .await
            .assert_error(400, "InvalidToken");
        pds.get_with_authorization(GET_SESSION, "Basic YWRtaW46eA==")
            .await
            .assert_error(400, "InvalidToken");
        // Expired, another secret, another audience, bad scope.
        let expired = sign(
            "at+jwt",
            json!({"scope": "com.atproto.access", "sub": did, "aud": "did:web:localhost", "exp": now_secs() - 5}),
        );
        let m = pds.get(GET_SESSION, Some(&expired)).await.assert_error(400, "ExpiredToken");
        assert_eq!(m, "Token has expired");
        let expired_refresh = sign(
            "refresh+jwt",
            json!({"scope": "com.atproto.refresh", "sub": did, "aud": "did:web:localhost", "jti": "x", "exp": now_secs() - 5}),
        );
        refresh(&pds, &expired_refresh).await.assert_error(400, "ExpiredToken");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        let other_secret = jsonwebtoken::encode(
            &header,
            &json!({"scope": "com.atproto.access", "sub": did, "exp": now_secs() + 60}),
            &jsonwebtoken::EncodingKey::from_secret(b"another secret"),
        )
        .expect("sign");
        pds.get(GET_SESSION, Some(&other_secret)).await.assert_error(400, "InvalidToken");
        let other_aud = sign(
            "at+jwt",
            json!({"scope": "com.atproto.access", "sub": did, "aud": "did:web:elsewhere", "exp": now_secs() + 60}),
        );
        pds.get(GET_SESSION, Some(&other_aud)).await.assert_error(400, "InvalidToken");
        let bad_scope = sign(
            "at+jwt",
            json!({"scope": "com.example.everything", "sub": did, "exp": now_secs() + 60}),
        );
        pds.get(GET_SESSION, Some(&bad_scope)).await.assert_error(400, "InvalidToken");
        // A well-signed token of an account that does not exist.
        let ghost = sign(
            "at+jwt",
            json!({"scope": "com.atproto.access", "sub": "did:plc:ghostghostghostghostghos", "exp": now_secs() + 60}),
        );
        pds.get(GET_SESSION, Some(&ghost)).await.assert_error(403, "AccountNotFound");
        // A good token still works after all that.
        pds.get(GET_SESSION, Some(access)).await.ok();
        pds.stop().await;
    }

    async fn refresh_rotation_and_grace_period(backend: Backend) {
        let pds = server(backend).await;
        let created = pds.create_account("gina.test", "gina@example.com", "gina-pw").await;
        let did = created["did"].as_str().expect("did");
        let first = created["refreshJwt"].as_str().expect("refresh").to_owned();

        let r1 = refresh(&pds, &first).await.ok();
        assert_eq!(r1["did"], did);
        assert_eq!(r1["handle"], "gina.test");
        assert_eq!(r1["active"], true);
        let second = r1["refreshJwt"].as_str().expect("refresh").to_owned();
        let access = r1["accessJwt"].as_str().expect("access");
        assert_ne!(jwt_claims(&first)["jti"], jwt_claims(&second)["jti"]);
        pds.get(GET_SESSION, Some(access)).await.ok();

        // The old token again, within the grace period: the same successor.
        let again = refresh(&pds, &first).await.ok();
        let again_jwt = again["refreshJwt"].as_str().expect("refresh");
        assert_eq!(jwt_claims(again_jwt)["jti"], jwt_claims(&second)["jti"]);
        pds.get(GET_SESSION, Some(again["accessJwt"].as_str().expect("access")))
            .await
            .ok();

        // The chain goes on from the successor.
        let r2 = refresh(&pds, &second).await.ok();
        let third = r2["refreshJwt"].as_str().expect("refresh").to_owned();
        assert_ne!(jwt_claims(&third)["jti"], jwt_claims(&second)["jti"]);
        refresh(&pds, &third).await.ok();

        pds.stop().await;
    }

    async fn app_password_sessions(backend: Backend) {
        let pds = server(backend).await;
        let created = pds.create_account("jane.test", "jane@example.com", "jane-pw").await;
        let did = created["did"].as_str().expect("did");
        // App passwords are stored hashed (created here through the store:
        // createAppPassword is not served yet).
        for (name, password, privileged) in [("plain", "aaaa-bbbb-cccc-dddd", false), ("chat", "eeee-ffff-gggg-hhhh", true)] {
            let hash = pds_store::password::hash_password(password, Default::default()).expect("hash");
            pds.state
                .store
                .accounts()
                .create_app_password(did, name, &hash, privileged)
                .await
                .expect("app password");
        }
        for (password, scope) in [
            ("aaaa-bbbb-cccc-dddd", "com.atproto.appPass"),
            ("eeee-ffff-gggg-hhhh", "com.atproto.appPassPrivileged"),
            ("jane-pw", "com.atproto.access"),
        ] {
            let s = pds.login("jane.test", password).await;
            let access = s["accessJwt"].as_str().expect("access");
            assert_eq!(jwt_claims(access)["scope"], scope);
            pds.get(GET_SESSION, Some(access)).await.ok();
            // Refreshing keeps the scope.
            let r = refresh(&pds, s["refreshJwt"].as_str().expect("refresh")).await.ok();
            assert_eq!(jwt_claims(r["accessJwt"].as_str().expect("access"))["scope"], scope);
        }
        // Revoking the app password ends its sessions.
        let s = pds.login("jane.test", "aaaa-bbbb-cccc-dddd").await;
        assert!(pds
            .state
            .store
            .accounts()
            .delete_app_password(did, "plain")
            .await
            .expect("revoke"));
        refresh(&pds, s["refreshJwt"].as_str().expect("refresh"))
            .await
            .assert_error(400, "ExpiredToken");
        pds.xrpc_post(LOGIN, &json!({"identifier": "jane.test", "password": "aaaa-bbbb-cccc-dddd"}), None)
            .await
            .assert_error(401, "AuthenticationRequired");
        pds.stop().await;
    }

    async fn refresh_reuse_after_grace_revokes_the_chain(backend: Backend) {
        let pds = TestPds::start(
            Options::new(backend)
                .with_plc()
                .set("PDS_REFRESH_GRACE_PERIOD_SECONDS", "1"),
        )
        .await;
        let created = pds.create_account("hank.test", "hank@example.com", "hank-pw").await;
        let first = created["refreshJwt"].as_str().expect("refresh").to_owned();
        let r1 = refresh(&pds, &first).await.ok();
        let second = r1["refreshJwt"].as_str().expect("refresh").to_owned();
        // Within the grace period: fine.
        refresh(&pds, &first).await.ok();
        tokio::time::sleep(Duration::from_millis(1300)).await;
        // After it: the old token is refused, and the successor is revoked too.
        let m = refresh(&pds, &first).await.assert_error(400, "ExpiredToken");
        assert_eq!(m, "Token has been revoked");
        refresh(&pds, &second).await.assert_error(400, "ExpiredToken");
        // A fresh login still works.
        let s = pds.login("hank.test", "hank-pw").await;
        refresh(&pds, s["refreshJwt"].as_str().expect("refresh")).await.ok();
        pds.stop().await;
    }

    async fn delete_session_revokes_the_refresh_token(backend: Backend) {
        let pds = server(backend).await;
        pds.create_account("ivy.test", "ivy@example.com", "ivy-pw").await;
        let s = pds.login("ivy.test", "ivy-pw").await;
        let access = s["accessJwt"].as_str().expect("access");
        let refresh_jwt = s["refreshJwt"].as_str().expect("refresh");
        // The access token is not accepted for logout.
        pds.post(&format!("/xrpc/{DELETE}"), None, Some(access))
            .await
            .assert_error(400, "InvalidToken");
        pds.post(&format!("/xrpc/{DELETE}"), None, None)
            .await
            .assert_error(401, "AuthMissing");
        let r = pds.post(&format!("/xrpc/{DELETE}"), None, Some(refresh_jwt)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        refresh(&pds, refresh_jwt).await.assert_error(400, "ExpiredToken");
        // Other sessions are untouched.
        let other = pds.login("ivy.test", "ivy-pw").await;
        refresh(&pds, other["refreshJwt"].as_str().expect("refresh")).await.ok();
        pds.stop().await;
    }
}
