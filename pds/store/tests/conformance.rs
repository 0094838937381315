//! The conformance suite: every storage operation, run against SQLite and
//! PostgreSQL (`NAME::sqlite`, `NAME::postgres`).

mod common;

use std::collections::HashSet;
use std::future::Future;
use std::time::Duration;

use common::{block, commit_event, make_account, rev, TestDb};
use pds_store::blobstore::{blob_cid, BlobStore, DiskBlobStore};
use pds_store::*;
use pds_testkit::both_backends;

both_backends!(
    open_twice_is_idempotent,
    accounts_crud,
    account_unique_constraints,
    account_status_and_events,
    account_delete_removes_everything,
    invite_codes,
    invite_code_single_use_under_concurrency,
    app_passwords,
    email_tokens,
    reserved_keys,
    preferences,
    refresh_token_rotation,
    refresh_token_revocation,
    genesis_commit_with_account,
    repo_commit_and_reads,
    repo_commit_validation,
    failed_commit_writes_nothing,
    dropped_write_txn_writes_nothing,
    stale_root_is_rejected,
    records_index,
    records_with_values,
    snapshot_reads,
    snapshots_are_limited,
    block_reads,
    blob_references,
    blob_metadata_and_orphans,
    blob_upload_streaming,
    unrecorded_blob_objects,
    sequencer_basics,
    sequencer_subscription_wakes,
    sequencer_retention,
    gc_safety_net,
    oauth_devices_and_clients,
    oauth_requests_and_codes,
    oauth_tokens_rotation,
    oauth_replay,
    notification_queue,
    reports_crawlers_kv,
    list_repos_pages,
    admin_invite_code_listing,
    admin_account_search,
);

async fn open_twice_is_idempotent(db: &TestDb) {
    make_account(&db.store, "did:plc:a").await;
    let again = db.reopen().await;
    assert!(again.accounts().get("did:plc:a").await.unwrap().is_some());
    assert_eq!(again.backend(), db.store.backend());
    again.health_check().await.unwrap();
    db.store.health_check().await.unwrap();
}

async fn accounts_crud(db: &TestDb) {
    let s = &db.store;
    let mut na = NewAccount::new("did:plc:alice", "Alice.Test");
    na.email = Some("Alice@Example.COM".into());
    na.password_hash = Some("$argon2id$hash".into());
    na.signing_key_ciphertext = Some(vec![1, 2, 3]);
    s.accounts().create(na, None).await.unwrap();

    let a = s.accounts().get("did:plc:alice").await.unwrap().unwrap();
    assert_eq!(a.handle.as_deref(), Some("alice.test"));
    assert_eq!(a.email.as_deref(), Some("alice@example.com"));
    assert_eq!(a.password_hash.as_deref(), Some("$argon2id$hash"));
    assert_eq!(a.status, AccountStatus::Active);
    assert!(!a.invites_disabled);
    assert!(a.created_at > 0);
    assert_eq!(a.email_confirmed_at, None);

    let by_handle = s
        .accounts()
        .get_by_handle("ALICE.test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_handle.did, "did:plc:alice");
    let by_email = s
        .accounts()
        .get_by_email("alice@EXAMPLE.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.did, "did:plc:alice");
    assert!(s.accounts().get("did:plc:nobody").await.unwrap().is_none());
    make_account(s, "did:plc:bob").await;
    let all = s.accounts().list(None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.did.as_str()).collect::<Vec<_>>(),
        vec!["did:plc:alice", "did:plc:bob"]
    );
    assert_eq!(
        s.accounts()
            .list(Some("did:plc:alice"), 10)
            .await
            .unwrap()
            .len(),
        1
    );

    s.accounts()
        .confirm_email("did:plc:alice", 1234)
        .await
        .unwrap();
    assert_eq!(
        s.accounts()
            .get("did:plc:alice")
            .await
            .unwrap()
            .unwrap()
            .email_confirmed_at,
        Some(1234)
    );
    s.accounts()
        .update_email("did:plc:alice", Some("new@example.com"))
        .await
        .unwrap();
    let a = s.accounts().get("did:plc:alice").await.unwrap().unwrap();
    assert_eq!(a.email.as_deref(), Some("new@example.com"));
    assert_eq!(
        a.email_confirmed_at, None,
        "changing email clears confirmation"
    );

    assert_eq!(
        s.accounts().signing_key("did:plc:alice").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    s.accounts()
        .set_signing_key("did:plc:alice", &[9, 9])
        .await
        .unwrap();
    assert_eq!(
        s.accounts().signing_key("did:plc:alice").await.unwrap(),
        Some(vec![9, 9])
    );

    s.accounts()
        .set_invites_disabled("did:plc:alice", true)
        .await
        .unwrap();
    assert!(
        s.accounts()
            .get("did:plc:alice")
            .await
            .unwrap()
            .unwrap()
            .invites_disabled
    );

    // Password change revokes sessions when asked.
    let tok = RefreshToken {
        id: "rt1".into(),
        did: "did:plc:alice".into(),
        app_password_name: None,
        created_at: 1,
        expires_at: now_ms() + 60_000,
        next_id: None,
    };
    s.sessions().create(&tok).await.unwrap();
    s.accounts()
        .update_password("did:plc:alice", "h2", false)
        .await
        .unwrap();
    assert!(s.sessions().get("rt1").await.unwrap().is_some());
    s.accounts()
        .update_password("did:plc:alice", "h3", true)
        .await
        .unwrap();
    assert!(s.sessions().get("rt1").await.unwrap().is_none());
    assert_eq!(
        s.accounts()
            .get("did:plc:alice")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("h3")
    );

    assert!(matches!(
        s.accounts().confirm_email("did:plc:ghost", 1).await,
        Err(StoreError::AccountNotFound(_))
    ));
}

async fn account_unique_constraints(db: &TestDb) {
    let s = &db.store;
    let mut a = NewAccount::new("did:plc:one", "one.test");
    a.email = Some("one@x.com".into());
    s.accounts().create(a, None).await.unwrap();

    let r = s
        .accounts()
        .create(NewAccount::new("did:plc:one", "other.test"), None)
        .await;
    assert!(matches!(r, Err(StoreError::DidTaken)), "{r:?}");
    let r = s
        .accounts()
        .create(NewAccount::new("did:plc:two", "ONE.test"), None)
        .await;
    assert!(matches!(r, Err(StoreError::HandleTaken)), "{r:?}");
    let mut b = NewAccount::new("did:plc:two", "two.test");
    b.email = Some("One@X.com".into());
    let r = s.accounts().create(b, None).await;
    assert!(matches!(r, Err(StoreError::EmailTaken)), "{r:?}");

    s.accounts()
        .create(NewAccount::new("did:plc:two", "two.test"), None)
        .await
        .unwrap();
    let r = s
        .accounts()
        .update_handle("did:plc:two", "one.test", vec![])
        .await;
    assert!(matches!(r, Err(StoreError::HandleTaken)), "{r:?}");
    let r = s
        .accounts()
        .update_email("did:plc:two", Some("one@x.com"))
        .await;
    assert!(matches!(r, Err(StoreError::EmailTaken)), "{r:?}");
    // Failed handle change sequenced nothing.
    assert_eq!(s.sequencer().current_seq().await.unwrap(), 0);
}

async fn account_status_and_events(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:st").await;
    let seqs = s
        .accounts()
        .update_handle(
            "did:plc:st",
            "renamed.test",
            vec![NewEvent::raw("did:plc:st", "identity", b"id".to_vec())],
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec![1]);
    assert_eq!(
        s.accounts()
            .get("did:plc:st")
            .await
            .unwrap()
            .unwrap()
            .handle
            .as_deref(),
        Some("renamed.test")
    );

    let seqs = s
        .accounts()
        .set_status(
            "did:plc:st",
            AccountStatus::Deactivated,
            None,
            Some(99),
            vec![NewEvent::raw("did:plc:st", "account", b"deact".to_vec())],
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec![2]);
    let a = s.accounts().get("did:plc:st").await.unwrap().unwrap();
    assert_eq!(a.status, AccountStatus::Deactivated);
    assert!(a.deactivated_at.is_some());
    assert_eq!(a.delete_after, Some(99));
    assert_eq!(
        s.accounts().due_for_deletion(100, 10).await.unwrap(),
        vec!["did:plc:st".to_string()]
    );
    assert!(s
        .accounts()
        .due_for_deletion(98, 10)
        .await
        .unwrap()
        .is_empty());

    s.accounts()
        .set_status(
            "did:plc:st",
            AccountStatus::Takendown,
            Some("mod-1"),
            None,
            vec![],
        )
        .await
        .unwrap();
    let a = s.accounts().get("did:plc:st").await.unwrap().unwrap();
    assert_eq!(a.status, AccountStatus::Takendown);
    assert_eq!(a.takedown_ref.as_deref(), Some("mod-1"));
    assert!(
        a.deactivated_at.is_some(),
        "the deactivation survives the takedown"
    );

    s.accounts()
        .set_status("did:plc:st", AccountStatus::Active, None, None, vec![])
        .await
        .unwrap();
    let a = s.accounts().get("did:plc:st").await.unwrap().unwrap();
    assert_eq!((a.status, a.takedown_ref), (AccountStatus::Active, None));
    assert_eq!(a.deactivated_at, None);

    let ev = s.sequencer().events_after(0, 10).await.unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0].event_type, "identity");
    assert_eq!(ev[1].event, b"deact");
}

async fn account_delete_removes_everything(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:gone";
    let mut na = NewAccount::new(did, "gone.test");
    na.email = Some("gone@x.com".into());
    na.password_hash = Some("h".into());
    let blob = blob_cid(b"img").unwrap();
    let (root, root_bytes) = block("root-gone");
    let mut genesis = RepoCommitData::new(root, rev(1));
    genesis.put_blocks = vec![(root, root_bytes)];
    genesis.require_blobs = false;
    genesis.record_puts = vec![RecordPut {
        collection: "app.bsky.feed.post".into(),
        rkey: "r1".into(),
        cid: root,
        blobs: vec![blob],
    }];
    s.accounts().create(na, Some(genesis)).await.unwrap();
    s.blobs()
        .put_meta(did, &blob, "image/png", 3)
        .await
        .unwrap();
    s.accounts()
        .create_app_password(did, "ap", "h", false)
        .await
        .unwrap();
    s.accounts()
        .put_token(TokenPurpose::DeleteAccount, did, "tok")
        .await
        .unwrap();
    s.accounts()
        .put_preferences(
            did,
            "app.bsky",
            &[Preference {
                name: "x".into(),
                value_json: "{}".into(),
            }],
        )
        .await
        .unwrap();
    s.sessions()
        .create(&RefreshToken {
            id: "gone-rt".into(),
            did: did.into(),
            app_password_name: None,
            created_at: 0,
            expires_at: i64::MAX,
            next_id: None,
        })
        .await
        .unwrap();

    let blobs = s
        .accounts()
        .delete(
            did,
            vec![NewEvent::raw(did, "account", b"deleted".to_vec())],
        )
        .await
        .unwrap();
    assert_eq!(blobs, vec![blob]);
    let a = s.accounts().get(did).await.unwrap().unwrap();
    assert_eq!(a.status, AccountStatus::Deleted);
    assert_eq!((a.handle, a.email, a.password_hash), (None, None, None));
    assert!(s.repo().get_root(did).await.unwrap().is_none());
    assert_eq!(s.repo().block_stats(did).await.unwrap(), (0, 0));
    assert_eq!(s.repo().record_count(did).await.unwrap(), 0);
    assert!(s.blobs().get_meta(did, &blob).await.unwrap().is_none());
    assert!(s
        .accounts()
        .list_app_passwords(did)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .accounts()
        .get_token(TokenPurpose::DeleteAccount, did)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .accounts()
        .get_preferences(did, "app.bsky")
        .await
        .unwrap()
        .is_empty());
    assert!(s.sessions().get("gone-rt").await.unwrap().is_none());
    // The handle is free again.
    make_account(s, "did:plc:new").await;
    s.accounts()
        .update_handle("did:plc:new", "gone.test", vec![])
        .await
        .unwrap();
    assert_eq!(s.sequencer().current_seq().await.unwrap(), 1);
}

async fn invite_codes(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:inviter").await;
    s.accounts()
        .create_invite_codes(&[
            NewInviteCode {
                code: "code-a".into(),
                available_uses: 2,
                for_account: "did:plc:inviter".into(),
                created_by: "admin".into(),
            },
            NewInviteCode {
                code: "code-b".into(),
                available_uses: 1,
                for_account: "did:plc:inviter".into(),
                created_by: "admin".into(),
            },
        ])
        .await
        .unwrap();
    let dup = s
        .accounts()
        .create_invite_codes(&[NewInviteCode {
            code: "code-a".into(),
            available_uses: 1,
            for_account: "x".into(),
            created_by: "x".into(),
        }])
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))));

    for (i, code) in ["code-a", "code-a", "code-a", "nope"].iter().enumerate() {
        let mut na = NewAccount::new(format!("did:plc:u{i}"), format!("u{i}.test"));
        na.invite_code = Some((*code).into());
        let r = s.accounts().create(na, None).await;
        if i < 2 {
            r.unwrap();
        } else {
            assert!(
                matches!(r, Err(StoreError::InviteCodeUnavailable)),
                "{i}: {r:?}"
            );
            assert!(s
                .accounts()
                .get(&format!("did:plc:u{i}"))
                .await
                .unwrap()
                .is_none());
        }
    }
    let a = s
        .accounts()
        .get_invite_code("code-a")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.available_uses, 2);
    let users: Vec<_> = a.uses.iter().map(|u| u.used_by.as_str()).collect();
    assert_eq!(users.len(), 2);
    assert!(users.contains(&"did:plc:u0") && users.contains(&"did:plc:u1"));

    let listed = s
        .accounts()
        .invite_codes_for_account("did:plc:inviter")
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);

    let n = s
        .accounts()
        .disable_invite_codes(&["code-b".into()], &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let mut na = NewAccount::new("did:plc:late", "late.test");
    na.invite_code = Some("code-b".into());
    assert!(matches!(
        s.accounts().create(na, None).await,
        Err(StoreError::InviteCodeUnavailable)
    ));
    assert!(
        s.accounts()
            .get_invite_code("code-b")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    s.accounts()
        .disable_invite_codes(&[], &["did:plc:inviter".into()])
        .await
        .unwrap();
    assert!(
        s.accounts()
            .get_invite_code("code-a")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}

async fn invite_code_single_use_under_concurrency(db: &TestDb) {
    let s = &db.store;
    let other = db.reopen().await;
    s.accounts()
        .create_invite_codes(&[NewInviteCode {
            code: "once".into(),
            available_uses: 1,
            for_account: "admin".into(),
            created_by: "admin".into(),
        }])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let mut na = NewAccount::new(format!("did:plc:c{i}"), format!("c{i}.test"));
            na.invite_code = Some("once".into());
            st.accounts().create(na, None).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::InviteCodeUnavailable) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(
        s.accounts()
            .get_invite_code("once")
            .await
            .unwrap()
            .unwrap()
            .uses
            .len(),
        1
    );
}

async fn app_passwords(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:ap").await;
    let p = s
        .accounts()
        .create_app_password("did:plc:ap", "phone", "hash1", true)
        .await
        .unwrap();
    assert!(p.privileged);
    s.accounts()
        .create_app_password("did:plc:ap", "bot", "hash2", false)
        .await
        .unwrap();
    assert!(matches!(
        s.accounts()
            .create_app_password("did:plc:ap", "phone", "x", false)
            .await,
        Err(StoreError::AppPasswordExists)
    ));
    assert!(matches!(
        s.accounts()
            .create_app_password("did:plc:ghost", "x", "x", false)
            .await,
        Err(StoreError::AccountNotFound(_))
    ));
    let list = s.accounts().list_app_passwords("did:plc:ap").await.unwrap();
    let names: Vec<_> = list.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["bot", "phone"]);
    assert_eq!(list[1].password_hash, "hash1");

    for (id, ap) in [
        ("s-phone", Some("phone")),
        ("s-bot", Some("bot")),
        ("s-main", None),
    ] {
        s.sessions()
            .create(&RefreshToken {
                id: id.into(),
                did: "did:plc:ap".into(),
                app_password_name: ap.map(Into::into),
                created_at: 0,
                expires_at: i64::MAX,
                next_id: None,
            })
            .await
            .unwrap();
    }
    assert!(s
        .accounts()
        .delete_app_password("did:plc:ap", "phone")
        .await
        .unwrap());
    assert!(!s
        .accounts()
        .delete_app_password("did:plc:ap", "phone")
        .await
        .unwrap());
    assert!(
        s.sessions().get("s-phone").await.unwrap().is_none(),
        "its sessions are revoked"
    );
    assert!(s.sessions().get("s-bot").await.unwrap().is_some());
    assert!(s.sessions().get("s-main").await.unwrap().is_some());
}

async fn email_tokens(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:em").await;
    make_account(s, "did:plc:em2").await;
    let acc = s.accounts();
    acc.put_token(TokenPurpose::ConfirmEmail, "did:plc:em", "h1")
        .await
        .unwrap();
    acc.put_token(TokenPurpose::PlcOperation, "did:plc:em", "p1")
        .await
        .unwrap();
    let t = acc
        .get_token(TokenPurpose::ConfirmEmail, "did:plc:em")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.token_hash, "h1");
    // Replacing a token invalidates the old one.
    acc.put_token(TokenPurpose::ConfirmEmail, "did:plc:em", "h2")
        .await
        .unwrap();
    assert!(!acc
        .consume_token(TokenPurpose::ConfirmEmail, "did:plc:em", "h1", 0)
        .await
        .unwrap());
    let found = acc
        .find_token(TokenPurpose::ConfirmEmail, "h2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.did, "did:plc:em");
    assert!(acc
        .find_token(TokenPurpose::ResetPassword, "h2")
        .await
        .unwrap()
        .is_none());
    // Too old.
    assert!(!acc
        .consume_token(
            TokenPurpose::ConfirmEmail,
            "did:plc:em",
            "h2",
            now_ms() + 60_000
        )
        .await
        .unwrap());
    assert!(acc
        .consume_token(TokenPurpose::ConfirmEmail, "did:plc:em", "h2", 0)
        .await
        .unwrap());
    assert!(!acc
        .consume_token(TokenPurpose::ConfirmEmail, "did:plc:em", "h2", 0)
        .await
        .unwrap());
    // A token stored with an earlier request time.
    let old = now_ms() - 3_600_000;
    acc.put_token_at(TokenPurpose::ConfirmEmail, "did:plc:em", "h3", old)
        .await
        .unwrap();
    let t = acc
        .get_token(TokenPurpose::ConfirmEmail, "did:plc:em")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((t.token_hash.as_str(), t.requested_at), ("h3", old));
    assert!(!acc
        .consume_token(TokenPurpose::ConfirmEmail, "did:plc:em", "h3", old + 1)
        .await
        .unwrap());
    assert!(acc
        .consume_token(TokenPurpose::ConfirmEmail, "did:plc:em", "h3", old)
        .await
        .unwrap());
    // The PLC token is independent.
    assert!(acc
        .get_token(TokenPurpose::PlcOperation, "did:plc:em")
        .await
        .unwrap()
        .is_some());
    acc.delete_token(TokenPurpose::PlcOperation, "did:plc:em")
        .await
        .unwrap();
    assert!(acc
        .get_token(TokenPurpose::PlcOperation, "did:plc:em")
        .await
        .unwrap()
        .is_none());
    // Token hashes are unique per purpose.
    acc.put_token(TokenPurpose::ResetPassword, "did:plc:em", "same")
        .await
        .unwrap();
    assert!(matches!(
        acc.put_token(TokenPurpose::ResetPassword, "did:plc:em2", "same")
            .await,
        Err(StoreError::Duplicate(_))
    ));
    assert!(matches!(
        acc.put_token(TokenPurpose::ResetPassword, "did:plc:ghost", "zz")
            .await,
        Err(StoreError::AccountNotFound(_))
    ));
}

async fn reserved_keys(db: &TestDb) {
    let s = &db.store;
    let acc = s.accounts();
    acc.reserve_key("did:key:zA", Some("did:plc:future"), &[1, 2])
        .await
        .unwrap();
    acc.reserve_key("did:key:zB", None, &[3]).await.unwrap();
    assert!(matches!(
        acc.reserve_key("did:key:zA", None, &[0]).await,
        Err(StoreError::Duplicate(_))
    ));
    let k = acc.get_reserved_key("did:key:zA").await.unwrap().unwrap();
    assert_eq!(k.did.as_deref(), Some("did:plc:future"));
    assert_eq!(k.private_key_ciphertext, vec![1, 2]);
    let for_did = acc
        .reserved_key_for_did("did:plc:future")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(for_did.key_did, "did:key:zA");
    assert!(acc
        .reserved_key_for_did("did:plc:nobody")
        .await
        .unwrap()
        .is_none());
    let taken = acc.take_reserved_key("did:key:zA").await.unwrap().unwrap();
    assert_eq!(taken.key_did, "did:key:zA");
    assert!(acc.take_reserved_key("did:key:zA").await.unwrap().is_none());
    assert_eq!(
        acc.delete_reserved_keys_before(now_ms() + 1000)
            .await
            .unwrap(),
        1
    );
    assert!(acc.get_reserved_key("did:key:zB").await.unwrap().is_none());
}

async fn preferences(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:pref").await;
    let acc = s.accounts();
    let p = |n: &str, v: &str| Preference {
        name: n.into(),
        value_json: v.into(),
    };
    acc.put_preferences(
        "did:plc:pref",
        "app.bsky",
        &[
            p(
                "app.bsky.actor.defs#adultContentPref",
                r#"{"enabled":true}"#,
            ),
            p("b", "1"),
            p("b", "2"),
        ],
    )
    .await
    .unwrap();
    acc.put_preferences("did:plc:pref", "chat.bsky", &[p("c", "3")])
        .await
        .unwrap();
    assert_eq!(acc.preference_count("did:plc:pref").await.unwrap(), 4);
    assert_eq!(acc.preference_count("did:plc:ghost").await.unwrap(), 0);
    let got = acc
        .get_preferences("did:plc:pref", "app.bsky")
        .await
        .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].value_json, r#"{"enabled":true}"#);
    assert_eq!(
        (got[2].name.as_str(), got[2].value_json.as_str()),
        ("b", "2")
    );
    acc.put_preferences("did:plc:pref", "app.bsky", &[p("z", "0")])
        .await
        .unwrap();
    assert_eq!(
        acc.get_preferences("did:plc:pref", "app.bsky")
            .await
            .unwrap(),
        vec![p("z", "0")]
    );
    assert_eq!(
        acc.get_preferences("did:plc:pref", "chat.bsky")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(matches!(
        acc.put_preferences("did:plc:ghost", "app.bsky", &[p("z", "0")])
            .await,
        Err(StoreError::AccountNotFound(_))
    ));
}

fn token(id: &str, did: &str, expires_at: i64) -> RefreshToken {
    RefreshToken {
        id: id.into(),
        did: did.into(),
        app_password_name: None,
        created_at: 10,
        expires_at,
        next_id: None,
    }
}

async fn refresh_token_rotation(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:rt").await;
    let now = 1_000_000;
    let mut t0 = token("t0", "did:plc:rt", now + 90 * 86_400_000);
    t0.app_password_name = None;
    s.sessions().create(&t0).await.unwrap();
    s.accounts()
        .create_app_password("did:plc:rt", "ap", "h", false)
        .await
        .unwrap();
    assert!(matches!(
        s.sessions().create(&t0).await,
        Err(StoreError::Duplicate(_))
    ));

    let t1 = token("t1", "did:plc:rt", now + 90 * 86_400_000);
    let grace = 7_200_000;
    match s.sessions().rotate("t0", &t1, now, grace).await.unwrap() {
        RotateOutcome::Rotated(t) => assert_eq!(t.id, "t1"),
        other => panic!("{other:?}"),
    }
    let old = s.sessions().get("t0").await.unwrap().unwrap();
    assert_eq!(old.next_id.as_deref(), Some("t1"));
    assert_eq!(
        old.expires_at,
        now + grace,
        "old token shortened to the grace period"
    );

    // Retry with the old token within the grace period: same successor.
    let t1b = token("t1-other", "did:plc:rt", now + 1);
    match s
        .sessions()
        .rotate("t0", &t1b, now + 1000, grace)
        .await
        .unwrap()
    {
        RotateOutcome::AlreadyRotated(t) => assert_eq!(t.id, "t1"),
        other => panic!("{other:?}"),
    }
    assert!(s.sessions().get("t1-other").await.unwrap().is_none());
    // After the grace period: invalid.
    assert_eq!(
        s.sessions()
            .rotate("t0", &t1b, now + grace, grace)
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    assert_eq!(
        s.sessions().rotate("nope", &t1b, now, grace).await.unwrap(),
        RotateOutcome::Invalid
    );
    // A token for another account cannot be minted through rotation.
    let foreign = token("t2", "did:plc:other", now + 1000);
    assert_eq!(
        s.sessions()
            .rotate("t1", &foreign, now, grace)
            .await
            .unwrap(),
        RotateOutcome::Invalid
    );
    // Concurrent rotations of one token: exactly one Rotated, others see it.
    let other = db.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            let next = token(&format!("race{i}"), "did:plc:rt", now + 86_400_000);
            st.sessions().rotate("t1", &next, now + 5, grace).await
        }));
    }
    let mut rotated = 0;
    let mut successors = HashSet::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RotateOutcome::Rotated(t) => {
                rotated += 1;
                successors.insert(t.id);
            }
            RotateOutcome::AlreadyRotated(t) => {
                successors.insert(t.id);
            }
            RotateOutcome::Invalid => panic!("rotation within grace must not be invalid"),
        }
    }
    assert_eq!(rotated, 1);
    assert_eq!(successors.len(), 1, "every caller got the same successor");
}

async fn refresh_token_revocation(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:rv").await;
    s.sessions()
        .create(&token("a", "did:plc:rv", i64::MAX))
        .await
        .unwrap();
    s.sessions()
        .rotate("a", &token("b", "did:plc:rv", i64::MAX), 0, 1000)
        .await
        .unwrap();
    s.sessions()
        .rotate("b", &token("c", "did:plc:rv", i64::MAX), 0, 1000)
        .await
        .unwrap();
    s.sessions()
        .create(&token("x", "did:plc:rv", 50))
        .await
        .unwrap();
    assert_eq!(
        s.sessions()
            .list_for_account("did:plc:rv")
            .await
            .unwrap()
            .len(),
        4
    );
    // Revoking the first token revokes the chain rotated from it.
    assert!(s.sessions().delete("a").await.unwrap());
    assert!(!s.sessions().delete("a").await.unwrap());
    for id in ["a", "b", "c"] {
        assert!(s.sessions().get(id).await.unwrap().is_none(), "{id}");
    }
    assert_eq!(s.sessions().delete_expired(100).await.unwrap(), 1);
    assert!(s.sessions().get("x").await.unwrap().is_none());
    s.sessions()
        .create(&token("y", "did:plc:rv", i64::MAX))
        .await
        .unwrap();
    assert_eq!(
        s.sessions().delete_for_account("did:plc:rv").await.unwrap(),
        1
    );
    assert!(matches!(
        s.sessions().create(&token("z", "did:plc:ghost", 1)).await,
        Err(StoreError::AccountNotFound(_))
    ));
}

async fn genesis_commit_with_account(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:gen";
    let (root, root_bytes) = block("genesis-root");
    let mut data = RepoCommitData::new(root, rev(1));
    data.put_blocks = vec![(root, root_bytes.clone())];
    data.events = vec![
        NewEvent::raw(did, "identity", b"i".to_vec()),
        NewEvent::raw(did, "account", b"a".to_vec()),
        commit_event(did, &rev(1)),
    ];
    let out = s
        .accounts()
        .create(NewAccount::new(did, "gen.test"), Some(data))
        .await
        .unwrap();
    assert_eq!(out.seqs, vec![1, 2, 3]);
    let r = s.repo().get_root(did).await.unwrap().unwrap();
    assert_eq!((r.cid, r.rev.as_str()), (root, rev(1).as_str()));
    assert_eq!(
        s.repo().get_block(did, &root).await.unwrap(),
        Some(root_bytes)
    );

    // A failing genesis (bad block) creates no account at all.
    let (root2, _) = block("x");
    let mut bad = RepoCommitData::new(root2, rev(1));
    bad.put_blocks = vec![(root2, b"not x".to_vec())];
    bad.events = vec![commit_event("did:plc:bad", &rev(1))];
    let r = s
        .accounts()
        .create(NewAccount::new("did:plc:bad", "bad.test"), Some(bad))
        .await;
    assert!(matches!(r, Err(StoreError::BlockCidMismatch(_))), "{r:?}");
    assert!(s.accounts().get("did:plc:bad").await.unwrap().is_none());
    assert_eq!(s.sequencer().current_seq().await.unwrap(), 3);
}

async fn repo_commit_and_reads(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:repo";
    make_account(s, did).await;
    assert!(s.repo().get_root(did).await.unwrap().is_none());
    for expected in 1..=5u64 {
        let (n, seq) = common::counter_commit(s, did).await.unwrap();
        assert_eq!(n, expected);
        assert_eq!(seq, i64::try_from(expected).unwrap());
    }
    let root = s.repo().get_root(did).await.unwrap().unwrap();
    assert_eq!(root.rev, rev(5));
    let (root_cid, root_bytes) = block(format!("root|{did}|5"));
    assert_eq!(root.cid, root_cid);
    assert_eq!(
        s.repo().get_block(did, &root_cid).await.unwrap(),
        Some(root_bytes)
    );
    // Old roots were garbage-collected in their commits; records remain.
    assert_eq!(s.repo().block_stats(did).await.unwrap().0, 6);
    assert_eq!(s.repo().record_count(did).await.unwrap(), 5);
    let ev = s.sequencer().events_after(0, 100).await.unwrap();
    let texts: Vec<String> = ev
        .iter()
        .map(|e| String::from_utf8(e.event.clone()).unwrap())
        .collect();
    assert_eq!(texts[4], format!("5|{did}|{}", rev(5)));
}

async fn repo_commit_validation(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:val";
    make_account(s, did).await;
    common::counter_commit(s, did).await.unwrap();

    // Rev must increase.
    let txn = s.repo().begin_write(did).await.unwrap();
    let (root, bytes) = block("v-root");
    let mut data = RepoCommitData::new(root, rev(1));
    data.put_blocks = vec![(root, bytes.clone())];
    let r = txn.commit(data).await;
    assert!(
        matches!(r, Err(StoreError::RevNotIncreasing { .. })),
        "{r:?}"
    );

    // The root block must be written or present.
    let txn = s.repo().begin_write(did).await.unwrap();
    let (other, _) = block("absent");
    let r = txn.commit(RepoCommitData::new(other, rev(2))).await;
    assert!(matches!(r, Err(StoreError::MissingRootBlock(_))), "{r:?}");

    // Blocks must match their CIDs.
    let txn = s.repo().begin_write(did).await.unwrap();
    let mut data = RepoCommitData::new(root, rev(2));
    data.put_blocks = vec![(root, b"tampered".to_vec())];
    assert!(matches!(
        txn.commit(data).await,
        Err(StoreError::BlockCidMismatch(_))
    ));

    // No root at all is invalid input.
    let txn = s.repo().begin_write(did).await.unwrap();
    let r = txn.commit(RepoCommitData::default()).await;
    assert!(matches!(r, Err(StoreError::InvalidInput(_))), "{r:?}");

    // A referenced blob must exist when required.
    let txn = s.repo().begin_write(did).await.unwrap();
    let mut data = RepoCommitData::new(root, rev(2));
    data.put_blocks = vec![(root, bytes.clone())];
    data.record_puts = vec![RecordPut {
        collection: "c".into(),
        rkey: "k".into(),
        cid: root,
        blobs: vec![blob_cid(b"nope").unwrap()],
    }];
    assert!(matches!(
        txn.commit(data).await,
        Err(StoreError::BlobNotFound(_))
    ));

    // Still at rev 1 after all the failures, with one event.
    assert_eq!(s.repo().get_root(did).await.unwrap().unwrap().rev, rev(1));
    assert_eq!(s.sequencer().current_seq().await.unwrap(), 1);
    assert!(s.repo().get_block(did, &root).await.unwrap().is_none());
}

async fn failed_commit_writes_nothing(db: &TestDb) {
    // The failure happens after blocks, records and refs were written inside
    // the transaction (missing blob checked last for the second record).
    let s = &db.store;
    let did = "did:plc:atomic";
    make_account(s, did).await;
    common::counter_commit(s, did).await.unwrap();
    let before_blocks = s.repo().block_stats(did).await.unwrap();
    let before_root = s.repo().get_root(did).await.unwrap();
    let good_blob = blob_cid(b"good").unwrap();
    s.blobs()
        .put_meta(did, &good_blob, "image/png", 4)
        .await
        .unwrap();

    let txn = s.repo().begin_write(did).await.unwrap();
    let (root, bytes) = block("atomic-root");
    let (rec, rec_bytes) = block("atomic-rec");
    let mut data = RepoCommitData::new(root, rev(2));
    data.put_blocks = vec![(root, bytes), (rec, rec_bytes)];
    data.delete_blocks = vec![before_root.as_ref().unwrap().cid];
    data.record_deletes = vec![RecordDelete {
        collection: "app.test.counter".into(),
        rkey: "00000001".into(),
    }];
    data.record_puts = vec![
        RecordPut {
            collection: "c".into(),
            rkey: "1".into(),
            cid: rec,
            blobs: vec![good_blob],
        },
        RecordPut {
            collection: "c".into(),
            rkey: "2".into(),
            cid: rec,
            blobs: vec![blob_cid(b"missing").unwrap()],
        },
    ];
    data.events = vec![commit_event(did, &rev(2))];
    assert!(matches!(
        txn.commit(data).await,
        Err(StoreError::BlobNotFound(_))
    ));

    assert_eq!(s.repo().get_root(did).await.unwrap(), before_root);
    assert_eq!(s.repo().block_stats(did).await.unwrap(), before_blocks);
    assert!(s
        .repo()
        .get_record(did, "app.test.counter", "00000001")
        .await
        .unwrap()
        .is_some());
    assert!(s.repo().get_record(did, "c", "1").await.unwrap().is_none());
    assert!(s
        .blobs()
        .referencing_records(did, &good_blob)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.sequencer().current_seq().await.unwrap(),
        1,
        "no seq consumed"
    );
    // And the next commit gets the next seq: no gap.
    let (_, seq) = common::counter_commit(s, did).await.unwrap();
    assert_eq!(seq, 2);
}

async fn dropped_write_txn_writes_nothing(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:drop";
    make_account(s, did).await;
    common::counter_commit(s, did).await.unwrap();
    let before = s.repo().get_root(did).await.unwrap();
    {
        let txn = s.repo().begin_write(did).await.unwrap();
        assert_eq!(txn.current(), before.as_ref());
        drop(txn);
    }
    // The lock was released: the next writer proceeds.
    let r = tokio::time::timeout(Duration::from_secs(10), common::counter_commit(s, did)).await;
    assert_eq!(r.expect("lock released").unwrap().0, 2);
    // A second process is not blocked by a dropped transaction either.
    let other = db.reopen().await;
    let txn = other.repo().begin_write(did).await.unwrap();
    drop(txn);
    let r = tokio::time::timeout(Duration::from_secs(10), common::counter_commit(s, did)).await;
    assert_eq!(r.expect("lock released").unwrap().0, 3);
}

async fn stale_root_is_rejected(db: &TestDb) {
    // On SQLite two processes can both read the root; the second commit's
    // compare-and-swap must fail. On PostgreSQL the row lock makes the second
    // process wait instead, so it reads the new root and succeeds.
    let s = &db.store;
    let did = "did:plc:stale";
    make_account(s, did).await;
    common::counter_commit(s, did).await.unwrap();
    let other = db.reopen().await;
    match s.backend() {
        Backend::Sqlite => {
            let t1 = s.repo().begin_write(did).await.unwrap();
            let t2 = other.repo().begin_write(did).await.unwrap();
            let (r1, b1) = block("stale-1");
            let mut d1 = RepoCommitData::new(r1, rev(2));
            d1.put_blocks = vec![(r1, b1)];
            t1.commit(d1).await.unwrap();
            let (r2, b2) = block("stale-2");
            let mut d2 = RepoCommitData::new(r2, rev(3));
            d2.put_blocks = vec![(r2, b2)];
            d2.events = vec![commit_event(did, &rev(3))];
            let r = t2.commit(d2).await;
            assert!(matches!(r, Err(StoreError::RepoConflict { .. })), "{r:?}");
            assert_eq!(s.repo().get_root(did).await.unwrap().unwrap().cid, r1);
            assert_eq!(s.sequencer().current_seq().await.unwrap(), 1);
        }
        Backend::Postgres => {
            let t1 = s.repo().begin_write(did).await.unwrap();
            let other2 = other.clone();
            let waiter = tokio::spawn(async move {
                let t2 = other2.repo().begin_write("did:plc:stale").await.unwrap();
                t2.current().map(|r| r.rev.clone())
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert!(
                !waiter.is_finished(),
                "second process must wait for the row lock"
            );
            let (r1, b1) = block("stale-1");
            let mut d1 = RepoCommitData::new(r1, rev(2));
            d1.put_blocks = vec![(r1, b1)];
            t1.commit(d1).await.unwrap();
            assert_eq!(waiter.await.unwrap(), Some(rev(2)));
        }
    }
    // A transaction that saw no repo cannot create it once another process has.
    let t = s.repo().begin_write("did:plc:fresh").await.unwrap();
    make_account(s, "did:plc:fresh").await;
    common::counter_commit(&other, "did:plc:fresh")
        .await
        .unwrap();
    let (r9, b9) = block("fresh-9");
    let mut d = RepoCommitData::new(r9, rev(9));
    d.put_blocks = vec![(r9, b9)];
    let r = t.commit(d).await;
    assert!(matches!(r, Err(StoreError::RepoConflict { .. })), "{r:?}");
    assert_eq!(
        s.repo()
            .get_root("did:plc:fresh")
            .await
            .unwrap()
            .unwrap()
            .rev,
        rev(1)
    );
}

async fn records_index(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:rec";
    make_account(s, did).await;
    let (root, rb) = block("rec-root");
    let cids: Vec<_> = (0..5).map(|i| block(format!("r{i}")).0).collect();
    let mut data = RepoCommitData::new(root, rev(1));
    data.put_blocks = vec![(root, rb)];
    for (i, c) in cids.iter().enumerate() {
        data.record_puts.push(RecordPut {
            collection: "app.bsky.feed.post".into(),
            rkey: format!("3k{i}"),
            cid: *c,
            blobs: vec![],
        });
    }
    data.record_puts.push(RecordPut {
        collection: "app.bsky.actor.profile".into(),
        rkey: "self".into(),
        cid: cids[0],
        blobs: vec![],
    });
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();

    let rec = s
        .repo()
        .get_record(did, "app.bsky.feed.post", "3k2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.cid, cids[2]);
    assert_eq!(rec.rev, rev(1));
    assert_eq!(rec.uri(did), format!("at://{did}/app.bsky.feed.post/3k2"));
    assert_eq!(
        s.repo().list_collections(did).await.unwrap(),
        vec![
            "app.bsky.actor.profile".to_string(),
            "app.bsky.feed.post".to_string()
        ]
    );
    let keys = |v: Vec<RecordEntry>| v.into_iter().map(|r| r.rkey).collect::<Vec<_>>();
    let desc = s
        .repo()
        .list_records(did, "app.bsky.feed.post", 2, None, false)
        .await
        .unwrap();
    assert_eq!(keys(desc), vec!["3k4", "3k3"]);
    let desc2 = s
        .repo()
        .list_records(did, "app.bsky.feed.post", 2, Some("3k3"), false)
        .await
        .unwrap();
    assert_eq!(keys(desc2), vec!["3k2", "3k1"]);
    let asc = s
        .repo()
        .list_records(did, "app.bsky.feed.post", 10, Some("3k2"), true)
        .await
        .unwrap();
    assert_eq!(keys(asc), vec!["3k3", "3k4"]);

    // Update and delete.
    let (root2, rb2) = block("rec-root-2");
    let mut data = RepoCommitData::new(root2, rev(2));
    data.put_blocks = vec![(root2, rb2)];
    data.delete_blocks = vec![root];
    data.record_puts = vec![RecordPut {
        collection: "app.bsky.feed.post".into(),
        rkey: "3k0".into(),
        cid: cids[4],
        blobs: vec![],
    }];
    data.record_deletes = vec![RecordDelete {
        collection: "app.bsky.feed.post".into(),
        rkey: "3k1".into(),
    }];
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    let rec = s
        .repo()
        .get_record(did, "app.bsky.feed.post", "3k0")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rec.cid, rec.rev.as_str()), (cids[4], rev(2).as_str()));
    assert!(s
        .repo()
        .get_record(did, "app.bsky.feed.post", "3k1")
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.repo().record_count(did).await.unwrap(), 5);
    assert!(
        s.repo().get_block(did, &root).await.unwrap().is_none(),
        "old root collected"
    );

    assert!(s
        .repo()
        .set_record_takedown(did, "app.bsky.feed.post", "3k0", Some("t1"))
        .await
        .unwrap());
    assert_eq!(
        s.repo()
            .get_record(did, "app.bsky.feed.post", "3k0")
            .await
            .unwrap()
            .unwrap()
            .takedown_ref
            .as_deref(),
        Some("t1")
    );
    assert!(!s
        .repo()
        .set_record_takedown(did, "x", "y", None)
        .await
        .unwrap());
}

/// `list_records_with_values` and `get_record_with_value` list what
/// `list_records` and `get_record` list, each with its own repository's
/// record block (`None` when that repository lacks it).
async fn records_with_values(db: &TestDb) {
    let s = &db.store;
    let (did, other) = ("did:plc:values", "did:plc:valuesother");
    make_account(s, did).await;
    make_account(s, other).await;
    let recs: Vec<_> = (0..5).map(|i| block(format!("value-{i}"))).collect();
    for (d, name, blocks) in [
        (did, "values-root", &recs[..4]),
        (other, "values-other-root", &recs[4..]),
    ] {
        let (root, rb) = block(name);
        let mut data = RepoCommitData::new(root, rev(1));
        data.put_blocks = std::iter::once((root, rb))
            .chain(blocks.iter().cloned())
            .collect();
        for (i, (c, _)) in recs.iter().enumerate() {
            data.record_puts.push(RecordPut {
                collection: "app.bsky.feed.post".into(),
                rkey: format!("3k{i}"),
                cid: *c,
                blobs: vec![],
            });
        }
        s.repo()
            .begin_write(d)
            .await
            .unwrap()
            .commit(data)
            .await
            .unwrap();
    }
    for (limit, cursor, reverse) in [
        (10, None, false),
        (2, None, false),
        (2, Some("3k3"), false),
        (10, Some("3k1"), true),
        (3, None, true),
    ] {
        let plain = s
            .repo()
            .list_records(did, "app.bsky.feed.post", limit, cursor, reverse)
            .await
            .unwrap();
        let with = s
            .repo()
            .list_records_with_values(did, "app.bsky.feed.post", limit, cursor, reverse)
            .await
            .unwrap();
        assert!(!plain.is_empty());
        assert_eq!(
            with.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>(),
            plain,
            "{limit} {cursor:?} {reverse}"
        );
        for (entry, value) in with {
            let want = recs[..4]
                .iter()
                .find(|(c, _)| *c == entry.cid)
                .map(|(_, b)| b.clone());
            assert_eq!(value, want, "{}", entry.rkey);
        }
    }
    let (entry, value) = s
        .repo()
        .get_record_with_value(did, "app.bsky.feed.post", "3k2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(entry),
        s.repo()
            .get_record(did, "app.bsky.feed.post", "3k2")
            .await
            .unwrap()
    );
    assert_eq!(value, Some(recs[2].1.clone()));
    let (_, absent) = s
        .repo()
        .get_record_with_value(did, "app.bsky.feed.post", "3k4")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(absent, None, "the other repository's block is not used");
    assert!(s
        .repo()
        .get_record_with_value(did, "app.bsky.feed.post", "3k9")
        .await
        .unwrap()
        .is_none());
}

/// A snapshot keeps seeing the root and blocks it was opened at while a
/// commit replaces them; a snapshot opened later sees the new state.
async fn snapshot_reads(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:snap";
    make_account(s, did).await;
    assert!(
        s.repo().snapshot(did).await.unwrap().is_none(),
        "no repo yet"
    );
    let (root1, rb1) = block("snap-root-1");
    let olds: Vec<_> = (0..3).map(|i| block(format!("snap-old-{i}"))).collect();
    let mut data = RepoCommitData::new(root1, rev(1));
    data.put_blocks = std::iter::once((root1, rb1.clone()))
        .chain(olds.iter().cloned())
        .collect();
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();

    let mut before = s.repo().snapshot(did).await.unwrap().unwrap();
    assert_eq!(before.root().cid, root1);
    assert_eq!(before.root().rev, rev(1));

    let (root2, rb2) = block("snap-root-2");
    let (new, nb) = block("snap-new");
    let mut data = RepoCommitData::new(root2, rev(2));
    data.put_blocks = vec![(root2, rb2.clone()), (new, nb.clone())];
    data.delete_blocks = std::iter::once(root1)
        .chain(olds.iter().map(|(c, _)| *c))
        .collect();
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    assert!(s.repo().get_block(did, &root1).await.unwrap().is_none());

    // The old snapshot: the old root and blocks, none of the new ones.
    assert_eq!(before.root().cid, root1);
    let mut want: Vec<(cid::Cid, Vec<u8>)> = std::iter::once((root1, rb1))
        .chain(olds.iter().cloned())
        .collect();
    want.sort_by_key(|(c, _)| c.to_string());
    assert_eq!(before.list_blocks(None, None, 100).await.unwrap(), want);
    let page = before.list_blocks(None, None, 2).await.unwrap();
    assert_eq!(page, want[..2].to_vec());
    let rest = before
        .list_blocks(None, Some(&page[1].0), 100)
        .await
        .unwrap();
    assert_eq!(rest, want[2..].to_vec());
    let got = before.get_blocks(&[olds[0].0, new]).await.unwrap();
    assert_eq!(got.blocks.get(&olds[0].0), Some(&olds[0].1));
    assert_eq!(got.missing, vec![new]);
    drop(before);

    // A new snapshot: the new state; `since` keeps later revs only.
    let mut after = s.repo().snapshot(did).await.unwrap().unwrap();
    assert_eq!(after.root().cid, root2);
    let mut want = vec![(root2, rb2), (new, nb)];
    want.sort_by_key(|(c, _)| c.to_string());
    assert_eq!(after.list_blocks(None, None, 100).await.unwrap(), want);
    assert_eq!(
        after.list_blocks(Some(&rev(1)), None, 100).await.unwrap(),
        want
    );
    assert!(after
        .list_blocks(Some(&rev(2)), None, 100)
        .await
        .unwrap()
        .is_empty());
}

/// At most half the pool's connections (5 of the default 10) serve
/// snapshots at once; the next one waits until one is dropped.
async fn snapshots_are_limited(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:snaplimit";
    make_account(s, did).await;
    let (root, rb) = block("snap-limit-root");
    let mut data = RepoCommitData::new(root, rev(1));
    data.put_blocks = vec![(root, rb)];
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(s.repo().snapshot(did).await.unwrap().unwrap());
    }
    let repos = s.repo();
    let mut next = Box::pin(repos.snapshot(did));
    let first =
        std::future::poll_fn(|cx| std::task::Poll::Ready(next.as_mut().poll(cx).is_pending()))
            .await;
    assert!(first, "a sixth snapshot waits");
    drop(open.pop());
    let sixth = next.await.unwrap().unwrap();
    assert_eq!(sixth.root().cid, root);
    // Reads elsewhere are not blocked meanwhile.
    assert!(s.repo().get_root(did).await.unwrap().is_some());
}

async fn block_reads(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:blocks";
    make_account(s, did).await;
    let blocks: Vec<_> = (0..1200).map(|i| block(format!("block-{i}"))).collect();
    let root = blocks[0].0;
    let mut data = RepoCommitData::new(root, rev(1));
    data.put_blocks = blocks[..700].to_vec();
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    let mut data = RepoCommitData::new(root, rev(2));
    data.put_blocks = blocks[700..].to_vec();
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();

    let (extra, _) = block("not stored");
    let mut want: Vec<_> = blocks.iter().map(|(c, _)| *c).collect();
    want.push(extra);
    let got = s.repo().get_blocks(did, &want).await.unwrap();
    assert_eq!(got.blocks.len(), 1200);
    assert_eq!(got.missing, vec![extra]);
    assert_eq!(got.blocks[&blocks[999].0], blocks[999].1);
    // Other repos' blocks are invisible.
    assert!(s
        .repo()
        .get_blocks("did:plc:other", &want[..3])
        .await
        .unwrap()
        .blocks
        .is_empty());

    let all = s.repo().all_blocks(did).await.unwrap();
    assert_eq!(all.len(), 1200);
    let since = s
        .repo()
        .list_blocks(did, Some(&rev(1)), None, 10_000)
        .await
        .unwrap();
    assert_eq!(since.len(), 500, "blocks written after rev 1");
    // Paging in CID order covers everything exactly once.
    let mut seen = HashSet::new();
    let mut after = None;
    loop {
        let page = s
            .repo()
            .list_blocks(did, None, after.as_ref(), 333)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        for (c, _) in &page {
            assert!(seen.insert(*c));
        }
        after = page.last().map(|(c, _)| *c);
    }
    assert_eq!(seen.len(), 1200);
    let (n, bytes) = s.repo().block_stats(did).await.unwrap();
    assert_eq!(n, 1200);
    assert_eq!(
        bytes,
        blocks.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    // Via the write transaction handle too.
    let txn = s.repo().begin_write(did).await.unwrap();
    assert_eq!(txn.get_blocks(&want[..5]).await.unwrap().blocks.len(), 5);
}

async fn blob_references(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:br";
    make_account(s, did).await;
    let b1 = blob_cid(b"one").unwrap();
    let b2 = blob_cid(b"two").unwrap();
    s.blobs().put_meta(did, &b1, "image/jpeg", 3).await.unwrap();
    s.blobs().put_meta(did, &b2, "image/png", 3).await.unwrap();
    let (root, rb) = block("br-root");
    let (rec, _) = block("br-rec");
    let mut data = RepoCommitData::new(root, rev(1));
    data.put_blocks = vec![(root, rb)];
    data.record_puts = vec![
        RecordPut {
            collection: "p".into(),
            rkey: "a".into(),
            cid: rec,
            blobs: vec![b1, b2],
        },
        RecordPut {
            collection: "p".into(),
            rkey: "b".into(),
            cid: rec,
            blobs: vec![b1],
        },
    ];
    let out = s
        .repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    assert!(out.unreferenced_blobs.is_empty());
    assert_eq!(
        s.blobs().referencing_records(did, &b1).await.unwrap(),
        vec![format!("at://{did}/p/a"), format!("at://{did}/p/b")]
    );
    // Two records, two distinct blobs (b1 counted once).
    assert_eq!(s.blobs().referenced_count(did).await.unwrap(), 2);
    assert_eq!(
        s.blobs().referenced_count("did:plc:other").await.unwrap(),
        0
    );
    assert_eq!(
        s.blobs()
            .list_referenced_since(did, "", None, 10)
            .await
            .unwrap()
            .len(),
        2
    );

    // Updating record a to drop b2 makes b2 unreferenced; b1 still used by b.
    let (root2, rb2) = block("br-root-2");
    let mut data = RepoCommitData::new(root2, rev(2));
    data.put_blocks = vec![(root2, rb2)];
    data.record_puts = vec![RecordPut {
        collection: "p".into(),
        rkey: "a".into(),
        cid: rec,
        blobs: vec![b1],
    }];
    let out = s
        .repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    assert_eq!(out.unreferenced_blobs, vec![b2]);
    // Deleting both records frees b1.
    let (root3, rb3) = block("br-root-3");
    let mut data = RepoCommitData::new(root3, rev(3));
    data.put_blocks = vec![(root3, rb3)];
    data.record_deletes = vec![
        RecordDelete {
            collection: "p".into(),
            rkey: "a".into(),
        },
        RecordDelete {
            collection: "p".into(),
            rkey: "b".into(),
        },
    ];
    let out = s
        .repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    assert_eq!(out.unreferenced_blobs, vec![b1]);
    assert!(s
        .blobs()
        .referencing_records(did, &b1)
        .await
        .unwrap()
        .is_empty());

    // Imports may reference blobs not uploaded yet: listed as missing.
    let b3 = blob_cid(b"three").unwrap();
    let (root4, rb4) = block("br-root-4");
    let mut data = RepoCommitData::new(root4, rev(4));
    data.put_blocks = vec![(root4, rb4)];
    data.require_blobs = false;
    data.record_puts = vec![RecordPut {
        collection: "p".into(),
        rkey: "c".into(),
        cid: rec,
        blobs: vec![b3, b1],
    }];
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    let missing = s.blobs().list_missing(did, None, 10).await.unwrap();
    assert_eq!(
        missing,
        vec![MissingBlob {
            cid: b3,
            record_uri: format!("at://{did}/p/c")
        }]
    );
    s.blobs().put_meta(did, &b3, "image/png", 5).await.unwrap();
    assert!(s
        .blobs()
        .list_missing(did, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.blobs()
            .list_referenced_since(did, &rev(3), None, 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(s
        .blobs()
        .list_referenced_since(did, &rev(4), None, 10)
        .await
        .unwrap()
        .is_empty());
}

async fn blob_metadata_and_orphans(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:orph";
    make_account(s, did).await;
    make_account(s, "did:plc:orph2").await;
    let bs = DiskBlobStore::open(db.dir().join("blobs")).await.unwrap();
    let mut metas = Vec::new();
    for (i, body) in [b"aaa".as_slice(), b"bbbb", b"ccccc"].iter().enumerate() {
        let mut r: &[u8] = body;
        let m = s
            .blobs()
            .upload(&bs, did, "text/plain", &mut r, None)
            .await
            .unwrap();
        assert_eq!(m.size, body.len() as u64);
        assert_eq!(m.cid, blob_cid(body).unwrap());
        metas.push(m);
        let _ = i;
    }
    // The same bytes uploaded by another account are that account's blob too.
    let mut r: &[u8] = b"aaa";
    s.blobs()
        .upload(&bs, "did:plc:orph2", "text/plain", &mut r, None)
        .await
        .unwrap();

    let m = s
        .blobs()
        .get_meta(did, &metas[0].cid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.mime_type, "text/plain");
    assert_eq!(s.blobs().stats(did).await.unwrap(), (3, 12));
    let listed = s.blobs().list(did, None, 10).await.unwrap();
    assert_eq!(listed.len(), 3);
    let page2 = s.blobs().list(did, Some(&listed[0]), 10).await.unwrap();
    assert_eq!(page2, listed[1..].to_vec());
    assert!(s
        .blobs()
        .set_takedown(did, &metas[1].cid, Some("td"))
        .await
        .unwrap());
    assert_eq!(
        s.blobs()
            .get_meta(did, &metas[1].cid)
            .await
            .unwrap()
            .unwrap()
            .takedown_ref
            .as_deref(),
        Some("td")
    );

    // Reference blob 0 from a record.
    let (root, rb) = block("orph-root");
    let mut data = RepoCommitData::new(root, rev(1));
    data.put_blocks = vec![(root, rb)];
    data.record_puts = vec![RecordPut {
        collection: "p".into(),
        rkey: "1".into(),
        cid: root,
        blobs: vec![metas[0].cid],
    }];
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();

    // Nothing is an orphan within the grace period.
    let cutoff_now = now_ms() - 3_600_000;
    assert!(s
        .blobs()
        .list_orphans(cutoff_now, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.blobs()
            .collect_orphans(&bs, Duration::from_secs(1), 10)
            .await
            .unwrap(),
        0,
        "grace is at least an hour"
    );
    // As if the grace period had passed: the two unreferenced blobs of `did`
    // and the other account's copy are orphans; the referenced one is not.
    let later = now_ms() + 1000;
    let orphans = s.blobs().list_orphans(later, 10).await.unwrap();
    assert_eq!(orphans.len(), 3);
    assert!(!orphans.contains(&(did.to_string(), metas[0].cid)));
    for (d, c) in &orphans {
        assert!(s.blobs().delete_orphan(&bs, d, c, later).await.unwrap());
        assert!(!bs.exists(d, c).await.unwrap());
    }
    assert!(!s
        .blobs()
        .delete_orphan(&bs, did, &metas[0].cid, later)
        .await
        .unwrap());
    assert!(bs.exists(did, &metas[0].cid).await.unwrap());
    assert!(s
        .blobs()
        .get_meta("did:plc:orph2", &metas[0].cid)
        .await
        .unwrap()
        .is_none());
    // Deleting the last referencing record makes it deletable.
    let (root2, rb2) = block("orph-root-2");
    let mut data = RepoCommitData::new(root2, rev(2));
    data.put_blocks = vec![(root2, rb2)];
    data.record_deletes = vec![RecordDelete {
        collection: "p".into(),
        rkey: "1".into(),
    }];
    let out = s
        .repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    assert_eq!(out.unreferenced_blobs, vec![metas[0].cid]);
    assert!(s
        .blobs()
        .delete_orphan(&bs, did, &metas[0].cid, later)
        .await
        .unwrap());
    assert_eq!(s.blobs().stats(did).await.unwrap(), (0, 0));
    // A commit referencing a blob deleted meanwhile fails cleanly.
    let (root3, rb3) = block("orph-root-3");
    let mut data = RepoCommitData::new(root3, rev(3));
    data.put_blocks = vec![(root3, rb3)];
    data.record_puts = vec![RecordPut {
        collection: "p".into(),
        rkey: "2".into(),
        cid: root,
        blobs: vec![metas[0].cid],
    }];
    assert!(matches!(
        s.repo().begin_write(did).await.unwrap().commit(data).await,
        Err(StoreError::BlobNotFound(_))
    ));
}

async fn unrecorded_blob_objects(db: &TestDb) {
    let blobs = DiskBlobStore::open(db.dir().join("blobs")).await.unwrap();
    common::unrecorded_objects_are_swept(&db.store, &blobs).await;
}

async fn blob_upload_streaming(db: &TestDb) {
    use tokio::io::AsyncReadExt;
    let s = &db.store;
    let did = "did:plc:stream";
    make_account(s, did).await;
    let bs = DiskBlobStore::open(db.dir().join("blobs-stream"))
        .await
        .unwrap();
    // 5 MiB produced by a generator reader, never as one buffer.
    let size: u64 = 5 * 1024 * 1024;
    let mut gen = tokio::io::repeat(0xAB).take(size);
    let meta = s
        .blobs()
        .upload(&bs, did, "application/octet-stream", &mut gen, Some(size))
        .await
        .unwrap();
    assert_eq!(meta.size, size);
    let expected = blob_cid(&vec![0xAB; usize::try_from(size).unwrap()]).unwrap();
    assert_eq!(meta.cid, expected);
    assert_eq!(meta.cid.codec(), 0x55);
    let mut read = bs.get(did, &meta.cid).await.unwrap().unwrap();
    assert_eq!(read.size, size);
    let mut back = Vec::new();
    read.reader.read_to_end(&mut back).await.unwrap();
    assert_eq!(blob_cid(&back).unwrap(), expected);

    // Too large: nothing kept, no metadata.
    let mut gen = tokio::io::repeat(1).take(2000);
    let r = s
        .blobs()
        .upload(&bs, did, "x/y", &mut gen, Some(1000))
        .await;
    assert!(
        matches!(r, Err(StoreError::BlobTooLarge { limit: 1000 })),
        "{r:?}"
    );
    assert_eq!(bs.temp_count().await.unwrap(), 0);
    assert_eq!(s.blobs().stats(did).await.unwrap().0, 1);
    assert!(bs
        .get(did, &blob_cid(b"absent").unwrap())
        .await
        .unwrap()
        .is_none());
    bs.delete(did, &meta.cid).await.unwrap();
    bs.delete(did, &meta.cid).await.unwrap();
    assert!(!bs.exists(did, &meta.cid).await.unwrap());
    // Paths cannot escape the store.
    assert!(bs.exists("../etc", &meta.cid).await.is_err());
}

async fn sequencer_basics(db: &TestDb) {
    let s = &db.store;
    let q = s.sequencer();
    assert_eq!(q.current_seq().await.unwrap(), 0);
    assert_eq!(q.earliest_seq().await.unwrap(), None);
    let a = q
        .append(NewEvent::new("did:plc:x", "identity", |seq, t| {
            format!("{seq}@{t}").into_bytes()
        }))
        .await
        .unwrap();
    let bc = q
        .append_many(vec![
            NewEvent::raw("did:plc:y", "account", b"b".to_vec()),
            NewEvent::raw("did:plc:x", "commit", b"c".to_vec()),
        ])
        .await
        .unwrap();
    assert_eq!((a, bc), (1, vec![2, 3]));
    let all = q.events_after(0, 100).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    let first = String::from_utf8(all[0].event.clone()).unwrap();
    assert_eq!(
        first,
        format!("1@{}", all[0].sequenced_at),
        "encoder sees seq and time"
    );
    assert_eq!(q.events_after(1, 1).await.unwrap()[0].seq, 2);
    assert_eq!(q.get(3).await.unwrap().unwrap().event, b"c");
    assert!(q.get(4).await.unwrap().is_none());
    assert_eq!(q.current_seq().await.unwrap(), 3);
    assert_eq!(q.earliest_seq().await.unwrap(), Some(1));
    assert_eq!(q.first_seq_at_or_after(0).await.unwrap(), Some(1));
    assert_eq!(
        q.first_seq_at_or_after(now_ms() + 60_000).await.unwrap(),
        None
    );
    assert_eq!(q.invalidate_events("did:plc:x", 3).await.unwrap(), 1);
    let all = q.events_after(0, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.invalidated).collect::<Vec<_>>(),
        vec![true, false, false]
    );
    assert!(q.append_many(vec![]).await.unwrap().is_empty());
}

async fn sequencer_subscription_wakes(db: &TestDb) {
    let s = &db.store;
    let mut sub = s
        .sequencer()
        .subscribe()
        .with_poll_interval(Duration::from_secs(30));
    // Nothing yet: times out empty.
    let t0 = std::time::Instant::now();
    assert!(sub
        .next_batch(0, 10, Duration::from_millis(100))
        .await
        .unwrap()
        .is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(90));
    // A local commit wakes the subscriber well before the 30 s poll.
    let s2 = s.clone();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        s2.sequencer()
            .append(NewEvent::raw("did:plc:w", "commit", vec![1]))
            .await
            .unwrap()
    });
    let t0 = std::time::Instant::now();
    let got = sub
        .next_batch(0, 10, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "woken promptly: {:?}",
        t0.elapsed()
    );
    writer.await.unwrap();
    assert!(sub.latest_notified() >= 1);

    // Another process's commit: PostgreSQL wakes us through LISTEN/NOTIFY.
    // SQLite has no cross-process notification: the poll fallback finds it.
    let other = db.reopen().await;
    let mut sub = match s.backend() {
        Backend::Postgres => s
            .sequencer()
            .subscribe()
            .with_poll_interval(Duration::from_secs(30)),
        Backend::Sqlite => s
            .sequencer()
            .subscribe()
            .with_poll_interval(Duration::from_millis(50)),
    };
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        other
            .sequencer()
            .append(NewEvent::raw("did:plc:w", "commit", vec![2]))
            .await
            .unwrap()
    });
    let t0 = std::time::Instant::now();
    let got = sub
        .next_batch(1, 10, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].seq, 2);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "woken promptly: {:?}",
        t0.elapsed()
    );
    writer.await.unwrap();
}

async fn sequencer_retention(db: &TestDb) {
    let s = &db.store;
    for i in 0..5u8 {
        s.sequencer()
            .append(NewEvent::raw("did:plc:r", "commit", vec![i]))
            .await
            .unwrap();
    }
    assert_eq!(
        s.sequencer()
            .prune_events_older_than(DEFAULT_EVENT_RETENTION)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        s.sequencer().prune_before(now_ms() + 1000).await.unwrap(),
        5
    );
    assert!(s.sequencer().events_after(0, 10).await.unwrap().is_empty());
    // The counter survives pruning: seqs never restart.
    assert_eq!(s.sequencer().current_seq().await.unwrap(), 5);
    assert_eq!(
        s.sequencer()
            .append(NewEvent::raw("did:plc:r", "commit", vec![]))
            .await
            .unwrap(),
        6
    );
    assert_eq!(s.sequencer().earliest_seq().await.unwrap(), Some(6));
}

async fn gc_safety_net(db: &TestDb) {
    let s = &db.store;
    let did = "did:plc:gc";
    make_account(s, did).await;
    let (root, rb) = block("gc-root");
    let (keep, kb) = block("gc-keep");
    let garbage: Vec<_> = (0..50).map(|i| block(format!("garbage-{i}"))).collect();
    let mut data = RepoCommitData::new(root, rev(1));
    data.put_blocks = vec![(root, rb), (keep, kb)];
    data.put_blocks.extend(garbage.iter().cloned());
    s.repo()
        .begin_write(did)
        .await
        .unwrap()
        .commit(data)
        .await
        .unwrap();
    assert_eq!(s.repo().block_stats(did).await.unwrap().0, 52);

    let reachable: HashSet<_> = [root, keep].into_iter().collect();
    let txn = s.repo().begin_write(did).await.unwrap();
    // Refuses a set without the current root (would wipe the repo).
    let bad: HashSet<_> = [keep].into_iter().collect();
    assert!(matches!(
        txn.collect_garbage(&bad).await,
        Err(StoreError::InvalidInput(_))
    ));
    let txn = s.repo().begin_write(did).await.unwrap();
    assert_eq!(txn.collect_garbage(&reachable).await.unwrap(), 50);
    assert_eq!(s.repo().block_stats(did).await.unwrap().0, 2);
    assert!(s.repo().get_block(did, &keep).await.unwrap().is_some());
    // A repo without a root has nothing to collect.
    let txn = s.repo().begin_write("did:plc:none").await.unwrap();
    assert_eq!(txn.collect_garbage(&reachable).await.unwrap(), 0);
}

async fn oauth_devices_and_clients(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:oa").await;
    let o = s.oauth();
    let mut dev = OAuthDevice {
        device_id: "dev1".into(),
        session_id: "sess1".into(),
        user_agent: Some("UA".into()),
        ip_address: "127.0.0.1".into(),
        last_seen_at: 5,
    };
    o.upsert_device(&dev).await.unwrap();
    dev.session_id = "sess2".into();
    dev.last_seen_at = 6;
    o.upsert_device(&dev).await.unwrap();
    assert_eq!(o.get_device("dev1").await.unwrap(), Some(dev.clone()));
    o.link_account_device("did:plc:oa", "dev1").await.unwrap();
    o.link_account_device("did:plc:oa", "dev1").await.unwrap();
    assert!(matches!(
        o.link_account_device("did:plc:oa", "nodev").await,
        Err(StoreError::InvalidInput(_))
    ));
    assert_eq!(o.account_devices("did:plc:oa").await.unwrap().len(), 1);
    assert_eq!(
        o.device_accounts("dev1").await.unwrap()[0].did,
        "did:plc:oa"
    );
    o.put_authorized_client(
        "did:plc:oa",
        "https://app.example/client.json",
        r#"{"scope":"atproto"}"#,
    )
    .await
    .unwrap();
    o.put_authorized_client(
        "did:plc:oa",
        "https://app.example/client.json",
        r#"{"scope":"atproto x"}"#,
    )
    .await
    .unwrap();
    let clients = o.authorized_clients("did:plc:oa").await.unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0].data_json, r#"{"scope":"atproto x"}"#);
    assert!(o.unlink_account_device("did:plc:oa", "dev1").await.unwrap());
    assert!(!o.unlink_account_device("did:plc:oa", "dev1").await.unwrap());
    o.link_account_device("did:plc:oa", "dev1").await.unwrap();
    assert!(o.delete_device("dev1").await.unwrap());
    assert!(
        o.account_devices("did:plc:oa").await.unwrap().is_empty(),
        "links cascade"
    );
    assert!(o.get_device("dev1").await.unwrap().is_none());
}

async fn oauth_requests_and_codes(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:oq").await;
    let o = s.oauth();
    let req = AuthorizationRequest {
        id: "req-1".into(),
        did: None,
        device_id: None,
        client_id: "client".into(),
        client_auth_json: Some(r#"{"method":"none"}"#.into()),
        parameters_json: r#"{"scope":"atproto"}"#.into(),
        expires_at: 1000,
        code: None,
    };
    o.create_request(&req).await.unwrap();
    assert!(matches!(
        o.create_request(&req).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(o.get_request("req-1").await.unwrap(), Some(req.clone()));
    assert!(o
        .authorize_request("req-1", "did:plc:oq", None, "code-1", 2000)
        .await
        .unwrap());
    assert!(!o
        .authorize_request("nope", "did:plc:oq", None, "code-x", 2000)
        .await
        .unwrap());
    // Codes are unique.
    let mut req2 = req.clone();
    req2.id = "req-2".into();
    o.create_request(&req2).await.unwrap();
    assert!(matches!(
        o.authorize_request("req-2", "did:plc:oq", None, "code-1", 2000)
            .await,
        Err(StoreError::Duplicate(_))
    ));
    let got = o.consume_code("code-1", 1500).await.unwrap().unwrap();
    assert_eq!(
        (got.did.as_deref(), got.expires_at),
        (Some("did:plc:oq"), 2000)
    );
    assert!(
        o.consume_code("code-1", 1500).await.unwrap().is_none(),
        "single use"
    );
    // Expired codes are consumed but not honoured.
    o.authorize_request("req-2", "did:plc:oq", None, "code-2", 2000)
        .await
        .unwrap();
    assert!(o.consume_code("code-2", 2000).await.unwrap().is_none());
    assert!(o.get_request("req-2").await.unwrap().is_none());
    let mut req3 = req.clone();
    req3.id = "req-3".into();
    o.create_request(&req3).await.unwrap();
    assert_eq!(o.delete_expired_requests(999).await.unwrap(), 0);
    assert_eq!(o.delete_expired_requests(1000).await.unwrap(), 1);
    let mut req4 = req.clone();
    req4.id = "req-4".into();
    o.create_request(&req4).await.unwrap();
    assert!(o.delete_request("req-4").await.unwrap());
}

async fn oauth_tokens_rotation(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:ot").await;
    let o = s.oauth();
    let tok = OAuthToken {
        token_id: "tok-1".into(),
        did: "did:plc:ot".into(),
        client_id: "client".into(),
        client_auth_json: "{}".into(),
        device_id: None,
        parameters_json: "{}".into(),
        details_json: None,
        code: Some("code-1".into()),
        current_refresh_token: Some("ref-1".into()),
        scope: Some("atproto".into()),
        created_at: 1,
        updated_at: 1,
        expires_at: 100,
    };
    o.create_token(&tok).await.unwrap();
    assert!(matches!(
        o.create_token(&tok).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(o.get_token("tok-1").await.unwrap(), Some(tok.clone()));
    assert_eq!(
        o.token_by_code("code-1").await.unwrap().unwrap().token_id,
        "tok-1"
    );
    assert_eq!(
        o.token_by_refresh("ref-1").await.unwrap().unwrap().token_id,
        "tok-1"
    );

    assert!(o
        .rotate_refresh("tok-1", "ref-1", "ref-2", 200, Some("{\"d\":1}"))
        .await
        .unwrap());
    assert!(
        !o.rotate_refresh("tok-1", "ref-1", "ref-3", 300, None)
            .await
            .unwrap(),
        "stale refresh"
    );
    let t = o.get_token("tok-1").await.unwrap().unwrap();
    assert_eq!(t.current_refresh_token.as_deref(), Some("ref-2"));
    assert_eq!(
        (t.expires_at, t.details_json.as_deref()),
        (200, Some("{\"d\":1}"))
    );
    assert!(o.token_by_refresh("ref-1").await.unwrap().is_none());
    assert_eq!(
        o.used_refresh_token("ref-1").await.unwrap().as_deref(),
        Some("tok-1")
    );
    assert_eq!(o.used_refresh_token("ref-2").await.unwrap(), None);

    // Concurrent rotations of the same refresh token: exactly one wins.
    let other = db.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            st.oauth()
                .rotate_refresh("tok-1", "ref-2", &format!("new-{i}"), 300, None)
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(o.tokens_for_account("did:plc:ot").await.unwrap().len(), 1);
    assert!(o.delete_token("tok-1").await.unwrap());
    assert_eq!(
        o.used_refresh_token("ref-1").await.unwrap(),
        None,
        "used tokens cascade"
    );
    assert!(!o.delete_token("tok-1").await.unwrap());
}

async fn oauth_replay(db: &TestDb) {
    let s = &db.store;
    let o = s.oauth();
    assert!(o.replay_unique("dpop-jti", "j1", 100, 10).await.unwrap());
    assert!(
        !o.replay_unique("dpop-jti", "j1", 100, 20).await.unwrap(),
        "replay"
    );
    assert!(o.replay_unique("other-ns", "j1", 100, 20).await.unwrap());
    // After expiry the key may be used again.
    assert!(o.replay_unique("dpop-jti", "j1", 300, 100).await.unwrap());
    assert!(!o.replay_unique("dpop-jti", "j1", 300, 200).await.unwrap());
    // Concurrent first uses: exactly one wins, across processes.
    let other = db.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            st.oauth().replay_unique("n", "race", 1000, 1).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(o.purge_replay(150).await.unwrap(), 1);
}

async fn notification_queue(db: &TestDb) {
    let s = &db.store;
    let n = s.notifications();
    let mk = |r: &str, after: i64| NewNotification {
        channel: "email".into(),
        recipient: r.into(),
        kind: "confirm_email".into(),
        payload: r#"{"token":"x"}"#.into(),
        send_after: after,
    };
    let a = n.enqueue(&mk("a@x.com", 0)).await.unwrap();
    let b = n.enqueue(&mk("b@x.com", 0)).await.unwrap();
    let later = n.enqueue(&mk("a@x.com", 5000)).await.unwrap();
    assert!(a < b && b < later);
    let claimed = n.claim_due(100, 10, 1000).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a, b]);
    assert!(claimed
        .iter()
        .all(|c| c.status == NotificationStatus::Sending && c.attempts == 1));
    // Leased: not claimable again until the lease ends.
    assert!(n.claim_due(200, 10, 1000).await.unwrap().is_empty());
    assert!(n.mark_sent(a, 300).await.unwrap());
    assert!(!n.mark_sent(a, 300).await.unwrap());
    assert!(n.mark_failed(b, "smtp down", Some(2000)).await.unwrap());
    let gb = n.get(b).await.unwrap().unwrap();
    assert_eq!(
        (gb.status, gb.last_error.as_deref()),
        (NotificationStatus::Pending, Some("smtp down"))
    );
    // A worker that died: its lease expires and the entry is claimed again.
    let again = n.claim_due(2000, 10, 1000).await.unwrap();
    assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b]);
    assert_eq!(again[0].attempts, 2);
    let again = n.claim_due(3001, 10, 1000).await.unwrap();
    assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), vec![b]);
    assert!(n.mark_failed(b, "bounced", None).await.unwrap());
    assert_eq!(
        n.get(b).await.unwrap().unwrap().status,
        NotificationStatus::Failed
    );
    let hist = n.history("a@x.com", 10).await.unwrap();
    assert_eq!(
        hist.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![later, a]
    );
    assert_eq!(hist[1].sent_at, Some(300));

    // Concurrent claimers (two processes) get disjoint batches.
    let other = db.reopen().await;
    for i in 0..40 {
        n.enqueue(&mk(&format!("bulk{i}"), 0)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..4 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            st.notifications().claim_due(10_000, 7, 60_000).await
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for c in t.await.unwrap().unwrap() {
            assert!(seen.insert(c.id), "claimed twice: {}", c.id);
        }
    }
    assert_eq!(seen.len(), 28);
    assert_eq!(n.prune_finished_before(now_ms() + 1000).await.unwrap(), 2);
}

async fn reports_crawlers_kv(db: &TestDb) {
    let s = &db.store;
    let m = s.misc();
    let r = m
        .create_report(&NewReport {
            reason_type: "com.atproto.moderation.defs#reasonSpam".into(),
            reason: Some("spam".into()),
            subject_json: r#"{"did":"did:plc:x"}"#.into(),
            reported_by: "did:plc:y".into(),
        })
        .await
        .unwrap();
    assert_eq!(m.get_report(r.id).await.unwrap(), Some(r.clone()));
    assert!(m.get_report(r.id + 1).await.unwrap().is_none());

    assert_eq!(m.crawler_last_notified("bsky.network").await.unwrap(), None);
    assert!(m
        .claim_crawler_notify("bsky.network", 10_000, 1000)
        .await
        .unwrap());
    assert!(!m
        .claim_crawler_notify("bsky.network", 10_500, 1000)
        .await
        .unwrap());
    assert!(m
        .claim_crawler_notify("bsky.network", 11_000, 1000)
        .await
        .unwrap());
    assert_eq!(
        m.crawler_last_notified("bsky.network").await.unwrap(),
        Some(11_000)
    );
    let other = db.reopen().await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let st = if i % 2 == 0 { s.clone() } else { other.clone() };
        tasks.push(tokio::spawn(async move {
            st.misc().claim_crawler_notify("relay", 50_000, 1000).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "one process notifies");

    assert_eq!(m.kv_get("k").await.unwrap(), None);
    m.kv_put("k", b"v1").await.unwrap();
    m.kv_put("k", b"v2").await.unwrap();
    assert_eq!(m.kv_get("k").await.unwrap(), Some(b"v2".to_vec()));
    assert_eq!(
        m.kv_get_or_insert("secret", b"first").await.unwrap(),
        b"first"
    );
    assert_eq!(
        other
            .misc()
            .kv_get_or_insert("secret", b"second")
            .await
            .unwrap(),
        b"first"
    );
}

async fn list_repos_pages(db: &TestDb) {
    let s = &db.store;
    for i in 0..5 {
        let did = format!("did:plc:list{i}");
        make_account(s, &did).await;
        common::counter_commit(s, &did).await.unwrap();
    }
    make_account(s, "did:plc:norepo").await;
    s.accounts()
        .set_status(
            "did:plc:list3",
            AccountStatus::Takendown,
            Some("x"),
            None,
            vec![],
        )
        .await
        .unwrap();
    let p1 = s.repo().list_repos(None, 3).await.unwrap();
    assert_eq!(
        p1.iter().map(|r| r.did.as_str()).collect::<Vec<_>>(),
        vec!["did:plc:list0", "did:plc:list1", "did:plc:list2"]
    );
    let p2 = s.repo().list_repos(Some(&p1[2].did), 3).await.unwrap();
    assert_eq!(p2.len(), 2);
    assert_eq!(p2[0].status, AccountStatus::Takendown);
    assert_eq!(p2[1].rev, rev(1));
}

async fn admin_invite_code_listing(db: &TestDb) {
    let s = &db.store;
    make_account(s, "did:plc:lister").await;
    let code = |c: &str| NewInviteCode {
        code: c.into(),
        available_uses: 5,
        for_account: "did:plc:lister".into(),
        created_by: "admin".into(),
    };
    s.accounts()
        .create_invite_codes(&[code("old-a"), code("old-b")])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.accounts()
        .create_invite_codes(&[code("new-c")])
        .await
        .unwrap();
    // Two uses of old-a, one of new-c.
    for (code, did) in [
        ("old-a", "did:plc:user1"),
        ("old-a", "did:plc:user2"),
        ("new-c", "did:plc:x"),
    ] {
        let mut a = NewAccount::new(did, format!("{}.test", did.replace(':', "-")));
        a.invite_code = Some(code.into());
        s.accounts().create(a, None).await.unwrap();
    }
    let names = |v: &[InviteCode]| v.iter().map(|c| c.code.clone()).collect::<Vec<_>>();
    let recent = s
        .accounts()
        .list_invite_codes(InviteCodeSort::Recent, None, 10)
        .await
        .unwrap();
    assert_eq!(names(&recent), ["new-c", "old-b", "old-a"]);
    assert_eq!(recent[2].uses.len(), 2);
    // Paging by two: the cursor is the last row's key and code.
    let page1 = s
        .accounts()
        .list_invite_codes(InviteCodeSort::Recent, None, 2)
        .await
        .unwrap();
    assert_eq!(names(&page1), ["new-c", "old-b"]);
    let last = &page1[1];
    let page2 = s
        .accounts()
        .list_invite_codes(
            InviteCodeSort::Recent,
            Some(&InviteCodeCursor {
                key: last.created_at,
                code: last.code.clone(),
            }),
            2,
        )
        .await
        .unwrap();
    assert_eq!(names(&page2), ["old-a"]);
    let usage = s
        .accounts()
        .list_invite_codes(InviteCodeSort::Usage, None, 10)
        .await
        .unwrap();
    assert_eq!(names(&usage), ["old-a", "new-c", "old-b"]);
    let after_first = s
        .accounts()
        .list_invite_codes(
            InviteCodeSort::Usage,
            Some(&InviteCodeCursor {
                key: 2,
                code: "old-a".into(),
            }),
            10,
        )
        .await
        .unwrap();
    assert_eq!(names(&after_first), ["new-c", "old-b"]);
    // The code an account signed up with.
    let used = s.accounts().invite_code_used_by("did:plc:x").await.unwrap();
    assert_eq!(used.map(|c| c.code), Some("new-c".to_owned()));
    assert_eq!(
        s.accounts()
            .invite_code_used_by("did:plc:lister")
            .await
            .unwrap(),
        None
    );
}

async fn admin_account_search(db: &TestDb) {
    let s = &db.store;
    for (did, handle, email) in [
        ("did:plc:s1", "alice.test", "alice@mail.example"),
        ("did:plc:s2", "bob.test", "al_ice@mail.example"),
        ("did:plc:s3", "alfred.test", "fred@mail.example"),
        ("did:plc:s4", "carol.test", "carol@mail.example"),
    ] {
        let mut a = NewAccount::new(did, handle);
        a.email = Some(email.into());
        s.accounts().create(a, None).await.unwrap();
    }
    let dids = |v: Vec<Account>| v.into_iter().map(|a| a.did).collect::<Vec<_>>();
    // Prefix of an email or of a handle, case-insensitive.
    assert_eq!(
        dids(s.accounts().search(Some("AL"), None, 10).await.unwrap()),
        ["did:plc:s1", "did:plc:s2", "did:plc:s3"]
    );
    // `_` and `%` are literal.
    assert_eq!(
        dids(s.accounts().search(Some("al_"), None, 10).await.unwrap()),
        ["did:plc:s2"]
    );
    assert!(s
        .accounts()
        .search(Some("%"), None, 10)
        .await
        .unwrap()
        .is_empty());
    // Paging by DID.
    assert_eq!(
        dids(
            s.accounts()
                .search(Some("al"), Some("did:plc:s1"), 1)
                .await
                .unwrap()
        ),
        ["did:plc:s2"]
    );
    assert_eq!(
        dids(s.accounts().search(None, None, 10).await.unwrap()).len(),
        4
    );
    // Deleted accounts are not found.
    s.accounts().delete("did:plc:s4", vec![]).await.unwrap();
    assert!(s
        .accounts()
        .search(Some("carol"), None, 10)
        .await
        .unwrap()
        .is_empty());
}
