//! `/refunds`: a refund on the wire, with its payment and invoice after it.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::billing::money::PositiveAmount;
use crate::billing::types::InvoiceStatus;
use crate::error::{AppError, AppResult};
use crate::gateways::RefundReason;
use crate::http::dto::payments::{currency, invoice_status, PaymentBody};
use crate::http::openapi::components::{MoneyInputSchema, MoneySchema, TenantIdSchema};
use crate::services::refunds::RefundInput;
use crate::services::validate::{check_len, Checks};

/// Refund (part of) a succeeded payment. Unknown members are refused (422).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefundRequest {
    #[schema(format = Uuid)]
    pub payment_id: String,
    /// Default: everything not yet refunded.
    #[schema(value_type = Option<MoneyInputSchema>)]
    pub amount: Option<PositiveAmount>,
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub reason: String,
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub reason_ar: Option<String>,
    /// Sent to Stripe as the refund's reason (default requested_by_customer).
    #[schema(pattern = r"^\s*(duplicate|fraudulent|requested_by_customer)\s*$")]
    pub reason_code: Option<String>,
}

impl CreateRefundRequest {
    pub fn validate(self) -> AppResult<RefundInput> {
        let mut checks = Checks::default();
        let payment_id = Uuid::parse_str(self.payment_id.trim()).ok();
        if payment_id.is_none() {
            checks.push("payment_id", "must be a UUID");
        }
        check_len(&mut checks, "reason", &self.reason, 1000);
        if let Some(r) = &self.reason_ar {
            check_len(&mut checks, "reason_ar", r, 1000);
        }
        let reason_code = match self.reason_code.as_deref().map(str::trim) {
            None => Some(RefundReason::default()),
            Some(c) => RefundReason::parse(c),
        };
        if reason_code.is_none() {
            checks.push(
                "reason_code",
                "must be duplicate, fraudulent or requested_by_customer",
            );
        }
        checks.finish()?;
        let payment_id =
            payment_id.ok_or_else(|| AppError::field("payment_id", "must be a UUID"))?;
        Ok(RefundInput {
            payment_id,
            amount: self.amount.map(PositiveAmount::value),
            reason: self.reason.trim().to_string(),
            reason_ar: self.reason_ar.map(|s| s.trim().to_string()),
            reason_code: reason_code.unwrap_or_default(),
        })
    }
}

/// A refund: `pending` at a gateway until it reports the money back (only then does it move
/// the payment and the invoice), `succeeded`, or `failed`.
#[derive(ToSchema)]
#[schema(as = Refund)]
#[allow(dead_code)]
pub struct RefundBody {
    refund_id: Uuid,
    payment_id: Uuid,
    invoice_id: Uuid,
    #[schema(value_type = TenantIdSchema)]
    tenant_id: String,
    /// The payment's amount.
    #[schema(value_type = MoneySchema)]
    original_amount: String,
    #[schema(value_type = MoneySchema)]
    refund_amount: String,
    #[schema(schema_with = currency)]
    currency: String,
    is_full_refund: bool,
    #[schema(pattern = "^(pending|succeeded|failed)$")]
    status: String,
    reason: String,
    reason_ar: String,
    #[schema(pattern = "^(duplicate|fraudulent|requested_by_customer)$")]
    reason_code: String,
    external_refund_id: Option<String>,
    failure_reason: Option<String>,
    created_at: DateTime<Utc>,
}

/// The refund, with its payment and invoice after it.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the body the service writes (and replays under a key)
pub struct RefundResponse {
    success: bool,
    refund: RefundBody,
    #[schema(value_type = PaymentBody)]
    payment: Value,
    #[schema(schema_with = invoice_status)]
    invoice_status: InvoiceStatus,
    /// The invoice's amount due after the refund.
    #[schema(value_type = MoneySchema)]
    amount_due: String,
    message: String,
    message_ar: String,
}
