//! Overage for a period that just ended, from the usage counters: period counters bill usage
//! over the limit, daily counters the per-day excess summed, gauges the peak level over the
//! limit. Only plans whose overage policy is `billed` produce lines.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::billing::pricing::{LinePart, OveragePricing, PricedLine};
use crate::billing::types::{InvoiceLineKind, OveragePolicy};
use crate::error::AppResult;
use crate::repository::invoices::NewLine;
use crate::repository::overage::{Excess, OverageRepository};
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
    let mut lines = Vec::new();
    for r in rows.into_iter().filter(|r| r.excess > 0) {
        // Prices in the invoice currency as printed (6 decimals), so each line adds up on paper.
        let pricing = plan
            .pricing_for(&r.metric, r.overage_rate_usd)
            .converted(fx);
        let volume = matches!(pricing, OveragePricing::Volume { .. });
        for priced in pricing.lines(r.excess.unsigned_abs()) {
            let (en, ar) = describe(&r, &priced, volume);
            lines.push(NewLine {
                kind: InvoiceLineKind::Overage,
                description: en,
                description_ar: ar,
                metric: Some(r.metric.clone()),
                quantity: Decimal::from(priced.quantity),
                unit_price: priced.unit_price,
                amount: priced.amount,
            });
        }
    }
    Ok(lines)
}

fn range(from: u64, up_to: Option<u64>) -> (String, String) {
    match up_to {
        Some(to) => (format!("{from}-{to}"), format!("{from}-{to}")),
        None => (format!("{from} and above"), format!("{from} فأكثر")),
    }
}

/// What an overage line says in both languages: the metric, how far over the limit, and
/// which tier or package the line prices.
fn describe(r: &Excess, line: &PricedLine, volume: bool) -> (String, String) {
    let over = format!("{} over the limit of {}", r.excess, r.lim);
    let over_ar = format!("{} فوق الحد {}", r.excess, r.lim);
    match line.part {
        LinePart::Units => (
            format!("Overage: {} ({over})", r.name),
            format!("رسوم تجاوز: {} ({over_ar})", r.name_ar),
        ),
        LinePart::Tier { from, up_to, .. } if volume => {
            let (en, ar) = range(from, up_to);
            (
                format!("Overage: {}, all units at the {en} tier ({over})", r.name),
                format!(
                    "رسوم تجاوز: {}، كل الوحدات بسعر الشريحة {ar} ({over_ar})",
                    r.name_ar
                ),
            )
        }
        LinePart::Tier { from, up_to, .. } => {
            let (en, ar) = range(from, up_to);
            (
                format!("Overage: {}, units {en} ({over})", r.name),
                format!("رسوم تجاوز: {}، الوحدات {ar} ({over_ar})", r.name_ar),
            )
        }
        LinePart::FlatFee { index } => (
            format!("Overage: {}, flat fee of tier {}", r.name, index + 1),
            format!("رسوم تجاوز: {}، رسم ثابت للشريحة {}", r.name_ar, index + 1),
        ),
        LinePart::Packages { size } => (
            format!("Overage: {}, packages of {size} units ({over})", r.name),
            format!("رسوم تجاوز: {}، حزم من {size} وحدة ({over_ar})", r.name_ar),
        ),
    }
}
