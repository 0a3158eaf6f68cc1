//! Tenant credit balances: downgrade credits are granted here and applied automatically to the
//! next invoices as a credit line (never more than the invoice's charges).

use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::types::{Currency, InvoiceLineKind};
use crate::error::AppResult;
use crate::repository::invoices::{InvoiceRow, NewLine};

pub async fn balance(
    conn: &mut PgConnection,
    tenant_id: &str,
    currency: Currency,
) -> sqlx::Result<Decimal> {
    sqlx::query_scalar(
        "SELECT COALESCE(SUM(amount), 0) FROM credit_balance_entries WHERE tenant_id = $1 AND currency = $2",
    )
    .bind(tenant_id)
    .bind(currency.code())
    .fetch_one(conn)
    .await
}

pub async fn grant(
    conn: &mut PgConnection,
    tenant_id: &str,
    currency: Currency,
    amount: Decimal,
    reason: &str,
    subscription_id: Option<Uuid>,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO credit_balance_entries (entry_id, tenant_id, currency, amount, reason, subscription_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::new_v4())
    .bind(tenant_id)
    .bind(currency.code())
    .bind(amount)
    .bind(reason)
    .bind(subscription_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds a credit line worth `min(balance, charges)` when the tenant has credit. The caller
/// holds the subscription lock, which serializes every writer of this tenant's balance.
pub async fn apply_to_lines(
    conn: &mut PgConnection,
    tenant_id: &str,
    currency: Currency,
    lines: &mut Vec<NewLine>,
) -> AppResult<()> {
    let available = balance(conn, tenant_id, currency).await?;
    let charges: Decimal = lines.iter().map(|l| l.amount).sum();
    let applied = available.min(charges);
    if applied > Decimal::ZERO {
        lines.push(NewLine {
            kind: InvoiceLineKind::Credit,
            description: "Account credit applied".into(),
            description_ar: "رصيد دائن مطبق".into(),
            metric: None,
            quantity: Decimal::ONE,
            unit_price: -applied,
            amount: -applied,
        });
    }
    Ok(())
}

/// Records the credit an issued invoice consumed (its credit lines) against the balance.
pub async fn record_applied(conn: &mut PgConnection, invoice: &InvoiceRow) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO credit_balance_entries (entry_id, tenant_id, currency, amount, reason, subscription_id, invoice_id)
         SELECT $1, $2, $3, SUM(amount), 'applied to invoice', $4, $5
         FROM invoice_lines WHERE invoice_id = $5 AND kind = 'credit'
         HAVING SUM(amount) < 0",
    )
    .bind(Uuid::new_v4())
    .bind(&invoice.tenant_id)
    .bind(&invoice.currency)
    .bind(invoice.subscription_id)
    .bind(invoice.invoice_id)
    .execute(conn)
    .await?;
    Ok(())
}
