//! Refunds of succeeded payments (super admin). Cumulative refunds never exceed the payment:
//! the cap is checked under the locks tenant → invoice → payment, counting refunds still in
//! flight at a gateway. A card or Tharwatt refund is recorded `pending`, sent to its gateway
//! outside any transaction (our refund id is the gateway's idempotency key, see `gateway`),
//! and applied only once the gateway says the money is back (`events`); cash, bank transfer
//! and mobile money refunds are applied at once.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::auth::Principal;
use crate::billing::money::round_money;
use crate::billing::types::PaymentStatus;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::events::Event;
use crate::gateways::{self, RefundReason};
use crate::repository::outbox::OutboxRepository;
use crate::repository::payments::refunds::{NewRefund, RefundRepository, RefundRow, RefundStatus};
use crate::repository::payments::{PaymentRepository, PaymentRow};
use crate::services::audit::Actor;
use crate::services::gateway_flow::{self, Opened};
use crate::services::idempotency::{IdempotencyKey, Outcome};
use crate::services::payments::{audit_snapshot, lock_payment};

mod answer;
mod error;
pub mod events;
pub mod gateway;

pub(crate) use answer::audit_refund;
pub use answer::{RefundAnswer, RenderRefund};
pub use error::RefundError;

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
    RefundError::NotRefundable(p.status).into()
}

pub(crate) fn exceeds(refundable: Decimal) -> AppError {
    RefundError::Exceeds { refundable }.into()
}

/// POST /refunds. Replays under `key`; a failed request stores nothing under it. A retry
/// of a card refund whose gateway call got no answer continues with the same refund row (and
/// so the same gateway idempotency key): it can never be refunded twice. The answer (and
/// what the key keeps) is `render`'s.
#[allow(clippy::too_many_arguments)] // the request's parts, each needed once
pub async fn create_refund(
    pool: &PgPool,
    config: &Config,
    principal: &Principal,
    key: Option<IdempotencyKey>,
    fingerprint: &str,
    input: RefundInput,
    now: DateTime<Utc>,
    render: RenderRefund,
) -> Result<Outcome, RefundError> {
    let flow = gateway::Refund {
        pool,
        config,
        principal,
        key: key.as_ref(),
        input,
        now,
        render,
    };
    gateway_flow::run(pool, &principal.scope, key.as_ref(), fingerprint, flow).await
}

/// Step 1 of a refund (the key claimed): checks the payment can take it under the locks and
/// records it `pending`. An offline refund is applied here and answered at once.
pub(crate) async fn open_refund(
    conn: &mut PgConnection,
    flow: &gateway::Refund<'_>,
) -> AppResult<Opened<gateway::Send>> {
    let (principal, input) = (flow.principal, &flow.input);
    let (tenant_id, inv, payment) = lock_payment(conn, input.payment_id).await?;
    match payment.status {
        PaymentStatus::Succeeded => {}
        // Nothing is left of a fully refunded payment: that is the cap, not a state problem.
        PaymentStatus::Refunded => return Err(exceeds(Decimal::ZERO)),
        _ => return Err(not_refundable(&payment)),
    }
    let gateway = refund_gateway(flow.config, &payment)?;
    let committed = RefundRepository::committed_total(conn, payment.payment_id).await?;
    let refundable = payment.amount - committed;
    let amount = input.amount.unwrap_or(refundable);
    if amount <= Decimal::ZERO || amount > refundable {
        return Err(exceeds(refundable));
    }
    let idem = flow
        .key
        .filter(|_| gateway.is_some())
        .map(|k| (principal.scope.as_str(), k.as_str()));
    let refund = RefundRepository::create(
        conn,
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
        let done = apply(conn, &refund, None, flow.now).await?;
        let before = audit_snapshot(&payment, &inv);
        audit_refund(conn, &Actor::from(principal), &done, before).await?;
        return Ok(Opened::Done((flow.render)(&done)));
    };
    Ok(Opened::Call(gateway::Send {
        gateway,
        payment,
        refund,
        retry: false,
    }))
}

/// The gateway a refund of `payment` goes through: `None` for offline methods; 422 when the
/// payment's gateway is not configured.
fn refund_gateway(
    config: &Config,
    payment: &PaymentRow,
) -> AppResult<Option<Box<dyn gateways::PaymentGateway>>> {
    let gateway = gateways::for_method(config, payment.method);
    if gateways::is_gateway_method(payment.method) && gateway.is_none() {
        return Err(RefundError::GatewayUnavailable(payment.method).into());
    }
    Ok(gateway)
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
) -> AppResult<RefundAnswer> {
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
    Ok(RefundAnswer {
        refund,
        payment,
        invoice,
    })
}

async fn record_event(conn: &mut PgConnection, r: &RefundRow, p: &PaymentRow) -> AppResult<()> {
    crate::metrics::count_payment(p.method, "refunded");
    let refunded = Event::PaymentRefunded {
        refund_id: r.refund_id,
        payment_id: r.payment_id,
        invoice_id: r.invoice_id,
        refund_amount: r.amount,
        refunded_total: p.refunded_amount,
        currency: r.currency.clone(),
        is_full_refund: p.status == PaymentStatus::Refunded,
        reason: r.reason.clone(),
        external_refund_id: r.external_refund_id.clone(),
    };
    OutboxRepository::record_event(conn, Some(&r.tenant_id), &refunded).await?;
    Ok(())
}
