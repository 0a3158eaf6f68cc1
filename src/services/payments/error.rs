//! What can go wrong with a payment, as domain values; `http` turns them into statuses and
//! the bilingual envelope (`http/errors/payments.rs`).

use rust_decimal::Decimal;

use crate::billing::types::{InvoiceStatus, PaymentMethod, PaymentStatus};
use crate::error::AppError;
use crate::gateways::Decline;
use crate::repository::payments::PaymentRow;

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("the payment does not exist (for this caller)")]
    NotFound,
    /// A caller that is neither platform staff nor of a tenant.
    #[error("a tenant is required")]
    TenantRequired,
    #[error("{0} payments are not configured on this server")]
    MethodUnavailable(PaymentMethod),
    #[error("the invoice is {0} and cannot take payments")]
    NotPayable(InvoiceStatus),
    /// More than is due, less what the gateways are already collecting (`in_flight`).
    #[error("the amount exceeds the invoice's amount due")]
    ExceedsDue {
        amount_due: Decimal,
        in_flight: Decimal,
    },
    /// Another payment settled first and left less due than this one.
    #[error("the amount exceeds what is now due on the invoice")]
    ExceedsDueNow { amount_due: Decimal },
    /// Only pending or processing payments can be settled, confirmed or rejected.
    #[error("the payment is {0}")]
    InvalidState(PaymentStatus),
    /// Card and Tharwatt payments settle on their gateway's word only.
    #[error("a {method} payment is settled by its gateway")]
    GatewayDecides {
        method: PaymentMethod,
        status: PaymentStatus,
    },
    /// The payer's card was refused.
    #[error("the card was declined")]
    CardDeclined {
        payment: Box<PaymentRow>,
        decline: Decline,
    },
    /// The gateway refused the payment or did not answer.
    #[error("the payment gateway failed")]
    Gateway {
        payment: Box<PaymentRow>,
        message: Option<String>,
    },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// What a step shared with other areas refused (audit, locks, dunning).
    #[error(transparent)]
    Service(#[from] AppError),
}
