//! Refunds of succeeded payments (super admin). Cumulative refunds never exceed the payment:
//! the cap is checked under the locks tenant → invoice → payment, counting refunds still in
//! flight at a gateway. A card or Tharwatt refund is recorded `pending`, sent to its gateway
//! outside any transaction (our refund id is the gateway's idempotency key, see `gateway`),
//! and applied only once the gateway says the money is back (`events`); cash, bank transfer
//! and mobile money refunds are applied at once.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::auth::Principal;
use crate::billing::money::{money_string, round_money};
use crate::billing::types::PaymentStatus;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::gateways::{self, RefundReason};
use crate::repository::invoices::InvoiceRow;
use crate::repository::outbox::OutboxRepository;
use crate::repository::payments::refunds::{NewRefund, RefundRepository, RefundRow, RefundStatus};
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::services::audit::{self, Actor, AuditEvent};
use crate::services::idempotency::{self, Claim, IdempotencyKey, Outcome};
use crate::services::payments::{audit_snapshot, lock_payment, payment_json};

pub mod events;
pub mod gateway;

#[derive(Clone, Debug)]
pub struct RefundInput {
    pub payment_id: Uuid,
    /// `None`: whatever is left to refund.
    pub amount: Option<Decimal>,
    pub reason: String,
    pub reason_ar: Option<String>,
    pub reason_code: RefundReason,
}

fn not_refundable(p: &PaymentRow) -> AppError {
    AppError::conflict(
        "payment_not_refundable",
        format!(
            "The payment is {}; only succeeded payments can be refunded",
            p.status
        ),
        "لا يمكن استرداد دفعة غير ناجحة",
    )
    .with_extra("payment_status", p.status)
}

pub(crate) fn exceeds(refundable: Decimal) -> AppError {
    AppError::unprocessable(
        "refund_exceeds_payment",
        format!(
            "The refund exceeds what is left to refund on the payment ({})",
            money_string(refundable)
        ),
        "مبلغ الاسترداد أكبر من المبلغ المتبقي من الدفعة",
    )
    .with_extra("refundable", money_string(refundable))
}

/// POST /refunds. Replays under `key`; a failed request stores nothing under it. A retry
/// of a card refund whose gateway call got no answer continues with the same refund row (and
/// so the same gateway idempotency key): it can never be refunded twice.
pub async fn create_refund(
    pool: &PgPool,
    config: &Config,
    principal: &Principal,
    key: Option<IdempotencyKey>,
    fingerprint: &str,
    input: RefundInput,
    now: DateTime<Utc>,
) -> AppResult<Outcome> {
    let scope = principal.scope.clone();
    let mut tx = pool.begin().await?;
    if let Some(k) = &key {
        if let Claim::Replay(done) = idempotency::claim(&mut tx, &scope, k, fingerprint).await? {
            return Ok(done);
        }
        if let Some(open) =
            RefundRepository::find_unanswered_by_idempotency(&mut tx, &scope, k.as_str()).await?
        {
            let (_, _, payment) = lock_payment(&mut tx, open.payment_id).await?;
            let gw = refund_gateway(config, &payment)?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("gateway refund offline")))?;
            tx.commit().await?;
            let call = gateway::Call {
                principal,
                key: key.as_ref(),
                retry: true,
            };
            return gateway::send(pool, gw.as_ref(), call, &payment, open, now).await;
        }
    }
    let (tenant_id, inv, payment) = lock_payment(&mut tx, input.payment_id).await?;
    match payment.status {
        PaymentStatus::Succeeded => {}
        // Nothing is left of a fully refunded payment: that is the cap, not a state problem.
        PaymentStatus::Refunded => return Err(exceeds(Decimal::ZERO)),
        _ => return Err(not_refundable(&payment)),
    }
    let gateway = refund_gateway(config, &payment)?;
    let committed = RefundRepository::committed_total(&mut tx, payment.payment_id).await?;
    let refundable = payment.amount - committed;
    let amount = input.amount.unwrap_or(refundable);
    if amount <= Decimal::ZERO || amount > refundable {
        return Err(exceeds(refundable));
    }
    let idem = key
        .as_ref()
        .filter(|_| gateway.is_some())
        .map(|k| (scope.as_str(), k.as_str()));
    let refund = RefundRepository::create(
        &mut tx,
        &NewRefund {
            refund_id: Uuid::new_v4(),
            payment_id: payment.payment_id,
            invoice_id: payment.invoice_id,
            tenant_id: &tenant_id,
            amount,
            currency: &payment.currency,
            status: RefundStatus::Pending,
            reason: &input.reason,
            reason_ar: input.reason_ar.as_deref(),
            external_refund_id: None,
            created_by: Some(&principal.subject),
            reason_code: input.reason_code.as_str(),
            idempotency: idem,
        },
    )
    .await?;
    let Some(gateway) = gateway else {
        // Offline money goes back by hand: applied in the same transaction.
        let body = apply(&mut tx, &refund, None, now).await?;
        let before = audit_snapshot(&payment, &inv);
        audit_refund(&mut tx, &Actor::from(principal), &refund, before, &body).await?;
        finish_key(&mut tx, &scope, key.as_ref(), &body).await?;
        tx.commit().await?;
        return Ok(Outcome {
            status: 201,
            body,
            replayed: false,
        });
    };
    tx.commit().await?;
    let call = gateway::Call {
        principal,
        key: key.as_ref(),
        retry: false,
    };
    gateway::send(pool, gateway.as_ref(), call, &payment, refund, now).await
}

/// The gateway a refund of `payment` goes through: `None` for offline methods; 422 when the
/// payment's gateway is not configured.
fn refund_gateway(
    config: &Config,
    payment: &PaymentRow,
) -> AppResult<Option<Box<dyn gateways::PaymentGateway>>> {
    let gateway = gateways::for_method(config, payment.method);
    if gateways::is_gateway_method(payment.method) && gateway.is_none() {
        return Err(AppError::unprocessable(
            "payment_method_unavailable",
            format!(
                "{} refunds need the gateway, which is not configured",
                payment.method
            ),
            "بوابة الدفع غير متاحة حالياً",
        ));
    }
    Ok(gateway)
}

/// The audit row of a refund: what changed on the payment and its invoice, and the refund.
pub(crate) async fn audit_refund(
    conn: &mut PgConnection,
    actor: &Actor,
    refund: &RefundRow,
    before: Value,
    body: &Value,
) -> AppResult<()> {
    let mut after = body["payment"].clone();
    after["invoice_status"] = body["invoice_status"].clone();
    after["invoice_amount_due"] = body["amount_due"].clone();
    let (old, mut new) = audit::changed(&before, &after);
    new["refund"] = body["refund"].clone();
    let event = AuditEvent {
        tenant_id: Some(&refund.tenant_id),
        action: "refund.create",
        target_type: "refund",
        target_id: refund.refund_id.to_string(),
        before: Some(old),
        after: Some(new),
    };
    audit::record(conn, actor, event).await
}

pub(crate) async fn finish_key(
    conn: &mut PgConnection,
    scope: &str,
    key: Option<&IdempotencyKey>,
    body: &Value,
) -> AppResult<()> {
    match key {
        Some(k) => Ok(idempotency::complete(
            conn,
            scope,
            k,
            &crate::services::payments::created(body.clone()),
        )
        .await?),
        None => Ok(()),
    }
}

/// The refund in the gateway's money: its share of what the gateway collected (Tharwatt
/// collected YER). The refund that empties the payment takes exactly what is left, so the
/// gateway refunds add up to the charge despite rounding.
pub(crate) fn gateway_share(
    p: &PaymentRow,
    committed_before: Decimal,
    amount: Decimal,
) -> (Decimal, String) {
    let (Some(g_amount), Some(g_currency)) = (p.gateway_amount, p.gateway_currency.clone()) else {
        return (amount, p.currency.clone());
    };
    if g_currency == p.currency {
        return (amount, g_currency);
    }
    let share = |x: Decimal| round_money(x * g_amount / p.amount);
    if committed_before + amount == p.amount {
        (g_amount - share(committed_before), g_currency)
    } else {
        (share(amount), g_currency)
    }
}

/// Applies a pending refund (caller holds tenant → invoice → payment locks): the refund
/// succeeds, the payment's refunded amount grows (status `refunded` when all of it is), the
/// invoice's `amount_paid` shrinks, and `payment.refunded` is recorded.
pub(crate) async fn apply(
    conn: &mut PgConnection,
    refund: &RefundRow,
    external_refund_id: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<Value> {
    let refund = RefundRepository::finish(
        conn,
        refund.refund_id,
        RefundStatus::Succeeded,
        external_refund_id,
        None,
    )
    .await?
    .ok_or_else(|| AppError::internal(anyhow::anyhow!("refund no longer pending")))?;
    let payment =
        PaymentRepository::add_refund(conn, &refund.tenant_id, refund.payment_id, refund.amount)
            .await?
            .ok_or_else(|| exceeds(Decimal::ZERO))?;
    let invoice = RefundRepository::reverse_on_invoice(
        conn,
        &refund.tenant_id,
        refund.invoice_id,
        refund.amount,
        now.date_naive(),
    )
    .await?
    .ok_or_else(|| AppError::internal(anyhow::anyhow!("invoice paid less than the refund")))?;
    record_event(conn, &refund, &payment).await?;
    Ok(refund_body(&refund, &payment, &invoice))
}

async fn record_event(conn: &mut PgConnection, r: &RefundRow, p: &PaymentRow) -> AppResult<()> {
    crate::metrics::count_payment(p.method, "refunded");
    OutboxRepository::record(
        conn,
        "payment.refunded",
        Some(&r.tenant_id),
        json!({
            "refund_id": r.refund_id,
            "payment_id": r.payment_id,
            "invoice_id": r.invoice_id,
            "refund_amount": money_string(r.amount),
            "refunded_total": money_string(p.refunded_amount),
            "currency": r.currency,
            "is_full_refund": p.status == PaymentStatus::Refunded,
            "reason": r.reason,
            "external_refund_id": r.external_refund_id,
        }),
    )
    .await?;
    Ok(())
}

/// A pending refund is not money back yet: the payment and invoice are unchanged and the
/// message says the gateway has it.
pub(crate) fn refund_body(r: &RefundRow, p: &PaymentRow, inv: &InvoiceRow) -> Value {
    let full = p.status == PaymentStatus::Refunded;
    let pending = r.status == RefundStatus::Pending;
    let (message, message_ar) = if pending {
        (
            "Refund sent to the payment gateway; it completes when the gateway confirms it"
                .to_string(),
            "تم إرسال الاسترداد إلى بوابة الدفع وسيكتمل عند التأكيد".to_string(),
        )
    } else if full {
        (
            "The payment was refunded in full".to_string(),
            "تم استرداد المبلغ بالكامل بنجاح".to_string(),
        )
    } else {
        (
            format!("{} was refunded", money_string(r.amount)),
            format!("تم استرداد مبلغ {} بنجاح", money_string(r.amount)),
        )
    };
    json!({
        "success": true,
        "refund": {
            "refund_id": r.refund_id,
            "payment_id": r.payment_id,
            "invoice_id": r.invoice_id,
            "tenant_id": r.tenant_id,
            "original_amount": money_string(p.amount),
            "refund_amount": money_string(r.amount),
            "currency": r.currency,
            "is_full_refund": full,
            "status": r.status,
            "reason": r.reason,
            "reason_ar": r.reason_ar.clone().unwrap_or_else(|| r.reason.clone()),
            "reason_code": r.reason_code,
            "external_refund_id": r.external_refund_id,
            "failure_reason": r.failure_reason,
            "created_at": r.created_at,
        },
        "payment": payment_json(p),
        "invoice_status": inv.status,
        "amount_due": money_string(inv.amount_due),
        "message": message,
        "message_ar": message_ar,
    })
}
