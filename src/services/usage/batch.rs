//! POST /usage/batch: metering after the fact, up to 10 000 events in one request.
//!
//! Each event is checked on its own (the single-event rules, plus a required `event_id`); a bad
//! event is reported by index and the rest are still written. Quotas are not enforced (the
//! usage has already happened) but counters stay exact:
//! - records go in with one INSERT ... SELECT FROM UNNEST ... ON CONFLICT DO NOTHING, so an
//!   event id already stored (or repeated inside the batch) is a duplicate and counts nothing;
//! - counter metrics get one aggregated UPSERT per (tenant, metric, window) built from the rows
//!   actually inserted;
//! - gauge events (`set` or a signed delta) are applied one by one in batch order, because a
//!   level that never drops below zero does not commute; their rows are locked first, in key
//!   order, so concurrent batches cannot deadlock.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::PgConnection;

use super::batch_write::{apply_counters, write_records, Accepted};
use super::{tenant_not_found, RecordUsageRequest, UsageInput};
use crate::auth::Principal;
use crate::billing::types::{MetricKind, TenantId, UsageAction};
use crate::error::{AppError, AppResult, FieldIssue};
use crate::repository::plans::PlanRepository;
use crate::repository::usage::{QuotaContext, TenantSubscription, UsageRepository};
use crate::services::idempotency::{self, IdempotencyKey, Outcome, StoredResponse};
use crate::services::validate::Invalid;
use crate::state::AppState;
use crate::storable::{nul_error, nul_path};

pub const MAX_BATCH_EVENTS: usize = 10_000;

#[derive(Debug, Deserialize)]
pub struct BatchRequest<'a> {
    /// Left as JSON text, so one malformed event is rejected by index, not the whole batch,
    /// and no JSON tree is built for ten thousand events.
    #[serde(borrow)]
    pub events: Vec<&'a RawValue>,
}

/// A batch's events after the checks that need no database: the ones that passed (with their
/// index in the batch) and the rejections.
pub struct ParsedBatch {
    events: Vec<(usize, TenantId, UsageInput)>,
    rejected: Vec<Rejection>,
}

/// An event of the batch that was not written: its index and why (the error it would have
/// answered alone).
#[derive(Clone, Debug)]
pub struct Rejection {
    pub index: usize,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldIssue>,
}

/// What a batch came to.
#[derive(Clone, Debug)]
pub struct BatchSummary {
    pub accepted: usize,
    pub duplicates: usize,
    /// In batch order.
    pub rejected: Vec<Rejection>,
}

/// The wire form of a summary (status and body), from `http`: what an Idempotency-Key stores.
pub type RenderBatch = fn(&BatchSummary) -> StoredResponse;

/// The counts of a summary, for after the commit.
#[derive(Clone, Copy)]
struct Counts {
    accepted: usize,
    duplicates: usize,
    rejected: usize,
}

#[derive(Debug, Deserialize)]
struct BatchEvent {
    tenant_id: String,
    metric: String,
    quantity: i64,
    event_id: Option<String>,
    action: Option<UsageAction>,
    timestamp: Option<String>,
    metadata: Option<Value>,
}

impl BatchRequest<'_> {
    /// Each event's shape checks, in batch order.
    pub fn parse(self) -> ParsedBatch {
        let mut batch = ParsedBatch {
            events: Vec::with_capacity(self.events.len()),
            rejected: Vec::new(),
        };
        for (index, raw) in self.events.into_iter().enumerate() {
            match parse_event(raw) {
                Ok((tenant, input)) => batch.events.push((index, tenant, input)),
                Err(e) => batch.rejected.push(rejection(index, &e)),
            }
        }
        batch
    }

    /// Whole-batch checks: the size. Everything else is per event.
    pub fn validate(&self) -> AppResult<()> {
        if self.events.is_empty() || self.events.len() > MAX_BATCH_EVENTS {
            return Err(Invalid::field(
                "events",
                format!("must hold 1 to {MAX_BATCH_EVENTS} events"),
            )
            .into());
        }
        Ok(())
    }
}

/// The batch in one transaction, under the request's Idempotency-Key when it has one; the
/// answer (200 `{accepted, duplicates, rejected}`) is `render`'s.
pub async fn ingest_batch(
    state: &AppState,
    principal: &Principal,
    batch: ParsedBatch,
    key: Option<IdempotencyKey>,
    fingerprint: &str,
    render: RenderBatch,
) -> AppResult<Outcome> {
    let now = state.clock.now();
    let tenants: HashSet<String> = batch
        .events
        .iter()
        .map(|(_, t, _)| t.as_str().to_string())
        .collect();
    let seen: Arc<OnceLock<Counts>> = Arc::default();
    let witness = seen.clone();
    let outcome = idempotency::run(
        &state.pool,
        &principal.scope,
        key.as_ref(),
        fingerprint,
        move |conn| {
            Box::pin(async move {
                let summary = ingest_in(conn, batch, now).await?;
                let _ = witness.set(Counts {
                    accepted: summary.accepted,
                    duplicates: summary.duplicates,
                    rejected: summary.rejected.len(),
                });
                Ok::<_, AppError>(render(&summary))
            })
        },
    )
    .await?;
    let counts = Arc::into_inner(seen).and_then(OnceLock::into_inner);
    if let (false, Some(c)) = (outcome.replayed, counts) {
        // Enforce in this process sees the new levels at once, not after the cache TTL.
        state.usage_cache.forget_levels(&tenants);
        use crate::metrics::count_usage;
        count_usage("accepted", c.accepted as u64);
        count_usage("duplicate", c.duplicates as u64);
        count_usage("rejected", c.rejected as u64);
    }
    Ok(outcome)
}

fn rejection(index: usize, e: &AppError) -> Rejection {
    Rejection {
        index,
        code: e.code,
        message: e.message.clone(),
        fields: e.fields.clone(),
    }
}

/// Shape checks of one event (no database): the single-event rules plus a required event id.
fn parse_event(raw: &RawValue) -> AppResult<(TenantId, UsageInput)> {
    // A NUL can only be written `\u0000` in JSON text. Such an event is refused before it is
    // typed, so that no message (a serde error quotes the value it did not expect) carries it.
    if raw.get().contains("\\u0000") {
        let tree: Option<Value> = serde_json::from_str(raw.get()).ok();
        if let Some(path) = tree.and_then(|t| nul_path(&t, "")) {
            return Err(nul_error(&path));
        }
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    let ev: BatchEvent = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "event".to_string()
        } else {
            path
        };
        Invalid::field(&field, e.into_inner().to_string())
    })?;
    let tenant = TenantId::parse(&ev.tenant_id).map_err(|e| Invalid::field("tenant_id", e))?;
    if ev.event_id.is_none() {
        return Err(Invalid::field("event_id", "is required in a batch").into());
    }
    let input = RecordUsageRequest {
        metric: ev.metric,
        quantity: ev.quantity,
        action: ev.action,
        event_id: ev.event_id,
        timestamp: ev.timestamp,
        metadata: ev.metadata,
    }
    .validate()?;
    Ok((tenant, input))
}

/// Checks that need the tenant's subscription and the metric's kind; returns the window.
fn place_event(
    sub: Option<&TenantSubscription>,
    kinds: &HashMap<String, MetricKind>,
    input: &UsageInput,
    now: DateTime<Utc>,
) -> AppResult<(MetricKind, NaiveDate)> {
    let sub = sub.ok_or_else(tenant_not_found)?;
    let ctx = QuotaContext {
        subscription_id: sub.subscription_id,
        status: sub.status,
        plan_id: None,
        plan_name: None,
        plan_name_ar: None,
        overage: None,
        billing_cycle: sub.billing_cycle,
        anchor_day: sub.anchor_day,
        start_date: sub.start_date,
        end_date: sub.end_date,
        created_at: sub.created_at,
        kind: kinds.get(input.metric.as_str()).copied(),
        limit_value: 0,
    };
    super::place_event(&ctx, input, now)
}

async fn ingest_in(
    conn: &mut PgConnection,
    batch: ParsedBatch,
    now: DateTime<Utc>,
) -> AppResult<BatchSummary> {
    let ParsedBatch {
        events: parsed,
        mut rejected,
    } = batch;
    let tenant_ids: Vec<String> = parsed
        .iter()
        .map(|(_, t, _)| t.as_str().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let subs = UsageRepository::tenant_subscriptions(conn, &tenant_ids).await?;
    let kinds: HashMap<String, MetricKind> = PlanRepository::metrics(conn)
        .await?
        .into_iter()
        .map(|m| (m.metric, m.kind))
        .collect();

    let mut accepted = Vec::with_capacity(parsed.len());
    let mut seen: HashSet<(String, String)> = HashSet::new();
    let mut duplicates = 0usize;
    for (index, tenant, input) in parsed {
        let sub = subs.get(tenant.as_str());
        match place_event(sub, &kinds, &input, now) {
            Err(e) => rejected.push(rejection(index, &e)),
            Ok((kind, window_start)) => {
                let event_id = input.event_id.clone().unwrap_or_default();
                // A repeat inside the batch is a duplicate of its first copy.
                if !seen.insert((tenant.as_str().to_string(), event_id)) {
                    duplicates += 1;
                    continue;
                }
                accepted.push(Accepted {
                    index,
                    tenant_id: tenant.as_str().to_string(),
                    subscription_id: sub.and_then(|s| s.subscription_id),
                    kind,
                    window_start,
                    input,
                });
            }
        }
    }
    rejected.sort_by_key(|r| r.index);

    let inserted = write_records(conn, &mut accepted, now).await?;
    let written = inserted.iter().filter(|i| **i).count();
    duplicates += accepted.len() - written;
    apply_counters(conn, &accepted, &inserted).await?;

    Ok(BatchSummary {
        accepted: written,
        duplicates,
        rejected,
    })
}
