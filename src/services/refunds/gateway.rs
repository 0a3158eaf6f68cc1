//! A card or Tharwatt refund at its gateway, between two transactions (a slow gateway must not
//! hold row locks): the refund row is committed `pending` first, the gateway is called with
//! the refund id as its idempotency key, and its answer is applied in a second transaction.
//!
//! When the answer is lost (timeout, 5xx) the refund stays `pending` and the Idempotency-Key is
//! released: the client's retry continues with the same refund row, asks the gateway what
//! became of it first, and only then sends it again under the same gateway key. Either way
//! Stripe holds at most one refund for the row. What is still unknown after that is settled
//! by the reconciliation job.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::events::{self, Change};
use super::{audit_refund, finish_key, gateway_share, refund_body};
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::gateways::{GatewayError, PaymentGateway, RefundOutcome, RefundReason, RefundRequest};
use crate::repository::payments::refunds::{RefundRepository, RefundRow};
use crate::repository::payments::PaymentRow;
use crate::services::audit::Actor;
use crate::services::idempotency::{self, IdempotencyKey, Outcome};
use crate::services::payments::{audit_snapshot, lock_payment};

/// Who asks, under which key, and whether this is a retry of a refund already sent once.
pub struct Call<'a> {
    pub principal: &'a Principal,
    pub key: Option<&'a IdempotencyKey>,
    pub retry: bool,
}

/// The gateway request for `refund` of `payment` (its share of what the gateway collected).
pub async fn request_for(
    pool: &PgPool,
    payment: &PaymentRow,
    refund: &RefundRow,
) -> AppResult<RefundRequest> {
    let mut conn = pool.acquire().await?;
    let committed = RefundRepository::committed_total(&mut conn, payment.payment_id).await?;
    let (amount, currency) = gateway_share(payment, committed - refund.amount, refund.amount);
    Ok(RefundRequest {
        refund_id: refund.refund_id,
        payment_id: payment.payment_id,
        external_id: payment.external_id.clone(),
        amount,
        currency,
        reason: refund.reason.clone(),
        reason_code: RefundReason::parse(&refund.reason_code).unwrap_or_default(),
    })
}

/// A retry asks first: a refund the gateway already holds is read, not sent again.
async fn ask(
    gateway: &dyn PaymentGateway,
    request: &RefundRequest,
    retry: bool,
) -> Result<RefundOutcome, GatewayError> {
    if retry {
        if let Ok(Some(found)) = gateway.lookup_refund(request, None).await {
            return Ok(found);
        }
    }
    gateway.refund(request).await
}

pub async fn send(
    pool: &PgPool,
    gateway: &dyn PaymentGateway,
    call: Call<'_>,
    payment: &PaymentRow,
    refund: RefundRow,
    now: DateTime<Utc>,
) -> AppResult<Outcome> {
    let scope = call.principal.scope.as_str();
    let request = request_for(pool, payment, &refund).await?;
    let answer = ask(gateway, &request, call.retry).await;
    let mut tx = pool.begin().await?;
    let (_, inv_before, payment_before) = lock_payment(&mut tx, payment.payment_id).await?;
    let outcome = match answer {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(refund.id = %refund.refund_id, gateway = gateway.name(), error = %e, "gateway refund unanswered");
            RefundRepository::keep_pending(&mut tx, refund.refund_id, None, Some(UNANSWERED))
                .await?;
            if let Some(k) = call.key {
                idempotency::release(&mut tx, scope, k).await?;
            }
            tx.commit().await?;
            return Err(unanswered(&refund));
        }
    };
    let after = events::on_gateway_state(&mut tx, refund.refund_id, &outcome, now).await?;
    if after.change == Change::Failed {
        if let Some(k) = call.key {
            idempotency::release(&mut tx, scope, k).await?;
        }
        tx.commit().await?;
        return Err(refused(&after.refund));
    }
    let body = refund_body(&after.refund, &after.payment, &after.invoice);
    let before = audit_snapshot(&payment_before, &inv_before);
    let actor = Actor::from(call.principal);
    audit_refund(&mut tx, &actor, &after.refund, before, &body).await?;
    finish_key(&mut tx, scope, call.key, &body).await?;
    tx.commit().await?;
    Ok(Outcome {
        status: 201,
        body,
        replayed: false,
    })
}

/// Kept on a refund whose gateway call got no answer (cleared when the gateway answers).
pub const UNANSWERED: &str = "The payment gateway did not answer; the refund is not confirmed";

fn unanswered(refund: &RefundRow) -> AppError {
    AppError::new(
        StatusCode::BAD_GATEWAY,
        "gateway_error",
        "The payment gateway did not confirm the refund. Retry with the same Idempotency-Key; \
         it will not be refunded twice",
        "لم تؤكد بوابة الدفع الاسترداد. أعد المحاولة بنفس مفتاح عدم التكرار",
    )
    .with_extra("refund_id", refund.refund_id)
    .with_extra("refund_status", &refund.status)
}

fn refused(refund: &RefundRow) -> AppError {
    AppError::new(
        StatusCode::BAD_GATEWAY,
        "gateway_error",
        "The refund could not be processed by the payment gateway",
        "فشل في معالجة الاسترداد عبر بوابة الدفع",
    )
    .with_extra("refund_id", refund.refund_id)
    .with_extra("refund_status", &refund.status)
    .with_extra("gateway_message", &refund.failure_reason)
}
