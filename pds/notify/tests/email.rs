//! Email delivery against a real SMTP server (aiosmtpd on loopback): every
//! message kind through the queue worker, SMTP AUTH from the URL, SMTPS and
//! STARTTLS with a private CA, sendmail, and error classification.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{make_certs, support_dir, SinkOptions, SmtpSink, TestDb};
use pds_notify::{
    Channel, EmailConfig, EmailSender, Message, NotificationStatus, RenderContext, Rendered,
    SendError, Sender, Senders, Worker, WorkerConfig,
};
use pds_testkit::both_backends;

const FROM: &str = "PDS <noreply@pds.example>";

fn fast_config() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_millis(50),
        send_timeout: Duration::from_secs(20),
        lease: Duration::from_secs(30),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        render: RenderContext {
            service_name: "pds.example".into(),
        },
        ..WorkerConfig::default()
    }
}

fn email_senders(config: &EmailConfig) -> Senders {
    Senders::new().with(Arc::new(EmailSender::new(config).expect("email sender")))
}

fn every_kind(tag: &str) -> Vec<Message> {
    vec![
        Message::ConfirmEmail {
            token: format!("CONF-{tag}"),
        },
        Message::ResetPassword {
            identifier: "alice.pds.example".into(),
            token: format!("RESET-{tag}"),
        },
        Message::UpdateEmail {
            token: format!("UPD-{tag}"),
        },
        Message::DeleteAccount {
            token: format!("DEL-{tag}"),
        },
        Message::PlcOperation {
            token: format!("PLC-{tag}"),
        },
        Message::Welcome {
            handle: format!("alice-{tag}.pds.example"),
        },
        Message::Test {
            text: format!("probe {tag}"),
        },
    ]
}

/// The value that must show up in the message's bodies.
fn marker(m: &Message) -> String {
    match m {
        Message::Welcome { handle } => handle.clone(),
        Message::Test { text } => text.clone(),
        other => other.token().expect("token").to_owned(),
    }
}

async fn smtp_with_auth_delivers_every_kind(db: &TestDb) {
    // A password needing percent-encoding in the URL.
    let sink = SmtpSink::start(SinkOptions {
        auth: Some(("pds-mailer".into(), "p@ss:w/rd".into())),
        ..SinkOptions::default()
    })
    .await;
    let url = format!("smtp://pds-mailer:p%40ss%3Aw%2Frd@127.0.0.1:{}", sink.port);
    let worker = Worker::new(
        db.store.clone(),
        email_senders(&EmailConfig::smtp(url, FROM)),
        fast_config(),
    )
    .expect("worker");
    let notifier = worker.notifier();
    let handle = worker.spawn();

    let msgs = every_kind("k1");
    let mut ids = Vec::new();
    for m in &msgs {
        ids.push(
            notifier
                .enqueue(Channel::Email, "alice@example.com", m)
                .await
                .expect("enqueue"),
        );
    }
    for id in &ids {
        let n = common::wait_status(&db.store, *id, NotificationStatus::Sent).await;
        assert_eq!(n.attempts, 1);
        assert!(n.sent_at.is_some());
        assert_eq!(n.last_error, None);
    }
    handle.shutdown().await;

    let mail = sink.wait_for(msgs.len()).await;
    assert_eq!(
        mail.len(),
        msgs.len(),
        "exactly one message per notification"
    );
    let ctx = RenderContext {
        service_name: "pds.example".into(),
    };
    for m in &msgs {
        let want = m.render(&ctx);
        let mark = marker(m);
        let got: Vec<_> = mail
            .iter()
            .filter(|x| x.text.as_deref().is_some_and(|t| t.contains(&mark)))
            .collect();
        assert_eq!(got.len(), 1, "{mark}: {mail:#?}");
        let got = got[0];
        assert_eq!(got.subject, want.subject);
        assert_eq!(got.to, "alice@example.com");
        assert_eq!(got.from, FROM);
        assert_eq!(got.mail_from, "noreply@pds.example");
        assert_eq!(got.rcpt_tos, ["alice@example.com"]);
        assert_eq!(got.login.as_deref(), Some("pds-mailer"));
        assert_eq!(got.content_type, "multipart/alternative");
        assert!(
            got.html.as_deref().is_some_and(|h| h.contains(&mark)),
            "{mark} not in the HTML part: {:?}",
            got.html
        );
        let text = got.text.as_deref().map(|t| t.replace("\r\n", "\n"));
        assert_eq!(
            text.as_deref().map(str::trim_end),
            Some(want.text.trim_end())
        );
    }

    let history = notifier
        .history("alice@example.com", 100)
        .await
        .expect("history");
    assert_eq!(history.len(), msgs.len());
    assert!(history
        .iter()
        .all(|n| n.status == NotificationStatus::Sent && n.channel == "email"));
}

both_backends!(smtp_with_auth_delivers_every_kind);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_smtp_password_fails_for_good() {
    let db = TestDb::sqlite().await;
    let sink = SmtpSink::start(SinkOptions {
        auth: Some(("user".into(), "right".into())),
        ..SinkOptions::default()
    })
    .await;
    let worker = Worker::new(
        db.store.clone(),
        email_senders(&EmailConfig::smtp(
            format!("smtp://user:wrong@127.0.0.1:{}", sink.port),
            FROM,
        )),
        fast_config(),
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(
            Channel::Email,
            "bob@example.com",
            &Message::ConfirmEmail { token: "X".into() },
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
    assert!(
        n.last_error.as_deref().is_some_and(|e| e.contains("535")),
        "{:?}",
        n.last_error
    );
    // Unauthenticated mail is refused by the sink, so nothing arrived.
    assert_eq!(sink.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_is_retried() {
    let db = TestDb::sqlite().await;
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let worker = Worker::new(
        db.store.clone(),
        email_senders(&EmailConfig::smtp(
            format!("smtp://127.0.0.1:{port}?tls=none"),
            FROM,
        )),
        WorkerConfig {
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(60),
            ..fast_config()
        },
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(
            Channel::Email,
            "bob@example.com",
            &Message::UpdateEmail { token: "Y".into() },
        )
        .await
        .expect("enqueue");
    let before = pds_notify::now_ms();
    let report = worker.run_once().await.expect("run");
    assert_eq!((report.claimed, report.retried), (1, 1));
    let n = db
        .store
        .notifications()
        .get(id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(n.status, NotificationStatus::Pending);
    assert_eq!(n.attempts, 1);
    assert!(n.last_error.is_some());
    // Backed off by about a minute: not due now.
    assert!(n.next_attempt_at >= before + 59_000, "{n:?}");
    assert_eq!(worker.run_once().await.expect("run").claimed, 0);
}

fn rendered(token: &str) -> Rendered {
    Message::ConfirmEmail {
        token: token.into(),
    }
    .render(&RenderContext::default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtps_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = make_certs(dir.path());
    let sink = SmtpSink::start(SinkOptions {
        tls: Some((cert, key)),
        auth: Some(("u".into(), "p".into())),
        ..SinkOptions::default()
    })
    .await;
    let url = format!("smtps://u:p@127.0.0.1:{}", sink.port);

    // Without the CA the server's certificate is not trusted.
    let untrusted = EmailSender::new(&EmailConfig::smtp(url.clone(), FROM)).expect("sender");
    let err = untrusted
        .send("carol@example.com", &rendered("NOPE"))
        .await
        .expect_err("an untrusted certificate must fail");
    assert!(matches!(err, SendError::Smtp(_)), "{err:?}");
    assert!(!err.is_permanent(), "{err}");

    let sender = EmailSender::new(&EmailConfig {
        root_certificates_pem: vec![ca],
        ..EmailConfig::smtp(url, FROM)
    })
    .expect("sender");
    assert!(sender.test_connection().await.expect("connect"));
    sender
        .send("carol@example.com", &rendered("TLS-TOKEN-1"))
        .await
        .expect("send over SMTPS");
    let mail = sink.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert!(mail[0].tls);
    assert_eq!(mail[0].login.as_deref(), Some("u"));
    assert_eq!(mail[0].to, "carol@example.com");
    assert_eq!(mail[0].subject, "Email Confirmation");
    assert!(mail[0]
        .text
        .as_deref()
        .is_some_and(|t| t.contains("TLS-TOKEN-1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_opportunistic_by_default_and_required() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = make_certs(dir.path());
    // The sink refuses MAIL before STARTTLS.
    let sink = SmtpSink::start(SinkOptions {
        starttls: Some((cert, key)),
        ..SinkOptions::default()
    })
    .await;
    for (i, url) in [
        format!("smtp://127.0.0.1:{}", sink.port),
        format!("smtp://127.0.0.1:{}?tls=required", sink.port),
    ]
    .into_iter()
    .enumerate()
    {
        let sender = EmailSender::new(&EmailConfig {
            root_certificates_pem: vec![ca.clone()],
            ..EmailConfig::smtp(url, FROM)
        })
        .expect("sender");
        sender
            .send("dave@example.com", &rendered(&format!("STARTTLS-{i}")))
            .await
            .expect("send with STARTTLS");
    }
    // Plain text is refused by this server.
    let plain = EmailSender::new(&EmailConfig::smtp(
        format!("smtp://127.0.0.1:{}?tls=none", sink.port),
        FROM,
    ))
    .expect("sender");
    let err = plain
        .send("dave@example.com", &rendered("PLAIN"))
        .await
        .expect_err("the server requires STARTTLS");
    assert!(err.is_permanent(), "a 5xx refusal is permanent: {err}");

    let mail = sink.wait_for(2).await;
    assert_eq!(mail.len(), 2);
    for (i, m) in mail.iter().enumerate() {
        assert!(m.tls, "message {i} was not sent over TLS");
        assert!(m
            .text
            .as_deref()
            .is_some_and(|t| t.contains(&format!("STARTTLS-{i}"))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendmail_program() {
    let db = TestDb::sqlite().await;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    // A sendmail-compatible program that submits to the sink.
    let program = db.dir().join("sendmail");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nexec python3 {} --port {} \"$@\"\n",
            support_dir().join("sendmail_relay.py").display(),
            sink.port
        ),
    )
    .expect("write wrapper");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let worker = Worker::new(
        db.store.clone(),
        email_senders(&EmailConfig::sendmail(&program, FROM)),
        fast_config(),
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(
            Channel::Email,
            "erin@example.com",
            &Message::ResetPassword {
                identifier: "erin.test".into(),
                token: "SENDMAIL-TOKEN".into(),
            },
        )
        .await
        .expect("enqueue");
    let report = worker.run_once().await.expect("run");
    assert_eq!(report.sent, 1, "{report:?}");
    let n = db
        .store
        .notifications()
        .get(id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(n.status, NotificationStatus::Sent);

    let mail = sink.wait_for(1).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].mail_from, "noreply@pds.example");
    assert_eq!(mail[0].rcpt_tos, ["erin@example.com"]);
    assert_eq!(mail[0].to, "erin@example.com");
    assert_eq!(mail[0].subject, "Password Reset Requested");
    assert!(mail[0]
        .text
        .as_deref()
        .is_some_and(|t| t.contains("SENDMAIL-TOKEN") && t.contains("erin.test")));

    // A failing program is a retryable error.
    let failing = EmailSender::new(&EmailConfig::sendmail("/bin/false", FROM)).expect("sender");
    let err = failing
        .send("erin@example.com", &rendered("Z"))
        .await
        .expect_err("/bin/false fails");
    assert!(matches!(err, SendError::Sendmail(_)));
    assert!(!err.is_permanent());
}
