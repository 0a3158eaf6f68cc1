//! Invoice use cases behind `/invoices`: reading (always scoped to the caller's tenant),
//! generating the current period's invoice, and voiding.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::NaiveDate;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::billing::money::money_string;
use crate::billing::types::{Currency, InvoiceStatus, SubscriptionStatus};
use crate::error::{AppError, AppResult};
use crate::repository::invoices::{InvoiceChanges, InvoiceLineRow, InvoiceRepository, InvoiceRow};
use crate::repository::outbox::OutboxRepository;
use crate::repository::plans::PlanRepository;
use crate::repository::rates::RateRepository;
use crate::repository::subscriptions::SubscriptionRepository;
use crate::repository::tenants::TenantRepository;
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::services::invoicing::{amount_in_yer, invoice_json, issue_subscription_invoice};

pub fn invoice_not_found() -> AppError {
    AppError::not_found("Invoice", "الفاتورة غير موجودة")
}

pub use crate::services::missing::tenant_not_found;

/// The invoice with its lines, in the API shape.
pub async fn invoice_with_lines(conn: &mut PgConnection, inv: &InvoiceRow) -> AppResult<Value> {
    let lines = InvoiceRepository::lines(conn, inv.invoice_id).await?;
    Ok(invoice_json(inv, &lines))
}

/// One page of a tenant's invoices (API shape), the true total and whether more follow.
pub async fn list_invoices(
    pool: &PgPool,
    tenant_id: &str,
    status: Option<InvoiceStatus>,
    limit: i64,
    starting_after: Option<Uuid>,
) -> AppResult<(Vec<Value>, i64, bool)> {
    let mut conn = pool.acquire().await?;
    if TenantRepository::get(&mut conn, tenant_id).await?.is_none() {
        return Err(tenant_not_found());
    }
    let (rows, total, has_more) =
        InvoiceRepository::list_by_tenant(&mut conn, tenant_id, status, limit, starting_after)
            .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.invoice_id).collect();
    let mut by_invoice: HashMap<Uuid, Vec<InvoiceLineRow>> = HashMap::new();
    for line in InvoiceRepository::lines_for(&mut conn, &ids).await? {
        by_invoice.entry(line.invoice_id).or_default().push(line);
    }
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            invoice_json(
                r,
                by_invoice
                    .get(&r.invoice_id)
                    .map(Vec::as_slice)
                    .unwrap_or(&[]),
            )
        })
        .collect();
    Ok((items, total, has_more))
}

/// `{invoice, tenant, amount_yer}`. `tenant_scope` is the caller's tenant (None for platform
/// callers): the query itself carries it, so another tenant's invoice is simply not found.
pub async fn get_invoice(
    pool: &PgPool,
    tenant_scope: Option<&str>,
    invoice_id: Uuid,
    today: NaiveDate,
) -> AppResult<Value> {
    let mut conn = pool.acquire().await?;
    let inv = InvoiceRepository::get_by_id(&mut conn, tenant_scope, invoice_id)
        .await?
        .ok_or_else(invoice_not_found)?;
    let tenant = TenantRepository::get(&mut conn, &inv.tenant_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("invoice without its tenant")))?;
    let yer_rate = RateRepository::rate_on(&mut conn, Currency::Yer, today).await?;
    let invoice = invoice_with_lines(&mut conn, &inv).await?;
    Ok(json!({
        "invoice": invoice,
        "tenant": {"tenant_id": tenant.tenant_id, "name": tenant.name, "name_ar": tenant.name_ar},
        "amount_yer": money_string(amount_in_yer(&inv, yer_rate)),
    }))
}

/// [`generate`] under an optional idempotency key (replayed on retries).
pub async fn generate_idempotent(
    pool: &PgPool,
    scope: &str,
    key: Option<&IdempotencyKey>,
    fingerprint: &str,
    tenant_id: String,
    today: NaiveDate,
    due_days: u32,
) -> AppResult<Outcome> {
    idempotency::run(pool, scope, key, fingerprint, move |conn| {
        Box::pin(async move { generate(conn, &tenant_id, today, due_days).await })
    })
    .await
}

/// Issues (or finds) the invoice of the live subscription's current period. Runs inside the
/// caller's transaction (the idempotency wrapper's). Locks tenant, then the subscription, so
/// concurrent calls for one tenant queue up and the second finds the first one's invoice.
pub async fn generate(
    conn: &mut PgConnection,
    tenant_id: &str,
    today: NaiveDate,
    due_days: u32,
) -> AppResult<(StatusCode, Value)> {
    let tenant = TenantRepository::lock(conn, tenant_id)
        .await?
        .ok_or_else(tenant_not_found)?;
    let sub = SubscriptionRepository::lock_live(conn, tenant_id)
        .await?
        .ok_or_else(|| {
            AppError::new(
                StatusCode::NOT_FOUND,
                "no_active_subscription",
                "The tenant has no live subscription",
                "لا يوجد اشتراك",
            )
        })?;
    if sub.status == SubscriptionStatus::Trial {
        return Err(AppError::conflict(
            "subscription_in_trial",
            "The subscription is in its trial; the first invoice is issued when the trial ends",
            "الاشتراك في الفترة التجريبية ولا تصدر فاتورة قبل انتهائها",
        ));
    }
    if let Some(existing) =
        InvoiceRepository::get_for_period(conn, tenant_id, sub.subscription_id, sub.start_date)
            .await?
    {
        let invoice = invoice_with_lines(conn, &existing).await?;
        return Ok((
            StatusCode::OK,
            json!({"success": true, "created": false, "invoice": invoice}),
        ));
    }
    let plan = PlanRepository::get(conn, &sub.plan_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("subscription plan missing")))?;
    // Under the subscription lock the period cannot have been invoiced since the check above.
    let row = issue_subscription_invoice(conn, &tenant, &sub, &plan, today, due_days)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("period invoiced under our lock")))?;
    let invoice = invoice_with_lines(conn, &row).await?;
    Ok((
        StatusCode::CREATED,
        json!({"success": true, "created": true, "invoice": invoice}),
    ))
}

/// Voids an unpaid invoice: pending, overdue or draft with nothing paid → `canceled`.
pub async fn void(pool: &PgPool, invoice_id: Uuid, actor: &Actor) -> AppResult<Value> {
    let mut tx = pool.begin().await?;
    // Learn the tenant first so the locks follow the documented order (tenant → invoice).
    let tenant_id = InvoiceRepository::get_by_id(&mut tx, None, invoice_id)
        .await?
        .ok_or_else(invoice_not_found)?
        .tenant_id;
    TenantRepository::lock(&mut tx, &tenant_id).await?;
    let inv = InvoiceRepository::lock(&mut tx, &tenant_id, invoice_id)
        .await?
        .ok_or_else(invoice_not_found)?;
    let voidable = matches!(
        inv.status,
        InvoiceStatus::Pending | InvoiceStatus::Overdue | InvoiceStatus::Draft
    ) && inv.amount_paid.is_zero();
    if !voidable {
        return Err(AppError::conflict(
            "invoice_not_voidable",
            format!(
                "Only unpaid pending, overdue or draft invoices can be voided; this one is {} with {} paid",
                inv.status,
                money_string(inv.amount_paid)
            ),
            "لا يمكن إلغاء هذه الفاتورة",
        )
        .with_extra("invoice_status", inv.status));
    }
    let changes = InvoiceChanges {
        status: Some(InvoiceStatus::Canceled),
        ..Default::default()
    };
    let row = InvoiceRepository::update(&mut tx, &tenant_id, invoice_id, &changes)
        .await?
        .ok_or_else(invoice_not_found)?;
    OutboxRepository::record(
        &mut tx,
        "invoice.voided",
        Some(&tenant_id),
        json!({
            "invoice_id": row.invoice_id,
            "invoice_number": row.invoice_number,
            "total": money_string(row.total),
            "currency": row.currency,
        }),
    )
    .await?;
    // Voiding the last overdue invoice ends the dunning state at once, as a payment would.
    crate::services::dunning::reactivate(&mut tx, Some(&tenant_id)).await?;
    let (old, new) = audit::changed(&invoice_json(&inv, &[]), &invoice_json(&row, &[]));
    let event = AuditEvent {
        tenant_id: Some(&tenant_id),
        action: "invoice.void",
        target_type: "invoice",
        target_id: invoice_id.to_string(),
        before: Some(old),
        after: Some(new),
    };
    audit::record(&mut tx, actor, event).await?;
    let invoice = invoice_with_lines(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(json!({"success": true, "invoice": invoice}))
}
