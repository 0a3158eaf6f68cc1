//! Overage for a period that just ended, from the usage counters: period counters bill usage
//! over the limit, daily counters the per-day excess summed, gauges the peak level over the
//! limit. Only plans whose overage policy is `billed` produce lines.

use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};

use crate::billing::money::{line_amount, round_unit_price};
use crate::billing::types::{InvoiceLineKind, OveragePolicy};
use crate::error::AppResult;
use crate::repository::invoices::NewLine;
use crate::repository::plans::Plan;
use crate::repository::subscriptions::SubscriptionRow;

#[derive(FromRow)]
struct Excess {
    metric: String,
    name: String,
    name_ar: String,
    overage_rate_usd: Decimal,
    lim: i64,
    excess: i64,
}

/// Lines for `[sub.start_date, sub.end_date)`, priced in the invoice currency at `fx`.
pub async fn lines_for_period(
    conn: &mut PgConnection,
    sub: &SubscriptionRow,
    plan: &Plan,
    fx: Decimal,
) -> AppResult<Vec<NewLine>> {
    if plan.row.overage != OveragePolicy::Billed {
        return Ok(Vec::new());
    }
    let mut rows: Vec<Excess> = sqlx::query_as(
        "SELECT m.metric, m.name, m.name_ar, m.overage_rate_usd, COALESCE(l.limit_value, 0) AS lim,
                SUM(GREATEST(c.used - COALESCE(l.limit_value, 0), 0))::bigint AS excess
         FROM metrics m
         JOIN usage_counters c ON c.metric = m.metric AND c.tenant_id = $1
                              AND c.window_start >= $2 AND c.window_start < $3
         LEFT JOIN plan_limits l ON l.plan_id = $4 AND l.metric = m.metric
         WHERE m.kind IN ('period_counter', 'daily_counter') AND COALESCE(l.limit_value, 0) <> -1
         GROUP BY m.metric, m.name, m.name_ar, m.overage_rate_usd, l.limit_value",
    )
    .bind(&sub.tenant_id)
    .bind(sub.start_date)
    .bind(sub.end_date)
    .bind(&sub.plan_id)
    .fetch_all(&mut *conn)
    .await?;
    // A gauge's level carries over: its peak in the period is the period row's peak, or the
    // last level before the period when nothing changed during it.
    let gauges: Vec<Excess> = sqlx::query_as(
        "SELECT metric, name, name_ar, overage_rate_usd, lim, GREATEST(level - lim, 0) AS excess
         FROM (
            SELECT DISTINCT ON (m.metric) m.metric, m.name, m.name_ar, m.overage_rate_usd,
                   COALESCE(l.limit_value, 0) AS lim,
                   CASE WHEN c.window_start >= $2 THEN c.peak ELSE c.used END AS level
            FROM metrics m
            JOIN usage_counters c ON c.metric = m.metric AND c.tenant_id = $1 AND c.window_start < $3
            LEFT JOIN plan_limits l ON l.plan_id = $4 AND l.metric = m.metric
            WHERE m.kind = 'gauge' AND COALESCE(l.limit_value, 0) <> -1
            ORDER BY m.metric, c.window_start DESC
         ) g",
    )
    .bind(&sub.tenant_id)
    .bind(sub.start_date)
    .bind(sub.end_date)
    .bind(&sub.plan_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.extend(gauges);
    rows.sort_by(|a, b| a.metric.cmp(&b.metric));
    Ok(rows
        .into_iter()
        .filter(|r| r.excess > 0)
        .map(|r| {
            // The amount comes from the unit price as printed, so the line adds up on paper.
            let unit = round_unit_price(r.overage_rate_usd * fx);
            NewLine {
                kind: InvoiceLineKind::Overage,
                description: format!(
                    "Overage: {} ({} over the limit of {})",
                    r.name, r.excess, r.lim
                ),
                description_ar: format!(
                    "رسوم تجاوز: {} ({} فوق الحد {})",
                    r.name_ar, r.excess, r.lim
                ),
                metric: Some(r.metric),
                quantity: Decimal::from(r.excess),
                unit_price: unit,
                amount: line_amount(Decimal::from(r.excess), unit),
            }
        })
        .collect())
}
