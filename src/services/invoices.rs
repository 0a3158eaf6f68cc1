//! Invoice use cases behind `/invoices`: reading (always scoped to the caller's tenant),
//! generating the current period's invoice, and voiding.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::billing::types::{Currency, InvoiceStatus, SubscriptionStatus};
use crate::error::AppError;
use crate::events::Event;
use crate::repository::invoices::{InvoiceChanges, InvoiceLineRow, InvoiceRepository, InvoiceRow};
use crate::repository::outbox::OutboxRepository;
use crate::repository::plans::PlanRepository;
use crate::repository::rates::RateRepository;
use crate::repository::subscriptions::SubscriptionRepository;
use crate::repository::tenants::{TenantRepository, TenantRow};
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::invoicing::{amount_in_yer, invoice_json, issue_subscription_invoice};

/// Payments answer a missing invoice exactly as `InvoiceError::NotFound` does.
pub fn invoice_not_found() -> AppError {
    AppError::not_found("Invoice", "الفاتورة غير موجودة")
}

pub use crate::services::missing::tenant_not_found;

/// What can go wrong with an invoice use case (`http::errors` turns it into the envelope).
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    /// Missing, or another tenant's (indistinguishable on purpose).
    #[error("invoice not found")]
    NotFound,
    #[error("tenant not found")]
    TenantNotFound,
    #[error("the tenant has no live subscription")]
    NoLiveSubscription,
    /// The first invoice is issued when the trial ends.
    #[error("the subscription is in its trial")]
    InTrial,
    /// Only unpaid pending, overdue or draft invoices can be voided.
    #[error("invoice is {status} with {amount_paid} paid")]
    NotVoidable {
        status: InvoiceStatus,
        amount_paid: Decimal,
    },
    /// A row the schema guarantees is missing (an invoice without its tenant, ...).
    #[error("{0}")]
    Inconsistent(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// An event payload that did not serialize.
    #[error(transparent)]
    Payload(#[from] serde_json::Error),
    /// Issuing, dunning and the audit log still answer in the boundary's error type.
    #[error(transparent)]
    Service(#[from] AppError),
}

pub type InvoiceResult<T> = Result<T, InvoiceError>;

/// An invoice and its lines, in line order.
#[derive(Clone, Debug)]
pub struct InvoiceWithLines {
    pub invoice: InvoiceRow,
    pub lines: Vec<InvoiceLineRow>,
}

/// One page of a tenant's invoices, the true total and whether more follow.
#[derive(Clone, Debug)]
pub struct InvoicePage {
    pub invoices: Vec<InvoiceWithLines>,
    pub total: i64,
    pub has_more: bool,
}

/// An invoice as `GET /invoices/{id}` shows it: with its tenant and its total in YER.
#[derive(Clone, Debug)]
pub struct InvoiceView {
    pub invoice: InvoiceWithLines,
    pub tenant: TenantRow,
    pub amount_yer: Decimal,
}

/// The current period's invoice: issued by this call (`created`) or found.
#[derive(Clone, Debug)]
pub struct Generated {
    pub created: bool,
    pub invoice: InvoiceWithLines,
}

/// The invoice with its lines.
pub async fn invoice_with_lines(
    conn: &mut PgConnection,
    inv: &InvoiceRow,
) -> sqlx::Result<InvoiceWithLines> {
    let lines = InvoiceRepository::lines(conn, inv.invoice_id).await?;
    Ok(InvoiceWithLines {
        invoice: inv.clone(),
        lines,
    })
}

/// One page of a tenant's invoices.
pub async fn list_invoices(
    pool: &PgPool,
    tenant_id: &str,
    status: Option<InvoiceStatus>,
    limit: i64,
    starting_after: Option<Uuid>,
) -> InvoiceResult<InvoicePage> {
    let mut conn = pool.acquire().await?;
    if TenantRepository::get(&mut conn, tenant_id).await?.is_none() {
        return Err(InvoiceError::TenantNotFound);
    }
    let page =
        InvoiceRepository::list_by_tenant(&mut conn, tenant_id, status, limit, starting_after)
            .await?;
    let (rows, total, has_more) = (page.items, page.total, page.has_more);
    let ids: Vec<Uuid> = rows.iter().map(|r| r.invoice_id).collect();
    let mut by_invoice: HashMap<Uuid, Vec<InvoiceLineRow>> = HashMap::new();
    for line in InvoiceRepository::lines_for(&mut conn, &ids).await? {
        by_invoice.entry(line.invoice_id).or_default().push(line);
    }
    let invoices = rows
        .into_iter()
        .map(|invoice| InvoiceWithLines {
            lines: by_invoice.remove(&invoice.invoice_id).unwrap_or_default(),
            invoice,
        })
        .collect();
    Ok(InvoicePage {
        invoices,
        total,
        has_more,
    })
}

/// The invoice, its tenant and its total in YER at `today`'s rate. `tenant_scope` is the caller's tenant (None for platform
/// callers): the query itself carries it, so another tenant's invoice is simply not found.
pub async fn get_invoice(
    pool: &PgPool,
    tenant_scope: Option<&str>,
    invoice_id: Uuid,
    today: NaiveDate,
) -> InvoiceResult<InvoiceView> {
    let mut conn = pool.acquire().await?;
    let inv = InvoiceRepository::get_by_id(&mut conn, tenant_scope, invoice_id)
        .await?
        .ok_or(InvoiceError::NotFound)?;
    let tenant = TenantRepository::get(&mut conn, &inv.tenant_id)
        .await?
        .ok_or(InvoiceError::Inconsistent("invoice without its tenant"))?;
    let yer_rate = RateRepository::rate_on(&mut conn, Currency::Yer, today).await?;
    let amount_yer = amount_in_yer(&inv, yer_rate);
    let invoice = invoice_with_lines(&mut conn, &inv).await?;
    Ok(InvoiceView {
        invoice,
        tenant,
        amount_yer,
    })
}

/// Issues (or finds) the invoice of the live subscription's current period. Runs inside the
/// caller's transaction (the idempotency wrapper's). Locks tenant, then the subscription, so
/// concurrent calls for one tenant queue up and the second finds the first one's invoice.
pub async fn generate(
    conn: &mut PgConnection,
    tenant_id: &str,
    today: NaiveDate,
    due_days: u32,
) -> InvoiceResult<Generated> {
    let tenant = TenantRepository::lock(conn, tenant_id)
        .await?
        .ok_or(InvoiceError::TenantNotFound)?;
    let sub = SubscriptionRepository::lock_live(conn, tenant_id)
        .await?
        .ok_or(InvoiceError::NoLiveSubscription)?;
    if sub.status == SubscriptionStatus::Trial {
        return Err(InvoiceError::InTrial);
    }
    if let Some(existing) =
        InvoiceRepository::get_for_period(conn, tenant_id, sub.subscription_id, sub.start_date)
            .await?
    {
        let invoice = invoice_with_lines(conn, &existing).await?;
        return Ok(Generated {
            created: false,
            invoice,
        });
    }
    let plan = PlanRepository::get(conn, &sub.plan_id)
        .await?
        .ok_or(InvoiceError::Inconsistent("subscription plan missing"))?;
    // Under the subscription lock the period cannot have been invoiced since the check above.
    let row = issue_subscription_invoice(conn, &tenant, &sub, &plan, today, due_days)
        .await?
        .ok_or(InvoiceError::Inconsistent("period invoiced under our lock"))?;
    let invoice = invoice_with_lines(conn, &row).await?;
    Ok(Generated {
        created: true,
        invoice,
    })
}

/// Voids an unpaid invoice: pending, overdue or draft with nothing paid → `canceled`.
pub async fn void(
    pool: &PgPool,
    invoice_id: Uuid,
    actor: &Actor,
) -> InvoiceResult<InvoiceWithLines> {
    let mut tx = pool.begin().await?;
    // Learn the tenant first so the locks follow the documented order (tenant → invoice).
    let tenant_id = InvoiceRepository::get_by_id(&mut tx, None, invoice_id)
        .await?
        .ok_or(InvoiceError::NotFound)?
        .tenant_id;
    TenantRepository::lock(&mut tx, &tenant_id).await?;
    let inv = InvoiceRepository::lock(&mut tx, &tenant_id, invoice_id)
        .await?
        .ok_or(InvoiceError::NotFound)?;
    let voidable = matches!(
        inv.status,
        InvoiceStatus::Pending | InvoiceStatus::Overdue | InvoiceStatus::Draft
    ) && inv.amount_paid.is_zero();
    if !voidable {
        return Err(InvoiceError::NotVoidable {
            status: inv.status,
            amount_paid: inv.amount_paid,
        });
    }
    let changes = InvoiceChanges {
        status: Some(InvoiceStatus::Canceled),
        ..Default::default()
    };
    let row = InvoiceRepository::update(&mut tx, &tenant_id, invoice_id, &changes)
        .await?
        .ok_or(InvoiceError::NotFound)?;
    let voided = Event::InvoiceVoided {
        invoice_id: row.invoice_id,
        invoice_number: row.invoice_number.clone(),
        total: row.total,
        currency: row.currency.clone(),
    };
    OutboxRepository::record_event(&mut tx, Some(&tenant_id), &voided).await?;
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
    Ok(invoice)
}
