//! What can go wrong with a refund, as domain values; `http` turns them into statuses and the
//! bilingual envelope (`http/errors/payments.rs`).

use rust_decimal::Decimal;

use crate::error::AppError;
use crate::services::idempotency::IdempotencyError;

use crate::billing::types::{PaymentMethod, PaymentStatus};
use crate::repository::payments::refunds::RefundStatus;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    /// Only succeeded payments can be refunded.
    #[error("the payment is {0}")]
    NotRefundable(PaymentStatus),
    /// More than is left to refund on the payment.
    #[error("the refund exceeds what is left to refund")]
    Exceeds { refundable: Decimal },
    #[error("{0} refunds need the gateway, which is not configured")]
    GatewayUnavailable(PaymentMethod),
    /// The gateway's answer was lost; the refund stays pending (a retry cannot refund twice).
    #[error("the payment gateway did not confirm the refund")]
    Unanswered {
        refund_id: Uuid,
        status: RefundStatus,
    },
    /// The gateway refused the refund.
    #[error("the payment gateway refused the refund")]
    Refused {
        refund_id: Uuid,
        status: RefundStatus,
        message: Option<String>,
    },
    /// A webhook's refund could not be confirmed with the gateway (it delivers it again).
    #[error("the refund's state could not be confirmed with the payment gateway")]
    Unconfirmed,
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// What a step shared with other areas refused (payment locks, audit).
    #[error(transparent)]
    Service(#[from] AppError),
}
