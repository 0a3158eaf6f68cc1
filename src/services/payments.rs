//! Payments: recording them (offline here; card and Tharwatt in `gateway`), settling them
//! (shared with the gateway webhooks), confirming and rejecting offline ones. Money moves only under the locks tenant → invoice →
//! payment, so two payments racing for one invoice can never overpay it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::auth::Principal;
use crate::billing::types::{InvoiceStatus, PaymentMethod, PaymentStatus};
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::gateways;
use crate::repository::invoices::{InvoiceRepository, InvoiceRow};
use crate::repository::outbox::OutboxRepository;
use crate::repository::payments::{NewPayment, PaymentRepository, PaymentRow};
use crate::repository::tenants::TenantRepository;
use crate::services::audit::Actor;
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::services::invoices::{invoice_not_found, tenant_not_found};

mod audit_row;
mod body;
mod decisions;
mod error;
pub mod gateway;
pub(crate) mod notes;
mod reads;
pub mod reconcile;

pub(crate) use audit_row::{audit_payment, audit_snapshot};
pub use body::{PaymentAnswer, PaymentResult, RenderPayment};
pub use decisions::{confirm, reject};
pub use error::PaymentError;
pub use reads::{get_payment, list_payments};

/// A payment request after validation.
#[derive(Clone, Debug)]
pub struct PaymentInput {
    pub invoice_id: Uuid,
    pub amount: Decimal,
    pub method: PaymentMethod,
    pub stripe_token: Option<String>,
    pub phone_number: Option<String>,
    pub reference: Option<String>,
    pub notes: Option<String>,
}

/// The request identity for idempotency: the body without its `idempotency_key` member, so
/// the key given in the body and the same key given as a header identify the same request.
pub fn payment_fingerprint(path: &str, raw: &Value) -> String {
    let mut body = raw.clone();
    if let Value::Object(m) = &mut body {
        m.remove("idempotency_key");
    }
    idempotency::fingerprint("POST", path, &body)
}

/// The caller's tenant restriction: `None` for platform callers, else their own tenant.
pub fn tenant_scope(p: &Principal) -> AppResult<Option<String>> {
    if p.is_platform() {
        return Ok(None);
    }
    match &p.tenant_id {
        Some(t) => Ok(Some(t.as_str().to_string())),
        None => Err(PaymentError::TenantRequired.into()),
    }
}

pub fn payment_not_found() -> AppError {
    PaymentError::NotFound.into()
}

pub(crate) fn not_payable(inv: &InvoiceRow) -> AppError {
    PaymentError::NotPayable(inv.status).into()
}

/// Another payment settled since this one was recorded and left less due.
fn exceeds_due_now(inv: &InvoiceRow) -> AppError {
    PaymentError::ExceedsDueNow {
        amount_due: inv.amount_due,
    }
    .into()
}

/// Records a payment under `key` (replayed on retries). A super admin's cash payment is
/// settled at once; every other offline payment waits for a super admin to confirm it.
/// Card and Tharwatt payments go through their gateway (see [`gateway::pay`]). The answer
/// (and what the key keeps) is `render`'s.
#[allow(clippy::too_many_arguments)] // the request's parts, each needed once
pub async fn record_payment(
    pool: &PgPool,
    config: &Config,
    principal: Principal,
    key: Option<IdempotencyKey>,
    fingerprint: &str,
    input: PaymentInput,
    now: DateTime<Utc>,
    render: RenderPayment,
) -> AppResult<Outcome> {
    if gateways::is_gateway_method(input.method) {
        let Some(gw) = gateways::for_method(config, input.method) else {
            return Err(PaymentError::MethodUnavailable(input.method).into());
        };
        let request = gateway::PayRequest {
            principal,
            key,
            input,
            now,
        };
        return gateway::pay(pool, gw.as_ref(), request, fingerprint, render).await;
    }
    let scope = principal.scope.clone();
    idempotency::run(pool, &scope, key.as_ref(), fingerprint, move |conn| {
        Box::pin(async move {
            Ok(render(
                &create_payment(conn, &principal, &input, now).await?,
            ))
        })
    })
    .await
}

/// Finds the caller's invoice, locks tenant then invoice (the documented order) and checks it
/// can take `input.amount`: not paid, voided or refunded, and the amount within what is due
/// less what the gateways are already collecting. Shared by offline and gateway payments.
pub(crate) async fn lock_payable_invoice(
    conn: &mut PgConnection,
    principal: &Principal,
    input: &PaymentInput,
) -> AppResult<(String, InvoiceRow)> {
    let scope = tenant_scope(principal)?;
    let tenant_id = InvoiceRepository::get_by_id(conn, scope.as_deref(), input.invoice_id)
        .await?
        .ok_or_else(invoice_not_found)?
        .tenant_id;
    TenantRepository::lock(conn, &tenant_id)
        .await?
        .ok_or_else(tenant_not_found)?;
    let inv = InvoiceRepository::lock(conn, &tenant_id, input.invoice_id)
        .await?
        .ok_or_else(invoice_not_found)?;
    if matches!(
        inv.status,
        InvoiceStatus::Paid | InvoiceStatus::Canceled | InvoiceStatus::Refunded
    ) {
        return Err(not_payable(&inv));
    }
    let in_flight =
        PaymentRepository::in_flight_total(conn, &tenant_id, inv.invoice_id, None).await?;
    if input.amount > inv.amount_due - in_flight {
        let amount_due = inv.amount_due;
        return Err(PaymentError::ExceedsDue {
            amount_due,
            in_flight,
        }
        .into());
    }
    Ok((tenant_id, inv))
}

async fn create_payment(
    conn: &mut PgConnection,
    principal: &Principal,
    input: &PaymentInput,
    now: DateTime<Utc>,
) -> AppResult<PaymentAnswer> {
    let (tenant_id, inv) = lock_payable_invoice(conn, principal, input).await?;
    let metadata = notes::metadata(input);
    let payment = PaymentRepository::create(
        conn,
        &NewPayment {
            payment_id: Uuid::new_v4(),
            tenant_id: &tenant_id,
            invoice_id: inv.invoice_id,
            amount: input.amount,
            currency: &inv.currency,
            method: input.method,
            status: PaymentStatus::Pending,
            gateway_amount: None,
            gateway_currency: None,
            external_id: None,
            phone_number: input.phone_number.as_deref(),
            created_by: Some(&principal.subject),
            metadata: &metadata,
        },
    )
    .await?;
    crate::metrics::count_payment(payment.method, "created");
    let event = Event::PaymentCreated {
        payment_id: payment.payment_id,
        invoice_id: payment.invoice_id,
        amount: payment.amount,
        currency: payment.currency.clone(),
        gateway_amount: None,
        gateway_currency: None,
        method: payment.method,
        status: payment.status,
    };
    OutboxRepository::record_event(conn, Some(&tenant_id), &event).await?;
    // Cash handed to platform staff is money in hand; anything else needs a confirmation.
    if principal.is_super_admin() && input.method == PaymentMethod::Cash {
        let s = settle(conn, payment.payment_id, Some(&principal.subject), now).await?;
        let after = audit_snapshot(&s.payment, &s.invoice);
        audit_payment(
            conn,
            &Actor::from(principal),
            "payment.create",
            &s.payment,
            None,
            after,
        )
        .await?;
        let answer = PaymentAnswer::new(&s.payment, &s.invoice, PaymentResult::Received);
        return Ok(answer);
    }
    let after = audit_snapshot(&payment, &inv);
    audit_payment(
        conn,
        &Actor::from(principal),
        "payment.create",
        &payment,
        None,
        after,
    )
    .await?;
    Ok(PaymentAnswer::new(
        &payment,
        &inv,
        PaymentResult::AwaitsConfirmation,
    ))
}

/// The outcome of [`settle`]: the payment and invoice after it, and whether this call did the
/// settling (false when the payment had already succeeded).
#[derive(Debug)]
pub struct Settlement {
    pub payment: PaymentRow,
    pub invoice: InvoiceRow,
    pub settled_now: bool,
}

/// Settles a pending/processing payment inside the caller's transaction: the payment becomes
/// succeeded and its amount is added to the invoice (paid when nothing is left due).
/// Idempotent: an already succeeded payment is returned unchanged. Locks tenant → invoice →
/// payment itself, so gateway webhooks can call it directly. `actor` is recorded as
/// `confirmed_by`.
pub async fn settle(
    conn: &mut PgConnection,
    payment_id: Uuid,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Settlement> {
    settle_with_external(conn, payment_id, None, actor, now).await
}

/// [`settle`], also storing the gateway's id of the charge (kept when `None`).
pub async fn settle_with_external(
    conn: &mut PgConnection,
    payment_id: Uuid,
    external_id: Option<&str>,
    actor: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Settlement> {
    let (tenant_id, inv, payment) = lock_payment(conn, payment_id).await?;
    if payment.status == PaymentStatus::Succeeded {
        return Ok(Settlement {
            payment,
            invoice: inv,
            settled_now: false,
        });
    }
    if !matches!(
        payment.status,
        PaymentStatus::Pending | PaymentStatus::Processing
    ) {
        return Err(invalid_state(&payment));
    }
    if matches!(
        inv.status,
        InvoiceStatus::Canceled | InvoiceStatus::Refunded
    ) {
        return Err(not_payable(&inv));
    }
    // Another payment may have been settled since this one was recorded.
    if payment.amount > inv.amount_due {
        return Err(exceeds_due_now(&inv));
    }
    let payment =
        PaymentRepository::mark_succeeded(conn, &tenant_id, payment_id, external_id, actor, now)
            .await?
            .ok_or_else(|| invalid_state(&payment))?;
    let invoice = InvoiceRepository::mark_paid(
        conn,
        &tenant_id,
        inv.invoice_id,
        payment.amount,
        now.date_naive(),
    )
    .await?
    .ok_or_else(|| exceeds_due_now(&inv))?;
    crate::metrics::count_payment(payment.method, "succeeded");
    let succeeded = Event::PaymentSucceeded {
        payment_id: payment.payment_id,
        invoice_id: payment.invoice_id,
        amount: payment.amount,
        currency: payment.currency.clone(),
        method: payment.method,
        external_id: payment.external_id.clone(),
    };
    OutboxRepository::record_event(conn, Some(&tenant_id), &succeeded).await?;
    if invoice.status == InvoiceStatus::Paid {
        let paid = Event::InvoicePaid {
            invoice_id: invoice.invoice_id,
            invoice_number: invoice.invoice_number.clone(),
            total: invoice.total,
            amount_paid: invoice.amount_paid,
            currency: invoice.currency.clone(),
            paid_date: invoice.paid_date,
        };
        OutboxRepository::record_event(conn, Some(&tenant_id), &paid).await?;
        // The moment a tenant's overdue invoices are all paid, its subscription is active again.
        crate::services::dunning::reactivate(conn, Some(&tenant_id)).await?;
    }
    Ok(Settlement {
        payment,
        invoice,
        settled_now: true,
    })
}

/// A payment failed: counted, and `payment.failed` written.
pub(crate) async fn failed_event(
    conn: &mut PgConnection,
    p: &PaymentRow,
    reason: &str,
) -> sqlx::Result<()> {
    crate::metrics::count_payment(p.method, "failed");
    let failed = Event::PaymentFailed {
        payment_id: p.payment_id,
        invoice_id: p.invoice_id,
        error: reason.to_string(),
    };
    OutboxRepository::record_event(conn, Some(&p.tenant_id), &failed).await?;
    Ok(())
}

pub(crate) fn is_gateway_method(m: PaymentMethod) -> bool {
    matches!(m, PaymentMethod::CreditCard | PaymentMethod::Tharwatt)
}

pub(crate) fn invalid_state(p: &PaymentRow) -> AppError {
    PaymentError::InvalidState(p.status).into()
}

/// Locks tenant → invoice → payment for `payment_id` (any tenant: callers are platform staff
/// or signed webhooks).
pub(crate) async fn lock_payment(
    conn: &mut PgConnection,
    payment_id: Uuid,
) -> AppResult<(String, InvoiceRow, PaymentRow)> {
    let found = PaymentRepository::get_by_id(conn, None, payment_id)
        .await?
        .ok_or_else(payment_not_found)?;
    let tenant_id = found.tenant_id;
    TenantRepository::lock(conn, &tenant_id).await?;
    let inv = InvoiceRepository::lock(conn, &tenant_id, found.invoice_id)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("payment without its invoice")))?;
    let payment = PaymentRepository::lock(conn, &tenant_id, payment_id)
        .await?
        .ok_or_else(payment_not_found)?;
    Ok((tenant_id, inv, payment))
}
