//! `com.atproto.server` account management over real HTTP, on SQLite and
//! PostgreSQL, with the reference PLC directory on loopback and, for the
//! email flows, a real SMTP server (aiosmtpd) receiving the mail:
//! app passwords, invite codes, deactivate/activate/checkAccountStatus,
//! getServiceAuth, reserveSigningKey, email confirmation and update,
//! password reset, account deletion.

use std::time::{SystemTime, UNIX_EPOCH};

use atproto_types::crypto::{Algorithm, PublicKey};
use pds_store::TokenPurpose;
use pds_tests::{both_backends, jwt_claims, mail_token, Backend, Options, TestPds, ADMIN_PASSWORD};
use serde_json::{json, Value};

const LOGIN: &str = "com.atproto.server.createSession";
const GET_SESSION: &str = "/xrpc/com.atproto.server.getSession";
const REFRESH: &str = "com.atproto.server.refreshSession";
const CREATE_APP_PASSWORD: &str = "com.atproto.server.createAppPassword";
const LIST_APP_PASSWORDS: &str = "/xrpc/com.atproto.server.listAppPasswords";
const REVOKE_APP_PASSWORD: &str = "com.atproto.server.revokeAppPassword";
const CREATE_RECORD: &str = "com.atproto.repo.createRecord";
const CHECK_STATUS: &str = "/xrpc/com.atproto.server.checkAccountStatus";

async fn server(backend: Backend) -> TestPds {
    TestPds::start(Options::new(backend).with_plc()).await
}

async fn mail_server(backend: Backend) -> TestPds {
    TestPds::start(Options::new(backend).with_plc().with_smtp()).await
}

/// Makes `did`'s stored token for `purpose` 16 minutes old.
async fn backdate(pds: &TestPds, purpose: TokenPurpose, did: &str, token: &str) {
    let sixteen_minutes_ago = pds_store::now_ms() - 16 * 60 * 1000;
    pds.state
        .store
        .accounts()
        .put_token_at(
            purpose,
            did,
            &pds::api::email::token_hash(token),
            sixteen_minutes_ago,
        )
        .await
        .expect("backdate token");
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn basic_admin() -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}"));
    format!("Basic {b64}")
}

async fn admin_post(pds: &TestPds, nsid: &str, body: &Value) -> pds_tests::Reply {
    let req = pds
        .client
        .post(format!("{}/xrpc/{nsid}", pds.url))
        .header("authorization", basic_admin())
        .json(body);
    pds.request(req).await
}

/// Creates an account and returns (did, access token, refresh token).
async fn account(
    pds: &TestPds,
    handle: &str,
    email: &str,
    password: &str,
) -> (String, String, String) {
    let c = pds.create_account(handle, email, password).await;
    (
        c["did"].as_str().expect("did").to_owned(),
        c["accessJwt"].as_str().expect("access").to_owned(),
        c["refreshJwt"].as_str().expect("refresh").to_owned(),
    )
}

fn post_record(did: &str) -> Value {
    json!({
        "repo": did,
        "collection": "app.bsky.feed.post",
        "record": {"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00.000Z"},
    })
}

/// The account's sequenced events (type and decoded body), oldest first.
async fn events_of(pds: &TestPds, did: &str) -> Vec<(String, Value, bool)> {
    let events = pds
        .state
        .store
        .sequencer()
        .events_after(0, 1000)
        .await
        .expect("events");
    events
        .into_iter()
        .filter(|e| e.did == did)
        .map(|e| {
            let (_, used) = atproto_types::data::decode_prefix(&e.event).expect("frame header");
            let body = atproto_types::data::from_dag_cbor(&e.event[used..]).expect("frame body");
            (e.event_type, body.to_json(), e.invalidated)
        })
        .collect()
}

both_backends! {
    async fn app_passwords(backend: Backend) {
        let pds = server(backend).await;
        let (did, access, _) = account(&pds, "ann.test", "ann@example.com", "ann-password").await;

        let plain = pds
            .xrpc_post(CREATE_APP_PASSWORD, &json!({"name": "phone"}), Some(&access))
            .await
            .ok();
        assert_eq!(plain["name"], "phone");
        assert_eq!(plain["privileged"], false);
        assert!(plain["createdAt"].is_string());
        let password = plain["password"].as_str().expect("password").to_owned();
        let groups: Vec<&str> = password.split('-').collect();
        assert_eq!(groups.len(), 4, "{password}");
        assert!(groups.iter().all(|g| g.len() == 4), "{password}");
        let privileged = pds
            .xrpc_post(CREATE_APP_PASSWORD, &json!({"name": "chat", "privileged": true}), Some(&access))
            .await
            .ok();
        assert_eq!(privileged["privileged"], true);
        let privileged_pw = privileged["password"].as_str().expect("password").to_owned();

        // Names are unique per account; empty names are refused.
        pds.xrpc_post(CREATE_APP_PASSWORD, &json!({"name": "phone"}), Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        pds.xrpc_post(CREATE_APP_PASSWORD, &json!({"name": "  "}), Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        pds.xrpc_post(CREATE_APP_PASSWORD, &json!({"name": "x"}), None)
            .await
            .assert_error(401, "AuthMissing");

        // Listed by name, without the password; stored hashed.
        let list = pds.get(LIST_APP_PASSWORDS, Some(&access)).await.ok();
        let names: Vec<&str> = list["passwords"]
            .as_array()
            .expect("passwords")
            .iter()
            .map(|p| p["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["chat", "phone"]);
        assert!(list["passwords"][0].get("password").is_none());
        assert_eq!(list["passwords"][0]["privileged"], true);
        let stored = pds.state.store.accounts().list_app_passwords(&did).await.expect("stored");
        assert!(stored.iter().all(|p| p.password_hash.starts_with("$argon2id$")));

        // Logging in with them gives app-password scopes.
        let s = pds.login("ann.test", &password).await;
        let app_access = s["accessJwt"].as_str().expect("access").to_owned();
        let app_refresh = s["refreshJwt"].as_str().expect("refresh").to_owned();
        assert_eq!(jwt_claims(&app_access)["scope"], "com.atproto.appPass");
        let sp = pds.login("ann.test", &privileged_pw).await;
        let priv_access = sp["accessJwt"].as_str().expect("access").to_owned();
        assert_eq!(jwt_claims(&priv_access)["scope"], "com.atproto.appPassPrivileged");

        // App-password sessions (privileged or not) cannot manage app passwords.
        for token in [&app_access, &priv_access] {
            pds.xrpc_post(CREATE_APP_PASSWORD, &json!({"name": "more"}), Some(token))
                .await
                .assert_error(400, "InvalidToken");
            pds.get(LIST_APP_PASSWORDS, Some(token)).await.assert_error(400, "InvalidToken");
            pds.xrpc_post(REVOKE_APP_PASSWORD, &json!({"name": "phone"}), Some(token))
                .await
                .assert_error(400, "InvalidToken");
            pds.get("/xrpc/com.atproto.server.getAccountInviteCodes", Some(token))
                .await
                .assert_error(400, "InvalidToken");
            pds.xrpc_post("com.atproto.server.deactivateAccount", &json!({}), Some(token))
                .await
                .assert_error(400, "InvalidToken");
            pds.xrpc_post("com.atproto.server.updateEmail", &json!({"email": "a2@example.com"}), Some(token))
                .await
                .assert_error(400, "InvalidToken");
            pds.post("/xrpc/com.atproto.server.requestAccountDelete", None, Some(token))
                .await
                .assert_error(400, "InvalidToken");
        }
        // But they can confirm email and write to the repo.
        pds.post("/xrpc/com.atproto.server.requestEmailConfirmation", None, Some(&app_access))
            .await
            .done();
        let r = pds
            .post("/xrpc/com.atproto.server.requestEmailUpdate", None, Some(&app_access))
            .await
            .ok();
        assert_eq!(r["tokenRequired"], false);
        pds.xrpc_post(CREATE_RECORD, &post_record(&did), Some(&app_access)).await.ok();

        // Revoking ends the app password's sessions and logins.
        pds.xrpc_post(REVOKE_APP_PASSWORD, &json!({"name": "phone"}), Some(&access))
            .await
            .done();
        pds.post(&format!("/xrpc/{REFRESH}"), None, Some(&app_refresh))
            .await
            .assert_error(400, "ExpiredToken");
        pds.xrpc_post(LOGIN, &json!({"identifier": "ann.test", "password": password}), None)
            .await
            .assert_error(401, "AuthenticationRequired");
        let list = pds.get(LIST_APP_PASSWORDS, Some(&access)).await.ok();
        assert_eq!(list["passwords"].as_array().map(Vec::len), Some(1));
        // Revoking an unknown name is not an error; the other one still works.
        pds.xrpc_post(REVOKE_APP_PASSWORD, &json!({"name": "nope"}), Some(&access))
            .await
            .done();
        pds.login("ann.test", &privileged_pw).await;
        pds.stop().await;
    }

    async fn invite_codes(backend: Backend) {
        let pds = TestPds::start(
            Options::new(backend).with_plc().set("PDS_INVITE_REQUIRED", "true"),
        )
        .await;
        // createInviteCode (admin) lets the first account in.
        pds.xrpc_post("com.atproto.server.createInviteCode", &json!({"useCount": 1}), None)
            .await
            .assert_error(401, "AuthenticationRequired");
        admin_post(&pds, "com.atproto.server.createInviteCode", &json!({"useCount": 0}))
            .await
            .assert_error(400, "InvalidRequest");
        let code0 = admin_post(&pds, "com.atproto.server.createInviteCode", &json!({"useCount": 1}))
            .await
            .ok()["code"]
            .as_str()
            .expect("code")
            .to_owned();
        let alice = pds
            .xrpc_post(
                "com.atproto.server.createAccount",
                &json!({"handle": "alice.test", "email": "alice@example.com", "password": "pw-alice", "inviteCode": code0}),
                None,
            )
            .await
            .ok();
        let alice_did = alice["did"].as_str().expect("did").to_owned();
        let alice_access = alice["accessJwt"].as_str().expect("access").to_owned();

        // createInviteCodes: codeCount codes for each account named.
        pds.xrpc_post(
            "com.atproto.server.createInviteCodes",
            &json!({"codeCount": 1, "useCount": 1}),
            None,
        )
        .await
        .assert_error(401, "AuthenticationRequired");
        for bad in [json!({"codeCount": 0, "useCount": 1}), json!({"codeCount": 1, "useCount": 0})] {
            admin_post(&pds, "com.atproto.server.createInviteCodes", &bad)
                .await
                .assert_error(400, "InvalidRequest");
        }
        let created = admin_post(
            &pds,
            "com.atproto.server.createInviteCodes",
            &json!({"codeCount": 2, "useCount": 1, "forAccounts": [alice_did]}),
        )
        .await
        .ok();
        let groups = created["codes"].as_array().expect("codes");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0]["account"], alice_did.as_str());
        let codes: Vec<String> = groups[0]["codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        assert_eq!(codes.len(), 2);
        assert_ne!(codes[0], codes[1]);
        let for_admin = admin_post(
            &pds,
            "com.atproto.server.createInviteCodes",
            &json!({"codeCount": 3, "useCount": 5}),
        )
        .await
        .ok();
        assert_eq!(for_admin["codes"][0]["account"], "admin");
        assert_eq!(for_admin["codes"][0]["codes"].as_array().map(Vec::len), Some(3));

        // getAccountInviteCodes lists the account's codes.
        let path = "/xrpc/com.atproto.server.getAccountInviteCodes";
        let got = pds.get(path, Some(&alice_access)).await.ok();
        let list = got["codes"].as_array().expect("codes");
        assert_eq!(list.len(), 2);
        for c in list {
            assert_eq!(c["available"], 1);
            assert_eq!(c["disabled"], false);
            assert_eq!(c["forAccount"], alice_did.as_str());
            assert_eq!(c["createdBy"], "admin");
            assert_eq!(c["uses"], json!([]));
            assert!(c["createdAt"].is_string());
        }
        // One is used by a new account.
        let bob = pds
            .xrpc_post(
                "com.atproto.server.createAccount",
                &json!({"handle": "bob.test", "email": "bob@example.com", "password": "pw-bob", "inviteCode": codes[0]}),
                None,
            )
            .await
            .ok();
        let bob_did = bob["did"].as_str().expect("did");
        let got = pds.get(path, Some(&alice_access)).await.ok();
        let used: Vec<&Value> = got["codes"]
            .as_array()
            .expect("codes")
            .iter()
            .filter(|c| c["code"] == codes[0].as_str())
            .collect();
        assert_eq!(used.len(), 1);
        assert_eq!(used[0]["uses"][0]["usedBy"], bob_did);
        assert!(used[0]["uses"][0]["usedAt"].is_string());
        let unused = pds
            .get(&format!("{path}?includeUsed=false"), Some(&alice_access))
            .await
            .ok();
        let unused: Vec<&str> = unused["codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c["code"].as_str().expect("code"))
            .collect();
        assert_eq!(unused, [codes[1].as_str()]);
        // Bob has none; a used code is refused.
        let bob_codes = pds
            .get(&format!("{path}?createAvailable=false"), bob["accessJwt"].as_str())
            .await
            .ok();
        assert_eq!(bob_codes["codes"], json!([]));
        pds.xrpc_post(
            "com.atproto.server.createAccount",
            &json!({"handle": "carl.test", "email": "carl@example.com", "password": "pw", "inviteCode": codes[0]}),
            None,
        )
        .await
        .assert_error(400, "InvalidInviteCode");
        pds.get(path, None).await.assert_error(401, "AuthMissing");
        pds.stop().await;
    }

    async fn earned_invite_codes(backend: Backend) {
        // One code per 300 ms of account age, at most five unused.
        let pds = TestPds::start(
            Options::new(backend)
                .with_plc()
                .set("PDS_INVITE_REQUIRED", "true")
                .set("PDS_INVITE_INTERVAL", "300"),
        )
        .await;
        let code0 = admin_post(&pds, "com.atproto.server.createInviteCode", &json!({"useCount": 1}))
            .await
            .ok()["code"]
            .as_str()
            .expect("code")
            .to_owned();
        let ivy = pds
            .xrpc_post(
                "com.atproto.server.createAccount",
                &json!({"handle": "ivy.test", "email": "ivy@example.com", "password": "pw-ivy", "inviteCode": code0}),
                None,
            )
            .await
            .ok();
        let did = ivy["did"].as_str().expect("did");
        let access = ivy["accessJwt"].as_str();
        let path = "/xrpc/com.atproto.server.getAccountInviteCodes";
        let codes = |v: &Value| v["codes"].as_array().expect("codes").clone();

        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        let first = codes(&pds.get(path, access).await.ok());
        assert!((3..=5).contains(&first.len()), "{first:?}");
        for c in &first {
            assert_eq!((c["createdBy"].as_str(), c["forAccount"].as_str()), (Some(did), Some(did)));
            assert_eq!(c["available"], 1);
        }
        let again = codes(&pds.get(&format!("{path}?createAvailable=false"), access).await.ok());
        assert_eq!(again.len(), first.len());

        // Later: capped at five unused.
        tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
        let capped = codes(&pds.get(path, access).await.ok());
        assert_eq!(capped.len(), 5, "{capped:?}");
        // Using one makes room for one more.
        pds.xrpc_post(
            "com.atproto.server.createAccount",
            &json!({"handle": "jay.test", "email": "jay@example.com", "password": "pw-jay", "inviteCode": capped[0]["code"]}),
            None,
        )
        .await
        .ok();
        assert_eq!(codes(&pds.get(path, access).await.ok()).len(), 6);
        assert_eq!(
            codes(&pds.get(&format!("{path}?includeUsed=false"), access).await.ok()).len(),
            5
        );
        pds.stop().await;
    }

    async fn deactivate_activate_and_status(backend: Backend) {
        let pds = server(backend).await;
        let (did, access, _) = account(&pds, "dee.test", "dee@example.com", "dee-password").await;

        let problem = pds::api::account_status::did_doc_problem(&pds.state, &did)
            .await
            .expect("DID document check");
        assert_eq!(problem, None);
        let status = pds.get(CHECK_STATUS, Some(&access)).await.ok();
        let root = pds.state.store.repo().get_root(&did).await.expect("root").expect("a root");
        assert_eq!(status["activated"], true);
        assert_eq!(status["validDid"], true);
        assert_eq!(status["repoCommit"], root.cid.to_string().as_str());
        assert_eq!(status["repoRev"], root.rev.as_str());
        assert!(status["repoBlocks"].as_i64().expect("blocks") >= 1);
        assert_eq!(status["indexedRecords"], 0);
        assert_eq!(status["privateStateValues"], 0);
        assert_eq!(status["expectedBlobs"], 0);
        assert_eq!(status["importedBlobs"], 0);
        pds.xrpc_post(CREATE_RECORD, &post_record(&did), Some(&access)).await.ok();
        let status = pds.get(CHECK_STATUS, Some(&access)).await.ok();
        assert_eq!(status["indexedRecords"], 1);
        let (blocks, _) = pds.state.store.repo().block_stats(&did).await.expect("stats");
        assert_eq!(status["repoBlocks"], blocks as i64);
        pds.get(CHECK_STATUS, None).await.assert_error(401, "AuthMissing");

        // Deactivate, with a deletion date.
        let events_before = events_of(&pds, &did).await.len();
        pds.xrpc_post(
            "com.atproto.server.deactivateAccount",
            &json!({"deleteAfter": "2099-01-01T00:00:00.000Z"}),
            Some(&access),
        )
        .await
        .done();
        let stored = pds.state.store.accounts().get(&did).await.expect("get").expect("account");
        assert_eq!(stored.status, pds_store::AccountStatus::Deactivated);
        assert_eq!(stored.delete_after, Some(4_070_908_800_000));
        let events = events_of(&pds, &did).await;
        let (t, body, _) = &events[events_before];
        assert_eq!(t, "account");
        assert_eq!((body["active"].clone(), body["status"].clone()), (json!(false), json!("deactivated")));
        let s = pds.get(GET_SESSION, Some(&access)).await.ok();
        assert_eq!((s["active"].clone(), s["status"].clone()), (json!(false), json!("deactivated")));
        // No repo writes while deactivated; status still readable.
        pds.xrpc_post(CREATE_RECORD, &post_record(&did), Some(&access))
            .await
            .assert_error(401, "AccountDeactivated");
        let status = pds.get(CHECK_STATUS, Some(&access)).await.ok();
        assert_eq!(status["activated"], false);
        assert_eq!(status["indexedRecords"], 1);

        // Activate: #account, #identity, #sync, in that order.
        pds.post("/xrpc/com.atproto.server.activateAccount", None, Some(&access))
            .await
            .done();
        let events = events_of(&pds, &did).await;
        let kinds: Vec<&str> = events[events_before + 1..].iter().map(|(t, _, _)| t.as_str()).collect();
        assert_eq!(kinds, ["account", "identity", "sync"]);
        let (_, acct, _) = &events[events_before + 1];
        assert_eq!(acct["active"], true);
        assert!(acct.get("status").is_none());
        assert_eq!(events[events_before + 2].1["handle"], "dee.test");
        let root = pds.state.store.repo().get_root(&did).await.expect("root").expect("a root");
        assert_eq!(events[events_before + 3].1["rev"], root.rev.as_str());
        let stored = pds.state.store.accounts().get(&did).await.expect("get").expect("account");
        assert_eq!(stored.status, pds_store::AccountStatus::Active);
        assert_eq!(stored.delete_after, None);
        pds.xrpc_post(CREATE_RECORD, &post_record(&did), Some(&access)).await.ok();
        pds.get(CHECK_STATUS, Some(&access)).await.ok();
        pds.post("/xrpc/com.atproto.server.activateAccount", None, None)
            .await
            .assert_error(401, "AuthMissing");

        // A DID document that does not name the account's key: not a valid
        // DID for this server, and activation is refused.
        let other = atproto_types::crypto::PrivateKey::generate(Algorithm::K256);
        let sealed = pds.state.key_cipher.seal(&did, &other).expect("seal");
        pds.state
            .store
            .accounts()
            .set_signing_key(&did, &sealed)
            .await
            .expect("replace key");
        let status = pds.get(CHECK_STATUS, Some(&access)).await.ok();
        assert_eq!(status["validDid"], false);
        pds.xrpc_post("com.atproto.server.deactivateAccount", &json!({}), Some(&access))
            .await
            .done();
        let message = pds
            .post("/xrpc/com.atproto.server.activateAccount", None, Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(message.contains("signing key"), "{message}");
        let stored = pds.state.store.accounts().get(&did).await.expect("get").expect("account");
        assert_eq!(stored.status, pds_store::AccountStatus::Deactivated);
        pds.stop().await;
    }

    async fn service_auth_tokens(backend: Backend) {
        let pds = server(backend).await;
        let (did, access, _) = account(&pds, "sam.test", "sam@example.com", "sam-password").await;
        let path = "/xrpc/com.atproto.server.getServiceAuth";
        let sealed = pds.state.store.accounts().signing_key(&did).await.expect("key").expect("sealed");
        let key = pds.state.key_cipher.open(&did, &sealed).expect("opens").public_key();

        let t = pds
            .get(&format!("{path}?aud=did:web:feed.example.com&lxm=app.bsky.feed.getFeedSkeleton"), Some(&access))
            .await
            .ok();
        let token = t["token"].as_str().expect("token");
        let claims = pds::service_auth::verify(
            token,
            &key,
            &pds::service_auth::Expect {
                aud: Some(&["did:web:feed.example.com"]),
                lxm: Some("app.bsky.feed.getFeedSkeleton"),
            },
        )
        .expect("a valid token signed with the account key");
        assert_eq!(claims.iss, did);
        assert!(claims.exp > now_secs() && claims.exp <= now_secs() + 61, "{}", claims.exp);

        // Explicit expiry within an hour, bound to a method.
        let exp = now_secs() + 1800;
        let t = pds
            .get(&format!("{path}?aud=did:web:feed.example.com&lxm=app.bsky.feed.getFeedSkeleton&exp={exp}"), Some(&access))
            .await
            .ok();
        assert_eq!(jwt_claims(t["token"].as_str().expect("token"))["exp"], exp);
        // Method-less, within a minute.
        let t = pds
            .get(&format!("{path}?aud=did:web:feed.example.com&exp={}", now_secs() + 30), Some(&access))
            .await
            .ok();
        assert!(jwt_claims(t["token"].as_str().expect("token")).get("lxm").is_none());

        for (query, name) in [
            (format!("aud=did:web:x.com&lxm=app.bsky.feed.getTimeline&exp={}", now_secs() - 10), "BadExpiration"),
            (format!("aud=did:web:x.com&lxm=app.bsky.feed.getTimeline&exp={}", now_secs() + 7200), "BadExpiration"),
            (format!("aud=did:web:x.com&exp={}", now_secs() + 600), "BadExpiration"),
            ("aud=did:web:x.com&lxm=com.atproto.server.updateEmail".to_owned(), "InvalidRequest"),
            ("aud=did:web:x.com&lxm=com.atproto.identity.signPlcOperation".to_owned(), "InvalidRequest"),
            ("aud=not-a-did".to_owned(), "InvalidRequest"),
            ("lxm=app.bsky.feed.getTimeline".to_owned(), "InvalidRequest"),
        ] {
            let r = pds.get(&format!("{path}?{query}"), Some(&access)).await;
            r.assert_error(400, name);
        }
        pds.get(&format!("{path}?aud=did:web:x.com"), None).await.assert_error(401, "AuthMissing");

        // App passwords: createAccount needs a privileged one.
        let mk = |name: &str, privileged: bool| json!({"name": name, "privileged": privileged});
        let plain = pds.xrpc_post(CREATE_APP_PASSWORD, &mk("plain", false), Some(&access)).await.ok();
        let privileged = pds.xrpc_post(CREATE_APP_PASSWORD, &mk("priv", true), Some(&access)).await.ok();
        let plain_access = pds.login("sam.test", plain["password"].as_str().expect("pw")).await["accessJwt"]
            .as_str()
            .expect("access")
            .to_owned();
        let priv_access = pds.login("sam.test", privileged["password"].as_str().expect("pw")).await["accessJwt"]
            .as_str()
            .expect("access")
            .to_owned();
        let create = format!("{path}?aud=did:web:other-pds.example.com&lxm=com.atproto.server.createAccount");
        pds.get(&create, Some(&plain_access)).await.assert_error(400, "InvalidRequest");
        pds.get(&create, Some(&priv_access)).await.ok();
        pds.get(&create, Some(&access)).await.ok();
        pds.get(&format!("{path}?aud=did:web:x.com&lxm=app.bsky.feed.getTimeline"), Some(&plain_access))
            .await
            .ok();

        // A taken-down account may only get a token to move elsewhere.
        pds.state
            .store
            .accounts()
            .set_status(&did, pds_store::AccountStatus::Takendown, Some("mod-1"), None, Vec::new())
            .await
            .expect("takedown");
        let s = pds
            .xrpc_post(LOGIN, &json!({"identifier": "sam.test", "password": "sam-password", "allowTakendown": true}), None)
            .await
            .ok();
        let takendown = s["accessJwt"].as_str().expect("access").to_owned();
        assert_eq!(jwt_claims(&takendown)["scope"], "com.atproto.takendown");
        pds.get(&create, Some(&takendown)).await.ok();
        pds.get(&format!("{path}?aud=did:web:x.com&lxm=app.bsky.feed.getTimeline"), Some(&takendown))
            .await
            .assert_error(400, "InvalidRequest");
        pds.stop().await;
    }

    async fn reserve_signing_key(backend: Backend) {
        let pds = server(backend).await;
        let nsid = "com.atproto.server.reserveSigningKey";
        let a = pds.xrpc_post(nsid, &json!({}), None).await.ok();
        let a = a["signingKey"].as_str().expect("signingKey").to_owned();
        let k = PublicKey::from_did_key(&a).expect("a did:key");
        assert_eq!(k.algorithm(), Algorithm::K256);
        let b = pds.xrpc_post(nsid, &json!({}), None).await.ok();
        assert_ne!(b["signingKey"].as_str(), Some(a.as_str()));

        // For a DID: the same key on a repeat call.
        let did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
        let c = pds.xrpc_post(nsid, &json!({"did": did}), None).await.ok();
        let c = c["signingKey"].as_str().expect("signingKey").to_owned();
        let again = pds.xrpc_post(nsid, &json!({"did": did}), None).await.ok();
        assert_eq!(again["signingKey"], c.as_str());
        let stored = pds.state.store.accounts().get_reserved_key(&c).await.expect("get").expect("stored");
        assert_eq!(stored.did.as_deref(), Some(did));
        // Taken once (by account creation), for that DID only.
        assert!(pds::api::signing::take_reserved_key(&pds.state, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", &c)
            .await
            .expect("take")
            .is_none());
        let key = pds::api::signing::take_reserved_key(&pds.state, did, &c)
            .await
            .expect("take")
            .expect("the reserved key");
        assert_eq!(key.did_key(), c);
        assert!(pds::api::signing::take_reserved_key(&pds.state, did, &c).await.expect("take").is_none());
        let d = pds.xrpc_post(nsid, &json!({"did": did}), None).await.ok();
        assert_ne!(d["signingKey"], c.as_str());

        pds.xrpc_post(nsid, &json!({"did": "not a did"}), None)
            .await
            .assert_error(400, "InvalidRequest");
        pds.stop().await;
    }

    async fn email_confirmation(backend: Backend) {
        let pds = mail_server(backend).await;
        let sink = pds.smtp.as_ref().expect("sink");
        let (did, access, _) = account(&pds, "eve.test", "eve@example.com", "eve-password").await;
        let request = "com.atproto.server.requestEmailConfirmation";
        let confirm = "com.atproto.server.confirmEmail";

        pds.post(&format!("/xrpc/{request}"), None, Some(&access)).await.done();
        let mails = sink.wait_for(1).await;
        assert_eq!(mails[0]["rcpt_tos"], json!(["eve@example.com"]));
        assert_eq!(mails[0]["mail_from"], "noreply@pds.test");
        let token = mail_token(&mails[0]);

        let body = |email: &str, token: &str| json!({"email": email, "token": token});
        pds.xrpc_post(confirm, &body("eve@example.com", "AAAAA-AAAAA"), Some(&access))
            .await
            .assert_error(400, "InvalidToken");
        pds.xrpc_post(confirm, &body("other@example.com", &token), Some(&access))
            .await
            .assert_error(400, "InvalidEmail");
        pds.xrpc_post(confirm, &body("eve@example.com", &token), None)
            .await
            .assert_error(401, "AuthMissing");
        let s = pds.get(GET_SESSION, Some(&access)).await.ok();
        assert_eq!(s["emailConfirmed"], false);
        // Case and surrounding space in the token do not matter.
        pds.xrpc_post(confirm, &body("Eve@Example.com", &format!(" {} ", token.to_lowercase())), Some(&access))
            .await
            .done();
        let s = pds.get(GET_SESSION, Some(&access)).await.ok();
        assert_eq!(s["emailConfirmed"], true);
        // Single use.
        pds.xrpc_post(confirm, &body("eve@example.com", &token), Some(&access))
            .await
            .assert_error(400, "InvalidToken");
        // A newer request replaces the older token.
        pds.post(&format!("/xrpc/{request}"), None, Some(&access)).await.done();
        pds.post(&format!("/xrpc/{request}"), None, Some(&access)).await.done();
        let mails = sink.wait_for(3).await;
        let (older, newer) = (mail_token(&mails[1]), mail_token(&mails[2]));
        pds.xrpc_post(confirm, &body("eve@example.com", &older), Some(&access))
            .await
            .assert_error(400, "InvalidToken");
        pds.xrpc_post(confirm, &body("eve@example.com", &newer), Some(&access))
            .await
            .done();
        // Older than 15 minutes: expired (and stays so).
        pds.post(&format!("/xrpc/{request}"), None, Some(&access)).await.done();
        let mails = sink.wait_for(4).await;
        let token = mail_token(&mails[3]);
        backdate(&pds, TokenPurpose::ConfirmEmail, &did, &token).await;
        for _ in 0..2 {
            pds.xrpc_post(confirm, &body("eve@example.com", &token), Some(&access))
                .await
                .assert_error(400, "ExpiredToken");
        }
        pds.stop().await;
    }

    async fn email_update(backend: Backend) {
        let pds = mail_server(backend).await;
        let sink = pds.smtp.as_ref().expect("sink");
        let (_, access, _) = account(&pds, "uma.test", "uma@example.com", "uma-password").await;
        account(&pds, "taken.test", "taken@example.com", "pw-taken").await;
        let request = "com.atproto.server.requestEmailUpdate";
        let update = "com.atproto.server.updateEmail";

        // Unconfirmed address: no token needed, none sent.
        let r = pds.post(&format!("/xrpc/{request}"), None, Some(&access)).await.ok();
        assert_eq!(r["tokenRequired"], false);
        pds.xrpc_post(update, &json!({"email": "not-an-email"}), Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        pds.xrpc_post(update, &json!({"email": "TAKEN@example.com"}), Some(&access))
            .await
            .assert_error(400, "InvalidRequest");
        pds.xrpc_post(update, &json!({"email": "Uma2@Example.com"}), Some(&access))
            .await
            .done();
        let s = pds.get(GET_SESSION, Some(&access)).await.ok();
        assert_eq!((s["email"].clone(), s["emailConfirmed"].clone()), (json!("uma2@example.com"), json!(false)));
        assert_eq!(sink.messages().len(), 0);

        // Confirm it; then a token is required, sent to the current address.
        pds.post("/xrpc/com.atproto.server.requestEmailConfirmation", None, Some(&access))
            .await
            .done();
        let mails = sink.wait_for(1).await;
        assert_eq!(mails[0]["rcpt_tos"], json!(["uma2@example.com"]));
        pds.xrpc_post(
            "com.atproto.server.confirmEmail",
            &json!({"email": "uma2@example.com", "token": mail_token(&mails[0])}),
            Some(&access),
        )
        .await
        .done();
        let r = pds.post(&format!("/xrpc/{request}"), None, Some(&access)).await.ok();
        assert_eq!(r["tokenRequired"], true);
        let mails = sink.wait_for(2).await;
        assert_eq!(mails[1]["rcpt_tos"], json!(["uma2@example.com"]));
        let token = mail_token(&mails[1]);
        pds.xrpc_post(update, &json!({"email": "uma3@example.com"}), Some(&access))
            .await
            .assert_error(400, "TokenRequired");
        pds.xrpc_post(update, &json!({"email": "uma3@example.com", "token": "ZZZZZ-ZZZZZ"}), Some(&access))
            .await
            .assert_error(400, "InvalidToken");
        pds.xrpc_post(update, &json!({"email": "uma3@example.com", "token": token}), Some(&access))
            .await
            .done();
        let s = pds.get(GET_SESSION, Some(&access)).await.ok();
        assert_eq!((s["email"].clone(), s["emailConfirmed"].clone()), (json!("uma3@example.com"), json!(false)));
        // The new address logs in.
        pds.login("uma3@example.com", "uma-password").await;
        pds.stop().await;
    }

    async fn password_reset(backend: Backend) {
        let pds = mail_server(backend).await;
        let sink = pds.smtp.as_ref().expect("sink");
        let (did, _, refresh) = account(&pds, "pat.test", "pat@example.com", "old-password").await;
        let request = "com.atproto.server.requestPasswordReset";
        let reset = "com.atproto.server.resetPassword";

        // Unknown address: the same answer, no mail.
        pds.xrpc_post(request, &json!({"email": "nobody@example.com"}), None).await.done();
        pds.xrpc_post(request, &json!({"email": "PAT@example.com"}), None).await.done();
        let mails = sink.wait_for(1).await;
        assert_eq!(mails.len(), 1);
        assert_eq!(mails[0]["rcpt_tos"], json!(["pat@example.com"]));
        assert!(mails[0]["text"].as_str().expect("text").contains("pat.test"));
        let token = mail_token(&mails[0]);

        pds.xrpc_post(reset, &json!({"token": "AAAAA-AAAAA", "password": "new-password"}), None)
            .await
            .assert_error(400, "InvalidToken");
        let long = "x".repeat(300);
        pds.xrpc_post(reset, &json!({"token": token, "password": long}), None)
            .await
            .assert_error(400, "InvalidRequest");
        pds.xrpc_post(reset, &json!({"token": token, "password": "new-password"}), None)
            .await
            .done();
        // Sessions were revoked; the old password is gone.
        pds.post(&format!("/xrpc/{REFRESH}"), None, Some(&refresh))
            .await
            .assert_error(400, "ExpiredToken");
        pds.xrpc_post(LOGIN, &json!({"identifier": "pat.test", "password": "old-password"}), None)
            .await
            .assert_error(401, "AuthenticationRequired");
        pds.login("pat.test", "new-password").await;
        // Single use.
        pds.xrpc_post(reset, &json!({"token": token, "password": "third-password"}), None)
            .await
            .assert_error(400, "InvalidToken");
        // Expired.
        pds.xrpc_post(request, &json!({"email": "pat@example.com"}), None).await.done();
        let mails = sink.wait_for(2).await;
        let token = mail_token(&mails[1]);
        backdate(&pds, TokenPurpose::ResetPassword, &did, &token).await;
        pds.xrpc_post(reset, &json!({"token": token, "password": "third-password"}), None)
            .await
            .assert_error(400, "ExpiredToken");
        pds.login("pat.test", "new-password").await;
        pds.stop().await;
    }

    async fn account_deletion(backend: Backend) {
        let pds = mail_server(backend).await;
        let sink = pds.smtp.as_ref().expect("sink");
        let (did, access, _) = account(&pds, "del.test", "del@example.com", "del-password").await;
        pds.xrpc_post(CREATE_RECORD, &post_record(&did), Some(&access)).await.ok();
        pds.post("/xrpc/com.atproto.server.requestAccountDelete", None, Some(&access))
            .await
            .done();
        let mails = sink.wait_for(1).await;
        assert_eq!(mails[0]["rcpt_tos"], json!(["del@example.com"]));
        let token = mail_token(&mails[0]);
        let delete = "com.atproto.server.deleteAccount";
        let body = |password: &str, token: &str| json!({"did": did, "password": password, "token": token});

        pds.xrpc_post(delete, &body("wrong-password", &token), None)
            .await
            .assert_error(401, "AuthenticationRequired");
        pds.xrpc_post(delete, &body("del-password", "AAAAA-AAAAA"), None)
            .await
            .assert_error(400, "InvalidToken");
        pds.xrpc_post(
            delete,
            &json!({"did": "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz", "password": "x", "token": token}),
            None,
        )
        .await
        .assert_error(400, "InvalidRequest");
        assert!(pds.state.store.repo().get_root(&did).await.expect("root").is_some());

        pds.xrpc_post(delete, &body("del-password", &token), None).await.done();

        // Gone: repository, records, sessions, login.
        assert!(pds.state.store.repo().get_root(&did).await.expect("root").is_none());
        assert_eq!(pds.state.store.repo().record_count(&did).await.expect("count"), 0);
        pds.get(GET_SESSION, Some(&access)).await.assert_error(403, "AccountNotFound");
        pds.xrpc_post(LOGIN, &json!({"identifier": "del.test", "password": "del-password"}), None)
            .await
            .assert_error(401, "AuthenticationRequired");
        // #account deleted is the last event; the earlier ones are invalidated.
        let events = events_of(&pds, &did).await;
        let (t, last, invalidated) = events.last().expect("events");
        assert_eq!(t, "account");
        assert_eq!((last["active"].clone(), last["status"].clone()), (json!(false), json!("deleted")));
        assert!(!invalidated);
        assert!(events[..events.len() - 1].iter().all(|(_, _, inv)| *inv));
        // Again: the account is not found.
        pds.xrpc_post(delete, &body("del-password", &token), None)
            .await
            .assert_error(400, "InvalidRequest");
        // Handle and email are free again.
        account(&pds, "del.test", "del@example.com", "new-password").await;
        pds.stop().await;
    }

    async fn check_signup_queue(backend: Backend) {
        let pds = server(backend).await;
        let (_, access, _) = account(&pds, "queue.test", "queue@example.com", "pw-queue").await;
        let path = "/xrpc/com.atproto.temp.checkSignupQueue";
        let r = pds.get(path, Some(&access)).await.ok();
        assert_eq!(r, json!({"activated": true}));
        pds.get(path, None).await.assert_error(401, "AuthMissing");
        pds.stop().await;
    }

    async fn email_without_transport(backend: Backend) {
        // No SMTP configured: requests succeed, nothing is queued.
        let pds = server(backend).await;
        let (_, access, _) = account(&pds, "nomail.test", "nomail@example.com", "pw-nomail").await;
        pds.post("/xrpc/com.atproto.server.requestEmailConfirmation", None, Some(&access))
            .await
            .done();
        pds.xrpc_post("com.atproto.server.requestPasswordReset", &json!({"email": "nomail@example.com"}), None)
            .await
            .done();
        let queued = pds
            .state
            .notifier
            .history("nomail@example.com", 10)
            .await
            .expect("history");
        assert!(queued.is_empty());
        pds.stop().await;
    }
}
