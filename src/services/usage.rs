//! Usage recording (SPEC sections 4 and 6); the enforce check and the quota report are in
//! `reads`, the counter windows in `window`.
//!
//! The quota check and the write are one UPDATE on `usage_counters` (see
//! `UsageRepository::apply`), so concurrent requests never overshoot a blocked limit. An
//! `event_id` is claimed first by inserting the usage record (unique per tenant); a copy racing
//! the first waits on that index and then answers as a duplicate, and a refused quota rolls the
//! claim back so nothing is left behind.

mod batch;
pub mod cache;
pub mod coalesce;
mod notice;
mod reads;
mod report;
mod window;

pub use batch::{ingest_batch, BatchRequest, MAX_BATCH_EVENTS};
pub use reads::{enforce, quota_report, usage_snapshot};
pub use report::{usage_report, RangeQuery};
pub use window::{current_period, PeriodInfo};

use axum::http::StatusCode;
use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::Principal;
use crate::billing::quota::QuotaView;
use crate::billing::types::{
    MetricKind, MetricName, OveragePolicy, SubscriptionStatus, TenantId, UsageAction,
};
use crate::error::{AppError, AppResult};
use crate::repository::usage::{
    CounterKey, EventOutcome, NewUsageRecord, QuotaContext, UsageRecordRow, UsageRepository,
};
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::services::validate::Checks;
use crate::state::AppState;
use window::{counter_window, period_info};

const MAX_METADATA_BYTES: usize = 16 * 1024;
const MAX_FUTURE_SKEW_SECS: i64 = 300;
pub const MAX_COUNTER_QUANTITY: i64 = 100_000;
const MAX_GAUGE_LEVEL: i64 = 1_000_000_000;

#[derive(Debug, Deserialize)]
pub struct RecordUsageRequest {
    pub metric: String,
    /// Defaults to 1, as the Python service did.
    #[serde(default = "one")]
    pub quantity: i64,
    pub action: Option<UsageAction>,
    pub event_id: Option<String>,
    pub timestamp: Option<String>,
    pub metadata: Option<Value>,
}

fn one() -> i64 {
    1
}

/// A request whose shape has been checked; the checks that need the metric's kind follow.
pub struct UsageInput {
    metric: MetricName,
    quantity: i64,
    action: UsageAction,
    event_id: Option<String>,
    timestamp: Option<DateTime<Utc>>,
    metadata: Value,
}

impl UsageInput {
    /// When the event happened, as the database stores it (microseconds), so the answer shows
    /// what was stored.
    fn recorded_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.timestamp.unwrap_or(now).trunc_subsecs(6)
    }
}

impl RecordUsageRequest {
    pub fn validate(self) -> AppResult<UsageInput> {
        let mut checks = Checks::default();
        let metric = MetricName::parse(&self.metric);
        if let Err(e) = &metric {
            checks.push("metric", e);
        }
        if let Some(id) = &self.event_id {
            if !(1..=200).contains(&id.chars().count()) {
                checks.push("event_id", "must be 1-200 characters");
            }
        }
        let timestamp = match self.timestamp.as_deref().map(DateTime::parse_from_rfc3339) {
            None => None,
            Some(Ok(t)) => Some(t.with_timezone(&Utc)),
            Some(Err(_)) => {
                checks.push("timestamp", "must be an RFC 3339 timestamp");
                None
            }
        };
        let metadata = match self.metadata {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(m @ Value::Object(_)) => {
                if m.to_string().len() > MAX_METADATA_BYTES {
                    checks.push("metadata", "must be at most 16 KiB");
                }
                m
            }
            Some(_) => {
                checks.push("metadata", "must be a JSON object");
                Value::Null
            }
        };
        checks.finish()?;
        Ok(UsageInput {
            metric: metric.map_err(|e| AppError::field("metric", e))?,
            quantity: self.quantity,
            action: self.action.unwrap_or(UsageAction::Increment),
            event_id: self.event_id,
            timestamp,
            metadata,
        })
    }
}

/// Quantity rules by kind: counters take 1..=100 000 increments; gauges take a level
/// 0..=1 000 000 000 with `set`, or a non-zero delta of at most 100 000 either way.
fn check_quantity(kind: MetricKind, action: UsageAction, quantity: i64) -> AppResult<()> {
    let issue = match (kind, action) {
        (MetricKind::Gauge, UsageAction::Set) if !(0..=MAX_GAUGE_LEVEL).contains(&quantity) => {
            Some((
                "quantity",
                "a gauge level must be a whole number from 0 to 1000000000",
            ))
        }
        (MetricKind::Gauge, UsageAction::Increment)
            if quantity == 0 || quantity.abs() > MAX_COUNTER_QUANTITY =>
        {
            Some((
                "quantity",
                "a gauge delta must be a non-zero whole number from -100000 to 100000",
            ))
        }
        (MetricKind::Gauge, _) => None,
        (_, UsageAction::Set) => Some((
            "action",
            "only gauge metrics can be set; counters take increments",
        )),
        (_, UsageAction::Increment) if !(1..=MAX_COUNTER_QUANTITY).contains(&quantity) => {
            Some(("quantity", "must be a whole number from 1 to 100000"))
        }
        _ => None,
    };
    match issue {
        Some((field, text)) => Err(AppError::field(field, text)),
        None => Ok(()),
    }
}

use crate::services::missing::tenant_not_found;

pub(crate) fn unknown_metric(metric: &str) -> AppError {
    AppError::unprocessable(
        "unknown_metric",
        format!("Unknown metric {metric:?}"),
        "المقياس غير معروف",
    )
    .with_extra("metric", metric)
}

/// A context whose subscription may record usage: 402 when there is none or it is suspended.
fn require_usable(ctx: &QuotaContext) -> AppResult<PeriodInfo> {
    match ctx.status {
        None => Err(AppError::new(
            StatusCode::PAYMENT_REQUIRED,
            "no_active_subscription",
            "The tenant has no active subscription",
            "لا يوجد اشتراك نشط",
        )),
        Some(SubscriptionStatus::Suspended) => Err(AppError::new(
            StatusCode::PAYMENT_REQUIRED,
            "subscription_suspended",
            "The subscription is suspended for non-payment",
            "الاشتراك موقوف بسبب عدم السداد",
        )),
        Some(_) => period_info(ctx).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("live subscription without a period"))
        }),
    }
}

async fn load_context(
    conn: &mut PgConnection,
    tenant_id: &str,
    metric: &str,
) -> AppResult<(QuotaContext, MetricKind)> {
    let ctx = UsageRepository::quota_context(conn, tenant_id, metric)
        .await?
        .ok_or_else(tenant_not_found)?;
    let kind = ctx.kind.ok_or_else(|| unknown_metric(metric))?;
    Ok((ctx, kind))
}

fn quota_exceeded(tenant_id: &str, metric: &str, view: QuotaView, requested: i64) -> AppError {
    AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "quota_exceeded",
        format!(
            "Quota exceeded for {metric}: limit {}, used {}",
            view.limit, view.used
        ),
        format!(
            "تم تجاوز الحد الأقصى للاستخدام: {metric}. الحد: {}، المستخدم: {}",
            view.limit, view.used
        ),
    )
    .with_extra("allowed", false)
    .with_extra("tenant_id", tenant_id)
    .with_extra("metric", metric)
    .with_extra("limit", view.limit)
    .with_extra("used", view.used)
    .with_extra("remaining", view.remaining())
    .with_extra("requested", requested)
}

fn figures(view: QuotaView) -> (i64, Option<i64>, bool) {
    (
        view.limit,
        view.remaining(),
        !view.is_unlimited() && view.used > view.limit,
    )
}

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
) -> AppResult<Outcome> {
    let now = state.clock.now();
    let at = input.timestamp.unwrap_or(now);
    let result = match &key {
        None => match coalesced(state, &tenant, &input, now).await {
            Some(done) => done,
            None => {
                let mut conn = state.pool.acquire().await?;
                record_in(&state.usage_cache, &mut conn, &tenant, input, now).await
            }
        }
        .map(|(status, body)| Outcome {
            status,
            body,
            replayed: false,
        }),
        Some(_) => {
            let (cache, tid) = (state.usage_cache.clone(), tenant.clone());
            let result = idempotency::run(
                &state.pool,
                &principal.scope,
                key.as_ref(),
                fingerprint,
                move |conn| {
                    Box::pin(async move { record_in(&cache, conn, &tid, input, now).await })
                },
            )
            .await;
            // The write noted its new level in the cache before the key's transaction
            // committed; if that transaction did not commit, the note is wrong: drop it.
            if result.is_err() {
                let tenants = std::collections::HashSet::from([tenant.as_str().to_string()]);
                state.usage_cache.forget_levels(&tenants);
            }
            result
        }
    };
    match &result {
        Ok(o) if !o.replayed => crate::metrics::count_usage(
            if o.body["duplicate"] == true {
                "duplicate"
            } else {
                "accepted"
            },
            1,
        ),
        Err(e) if e.code == "quota_exceeded" => crate::metrics::count_usage("blocked", 1),
        _ => {}
    }
    if let Err(e) = &result {
        if e.code == "quota_exceeded" {
            notice::quota_exceeded_once(&state.pool, &state.usage_cache, &tenant, e, at, now).await;
        }
    }
    result
}

/// The checks an event must pass against its tenant's quota context (metric known, quantity
/// valid for its kind, subscription usable, timestamp inside the current period and not in
/// the future); returns the metric's kind and the counter window the event belongs to.
pub(crate) fn place_event(
    ctx: &QuotaContext,
    input: &UsageInput,
    now: DateTime<Utc>,
) -> AppResult<(MetricKind, NaiveDate)> {
    let kind = ctx
        .kind
        .ok_or_else(|| unknown_metric(input.metric.as_str()))?;
    check_quantity(kind, input.action, input.quantity)?;
    let info = require_usable(ctx)?;
    let (period_start, _) = current_period(&info, now.date_naive());
    let at = input.timestamp.unwrap_or(now);
    if at > now + Duration::seconds(MAX_FUTURE_SKEW_SECS) {
        return Err(AppError::field(
            "timestamp",
            "must not be more than 5 minutes in the future",
        ));
    }
    if at.date_naive() < period_start {
        return Err(AppError::field(
            "timestamp",
            "must not be before the current billing period",
        ));
    }
    Ok((kind, counter_window(kind, period_start, at.date_naive())))
}

/// The group-commit path (see `coalesce`) for an event that qualifies; `None` when it does
/// not, or when the writer could not settle it (then nothing was written).
async fn coalesced(
    state: &AppState,
    tenant: &TenantId,
    input: &UsageInput,
    now: DateTime<Utc>,
) -> Option<AppResult<(StatusCode, Value)>> {
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
        coalesce::Flushed::Unknown => Some(Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "usage_outcome_unknown",
            "The database connection broke while recording; the event may or may not be \
             stored. Send usage with an event_id so that a retry counts once",
            "انقطع الاتصال بقاعدة البيانات أثناء التسجيل؛ قد يكون الحدث سُجّل أو لا. أرسل event_id ليُحتسب التكرار مرة واحدة",
        ))),
        coalesce::Flushed::Unavailable => Some(Err(AppError::database_unavailable(
            anyhow::anyhow!("usage flush could not reach the database"),
        ))),
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
            Some(Ok(accepted_response(
                record_id,
                tenant_id,
                input,
                recorded_at,
                QuotaView { limit, used },
            )))
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
) -> AppResult<(StatusCode, Value)> {
    let event_id = input.event_id.as_deref().unwrap_or_default();
    let original = UsageRepository::get_by_event_id(conn, tenant_id, event_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("duplicate usage event vanished")))?;
    duplicate_response(conn, tenant_id, &original, now).await
}

fn accepted_response(
    record_id: Uuid,
    tenant_id: &str,
    input: &UsageInput,
    recorded_at: DateTime<Utc>,
    view: QuotaView,
) -> (StatusCode, Value) {
    let (limit, remaining, overage) = figures(view);
    (
        StatusCode::CREATED,
        json!({
            "success": true,
            "record_id": record_id,
            "tenant_id": tenant_id,
            "metric": input.metric.as_str(),
            "action": input.action,
            "quantity": input.quantity,
            "recorded_at": recorded_at,
            "used": view.used,
            "limit": limit,
            "remaining": remaining,
            "overage": overage,
            "duplicate": false,
        }),
    )
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
) -> AppResult<(StatusCode, Value)> {
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
        match UsageRepository::record_event(conn, &record, window_start, gauge, &ctx).await? {
            EventOutcome::Stale => continue,
            EventOutcome::Duplicate => return duplicate_of(conn, tenant_id, &input, now).await,
            // The statement confirmed the context before refusing, so the limit is current.
            EventOutcome::Refused(used) => {
                let view = QuotaView {
                    limit: ctx.limit_value,
                    used,
                };
                return Err(quota_exceeded(tenant_id, metric, view, input.quantity));
            }
            EventOutcome::Accepted(used) => {
                cache.wrote_level(key, started, used, !gauge);
                let view = QuotaView {
                    limit: ctx.limit_value,
                    used,
                };
                return Ok(accepted_response(record_id, tenant_id, &input, at, view));
            }
        }
    }
    Err(AppError::conflict(
        "subscription_changing",
        "The tenant's subscription changed while recording; retry the request",
        "تغير اشتراك المستأجر أثناء التسجيل؛ أعد المحاولة",
    ))
}

/// A replayed event id: the original record, with its metric's current figures; nothing counted.
async fn duplicate_response(
    conn: &mut PgConnection,
    tenant_id: &str,
    original: &UsageRecordRow,
    now: DateTime<Utc>,
) -> AppResult<(StatusCode, Value)> {
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
    let (limit, remaining, overage) = figures(QuotaView {
        limit: ctx.limit_value,
        used,
    });
    Ok((
        StatusCode::OK,
        json!({
            "success": true,
            "record_id": original.record_id,
            "tenant_id": tenant_id,
            "metric": original.metric,
            "action": original.action,
            "quantity": original.quantity,
            "recorded_at": original.recorded_at,
            "event_id": original.event_id,
            "used": used,
            "limit": limit,
            "remaining": remaining,
            "overage": overage,
            "duplicate": true,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_follow_the_metric_kind() {
        use MetricKind::*;
        use UsageAction::*;
        assert!(check_quantity(PeriodCounter, Increment, 1).is_ok());
        assert!(check_quantity(PeriodCounter, Increment, 0).is_err());
        assert!(check_quantity(DailyCounter, Increment, 100_001).is_err());
        assert!(check_quantity(PeriodCounter, Set, 5).is_err());
        assert!(check_quantity(Gauge, Set, 0).is_ok());
        assert!(check_quantity(Gauge, Set, 1_000_000_001).is_err());
        assert!(check_quantity(Gauge, Increment, -100_000).is_ok());
        assert!(check_quantity(Gauge, Increment, 0).is_err());
    }
}
