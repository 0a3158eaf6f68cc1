//! Issuing invoices: line amounts converted and rounded once, totals derived from the lines,
//! gapless numbering, one invoice per subscription period, an outbox event in the same
//! transaction. Both sign-up, the generate endpoint and (later) renewals come through here.

use chrono::{Datelike, Days, NaiveDate};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::discount::{discount_amount, totals_after, DiscountValue, DiscountedTotals};
use crate::billing::money::{convert_from_usd, line_amount, round_money};
use crate::billing::types::{Currency, InvoiceKind, InvoiceLineKind, InvoiceStatus};
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::repository::invoices::{
    InvoiceInsert, InvoiceRepository, InvoiceRow, InvoiceToStore, NewLine,
};
use crate::repository::outbox::StoredEvent;
use crate::repository::plans::Plan;
use crate::repository::rates::RateRepository;
use crate::repository::subscriptions::SubscriptionRow;
use crate::repository::tenants::TenantRow;
use crate::services::coupons;

mod snapshot;
pub use snapshot::invoice_json;

pub type Totals = DiscountedTotals;

/// Subtotal is the sum of the (already rounded) lines other than a discount; the discount is
/// what its line takes off; tax is rounded once from the discounted subtotal (SPEC section 10).
pub fn compute_totals(lines: &[NewLine], tax_rate_percent: Decimal) -> Totals {
    let is_discount = |l: &&NewLine| l.kind == InvoiceLineKind::Discount;
    let subtotal: Decimal = lines
        .iter()
        .filter(|l| !is_discount(l))
        .map(|l| l.amount)
        .sum();
    let discount_amount: Decimal = -lines
        .iter()
        .filter(is_discount)
        .map(|l| l.amount)
        .sum::<Decimal>();
    totals_after(subtotal, discount_amount, tax_rate_percent)
}

/// A coupon's discount to apply to an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedDiscount {
    pub code: String,
    pub value: DiscountValue,
}

/// Adds the line `Discount (CODE)` for what `discount` takes off the lines' subtotal (never
/// more than it); no line when that is zero.
fn add_discount_line(lines: &mut Vec<NewLine>, discount: &AppliedDiscount) {
    let subtotal: Decimal = lines.iter().map(|l| l.amount).sum();
    let off = discount_amount(discount.value, subtotal);
    if off.is_zero() {
        return;
    }
    lines.push(NewLine {
        kind: InvoiceLineKind::Discount,
        description: format!("Discount ({})", discount.code),
        description_ar: format!("خصم ({})", discount.code),
        metric: None,
        quantity: Decimal::ONE,
        unit_price: -off,
        amount: -off,
    });
}

pub struct InvoiceDraft<'a> {
    pub tenant: &'a TenantRow,
    pub subscription_id: Option<Uuid>,
    pub kind: InvoiceKind,
    pub currency: Currency,
    pub exchange_rate: Decimal,
    pub period: Option<(NaiveDate, NaiveDate)>,
    pub lines: Vec<NewLine>,
    pub issue_date: NaiveDate,
    pub due_days: u32,
    pub notes: Option<&'a str>,
    pub notes_ar: Option<&'a str>,
    /// The plan the invoice is issued for (stored on it; the revenue report files it there).
    pub plan_id: Option<&'a str>,
    /// A coupon the subscription holds that covers this invoice.
    pub discount: Option<AppliedDiscount>,
}

/// Computes a drafted invoice: totals from the lines (tax rounded once), the amount limits,
/// zero totals issued paid, the due date. Nothing is stored.
pub fn prepare(mut d: InvoiceDraft<'_>) -> AppResult<InvoiceInsert> {
    if let Some(discount) = &d.discount {
        add_discount_line(&mut d.lines, discount);
    }
    let totals = compute_totals(&d.lines, d.tenant.tax_rate);
    if totals.subtotal < Decimal::ZERO {
        return Err(AppError::internal(anyhow::anyhow!(
            "invoice lines sum below zero"
        )));
    }
    if d.lines.iter().any(|l| !fits_money_column(l.amount)) || !fits_money_column(totals.total) {
        return Err(AppError::unprocessable(
            "amount_too_large",
            "An invoice amount exceeds the 12 digits an amount may have",
            "مبلغ الفاتورة يتجاوز الحد المسموح",
        ));
    }
    if let Some(l) = d
        .lines
        .iter()
        .find(|l| line_amount(l.quantity, l.unit_price) != l.amount)
    {
        return Err(AppError::internal(anyhow::anyhow!(
            "invoice line {:?} does not add up: {} x {} != {}",
            l.kind,
            l.quantity,
            l.unit_price,
            l.amount
        )));
    }
    let zero = totals.total.is_zero();
    let due_date = d
        .issue_date
        .checked_add_days(Days::new(d.due_days.into()))
        .unwrap_or(d.issue_date);
    Ok(InvoiceInsert {
        invoice_id: Uuid::new_v4(),
        tenant_id: d.tenant.tenant_id.clone(),
        subscription_id: d.subscription_id,
        kind: d.kind,
        status: if zero {
            InvoiceStatus::Paid
        } else {
            InvoiceStatus::Pending
        },
        currency: d.currency.code().to_string(),
        exchange_rate: d.exchange_rate,
        period_start: d.period.map(|p| p.0),
        period_end: d.period.map(|p| p.1),
        subtotal: totals.subtotal,
        tax_rate: d.tenant.tax_rate,
        tax_amount: totals.tax_amount,
        discount_amount: totals.discount_amount,
        total: totals.total,
        issue_date: d.issue_date,
        due_date,
        paid_date: zero.then_some(d.issue_date),
        notes: d.notes.map(str::to_string),
        notes_ar: d.notes_ar.map(str::to_string),
        plan_id: d.plan_id.map(str::to_string),
        lines: d.lines,
        event_id: Uuid::new_v4(),
    })
}

/// Stores a drafted invoice. `Ok(None)` when its subscription period was already invoiced.
/// A zero total is issued as paid.
pub async fn issue(conn: &mut PgConnection, d: InvoiceDraft<'_>) -> AppResult<Option<InvoiceRow>> {
    let p = prepare(d)?;
    let number = InvoiceRepository::next_number(conn, p.issue_date.year()).await?;
    let event = generated_event(&p, &number);
    // Invoice, lines and the `invoice_generated` event in one statement.
    let issued = InvoiceRepository::store(conn, to_store(&p, &number, &event)).await?;
    let Some(row) = issued else {
        // The period already has its invoice. The number taken for it must not be spent:
        // the caller rolls back or, having checked first under the subscription lock, never
        // gets here.
        return Ok(None);
    };
    count_issued(row.kind, &row.currency, 1);
    Ok(Some(row))
}

/// Issues prepared invoices of one `year` in one statement (the renewal run's batches), their
/// numbers reserved together in slice order. `Ok(false)` when some period was already
/// invoiced: the caller must roll back.
pub async fn issue_many(
    conn: &mut PgConnection,
    year: i32,
    prepared: &[InvoiceInsert],
) -> AppResult<bool> {
    let numbers = InvoiceRepository::reserve_numbers(conn, year, prepared.len()).await?;
    let events: Vec<StoredEvent> = prepared
        .iter()
        .zip(&numbers)
        .map(|(p, n)| generated_event(p, n))
        .collect();
    let items: Vec<InvoiceToStore<'_>> = prepared
        .iter()
        .zip(&numbers)
        .zip(&events)
        .map(|((p, n), e)| to_store(p, n, e))
        .collect();
    let inserted = InvoiceRepository::store_many(conn, &items).await?;
    if inserted != prepared.len() as u64 {
        return Ok(false);
    }
    for p in prepared {
        count_issued(p.kind, &p.currency, 1);
    }
    Ok(true)
}

/// The `invoice_generated` event of a prepared invoice numbered `number`.
fn generated_event(p: &InvoiceInsert, number: &str) -> StoredEvent {
    let event = Event::InvoiceGenerated {
        invoice_id: p.invoice_id,
        invoice_number: number.to_string(),
        subscription_id: p.subscription_id,
        kind: p.kind,
        status: p.status,
        currency: p.currency.clone(),
        total: p.total,
        due_date: p.due_date,
    };
    StoredEvent::new(p.event_id, Some(&p.tenant_id), &event, chrono::Utc::now())
}

fn to_store<'a>(
    p: &'a InvoiceInsert,
    number: &'a str,
    event: &'a StoredEvent,
) -> InvoiceToStore<'a> {
    InvoiceToStore {
        invoice: p.as_new(number),
        lines: &p.lines,
        event: Some(event),
    }
}

fn count_issued(kind: InvoiceKind, currency: &str, n: u64) {
    metrics::counter!("billing_invoices_issued_total", "kind" => kind.as_str(), "currency" => currency.to_string())
        .increment(n);
}

/// Amounts are stored as numeric(14, 2): at most 12 integer digits.
fn fits_money_column(amount: Decimal) -> bool {
    amount.abs() < Decimal::from(1_000_000_000_000i64)
}

/// The plan line for one period of a subscription, converted into `currency` at `rate`.
pub fn plan_line(plan: &Plan, sub: &SubscriptionRow, rate: Decimal) -> NewLine {
    let price = convert_from_usd(plan.price_usd(sub.billing_cycle), rate);
    NewLine {
        kind: InvoiceLineKind::Plan,
        description: format!("{} - {}", plan.row.name, sub.billing_cycle.label_en()),
        description_ar: format!("{} - {}", plan.row.name_ar, sub.billing_cycle.label_ar()),
        metric: None,
        quantity: Decimal::ONE,
        unit_price: price,
        amount: price,
    }
}

/// Invoices the subscription's current period `[start_date, end_date)` for its plan. Returns
/// `Ok(None)` when that period is already invoiced. The caller holds the subscription lock.
pub async fn issue_subscription_invoice(
    conn: &mut PgConnection,
    tenant: &TenantRow,
    sub: &SubscriptionRow,
    plan: &Plan,
    today: NaiveDate,
    due_days: u32,
) -> AppResult<Option<InvoiceRow>> {
    if InvoiceRepository::get_for_period(
        conn,
        &tenant.tenant_id,
        sub.subscription_id,
        sub.start_date,
    )
    .await?
    .is_some()
    {
        return Ok(None);
    }
    let currency = Currency::parse(&sub.currency)
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("unknown currency on subscription")))?;
    let rate = RateRepository::rate_on(conn, currency, today).await?;
    let covering = coupons::apply::covering(conn, sub, Some(sub.start_date)).await?;
    let issued = issue(
        conn,
        InvoiceDraft {
            tenant,
            subscription_id: Some(sub.subscription_id),
            kind: InvoiceKind::Subscription,
            currency,
            exchange_rate: rate,
            period: Some((sub.start_date, sub.end_date)),
            lines: vec![plan_line(plan, sub, rate)],
            issue_date: today,
            due_days,
            notes: Some("Thank you for choosing SAHOOL"),
            notes_ar: Some("شكراً لاختياركم منصة سهول الزراعية"),
            plan_id: Some(&plan.row.plan_id),
            discount: covering.as_ref().map(|c| c.discount.clone()),
        },
    )
    .await?;
    if let (Some(inv), Some(c)) = (&issued, &covering) {
        coupons::apply::record_use(conn, c, inv.period_start).await?;
    }
    Ok(issued)
}

/// The invoice total expressed in YER (what `amount_yer` reports), rounded once.
pub fn amount_in_yer(inv: &InvoiceRow, yer_rate: Decimal) -> Decimal {
    if inv.currency == "YER" {
        inv.total
    } else {
        round_money(inv.total / inv.exchange_rate * yer_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::money::money_string;
    use proptest::prelude::*;

    fn line(cents: i64) -> NewLine {
        NewLine {
            kind: InvoiceLineKind::Plan,
            description: "x".into(),
            description_ar: "س".into(),
            metric: None,
            quantity: Decimal::ONE,
            unit_price: Decimal::new(cents, 2),
            amount: Decimal::new(cents, 2),
        }
    }

    #[test]
    fn tax_is_rounded_once_from_the_subtotal() {
        let t = compute_totals(&[line(2900), line(333)], Decimal::new(5, 0));
        assert_eq!(money_string(t.subtotal), "32.33");
        assert_eq!(money_string(t.tax_amount), "1.62");
        assert_eq!(money_string(t.total), "33.95");
    }

    proptest! {
        #[test]
        fn totals_equal_the_sum_of_lines_plus_tax(cents in proptest::collection::vec(0i64..10_000_000, 1..20),
                                                   tax_milli in 0i64..100_000) {
            let lines: Vec<NewLine> = cents.iter().map(|c| line(*c)).collect();
            let rate = Decimal::new(tax_milli, 3);
            let t = compute_totals(&lines, rate);
            let sum: Decimal = cents.iter().map(|c| Decimal::new(*c, 2)).sum();
            prop_assert_eq!(t.subtotal, sum);
            prop_assert_eq!(t.total, t.subtotal + t.tax_amount);
            prop_assert_eq!(round_money(t.tax_amount), t.tax_amount);
        }
    }
}
