//! subscribeRepos end to end: a real store (SQLite and PostgreSQL), the
//! firehose behind the generated XRPC route on a loopback HTTP server, and
//! tokio-tungstenite clients. Events are appended through the sequencer
//! with frames that carry their own seq, so every delivered frame is
//! checked byte for byte and every stream for gaps and duplicates.

mod common;

use std::time::Duration;

use common::*;
use pds_firehose::FirehoseConfig;
use pds_store::{now_ms, Store, StoreConfig};
use tokio_tungstenite::tungstenite::Message;

const SHORT: Duration = Duration::from_millis(300);

// Test data is disposable: SQLite skips the fsync on every commit.
pds_testkit::both_backends!(
    configure = |c| c.sqlite_synchronous_full = false;
    live_delivery,
    live_from_another_process,
    replay_then_live_with_concurrent_writes,
    future_cursor,
    outdated_cursor_after_pruning,
    consumer_too_slow,
    many_subscribers,
    reconnect_with_last_cursor,
    pings_and_close,
    shutdown_closes_subscribers,
    invalidated_events_are_skipped,
    live_events_coalesce,
    coalesced_burst_is_not_too_slow,
);

/// Live only: events sequenced after the subscription, in order, intact;
/// nothing from before.
async fn live_delivery(db: &TestDb) {
    let store = &db.store;
    append(store, "did:plc:before", 5, 10).await;
    let server = serve(store, test_config()).await;
    let mut client = server.connect(None).await;
    server.wait_live(1).await;

    let mut expected = Vec::new();
    expected.extend(append(store, "did:plc:alice", 1, 100).await);
    expected.extend(append(store, "did:plc:bob", 20, 100).await);
    for _ in 0..5 {
        expected.extend(append(store, "did:plc:carol", 1, 3000).await);
    }
    assert_eq!(expected.first(), Some(&6));
    let got = read_events(&mut client, expected.len()).await;
    assert_eq!(got, expected);
    assert_eq!(next_data(&mut client, SHORT).await, Got::Timeout);

    let stats = server.firehose.stats();
    assert_eq!(stats.events_broadcast, 26);
    assert_eq!(stats.head_seq, 31);
    assert_eq!(stats.active_subscribers, 1);
}

/// Events sequenced by another `Store` on the same database (another PDS
/// process) reach subscribers too: NOTIFY on PostgreSQL, the poll on SQLite.
async fn live_from_another_process(db: &TestDb) {
    let server = serve(&db.store, test_config()).await;
    let mut client = server.connect(None).await;
    server.wait_live(1).await;
    let other = Store::open(StoreConfig::new(db.location.clone()))
        .await
        .expect("second store");
    let mut expected = append(&other, "did:plc:elsewhere", 3, 10).await;
    expected.extend(append(&db.store, "did:plc:here", 2, 10).await);
    expected.extend(append(&other, "did:plc:elsewhere", 1, 10).await);
    assert_eq!(read_events(&mut client, 6).await, expected);
    other.close().await;
}

/// Clients with cursors (before, inside and at the end of the log) connect
/// while a writer keeps sequencing events: each receives exactly every seq
/// after its cursor up to the last, in order: the replay-to-live switch
/// leaves no gap and no duplicate. Run against a tiny ring and queue (the
/// subscriber tasks fall behind the ring and fall back to the database) and
/// against the defaults.
async fn replay_then_live_with_concurrent_writes(db: &TestDb) {
    let store = db.store.clone();
    for _ in 0..6 {
        append(&store, "did:plc:old", 50, 64).await;
    }
    // Each replay read pauses, so events are published between reading the
    // log and switching to live.
    let tiny = FirehoseConfig {
        replay_batch: 16,
        max_queued_frames: 32,
        ring_capacity: 4,
        replay_read_delay: Duration::from_millis(3),
        ..test_config()
    };
    let small = serve(&store, tiny).await;
    let normal = serve(
        &store,
        FirehoseConfig {
            replay_read_delay: Duration::from_millis(10),
            ..test_config()
        },
    )
    .await;

    // 300 appends of 1..=3 events: 600 events, seqs 301..=900.
    let writer_store = store.clone();
    let writer = tokio::spawn(async move {
        for i in 0..300usize {
            append(&writer_store, "did:plc:new", 1 + i % 3, 64).await;
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let last = 900;

    let mut readers = Vec::new();
    for (i, cursor) in [0i64, 1, 150, 299, 300, 0, 77, 300].into_iter().enumerate() {
        let addr = if i % 2 == 0 { small.addr } else { normal.addr };
        readers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(15 * i as u64)).await;
            let mut client = connect(addr, Some(cursor), None).await;
            let seqs = read_until(&mut client, last).await;
            assert_contiguous(&seqs, cursor + 1, last);
            assert_eq!(next_data(&mut client, SHORT).await, Got::Timeout);
        }));
    }
    writer.await.expect("writer");
    for r in readers {
        r.await.expect("reader");
    }
    let (s, n) = (small.firehose.stats(), normal.firehose.stats());
    assert!(s.max_queued_frames <= 32, "{s:?}");
    assert_eq!(s.outdated_cursor + n.outdated_cursor, 0);
    eprintln!(
        "ring fallbacks to replay: tiny ring {}, default ring {}",
        s.ring_lagged, n.ring_lagged
    );
}

/// A cursor past the current seq: a `FutureCursor` error frame, then a
/// close (1008). A cursor equal to the current seq is fine.
async fn future_cursor(db: &TestDb) {
    let store = &db.store;
    append(store, "did:plc:a", 10, 10).await;
    let server = serve(store, test_config()).await;

    let mut client = server.connect(Some(11)).await;
    assert_eq!(
        next(&mut client, SHORT * 10).await,
        Got::Error {
            name: "FutureCursor".into()
        }
    );
    assert_eq!(next(&mut client, SHORT * 10).await, Got::Close(Some(1008)));
    assert_eq!(next(&mut client, SHORT * 10).await, Got::End);

    let mut far = server.connect(Some(i64::MAX)).await;
    assert!(matches!(
        next(&mut far, SHORT * 10).await,
        Got::Error { name } if name == "FutureCursor"
    ));

    let mut at_head = server.connect(Some(10)).await;
    server.wait_live(1).await;
    append(store, "did:plc:a", 1, 10).await;
    assert_eq!(read_events(&mut at_head, 1).await, vec![11]);
    assert_eq!(server.firehose.stats().future_cursor, 2);
}

/// After pruning: a cursor before the earliest stored event gets an
/// `#info` `OutdatedCursor` frame, then the stored events from the earliest
/// on, then live ones. A cursor just before the earliest gets no info. With
/// everything pruned, an old cursor gets the info and then live events.
async fn outdated_cursor_after_pruning(db: &TestDb) {
    let store = &db.store;
    append(store, "did:plc:a", 10, 10).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let cutoff = now_ms();
    tokio::time::sleep(Duration::from_millis(30)).await;
    append(store, "did:plc:a", 10, 10).await;
    assert_eq!(
        store.sequencer().prune_before(cutoff).await.expect("prune"),
        10
    );
    assert_eq!(
        store.sequencer().earliest_seq().await.expect("earliest"),
        Some(11)
    );

    let server = serve(store, test_config()).await;
    let mut old = server.connect(Some(3)).await;
    assert_eq!(
        next_data(&mut old, SHORT * 10).await,
        Got::Info {
            name: "OutdatedCursor".into()
        }
    );
    assert_eq!(
        read_events(&mut old, 10).await,
        (11..=20).collect::<Vec<_>>()
    );

    let mut zero = server.connect(Some(0)).await;
    assert!(
        matches!(next_data(&mut zero, SHORT * 10).await, Got::Info { name } if name == "OutdatedCursor")
    );
    assert_eq!(
        read_events(&mut zero, 10).await,
        (11..=20).collect::<Vec<_>>()
    );

    let mut just_before = server.connect(Some(10)).await;
    assert_eq!(
        read_events(&mut just_before, 10).await,
        (11..=20).collect::<Vec<_>>()
    );

    server.wait_live(3).await;
    append(store, "did:plc:a", 5, 10).await;
    for c in [&mut old, &mut zero, &mut just_before] {
        assert_eq!(read_events(c, 5).await, (21..=25).collect::<Vec<_>>());
    }

    // Everything pruned: the log is empty but the counter is at 25.
    store
        .sequencer()
        .prune_before(now_ms() + 60_000)
        .await
        .expect("prune all");
    assert_eq!(
        store.sequencer().earliest_seq().await.expect("earliest"),
        None
    );
    let mut empty_log = server.connect(Some(5)).await;
    assert!(
        matches!(next_data(&mut empty_log, SHORT * 10).await, Got::Info { name } if name == "OutdatedCursor")
    );
    let mut at_head = server.connect(Some(25)).await;
    server.wait_live(5).await;
    append(store, "did:plc:a", 1, 10).await;
    assert_eq!(read_events(&mut empty_log, 1).await, vec![26]);
    assert_eq!(read_events(&mut at_head, 1).await, vec![26]);
    assert_eq!(server.firehose.stats().outdated_cursor, 3);
}

/// A client that never reads: its socket blocks, its queue fills, and the
/// next live event ends it with `ConsumerTooSlow`; its queue never exceeds
/// the cap. A fast client on the same firehose gets every event. When the
/// slow client finally reads, it finds a gap-free prefix of the events, the
/// error frame, and the close.
async fn consumer_too_slow(db: &TestDb) {
    const CAP: usize = 16;
    const PAD: usize = 8000;
    let store = db.store.clone();
    let config = FirehoseConfig {
        max_queued_frames: CAP,
        max_queued_bytes: 1 << 20,
        write_buffer_size: 16 << 10,
        ..test_config()
    };
    // Small kernel buffers on both sides so the socket blocks early.
    let server = serve_with(&store, config, Some(8192)).await;
    let mut slow = connect(server.addr, None, Some(4096)).await;
    let mut fast = server.connect(None).await;
    server.wait_live(2).await;
    let first = store.sequencer().current_seq().await.expect("seq") + 1;

    let (done_tx, done_rx) = tokio::sync::watch::channel(None::<i64>);
    let fast_reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        let mut done_rx = done_rx;
        loop {
            if let Some(last) = *done_rx.borrow_and_update() {
                if seqs.last().copied() == Some(last) {
                    return seqs;
                }
            }
            match next_data(&mut fast, Duration::from_millis(50)).await {
                Got::Event { seq, .. } => seqs.push(seq),
                Got::Timeout => {}
                other => panic!("fast client got {other:?}"),
            }
        }
    });

    for _ in 0..500 {
        append(&store, "did:plc:busy", 4, PAD).await;
        if server.firehose.stats().consumer_too_slow > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let stats = server.firehose.stats();
    assert_eq!(stats.consumer_too_slow, 1, "{stats:?}");
    assert!(stats.max_queued_frames <= CAP, "{stats:?}");
    assert!(stats.max_queued_bytes <= CAP * (PAD + 64), "{stats:?}");
    // The connection is still closing: the error frame waits for the client.
    assert_eq!(stats.active_subscribers, 2);

    // More events while the slow client is being closed: the fast one gets them.
    let last = *append(&store, "did:plc:busy", 10, PAD)
        .await
        .last()
        .expect("seqs");
    done_tx.send_replace(Some(last));
    let fast_seqs = fast_reader.await.expect("fast reader");
    assert_contiguous(&fast_seqs, first, last);

    let mut slow_seqs = Vec::new();
    let end = loop {
        match next(&mut slow, Duration::from_secs(10)).await {
            Got::Event { seq, .. } => slow_seqs.push(seq),
            other => break other,
        }
    };
    assert_eq!(
        end,
        Got::Error {
            name: "ConsumerTooSlow".into()
        }
    );
    assert!(!slow_seqs.is_empty());
    let slow_last = *slow_seqs.last().expect("nonempty");
    assert_contiguous(&slow_seqs, first, slow_last);
    assert!(slow_last < last);
    assert_eq!(next(&mut slow, SHORT * 10).await, Got::Close(Some(1008)));
    server.wait_active(1).await;
}

/// 200 subscribers receive the same events; the broadcaster publishes each
/// once.
async fn many_subscribers(db: &TestDb) {
    const N: usize = 200;
    let store = &db.store;
    let server = serve(store, test_config()).await;
    let mut connecting = Vec::new();
    for _ in 0..N {
        let addr = server.addr;
        connecting.push(tokio::spawn(async move { connect(addr, None, None).await }));
    }
    let mut clients = Vec::new();
    for c in connecting {
        clients.push(c.await.expect("connect"));
    }
    server.wait_live(N).await;

    let mut expected = Vec::new();
    for _ in 0..5 {
        expected.extend(append(store, "did:plc:many", 10, 200).await);
    }
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut c| tokio::spawn(async move { read_events(&mut c, 50).await }))
        .collect();
    for r in readers {
        assert_eq!(r.await.expect("reader"), expected);
    }
    let stats = server.firehose.stats();
    assert_eq!(stats.events_broadcast, 50);
    assert!(stats.frames_sent >= (N * 50) as u64, "{stats:?}");
}

/// A client that drops its connection at random points and reconnects with
/// the last seq it saw, while a writer keeps going, sees every event exactly
/// once.
async fn reconnect_with_last_cursor(db: &TestDb) {
    let store = db.store.clone();
    append(&store, "did:plc:r", 20, 32).await;
    let config = FirehoseConfig {
        replay_batch: 8,
        max_queued_frames: 16,
        ..test_config()
    };
    let server = serve(&store, config).await;
    let writer_store = store.clone();
    let writer = tokio::spawn(async move {
        for i in 0..200usize {
            append(&writer_store, "did:plc:r", 1 + i % 4, 32).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    // 20 + 200 appends of 1..=4 events = 20 + 500.
    let last = 520;

    let mut seen = Vec::new();
    let mut cursor = 10;
    let mut connections = 0;
    let mut rng_state = 7u64;
    while cursor < last {
        let mut client = server.connect(Some(cursor)).await;
        connections += 1;
        rng_state = rng_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let take = 5 + (rng_state >> 33) as usize % 60;
        for _ in 0..take {
            match next_data(&mut client, Duration::from_secs(20)).await {
                Got::Event { seq, .. } => {
                    seen.push(seq);
                    cursor = seq;
                    if seq == last {
                        break;
                    }
                }
                other => panic!("got {other:?} after {cursor}"),
            }
        }
        if connections % 3 == 0 {
            // A polite close half of the time; otherwise just drop it.
            let _ = client.close(None).await;
        }
    }
    writer.await.expect("writer");
    assert_contiguous(&seen, 11, last);
    assert!(connections > 3, "only {connections} connections");
}

/// Server pings (the client's automatic pongs keep it connected), pings
/// from the client answered, a client's close answered, and an
/// unresponsive client dropped after two ping intervals.
async fn pings_and_close(db: &TestDb) {
    let store = &db.store;
    let config = FirehoseConfig {
        ping_interval: Some(Duration::from_millis(100)),
        ..test_config()
    };
    let server = serve(store, config).await;
    let mut client = server.connect(None).await;
    let mut silent = server.connect(None).await;
    server.wait_live(2).await;

    // The reading client answers pings and stays; the silent one never
    // reads, so never answers a ping, and is dropped.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(700);
    while tokio::time::Instant::now() < deadline {
        match next(&mut client, Duration::from_millis(50)).await {
            Got::Ping => pings += 1,
            Got::Timeout => {}
            other => panic!("got {other:?}"),
        }
    }
    assert!(pings >= 4, "{pings} pings");
    assert_eq!(server.firehose.stats().active_subscribers, 1);
    let seqs = append(store, "did:plc:p", 2, 10).await;
    assert_eq!(read_events(&mut client, 2).await, seqs);

    client
        .send(Message::Ping(b"hello".to_vec().into()))
        .await
        .expect("ping");
    loop {
        match next(&mut client, SHORT * 10).await {
            Got::Ping => continue,
            Got::Pong(p) => {
                assert_eq!(p, b"hello");
                break;
            }
            other => panic!("expected pong, got {other:?}"),
        }
    }

    client.close(None).await.expect("close");
    loop {
        match next(&mut client, SHORT * 10).await {
            Got::Ping => continue,
            Got::Close(_) | Got::End => break,
            other => panic!("expected the close reply, got {other:?}"),
        }
    }
    server.wait_active(0).await;
    // The dropped silent client: its socket ends (after what was buffered).
    let mut ended = false;
    for _ in 0..100 {
        match next(&mut silent, SHORT * 10).await {
            Got::Ping => continue,
            Got::End | Got::Close(_) => {
                ended = true;
                break;
            }
            other => panic!("silent client got {other:?}"),
        }
    }
    assert!(ended);
}

/// `shutdown` closes live and replaying subscribers with 1001 after what
/// they had queued, stops the broadcaster, and closes later connections at
/// once.
async fn shutdown_closes_subscribers(db: &TestDb) {
    let store = &db.store;
    append(store, "did:plc:s", 30, 10).await;
    let server = serve(store, test_config()).await;
    let mut live = server.connect(None).await;
    let mut replaying = server.connect(Some(0)).await;
    assert_eq!(
        read_events(&mut replaying, 30).await,
        (1..=30).collect::<Vec<_>>()
    );
    server.wait_live(2).await;
    let seqs = append(store, "did:plc:s", 3, 10).await;
    assert_eq!(read_events(&mut live, 3).await, seqs);
    assert_eq!(read_events(&mut replaying, 3).await, seqs);

    server.firehose.shutdown();
    for c in [&mut live, &mut replaying] {
        assert_eq!(next_data(c, SHORT * 10).await, Got::Close(Some(1001)));
        assert_eq!(next_data(c, SHORT * 10).await, Got::End);
    }
    assert!(server.firehose.wait_closed(Duration::from_secs(10)).await);
    assert_eq!(server.firehose.stats().active_subscribers, 0);

    let mut late = server.connect(None).await;
    assert_eq!(
        next_data(&mut late, SHORT * 10).await,
        Got::Close(Some(1001))
    );
    // The broadcaster is stopped: nothing is published any more.
    append(store, "did:plc:s", 1, 10).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.firehose.stats().events_broadcast, 3);
}

/// Events marked invalidated are not replayed.
async fn invalidated_events_are_skipped(db: &TestDb) {
    let store = &db.store;
    for _ in 0..3 {
        append(store, "did:plc:gone", 1, 10).await;
        append(store, "did:plc:kept", 1, 10).await;
    }
    assert_eq!(
        store
            .sequencer()
            .invalidate_events("did:plc:gone", 7)
            .await
            .expect("invalidate"),
        3
    );
    let server = serve(store, test_config()).await;
    let mut client = server.connect(Some(0)).await;
    for seq in [2, 4, 6] {
        assert_eq!(
            next_data(&mut client, SHORT * 10).await,
            Got::Event {
                seq,
                did: "did:plc:kept".into()
            }
        );
    }
    server.wait_live(1).await;
    let seqs = append(store, "did:plc:gone", 1, 10).await;
    assert_eq!(read_events(&mut client, 1).await, seqs);
}

/// Under load, live events that arrive while a subscriber is held after a
/// write go out together in one write; the first event after a quiet spell
/// goes out at once.
async fn live_events_coalesce(db: &TestDb) {
    let store = &db.store;
    let config = FirehoseConfig {
        live_coalesce: Duration::from_secs(1),
        ..test_config()
    };
    let server = serve(store, config).await;
    let mut client = server.connect(None).await;
    server.wait_live(1).await;

    let started = std::time::Instant::now();
    let mut expected = append(store, "did:plc:first", 1, 10).await;
    assert_eq!(read_events(&mut client, 1).await, expected);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "the first event waited {:?}",
        started.elapsed()
    );
    // Ten commits while the subscriber is held: one write for all of them.
    for i in 0..10 {
        expected.extend(append(store, &format!("did:plc:n{i}"), 1, 10).await);
    }
    assert_eq!(read_events(&mut client, 10).await, expected[1..]);
    let stats = server.firehose.stats();
    assert_eq!(stats.frames_sent, 11);
    assert!(
        stats.flushes <= 3,
        "{} flushes for 11 frames",
        stats.flushes
    );
}

/// A burst larger than the queue cap gathered during a coalescing hold is
/// not a slow consumer: the client reads it all and stays connected.
async fn coalesced_burst_is_not_too_slow(db: &TestDb) {
    let store = &db.store;
    let config = FirehoseConfig {
        live_coalesce: Duration::from_millis(500),
        max_queued_frames: 8,
        ..test_config()
    };
    let server = serve(store, config).await;
    let mut client = server.connect(None).await;
    server.wait_live(1).await;
    let mut expected = append(store, "did:plc:first", 1, 10).await;
    assert_eq!(read_events(&mut client, 1).await, expected);
    for i in 0..30 {
        expected.extend(append(store, &format!("did:plc:n{i}"), 1, 10).await);
    }
    assert_eq!(read_events(&mut client, 30).await, expected[1..]);
    let stats = server.firehose.stats();
    assert_eq!(stats.consumer_too_slow, 0, "{stats:?}");
    assert!(stats.max_queued_frames <= 8, "{stats:?}");
    assert_eq!(stats.active_subscribers, 1);
}
