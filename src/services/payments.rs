//! Payments: recording them (offline here; card and Tharwatt in `gateway`), settling them
//! (shared with the gateway webhooks), confirming and rejecting offline ones. Money moves only under the locks tenant → invoice →
//! payment, so two payments racing for one invoice can never overpay it.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::auth::Principal;
use crate::billing::money::money_string;
use crate::billing::types::{InvoiceStatus, PaymentMethod, PaymentStatus};
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::gateways;
use crate::repository::invoices::{InvoiceRepository, InvoiceRow};
use crate::repository::outbox::OutboxRepository;
use crate::repository::payments::{NewPayment, PaymentRepository, PaymentRow};
use crate::repository::tenants::TenantRepository;
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::services::invoices::{invoice_not_found, tenant_not_found};

pub mod gateway;
pub mod reconcile;

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
        None => Err(AppError::forbidden("A tenant is required")),
    }
}

pub fn payment_not_found() -> AppError {
    AppError::not_found("Payment", "الدفعة غير موجودة")
}

pub(crate) fn not_payable(inv: &InvoiceRow) -> AppError {
    AppError::conflict(
        "invoice_not_payable",
        format!("The invoice is {} and cannot take payments", inv.status),
        "لا يمكن الدفع لهذه الفاتورة",
    )
    .with_extra("invoice_status", inv.status)
}

pub(crate) fn exceeds_due(status: StatusCode, inv: &InvoiceRow) -> AppError {
    AppError::new(
        status,
        "amount_exceeds_due",
        format!(
            "The amount exceeds the invoice's amount due ({})",
            money_string(inv.amount_due)
        ),
        "المبلغ أكبر من المبلغ المستحق على الفاتورة",
    )
    .with_extra("amount_due", money_string(inv.amount_due))
}

pub fn payment_json(p: &PaymentRow) -> Value {
    json!({
        "payment_id": p.payment_id,
        "tenant_id": p.tenant_id,
        "invoice_id": p.invoice_id,
        "amount": money_string(p.amount),
        "currency": p.currency,
        "method": p.method,
        "status": p.status,
        "gateway_amount": p.gateway_amount.map(money_string),
        "gateway_currency": p.gateway_currency,
        "external_id": p.external_id,
        "refunded_amount": money_string(p.refunded_amount),
        "failure_reason": p.failure_reason,
        "paid_at": p.paid_at,
        "processed_at": p.processed_at,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

pub(crate) fn payment_body(
    p: &PaymentRow,
    inv: &InvoiceRow,
    message: &str,
    message_ar: &str,
) -> Value {
    json!({
        "success": true,
        "payment": payment_json(p),
        "invoice_status": inv.status,
        "amount_due": money_string(inv.amount_due),
        "message": message,
        "message_ar": message_ar,
    })
}

/// Records a payment under `key` (replayed on retries). A super admin's cash payment is
/// settled at once; every other offline payment waits for a super admin to confirm it.
/// Card and Tharwatt payments go through their gateway (see [`gateway::pay`]).
pub async fn record_payment(
    pool: &PgPool,
    config: &Config,
    principal: Principal,
    key: Option<IdempotencyKey>,
    fingerprint: &str,
    input: PaymentInput,
    now: DateTime<Utc>,
) -> AppResult<Outcome> {
    if gateways::is_gateway_method(input.method) {
        let Some(gw) = gateways::for_method(config, input.method) else {
            return Err(AppError::unprocessable(
                "payment_method_unavailable",
                format!(
                    "{} payments are not configured on this server",
                    input.method
                ),
                "طريقة الدفع هذه غير متاحة حالياً",
            ));
        };
        return gateway::pay(pool, gw.as_ref(), principal, key, fingerprint, input, now).await;
    }
    let scope = principal.scope.clone();
    idempotency::run(pool, &scope, key.as_ref(), fingerprint, move |conn| {
        Box::pin(async move { create_payment(conn, &principal, &input, now).await })
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
        let mut e = exceeds_due(StatusCode::UNPROCESSABLE_ENTITY, &inv);
        if !in_flight.is_zero() {
            e = e.with_extra("in_flight", money_string(in_flight));
        }
        return Err(e);
    }
    Ok((tenant_id, inv))
}

async fn create_payment(
    conn: &mut PgConnection,
    principal: &Principal,
    input: &PaymentInput,
    now: DateTime<Utc>,
) -> AppResult<(StatusCode, Value)> {
    let (tenant_id, inv) = lock_payable_invoice(conn, principal, input).await?;
    let metadata = json!({"reference": input.reference, "notes": input.notes});
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
    OutboxRepository::record(
        conn,
        "payment.created",
        Some(&tenant_id),
        json!({
            "payment_id": payment.payment_id,
            "invoice_id": payment.invoice_id,
            "amount": money_string(payment.amount),
            "currency": payment.currency,
            "method": payment.method,
            "status": payment.status,
        }),
    )
    .await?;
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
        let body = payment_body(
            &s.payment,
            &s.invoice,
            "Payment received",
            "تم استلام الدفعة بنجاح",
        );
        return Ok((StatusCode::CREATED, body));
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
    let body = payment_body(
        &payment,
        &inv,
        "Payment recorded; it awaits confirmation by an administrator",
        "تم تسجيل الدفعة وهي بانتظار تأكيد الإدارة",
    );
    Ok((StatusCode::CREATED, body))
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
        return Err(exceeds_due(StatusCode::CONFLICT, &inv));
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
    .ok_or_else(|| exceeds_due(StatusCode::CONFLICT, &inv))?;
    crate::metrics::count_payment(payment.method, "succeeded");
    OutboxRepository::record(
        conn,
        "payment.succeeded",
        Some(&tenant_id),
        json!({
            "payment_id": payment.payment_id,
            "invoice_id": payment.invoice_id,
            "amount": money_string(payment.amount),
            "currency": payment.currency,
            "method": payment.method,
            "external_id": payment.external_id,
        }),
    )
    .await?;
    if invoice.status == InvoiceStatus::Paid {
        OutboxRepository::record(
            conn,
            "invoice.paid",
            Some(&tenant_id),
            json!({
                "invoice_id": invoice.invoice_id,
                "invoice_number": invoice.invoice_number,
                "total": money_string(invoice.total),
                "amount_paid": money_string(invoice.amount_paid),
                "currency": invoice.currency,
                "paid_date": invoice.paid_date,
            }),
        )
        .await?;
        // The moment a tenant's overdue invoices are all paid, its subscription is active again.
        crate::services::dunning::reactivate(conn, Some(&tenant_id)).await?;
    }
    Ok(Settlement {
        payment,
        invoice,
        settled_now: true,
    })
}

/// A gateway call is bounded by its HTTP timeout (seconds); a payment `processing` this long
/// belongs to a request that died.
const STALE_PROCESSING_MINUTES: i64 = 10;

pub(crate) fn is_gateway_method(m: PaymentMethod) -> bool {
    matches!(m, PaymentMethod::CreditCard | PaymentMethod::Tharwatt)
}

fn gateway_decides(p: &PaymentRow) -> AppError {
    AppError::conflict(
        "invalid_payment_state",
        format!(
            "A {} payment is settled by its gateway, not by hand",
            p.method
        ),
        "تتم تسوية هذه الدفعة عبر بوابة الدفع",
    )
    .with_extra("payment_status", p.status)
}

fn invalid_state(p: &PaymentRow) -> AppError {
    AppError::conflict(
        "invalid_payment_state",
        format!(
            "The payment is {}; only pending or processing payments can be confirmed or rejected",
            p.status
        ),
        "لا يمكن تعديل حالة هذه الدفعة",
    )
    .with_extra("payment_status", p.status)
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

/// A super admin confirms an offline payment: it settles, or 409 if it is not pending.
pub async fn confirm(
    pool: &PgPool,
    payment_id: Uuid,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<Value> {
    let mut tx = pool.begin().await?;
    // The state the confirmation starts from, under the locks settle takes again.
    let (_, inv_before, before) = lock_payment(&mut tx, payment_id).await?;
    // Card and Tharwatt payments settle only on the gateway's word (its answer or webhook).
    if is_gateway_method(before.method) {
        return Err(gateway_decides(&before));
    }
    let s = settle(&mut tx, payment_id, Some(&actor.subject), now).await?;
    if !s.settled_now {
        return Err(invalid_state(&s.payment));
    }
    let (old, new) = audit::changed(
        &audit_snapshot(&before, &inv_before),
        &audit_snapshot(&s.payment, &s.invoice),
    );
    audit_payment(
        &mut tx,
        actor,
        "payment.confirm",
        &s.payment,
        Some(old),
        new,
    )
    .await?;
    tx.commit().await?;
    Ok(payment_body(
        &s.payment,
        &s.invoice,
        "Payment confirmed",
        "تم تأكيد الدفعة",
    ))
}

/// A super admin rejects an offline payment: failed with `reason`; the invoice is unchanged.
pub async fn reject(
    pool: &PgPool,
    payment_id: Uuid,
    reason: Option<&str>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> AppResult<Value> {
    let mut tx = pool.begin().await?;
    let (tenant_id, inv, before) = lock_payment(&mut tx, payment_id).await?;
    // A gateway call in flight (`processing`, recently) must finish first. A gateway payment
    // left `pending` (outcome unknown), or `processing` long after any call could still be
    // running (the process died mid-call), may be rejected to unblock the invoice; a late
    // success from the gateway is then recorded on the payment, not applied.
    let in_flight = before.status == PaymentStatus::Processing
        && now - before.updated_at < chrono::Duration::minutes(STALE_PROCESSING_MINUTES);
    if is_gateway_method(before.method) && in_flight {
        return Err(gateway_decides(&before));
    }
    let reason = reason.unwrap_or("Rejected by an administrator");
    let payment = PaymentRepository::mark_failed(
        &mut tx,
        &tenant_id,
        payment_id,
        reason,
        Some(&actor.subject),
        now,
    )
    .await?
    .ok_or_else(|| invalid_state(&before))?;
    let (old, new) = audit::changed(
        &audit_snapshot(&before, &inv),
        &audit_snapshot(&payment, &inv),
    );
    audit_payment(&mut tx, actor, "payment.reject", &payment, Some(old), new).await?;
    crate::metrics::count_payment(payment.method, "failed");
    OutboxRepository::record(
        &mut tx,
        "payment.failed",
        Some(&tenant_id),
        json!({"payment_id": payment.payment_id, "invoice_id": payment.invoice_id, "error": reason}),
    )
    .await?;
    tx.commit().await?;
    Ok(payment_body(
        &payment,
        &inv,
        "Payment rejected",
        "تم رفض الدفعة",
    ))
}

/// The payment as the API shows it, with its invoice's status and amount due: what a payment
/// action's audit row compares.
pub(crate) fn audit_snapshot(p: &PaymentRow, inv: &InvoiceRow) -> Value {
    let mut v = payment_json(p);
    v["invoice_status"] = json!(inv.status);
    v["invoice_amount_due"] = json!(money_string(inv.amount_due));
    v
}

pub(crate) async fn audit_payment(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    p: &PaymentRow,
    before: Option<Value>,
    after: Value,
) -> AppResult<()> {
    let event = AuditEvent {
        tenant_id: Some(&p.tenant_id),
        action,
        target_type: "payment",
        target_id: p.payment_id.to_string(),
        before,
        after: Some(after),
    };
    audit::record(conn, actor, event).await
}

/// `{payment}`, scoped to the caller's tenant (another tenant's payment is not found).
pub async fn get_payment(
    pool: &PgPool,
    scope: Option<&str>,
    payment_id: Uuid,
) -> AppResult<PaymentRow> {
    let mut conn = pool.acquire().await?;
    PaymentRepository::get_by_id(&mut conn, scope, payment_id)
        .await?
        .ok_or_else(payment_not_found)
}

/// One page of a tenant's payments, the true total and whether more follow.
pub async fn list_payments(
    pool: &PgPool,
    tenant_id: &str,
    status: Option<PaymentStatus>,
    limit: i64,
    starting_after: Option<Uuid>,
) -> AppResult<(Vec<PaymentRow>, i64, bool)> {
    let mut conn = pool.acquire().await?;
    if TenantRepository::get(&mut conn, tenant_id).await?.is_none() {
        return Err(tenant_not_found());
    }
    Ok(
        PaymentRepository::list_by_tenant(&mut conn, tenant_id, status, limit, starting_after)
            .await?,
    )
}
