//! `/payments`: payments on the wire (the Python service's field names, money as strings).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::billing::money::{money_string, PositiveAmount};
use crate::billing::types::{InvoiceStatus, PaymentMethod, PaymentStatus};
use crate::error::{AppError, AppResult};
use crate::http::openapi::components::{MoneyInputSchema, MoneySchema, TenantIdSchema};
use crate::repository::payments::PaymentRow;
use crate::services::idempotency::StoredResponse;
use crate::services::payments::{PaymentAnswer, PaymentInput, PaymentResult};
use crate::services::validate::{check_len, is_phone, Checks};

/// A schema of the document by name (the enums and scalars several resources share).
pub(crate) fn named(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

pub(crate) fn nullable(name: &str) -> RefOr<Schema> {
    let null = ObjectBuilder::new().schema_type(Type::Null).build();
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(Ref::from_schema_name(name))
            .item(null)
            .build(),
    ))
}

pub(crate) fn currency() -> RefOr<Schema> {
    named("Currency")
}
pub(crate) fn payment_method() -> RefOr<Schema> {
    named("PaymentMethod")
}
pub(crate) fn payment_status() -> RefOr<Schema> {
    named("PaymentStatus")
}
pub(crate) fn invoice_status() -> RefOr<Schema> {
    named("InvoiceStatus")
}
fn nullable_money() -> RefOr<Schema> {
    nullable("Money")
}

/// A payment. `gateway_amount`/`gateway_currency`: what the gateway was asked to collect
/// (Tharwatt collects YER).
#[derive(Serialize, ToSchema)]
#[schema(as = Payment)]
pub struct PaymentBody {
    pub payment_id: Uuid,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: String,
    pub invoice_id: Uuid,
    #[schema(value_type = MoneySchema)]
    pub amount: String,
    #[schema(schema_with = currency)]
    pub currency: String,
    #[schema(schema_with = payment_method)]
    pub method: PaymentMethod,
    #[schema(schema_with = payment_status)]
    pub status: PaymentStatus,
    #[schema(schema_with = nullable_money)]
    pub gateway_amount: Option<String>,
    pub gateway_currency: Option<String>,
    pub external_id: Option<String>,
    #[schema(value_type = MoneySchema)]
    pub refunded_amount: String,
    pub failure_reason: Option<String>,
    pub paid_at: Option<DateTime<Utc>>,
    pub processed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&PaymentRow> for PaymentBody {
    fn from(p: &PaymentRow) -> Self {
        PaymentBody {
            payment_id: p.payment_id,
            tenant_id: p.tenant_id.clone(),
            invoice_id: p.invoice_id,
            amount: money_string(p.amount),
            currency: p.currency.clone(),
            method: p.method,
            status: p.status,
            gateway_amount: p.gateway_amount.map(money_string),
            gateway_currency: p.gateway_currency.clone(),
            external_id: p.external_id.clone(),
            refunded_amount: money_string(p.refunded_amount),
            failure_reason: p.failure_reason.clone(),
            paid_at: p.paid_at,
            processed_at: p.processed_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PaymentList {
    pub payments: Vec<PaymentBody>,
    pub total: i64,
    pub has_more: bool,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentDetail {
    pub payment: PaymentBody,
}

/// A payment recorded, confirmed or rejected, with its invoice after it.
#[derive(Serialize, ToSchema)]
pub struct PaymentResponse {
    pub success: bool,
    pub payment: PaymentBody,
    #[schema(schema_with = invoice_status)]
    pub invoice_status: InvoiceStatus,
    /// The invoice's amount due after this payment.
    #[schema(value_type = MoneySchema)]
    pub amount_due: String,
    pub message: &'static str,
    pub message_ar: &'static str,
    /// Card payments only: the payer must authenticate (3-D Secure) before the payment can
    /// settle. The app completes it with Stripe.js (`stripe.handleNextAction({clientSecret})`)
    /// or the mobile SDK; the `payment_intent.succeeded` webhook settles the payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub requires_action: Option<bool>,
    /// With requires_action: the PaymentIntent's client secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<Option<String>>,
    /// With requires_action: Stripe's next_action (use_stripe_sdk or redirect_to_url), as
    /// Stripe sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<Value>,
}

impl From<&PaymentAnswer> for PaymentResponse {
    fn from(a: &PaymentAnswer) -> Self {
        let (message, message_ar) = match &a.result {
            PaymentResult::Received => ("Payment received", "تم استلام الدفعة بنجاح"),
            PaymentResult::AwaitsConfirmation => (
                "Payment recorded; it awaits confirmation by an administrator",
                "تم تسجيل الدفعة وهي بانتظار تأكيد الإدارة",
            ),
            PaymentResult::SentToGateway => (
                "Payment sent to the gateway; it settles when the gateway confirms it",
                "تم إرسال الدفعة إلى بوابة الدفع وستكتمل عند التأكيد",
            ),
            PaymentResult::RequiresAction { .. } => (
                "The card needs the payer's authentication (3-D Secure): confirm it in the app \
                 with client_secret; the payment settles when the gateway confirms it",
                "تحتاج البطاقة إلى تحقق صاحبها (3-D Secure): أكمل التحقق في التطبيق",
            ),
            PaymentResult::Confirmed => ("Payment confirmed", "تم تأكيد الدفعة"),
            PaymentResult::Rejected => ("Payment rejected", "تم رفض الدفعة"),
        };
        let action = match &a.result {
            PaymentResult::RequiresAction {
                client_secret,
                next_action,
            } => Some((client_secret.clone(), next_action.clone())),
            _ => None,
        };
        PaymentResponse {
            success: true,
            payment: PaymentBody::from(&a.payment),
            invoice_status: a.invoice.status,
            amount_due: money_string(a.invoice.amount_due),
            message,
            message_ar,
            requires_action: action.as_ref().map(|_| true),
            client_secret: action.as_ref().map(|(s, _)| s.clone()),
            next_action: action.map(|(_, n)| n),
        }
    }
}

impl PaymentResponse {
    /// The 201 a new payment answers, as its Idempotency-Key keeps it
    /// (`services::payments::RenderPayment`).
    pub fn stored(a: &PaymentAnswer) -> StoredResponse {
        let body = serde_json::to_value(PaymentResponse::from(a)).unwrap_or(Value::Null);
        StoredResponse::new(axum::http::StatusCode::CREATED, body)
    }
}

/// Pay an invoice. Unknown members are refused (422).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentRequest {
    #[schema(format = Uuid)]
    pub invoice_id: String,
    /// > 0 and <= the invoice's amount_due.
    #[schema(value_type = MoneyInputSchema)]
    pub amount: PositiveAmount,
    #[schema(schema_with = payment_method)]
    pub method: PaymentMethod,
    /// credit_card only (required there): a Stripe PaymentMethod id (`pm_...`, from Stripe.js
    /// or the mobile SDK) or a legacy card token (`tok_...`, made a PaymentMethod first).
    #[schema(pattern = "^(pm|tok)_[A-Za-z0-9_]+$", max_length = 500)]
    pub stripe_token: Option<String>,
    /// tharwatt only (required there): 5-20 digits with an optional leading `+`.
    #[schema(pattern = r"^\+?[0-9]{5,20}$")]
    pub phone_number: Option<String>,
    /// Same as the Idempotency-Key header.
    #[schema(min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7E]+$")]
    pub idempotency_key: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub reference: Option<String>,
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub notes: Option<String>,
}

impl CreatePaymentRequest {
    pub fn validate(self) -> AppResult<PaymentInput> {
        let mut checks = Checks::default();
        let invoice_id = Uuid::parse_str(self.invoice_id.trim()).ok();
        if invoice_id.is_none() {
            checks.push("invoice_id", "must be a UUID");
        }
        if self.phone_number.as_deref().is_some_and(|p| !is_phone(p)) {
            checks.push(
                "phone_number",
                "must be 5-20 digits with an optional leading +",
            );
        }
        if self.stripe_token.as_deref().is_some_and(|t| t.len() > 500) {
            checks.push("stripe_token", "must be at most 500 characters");
        }
        check_gateway_needs(&self, &mut checks);
        if let Some(r) = &self.reference {
            check_len(&mut checks, "reference", r, 200);
        }
        if let Some(n) = &self.notes {
            check_len(&mut checks, "notes", n, 1000);
        }
        checks.finish()?;
        let Some(invoice_id) = invoice_id else {
            return Err(AppError::field("invoice_id", "must be a UUID"));
        };
        Ok(PaymentInput {
            invoice_id,
            amount: self.amount.value(),
            method: self.method,
            stripe_token: self.stripe_token.map(|s| s.trim().to_string()),
            phone_number: self.phone_number,
            reference: self.reference.map(|s| s.trim().to_string()),
            notes: self.notes.map(|s| s.trim().to_string()),
        })
    }
}

/// What each gateway needs to start a payment.
fn check_gateway_needs(r: &CreatePaymentRequest, checks: &mut Checks) {
    let token = r.stripe_token.as_deref().map(str::trim);
    if r.method == PaymentMethod::CreditCard && token.is_none_or(str::is_empty) {
        checks.push("stripe_token", "is required for credit_card payments");
    } else if r.method == PaymentMethod::CreditCard && token.is_some_and(|t| !is_card_token(t)) {
        checks.push(
            "stripe_token",
            "must be a Stripe PaymentMethod id (pm_...) or a card token (tok_...)",
        );
    }
    if r.method == PaymentMethod::Tharwatt && r.phone_number.is_none() {
        checks.push("phone_number", "is required for tharwatt payments");
    }
}

/// What a card payment may name: a PaymentMethod (`pm_…`, what Stripe.js and the mobile SDKs
/// create) or a legacy card token (`tok_…`, turned into a PaymentMethod before confirming).
fn is_card_token(t: &str) -> bool {
    let id = t
        .strip_prefix("pm_")
        .or_else(|| t.strip_prefix("tok_"))
        .unwrap_or("");
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The document's `CreatePaymentRequest`: the members of [`CreatePaymentRequest`] in one
/// variant per kind of method, so the rules across members are in the schema too: a card
/// payment needs `stripe_token` (a PaymentMethod id or card token), a Tharwatt payment
/// `phone_number`; other methods take neither rule.
pub struct CreatePaymentSchema;

impl PartialSchema for CreatePaymentSchema {
    fn schema() -> RefOr<Schema> {
        let fields = <CreatePaymentRequest as PartialSchema>::schema();
        let RefOr::T(Schema::Object(base)) = fields else {
            return fields;
        };
        let variants: [(&[&str], Option<&str>); 3] = [
            (&["cash", "bank_transfer", "mobile_money"], None),
            (&["credit_card"], Some("stripe_token")),
            (&["tharwatt"], Some("phone_number")),
        ];
        let mut one_of = OneOfBuilder::new().description(base.description.clone());
        for (methods, needs) in variants {
            let mut o = base.clone();
            o.description = None;
            let method = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(methods.iter().copied()));
            o.properties
                .insert("method".into(), RefOr::T(Schema::Object(method.build())));
            if let Some(field) = needs {
                o.required.push(field.into());
                if let Some(RefOr::T(Schema::Object(p))) = o.properties.get_mut(field) {
                    p.schema_type = SchemaType::Type(Type::String);
                }
            }
            if needs != Some("stripe_token") {
                if let Some(RefOr::T(Schema::Object(p))) = o.properties.get_mut("stripe_token") {
                    p.pattern = None;
                }
            }
            one_of = one_of.item(Schema::Object(o));
        }
        RefOr::T(Schema::OneOf(one_of.build()))
    }
}

impl ToSchema for CreatePaymentSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CreatePaymentRequest")
    }
}

/// An optional reason for the decision.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentDecisionRequest {
    #[schema(
        min_length = 1,
        max_length = 1000,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"
    )]
    pub reason: Option<String>,
}
