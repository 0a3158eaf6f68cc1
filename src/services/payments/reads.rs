//! Reads of payments, scoped to the caller's tenant.

use sqlx::PgPool;
use uuid::Uuid;

use super::PaymentError;
use crate::billing::types::PaymentStatus;
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::repository::tenants::TenantRepository;
use crate::services::invoices::tenant_not_found;

/// The payment, scoped to the caller's tenant (another tenant's payment is not found).
pub async fn get_payment(
    pool: &PgPool,
    scope: Option<&str>,
    payment_id: Uuid,
) -> Result<PaymentRow, PaymentError> {
    let mut conn = pool.acquire().await?;
    PaymentRepository::get_by_id(&mut conn, scope, payment_id)
        .await?
        .ok_or(PaymentError::NotFound)
}

/// One page of a tenant's payments, the true total and whether more follow.
pub async fn list_payments(
    pool: &PgPool,
    tenant_id: &str,
    status: Option<PaymentStatus>,
    limit: i64,
    starting_after: Option<Uuid>,
) -> Result<crate::pagination::Page<PaymentRow>, PaymentError> {
    let mut conn = pool.acquire().await?;
    if TenantRepository::get(&mut conn, tenant_id).await?.is_none() {
        return Err(PaymentError::Service(tenant_not_found().into()));
    }
    Ok(
        PaymentRepository::list_by_tenant(&mut conn, tenant_id, status, limit, starting_after)
            .await?,
    )
}
