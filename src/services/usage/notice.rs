//! `quota.exceeded` is told once per tenant, metric and counter window: when the first request
//! of that window is refused. A client retrying a full quota in a loop is refused every time
//! (and each refusal counted in `billing_usage_events_total{outcome="blocked"}`) but adds no
//! event: the outbox is for state changes, and a full window is one.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::cache::UsageCache;
use super::window::{counter_window, current_period, period_info};
use super::Refusal;
use crate::error::AppResult;
use crate::events::Event;
use crate::repository::outbox::OutboxRepository;
use crate::repository::usage::UsageRepository;

/// After `refusal` (of an event at `at`) was answered: writes the
/// window's `quota.exceeded` event if no refusal in that window has. A failure here is logged,
/// not answered: the refusal stands, and the next one tries again.
pub(super) async fn quota_exceeded_once(
    pool: &PgPool,
    cache: &UsageCache,
    refusal: &Refusal,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) {
    if let Err(e) = notify(pool, cache, refusal, at, now).await {
        let tenant = refusal.tenant_id.as_str();
        tracing::warn!(tenant.id = tenant, error = %e, "quota.exceeded event not written");
    }
}

async fn notify(
    pool: &PgPool,
    cache: &UsageCache,
    refusal: &Refusal,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let (tenant_id, metric) = (refusal.tenant_id.as_str(), refusal.metric.as_str());
    // The context the refusal was decided on (it was confirmed against the database, so the
    // cache holds it).
    let Some(ctx) = cache.quota_context(tenant_id, metric).await? else {
        return Ok(());
    };
    let (Some(kind), Some(info)) = (ctx.kind, period_info(&ctx)) else {
        return Ok(());
    };
    let (period_start, _) = current_period(&info, now.date_naive());
    let window_start = counter_window(kind, period_start, at.date_naive());
    let mut tx = pool.begin().await?;
    if UsageRepository::claim_quota_notice(&mut tx, tenant_id, metric, window_start).await? {
        let event = Event::QuotaExceeded {
            metric: metric.to_string(),
            window_start,
            limit: refusal.view.limit,
            used: refusal.view.used,
            requested: refusal.requested,
        };
        OutboxRepository::record_event(&mut tx, Some(tenant_id), &event).await?;
    }
    tx.commit().await?;
    Ok(())
}
