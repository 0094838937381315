//! `com.atproto.admin` over real HTTP, on SQLite and PostgreSQL, with the
//! reference PLC directory on loopback and, for `sendEmail`, a real SMTP
//! server: admin credentials, account/record/blob takedowns and their
//! reversal, admin deactivation, invite code administration, account
//! info and search, admin updates of email, handle, password and signing
//! key, admin account deletion, moderation email.

use pds_tests::{both_backends, Backend, Options, Reply, TestPds, ADMIN_PASSWORD};
use serde_json::{json, Value};

const LOGIN: &str = "com.atproto.server.createSession";
const REFRESH: &str = "/xrpc/com.atproto.server.refreshSession";
const CREATE_RECORD: &str = "com.atproto.repo.createRecord";
const UPDATE_STATUS: &str = "com.atproto.admin.updateSubjectStatus";
const REPO_REF: &str = "com.atproto.admin.defs#repoRef";
const BLOB_REF: &str = "com.atproto.admin.defs#repoBlobRef";
const STRONG_REF: &str = "com.atproto.repo.strongRef";

async fn server(backend: Backend) -> TestPds {
    TestPds::start(Options::new(backend).with_plc()).await
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {b64}")
}

fn admin() -> String {
    basic("admin", ADMIN_PASSWORD)
}

async fn admin_post(pds: &TestPds, nsid: &str, body: &Value) -> Reply {
    let req = pds
        .client
        .post(format!("{}/xrpc/{nsid}", pds.url))
        .header("authorization", admin())
        .json(body);
    pds.request(req).await
}

async fn admin_get(pds: &TestPds, path_and_query: &str) -> Reply {
    pds.get_with_authorization(&format!("/xrpc/{path_and_query}"), &admin())
        .await
}

/// Creates an account; returns (did, access token, refresh token).
async fn account(pds: &TestPds, handle: &str, email: &str) -> (String, String, String) {
    let c = pds.create_account(handle, email, "password-1").await;
    (
        c["did"].as_str().expect("did").to_owned(),
        c["accessJwt"].as_str().expect("access").to_owned(),
        c["refreshJwt"].as_str().expect("refresh").to_owned(),
    )
}

async fn login(pds: &TestPds, identifier: &str, password: &str) -> Reply {
    pds.xrpc_post(
        LOGIN,
        &json!({"identifier": identifier, "password": password}),
        None,
    )
    .await
}

async fn refresh(pds: &TestPds, refresh_jwt: &str) -> Reply {
    pds.post(REFRESH, None, Some(refresh_jwt)).await
}

async fn post(pds: &TestPds, did: &str, jwt: &str, text: &str) -> Reply {
    pds.xrpc_post(
        CREATE_RECORD,
        &json!({
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-01T00:00:00.000Z"},
        }),
        Some(jwt),
    )
    .await
}

/// The account's sequenced events (type and decoded body), oldest first.
async fn events_of(pds: &TestPds, did: &str) -> Vec<(String, Value)> {
    let events = pds
        .state
        .store
        .sequencer()
        .events_after(0, 1000)
        .await
        .expect("events");
    events
        .into_iter()
        .filter(|e| e.did == did && !e.invalidated)
        .map(|e| {
            let (_, used) = atproto_types::data::decode_prefix(&e.event).expect("frame header");
            let body = atproto_types::data::from_dag_cbor(&e.event[used..]).expect("frame body");
            (e.event_type, body.to_json())
        })
        .collect()
}

/// The account's last event.
async fn last_event(pds: &TestPds, did: &str) -> (String, Value) {
    events_of(pds, did).await.pop().expect("an event")
}

both_backends! {
    async fn admin_credentials_are_required(backend: Backend) {
        let pds = server(backend).await;
        let (did, access, _) = account(&pds, "ann.test", "ann@example.com").await;
        let info = format!("/xrpc/com.atproto.admin.getAccountInfo?did={did}");
        // No credentials.
        pds.get(&info, None).await.assert_error(401, "AuthenticationRequired");
        // Wrong password, wrong user, a user's access token.
        pds.get_with_authorization(&info, &basic("admin", "wrong")).await
            .assert_error(401, "AuthenticationRequired");
        pds.get_with_authorization(&info, &basic("ann", ADMIN_PASSWORD)).await
            .assert_error(401, "AuthenticationRequired");
        pds.get(&info, Some(&access)).await.assert_error(401, "AuthenticationRequired");
        // A procedure too, and nothing happened.
        let body = json!({"subject": {"$type": REPO_REF, "did": did}, "takedown": {"applied": true}});
        let req = pds.client.post(format!("{}/xrpc/{UPDATE_STATUS}", pds.url))
            .header("authorization", basic("admin", "nope")).json(&body);
        pds.request(req).await.assert_error(401, "AuthenticationRequired");
        assert_eq!(login(&pds, "ann.test", "password-1").await.status, 200);
        // The right credentials.
        admin_get(&pds, &format!("com.atproto.admin.getAccountInfo?did={did}")).await.ok();
    }

    async fn account_takedown_and_reversal(backend: Backend) {
        let pds = server(backend).await;
        let (did, access, refresh_jwt) = account(&pds, "tom.test", "tom@example.com").await;
        post(&pds, &did, &access, "before").await.ok();
        let subject = json!({"$type": REPO_REF, "did": did});
        let out = admin_post(&pds, UPDATE_STATUS, &json!({
            "subject": subject,
            "takedown": {"applied": true, "ref": "TAKEDOWN-1"},
        })).await.ok();
        assert_eq!(out["subject"], subject);
        assert_eq!(out["takedown"], json!({"applied": true, "ref": "TAKEDOWN-1"}));
        let status = admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?did={did}")).await.ok();
        assert_eq!(status["subject"], subject);
        assert_eq!(status["takedown"], json!({"applied": true, "ref": "TAKEDOWN-1"}));
        assert_eq!(status["deactivated"], json!({"applied": false}));
        // The #account event.
        let (kind, body) = last_event(&pds, &did).await;
        assert_eq!(kind, "account");
        assert_eq!((body["active"].clone(), body["status"].clone()), (json!(false), json!("takendown")));
        // The repo is not served, login and writes are refused, sessions ended.
        pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await
            .assert_error(400, "RepoTakendown");
        pds.get(&format!("/xrpc/com.atproto.sync.getRepoStatus?did={did}"), None).await.ok();
        login(&pds, "tom.test", "password-1").await.assert_error(401, "AccountTakedown");
        post(&pds, &did, &access, "during").await.assert_error(401, "AccountTakedown");
        assert_ne!(refresh(&pds, &refresh_jwt).await.status, 200);
        // Reversal restores it.
        let out = admin_post(&pds, UPDATE_STATUS, &json!({
            "subject": subject, "takedown": {"applied": false},
        })).await.ok();
        assert_eq!(out["takedown"], json!({"applied": false}));
        let status = admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?did={did}")).await.ok();
        assert_eq!(status["takedown"], json!({"applied": false}));
        let (kind, body) = last_event(&pds, &did).await;
        assert_eq!(kind, "account");
        assert_eq!(body["active"], json!(true));
        assert!(body.get("status").is_none_or(Value::is_null), "{body}");
        assert_eq!(pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await.status, 200);
        let s = login(&pds, "tom.test", "password-1").await.ok();
        post(&pds, &did, s["accessJwt"].as_str().expect("jwt"), "after").await.ok();
        // A takedown without a ref gets one.
        admin_post(&pds, UPDATE_STATUS, &json!({"subject": subject, "takedown": {"applied": true}})).await.ok();
        let status = admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?did={did}")).await.ok();
        assert!(status["takedown"]["ref"].as_str().is_some_and(|r| !r.is_empty()), "{status}");
        // Unknown accounts and subjects.
        admin_post(&pds, UPDATE_STATUS, &json!({
            "subject": {"$type": REPO_REF, "did": "did:plc:nobodyhere"}, "takedown": {"applied": true},
        })).await.assert_error(400, "InvalidRequest");
        admin_get(&pds, "com.atproto.admin.getSubjectStatus?did=did:plc:nobodyhere").await
            .assert_error(400, "NotFound");
        admin_get(&pds, "com.atproto.admin.getSubjectStatus").await.assert_error(400, "InvalidRequest");
        admin_post(&pds, UPDATE_STATUS, &json!({
            "subject": {"$type": "com.example.thing", "did": did}, "takedown": {"applied": true},
        })).await.assert_error(400, "InvalidRequest");
    }

    async fn admin_deactivation(backend: Backend) {
        let pds = server(backend).await;
        let (did, _, _) = account(&pds, "dee.test", "dee@example.com").await;
        let subject = json!({"$type": REPO_REF, "did": did});
        admin_post(&pds, UPDATE_STATUS, &json!({"subject": subject, "deactivated": {"applied": true}})).await.ok();
        let status = admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?did={did}")).await.ok();
        assert_eq!(status["deactivated"], json!({"applied": true}));
        assert_eq!(status["takedown"], json!({"applied": false}));
        let (_, body) = last_event(&pds, &did).await;
        assert_eq!((body["active"].clone(), body["status"].clone()), (json!(false), json!("deactivated")));
        pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await
            .assert_error(400, "RepoDeactivated");
        let info = admin_get(&pds, &format!("com.atproto.admin.getAccountInfo?did={did}")).await.ok();
        assert!(info["deactivatedAt"].is_string(), "{info}");
        // A takedown on top of the deactivation, then its reversal: the
        // account is deactivated again, not active.
        admin_post(&pds, UPDATE_STATUS, &json!({"subject": subject, "takedown": {"applied": true, "ref": "T"}})).await.ok();
        let status = admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?did={did}")).await.ok();
        assert_eq!(status["deactivated"], json!({"applied": true}));
        assert_eq!(status["takedown"], json!({"applied": true, "ref": "T"}));
        pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await
            .assert_error(400, "RepoTakendown");
        admin_post(&pds, UPDATE_STATUS, &json!({"subject": subject, "takedown": {"applied": false}})).await.ok();
        let (_, body) = last_event(&pds, &did).await;
        assert_eq!((body["active"].clone(), body["status"].clone()), (json!(false), json!("deactivated")));
        pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await
            .assert_error(400, "RepoDeactivated");
        admin_post(&pds, UPDATE_STATUS, &json!({"subject": subject, "deactivated": {"applied": false}})).await.ok();
        let (_, body) = last_event(&pds, &did).await;
        assert_eq!(body["active"], json!(true));
        assert_eq!(pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await.status, 200);
    }

    async fn record_takedown(backend: Backend) {
        let pds = server(backend).await;
        let (did, access, _) = account(&pds, "rex.test", "rex@example.com").await;
        let created = post(&pds, &did, &access, "hidden soon").await.ok();
        let uri = created["uri"].as_str().expect("uri").to_owned();
        let cid = created["cid"].as_str().expect("cid").to_owned();
        let rkey = uri.rsplit('/').next().expect("rkey").to_owned();
        let get = format!("/xrpc/com.atproto.repo.getRecord?repo={did}&collection=app.bsky.feed.post&rkey={rkey}");
        pds.get(&get, None).await.ok();
        let subject = json!({"$type": STRONG_REF, "uri": uri, "cid": cid});
        let out = admin_post(&pds, UPDATE_STATUS, &json!({
            "subject": subject, "takedown": {"applied": true, "ref": "R-1"},
        })).await.ok();
        assert_eq!(out["subject"]["uri"], json!(uri));
        pds.get(&get, None).await.assert_error(400, "RecordNotFound");
        let status = admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?uri={uri}")).await.ok();
        assert_eq!(status["subject"], subject);
        assert_eq!(status["takedown"], json!({"applied": true, "ref": "R-1"}));
        // The account itself is untouched.
        assert_eq!(pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await.status, 200);
        admin_post(&pds, UPDATE_STATUS, &json!({"subject": subject, "takedown": {"applied": false}})).await.ok();
        pds.get(&get, None).await.ok();
        let status = admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?uri={uri}")).await.ok();
        assert_eq!(status["takedown"], json!({"applied": false}));
        let missing = format!("at://{did}/app.bsky.feed.post/3jzfcijpj2z2a");
        admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?uri={missing}")).await
            .assert_error(400, "NotFound");
    }

    async fn blob_takedown(backend: Backend) {
        let pds = server(backend).await;
        let (did, access, _) = account(&pds, "bea.test", "bea@example.com").await;
        let bytes = b"\x89PNG\r\n\x1a\nnot really an image".to_vec();
        let req = pds.client.post(format!("{}/xrpc/com.atproto.repo.uploadBlob", pds.url))
            .bearer_auth(&access).header("content-type", "image/png").body(bytes);
        let blob = pds.request(req).await.ok()["blob"].clone();
        let cid = blob["ref"]["$link"].as_str().expect("cid").to_owned();
        pds.xrpc_post(CREATE_RECORD, &json!({
            "repo": did,
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post", "text": "pic", "createdAt": "2024-01-01T00:00:00.000Z",
                "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": blob}]},
            },
        }), Some(&access)).await.ok();
        let get = format!("/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}");
        assert_eq!(pds.get(&get, None).await.status, 200);
        let subject = json!({"$type": BLOB_REF, "did": did, "cid": cid});
        admin_post(&pds, UPDATE_STATUS, &json!({"subject": subject, "takedown": {"applied": true, "ref": "B-1"}})).await.ok();
        pds.get(&get, None).await.assert_error(400, "BlobNotFound");
        let status = admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?did={did}&blob={cid}")).await.ok();
        assert_eq!(status["subject"], subject);
        assert_eq!(status["takedown"], json!({"applied": true, "ref": "B-1"}));
        admin_get(&pds, &format!("com.atproto.admin.getSubjectStatus?blob={cid}")).await
            .assert_error(400, "InvalidRequest");
        admin_post(&pds, UPDATE_STATUS, &json!({"subject": subject, "takedown": {"applied": false}})).await.ok();
        assert_eq!(pds.get(&get, None).await.status, 200);
    }

    async fn invite_code_administration(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc().set("PDS_INVITE_REQUIRED", "true")).await;
        let first = admin_post(&pds, "com.atproto.server.createInviteCode", &json!({"useCount": 1}))
            .await.ok()["code"].as_str().expect("code").to_owned();
        let did = pds.xrpc_post("com.atproto.server.createAccount", &json!({
            "handle": "ivy.test", "email": "ivy@example.com", "password": "password-1",
            "inviteCode": first,
        }), None).await.ok()["did"].as_str().expect("did").to_owned();
        let made = admin_post(&pds, "com.atproto.server.createInviteCodes", &json!({
            "codeCount": 3, "useCount": 2, "forAccounts": [did],
        })).await.ok();
        let mine: Vec<String> = made["codes"][0]["codes"].as_array().expect("codes")
            .iter().map(|c| c.as_str().expect("code").to_owned()).collect();
        let admin_code = admin_post(&pds, "com.atproto.server.createInviteCode", &json!({"useCount": 5}))
            .await.ok()["code"].as_str().expect("code").to_owned();
        // Two uses of one code.
        for name in ["newbie", "newer"] {
            pds.xrpc_post("com.atproto.server.createAccount", &json!({
                "handle": format!("{name}.test"), "email": format!("{name}@example.com"),
                "password": "password-1", "inviteCode": mine[1],
            }), None).await.ok();
        }
        // Paging by two, newest first: every code once.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("com.atproto.admin.getInviteCodes?limit=2&cursor={c}"),
                None => "com.atproto.admin.getInviteCodes?limit=2".to_owned(),
            };
            let page = admin_get(&pds, &q).await.ok();
            let codes = page["codes"].as_array().expect("codes").clone();
            assert!(codes.len() <= 2);
            if codes.is_empty() {
                break;
            }
            seen.extend(codes.iter().map(|c| c["code"].as_str().expect("code").to_owned()));
            cursor = page["cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert_eq!(seen[0], admin_code, "newest first");
        assert_eq!(seen[4], first, "oldest last");
        let mut all = mine.clone();
        all.push(admin_code.clone());
        all.push(first.clone());
        all.sort();
        seen.sort();
        assert_eq!(seen, all);
        // By usage: the used code first, with its use.
        let usage = admin_get(&pds, "com.atproto.admin.getInviteCodes?sort=usage").await.ok();
        assert_eq!(usage["codes"][0]["code"], json!(mine[1]));
        assert_eq!(usage["codes"][0]["uses"].as_array().map(Vec::len), Some(2));
        assert_eq!(usage["codes"][1]["code"], json!(first));
        assert_eq!(usage["codes"][0]["forAccount"], json!(did));
        admin_get(&pds, "com.atproto.admin.getInviteCodes?sort=oldest").await.assert_error(400, "InvalidRequest");
        admin_get(&pds, "com.atproto.admin.getInviteCodes?cursor=garbage").await.assert_error(400, "InvalidRequest");
        // Disabling codes, by code and by account.
        admin_post(&pds, "com.atproto.admin.disableInviteCodes", &json!({"codes": [admin_code, first]})).await.done();
        admin_post(&pds, "com.atproto.admin.disableInviteCodes", &json!({"accounts": [did]})).await.done();
        let after = admin_get(&pds, "com.atproto.admin.getInviteCodes?limit=10").await.ok();
        assert!(after["codes"].as_array().expect("codes").iter().all(|c| c["disabled"] == json!(true)), "{after}");
        admin_post(&pds, "com.atproto.admin.disableInviteCodes", &json!({"accounts": ["admin"]})).await
            .assert_error(400, "InvalidRequest");
        // Account invites switch.
        admin_post(&pds, "com.atproto.admin.disableAccountInvites", &json!({"account": did, "note": "spam"})).await.done();
        let info = admin_get(&pds, &format!("com.atproto.admin.getAccountInfo?did={did}")).await.ok();
        assert_eq!(info["invitesDisabled"], json!(true));
        admin_post(&pds, "com.atproto.admin.enableAccountInvites", &json!({"account": did})).await.done();
        let info = admin_get(&pds, &format!("com.atproto.admin.getAccountInfo?did={did}")).await.ok();
        assert_eq!(info["invitesDisabled"], json!(false));
        assert_eq!(info["invites"].as_array().map(Vec::len), Some(3));
        admin_post(&pds, "com.atproto.admin.disableAccountInvites", &json!({"account": "did:plc:nobodyhere"})).await
            .assert_error(400, "InvalidRequest");
        // The invitee's info names the code it used.
        let newbie = pds.login("newbie.test", "password-1").await["did"].as_str().expect("did").to_owned();
        let info = admin_get(&pds, &format!("com.atproto.admin.getAccountInfo?did={newbie}")).await.ok();
        assert_eq!(info["invitedBy"]["code"], json!(mine[1]));
    }

    async fn account_info_and_search(backend: Backend) {
        let pds = server(backend).await;
        let (ann, _, _) = account(&pds, "ann.test", "ann@mail.example").await;
        let (andy, _, _) = account(&pds, "andy.test", "zed@mail.example").await;
        let (bob, _, _) = account(&pds, "bob.test", "annex@mail.example").await;
        let info = admin_get(&pds, &format!("com.atproto.admin.getAccountInfo?did={ann}")).await.ok();
        assert_eq!(info["did"], json!(ann));
        assert_eq!(info["handle"], json!("ann.test"));
        assert_eq!(info["email"], json!("ann@mail.example"));
        assert!(info["indexedAt"].is_string());
        assert_eq!(info["invitesDisabled"], json!(false));
        assert!(info.get("deactivatedAt").is_none(), "{info}");
        admin_get(&pds, "com.atproto.admin.getAccountInfo?did=did:plc:nobodyhere").await
            .assert_error(400, "NotFound");
        let infos = admin_get(&pds, &format!(
            "com.atproto.admin.getAccountInfos?dids={ann}&dids=did:plc:nobodyhere&dids={bob}"
        )).await.ok();
        let dids: Vec<&str> = infos["infos"].as_array().expect("infos").iter()
            .map(|i| i["did"].as_str().expect("did")).collect();
        assert_eq!(dids.len(), 2);
        assert!(dids.contains(&ann.as_str()) && dids.contains(&bob.as_str()));
        // Email prefix (ann@, annex@) or handle prefix (ann.test; andy.test only by "an").
        let found = |v: &Value| {
            let mut d: Vec<String> = v["accounts"].as_array().expect("accounts").iter()
                .map(|a| a["did"].as_str().expect("did").to_owned()).collect();
            d.sort();
            d
        };
        let mut want = vec![ann.clone(), bob.clone()];
        want.sort();
        let r = admin_get(&pds, "com.atproto.admin.searchAccounts?email=ANN").await.ok();
        assert_eq!(found(&r), want);
        assert!(r["accounts"][0]["email"].is_string());
        let r = admin_get(&pds, "com.atproto.admin.searchAccounts?email=an").await.ok();
        assert_eq!(found(&r).len(), 3);
        let r = admin_get(&pds, "com.atproto.admin.searchAccounts?email=zed@").await.ok();
        assert_eq!(found(&r), vec![andy.clone()]);
        // Paging one at a time.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10 {
            let q = match &cursor {
                Some(c) => format!("com.atproto.admin.searchAccounts?email=an&limit=1&cursor={c}"),
                None => "com.atproto.admin.searchAccounts?email=an&limit=1".to_owned(),
            };
            let page = admin_get(&pds, &q).await.ok();
            seen.extend(found(&page));
            cursor = page["cursor"].as_str().map(str::to_owned);
            if cursor.is_none() {
                break;
            }
        }
        seen.sort();
        let mut everyone = vec![ann, andy, bob];
        everyone.sort();
        assert_eq!(seen, everyone);
    }

    async fn admin_account_updates(backend: Backend) {
        let pds = server(backend).await;
        let (did, _, refresh_jwt) = account(&pds, "una.test", "una@example.com").await;
        account(&pds, "olga.test", "olga@example.com").await;
        // Email, by handle then by DID.
        admin_post(&pds, "com.atproto.admin.updateAccountEmail", &json!({"account": "una.test", "email": "Una2@Example.com"})).await.done();
        let info = admin_get(&pds, &format!("com.atproto.admin.getAccountInfo?did={did}")).await.ok();
        assert_eq!(info["email"], json!("una2@example.com"));
        admin_post(&pds, "com.atproto.admin.updateAccountEmail", &json!({"account": did, "email": "olga@example.com"})).await
            .assert_error(400, "InvalidRequest");
        admin_post(&pds, "com.atproto.admin.updateAccountEmail", &json!({"account": did, "email": "not-an-email"})).await
            .assert_error(400, "InvalidRequest");
        admin_post(&pds, "com.atproto.admin.updateAccountEmail", &json!({"account": "nobody.test", "email": "x@example.com"})).await
            .assert_error(400, "InvalidRequest");
        // Password: the old one and the old sessions stop working.
        admin_post(&pds, "com.atproto.admin.updateAccountPassword", &json!({"did": did, "password": "new-password-2"})).await.done();
        login(&pds, "una.test", "password-1").await.assert_error(401, "AuthenticationRequired");
        login(&pds, "una.test", "new-password-2").await.ok();
        assert_ne!(refresh(&pds, &refresh_jwt).await.status, 200);
        admin_post(&pds, "com.atproto.admin.updateAccountPassword", &json!({"did": did, "password": ""})).await
            .assert_error(400, "InvalidRequest");
        // Handle: the DID document, resolution and #identity follow; a
        // reserved name is allowed to the admin; a taken one is not.
        admin_post(&pds, "com.atproto.admin.updateAccountHandle", &json!({"did": did, "handle": "admin.test"})).await.done();
        let resolved = pds.get("/xrpc/com.atproto.identity.resolveHandle?handle=admin.test", None).await.ok();
        assert_eq!(resolved["did"], json!(did));
        let op = pds.state.plc.last_op(&did).await.expect("plc op");
        assert_eq!(op["alsoKnownAs"][0], json!("at://admin.test"));
        let (kind, body) = last_event(&pds, &did).await;
        assert_eq!((kind.as_str(), body["handle"].clone()), ("identity", json!("admin.test")));
        admin_post(&pds, "com.atproto.admin.updateAccountHandle", &json!({"did": did, "handle": "olga.test"})).await
            .assert_error(400, "InvalidRequest");
        admin_post(&pds, "com.atproto.admin.updateAccountHandle", &json!({"did": did, "handle": "x.test"})).await
            .assert_error(400, "InvalidHandle");
        admin_post(&pds, "com.atproto.admin.updateAccountHandle", &json!({"did": "did:plc:nobodyhere", "handle": "free.test"})).await
            .assert_error(400, "InvalidRequest");
        // Signing key in the DID document.
        let key = atproto_types::crypto::PrivateKey::generate(atproto_types::crypto::Algorithm::K256).did_key();
        admin_post(&pds, "com.atproto.admin.updateAccountSigningKey", &json!({"did": did, "signingKey": key})).await.done();
        let op = pds.state.plc.last_op(&did).await.expect("plc op");
        assert_eq!(op["verificationMethods"]["atproto"], json!(key));
        assert_eq!(op["alsoKnownAs"][0], json!("at://admin.test"));
        admin_post(&pds, "com.atproto.admin.updateAccountSigningKey", &json!({"did": did, "signingKey": "did:web:example.com"})).await
            .assert_error(400, "InvalidRequest");
    }

    async fn admin_deletes_account(backend: Backend) {
        let pds = server(backend).await;
        let (did, access, _) = account(&pds, "del.test", "del@example.com").await;
        post(&pds, &did, &access, "bye").await.ok();
        admin_post(&pds, "com.atproto.admin.deleteAccount", &json!({"did": did})).await.done();
        let (kind, body) = last_event(&pds, &did).await;
        assert_eq!(kind, "account");
        assert_eq!((body["active"].clone(), body["status"].clone()), (json!(false), json!("deleted")));
        admin_get(&pds, &format!("com.atproto.admin.getAccountInfo?did={did}")).await
            .assert_error(400, "NotFound");
        pds.get(&format!("/xrpc/com.atproto.sync.getRepo?did={did}"), None).await
            .assert_error(400, "RepoNotFound");
        login(&pds, "del.test", "password-1").await.assert_error(401, "AuthenticationRequired");
        // The handle is free again; a second deletion finds nothing.
        account(&pds, "del.test", "del@example.com").await;
        admin_post(&pds, "com.atproto.admin.deleteAccount", &json!({"did": did})).await
            .assert_error(400, "InvalidRequest");
    }

    async fn send_email_reaches_the_mailbox(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc().with_smtp()).await;
        let (did, _, _) = account(&pds, "mia.test", "mia@example.com").await;
        let sink = pds.smtp.as_ref().expect("smtp sink");
        let before = sink.messages().len();
        let out = admin_post(&pds, "com.atproto.admin.sendEmail", &json!({
            "recipientDid": did, "senderDid": "did:plc:moderator", "content": "Please stop.\n\nThanks",
            "subject": "About your posts", "comment": "first warning",
        })).await.ok();
        assert_eq!(out["sent"], json!(true));
        let mails = sink.wait_for(before + 1).await;
        let mail = mails.last().expect("mail");
        assert_eq!(mail["subject"], json!("About your posts"));
        assert!(mail["to"].as_str().is_some_and(|t| t.contains("mia@example.com")), "{mail}");
        assert!(mail["text"].as_str().is_some_and(|t| t.contains("Please stop.")), "{mail}");
        // Without a subject, the reference's default.
        admin_post(&pds, "com.atproto.admin.sendEmail", &json!({
            "recipientDid": did, "senderDid": "did:plc:moderator", "content": "Hello",
        })).await.ok();
        let mails = sink.wait_for(before + 2).await;
        assert_eq!(mails.last().expect("mail")["subject"], json!("Message from Bluesky moderator"));
        admin_post(&pds, "com.atproto.admin.sendEmail", &json!({
            "recipientDid": "did:plc:nobodyhere", "senderDid": "did:plc:moderator", "content": "x",
        })).await.assert_error(400, "InvalidRequest");
    }

    async fn send_email_without_transport_is_not_sent(backend: Backend) {
        let pds = server(backend).await;
        let (did, _, _) = account(&pds, "nia.test", "nia@example.com").await;
        let out = admin_post(&pds, "com.atproto.admin.sendEmail", &json!({
            "recipientDid": did, "senderDid": "did:plc:moderator", "content": "x",
        })).await.ok();
        assert_eq!(out["sent"], json!(false));
    }
}
