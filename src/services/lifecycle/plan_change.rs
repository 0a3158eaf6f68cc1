//! The money side of a plan change outside a trial: prorated by the remaining days, a positive
//! net invoiced now (with the coupon that covers it), a negative one credited to the balance.

use chrono::NaiveDate;

use super::*;
use crate::repository::plans::Plan;

pub(super) async fn prorate_plan_change(
    conn: &mut PgConnection,
    config: &Config,
    tenant: &TenantId,
    sub: &SubscriptionRow,
    old_plan: &Plan,
    new_plan: &Plan,
    today: NaiveDate,
) -> SubscriptionResult<ProrationOutcome> {
    let currency = Currency::parse(&sub.currency).ok_or(SubscriptionError::Inconsistent(
        "unknown subscription currency",
    ))?;
    let rate = RateRepository::rate_on(conn, currency, today).await?;
    let old_price = convert_from_usd(old_plan.price_usd(sub.billing_cycle), rate);
    let new_price = convert_from_usd(new_plan.price_usd(sub.billing_cycle), rate);
    let p = prorate(old_price, new_price, sub.start_date, sub.end_date, today);
    let net = p.net();
    let mut invoice_id = None;
    if net > Decimal::ZERO {
        let tenant_row = TenantRepository::get(conn, tenant.as_str())
            .await?
            .ok_or(SubscriptionError::TenantNotFound)?;
        let lines = proration_lines(&old_plan.row, &new_plan.row, &p);
        let covering = coupons::apply::covering(conn, sub, Some(sub.start_date))
            .await
            .map_err(|e| SubscriptionError::Other(e.into()))?;
        let inv = invoicing::issue(
            conn,
            InvoiceDraft {
                tenant: &tenant_row,
                subscription_id: Some(sub.subscription_id),
                kind: InvoiceKind::Proration,
                currency,
                exchange_rate: rate,
                period: Some((today, sub.end_date)),
                lines,
                issue_date: today,
                due_days: config.invoice_due_days,
                notes: Some("Proration invoice for plan change"),
                notes_ar: Some("فاتورة تناسبية لتغيير الخطة"),
                plan_id: Some(&new_plan.row.plan_id),
                discount: covering.as_ref().map(|c| c.discount.clone()),
            },
        )
        .await?
        .ok_or(SubscriptionError::Inconsistent(
            "proration invoice not stored",
        ))?;
        if let Some(c) = &covering {
            coupons::apply::record_use(conn, c, Some(sub.start_date))
                .await
                .map_err(|e| SubscriptionError::Other(e.into()))?;
        }
        invoice_id = Some(inv.invoice_id);
    } else if net < Decimal::ZERO {
        credits::grant(
            conn,
            tenant.as_str(),
            currency,
            -net,
            &format!(
                "downgrade from {} to {}",
                old_plan.row.plan_id, new_plan.row.plan_id
            ),
            Some(sub.subscription_id),
        )
        .await?;
    }
    Ok(ProrationOutcome {
        proration: p,
        currency,
        invoice_id,
    })
}
