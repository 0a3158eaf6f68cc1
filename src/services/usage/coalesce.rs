//! Group commit for single usage events: concurrent `POST .../usage` requests that cannot be
//! refused by a quota are written together, a few hundred events in one statement and one
//! commit, and each request is answered only after that commit — so durability and the answer
//! are exactly those of writing the event alone, at a fraction of the cost per event.
//!
//! Which events: no Idempotency-Key (a keyed request shares the key's transaction), a counter
//! metric (gauge levels do not commute), a plan that bills overage or a metric without a limit
//! (nothing to refuse), and a fresh cached quota context. Everything else, and any event this
//! path cannot settle (a stale context, a failed flush), takes the one-event path
//! (`record_usage_event`), which re-reads the context. A failed flush committed nothing, so the
//! fallback cannot count an event twice.
//!
//! One flush is one statement: the events are checked against the subscription and plan they
//! were validated with (a mismatch answers `Stale`), their event ids are claimed (a repeat is
//! `Duplicate`), the records inserted, and the counters raised by their sums in key order (the
//! same order every writer locks in). Each accepted event's `used` is the counter's new level
//! minus the events after it in the flush.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::repository::usage::{GroupColumns, GroupRow, QuotaContext, UsageRepository};

/// Most events in one flush.
const MAX_FLUSH: usize = 512;
/// Flushes in flight at once; while they run, the next flush fills up.
const CONCURRENT_FLUSHES: usize = 2;
/// Events waiting for a flush before senders take the one-event path instead.
const QUEUE: usize = 8_192;

/// One event for the writer, checked and placed in its counter window.
pub struct Pending {
    pub record_id: Uuid,
    pub tenant_id: String,
    pub metric: String,
    pub quantity: i64,
    pub event_id: Option<String>,
    pub recorded_at: DateTime<Utc>,
    pub metadata: serde_json::Value,
    pub window_start: NaiveDate,
    pub ctx: std::sync::Arc<QuotaContext>,
}

/// What became of a pending event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Committed; the counter's level after this event.
    Accepted(i64),
    /// The event id was already stored (or earlier in the same flush); nothing written.
    Duplicate,
    /// Not written: the context changed, or the flush failed. Use the one-event path.
    Retry,
    /// The flush may or may not have committed (the connection broke mid-statement) and the
    /// event has no event id to make a second attempt safe. Tell the caller.
    Unknown,
    /// The database could not be reached (or the connection broke and the event has an event
    /// id, so the client's retry counts once): answer 503 rather than wait again on the main
    /// pool for a database that is gone.
    Unavailable,
}

type Job = (Pending, oneshot::Sender<Flushed>);

/// The handle kept in the application state; the writer task starts on first use.
#[derive(Clone, Default)]
pub struct Writer(Arc<OnceLock<mpsc::Sender<Job>>>);

impl Writer {
    /// Queues `event` and waits for its flush. `Retry` when the queue is full or closed.
    pub async fn write(&self, pool: &PgPool, event: Pending) -> Flushed {
        let sender = self.0.get_or_init(|| start(pool.clone()));
        let unsettled = if event.event_id.is_some() {
            Flushed::Retry
        } else {
            Flushed::Unknown
        };
        let (tx, rx) = oneshot::channel();
        if sender.try_send((event, tx)).is_err() {
            return Flushed::Retry;
        }
        // No answer at all (the flush task died): whether it committed is unknown.
        rx.await.unwrap_or(unsettled)
    }
}

fn start(pool: PgPool) -> mpsc::Sender<Job> {
    // The writer's own connections (one per flush in flight), kept warm, so flushes neither
    // queue behind requests for the main pool nor rotate through its cold connections.
    let pool = crate::db::side_pool(&pool, CONCURRENT_FLUSHES as u32);
    let health = crate::db::health::of(&pool.connect_options());
    let (tx, mut rx) = mpsc::channel::<Job>(QUEUE);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(CONCURRENT_FLUSHES));
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let Some(first) = rx.recv().await else {
                return;
            };
            let mut jobs = vec![first];
            while jobs.len() < MAX_FLUSH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            let (pool, health) = (pool.clone(), health.clone());
            tokio::spawn(async move {
                let (events, replies): (Vec<Pending>, Vec<_>) = jobs.into_iter().unzip();
                let outcomes = match flush(&pool, &events).await {
                    Ok(outcomes) => {
                        crate::metrics::observe_usage_flush(events.len());
                        outcomes
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, events = events.len(), "usage flush failed");
                        health.report(&e);
                        events
                            .iter()
                            .map(|event| unflushed(&e, event.event_id.is_some()))
                            .collect()
                    }
                };
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
                drop(slot);
            });
        }
    });
    tx
}

/// What became of an event whose flush failed with `e`. PostgreSQL refused the statement: nothing
/// was written, and the one-event path will tell why. The connection failed: a broken one may
/// have lost the answer to a commit, which only an event id makes safe to retry.
fn unflushed(e: &sqlx::Error, has_event_id: bool) -> Flushed {
    if !crate::db::health::is_connection_error(e) {
        return Flushed::Retry;
    }
    let ambiguous = matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed
    );
    if ambiguous && !has_event_id {
        Flushed::Unknown
    } else {
        Flushed::Unavailable
    }
}

/// Writes the events in one statement; returns an outcome per event, in order.
async fn flush(pool: &PgPool, events: &[Pending]) -> sqlx::Result<Vec<Flushed>> {
    let mut c = GroupColumns::default();
    for e in events {
        push(&mut c, e);
    }
    let rows = UsageRepository::write_group(pool, &c).await?;
    Ok(levels_per_event(events, &rows))
}

/// Turns the statement's rows into outcomes: an accepted event's level is its counter's final
/// level minus the quantities of the accepted events after it (in flush order) on that counter.
fn levels_per_event(events: &[Pending], rows: &[GroupRow]) -> Vec<Flushed> {
    let mut outcomes = vec![Flushed::Retry; events.len()];
    let mut later: HashMap<(&str, &str, NaiveDate), i64> = HashMap::new();
    for row in rows.iter().rev() {
        let i = (row.n - 1) as usize;
        let Some(e) = events.get(i) else { continue };
        outcomes[i] = match (row.outcome.as_str(), row.level) {
            ("accepted", Some(level)) => {
                let after = later
                    .entry((e.tenant_id.as_str(), e.metric.as_str(), e.window_start))
                    .or_insert(0);
                let mine = level - *after;
                *after += e.quantity;
                Flushed::Accepted(mine)
            }
            ("duplicate", _) => Flushed::Duplicate,
            _ => Flushed::Retry,
        };
    }
    outcomes
}

fn push(c: &mut GroupColumns, e: &Pending) {
    c.record_id.push(e.record_id);
    c.tenant_id.push(e.tenant_id.clone());
    c.subscription_id.push(e.ctx.subscription_id);
    c.metric.push(e.metric.clone());
    c.quantity.push(e.quantity);
    c.event_id.push(e.event_id.clone());
    c.recorded_at.push(e.recorded_at);
    c.metadata.push(e.metadata.clone());
    c.window_start.push(e.window_start);
    c.status.push(e.ctx.status);
    c.plan_id.push(e.ctx.plan_id.clone());
    c.billing_cycle.push(e.ctx.billing_cycle);
    c.anchor_day.push(e.ctx.anchor_day);
    c.start_date.push(e.ctx.start_date);
    c.end_date.push(e.ctx.end_date);
    c.limit.push(e.ctx.limit_value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(tenant: &str, quantity: i64) -> Pending {
        Pending {
            record_id: Uuid::new_v4(),
            tenant_id: tenant.into(),
            metric: "fields".into(),
            quantity,
            event_id: None,
            recorded_at: Utc::now(),
            metadata: serde_json::json!({}),
            window_start: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
            ctx: std::sync::Arc::new(QuotaContext {
                subscription_id: None,
                status: None,
                plan_id: None,
                plan_name: None,
                plan_name_ar: None,
                overage: None,
                billing_cycle: None,
                anchor_day: None,
                start_date: None,
                end_date: None,
                created_at: None,
                kind: None,
                limit_value: -1,
            }),
        }
    }

    #[test]
    fn each_accepted_event_sees_the_level_just_after_it() {
        let events = [
            pending("a", 2),
            pending("b", 5),
            pending("a", 3),
            pending("a", 1),
        ];
        let row = |n: i64, outcome: &str, level: Option<i64>| GroupRow {
            n,
            outcome: outcome.into(),
            level,
        };
        // Counter a ends at 10 after its accepted events +2 and +1 (its +3 is a duplicate),
        // so they saw 9 and 10.
        let rows = [
            row(1, "accepted", Some(10)),
            row(2, "accepted", Some(5)),
            row(3, "duplicate", None),
            row(4, "accepted", Some(10)),
        ];
        assert_eq!(
            levels_per_event(&events, &rows),
            vec![
                Flushed::Accepted(9),
                Flushed::Accepted(5),
                Flushed::Duplicate,
                Flushed::Accepted(10),
            ]
        );
    }
}
