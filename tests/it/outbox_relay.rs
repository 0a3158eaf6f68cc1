//! The outbox relay against a real NATS server with JetStream (`NATS_TEST_URL`, default
//! 127.0.0.1:4222) and real PostgreSQL.
//!
//! Isolation: every test creates its own stream `BILLING_TEST_<uuid>` capturing
//! `t<uuid>.sahool.billing.>` and points the relay at it (`StreamTarget`), and deletes it at the
//! end. Several test processes can therefore share one NATS server: their streams never overlap
//! (JetStream would refuse overlapping subjects) and counting a stream's messages counts only
//! that test's events. Each test also has its own database, hence its own outbox.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream;
use billing_core::jobs::outbox_relay::{self, RelayOptions, StreamTarget};
use billing_core::repository::outbox::OutboxRepository;
use common::{Auth, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

fn nats_url() -> String {
    std::env::var("NATS_TEST_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

struct TestStream {
    js: jetstream::Context,
    target: StreamTarget,
}

impl TestStream {
    async fn new() -> TestStream {
        let id = Uuid::new_v4().simple().to_string();
        let target = StreamTarget {
            name: format!("BILLING_TEST_{id}"),
            subject_root: format!("t{id}.sahool.billing"),
        };
        let js = outbox_relay::connect(&nats_url(), &target)
            .await
            .expect("NATS with JetStream must run for these tests (nats-server -js)");
        TestStream { js, target }
    }

    /// Every message in the stream, in stream order: (Nats-Msg-Id, subject, payload).
    async fn messages(&self) -> Vec<(String, String, Value)> {
        let mut stream = self.js.get_stream(&self.target.name).await.unwrap();
        let state = stream.info().await.unwrap().state.clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return out;
        }
        for seq in state.first_sequence..=state.last_sequence {
            let m = stream.get_raw_message(seq).await.unwrap();
            let id = m
                .headers
                .get(async_nats::header::NATS_MESSAGE_ID)
                .expect("every message carries Nats-Msg-Id")
                .to_string();
            out.push((
                id,
                m.subject.to_string(),
                serde_json::from_slice(&m.payload).unwrap(),
            ));
        }
        assert_eq!(out.len() as u64, state.messages);
        out
    }

    /// Asserts the stream holds each of `ids` exactly once and nothing else; returns its messages.
    async fn assert_exactly_once(&self, ids: &[Uuid]) -> Vec<(String, String, Value)> {
        let msgs = self.messages().await;
        let seen: Vec<&str> = msgs.iter().map(|(id, _, _)| id.as_str()).collect();
        let unique: HashSet<&str> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "a Msg-Id appears twice: {seen:?}");
        let expected: HashSet<String> = ids.iter().map(Uuid::to_string).collect();
        let got: HashSet<String> = unique.into_iter().map(String::from).collect();
        assert_eq!(got, expected);
        msgs
    }

    async fn delete(self) {
        self.js.delete_stream(&self.target.name).await.unwrap();
    }
}

/// A pool on a fresh database, and the URL that keeps that database alive (hold it).
async fn fresh_pool() -> (common::DbUrl, PgPool) {
    let url = common::fresh_database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    (url, pool)
}

/// Records `n` events for a tenant of this test; returns their ids in seq order.
async fn record_events(pool: &PgPool, n: usize) -> Vec<Uuid> {
    let tenant = format!("farm-{}", Uuid::new_v4().simple());
    let mut tx = pool.begin().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let payload =
            json!({ "invoice_id": Uuid::new_v4().to_string(), "amount": format!("{i}.50") });
        ids.push(
            OutboxRepository::record(&mut tx, "invoice.paid", Some(&tenant), payload)
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    ids
}

async fn unpublished(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn all_ids(pool: &PgPool) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT event_id FROM outbox_events ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap()
}

pub(crate) async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

fn fast() -> RelayOptions {
    RelayOptions {
        batch: 10,
        idle_poll: Duration::from_millis(50),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        batch_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn events_written_by_the_services_reach_the_stream_once_each_with_subject_and_payload() {
    let app = TestApp::spawn().await;
    let ts = TestStream::new().await;
    let tenant = format!("farm-{}", Uuid::new_v4().simple());
    let body = json!({
        "tenant_id": tenant, "name": "Green Valley Farm", "name_ar": "مزرعة الوادي الأخضر",
        "email": "owner@greenvalley.example.com", "phone": "+967771234567", "plan_id": "starter"
    });
    assert_status!(app.post("/v1/tenants", Auth::Admin, body).await, 201);
    record_events(&app.pool, 3).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(outbox_relay::run_with(
        app.pool.clone(),
        nats_url(),
        ts.target.clone(),
        fast(),
        stopped,
    ));
    wait_until("the outbox is drained", async || {
        unpublished(&app.pool).await == 0
    })
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), relay)
        .await
        .expect("the relay stops when told")
        .unwrap();

    let rows: Vec<(Uuid, String, Value)> =
        sqlx::query_as("SELECT event_id, subject, payload FROM outbox_events ORDER BY seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(rows
        .iter()
        .any(|(_, s, _)| s == "sahool.billing.tenant.created"));
    let ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    let msgs = ts.assert_exactly_once(&ids).await;
    // Stream order is seq order, and each message is the row's payload on the row's subject.
    for ((id, subject, payload), (row_id, row_subject, row_payload)) in msgs.iter().zip(&rows) {
        assert_eq!(id, &row_id.to_string());
        assert_eq!(subject, &ts.target.subject_for(row_subject));
        assert_eq!(payload, row_payload);
        assert_eq!(payload["event_id"], row_id.to_string());
    }
    ts.delete().await;
}

#[tokio::test]
async fn relay_once_publishes_a_batch_in_seq_order_and_marks_it_published() {
    let (_db, pool) = fresh_pool().await;
    let ts = TestStream::new().await;
    let ids = record_events(&pool, 7).await;
    let mut counts = Vec::new();
    for _ in 0..4 {
        counts.push(
            outbox_relay::relay_once(&pool, &ts.js, &ts.target, 3)
                .await
                .unwrap(),
        );
    }
    assert_eq!(counts, [3, 3, 1, 0]);
    assert_eq!(unpublished(&pool).await, 0);
    let (attempts, errors): (i64, i64) =
        sqlx::query_as("SELECT sum(attempts)::bigint, count(last_error) FROM outbox_events")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!((attempts, errors), (0, 0));
    let msgs = ts.assert_exactly_once(&ids).await;
    let order: Vec<String> = msgs.into_iter().map(|m| m.0).collect();
    assert_eq!(order, ids.iter().map(Uuid::to_string).collect::<Vec<_>>());
    ts.delete().await;
}

#[tokio::test]
async fn a_relay_that_crashed_after_publishing_but_before_marking_does_not_duplicate_events() {
    let (_db, pool) = fresh_pool().await;
    let ts = TestStream::new().await;
    let ids = record_events(&pool, 6).await;
    {
        // The crashed relay: claimed the batch, published half of it (acked by JetStream), then
        // died before its UPDATE; dropping the transaction rolls back and releases the rows.
        let mut tx = pool.begin().await.unwrap();
        let claimed = OutboxRepository::claim_pending(&mut tx, 6).await.unwrap();
        let out =
            outbox_relay::publish_batch(&ts.js, &ts.target, &claimed[..3], Duration::from_secs(5))
                .await;
        assert_eq!(out.acked.len(), 3);
        drop(tx);
    }
    assert_eq!(unpublished(&pool).await, 6);
    // The restarted relay publishes the whole batch again; JetStream drops the three copies.
    assert_eq!(
        outbox_relay::relay_once(&pool, &ts.js, &ts.target, 10)
            .await
            .unwrap(),
        6
    );
    assert_eq!(unpublished(&pool).await, 0);
    ts.assert_exactly_once(&ids).await;
    ts.delete().await;
}

#[tokio::test]
async fn with_nats_unreachable_events_wait_with_attempts_and_all_arrive_once_it_is_reachable() {
    let (_db, pool) = fresh_pool().await;
    let ts = TestStream::new().await;
    let ids = record_events(&pool, 5).await;
    // A port nobody listens on; the credentials must never reach `last_error`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let relay = tokio::spawn(outbox_relay::run_with(
        pool.clone(),
        format!("nats://relay:s3cret@127.0.0.1:{port}"),
        ts.target.clone(),
        fast(),
        stopped,
    ));
    wait_until("every waiting event has a failed attempt", async || {
        let min: Option<i32> = sqlx::query_scalar("SELECT min(attempts) FROM outbox_events")
            .fetch_one(&pool)
            .await
            .unwrap();
        min.unwrap_or(0) >= 2
    })
    .await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), relay)
        .await
        .expect("the relay stops")
        .unwrap();
    assert_eq!(unpublished(&pool).await, 5);
    let errors: Vec<String> = sqlx::query_scalar("SELECT last_error FROM outbox_events")
        .fetch_all(&pool)
        .await
        .unwrap();
    for e in &errors {
        assert!(e.contains("NATS unreachable"), "{e}");
        assert!(!e.contains("s3cret") && !e.contains("relay:"), "{e}");
    }
    assert!(ts.messages().await.is_empty());

    // NATS is back (a relay pointed at the real server): everything arrives, once.
    assert_eq!(
        outbox_relay::relay_once(&pool, &ts.js, &ts.target, 10)
            .await
            .unwrap(),
        5
    );
    let cleared: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE last_error IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(cleared, 5);
    ts.assert_exactly_once(&ids).await;
    ts.delete().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_relays_racing_on_one_outbox_publish_each_event_once() {
    let url = common::fresh_database().await;
    let ts = TestStream::new().await;
    let pool_a = PgPool::connect(&url).await.unwrap();
    let pool_b = PgPool::connect(&url).await.unwrap();
    let ids = record_events(&pool_a, 60).await;
    // Two replicas, each with its own pool and NATS connection, draining the same table.
    let drain = |pool: PgPool| {
        let target = ts.target.clone();
        async move {
            let js = outbox_relay::connect(&nats_url(), &target).await.unwrap();
            let mut published = 0;
            loop {
                match outbox_relay::relay_once(&pool, &js, &target, 4)
                    .await
                    .unwrap()
                {
                    0 => return published,
                    n => published += n,
                }
            }
        }
    };
    let a = tokio::spawn(drain(pool_a.clone()));
    let b = tokio::spawn(drain(pool_b));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    // SKIP LOCKED: no event was marked by both (each relay counts only rows it marked).
    assert_eq!(a + b, 60, "relay a published {a}, relay b {b}");
    assert_eq!(unpublished(&pool_a).await, 0);
    ts.assert_exactly_once(&ids).await;
    assert_eq!(all_ids(&pool_a).await, ids);
    ts.delete().await;
}
