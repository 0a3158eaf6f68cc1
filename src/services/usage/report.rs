//! GET /tenants/{id}/usage?from&to: what a tenant used over a date range (default: the
//! current billing period). Counters sum the recorded increments in `[from, to)`; gauges report
//! the level at the end of the range (`used`), the level now (`current`) and the highest level
//! in the range (`peak`, tracked per billing window).

use chrono::{DateTime, Datelike, Months, NaiveDate, NaiveTime, Utc};
use sqlx::PgConnection;

use super::tenant_not_found;
use super::window::{current_period, PeriodInfo};
use crate::billing::types::{MetricKind, TenantId};
use crate::error::AppResult;
use crate::repository::plans::PlanRepository;
use crate::repository::subscriptions::SubscriptionRepository;
use crate::repository::tenants::TenantRepository;
use crate::repository::usage::UsageRepository;
use crate::services::validate::Invalid;

/// The raw `from` / `to` query values (`YYYY-MM-DD`, `to` exclusive).
pub struct RangeQuery {
    pub from: Option<String>,
    pub to: Option<String>,
}

fn parse_date(field: &str, v: Option<&str>) -> AppResult<Option<NaiveDate>> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| Invalid::field(field, "must be a date YYYY-MM-DD").into()),
    }
}

impl RangeQuery {
    /// Both dates parsed (422 naming the field when malformed); the range is checked later,
    /// once the defaults are known.
    pub fn parse(&self) -> AppResult<(Option<NaiveDate>, Option<NaiveDate>)> {
        let from = parse_date("from", self.from.as_deref());
        let to = parse_date("to", self.to.as_deref());
        match (from, to) {
            (Ok(f), Ok(t)) => Ok((f, t)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }
}

/// What a tenant used over `[from, to)`, per catalogue metric.
#[derive(Clone, Debug)]
pub struct UsageReport {
    pub tenant_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub metrics: Vec<MetricUsage>,
}

/// One metric's use: counters the sum over the range; gauges the level at its end, with
/// their own figures.
#[derive(Clone, Debug)]
pub struct MetricUsage {
    pub metric: String,
    pub kind: MetricKind,
    pub used: i64,
    pub limit: i64,
    pub gauge: Option<GaugeFigures>,
}

/// A gauge's highest level in the range and its level now.
#[derive(Clone, Copy, Debug)]
pub struct GaugeFigures {
    pub peak: i64,
    pub current: i64,
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

pub async fn usage_report(
    conn: &mut PgConnection,
    tenant: &TenantId,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> AppResult<UsageReport> {
    let tenant_id = tenant.as_str();
    TenantRepository::get(conn, tenant_id)
        .await?
        .ok_or_else(tenant_not_found)?;
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
    // Without a live subscription the default range is the current calendar month.
    let (default_from, default_to) = period.unwrap_or_else(|| {
        let first = today.with_day(1).unwrap_or(today);
        (
            first,
            first.checked_add_months(Months::new(1)).unwrap_or(today),
        )
    });
    let from = from.unwrap_or(default_from);
    let to = to.unwrap_or(default_to);
    if from > to {
        return Err(Invalid::field("from", "must not be after to").into());
    }

    let sums =
        UsageRepository::get_usage_summary(conn, tenant_id, midnight(from), midnight(to)).await?;
    let gauges = UsageRepository::gauge_ranges(conn, tenant_id, from, to).await?;
    let levels =
        UsageRepository::current_levels(conn, tenant_id, period.map(|p| p.0), today, None).await?;
    let mut metrics = Vec::new();
    for m in PlanRepository::metrics(conn).await? {
        let limit = plan.as_ref().map(|p| p.limit_for(&m.metric)).unwrap_or(0);
        let (used, gauge) = if m.kind == MetricKind::Gauge {
            let g = gauges.get(&m.metric).copied().unwrap_or_default();
            let current = levels.get(&m.metric).copied().unwrap_or(0);
            let figures = GaugeFigures {
                peak: g.peak,
                current,
            };
            (g.level_at_end, Some(figures))
        } else {
            (sums.get(&m.metric).copied().unwrap_or(0), None)
        };
        metrics.push(MetricUsage {
            metric: m.metric,
            kind: m.kind,
            used,
            limit,
            gauge,
        });
    }
    Ok(UsageReport {
        tenant_id: tenant_id.to_string(),
        from,
        to,
        metrics,
    })
}
