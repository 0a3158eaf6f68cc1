//! Tenant credit balances: downgrade credits are granted here and applied automatically to the
//! next invoices as a credit line (never more than the invoice's charges).

use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::types::{Currency, InvoiceLineKind};
use crate::error::AppResult;
use crate::repository::credits::CreditRepository;
use crate::repository::invoices::{InvoiceRow, NewLine};

pub async fn balance(
    conn: &mut PgConnection,
    tenant_id: &str,
    currency: Currency,
) -> sqlx::Result<Decimal> {
    CreditRepository::balance(conn, tenant_id, currency).await
}

pub async fn grant(
    conn: &mut PgConnection,
    tenant_id: &str,
    currency: Currency,
    amount: Decimal,
    reason: &str,
    subscription_id: Option<Uuid>,
) -> sqlx::Result<()> {
    CreditRepository::grant(conn, tenant_id, currency, amount, reason, subscription_id).await
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
    CreditRepository::record_applied(conn, invoice).await?;
    Ok(())
}
