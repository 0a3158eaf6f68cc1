//! Overage for a period that just ended, from the usage counters: period counters bill usage
//! over the limit, daily counters the per-day excess summed, gauges the peak level over the
//! limit. Only plans whose overage policy is `billed` produce lines.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::billing::money::{line_amount, round_unit_price};
use crate::billing::types::{InvoiceLineKind, OveragePolicy};
use crate::error::AppResult;
use crate::repository::invoices::NewLine;
use crate::repository::overage::OverageRepository;
use crate::repository::plans::Plan;
use crate::repository::subscriptions::SubscriptionRow;

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
    let (start, end) = (sub.start_date, sub.end_date);
    let mut rows =
        OverageRepository::counter_excess(conn, &sub.tenant_id, &sub.plan_id, start, end).await?;
    rows.extend(
        OverageRepository::gauge_excess(conn, &sub.tenant_id, &sub.plan_id, start, end).await?,
    );
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
