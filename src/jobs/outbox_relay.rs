//! The outbox relay: publishes `outbox_events` rows to NATS JetStream, oldest first.
//!
//! Delivery is at least once into the stream and, in practice, exactly once: a batch is claimed
//! with `FOR UPDATE SKIP LOCKED` (another replica's relay skips it), published, and marked
//! `published_at` only after JetStream acknowledged each message, all in one transaction. A crash
//! between the ack and the commit republishes the batch later; each message carries the event
//! id as `Nats-Msg-Id`, so JetStream drops the copy within its duplicate window. While NATS is
//! unreachable, or its stream does not capture our subjects, rows simply wait, with `attempts` and
//! `last_error` showing why.

use std::future::IntoFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::HeaderMap;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::{timeout_at, Instant};
use uuid::Uuid;

use crate::repository::outbox::{OutboxRepository, PendingEvent};

mod target;

pub use target::{
    connect, covers, ensure_stream, StreamMisconfigured, StreamTarget, DUPLICATE_WINDOW,
    STREAM_NAME, SUBJECT_ROOT,
};

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Events per transaction.
    pub batch: i64,
    /// Sleep when the outbox is empty.
    pub idle_poll: Duration,
    /// First wait after a failure; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Deadline for publishing a whole batch and receiving its acks; it bounds how long row locks
    /// are held and how long a graceful stop waits.
    pub batch_timeout: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            batch: 100,
            idle_poll: Duration::from_secs(1),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            batch_timeout: Duration::from_secs(10),
        }
    }
}

/// What happened to one claimed batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    pub acked: Vec<Uuid>,
    pub failed: Vec<Uuid>,
    pub error: Option<String>,
}

/// Publishes `events` in order and waits for their acks. All messages are sent before any ack is
/// awaited, so a batch costs one round trip, not one per event. Never takes longer than
/// `batch_timeout`; whatever is not acked by then counts as failed.
pub async fn publish_batch(
    js: &jetstream::Context,
    target: &StreamTarget,
    events: &[PendingEvent],
    batch_timeout: Duration,
) -> BatchOutcome {
    let deadline = Instant::now() + batch_timeout;
    let mut out = BatchOutcome::default();
    let mut in_flight = Vec::with_capacity(events.len());
    for ev in events {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            ev.event_id.to_string().as_str(),
        );
        let payload = match serde_json::to_vec(&ev.payload) {
            Ok(p) => p,
            Err(e) => {
                out.failed.push(ev.event_id);
                out.error
                    .get_or_insert_with(|| format!("payload not serializable: {e}"));
                continue;
            }
        };
        let send =
            js.publish_with_headers(target.subject_for(&ev.subject), headers, payload.into());
        match timeout_at(deadline, send).await {
            Ok(Ok(ack)) => in_flight.push((ev.event_id, ack)),
            Ok(Err(e)) => {
                out.failed.push(ev.event_id);
                out.error
                    .get_or_insert_with(|| format!("publish failed: {e}"));
            }
            Err(_) => {
                out.failed.push(ev.event_id);
                out.error.get_or_insert_with(|| "publish timed out".into());
            }
        }
    }
    for (id, ack) in in_flight {
        match timeout_at(deadline, ack.into_future()).await {
            Ok(Ok(_)) => out.acked.push(id),
            Ok(Err(e)) => {
                out.failed.push(id);
                out.error
                    .get_or_insert_with(|| format!("JetStream did not store the event: {e}"));
            }
            Err(_) => {
                out.failed.push(id);
                out.error
                    .get_or_insert_with(|| "timed out waiting for the JetStream ack".into());
            }
        }
    }
    out
}

/// Relays one batch with the default batch timeout. Returns how many events were published;
/// an error when any event of the batch was not (the others are still marked published).
pub async fn relay_once(
    pool: &PgPool,
    js: &jetstream::Context,
    target: &StreamTarget,
    batch: i64,
) -> anyhow::Result<usize> {
    relay_batch(
        pool,
        js,
        target,
        batch,
        RelayOptions::default().batch_timeout,
    )
    .await
}

async fn relay_batch(
    pool: &PgPool,
    js: &jetstream::Context,
    target: &StreamTarget,
    batch: i64,
    batch_timeout: Duration,
) -> anyhow::Result<usize> {
    // Publishing while disconnected would only fill the client's buffer and time out; count the
    // attempt without claiming the batch for the whole timeout.
    if js.client().connection_state() != async_nats::connection::State::Connected {
        let error = "NATS connection lost; waiting for it to come back";
        let mut conn = pool.acquire().await?;
        OutboxRepository::note_relay_failure(&mut conn, batch, error).await?;
        anyhow::bail!(error);
    }
    let mut tx = pool.begin().await?;
    let events = OutboxRepository::claim_pending(&mut tx, batch).await?;
    if events.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let outcome = publish_batch(js, target, &events, batch_timeout).await;
    OutboxRepository::mark_published(&mut tx, &outcome.acked).await?;
    if let Some(error) = &outcome.error {
        OutboxRepository::mark_failed(&mut tx, &outcome.failed, error).await?;
    }
    tx.commit().await?;
    match outcome.error {
        None => Ok(outcome.acked.len()),
        Some(error) => Err(anyhow::anyhow!(
            "{} of {} events not published: {error}",
            outcome.failed.len(),
            events.len()
        )),
    }
}

/// What the relay is doing, for `/readyz`. Shared between the relay task and the HTTP state.
#[derive(Clone, Default)]
pub struct RelayHealth(Arc<Mutex<RelayState>>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RelayState {
    /// No `NATS_URL`: events stay in the outbox by design.
    #[default]
    NotConfigured,
    Starting,
    /// Connected, and the stream captures every subject the relay publishes.
    Publishing,
    Unreachable(String),
    /// Connected, but the stream does not capture our subjects and could not be changed to;
    /// nothing is published until it does.
    StreamMisconfigured(String),
}

impl RelayHealth {
    pub fn get(&self) -> RelayState {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records `state`; returns whether it differs from the previous one.
    fn set(&self, state: RelayState) -> bool {
        let mut cur = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let changed = *cur != state;
        *cur = state;
        changed
    }
}

/// The relay `serve` runs when `NATS_URL` is set: until `shutdown` flips, finishing the batch
/// in progress.
pub async fn run(
    pool: PgPool,
    nats_url: String,
    health: RelayHealth,
    shutdown: watch::Receiver<bool>,
) {
    run_reporting(
        pool,
        nats_url,
        StreamTarget::default(),
        RelayOptions::default(),
        health,
        shutdown,
    )
    .await
}

pub async fn run_with(
    pool: PgPool,
    nats_url: String,
    target: StreamTarget,
    opts: RelayOptions,
    shutdown: watch::Receiver<bool>,
) {
    run_reporting(
        pool,
        nats_url,
        target,
        opts,
        RelayHealth::default(),
        shutdown,
    )
    .await
}

pub async fn run_reporting(
    pool: PgPool,
    nats_url: String,
    target: StreamTarget,
    opts: RelayOptions,
    health: RelayHealth,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut link: Option<Link> = None;
    let mut backoff = opts.initial_backoff;
    health.set(RelayState::Starting);
    tracing::info!(job = "outbox_relay", stream = %target.name, "outbox relay started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let wait = match step(&pool, &nats_url, &target, &opts, &mut link, &health).await {
            Ok(n) => {
                backoff = opts.initial_backoff;
                if n as i64 >= opts.batch {
                    continue; // more are probably waiting
                }
                opts.idle_poll
            }
            Err(e) => {
                tracing::warn!(job = "outbox_relay", error = %e, retry_in_ms = backoff.as_millis() as u64, "outbox relay failed");
                let wait = backoff;
                backoff = (backoff * 2).min(opts.max_backoff);
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!(job = "outbox_relay", "outbox relay stopped");
}

/// A connection whose stream was checked when the client had connected `connects` times.
struct Link {
    js: jetstream::Context,
    connects: u64,
}

fn connects(js: &jetstream::Context) -> u64 {
    js.client()
        .statistics()
        .connects
        .load(std::sync::atomic::Ordering::Relaxed)
}

async fn step(
    pool: &PgPool,
    nats_url: &str,
    target: &StreamTarget,
    opts: &RelayOptions,
    link: &mut Option<Link>,
    health: &RelayHealth,
) -> anyhow::Result<usize> {
    // After the client reconnected by itself (perhaps to a server whose stream is another),
    // check the stream again before publishing.
    let checked = match link.take() {
        Some(l) if connects(&l.js) == l.connects => Ok(l),
        Some(l) => ensure_stream(&l.js, target).await.map(|()| Link {
            connects: connects(&l.js),
            js: l.js,
        }),
        None => connect(nats_url, target).await.map(|js| Link {
            connects: connects(&js),
            js,
        }),
    };
    let ctx = match checked {
        Ok(l) => &link.insert(l).js,
        Err(e) => {
            let state = match e.downcast_ref::<StreamMisconfigured>() {
                Some(m) => RelayState::StreamMisconfigured(m.0.clone()),
                None => RelayState::Unreachable(format!("{e:#}")),
            };
            if let (true, RelayState::StreamMisconfigured(why)) =
                (health.set(state.clone()), &state)
            {
                tracing::error!(job = "outbox_relay", stream = %target.name, error = %why, "events are not published: the stream does not capture them");
            }
            let mut conn = pool.acquire().await?;
            OutboxRepository::note_relay_failure(&mut conn, opts.batch, &format!("{e:#}")).await?;
            return Err(e);
        }
    };
    let result = relay_batch(pool, ctx, target, opts.batch, opts.batch_timeout).await;
    match &result {
        Ok(_) => {
            health.set(RelayState::Publishing);
        }
        Err(e) => {
            if ctx.client().connection_state() != async_nats::connection::State::Connected {
                health.set(RelayState::Unreachable(format!("{e:#}")));
            }
            // Start over with a fresh connection and stream check: the stream may have been
            // deleted or changed, or the server replaced.
            *link = None;
        }
    }
    result
}
