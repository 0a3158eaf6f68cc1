//! Payment, refund and webhook errors as statuses and the bilingual envelope.

use axum::http::StatusCode;

use crate::billing::money::money_string;
use crate::error::AppError;
use crate::http::dto::payments::PaymentBody;
use crate::services::payments::PaymentError;
use crate::services::refunds::RefundError;
use crate::services::webhooks::WebhookError;

impl From<PaymentError> for AppError {
    fn from(e: PaymentError) -> Self {
        use PaymentError as E;
        match e {
            E::NotFound => AppError::not_found("Payment", "الدفعة غير موجودة"),
            E::TenantRequired => AppError::forbidden("A tenant is required"),
            E::MethodUnavailable(method) => AppError::unprocessable(
                "payment_method_unavailable",
                format!("{method} payments are not configured on this server"),
                "طريقة الدفع هذه غير متاحة حالياً",
            ),
            E::NotPayable(status) => AppError::conflict(
                "invoice_not_payable",
                format!("The invoice is {status} and cannot take payments"),
                "لا يمكن الدفع لهذه الفاتورة",
            )
            .with_extra("invoice_status", status),
            E::ExceedsDue {
                amount_due,
                in_flight,
            } => {
                let e = exceeds_due(StatusCode::UNPROCESSABLE_ENTITY, amount_due);
                if in_flight.is_zero() {
                    e
                } else {
                    e.with_extra("in_flight", money_string(in_flight))
                }
            }
            E::ExceedsDueNow { amount_due } => exceeds_due(StatusCode::CONFLICT, amount_due),
            E::InvalidState(status) => AppError::conflict(
                "invalid_payment_state",
                format!(
                    "The payment is {status}; only pending or processing payments can be confirmed or rejected"
                ),
                "لا يمكن تعديل حالة هذه الدفعة",
            )
            .with_extra("payment_status", status),
            E::GatewayDecides { method, status } => AppError::conflict(
                "invalid_payment_state",
                format!("A {method} payment is settled by its gateway, not by hand"),
                "تتم تسوية هذه الدفعة عبر بوابة الدفع",
            )
            .with_extra("payment_status", status),
            // Stripe writes card-error messages for the payer, so its text is passed on.
            E::CardDeclined { payment, decline } => AppError::new(
                StatusCode::PAYMENT_REQUIRED,
                "card_declined",
                "The card was declined. Try another card or contact the card issuer.",
                "تم رفض البطاقة. جرّب بطاقة أخرى أو تواصل مع البنك المصدر",
            )
            .with_extra("payment", PaymentBody::from(&*payment))
            .with_extra("decline_code", &decline.decline_code)
            .with_extra("gateway_code", &decline.code)
            .with_extra("gateway_message", &decline.message),
            E::Gateway { payment, message } => AppError::new(
                StatusCode::BAD_GATEWAY,
                "gateway_error",
                "Payment processing failed. Please try again or contact support.",
                "فشلت معالجة الدفع عبر بوابة الدفع. يرجى المحاولة مرة أخرى",
            )
            .with_extra("payment", PaymentBody::from(&*payment))
            .with_extra("gateway_message", message),
            E::Database(e) => AppError::from(e),
            E::Service(e) => e,
        }
    }
}

fn exceeds_due(status: StatusCode, amount_due: rust_decimal::Decimal) -> AppError {
    AppError::new(
        status,
        "amount_exceeds_due",
        format!(
            "The amount exceeds the invoice's amount due ({})",
            money_string(amount_due)
        ),
        "المبلغ أكبر من المبلغ المستحق على الفاتورة",
    )
    .with_extra("amount_due", money_string(amount_due))
}

impl From<RefundError> for AppError {
    fn from(e: RefundError) -> Self {
        use RefundError as E;
        match e {
            E::NotRefundable(status) => AppError::conflict(
                "payment_not_refundable",
                format!("The payment is {status}; only succeeded payments can be refunded"),
                "لا يمكن استرداد دفعة غير ناجحة",
            )
            .with_extra("payment_status", status),
            E::Exceeds { refundable } => AppError::unprocessable(
                "refund_exceeds_payment",
                format!(
                    "The refund exceeds what is left to refund on the payment ({})",
                    money_string(refundable)
                ),
                "مبلغ الاسترداد أكبر من المبلغ المتبقي من الدفعة",
            )
            .with_extra("refundable", money_string(refundable)),
            E::GatewayUnavailable(method) => AppError::unprocessable(
                "payment_method_unavailable",
                format!("{method} refunds need the gateway, which is not configured"),
                "بوابة الدفع غير متاحة حالياً",
            ),
            E::Unanswered { refund_id, status } => AppError::new(
                StatusCode::BAD_GATEWAY,
                "gateway_error",
                "The payment gateway did not confirm the refund. Retry with the same Idempotency-Key; \
                 it will not be refunded twice",
                "لم تؤكد بوابة الدفع الاسترداد. أعد المحاولة بنفس مفتاح عدم التكرار",
            )
            .with_extra("refund_id", refund_id)
            .with_extra("refund_status", status),
            E::Refused {
                refund_id,
                status,
                message,
            } => AppError::new(
                StatusCode::BAD_GATEWAY,
                "gateway_error",
                "The refund could not be processed by the payment gateway",
                "فشل في معالجة الاسترداد عبر بوابة الدفع",
            )
            .with_extra("refund_id", refund_id)
            .with_extra("refund_status", status)
            .with_extra("gateway_message", message),
            E::Unconfirmed => AppError::new(
                StatusCode::BAD_GATEWAY,
                "gateway_error",
                "The refund's state could not be confirmed with the payment gateway; deliver the event again",
                "تعذر تأكيد حالة الاسترداد مع بوابة الدفع؛ أعد إرسال الحدث",
            ),
            E::Idempotency(e) => AppError::from(e),
            E::Database(e) => AppError::from(e),
            E::Service(e) => e,
        }
    }
}

impl From<WebhookError> for AppError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::InvalidSignature => AppError::bad_request(
                "invalid_signature",
                "The webhook signature is missing or invalid",
                "توقيع الطلب غير صالح",
            ),
            WebhookError::InvalidPayload(what) => AppError::bad_request(
                "invalid_payload",
                format!("Invalid webhook payload: {what}"),
                "محتوى الطلب غير صالح",
            ),
        }
    }
}
