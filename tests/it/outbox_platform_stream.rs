//! The outbox relay against a `BILLING` stream created the way SAHOOL's
//! `scripts/migrations/15.6.0_billing_nats.sh` creates it (subjects `sahool.billing.*`,
//! `sahool.payment.*`, `sahool.subscription.*`; limits retention, 30 days, file storage, one
//! replica, discard old). The stream name and subjects are the production ones, so each test runs
//! its own `nats-server -js` on a free port instead of the shared server.

use crate::common;
use crate::outbox_relay::wait_until;

use std::time::Duration;

use async_nats::jetstream::{self, stream};
use billing_core::jobs::outbox_relay::{self, RelayOptions, RelayState, StreamTarget};
use common::{Auth, TestApp};
use futures::StreamExt;
use serde_json::json;

/// A private nats-server with JetStream, killed when dropped.
struct PrivateNats {
    url: String,
    _child: tokio::process::Child,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl PrivateNats {
    async fn start() -> PrivateNats {
        Self::start_with(&["-js"]).await
    }

    /// A server started with `flags` (`-js` for JetStream, none for plain NATS).
    async fn start_with(flags: &[&str]) -> PrivateNats {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = TempDir(std::env::temp_dir().join(format!("nats-{}", uuid::Uuid::new_v4())));
        std::fs::create_dir_all(&dir.0).unwrap();
        let child = tokio::process::Command::new("nats-server")
            .args(flags)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("nats-server must be installed for these tests");
        let url = format!("nats://127.0.0.1:{port}");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return PrivateNats {
                    url,
                    _child: child,
                    _dir: dir,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("nats-server did not start on {port}");
    }

    async fn js(&self) -> jetstream::Context {
        jetstream::new(async_nats::connect(&self.url).await.unwrap())
    }
}

/// `nats stream add BILLING --subjects "sahool.billing.*,sahool.payment.*,sahool.subscription.*"
/// --retention limits --max-age 30d --storage file --replicas 1 --discard old`
async fn platform_stream(js: &jetstream::Context) {
    js.create_stream(stream::Config {
        name: "BILLING".into(),
        subjects: vec![
            "sahool.billing.*".into(),
            "sahool.payment.*".into(),
            "sahool.subscription.*".into(),
        ],
        retention: stream::RetentionPolicy::Limits,
        max_age: Duration::from_secs(30 * 86_400),
        storage: stream::StorageType::File,
        num_replicas: 1,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn billing_stream(js: &jetstream::Context) -> stream::Info {
    js.get_stream("BILLING")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone()
}

fn fast() -> RelayOptions {
    RelayOptions {
        batch: 10,
        idle_poll: Duration::from_millis(50),
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        batch_timeout: Duration::from_secs(5),
    }
}

async fn unpublished(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

async fn sign_up(app: &TestApp, tenant: &str) {
    let r = app
        .post(
            "/v1/tenants",
            Auth::Admin,
            json!({"tenant_id": tenant, "name": "Farm", "name_ar": "مزرعة",
                   "email": "o@farm.example.com", "phone": "+967771234567",
                   "plan_id": "free"}),
        )
        .await;
    assert_status!(r, 201);
}

/// A sign-up: tenant and subscription events.
async fn some_events(app: &TestApp) -> i64 {
    sign_up(app, "farm-nats").await;
    let n = unpublished(app).await;
    assert!(n >= 2, "sign-up records events");
    n
}

/// A plain (core NATS) subscriber on `sahool.billing.>`, as other services have.
async fn core_subscriber(url: &str) -> async_nats::Subscriber {
    let client = async_nats::connect(url).await.unwrap();
    let sub = client.subscribe("sahool.billing.>").await.unwrap();
    client.flush().await.unwrap();
    sub
}

/// How many messages the subscriber received (waiting a second for stragglers).
async fn received(mut sub: async_nats::Subscriber) -> i64 {
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), sub.next()).await {
        n += 1;
    }
    n
}

/// How many messages the subscriber has received so far (until it is quiet for 300 ms).
async fn drain(sub: &mut async_nats::Subscriber) -> i64 {
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        n += 1;
    }
    n
}

struct Relay {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.unwrap();
    }
}

/// An app with some events in its outbox, a plain subscriber, and the production relay (stream
/// `BILLING`, subjects `sahool.billing.>`) reporting to the app's `/readyz`.
async fn app_with_events_and_relay(
    nats: &PrivateNats,
) -> (TestApp, i64, async_nats::Subscriber, Relay) {
    let app = TestApp::spawn().await;
    let events = some_events(&app).await;
    let copies = core_subscriber(&nats.url).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(outbox_relay::run_reporting(
        app.pool.clone(),
        nats.url.clone(),
        StreamTarget::default(),
        fast(),
        app.relay_health.clone(),
        stopped,
    ));
    (app, events, copies, Relay { stop, task })
}

#[tokio::test]
async fn events_flow_into_a_billing_stream_created_by_the_platform_script() {
    let nats = PrivateNats::start().await;
    let js = nats.js().await;
    platform_stream(&js).await;
    // The fact the relay relies on, checked on the real server: one stream may not hold both
    // `sahool.billing.*` and `sahool.billing.>`, so the former has to be replaced.
    let mut both = js
        .get_stream("BILLING")
        .await
        .unwrap()
        .cached_info()
        .config
        .clone();
    both.subjects.push("sahool.billing.>".into());
    assert!(
        js.update_stream(&both).await.is_err(),
        "JetStream accepted overlapping subjects within one stream"
    );

    let (app, events, copies, relay) = app_with_events_and_relay(&nats).await;
    wait_until("every event is published", async || {
        unpublished(&app).await == 0
    })
    .await;

    let info = billing_stream(&js).await;
    let mut subjects = info.config.subjects.clone();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "sahool.billing.>",
            "sahool.payment.*",
            "sahool.subscription.*"
        ]
    );
    assert_eq!(
        info.config.max_age,
        Duration::from_secs(30 * 86_400),
        "settings kept"
    );
    assert_eq!(info.config.storage, stream::StorageType::File);
    assert_eq!(
        info.state.messages as i64, events,
        "every event stored once"
    );

    let r = app.get("/readyz", Auth::None).await;
    assert_status!(r, 200);
    assert_eq!(r.body["checks"]["nats"], "connected");
    assert_eq!(r.body["checks"]["events_stream"], "ok");

    relay.stop().await;
    assert_eq!(
        received(copies).await,
        events,
        "a plain subscriber sees each event once, not once per retry"
    );
}

#[tokio::test]
async fn a_stream_that_cannot_capture_the_events_stops_publishing_and_readyz_says_so() {
    let nats = PrivateNats::start().await;
    let js = nats.js().await;
    platform_stream(&js).await;
    // Another stream owns part of `sahool.billing.>`, so BILLING cannot be extended to it.
    js.create_stream(stream::Config {
        name: "INVOICES".into(),
        subjects: vec!["sahool.billing.invoice.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();

    let (app, events, copies, relay) = app_with_events_and_relay(&nats).await;
    wait_until("the relay reports the stream", async || {
        matches!(app.relay_health.get(), RelayState::StreamMisconfigured(_))
    })
    .await;
    // Several retries happen meanwhile (backoff 50-100 ms); none may publish.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let r = app.get("/readyz", Auth::None).await;
    assert_status!(r, 200);
    assert_eq!(r.body["status"], "ready", "the API itself is fine");
    assert_eq!(r.body["checks"]["nats"], "connected");
    assert_eq!(r.body["checks"]["events_stream"], "misconfigured");
    let why = r.body["checks"]["events_stream_error"].as_str().unwrap();
    assert!(
        why.contains("BILLING") && why.contains("sahool.billing.>"),
        "{why}"
    );
    assert_eq!(unpublished(&app).await, events, "events wait in the outbox");
    let subjects = billing_stream(&js).await.config.subjects.clone();
    assert!(
        subjects.contains(&"sahool.billing.*".to_string()),
        "a refused update changes nothing"
    );

    // Once the operator removes the conflict, the next retry fixes the stream and publishes.
    js.delete_stream("INVOICES").await.unwrap();
    wait_until("every event is published", async || {
        unpublished(&app).await == 0
    })
    .await;
    assert_eq!(app.relay_health.get(), RelayState::Publishing);
    relay.stop().await;
    assert_eq!(
        received(copies).await,
        events,
        "nothing reached plain subscribers while the stream could not store it"
    );
}

/// `/readyz` while the relay refuses to publish: connected, but the stream is not right.
async fn assert_misconfigured(app: &TestApp, reason: &str) {
    let r = app.get("/readyz", Auth::None).await;
    assert_status!(r, 200);
    assert_eq!(r.body["status"], "ready", "the API itself is fine");
    assert_eq!(r.body["checks"]["nats"], "connected", "{}", r.body);
    assert_eq!(r.body["checks"]["events_stream"], "misconfigured");
    let why = r.body["checks"]["events_stream_error"].as_str().unwrap();
    assert!(why.contains(reason), "{why}");
}

#[tokio::test]
async fn a_billing_stream_that_cannot_be_created_is_misconfigured_not_unreachable() {
    let nats = PrivateNats::start().await;
    let js = nats.js().await;
    // No BILLING stream, and another stream owns part of `sahool.billing.>`: creating BILLING
    // is refused by JetStream, which is a stream problem, not NATS being down.
    js.create_stream(stream::Config {
        name: "INVOICES".into(),
        subjects: vec!["sahool.billing.invoice.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();

    let (app, events, copies, relay) = app_with_events_and_relay(&nats).await;
    wait_until("the relay reports the stream", async || {
        matches!(app.relay_health.get(), RelayState::StreamMisconfigured(_))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_misconfigured(&app, "BILLING").await;
    assert_eq!(unpublished(&app).await, events, "events wait in the outbox");

    js.delete_stream("INVOICES").await.unwrap();
    wait_until("every event is published", async || {
        unpublished(&app).await == 0
    })
    .await;
    assert_eq!(
        billing_stream(&js).await.config.subjects,
        ["sahool.billing.>"]
    );
    relay.stop().await;
    assert_eq!(
        received(copies).await,
        events,
        "each event reached plain subscribers once"
    );
}

#[tokio::test]
async fn a_server_without_jetstream_gets_nothing_published() {
    // Plain NATS: a JetStream publish would reach the plain subscribers and never be
    // acknowledged, so every retry would deliver the events again.
    let nats = PrivateNats::start_with(&[]).await;
    let (app, events, copies, relay) = app_with_events_and_relay(&nats).await;
    wait_until("the relay reports the stream", async || {
        matches!(app.relay_health.get(), RelayState::StreamMisconfigured(_))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_misconfigured(&app, "JetStream").await;
    assert_eq!(unpublished(&app).await, events, "events wait in the outbox");
    relay.stop().await;
    assert_eq!(
        received(copies).await,
        0,
        "nothing reached plain subscribers"
    );
}

#[tokio::test]
async fn a_stream_replaced_under_a_running_relay_stops_it_after_one_failed_batch() {
    let nats = PrivateNats::start().await;
    let js = nats.js().await;
    platform_stream(&js).await;
    let (app, events, mut copies, relay) = app_with_events_and_relay(&nats).await;
    wait_until("every event is published", async || {
        unpublished(&app).await == 0
    })
    .await;
    assert_eq!(drain(&mut copies).await, events);

    // The platform's script run again after another team took part of the subjects: BILLING
    // is back to `sahool.billing.*` and cannot be extended.
    js.delete_stream("BILLING").await.unwrap();
    js.create_stream(stream::Config {
        name: "INVOICES".into(),
        subjects: vec!["sahool.billing.invoice.>".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    platform_stream(&js).await;
    sign_up(&app, "farm-nats-2").await;
    wait_until("the relay reports the stream", async || {
        matches!(app.relay_health.get(), RelayState::StreamMisconfigured(_))
    })
    .await;
    assert_misconfigured(&app, "sahool.billing.>").await;
    let waiting = unpublished(&app).await;
    assert!(waiting > 0, "the events no stream stores wait");
    // The one batch that failed reached the plain subscribers; the retries after it do not.
    let first = drain(&mut copies).await;
    assert!(first <= 10, "at most one batch: {first}");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        drain(&mut copies).await,
        0,
        "no re-sends while misconfigured"
    );
    assert_eq!(unpublished(&app).await, waiting);
    relay.stop().await;
}
