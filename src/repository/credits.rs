//! `credit_balance_entries`: the downgrade credit of each tenant, one row per grant or use.

use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::billing::types::Currency;
use crate::repository::invoices::InvoiceRow;

pub struct CreditRepository;

impl CreditRepository {
    pub async fn balance(
        conn: &mut PgConnection,
        tenant_id: &str,
        currency: Currency,
    ) -> sqlx::Result<Decimal> {
        sqlx::query_scalar!(
            r#"SELECT COALESCE(SUM(amount), 0) AS "balance!" FROM credit_balance_entries
             WHERE tenant_id = $1 AND currency = $2"#,
            tenant_id,
            currency.code()
        )
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
        sqlx::query!(
            "INSERT INTO credit_balance_entries (entry_id, tenant_id, currency, amount, reason, subscription_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
            Uuid::new_v4(),
            tenant_id,
            currency.code(),
            amount,
            reason,
            subscription_id
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Records the credit an issued invoice consumed (its credit lines) against the balance.
    pub async fn record_applied(conn: &mut PgConnection, invoice: &InvoiceRow) -> sqlx::Result<()> {
        sqlx::query!(
            "INSERT INTO credit_balance_entries (entry_id, tenant_id, currency, amount, reason, subscription_id, invoice_id)
             SELECT $1, $2, $3, SUM(amount), 'applied to invoice', $4, $5
             FROM invoice_lines WHERE invoice_id = $5 AND kind = 'credit'
             HAVING SUM(amount) < 0",
            Uuid::new_v4(),
            invoice.tenant_id,
            invoice.currency,
            invoice.subscription_id,
            invoice.invoice_id
        )
        .execute(conn)
        .await?;
        Ok(())
    }
}
