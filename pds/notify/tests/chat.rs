//! Discord, Telegram and Signal senders against local HTTP servers (axum)
//! standing in for the APIs: request paths, auth headers, JSON bodies, and
//! how error answers are classified and retried by the worker.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::{MockApi, TestDb};
use pds_notify::{
    Channel, DiscordConfig, DiscordSender, Message, NotificationStatus, RenderContext, SendError,
    Sender, Senders, SignalConfig, SignalSender, TelegramConfig, TelegramSender, Worker,
    WorkerConfig,
};
use pds_testkit::both_backends;
use serde_json::json;

fn fast_config() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_millis(50),
        send_timeout: Duration::from_secs(10),
        lease: Duration::from_secs(20),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
        render: RenderContext {
            service_name: "pds.example".into(),
        },
        ..WorkerConfig::default()
    }
}

/// Discord's answers: a DM channel for the user, then the created message.
fn discord_api(_: usize, r: &common::Recorded) -> (StatusCode, serde_json::Value) {
    match r.path.as_str() {
        "/api/v10/users/@me/channels" => (
            StatusCode::OK,
            json!({ "id": "998877", "type": 1, "recipients": [{ "id": r.json["recipient_id"] }] }),
        ),
        "/api/v10/channels/998877/messages" => (
            StatusCode::OK,
            json!({ "id": "1", "channel_id": "998877", "content": r.json["content"] }),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            json!({ "message": "404: Not Found", "code": 0 }),
        ),
    }
}

async fn discord_dm(db: &TestDb) {
    let api = MockApi::start(discord_api).await;
    let sender = DiscordSender::new(&DiscordConfig {
        api_url: format!("{}/api/v10/", api.base),
        ..DiscordConfig::new("discord-bot-token")
    })
    .expect("sender");
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(Arc::new(sender)),
        fast_config(),
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(
            Channel::Discord,
            "123456789012345678",
            &Message::PlcOperation {
                token: "PLC-DISCORD-7".into(),
            },
        )
        .await
        .expect("enqueue");
    let report = worker.run_once().await.expect("run");
    assert_eq!(report.sent, 1, "{report:?}");
    let n = common::wait_status(&db.store, id, NotificationStatus::Sent).await;
    assert_eq!(n.attempts, 1);

    let reqs = api.requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    for r in &reqs {
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.header("authorization"), Some("Bot discord-bot-token"));
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    assert_eq!(reqs[0].path, "/api/v10/users/@me/channels");
    assert_eq!(
        reqs[0].json,
        json!({ "recipient_id": "123456789012345678" })
    );
    assert_eq!(reqs[1].path, "/api/v10/channels/998877/messages");
    let content = reqs[1].json["content"].as_str().expect("content");
    assert!(content.starts_with("PLC Update Operation Requested\n\n"));
    assert!(content.contains("PLC-DISCORD-7"));
    assert_eq!(reqs[1].json.as_object().map(|o| o.len()), Some(1));
}

async fn telegram_message(db: &TestDb) {
    let api = MockApi::start(|_, r| {
        if r.path == "/bot4242:tg-secret/sendMessage" {
            (
                StatusCode::OK,
                json!({ "ok": true, "result": { "message_id": 5, "chat": { "id": r.json["chat_id"] }, "text": r.json["text"] } }),
            )
        } else {
            (StatusCode::NOT_FOUND, json!({ "ok": false, "error_code": 404, "description": "Not Found" }))
        }
    })
    .await;
    let sender = TelegramSender::new(&TelegramConfig {
        api_url: api.base.clone(),
        ..TelegramConfig::new("4242:tg-secret")
    })
    .expect("sender");
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(Arc::new(sender)),
        fast_config(),
    )
    .expect("worker");
    let notifier = worker.notifier();
    let a = notifier
        .enqueue(
            Channel::Telegram,
            "-1001234567890",
            &Message::ResetPassword {
                identifier: "tg.user".into(),
                token: "RESET-TG-1".into(),
            },
        )
        .await
        .expect("enqueue");
    let b = notifier
        .enqueue(
            Channel::Telegram,
            "@pds_alerts",
            &Message::Test {
                text: "channel probe".into(),
            },
        )
        .await
        .expect("enqueue");
    let report = worker.run_once().await.expect("run");
    assert_eq!(report.sent, 2, "{report:?}");
    common::wait_status(&db.store, a, NotificationStatus::Sent).await;
    common::wait_status(&db.store, b, NotificationStatus::Sent).await;

    let mut reqs = api.requests();
    assert_eq!(reqs.len(), 2);
    reqs.sort_by_key(|r| r.json["chat_id"].is_string());
    for r in &reqs {
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.path, "/bot4242:tg-secret/sendMessage");
        assert_eq!(r.header("authorization"), None);
    }
    // Numeric chat ids are sent as numbers, @usernames as strings.
    assert_eq!(reqs[0].json["chat_id"], json!(-1001234567890_i64));
    let text = reqs[0].json["text"].as_str().expect("text");
    assert!(text.starts_with("Password Reset Requested"));
    assert!(text.contains("RESET-TG-1") && text.contains("tg.user"));
    assert_eq!(reqs[1].json["chat_id"], json!("@pds_alerts"));
    assert!(reqs[1].json["text"]
        .as_str()
        .is_some_and(|t| t.contains("channel probe")));
}

async fn signal_message(db: &TestDb) {
    let api = MockApi::start(|_, r| {
        if r.path == "/v2/send" {
            (StatusCode::CREATED, json!({ "timestamp": "1700000000000" }))
        } else {
            (StatusCode::NOT_FOUND, json!({ "error": "not found" }))
        }
    })
    .await;
    let sender =
        SignalSender::new(&SignalConfig::new(api.base.clone(), "+15550100")).expect("sender");
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(Arc::new(sender)),
        fast_config(),
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(
            Channel::Signal,
            "+15550199",
            &Message::DeleteAccount {
                token: "DEL-SIG-3".into(),
            },
        )
        .await
        .expect("enqueue");
    assert_eq!(worker.run_once().await.expect("run").sent, 1);
    common::wait_status(&db.store, id, NotificationStatus::Sent).await;

    let reqs = api.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, Method::POST);
    assert_eq!(reqs[0].path, "/v2/send");
    assert_eq!(reqs[0].json["number"], json!("+15550100"));
    assert_eq!(reqs[0].json["recipients"], json!(["+15550199"]));
    let text = reqs[0].json["message"].as_str().expect("message");
    assert!(text.starts_with("Account Deletion Requested"));
    assert!(text.contains("DEL-SIG-3"));
}

both_backends!(discord_dm, telegram_message, signal_message);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_delivered() {
    let db = TestDb::sqlite().await;
    // Discord answers 500 twice, then works.
    let api = MockApi::start(|i, r| {
        if i < 2 {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "message": "oops" }),
            )
        } else {
            discord_api(i, r)
        }
    })
    .await;
    let sender = DiscordSender::new(&DiscordConfig {
        api_url: format!("{}/api/v10", api.base),
        ..DiscordConfig::new("t")
    })
    .expect("sender");
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(Arc::new(sender)),
        fast_config(),
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(
            Channel::Discord,
            "42",
            &Message::ConfirmEmail {
                token: "RETRY-D".into(),
            },
        )
        .await
        .expect("enqueue");
    let handle = worker.spawn();
    let n = common::wait_status(&db.store, id, NotificationStatus::Sent).await;
    handle.shutdown().await;
    assert_eq!(n.attempts, 3);
    let paths: Vec<String> = api.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/api/v10/users/@me/channels",
            "/api/v10/users/@me/channels",
            "/api/v10/users/@me/channels",
            "/api/v10/channels/998877/messages",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_are_classified() {
    let rendered = Message::Test { text: "x".into() }.render(&RenderContext::default());

    // Telegram: a 400 (e.g. chat not found) is permanent, and the error
    // never carries the bot token (which is part of the URL).
    let tg = MockApi::start(|_, _| {
        (
            StatusCode::BAD_REQUEST,
            json!({ "ok": false, "error_code": 400, "description": "Bad Request: chat not found" }),
        )
    })
    .await;
    let sender = TelegramSender::new(&TelegramConfig {
        api_url: tg.base.clone(),
        ..TelegramConfig::new("77:very-secret")
    })
    .expect("sender");
    let err = sender.send("12345", &rendered).await.expect_err("400");
    assert!(
        matches!(err, SendError::Status { status: 400, .. }),
        "{err:?}"
    );
    assert!(err.is_permanent());
    assert!(err.to_string().contains("chat not found"));
    assert!(!err.to_string().contains("very-secret"));
    // 200 with ok=false is not success.
    let tg_not_ok = MockApi::start(|_, _| (StatusCode::OK, json!({ "ok": false }))).await;
    let sender = TelegramSender::new(&TelegramConfig {
        api_url: tg_not_ok.base.clone(),
        ..TelegramConfig::new("77:very-secret")
    })
    .expect("sender");
    let err = sender.send("12345", &rendered).await.expect_err("ok=false");
    assert!(matches!(err, SendError::BadResponse { .. }), "{err:?}");
    // Bad recipients never reach the API.
    let err = sender
        .send("not a chat", &rendered)
        .await
        .expect_err("bad id");
    assert!(matches!(err, SendError::InvalidRecipient { .. }));
    assert!(err.is_permanent());
    assert_eq!(tg_not_ok.requests().len(), 1);

    // Signal: 429 is worth retrying.
    let sig = MockApi::start(|_, _| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({ "error": "rate limited" }),
        )
    })
    .await;
    let sender = SignalSender::new(&SignalConfig::new(sig.base.clone(), "+1555")).expect("sender");
    let err = sender.send("+1666", &rendered).await.expect_err("429");
    assert!(
        matches!(err, SendError::Status { status: 429, .. }),
        "{err:?}"
    );
    assert!(!err.is_permanent());

    // Discord: a DM channel answer without an id is an unexpected answer;
    // a non-numeric user id is rejected before any request.
    let dc = MockApi::start(|_, _| (StatusCode::OK, json!({ "type": 1 }))).await;
    let sender = DiscordSender::new(&DiscordConfig {
        api_url: dc.base.clone(),
        ..DiscordConfig::new("t")
    })
    .expect("sender");
    let err = sender.send("42", &rendered).await.expect_err("no id");
    assert!(matches!(err, SendError::BadResponse { .. }), "{err:?}");
    assert!(matches!(
        sender.send("../../x", &rendered).await,
        Err(SendError::InvalidRecipient { .. })
    ));
    assert_eq!(dc.requests().len(), 1);

    // Nothing listening: a transport error, retried.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let sender = SignalSender::new(&SignalConfig::new(format!("http://127.0.0.1:{port}"), "+1"))
        .expect("sender");
    let err = sender.send("+2", &rendered).await.expect_err("refused");
    assert!(matches!(err, SendError::Http { .. }), "{err:?}");
    assert!(!err.is_permanent());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_http_error_fails_without_retry() {
    let db = TestDb::sqlite().await;
    let api = MockApi::start(|_, _| {
        (
            StatusCode::FORBIDDEN,
            json!({ "message": "Cannot send messages to this user", "code": 50007 }),
        )
    })
    .await;
    let sender = DiscordSender::new(&DiscordConfig {
        api_url: api.base.clone(),
        ..DiscordConfig::new("t")
    })
    .expect("sender");
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(Arc::new(sender)),
        fast_config(),
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(
            Channel::Discord,
            "42",
            &Message::Welcome { handle: "h".into() },
        )
        .await
        .expect("enqueue");
    let report = worker.run_once().await.expect("run");
    assert_eq!((report.claimed, report.failed), (1, 1));
    let n = db
        .store
        .notifications()
        .get(id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(n.status, NotificationStatus::Failed);
    assert_eq!(n.attempts, 1);
    assert!(n.last_error.as_deref().is_some_and(|e| e.contains("50007")));
    assert_eq!(api.requests().len(), 1);
}
