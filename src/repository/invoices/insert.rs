//! The one invoice insert: invoices, their lines and their `invoice_generated` events in ONE
//! statement, for one invoice (sign-up, proration, generate) as for a renewal batch. Every
//! value is computed in Rust (numbers reserved first, payloads built by the event catalogue)
//! and passed as arrays through UNNEST.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{Arguments, PgConnection, Postgres};
use uuid::Uuid;

use super::{InvoiceRow, NewInvoice, NewLine, INVOICE_COLUMNS};
use crate::billing::types::{InvoiceKind, InvoiceLineKind, InvoiceStatus};
use crate::repository::outbox::StoredEvent;

/// One invoice to store: the invoice with its number, its lines, and its event if it has one.
pub struct InvoiceToStore<'a> {
    pub invoice: NewInvoice<'a>,
    pub lines: &'a [NewLine],
    pub event: Option<&'a StoredEvent>,
}

/// Every data-modifying CTE runs whether or not the final SELECT reads it; lines and events
/// take their rows from `inv`, so an invoice whose period already has one (the unique period
/// key) inserts neither.
const INSERT: &str = "WITH src AS (
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::invoice_kind[],
                              $6::invoice_status[], $7::text[], $8::numeric[], $9::date[],
                              $10::date[], $11::numeric[], $12::numeric[], $13::numeric[],
                              $14::numeric[], $15::numeric[], $16::date[], $17::date[], $18::date[],
                              $19::text[], $20::text[], $21::text[], $38::numeric[]) WITH ORDINALITY
              AS t(invoice_id, invoice_number, tenant_id, subscription_id, kind, status, currency,
                   exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, total,
                   amount_paid, issue_date, due_date, paid_date, notes, notes_ar, plan_id,
                   discount_amount, ord)
     ), inv AS (
         INSERT INTO invoices (invoice_id, invoice_number, tenant_id, subscription_id, kind, status,
             currency, exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount,
             discount_amount, total, amount_paid, amount_due, issue_date, due_date, paid_date,
             notes, notes_ar, plan_id)
         SELECT invoice_id, invoice_number, tenant_id, subscription_id, kind, status, currency,
                exchange_rate, period_start, period_end, subtotal, tax_rate, tax_amount, discount_amount, total,
                amount_paid, total - amount_paid, issue_date, due_date, paid_date, notes, notes_ar,
                plan_id
         FROM src ORDER BY ord
         ON CONFLICT (subscription_id, period_start) WHERE kind = 'subscription' DO NOTHING
         RETURNING *
     ), lines AS (
         INSERT INTO invoice_lines (line_id, invoice_id, tenant_id, position, kind, description,
             description_ar, metric, quantity, unit_price, amount)
         SELECT l.id, l.inv, inv.tenant_id, l.pos, l.k, l.d, l.da, l.m, l.q, l.u, l.a
         FROM UNNEST($22::uuid[], $23::uuid[], $24::int[], $25::invoice_line_kind[], $26::text[],
                     $27::text[], $28::text[], $29::numeric[], $30::numeric[], $31::numeric[])
              AS l(id, inv, pos, k, d, da, m, q, u, a)
         JOIN inv ON inv.invoice_id = l.inv
     ), ev AS (
         INSERT INTO outbox_events (event_id, subject, event_type, tenant_id, payload, occurred_at)
         SELECT e.id, e.subject, e.type, inv.tenant_id, e.payload, e.at
         FROM UNNEST($32::uuid[], $33::uuid[], $34::text[], $35::text[], $36::jsonb[],
                     $37::timestamptz[]) WITH ORDINALITY AS e(id, inv, subject, type, payload, at, ord)
         JOIN inv ON inv.invoice_id = e.inv
         ORDER BY e.ord
     )
     ";

/// Stores `items` in one statement; the invoices inserted (fewer than given when a period
/// already had its invoice).
pub(super) async fn insert_returning(
    conn: &mut PgConnection,
    items: &[InvoiceToStore<'_>],
) -> sqlx::Result<Vec<InvoiceRow>> {
    let sql = format!("{INSERT} SELECT {INVOICE_COLUMNS} FROM inv");
    sqlx::query_as_with(&sql, arguments(items)?)
        .fetch_all(conn)
        .await
}

/// Stores `items` in one statement; how many invoices were inserted.
pub(super) async fn insert_counting(
    conn: &mut PgConnection,
    items: &[InvoiceToStore<'_>],
) -> sqlx::Result<u64> {
    let sql = format!("{INSERT} SELECT count(*) FROM inv");
    let q: QueryScalar<'_, Postgres, i64, PgArguments> =
        sqlx::query_scalar_with(&sql, arguments(items)?);
    Ok(q.fetch_one(conn).await? as u64)
}

/// The 37 arrays of [`INSERT`], in parameter order.
fn arguments(items: &[InvoiceToStore<'_>]) -> sqlx::Result<PgArguments> {
    let mut args = PgArguments::default();
    invoice_arguments(&mut args, items).map_err(sqlx::Error::Encode)?;
    line_arguments(&mut args, items).map_err(sqlx::Error::Encode)?;
    event_arguments(&mut args, items).map_err(sqlx::Error::Encode)?;
    // $38, after the lines and events: what a coupon took off each invoice.
    args.add(
        items
            .iter()
            .map(|i| i.invoice.discount_amount)
            .collect::<Vec<Decimal>>(),
    )
    .map_err(sqlx::Error::Encode)?;
    Ok(args)
}

type EncodeResult = Result<(), sqlx::error::BoxDynError>;

fn invoice_arguments(args: &mut PgArguments, items: &[InvoiceToStore<'_>]) -> EncodeResult {
    fn col<'a, T>(items: &'a [InvoiceToStore<'_>], f: impl Fn(&'a NewInvoice<'a>) -> T) -> Vec<T> {
        items.iter().map(|i| f(&i.invoice)).collect()
    }
    args.add(col(items, |i| i.invoice_id))?;
    args.add(col(items, |i| i.invoice_number))?;
    args.add(col(items, |i| i.tenant_id))?;
    args.add(col(items, |i| i.subscription_id))?;
    args.add(col::<InvoiceKind>(items, |i| i.kind))?;
    args.add(col::<InvoiceStatus>(items, |i| i.status))?;
    args.add(col(items, |i| i.currency))?;
    args.add(col(items, |i| i.exchange_rate))?;
    args.add(col::<Option<NaiveDate>>(items, |i| i.period_start))?;
    args.add(col::<Option<NaiveDate>>(items, |i| i.period_end))?;
    args.add(col(items, |i| i.subtotal))?;
    args.add(col(items, |i| i.tax_rate))?;
    args.add(col(items, |i| i.tax_amount))?;
    args.add(col(items, |i| i.total))?;
    args.add(col(items, |i| i.amount_paid))?;
    args.add(col(items, |i| i.issue_date))?;
    args.add(col(items, |i| i.due_date))?;
    args.add(col::<Option<NaiveDate>>(items, |i| i.paid_date))?;
    args.add(col(items, |i| i.notes))?;
    args.add(col(items, |i| i.notes_ar))?;
    args.add(col(items, |i| i.plan_id))?;
    Ok(())
}

fn line_arguments(args: &mut PgArguments, items: &[InvoiceToStore<'_>]) -> EncodeResult {
    let lines: Vec<(Uuid, i32, &NewLine)> = items
        .iter()
        .flat_map(|i| {
            let id = i.invoice.invoice_id;
            i.lines
                .iter()
                .enumerate()
                .map(move |(n, l)| (id, n as i32, l))
        })
        .collect();
    let ids: Vec<Uuid> = lines.iter().map(|_| Uuid::new_v4()).collect();
    args.add(ids)?;
    args.add(lines.iter().map(|l| l.0).collect::<Vec<Uuid>>())?;
    args.add(lines.iter().map(|l| l.1).collect::<Vec<i32>>())?;
    args.add(
        lines
            .iter()
            .map(|l| l.2.kind)
            .collect::<Vec<InvoiceLineKind>>(),
    )?;
    args.add(
        lines
            .iter()
            .map(|l| l.2.description.as_str())
            .collect::<Vec<_>>(),
    )?;
    args.add(
        lines
            .iter()
            .map(|l| l.2.description_ar.as_str())
            .collect::<Vec<_>>(),
    )?;
    args.add(
        lines
            .iter()
            .map(|l| l.2.metric.as_deref())
            .collect::<Vec<_>>(),
    )?;
    args.add(lines.iter().map(|l| l.2.quantity).collect::<Vec<Decimal>>())?;
    args.add(
        lines
            .iter()
            .map(|l| l.2.unit_price)
            .collect::<Vec<Decimal>>(),
    )?;
    args.add(lines.iter().map(|l| l.2.amount).collect::<Vec<Decimal>>())?;
    Ok(())
}

fn event_arguments(args: &mut PgArguments, items: &[InvoiceToStore<'_>]) -> EncodeResult {
    let events: Vec<(Uuid, &StoredEvent)> = items
        .iter()
        .filter_map(|i| i.event.map(|e| (i.invoice.invoice_id, e)))
        .collect();
    args.add(events.iter().map(|e| e.1.event_id).collect::<Vec<Uuid>>())?;
    args.add(events.iter().map(|e| e.0).collect::<Vec<Uuid>>())?;
    args.add(
        events
            .iter()
            .map(|e| e.1.subject.as_str())
            .collect::<Vec<_>>(),
    )?;
    args.add(events.iter().map(|e| e.1.event_type).collect::<Vec<_>>())?;
    args.add(events.iter().map(|e| &e.1.payload).collect::<Vec<&Value>>())?;
    args.add(
        events
            .iter()
            .map(|e| e.1.occurred_at)
            .collect::<Vec<DateTime<Utc>>>(),
    )?;
    Ok(())
}
