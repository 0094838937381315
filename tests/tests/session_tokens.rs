//! Session tokens signed with each account's own key
//! (`PDS_SESSION_TOKEN_ALG=ES256K`) over real HTTP, on SQLite and
//! PostgreSQL: login, getSession, refresh and app-password sessions work;
//! tokens signed by another account's key or with HS256 are refused, and
//! the default HS256 mode refuses ES256K tokens.

use std::time::Duration;

use base64::Engine;
use pds::jwt::{Scope, TokenSigner, ACCESS_TOKEN_TTL};
use pds_tests::{both_backends, jwt_claims, jwt_header, Backend, Options, TestPds, JWT_SECRET};
use serde_json::{json, Value};

const GET_SESSION: &str = "/xrpc/com.atproto.server.getSession";
const REFRESH_PATH: &str = "/xrpc/com.atproto.server.refreshSession";
const CREATE_APP_PASSWORD: &str = "com.atproto.server.createAppPassword";

async fn es256k_server(backend: Backend) -> TestPds {
    TestPds::start(
        Options::new(backend)
            .with_plc()
            .set("PDS_SESSION_TOKEN_ALG", "ES256K"),
    )
    .await
}

/// Asserts `jwt` is an ES256K token of type `typ` whose signature the
/// account's did:key (its DID document's signing key) verifies.
async fn assert_signed_by_account(pds: &TestPds, jwt: &str, typ: &str, did: &str) {
    let header = jwt_header(jwt);
    assert_eq!(header["alg"], "ES256K", "{header}");
    assert_eq!(header["typ"], typ, "{header}");
    let did_key = pds::identity::account_signing_key(&pds.state, did)
        .await
        .expect("account key")
        .did_key();
    let (input, sig) = jwt.rsplit_once('.').expect("three parts");
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .expect("base64url signature");
    atproto_types::crypto::verify_with_did_key(&did_key, input.as_bytes(), &sig)
        .expect("signed by the account's key");
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}"))
}

both_backends! {
    async fn es256k_sessions(backend: Backend) {
        let pds = es256k_server(backend).await;
        let created = pds.create_account("alice.test", "alice@example.com", "alice-pw").await;
        let did = str_of(&created, "did").to_owned();
        assert_signed_by_account(&pds, str_of(&created, "accessJwt"), "at+jwt", &did).await;
        assert_signed_by_account(&pds, str_of(&created, "refreshJwt"), "refresh+jwt", &did).await;

        // Login: the same claims as HS256 tokens.
        let session = pds.login("alice.test", "alice-pw").await;
        let access = str_of(&session, "accessJwt").to_owned();
        let refresh = str_of(&session, "refreshJwt").to_owned();
        assert_signed_by_account(&pds, &access, "at+jwt", &did).await;
        let claims = jwt_claims(&access);
        assert_eq!(claims["scope"], "com.atproto.access");
        assert_eq!(claims["sub"], did.as_str());
        assert_eq!(claims["aud"], pds.state.config.service_did.as_str());
        let rclaims = jwt_claims(&refresh);
        assert_eq!(rclaims["scope"], "com.atproto.refresh");
        assert!(rclaims["jti"].is_string());

        let got = pds.get(GET_SESSION, Some(&access)).await.ok();
        assert_eq!(got["did"], did.as_str());
        // The refresh token is not an access token, nor the reverse.
        pds.get(GET_SESSION, Some(&refresh)).await.assert_error(400, "InvalidToken");
        pds.post(REFRESH_PATH, None, Some(&access)).await.assert_error(400, "InvalidToken");

        // Refresh: new ES256K tokens that work.
        let refreshed = pds.post(REFRESH_PATH, None, Some(&refresh)).await.ok();
        let access2 = str_of(&refreshed, "accessJwt").to_owned();
        assert_signed_by_account(&pds, &access2, "at+jwt", &did).await;
        assert_signed_by_account(&pds, str_of(&refreshed, "refreshJwt"), "refresh+jwt", &did).await;
        assert_eq!(pds.get(GET_SESSION, Some(&access2)).await.ok()["handle"], "alice.test");

        // App-password sessions.
        let ap = pds
            .xrpc_post(CREATE_APP_PASSWORD, &json!({"name": "phone"}), Some(&access))
            .await
            .ok();
        let app_session = pds.login("alice.test", str_of(&ap, "password")).await;
        let app_access = str_of(&app_session, "accessJwt").to_owned();
        assert_signed_by_account(&pds, &app_access, "at+jwt", &did).await;
        assert_eq!(jwt_claims(&app_access)["scope"], "com.atproto.appPass");
        assert_eq!(pds.get(GET_SESSION, Some(&app_access)).await.ok()["did"], did.as_str());
        // An app-password session is not a full one.
        pds.xrpc_post(CREATE_APP_PASSWORD, &json!({"name": "more"}), Some(&app_access))
            .await
            .assert_error(400, "InvalidToken");
        let app_refreshed = pds
            .post(REFRESH_PATH, None, Some(str_of(&app_session, "refreshJwt")))
            .await
            .ok();
        assert_eq!(jwt_claims(str_of(&app_refreshed, "accessJwt"))["scope"], "com.atproto.appPass");
    }

    async fn es256k_refuses_other_signers(backend: Backend) {
        let pds = es256k_server(backend).await;
        let alice = pds.create_account("alice.test", "alice@example.com", "alice-pw").await;
        let bob = pds.create_account("bob.test", "bob@example.com", "bob-pw").await;
        let alice_did = str_of(&alice, "did").to_owned();
        let bob_did = str_of(&bob, "did").to_owned();
        let service_did = pds.state.config.service_did.clone();
        let signer = TokenSigner::new(JWT_SECRET, &service_did);

        // A token for alice signed with bob's key.
        let bob_key = pds::identity::account_signing_key(&pds.state, &bob_did).await.expect("key");
        let forged = signer
            .access_token_es256k(&bob_key, &alice_did, Scope::Access, ACCESS_TOKEN_TTL)
            .expect("sign");
        let msg = pds.get(GET_SESSION, Some(&forged.jwt)).await.assert_error(400, "InvalidToken");
        assert_eq!(msg, "Token could not be verified");
        // The same with alice's key works (the forgery differs only in the key).
        let alice_key = pds::identity::account_signing_key(&pds.state, &alice_did).await.expect("key");
        let genuine = signer
            .access_token_es256k(&alice_key, &alice_did, Scope::Access, ACCESS_TOKEN_TTL)
            .expect("sign");
        assert_eq!(pds.get(GET_SESSION, Some(&genuine.jwt)).await.ok()["did"], alice_did.as_str());
        // An expired one.
        let expired = signer
            .access_token_es256k(&alice_key, &alice_did, Scope::Access, Duration::ZERO)
            .expect("sign");
        pds.get(GET_SESSION, Some(&expired.jwt)).await.assert_error(400, "ExpiredToken");

        // An HS256 token with the server's own JWT secret: refused.
        let hs256 = signer.access_token(&alice_did, Scope::Access, ACCESS_TOKEN_TTL).expect("sign");
        assert_eq!(jwt_header(&hs256.jwt)["alg"], "HS256");
        pds.get(GET_SESSION, Some(&hs256.jwt)).await.assert_error(400, "InvalidToken");
        // A token naming an account that does not exist.
        let ghost = signer
            .access_token_es256k(&alice_key, "did:plc:abcdefghijklmnopqrstuvwx", Scope::Access, ACCESS_TOKEN_TTL)
            .expect("sign");
        pds.get(GET_SESSION, Some(&ghost.jwt)).await.assert_error(400, "InvalidToken");
    }

    async fn hs256_refuses_es256k(backend: Backend) {
        let pds = TestPds::start(Options::new(backend).with_plc()).await;
        let alice = pds.create_account("alice.test", "alice@example.com", "alice-pw").await;
        let did = str_of(&alice, "did").to_owned();
        assert_eq!(jwt_header(str_of(&alice, "accessJwt"))["alg"], "HS256");
        let key = pds::identity::account_signing_key(&pds.state, &did).await.expect("key");
        let signer = TokenSigner::new(JWT_SECRET, &pds.state.config.service_did);
        let es = signer
            .access_token_es256k(&key, &did, Scope::Access, ACCESS_TOKEN_TTL)
            .expect("sign");
        pds.get(GET_SESSION, Some(&es.jwt)).await.assert_error(400, "InvalidToken");
        // HS256 sessions work as before.
        let hs = signer.access_token(&did, Scope::Access, ACCESS_TOKEN_TTL).expect("sign");
        assert_eq!(pds.get(GET_SESSION, Some(&hs.jwt)).await.ok()["did"], did.as_str());
    }
}

#[test]
fn bad_alg_setting_is_refused() {
    let start = |v: &str| {
        pds::Config::from_sources(
            std::collections::BTreeMap::new(),
            vec![("PDS_SESSION_TOKEN_ALG".to_owned(), v.to_owned())],
        )
    };
    assert!(start("RS256").is_err());
    assert_eq!(
        start("es256k").expect("valid").session_token_alg,
        pds::jwt::SessionTokenAlg::Es256k
    );
    assert_eq!(
        start("HS256").expect("valid").session_token_alg,
        pds::jwt::SessionTokenAlg::Hs256
    );
}
