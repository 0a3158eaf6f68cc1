//! `/refunds`: a refund on the wire, with its payment and invoice after it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::billing::money::{money_string, PositiveAmount};
use crate::billing::types::InvoiceStatus;
use crate::error::{AppError, AppResult};
use crate::gateways::RefundReason;
use crate::http::dto::payments::{currency, invoice_status, PaymentBody};
use crate::http::openapi::components::{MoneyInputSchema, MoneySchema, TenantIdSchema};
use crate::repository::payments::refunds::RefundStatus;
use crate::services::idempotency::StoredResponse;
use crate::services::refunds::{RefundAnswer, RefundInput};
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
#[derive(Serialize, ToSchema)]
#[schema(as = Refund)]
pub struct RefundBody {
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    pub invoice_id: Uuid,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: String,
    /// The payment's amount.
    #[schema(value_type = MoneySchema)]
    pub original_amount: String,
    #[schema(value_type = MoneySchema)]
    pub refund_amount: String,
    #[schema(schema_with = currency)]
    pub currency: String,
    pub is_full_refund: bool,
    #[schema(value_type = String, pattern = "^(pending|succeeded|failed)$")]
    pub status: RefundStatus,
    pub reason: String,
    pub reason_ar: String,
    #[schema(pattern = "^(duplicate|fraudulent|requested_by_customer)$")]
    pub reason_code: String,
    pub external_refund_id: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<&RefundAnswer> for RefundBody {
    fn from(a: &RefundAnswer) -> Self {
        let r = &a.refund;
        RefundBody {
            refund_id: r.refund_id,
            payment_id: r.payment_id,
            invoice_id: r.invoice_id,
            tenant_id: r.tenant_id.clone(),
            original_amount: money_string(a.payment.amount),
            refund_amount: money_string(r.amount),
            currency: r.currency.clone(),
            is_full_refund: a.is_full_refund(),
            status: r.status.clone(),
            reason: r.reason.clone(),
            reason_ar: r.reason_ar.clone().unwrap_or_else(|| r.reason.clone()),
            reason_code: r.reason_code.clone(),
            external_refund_id: r.external_refund_id.clone(),
            failure_reason: r.failure_reason.clone(),
            created_at: r.created_at,
        }
    }
}

/// The refund, with its payment and invoice after it.
#[derive(Serialize, ToSchema)]
pub struct RefundResponse {
    pub success: bool,
    pub refund: RefundBody,
    pub payment: PaymentBody,
    #[schema(schema_with = invoice_status)]
    pub invoice_status: InvoiceStatus,
    /// The invoice's amount due after the refund.
    #[schema(value_type = MoneySchema)]
    pub amount_due: String,
    pub message: String,
    pub message_ar: String,
}

impl From<&RefundAnswer> for RefundResponse {
    /// A pending refund's message says the gateway has it.
    fn from(a: &RefundAnswer) -> Self {
        let amount = money_string(a.refund.amount);
        let (message, message_ar) = if a.refund.status == RefundStatus::Pending {
            (
                "Refund sent to the payment gateway; it completes when the gateway confirms it"
                    .to_string(),
                "تم إرسال الاسترداد إلى بوابة الدفع وسيكتمل عند التأكيد".to_string(),
            )
        } else if a.is_full_refund() {
            (
                "The payment was refunded in full".to_string(),
                "تم استرداد المبلغ بالكامل بنجاح".to_string(),
            )
        } else {
            (
                format!("{amount} was refunded"),
                format!("تم استرداد مبلغ {amount} بنجاح"),
            )
        };
        RefundResponse {
            success: true,
            refund: RefundBody::from(a),
            payment: PaymentBody::from(&a.payment),
            invoice_status: a.invoice.status,
            amount_due: money_string(a.invoice.amount_due),
            message,
            message_ar,
        }
    }
}

impl RefundResponse {
    /// The 201 a refund answers, as its Idempotency-Key keeps it
    /// (`services::refunds::RenderRefund`).
    pub fn stored(a: &RefundAnswer) -> StoredResponse {
        let body = serde_json::to_value(RefundResponse::from(a)).unwrap_or_default();
        StoredResponse::new(axum::http::StatusCode::CREATED, body)
    }
}
