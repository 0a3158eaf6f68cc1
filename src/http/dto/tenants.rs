//! Tenants on the wire: sign-up, the tenant, the tenant list and the subscription read.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::billing::money::decimal_text;
use crate::billing::types::{BillingCycle, Currency, SubscriptionStatus, TenantId};
use crate::error::{AppError, AppResult};
use crate::http::dto::plans::PlanBody;
use crate::http::dto::subscriptions::{
    catalogue_plan_schema, BillingCycleSchema, CurrencySchema, SubscriptionBody,
    SubscriptionStatusSchema,
};
use crate::http::dto::usage::{quota_usage, MetricQuotaBody};
use crate::http::openapi::components::{DecimalSchema, TenantIdSchema};
use crate::repository::tenants::TenantRow;
use crate::services::tenants::{SignUp, SignedUp, SubscriptionView, TenantView};
use crate::services::validate::{check_len, is_email, is_phone, Checks};

#[derive(Serialize, ToSchema)]
pub struct TenantContact {
    pub email: String,
    pub phone: String,
}

/// A tenant (a farm): its contact and tax settings.
#[derive(Serialize, ToSchema)]
#[schema(as = Tenant)]
pub struct TenantBody {
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: String,
    pub name: String,
    pub name_ar: String,
    pub email: String,
    pub phone: String,
    pub contact: TenantContact,
    pub tax_id: Option<String>,
    /// A percent (`"0.00"`, `"7.125"`).
    #[schema(value_type = DecimalSchema)]
    pub tax_rate: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

impl From<&TenantRow> for TenantBody {
    fn from(t: &TenantRow) -> Self {
        TenantBody {
            tenant_id: t.tenant_id.clone(),
            name: t.name.clone(),
            name_ar: t.name_ar.clone(),
            email: t.email.clone(),
            phone: t.phone.clone(),
            contact: TenantContact {
                email: t.email.clone(),
                phone: t.phone.clone(),
            },
            tax_id: t.tax_id.clone(),
            tax_rate: decimal_text(t.tax_rate),
            is_active: t.is_active,
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantBody>,
    pub total: i64,
    pub has_more: bool,
}

/// A tenant with its latest subscription and its usage per metric as of now.
#[derive(Serialize, ToSchema)]
pub struct TenantDetail {
    pub tenant: TenantBody,
    pub subscription: Option<SubscriptionBody>,
    /// metric → `{limit, used, remaining, percentage}`, as the quota report shows it.
    #[schema(value_type = Object)]
    pub usage: BTreeMap<String, MetricQuotaBody>,
}

impl From<&TenantView> for TenantDetail {
    fn from(v: &TenantView) -> Self {
        TenantDetail {
            tenant: (&v.tenant).into(),
            subscription: v.subscription.as_ref().map(SubscriptionBody::from),
            usage: quota_usage(&v.usage)
                .into_iter()
                .map(|(metric, body)| (metric.to_string(), body))
                .collect(),
        }
    }
}

/// The tenant's live subscription (else its latest) with its plan.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionDetail {
    pub subscription: SubscriptionBody,
    pub plan: PlanBody,
    /// Days until end_date (0 once it has passed).
    pub days_remaining: i64,
    pub is_trial: bool,
    /// The coupon the subscription holds (`ends_after_period` for a repeating one); null
    /// without one.
    pub discount: Option<crate::http::dto::discounts::DiscountBody>,
}

impl From<&SubscriptionView> for SubscriptionDetail {
    fn from(v: &SubscriptionView) -> Self {
        SubscriptionDetail {
            subscription: (&v.subscription).into(),
            plan: PlanBody::new(&v.plan, v.yer_rate),
            days_remaining: v.days_remaining,
            is_trial: v.subscription.status == SubscriptionStatus::Trial,
            discount: v.discount.as_ref().map(Into::into),
        }
    }
}

/// The answer of a sign-up (201; a replay under the same Idempotency-Key answers it again).
#[derive(Serialize, ToSchema)]
pub struct SignUpResponse {
    pub success: bool,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: String,
    pub subscription_id: Uuid,
    #[schema(value_type = SubscriptionStatusSchema)]
    pub status: SubscriptionStatus,
    /// The trial's end (the first billing date); null without a trial.
    pub trial_ends: Option<NaiveDate>,
    pub message_ar: String,
    /// The first period's invoice of a paid plan without a trial.
    pub invoice_id: Option<Uuid>,
}

impl From<&SignedUp> for SignUpResponse {
    fn from(s: &SignedUp) -> Self {
        SignUpResponse {
            success: true,
            tenant_id: s.tenant.tenant_id.clone(),
            subscription_id: s.subscription.subscription_id,
            status: s.subscription.status,
            trial_ends: s.subscription.trial_end_date,
            message_ar: format!("مرحباً {}! تم إنشاء حسابك بنجاح.", s.tenant.name_ar),
            invoice_id: s.invoice_id,
        }
    }
}

/// The sign-up body as sent. Every field is optional here so that missing and invalid fields
/// are all reported together by [`SignUpRequest::validate`]; a value of the wrong JSON type
/// is still rejected by the extractor, naming that field. Text is trimmed.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SignUpRequest {
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub name: Option<String>,
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200,
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub name_ar: Option<String>,
    #[schema(value_type = String, required = true, format = Email, max_length = 254)]
    pub email: Option<String>,
    /// 5-20 digits with an optional leading `+`.
    #[schema(value_type = String, required = true, pattern = r"^\+?[0-9]{5,20}$")]
    pub phone: Option<String>,
    #[schema(schema_with = catalogue_plan_schema, required = true)]
    pub plan_id: Option<String>,
    /// Default monthly.
    #[schema(value_type = Option<BillingCycleSchema>)]
    pub billing_cycle: Option<String>,
    /// Default USD; case-insensitive.
    #[schema(value_type = Option<CurrencySchema>)]
    pub currency: Option<String>,
    /// Default: a generated UUID string. Taken → 409 already_exists.
    #[schema(value_type = Option<TenantIdSchema>)]
    pub tenant_id: Option<String>,
    #[schema(max_length = 100, pattern = r"^[^\u0000]*$")]
    pub tax_id: Option<String>,
    /// A percent from 0 to 100 with at most 3 decimals, as a string or a number (default 0).
    #[schema(schema_with = tax_rate_schema)]
    pub tax_rate: Option<Value>,
    /// A coupon code to redeem with the subscription; it covers the sign-up period. Refused
    /// coupons answer 422 (coupon_not_found, coupon_expired, coupon_exhausted,
    /// coupon_not_applicable, coupon_currency_mismatch) and nothing is created.
    #[schema(pattern = "^[A-Z0-9_-]{3,40}$")]
    pub coupon: Option<String>,
}

/// The document's `SignUpRequest`: [`SignUpRequest`]'s fields, and no others. The server
/// ignores members it does not know (the Python service's clients send some), but like every
/// string of a body they may not hold U+0000, which the schema cannot say member by member; a
/// client has no reason to send them, so the document lists only what is read.
pub struct SignUpBody;

impl utoipa::PartialSchema for SignUpBody {
    fn schema() -> RefOr<Schema> {
        let mut schema = <SignUpRequest as utoipa::PartialSchema>::schema();
        if let RefOr::T(Schema::Object(o)) = &mut schema {
            o.additional_properties = Some(Box::new(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ));
        }
        schema
    }
}

impl ToSchema for SignUpBody {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("SignUpRequest")
    }
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        <SignUpRequest as ToSchema>::schemas(schemas);
    }
}

/// A percent from 0 to 100 with at most 3 decimals (trailing zeros do not count), or null.
fn tax_rate_schema() -> RefOr<Schema> {
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^0*(100(\.0*)?|[0-9]{1,2}(\.[0-9]{1,3}0*)?)$"));
    let number = ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0))
        .maximum(Some(100))
        .multiple_of(Some(0.001));
    let null = ObjectBuilder::new().schema_type(Type::Null);
    let one_of = OneOfBuilder::new()
        .item(text)
        .item(number)
        .item(null)
        .description(Some(
            "A percent from 0 to 100 with at most 3 decimals, as a string or a number; default 0.",
        ));
    RefOr::T(Schema::OneOf(one_of.build()))
}

fn required<'a>(checks: &mut Checks, field: &str, v: &'a Option<String>) -> &'a str {
    match v {
        Some(s) => s.trim(),
        None => {
            checks.push(field, "is required");
            ""
        }
    }
}

/// The tax rate given (default 0), or `None` with its issue pushed.
fn tax_rate(checks: &mut Checks, v: Option<&Value>) -> Option<Decimal> {
    match v {
        None | Some(Value::Null) => Some(Decimal::ZERO),
        Some(v) => parse_tax_rate(v)
            .map_err(|issue| checks.push("tax_rate", issue))
            .ok(),
    }
}

/// The sign-up's coupon code, trimmed; a malformed one pushes its issue.
fn coupon_code(checks: &mut Checks, v: Option<&str>) -> Option<String> {
    let code = v.map(str::trim).map(str::to_string);
    if code
        .as_deref()
        .is_some_and(|c| !crate::http::dto::coupons::is_code(c))
    {
        checks.push("coupon", "must be a coupon code: 3-40 of A-Z, 0-9, _ and -");
    }
    code
}

/// Percent from 0 to 100 with at most 3 decimals (the column is numeric(6, 3)).
fn parse_tax_rate(v: &Value) -> Result<Decimal, &'static str> {
    let d =
        crate::services::rates::json_decimal(v).map_err(|_| "must be a number from 0 to 100")?;
    if d < Decimal::ZERO || d > Decimal::from(100) {
        return Err("must be from 0 to 100 (a percent)");
    }
    if d.normalize().scale() > 3 {
        return Err("must have at most 3 decimal places");
    }
    Ok(d)
}

impl SignUpRequest {
    /// Checks every field and reports all problems at once (422 `validation_error`).
    pub fn validate(self) -> AppResult<SignUp> {
        let mut checks = Checks::default();
        let name = required(&mut checks, "name", &self.name);
        if self.name.is_some() {
            check_len(&mut checks, "name", name, 200);
        }
        let name_ar = required(&mut checks, "name_ar", &self.name_ar);
        if self.name_ar.is_some() {
            check_len(&mut checks, "name_ar", name_ar, 200);
        }
        let email = required(&mut checks, "email", &self.email);
        if self.email.is_some() && !is_email(email) {
            checks.push("email", "must be a valid email address");
        }
        let phone = required(&mut checks, "phone", &self.phone);
        if self.phone.is_some() && !is_phone(phone) {
            checks.push("phone", "must be 5-20 digits with an optional leading +");
        }
        let plan_id = required(&mut checks, "plan_id", &self.plan_id);
        if self.plan_id.is_some() {
            check_len(&mut checks, "plan_id", plan_id, 100);
        }
        let billing_cycle = match self.billing_cycle.as_deref() {
            None => Some(BillingCycle::Monthly),
            Some(s) => BillingCycle::parse(s.trim()).or_else(|| {
                checks.push("billing_cycle", "must be one of monthly, quarterly, yearly");
                None
            }),
        };
        let currency = match self.currency.as_deref() {
            None => Some(Currency::Usd),
            Some(s) => Currency::parse(s).or_else(|| {
                checks.push("currency", "must be one of USD, YER, SAR, AED, EUR");
                None
            }),
        };
        let tenant_id = match self.tenant_id.as_deref() {
            None => TenantId::parse(&Uuid::new_v4().to_string()).ok(),
            Some(s) => TenantId::parse(s)
                .map_err(|_| checks.push("tenant_id", "must be 1-100 of A-Z a-z 0-9 _ -"))
                .ok(),
        };
        let tax_id = self
            .tax_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if tax_id.is_some_and(|t| t.chars().count() > 100) {
            checks.push("tax_id", "must be at most 100 characters");
        }
        let tax_rate = tax_rate(&mut checks, self.tax_rate.as_ref());
        let coupon = coupon_code(&mut checks, self.coupon.as_deref());
        checks.finish()?;
        match (tenant_id, billing_cycle, currency, tax_rate) {
            (Some(tenant_id), Some(billing_cycle), Some(currency), Some(tax_rate)) => Ok(SignUp {
                tenant_id,
                name: name.to_string(),
                name_ar: name_ar.to_string(),
                email: email.to_string(),
                phone: phone.to_string(),
                plan_id: plan_id.to_string(),
                billing_cycle,
                currency,
                tax_id: tax_id.map(str::to_string),
                tax_rate,
                coupon,
            }),
            // Unreachable: each None above pushed an issue, so `finish` returned the error.
            _ => Err(AppError::internal(anyhow::anyhow!(
                "sign-up validation lost an issue"
            ))),
        }
    }
}
