//! What payment actions answer, as typed values: the payment and its invoice after the
//! action, and what came of it. `http` renders them (and the answer a key keeps).

use serde_json::Value;

use crate::repository::invoices::InvoiceRow;
use crate::repository::payments::PaymentRow;
use crate::services::idempotency::StoredResponse;

/// A payment after an action, with its invoice.
#[derive(Clone, Debug)]
pub struct PaymentAnswer {
    pub payment: PaymentRow,
    pub invoice: InvoiceRow,
    pub result: PaymentResult,
}

/// What came of the action.
#[derive(Clone, Debug, PartialEq)]
pub enum PaymentResult {
    /// The money is in: the payment succeeded.
    Received,
    /// An offline payment waits for a super admin to confirm it.
    AwaitsConfirmation,
    /// The gateway has it; it settles when the gateway confirms it.
    SentToGateway,
    /// The payer must authenticate the card (3-D Secure) in the app first.
    RequiresAction {
        client_secret: Option<String>,
        /// Stripe's `next_action`, as Stripe sent it.
        next_action: Value,
    },
    Confirmed,
    Rejected,
}

impl PaymentAnswer {
    pub(crate) fn new(payment: &PaymentRow, invoice: &InvoiceRow, result: PaymentResult) -> Self {
        PaymentAnswer {
            payment: payment.clone(),
            invoice: invoice.clone(),
            result,
        }
    }
}

/// How `http` writes an answer kept under an Idempotency-Key.
pub type RenderPayment = fn(&PaymentAnswer) -> StoredResponse;
