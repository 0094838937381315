//! Queue semantics on SQLite and PostgreSQL: retries with exponential
//! backoff, the attempt limit, permanent failures, stop and restart (the
//! queue is in the database), a crashed worker's lease, concurrent workers
//! in separate `Store`s delivering each notification exactly once,
//! scheduling, waking and retention.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{Recorder, SinkOptions, SmtpSink, TestDb};
use pds_notify::{
    Channel, EmailConfig, EmailSender, Message, NotificationStatus, Rendered, SendError, Sender,
    Senders, Worker, WorkerConfig,
};
use pds_store::NewNotification;
use pds_testkit::both_backends;

fn fast_config() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_millis(20),
        send_timeout: Duration::from_secs(10),
        lease: Duration::from_secs(20),
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        ..WorkerConfig::default()
    }
}

fn confirm(token: &str) -> Message {
    Message::ConfirmEmail {
        token: token.to_owned(),
    }
}

async fn retry_with_backoff_then_success(db: &TestDb) {
    let rec = Recorder::new(Channel::Email, Duration::ZERO, |i, _| {
        if i < 2 {
            Err(SendError::transient(format!("temporary failure {i}")))
        } else {
            Ok(())
        }
    });
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(rec.clone()),
        WorkerConfig {
            backoff_base: Duration::from_millis(200),
            ..fast_config()
        },
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(Channel::Email, "a@example.com", &confirm("FLAKY-1"))
        .await
        .expect("enqueue");
    let handle = worker.spawn();
    let n = common::wait_status(&db.store, id, NotificationStatus::Sent).await;
    handle.shutdown().await;

    assert_eq!(n.attempts, 3);
    assert_eq!(n.last_error, None);
    let calls = rec.calls();
    assert_eq!(calls.len(), 3, "failed twice, then delivered once");
    assert!(calls.iter().all(|c| c.message.text.contains("FLAKY-1")));
    // Exponential backoff: 200 ms after the first failure, 400 ms after
    // the second.
    let gap1 = calls[1].at.duration_since(calls[0].at);
    let gap2 = calls[2].at.duration_since(calls[1].at);
    assert!(gap1 >= Duration::from_millis(200), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(400), "{gap2:?}");
    assert_eq!(rec.delivered().get("a@example.com"), Some(&1));
}

async fn attempt_limit_fails_for_good(db: &TestDb) {
    let rec = Recorder::new(Channel::Email, Duration::ZERO, |i, _| {
        Err(SendError::transient(format!("still down ({i})")))
    });
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(rec.clone()),
        WorkerConfig {
            max_attempts: 3,
            backoff_base: Duration::from_millis(30),
            ..fast_config()
        },
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(Channel::Email, "b@example.com", &confirm("DOWN"))
        .await
        .expect("enqueue");
    let handle = worker.spawn();
    let n = common::wait_status(&db.store, id, NotificationStatus::Failed).await;
    // Give a wrongly continuing worker the chance to try again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.shutdown().await;
    assert_eq!(n.attempts, 3);
    assert_eq!(n.last_error.as_deref(), Some("still down (2)"));
    assert_eq!(n.sent_at, None);
    assert_eq!(rec.calls().len(), 3);
    assert!(rec.delivered().is_empty());
}

async fn undeliverable_entries_fail_for_good(db: &TestDb) {
    let rec = Recorder::ok(Channel::Email);
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(rec.clone()),
        fast_config(),
    )
    .expect("worker");
    let now = pds_notify::now_ms();
    let raw = |channel: &str, kind: &str, payload: &str| NewNotification {
        channel: channel.to_owned(),
        recipient: "c@example.com".to_owned(),
        kind: kind.to_owned(),
        payload: payload.to_owned(),
        send_after: now,
    };
    let good_payload = confirm("T").to_payload().expect("payload");
    let q = db.store.notifications();
    let ids = [
        q.enqueue(&raw("pigeon", "confirm_email", &good_payload))
            .await
            .expect("enqueue"),
        q.enqueue(&raw("email", "delete_account", &good_payload))
            .await
            .expect("enqueue"),
        q.enqueue(&raw("email", "confirm_email", "{broken"))
            .await
            .expect("enqueue"),
        q.enqueue(&raw("email", "launch_rockets", "{}"))
            .await
            .expect("enqueue"),
    ];
    // A known channel this worker has no sender for.
    let no_sender = worker
        .notifier()
        .enqueue(Channel::Signal, "+1555", &confirm("T"))
        .await
        .expect("enqueue");
    let report = worker.run_once().await.expect("run");
    assert_eq!((report.claimed, report.failed), (5, 5), "{report:?}");
    for id in ids.into_iter().chain([no_sender]) {
        let n = q.get(id).await.expect("get").expect("row");
        assert_eq!(n.status, NotificationStatus::Failed, "{n:?}");
        assert_eq!(n.attempts, 1);
        assert!(n.last_error.is_some());
    }
    let n = q.get(no_sender).await.expect("get").expect("row");
    assert!(n
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("no sender configured for channel signal")));
    assert!(rec.calls().is_empty());
}

/// Delays each send, so a worker is stopped while work remains.
struct Slow {
    inner: Arc<dyn Sender>,
    delay: Duration,
}

#[async_trait]
impl Sender for Slow {
    fn channel(&self) -> Channel {
        self.inner.channel()
    }
    async fn send(&self, recipient: &str, message: &Rendered) -> Result<(), SendError> {
        tokio::time::sleep(self.delay).await;
        self.inner.send(recipient, message).await
    }
}

async fn stop_and_restart_delivers_exactly_once(db: &TestDb) {
    const N: usize = 24;
    let sink = SmtpSink::start(SinkOptions::default()).await;
    let senders = || {
        let email = EmailSender::new(&EmailConfig::smtp(
            format!("smtp://127.0.0.1:{}", sink.port),
            "pds@pds.example",
        ))
        .expect("sender");
        Senders::new().with(Arc::new(Slow {
            inner: Arc::new(email),
            delay: Duration::from_millis(100),
        }))
    };
    let config = WorkerConfig {
        batch_size: 2,
        ..fast_config()
    };
    let worker = Worker::new(db.store.clone(), senders(), config.clone()).expect("worker");
    let notifier = worker.notifier();
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(
            notifier
                .enqueue(
                    Channel::Email,
                    &format!("user{i}@example.com"),
                    &confirm(&format!("RESTART-{i:03}")),
                )
                .await
                .expect("enqueue"),
        );
    }
    let handle = worker.spawn();
    sink.wait_for(4).await;
    handle.shutdown().await;

    // Stopped mid-way; the batch in flight was finished, none left claimed.
    let delivered_before = sink.count();
    assert!(
        (4..N).contains(&delivered_before),
        "{delivered_before} delivered before the stop"
    );
    let mut sent = 0;
    for id in &ids {
        let n = db
            .store
            .notifications()
            .get(*id)
            .await
            .expect("get")
            .expect("row");
        assert_ne!(n.status, NotificationStatus::Sending, "{n:?}");
        if n.status == NotificationStatus::Sent {
            sent += 1;
        }
    }
    assert_eq!(sent, delivered_before);

    // "Restart": a new Store on the same database and a new worker.
    let store = db.reopen().await;
    let handle = Worker::new(store.clone(), senders(), config)
        .expect("worker")
        .spawn();
    for id in &ids {
        let n = common::wait_status(&store, *id, NotificationStatus::Sent).await;
        assert_eq!(n.attempts, 1, "{n:?}");
    }
    handle.shutdown().await;

    let mail = sink.wait_for(N).await;
    assert_eq!(mail.len(), N, "no duplicates");
    let mut tokens = HashSet::new();
    for m in &mail {
        let text = m.text.as_deref().expect("text part");
        let token = text
            .split_whitespace()
            .find(|w| w.starts_with("RESTART-"))
            .expect("token in body");
        let i: usize = token["RESTART-".len()..].parse().expect("index");
        assert_eq!(m.to, format!("user{i}@example.com"));
        assert_eq!(m.subject, "Email Confirmation");
        assert!(tokens.insert(token.to_owned()), "{token} delivered twice");
    }
    assert_eq!(tokens.len(), N);
}

/// Hangs on every call (until the worker is killed).
struct Hang {
    calls: AtomicUsize,
}

#[async_trait]
impl Sender for Hang {
    fn channel(&self) -> Channel {
        Channel::Email
    }
    async fn send(&self, _: &str, _: &Rendered) -> Result<(), SendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
        Ok(())
    }
}

async fn crashed_worker_lease_expires(db: &TestDb) {
    let hang = Arc::new(Hang {
        calls: AtomicUsize::new(0),
    });
    let lease = Duration::from_secs(3);
    let config = WorkerConfig {
        send_timeout: Duration::from_secs(2),
        lease,
        ..fast_config()
    };
    let crashing = Worker::new(
        db.store.clone(),
        Senders::new().with(hang.clone()),
        config.clone(),
    )
    .expect("worker");
    let id = crashing
        .notifier()
        .enqueue(Channel::Email, "d@example.com", &confirm("CRASH-1"))
        .await
        .expect("enqueue");
    let claimed_at = pds_notify::now_ms();
    let handle = crashing.spawn();
    common::eventually("the send to start", Duration::from_secs(10), || async {
        (hang.calls.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
    handle.abort().await;

    let n = db
        .store
        .notifications()
        .get(id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(n.status, NotificationStatus::Sending);
    assert_eq!(n.attempts, 1);
    assert!(n.next_attempt_at >= claimed_at + 2_900, "{n:?}");

    // Another process takes over once the lease ends, and not before.
    let rec = Recorder::ok(Channel::Email);
    let store = db.reopen().await;
    let worker =
        Worker::new(store.clone(), Senders::new().with(rec.clone()), config).expect("worker");
    if pds_notify::now_ms() < n.next_attempt_at - 200 {
        assert_eq!(worker.run_once().await.expect("run").claimed, 0);
    }
    let handle = worker.spawn();
    let n = common::wait_status(&store, id, NotificationStatus::Sent).await;
    handle.shutdown().await;
    assert_eq!(n.attempts, 2);
    assert_eq!(rec.delivered().get("d@example.com"), Some(&1));
    assert_eq!(rec.calls().len(), 1);
    assert_eq!(hang.calls.load(Ordering::SeqCst), 1);
}

async fn concurrent_workers_deliver_exactly_once(db: &TestDb) {
    const N: usize = 90;
    let notifier = pds_notify::Notifier::new(db.store.clone());
    for i in 0..N {
        notifier
            .enqueue(Channel::Email, &format!("r{i}"), &confirm(&format!("C{i}")))
            .await
            .expect("enqueue");
    }
    // Three workers, each with its own Store (pool): three processes.
    let mut recorders = Vec::new();
    let mut handles = Vec::new();
    for w in 0..3 {
        let store = if w == 0 {
            db.store.clone()
        } else {
            db.reopen().await
        };
        let rec = Recorder::new(Channel::Email, Duration::from_millis(20), |_, _| Ok(()));
        let worker = Worker::new(
            store,
            Senders::new().with(rec.clone()),
            WorkerConfig {
                batch_size: 4,
                poll_interval: Duration::from_millis(10),
                ..fast_config()
            },
        )
        .expect("worker");
        recorders.push(rec);
        handles.push(worker.spawn());
    }
    common::eventually("all deliveries", Duration::from_secs(60), || async {
        let total: usize = recorders.iter().map(|r| r.calls().len()).sum();
        (total >= N).then_some(())
    })
    .await;
    // Let any duplicate claim surface before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for h in handles {
        h.shutdown().await;
    }

    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for rec in &recorders {
        for (r, c) in rec.delivered() {
            *per_recipient.entry(r).or_default() += c;
        }
    }
    assert_eq!(per_recipient.len(), N);
    assert!(
        per_recipient.values().all(|&c| c == 1),
        "duplicates: {:?}",
        per_recipient
            .iter()
            .filter(|(_, &c)| c != 1)
            .collect::<Vec<_>>()
    );
    let calls: Vec<usize> = recorders.iter().map(|r| r.calls().len()).collect();
    assert_eq!(calls.iter().sum::<usize>(), N, "{calls:?}");
    assert!(
        calls.iter().filter(|&&c| c > 0).count() >= 2,
        "the workers did not run concurrently: {calls:?}"
    );
    for i in 0..N {
        let h = notifier
            .history(&format!("r{i}"), 10)
            .await
            .expect("history");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].status, NotificationStatus::Sent);
        assert_eq!(h[0].attempts, 1);
    }
}

both_backends!(
    retry_with_backoff_then_success,
    attempt_limit_fails_for_good,
    undeliverable_entries_fail_for_good,
    stop_and_restart_delivers_exactly_once,
    crashed_worker_lease_expires,
    concurrent_workers_deliver_exactly_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_are_not_retried() {
    let db = TestDb::sqlite().await;
    let rec = Recorder::new(Channel::Email, Duration::ZERO, |_, _| {
        Err(SendError::permanent("mailbox does not exist"))
    });
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(rec.clone()),
        fast_config(),
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(Channel::Email, "e@example.com", &confirm("P"))
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
    assert_eq!(n.last_error.as_deref(), Some("mailbox does not exist"));
    assert_eq!(worker.run_once().await.expect("run").claimed, 0);
    assert_eq!(rec.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_timeout_counts_as_a_failed_attempt() {
    let db = TestDb::sqlite().await;
    let hang = Arc::new(Hang {
        calls: AtomicUsize::new(0),
    });
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(hang.clone()),
        WorkerConfig {
            send_timeout: Duration::from_millis(200),
            lease: Duration::from_millis(1200),
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(60),
            ..fast_config()
        },
    )
    .expect("worker");
    let id = worker
        .notifier()
        .enqueue(Channel::Email, "f@example.com", &confirm("SLOW"))
        .await
        .expect("enqueue");
    let report = worker.run_once().await.expect("run");
    assert_eq!(report.retried, 1, "{report:?}");
    let n = db
        .store
        .notifications()
        .get(id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(n.status, NotificationStatus::Pending);
    assert!(n
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("timed out")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_notifications_wait() {
    let db = TestDb::sqlite().await;
    let rec = Recorder::ok(Channel::Telegram);
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(rec.clone()),
        fast_config(),
    )
    .expect("worker");
    let due = pds_notify::now_ms() + 500;
    let id = worker
        .notifier()
        .enqueue_at(
            Channel::Telegram,
            "100",
            &Message::Welcome {
                handle: "later.test".into(),
            },
            due,
        )
        .await
        .expect("enqueue");
    assert_eq!(worker.run_once().await.expect("run").claimed, 0);
    while pds_notify::now_ms() <= due {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(worker.run_once().await.expect("run").sent, 1);
    let n = db
        .store
        .notifications()
        .get(id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(n.status, NotificationStatus::Sent);
    assert!(rec.calls()[0].message.text.contains("@later.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_wakes_an_idle_worker() {
    let db = TestDb::sqlite().await;
    let rec = Recorder::ok(Channel::Email);
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(rec.clone()),
        WorkerConfig {
            // Never polls within the test: only the wake can deliver.
            poll_interval: Duration::from_secs(600),
            ..fast_config()
        },
    )
    .expect("worker");
    let notifier = worker.notifier();
    let handle = worker.spawn();
    // Let the worker find the queue empty and go idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..3 {
        notifier
            .enqueue(Channel::Email, &format!("w{i}@example.com"), &confirm("W"))
            .await
            .expect("enqueue");
        common::eventually("the woken worker", Duration::from_secs(5), || async {
            (rec.calls().len() == i + 1).then_some(())
        })
        .await;
    }
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_finished_entries() {
    let db = TestDb::sqlite().await;
    let rec = Recorder::ok(Channel::Email);
    let worker = Worker::new(
        db.store.clone(),
        Senders::new().with(rec.clone()),
        WorkerConfig {
            retention: Some(Duration::ZERO),
            ..fast_config()
        },
    )
    .expect("worker");
    let notifier = worker.notifier();
    let sent = notifier
        .enqueue(Channel::Email, "g@example.com", &confirm("OLD"))
        .await
        .expect("enqueue");
    let later = notifier
        .enqueue_at(
            Channel::Email,
            "g@example.com",
            &confirm("LATER"),
            pds_notify::now_ms() + 3_600_000,
        )
        .await
        .expect("enqueue");
    assert_eq!(worker.run_once().await.expect("run").sent, 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(worker.prune().await.expect("prune"), 1);
    assert!(notifier.get(sent).await.expect("get").is_none());
    let h = notifier
        .history("g@example.com", 10)
        .await
        .expect("history");
    assert_eq!(h.iter().map(|n| n.id).collect::<Vec<_>>(), [later]);
    assert_eq!(h[0].status, NotificationStatus::Pending);

    // Without retention nothing is pruned.
    let keep = Worker::new(
        db.store.clone(),
        Senders::new().with(rec),
        WorkerConfig {
            retention: None,
            ..fast_config()
        },
    )
    .expect("worker");
    assert_eq!(keep.prune().await.expect("prune"), 0);
}
