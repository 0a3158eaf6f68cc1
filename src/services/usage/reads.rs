//! The read side: the gateway's enforce check and the quota report. Neither writes anything.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

use super::overage_preview::{price_excess, Excess, OverageSoFar};
use super::window::{counter_window, current_period, PeriodInfo};
use super::{require_usable, tenant_not_found, unknown_metric, Refusal, UsageError};
use crate::billing::quota::QuotaView;
use crate::billing::types::{MetricKind, MetricName, OveragePolicy, SubscriptionStatus, TenantId};
use crate::error::AppResult;
use crate::repository::plans::PlanRepository;
use crate::repository::subscriptions::SubscriptionRepository;
use crate::repository::tenants::TenantRepository;
use crate::repository::usage::{CounterKey, UsageRepository};
use crate::state::AppState;

/// The answer of an allowed enforce check (plain values borrowed from the request: the hot
/// path allocates nothing for its answer but the serialized bytes).
#[derive(Clone, Copy, Debug)]
pub struct Allowed<'a> {
    pub allowed: bool,
    pub limit: i64,
    pub metric: &'a str,
    pub overage: bool,
    pub remaining: Option<i64>,
    pub requested: i64,
    pub tenant_id: &'a str,
    pub used: i64,
}

/// GET /enforce: would `quantity` more units fit? Never records anything. Plan and
/// subscription state and the counter level come from the short-lived caches (see `cache`);
/// on a miss the level is one primary-key read on `usage_counters`, without a transaction.
pub async fn enforce<'a>(
    state: &AppState,
    tenant: &'a TenantId,
    metric: &'a MetricName,
    quantity: i64,
    now: DateTime<Utc>,
) -> AppResult<Allowed<'a>> {
    let (tenant_id, metric) = (tenant.as_str(), metric.as_str());
    let cache = &state.usage_cache;
    let ctx = cache
        .quota_context(tenant_id, metric)
        .await?
        .ok_or_else(tenant_not_found)?;
    let kind = ctx.kind.ok_or_else(|| unknown_metric(metric))?;
    let info = require_usable(&ctx)?;
    let today = now.date_naive();
    let (period_start, _) = current_period(&info, today);
    let window_start = counter_window(kind, period_start, today);
    let key = CounterKey {
        tenant_id,
        metric,
        window_start,
    };
    let view = QuotaView {
        limit: ctx.limit_value,
        used: cache.level(key, kind == MetricKind::Gauge).await?,
    };
    let fits = view.fits(quantity);
    if !fits && ctx.overage != Some(OveragePolicy::Billed) {
        let refusal = Refusal {
            tenant_id: tenant_id.to_string(),
            metric: metric.to_string(),
            view,
            requested: quantity,
        };
        return Err(UsageError::QuotaExceeded(refusal).into());
    }
    Ok(Allowed {
        allowed: true,
        limit: view.limit,
        metric,
        overage: !fits,
        remaining: view.remaining(),
        requested: quantity,
        tenant_id,
        used: view.used,
    })
}

/// A metric's limit and use for the quota report (limit 0 without a live subscription).
#[derive(Clone, Debug)]
pub struct MetricQuota {
    pub metric: String,
    pub kind: MetricKind,
    pub view: QuotaView,
    /// Use over the limit so far this period and its price (zero within the limit).
    pub overage: OverageSoFar,
}

/// The plan of the live subscription, by id and name.
#[derive(Clone, Debug)]
pub struct PlanNames {
    pub plan_id: String,
    pub name: String,
    pub name_ar: String,
}

/// GET /tenants/{id}/quota: the live subscription's plan and state, every catalogue metric's
/// figures, and the current period's (exclusive) end.
#[derive(Clone, Debug)]
pub struct QuotaReport {
    pub tenant_id: String,
    pub plan: Option<PlanNames>,
    pub status: Option<SubscriptionStatus>,
    pub usage: Vec<MetricQuota>,
    pub period_end: Option<NaiveDate>,
}

struct Snapshot {
    usage: Vec<MetricQuota>,
    status: Option<SubscriptionStatus>,
    plan: Option<PlanNames>,
    period_end: Option<NaiveDate>,
}

async fn snapshot(
    conn: &mut PgConnection,
    tenant_id: &str,
    now: DateTime<Utc>,
) -> AppResult<Snapshot> {
    let today = now.date_naive();
    let sub = SubscriptionRepository::get_live(conn, tenant_id).await?;
    let plan = match &sub {
        Some(s) => PlanRepository::get(conn, &s.plan_id).await?,
        None => None,
    };
    let period = sub.as_ref().map(|s| {
        let info = PeriodInfo {
            start_date: s.start_date,
            end_date: s.end_date,
            anchor_day: s.anchor_day as u32,
            cycle: s.billing_cycle,
            created: s.created_at.date_naive(),
        };
        current_period(&info, today)
    });
    let metrics = PlanRepository::metrics(conn).await?;
    let levels =
        UsageRepository::current_levels(conn, tenant_id, period.map(|p| p.0), today, None).await?;
    let mut usage: Vec<MetricQuota> = metrics
        .iter()
        .map(|m| {
            let limit = plan.as_ref().map(|p| p.limit_for(&m.metric)).unwrap_or(0);
            let used = levels.get(&m.metric).copied().unwrap_or(0);
            MetricQuota {
                metric: m.metric.clone(),
                kind: m.kind,
                view: QuotaView { limit, used },
                overage: OverageSoFar::default(),
            }
        })
        .collect();
    let excess: Vec<Excess<'_>> = usage
        .iter()
        .zip(&metrics)
        .filter(|(q, _)| q.view.limit >= 0 && q.view.used > q.view.limit)
        .map(|(q, m)| Excess {
            metric: &m.metric,
            units: q.view.used - q.view.limit,
            catalogue_rate_usd: m.overage_rate_usd,
        })
        .collect();
    if let (false, Some(s), Some(p)) = (excess.is_empty(), &sub, &plan) {
        let priced = price_excess(conn, s, p, &excess, today).await?;
        let by_metric: Vec<(String, OverageSoFar)> = excess
            .iter()
            .map(|e| e.metric.to_string())
            .zip(priced)
            .collect();
        for q in &mut usage {
            if let Some((_, o)) = by_metric.iter().find(|(m, _)| *m == q.metric) {
                q.overage = *o;
            }
        }
    }
    Ok(Snapshot {
        usage,
        status: sub.as_ref().map(|s| s.status),
        plan: plan.map(|p| PlanNames {
            plan_id: p.row.plan_id,
            name: p.row.name,
            name_ar: p.row.name_ar,
        }),
        period_end: period.map(|p| p.1),
    })
}

/// Every catalogue metric's limit and use now (limit 0 without a live subscription).
pub async fn quota_snapshot(
    conn: &mut PgConnection,
    tenant_id: &str,
    now: DateTime<Utc>,
) -> AppResult<Vec<MetricQuota>> {
    Ok(snapshot(conn, tenant_id, now).await?.usage)
}

/// GET /tenants/{id}/quota. Reads are allowed in every subscription state.
pub async fn quota_report(
    conn: &mut PgConnection,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> AppResult<QuotaReport> {
    let tenant_id = tenant.as_str();
    TenantRepository::get(conn, tenant_id)
        .await?
        .ok_or_else(tenant_not_found)?;
    let s = snapshot(conn, tenant_id, now).await?;
    Ok(QuotaReport {
        tenant_id: tenant_id.to_string(),
        plan: s.plan,
        status: s.status,
        usage: s.usage,
        period_end: s.period_end,
    })
}
