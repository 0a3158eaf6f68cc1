//! Subscriptions on the wire (the Python service's field names) and the change, cancel and
//! resume answers.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::billing::money::money_string;
use crate::billing::types::{BillingCycle, Currency, PaymentMethod, SubscriptionStatus};
use crate::http::openapi::components::{enum_schema, MoneySchema, PlanIdSchema, TenantIdSchema};
use crate::repository::subscriptions::SubscriptionRow;
use crate::services::lifecycle::{Canceled, Changed, ProrationOutcome};

enum_schema!(
    SubscriptionStatusSchema,
    "SubscriptionStatus",
    SubscriptionStatus
);
enum_schema!(BillingCycleSchema, "BillingCycle", BillingCycle);
enum_schema!(PaymentMethodSchema, "PaymentMethod", PaymentMethod);
pub use crate::http::dto::invoice_schemas::CurrencySchema;

/// The catalogue's seeded plans (SPEC section 4), which a sign-up or a plan change names; see
/// [`catalogue_plan_schema`].
pub const SEEDED_PLANS: [&str; 4] = ["free", "starter", "professional", "enterprise"];

/// A plan a subscription may move to or start on: an active plan of the catalogue. The
/// document lists the seeded ones; a plan an admin added later is accepted as well, and an
/// unknown or archived one answers 422 `unknown_plan`.
pub fn catalogue_plan_schema() -> RefOr<Schema> {
    let o = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-z][a-z0-9_]{0,99}$"))
        .examples(SEEDED_PLANS)
        .description(Some(
            "An active plan of the catalogue (GET /v1/plans), e.g. a seeded one; a plan added \
             later is accepted too. An unknown or archived plan answers 422 unknown_plan.",
        ));
    RefOr::T(Schema::Object(o.build()))
}

/// A subscription: `start_date`/`end_date` are the current period, end exclusive.
#[derive(Serialize, ToSchema)]
#[schema(as = Subscription)]
pub struct SubscriptionBody {
    pub subscription_id: Uuid,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: String,
    #[schema(value_type = PlanIdSchema)]
    pub plan_id: String,
    #[schema(value_type = SubscriptionStatusSchema)]
    pub status: SubscriptionStatus,
    #[schema(value_type = BillingCycleSchema)]
    pub billing_cycle: BillingCycle,
    #[schema(value_type = CurrencySchema)]
    pub currency: String,
    /// First day of the current period (inclusive).
    pub start_date: NaiveDate,
    /// End of the current period, exclusive: periods are half-open [start_date, end_date) in
    /// UTC dates, so the last day of the period is end_date minus one day.
    pub end_date: NaiveDate,
    /// The period end; the trial end during a trial.
    pub next_billing_date: NaiveDate,
    pub trial_end_date: Option<NaiveDate>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<DateTime<Utc>>,
    #[schema(value_type = Option<PaymentMethodSchema>)]
    pub payment_method: Option<PaymentMethod>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&SubscriptionRow> for SubscriptionBody {
    fn from(s: &SubscriptionRow) -> Self {
        SubscriptionBody {
            subscription_id: s.subscription_id,
            tenant_id: s.tenant_id.clone(),
            plan_id: s.plan_id.clone(),
            status: s.status,
            billing_cycle: s.billing_cycle,
            currency: s.currency.clone(),
            start_date: s.start_date,
            end_date: s.end_date,
            next_billing_date: s.next_billing_date,
            trial_end_date: s.trial_end_date,
            cancel_at_period_end: s.cancel_at_period_end,
            canceled_at: s.canceled_at,
            payment_method: s.payment_method,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A subscription after a change, with the cycle that starts at the next renewal.
#[derive(Serialize, ToSchema)]
pub struct ChangedSubscription {
    #[serde(flatten)]
    pub subscription: SubscriptionBody,
    /// The billing cycle that takes effect at the next renewal (null: none pending).
    #[schema(value_type = Option<BillingCycleSchema>)]
    pub pending_billing_cycle: Option<BillingCycle>,
}

impl From<&SubscriptionRow> for ChangedSubscription {
    fn from(s: &SubscriptionRow) -> Self {
        ChangedSubscription {
            subscription: s.into(),
            pending_billing_cycle: s.pending_billing_cycle,
        }
    }
}

/// The proration of a plan change outside a trial (amounts in the subscription's currency).
#[derive(Serialize, ToSchema)]
pub struct ProrationBody {
    /// The unused part of the old plan's price.
    #[schema(value_type = MoneySchema)]
    pub credit: String,
    /// The new plan's price for the remaining days.
    #[schema(value_type = MoneySchema)]
    pub charge: String,
    /// charge − credit: > 0 is invoiced now, < 0 goes to the credit balance.
    #[schema(value_type = MoneySchema)]
    pub net: String,
    pub remaining_days: i64,
    pub total_days: i64,
    #[schema(value_type = CurrencySchema)]
    pub currency: Currency,
    /// The proration invoice when net > 0.
    pub invoice_id: Option<Uuid>,
    /// −net when net < 0.
    #[schema(value_type = Option<MoneySchema>)]
    pub credit_balance_added: Option<String>,
}

impl From<&ProrationOutcome> for ProrationBody {
    fn from(p: &ProrationOutcome) -> Self {
        let net = p.proration.net();
        ProrationBody {
            credit: money_string(p.proration.credit),
            charge: money_string(p.proration.charge),
            net: money_string(net),
            remaining_days: p.proration.remaining_days,
            total_days: p.proration.total_days,
            currency: p.currency,
            invoice_id: p.invoice_id,
            credit_balance_added: (net < rust_decimal::Decimal::ZERO).then(|| money_string(-net)),
        }
    }
}

/// The answer of PATCH .../subscription.
#[derive(Serialize, ToSchema)]
pub struct SubscriptionChanged {
    pub success: bool,
    pub subscription: ChangedSubscription,
    /// What changed, one English sentence each (empty when nothing did), e.g.
    /// `"plan changed from starter to professional"`.
    pub changes: Vec<String>,
    /// null during a trial, when the plan did not change, or for a cycle/method change only.
    pub proration: Option<ProrationBody>,
}

impl From<&Changed> for SubscriptionChanged {
    fn from(c: &Changed) -> Self {
        SubscriptionChanged {
            success: true,
            subscription: (&c.subscription).into(),
            changes: c.changes.clone(),
            proration: c.proration.as_ref().map(ProrationBody::from),
        }
    }
}

/// The answer of a cancellation: the Python service's top-level fields beside the subscription.
#[derive(Serialize, ToSchema)]
pub struct CancelResponse {
    pub success: bool,
    /// canceled when immediate; otherwise the status it keeps until the period end.
    #[schema(value_type = SubscriptionStatusSchema)]
    pub status: SubscriptionStatus,
    /// Exclusive end of the period: today when immediate, otherwise the current period's end.
    pub end_date: NaiveDate,
    pub message: String,
    pub message_ar: String,
    pub subscription: SubscriptionBody,
}

impl From<&Canceled> for CancelResponse {
    fn from(c: &Canceled) -> Self {
        CancelResponse {
            success: true,
            status: c.subscription.status,
            end_date: c.subscription.end_date,
            message: c.message.clone(),
            message_ar: c.message_ar.clone(),
            subscription: (&c.subscription).into(),
        }
    }
}

/// The answer of a resume.
#[derive(Serialize, ToSchema)]
pub struct ResumeResponse {
    pub success: bool,
    pub subscription: SubscriptionBody,
}

impl From<&SubscriptionRow> for ResumeResponse {
    fn from(s: &SubscriptionRow) -> Self {
        ResumeResponse {
            success: true,
            subscription: s.into(),
        }
    }
}

/// PATCH .../subscription: at least one field that is not null. A null field is the same as a
/// missing one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeSubscriptionRequest {
    pub plan_id: Option<String>,
    pub billing_cycle: Option<BillingCycle>,
    pub payment_method: Option<PaymentMethod>,
}

impl PartialSchema for ChangeSubscriptionRequest {
    fn schema() -> RefOr<Schema> {
        let nullable = |s: RefOr<Schema>| {
            let null = ObjectBuilder::new().schema_type(Type::Null);
            RefOr::T(Schema::OneOf(
                OneOfBuilder::new().item(s).item(null).build(),
            ))
        };
        let named = |n: &str| RefOr::Ref(Ref::from_schema_name(n));
        let fields = [
            ("plan_id", catalogue_plan_schema()),
            ("billing_cycle", named("BillingCycle")),
            ("payment_method", named("PaymentMethod")),
        ];
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .description(Some(
                "At least one of plan_id, billing_cycle, payment_method not null (else 422). \
                 A billing_cycle change takes effect at the next renewal.",
            ));
        let mut any = AnyOfBuilder::new();
        for (name, schema) in fields {
            o = o.property(name, nullable(schema.clone()));
            let present = ObjectBuilder::new().required(name).property(name, schema);
            any = any.item(present);
        }
        let all = utoipa::openapi::schema::AllOfBuilder::new()
            .item(o)
            .item(any);
        RefOr::T(Schema::AllOf(all.build()))
    }
}

impl ToSchema for ChangeSubscriptionRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ChangeSubscriptionRequest")
    }
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (name, schema) in [
            (BillingCycleSchema::name(), BillingCycleSchema::schema()),
            (PaymentMethodSchema::name(), PaymentMethodSchema::schema()),
        ] {
            schemas.push((name.to_string(), schema));
        }
    }
}
