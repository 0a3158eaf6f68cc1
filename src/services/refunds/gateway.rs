//! A card or Tharwatt refund at its gateway, between two transactions (a slow gateway must not
//! hold row locks): the refund row is committed `pending` first, the gateway is called with
//! the refund id as its idempotency key, and its answer is applied in a second transaction.
//!
//! When the answer is lost (timeout, 5xx) the refund stays `pending` and the Idempotency-Key is
//! released: the client's retry continues with the same refund row, asks the gateway what
//! became of it first, and only then sends it again under the same gateway key. Either way
//! Stripe holds at most one refund for the row. What is still unknown after that is settled
//! by the reconciliation job.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::events::{self, Change};
use super::{audit_refund, gateway_share, RefundAnswer, RefundError, RefundInput, RenderRefund};
use crate::auth::Principal;
use crate::config::Config;
use crate::error::{AppError, AppResult};
use crate::gateways::{GatewayError, PaymentGateway, RefundOutcome, RefundReason, RefundRequest};
use crate::repository::payments::refunds::{RefundRepository, RefundRow};
use crate::repository::payments::PaymentRow;
use crate::services::audit::Actor;
use crate::services::gateway_flow::{GatewayFlow, Opened};
use crate::services::idempotency::{IdempotencyKey, StoredResponse};
use crate::services::payments::{audit_snapshot, lock_payment};

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

/// A refund through [`gateway_flow`](crate::services::gateway_flow).
pub struct Refund<'a> {
    pub pool: &'a PgPool,
    pub config: &'a Config,
    pub principal: &'a Principal,
    pub key: Option<&'a IdempotencyKey>,
    pub input: RefundInput,
    pub now: DateTime<Utc>,
    pub render: RenderRefund,
}

/// The refund to send, its payment and gateway, and whether it is a retry of one sent before.
pub struct Send {
    pub gateway: Box<dyn PaymentGateway>,
    pub payment: PaymentRow,
    pub refund: RefundRow,
    pub retry: bool,
}

impl GatewayFlow for Refund<'_> {
    type Call = Send;
    type Answer = Result<RefundOutcome, GatewayError>;
    type Error = RefundError;

    /// A retry of a refund whose gateway call got no answer continues with its row; anything
    /// else is a new refund.
    async fn open(&mut self, conn: &mut PgConnection) -> Result<Opened<Send>, RefundError> {
        let scope = self.principal.scope.as_str();
        if let Some(k) = self.key {
            if let Some(open) =
                RefundRepository::find_unanswered_by_idempotency(conn, scope, k.as_str()).await?
            {
                let (_, _, payment) = lock_payment(conn, open.payment_id).await?;
                let gateway = super::refund_gateway(self.config, &payment)?
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("gateway refund offline")))?;
                return Ok(Opened::Call(Send {
                    gateway,
                    payment,
                    refund: open,
                    retry: true,
                }));
            }
        }
        Ok(super::open_refund(conn, self).await?)
    }

    async fn call(&mut self, send: &Send) -> Result<Self::Answer, RefundError> {
        let request = request_for(self.pool, &send.payment, &send.refund).await?;
        Ok(ask(send.gateway.as_ref(), &request, send.retry).await)
    }

    async fn settle(
        &mut self,
        conn: &mut PgConnection,
        send: Send,
        answer: Self::Answer,
    ) -> Result<StoredResponse, RefundError> {
        let refund = send.refund;
        let (_, inv_before, payment_before) = lock_payment(conn, send.payment.payment_id).await?;
        let outcome = match answer {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(refund.id = %refund.refund_id, gateway = send.gateway.name(), error = %e, "gateway refund unanswered");
                RefundRepository::keep_pending(conn, refund.refund_id, None, Some(UNANSWERED))
                    .await?;
                return Err(unanswered(&refund));
            }
        };
        let after = events::on_gateway_state(conn, refund.refund_id, &outcome, self.now).await?;
        if after.change == Change::Failed {
            return Err(refused(&after.refund));
        }
        let done = RefundAnswer {
            refund: after.refund,
            payment: after.payment,
            invoice: after.invoice,
        };
        let before = audit_snapshot(&payment_before, &inv_before);
        audit_refund(conn, &Actor::from(self.principal), &done, before).await?;
        Ok((self.render)(&done))
    }
}

/// Kept on a refund whose gateway call got no answer (cleared when the gateway answers).
pub const UNANSWERED: &str = "The payment gateway did not answer; the refund is not confirmed";

fn unanswered(refund: &RefundRow) -> RefundError {
    RefundError::Unanswered {
        refund_id: refund.refund_id,
        status: refund.status.clone(),
    }
}

fn refused(refund: &RefundRow) -> RefundError {
    RefundError::Refused {
        refund_id: refund.refund_id,
        status: refund.status.clone(),
        message: refund.failure_reason.clone(),
    }
}
