//! POST /tenants/{id}/usage: one event, through the group commit (`coalesce`) when it cannot
//! be refused, else the one-event statement (`UsageRepository::record_event`). The answer is a
//! typed [`Recorded`]; under an Idempotency-Key it is stored as the wire form `http` renders
//! (the key's replays must answer the same bytes), so the caller passes that renderer in.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::recorded::{Recorded, Render, UsageAnswer, Written};
use super::window::{current_period, period_info};
use super::{
    cache, coalesce, load_context, notice, place_event, tenant_not_found, Refusal, UsageError,
    UsageInput,
};
use crate::auth::Principal;
use crate::billing::quota::QuotaView;
use crate::billing::types::{MetricKind, OveragePolicy, TenantId, UsageAction};
use crate::error::{AppError, AppResult};
use crate::repository::usage::{
    CounterKey, EventOutcome, NewUsageRecord, UsageRecordRow, UsageRepository,
};
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::state::AppState;

/// POST /tenants/{id}/usage, under the request's Idempotency-Key when it has one (then the
/// write shares the key's transaction); without one the write is a single autocommitted
/// statement. A refusal on a blocked plan stores no usage; the first refusal of its counter
/// window writes a `quota.exceeded` outbox event, in its own transaction after the usage write
/// was undone (see `notice`).
pub async fn record_usage(
    state: &AppState,
    principal: &Principal,
    tenant: TenantId,
    input: UsageInput,
    key: Option<IdempotencyKey>,
    fingerprint: &str,
    render: Render,
) -> AppResult<UsageAnswer> {
    let now = state.clock.now();
    let at = input.timestamp.unwrap_or(now);
    let (answer, fact) = match key {
        None => {
            let written = match coalesced(state, &tenant, &input, now).await {
                Some(done) => done.map(Written::Recorded),
                None => {
                    let mut conn = state.pool.acquire().await?;
                    record_in(&state.usage_cache, &mut conn, &tenant, input, now).await
                }
            };
            match written? {
                Written::Recorded(r) => {
                    let fact = Fact::Written {
                        duplicate: r.duplicate,
                    };
                    (Ok(UsageAnswer::Recorded(r)), Some(fact))
                }
                Written::Refused(refusal) => (Err(refusal.error()), Some(Fact::Refused(refusal))),
            }
        }
        Some(key) => {
            let (answer, fact) = keyed(
                state,
                principal,
                &tenant,
                input,
                &key,
                fingerprint,
                render,
                now,
            )
            .await;
            (answer.map(UsageAnswer::Stored), fact)
        }
    };
    match fact {
        Some(Fact::Written { duplicate }) => {
            let outcome = if duplicate { "duplicate" } else { "accepted" };
            crate::metrics::count_usage(outcome, 1);
        }
        Some(Fact::Refused(refusal)) => {
            crate::metrics::count_usage("blocked", 1);
            notice::quota_exceeded_once(&state.pool, &state.usage_cache, &refusal, at, now).await;
        }
        None => {}
    }
    answer
}

/// What this request's own write did (none for a replay or an error before the write).
enum Fact {
    Written { duplicate: bool },
    Refused(Refusal),
}

/// The write in the Idempotency-Key's transaction; the fact comes out of the effect beside the
/// stored answer, so nothing reads the answer back.
#[allow(clippy::too_many_arguments)] // the request's parts, each needed once
async fn keyed(
    state: &AppState,
    principal: &Principal,
    tenant: &TenantId,
    input: UsageInput,
    key: &IdempotencyKey,
    fingerprint: &str,
    render: Render,
    now: DateTime<Utc>,
) -> (AppResult<Outcome>, Option<Fact>) {
    let (cache, tid) = (state.usage_cache.clone(), tenant.clone());
    let seen: Arc<OnceLock<Fact>> = Arc::default();
    let witness = seen.clone();
    let result = idempotency::run(
        &state.pool,
        &principal.scope,
        Some(key),
        fingerprint,
        move |conn| {
            Box::pin(async move {
                match record_in(&cache, conn, &tid, input, now).await? {
                    Written::Recorded(r) => {
                        let _ = witness.set(Fact::Written {
                            duplicate: r.duplicate,
                        });
                        Ok(render(&r))
                    }
                    Written::Refused(refusal) => {
                        let error = refusal.error();
                        let _ = witness.set(Fact::Refused(refusal));
                        Err(error)
                    }
                }
            })
        },
    )
    .await;
    // The write noted its new level in the cache before the key's transaction committed; if
    // that transaction did not commit, the note is wrong: drop it.
    if result.is_err() {
        let tenants = std::collections::HashSet::from([tenant.as_str().to_string()]);
        state.usage_cache.forget_levels(&tenants);
    }
    let fact = Arc::into_inner(seen).and_then(OnceLock::into_inner);
    let fact = match (&result, fact) {
        (Ok(o), Some(f @ Fact::Written { .. })) if !o.replayed => Some(f),
        (Err(_), Some(f @ Fact::Refused(_))) => Some(f),
        _ => None,
    };
    (result, fact)
}

/// The group-commit path (see `coalesce`) for an event that qualifies; `None` when it does
/// not, or when the writer could not settle it (then nothing was written).
async fn coalesced(
    state: &AppState,
    tenant: &TenantId,
    input: &UsageInput,
    now: DateTime<Utc>,
) -> Option<AppResult<Recorded>> {
    let (tenant_id, metric) = (tenant.as_str(), input.metric.as_str());
    let ctx = state.usage_cache.cached_context(tenant_id, metric)?;
    let (kind, window_start) = place_event(&ctx, input, now).ok()?;
    let refusable = ctx.overage != Some(OveragePolicy::Billed) && ctx.limit_value != -1;
    if kind == MetricKind::Gauge || refusable || input.action != UsageAction::Increment {
        return None;
    }
    let pending = coalesce::Pending {
        record_id: Uuid::now_v7(),
        tenant_id: tenant_id.to_string(),
        metric: metric.to_string(),
        quantity: input.quantity,
        event_id: input.event_id.clone(),
        recorded_at: input.recorded_at(now),
        metadata: input.metadata.clone(),
        window_start,
        ctx,
    };
    let (record_id, recorded_at, limit) = (
        pending.record_id,
        pending.recorded_at,
        pending.ctx.limit_value,
    );
    let started = Instant::now();
    match state.usage_writer.write(&state.pool, pending).await {
        coalesce::Flushed::Retry => None,
        coalesce::Flushed::Unknown => Some(Err(UsageError::OutcomeUnknown.into())),
        coalesce::Flushed::Unavailable => Some(Err(UsageError::DatabaseUnavailable.into())),
        coalesce::Flushed::Duplicate => Some(match state.pool.acquire().await {
            Ok(mut conn) => duplicate_of(&mut conn, tenant_id, input, now).await,
            Err(e) => Err(e.into()),
        }),
        coalesce::Flushed::Accepted(used) => {
            let key = CounterKey {
                tenant_id,
                metric,
                window_start,
            };
            state.usage_cache.wrote_level(key, started, used, true);
            let view = QuotaView { limit, used };
            Some(Ok(accepted(record_id, tenant_id, input, recorded_at, view)))
        }
    }
}

/// The answer to an event id already stored: its original record. The first copy has
/// committed (a copy racing it waited on the claim).
async fn duplicate_of(
    conn: &mut PgConnection,
    tenant_id: &str,
    input: &UsageInput,
    now: DateTime<Utc>,
) -> AppResult<Recorded> {
    let event_id = input.event_id.as_deref().unwrap_or_default();
    let original = UsageRepository::get_by_event_id(conn, tenant_id, event_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("duplicate usage event vanished")))?;
    duplicate(conn, tenant_id, original, now).await
}

fn accepted(
    record_id: Uuid,
    tenant_id: &str,
    input: &UsageInput,
    recorded_at: DateTime<Utc>,
    view: QuotaView,
) -> Recorded {
    Recorded {
        record_id,
        tenant_id: tenant_id.to_string(),
        metric: input.metric.as_str().to_string(),
        action: input.action,
        quantity: input.quantity,
        recorded_at,
        event_id: input.event_id.clone(),
        view,
        duplicate: false,
    }
}

/// Attempts at a write whose cached context turned out stale, before giving up with 409.
const MAX_STALE_RETRIES: usize = 3;

/// The usage write itself, on `conn` (inside the caller's transaction, or autocommitted). The
/// quota context comes from the cache when fresh; `record_usage_event` checks it against the
/// database in the same statement. A check that fails on a cached context is re-run on one
/// read from the database before it is answered.
pub async fn record_in(
    cache: &cache::UsageCache,
    conn: &mut PgConnection,
    tenant: &TenantId,
    input: UsageInput,
    now: DateTime<Utc>,
) -> AppResult<Written> {
    let tenant_id = tenant.as_str();
    let metric = input.metric.as_str();
    let at = input.recorded_at(now);
    let record_id = Uuid::now_v7();
    let mut cached = cache.cached_context(tenant_id, metric);
    for _ in 0..=MAX_STALE_RETRIES {
        let from_cache = cached.is_some();
        let ctx = match cached.take() {
            Some(ctx) => ctx,
            None => cache
                .load_context(conn, tenant_id, metric)
                .await?
                .ok_or_else(tenant_not_found)?,
        };
        let (kind, window_start) = match place_event(&ctx, &input, now) {
            Ok(placed) => placed,
            Err(_) if from_cache => continue,
            Err(e) => return Err(e),
        };
        let key = CounterKey {
            tenant_id,
            metric,
            window_start,
        };
        let gauge = kind == MetricKind::Gauge;
        let started = Instant::now();
        let record = NewUsageRecord {
            record_id,
            tenant_id,
            subscription_id: ctx.subscription_id,
            metric,
            action: input.action,
            quantity: input.quantity,
            event_id: input.event_id.as_deref(),
            recorded_at: at,
            metadata: &input.metadata,
        };
        let view = |used| QuotaView {
            limit: ctx.limit_value,
            used,
        };
        match UsageRepository::record_event(conn, &record, window_start, gauge, &ctx).await? {
            EventOutcome::Stale => continue,
            EventOutcome::Duplicate => {
                return duplicate_of(conn, tenant_id, &input, now)
                    .await
                    .map(Written::Recorded)
            }
            // The statement confirmed the context before refusing, so the limit is current.
            EventOutcome::Refused(used) => {
                return Ok(Written::Refused(Refusal {
                    tenant_id: tenant_id.to_string(),
                    metric: metric.to_string(),
                    view: view(used),
                    requested: input.quantity,
                }))
            }
            EventOutcome::Accepted(used) => {
                cache.wrote_level(key, started, used, !gauge);
                let r = accepted(record_id, tenant_id, &input, at, view(used));
                return Ok(Written::Recorded(r));
            }
        }
    }
    Err(UsageError::SubscriptionChanging.into())
}

/// A replayed event id: the original record, with its metric's current figures; nothing counted.
async fn duplicate(
    conn: &mut PgConnection,
    tenant_id: &str,
    original: UsageRecordRow,
    now: DateTime<Utc>,
) -> AppResult<Recorded> {
    let (ctx, kind) = load_context(conn, tenant_id, &original.metric).await?;
    let period = period_info(&ctx).map(|p| current_period(&p, now.date_naive()).0);
    let day = if kind == MetricKind::DailyCounter {
        original.recorded_at.date_naive()
    } else {
        now.date_naive()
    };
    let levels =
        UsageRepository::current_levels(conn, tenant_id, period, day, Some(&original.metric))
            .await?;
    let used = levels.get(&original.metric).copied().unwrap_or(0);
    Ok(Recorded {
        record_id: original.record_id,
        tenant_id: tenant_id.to_string(),
        metric: original.metric,
        action: original.action,
        quantity: original.quantity,
        recorded_at: original.recorded_at,
        event_id: original.event_id,
        view: QuotaView {
            limit: ctx.limit_value,
            used,
        },
        duplicate: true,
    })
}
