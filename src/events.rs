//! The event catalogue: every event the service writes to its outbox, with its type and typed
//! payload, in one place, so a consumer can read here what it may receive. Published on
//! `sahool.billing.<type>` (SPEC section 7; the types are the subjects clients subscribe to, so
//! they never change). Every payload also carries the envelope the outbox adds: `event_id`,
//! `type`, `occurred_at` and `tenant_id`. Money is a string with two decimals, through the one
//! formatter (`billing::money::as_string`).
//!
//! Events are written through `OutboxRepository::record_event` (one) and `record_events`
//! (many at once, through UNNEST, for the set-based jobs); the invoice insert stores its
//! `invoice_generated` events in the same statement as the invoices, built here and passed
//! through UNNEST (`outbox::StoredEvent`).
//!
//! | type (subject `sahool.billing.<type>`) | payload (besides the envelope) |
//! |---|---|
//! | `tenant.created` | `name`, `name_ar`, `plan_id`, `subscription_id` |
//! | `subscription.created` | `subscription_id`, `plan_id`, `status`, `billing_cycle`, `currency`, `start_date`, `end_date`, `trial_end_date` |
//! | `subscription.plan_changed` | `subscription_id`, `old_plan`, `new_plan`, `proration` (null in a trial: `credit`, `charge`, `net`, `remaining_days`, `total_days`, `currency`, `invoice_id`, `credit_balance_added`) |
//! | `subscription.canceled` | `subscription_id`, `at_period_end` |
//! | `subscription.trial_expired` | `subscription_id`, `plan_id` |
//! | `subscription.past_due`, `.suspended`, `.reactivated` | `subscription_id` |
//! | `invoice_generated` | `invoice_id`, `invoice_number`, `subscription_id`, `kind`, `status`, `currency`, `total`, `due_date` |
//! | `invoice_overdue` | `invoice_id`, `invoice_number`, `amount_due`, `currency`, `due_date` |
//! | `invoice.voided` | `invoice_id`, `invoice_number`, `total`, `currency` |
//! | `quota.exceeded` | `metric`, `window_start`, `limit`, `used`, `requested` |
//! | `exchange_rate.changed` (no tenant) | `currency`, `rate`, `effective_date`, `previous_rate`, `replaced`, `changed_by` |
//! | `payment.created` | `payment_id`, `invoice_id`, `amount`, `currency`, `gateway_amount` and `gateway_currency` (gateway payments only), `method`, `status` |
//! | `payment.succeeded` | `payment_id`, `invoice_id`, `amount`, `currency`, `method`, `external_id` |
//! | `payment.failed` | `payment_id`, `invoice_id`, `error` |
//! | `invoice.paid` | `invoice_id`, `invoice_number`, `total`, `amount_paid`, `currency`, `paid_date` |
//! | `payment.refunded` | `refund_id`, `payment_id`, `invoice_id`, `refund_amount`, `refunded_total`, `currency`, `is_full_refund`, `reason`, `external_refund_id` |
//! | `payment.refund_failed` | `refund_id`, `payment_id`, `invoice_id`, `refund_amount`, `currency`, `error`, `was_applied` |
//! | `payment.refund_needs_attention` | `refund_id`, `payment_id`, `invoice_id`, `refund_amount`, `refundable`, `currency`, `external_refund_id`, `reason` |
//!
//! Each variant's fields are its payload; the variants are the complete list.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use uuid::Uuid;

use crate::billing::money;
use crate::billing::types::{
    BillingCycle, Currency, InvoiceKind, InvoiceStatus, PaymentMethod, PaymentStatus,
    SubscriptionStatus,
};

/// The proration of a plan change outside a trial (`subscription.plan_changed`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProrationPayload {
    #[serde(with = "money::as_string")]
    pub credit: Decimal,
    #[serde(with = "money::as_string")]
    pub charge: Decimal,
    /// `charge - credit`: positive is invoiced now, negative becomes credit balance.
    #[serde(with = "money::as_string")]
    pub net: Decimal,
    pub remaining_days: i64,
    pub total_days: i64,
    pub currency: Currency,
    /// The proration invoice, when the net is positive.
    pub invoice_id: Option<Uuid>,
    /// What the tenant's credit balance grew by, when the net is negative.
    #[serde(with = "money::as_string::option")]
    pub credit_balance_added: Option<Decimal>,
}

/// One outbox event. The serde tag is the event's type, so the serialized payload is exactly
/// what is stored (before the envelope fields are added).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    /// A tenant signed up (with its first subscription).
    #[serde(rename = "tenant.created")]
    TenantCreated {
        name: String,
        name_ar: String,
        plan_id: String,
        subscription_id: Uuid,
    },
    /// A tenant's first subscription, at sign-up (`trial` or `active`).
    #[serde(rename = "subscription.created")]
    SubscriptionCreated {
        subscription_id: Uuid,
        plan_id: String,
        status: SubscriptionStatus,
        billing_cycle: BillingCycle,
        currency: String,
        start_date: NaiveDate,
        end_date: NaiveDate,
        trial_end_date: Option<NaiveDate>,
    },
    /// A subscription moved to another plan; `proration` is null during a trial.
    #[serde(rename = "subscription.plan_changed")]
    SubscriptionPlanChanged {
        subscription_id: Uuid,
        old_plan: String,
        new_plan: String,
        proration: Option<ProrationPayload>,
    },
    /// An invoice was issued (sign-up, renewal, proration, overage, on demand). `total` is
    /// money; a zero total is issued `paid`.
    #[serde(rename = "invoice_generated")]
    InvoiceGenerated {
        invoice_id: Uuid,
        invoice_number: String,
        subscription_id: Option<Uuid>,
        kind: InvoiceKind,
        status: InvoiceStatus,
        currency: String,
        #[serde(with = "money::as_string")]
        total: Decimal,
        due_date: NaiveDate,
    },
    /// An unpaid invoice was voided (status `canceled`).
    #[serde(rename = "invoice.voided")]
    InvoiceVoided {
        invoice_id: Uuid,
        invoice_number: String,
        #[serde(with = "money::as_string")]
        total: Decimal,
        currency: String,
    },
    /// The first refused usage of a counter window (once per tenant, metric and window).
    #[serde(rename = "quota.exceeded")]
    QuotaExceeded {
        metric: String,
        window_start: NaiveDate,
        limit: i64,
        used: i64,
        requested: i64,
    },
    /// A currency's exchange rate was set from a date on (platform-wide: no tenant). Rates
    /// are decimal strings with 2 to 6 decimals; `previous_rate` is the one in force on that
    /// date before (null when none was), `replaced` whether that date already had a rate.
    #[serde(rename = "exchange_rate.changed")]
    ExchangeRateChanged {
        currency: String,
        #[serde(with = "money::rate_string")]
        rate: Decimal,
        effective_date: NaiveDate,
        previous_rate: Option<String>,
        replaced: bool,
        changed_by: String,
    },
    /// An unpaid invoice passed its due date (dunning).
    #[serde(rename = "invoice_overdue")]
    InvoiceOverdue {
        invoice_id: Uuid,
        invoice_number: String,
        #[serde(with = "money::as_string")]
        amount_due: Decimal,
        currency: String,
        due_date: NaiveDate,
    },
    /// A tenant unpaid `PAST_DUE_GRACE_DAYS` after a due date (dunning).
    #[serde(rename = "subscription.past_due")]
    SubscriptionPastDue { subscription_id: Uuid },
    /// A tenant unpaid `SUSPEND_AFTER_DAYS` after a due date (dunning).
    #[serde(rename = "subscription.suspended")]
    SubscriptionSuspended { subscription_id: Uuid },
    /// A past-due or suspended tenant with nothing overdue left.
    #[serde(rename = "subscription.reactivated")]
    SubscriptionReactivated { subscription_id: Uuid },
    /// A trial ended and the subscription went on to its first paid period.
    #[serde(rename = "subscription.trial_expired")]
    SubscriptionTrialExpired {
        subscription_id: Uuid,
        plan_id: String,
    },
    /// A subscription ended: now (`at_period_end` false) or when its period ended.
    #[serde(rename = "subscription.canceled")]
    SubscriptionCanceled {
        subscription_id: Uuid,
        at_period_end: bool,
    },
    /// A subscription redeemed a coupon (at sign-up or later).
    #[serde(rename = "coupon.redeemed")]
    CouponRedeemed {
        coupon_code: String,
        subscription_id: Uuid,
        redemption_id: Uuid,
        /// `once`, `repeating` or `forever`.
        duration: String,
        duration_periods: Option<i32>,
    },
    /// A payment was recorded (offline: awaiting confirmation unless settled at once; card and
    /// Tharwatt: `processing`, with what the gateway is asked to collect).
    #[serde(rename = "payment.created")]
    PaymentCreated {
        payment_id: Uuid,
        invoice_id: Uuid,
        #[serde(with = "money::as_string")]
        amount: Decimal,
        currency: String,
        /// Gateway payments only.
        #[serde(
            with = "money::as_string::option",
            skip_serializing_if = "Option::is_none"
        )]
        gateway_amount: Option<Decimal>,
        /// Gateway payments only.
        #[serde(skip_serializing_if = "Option::is_none")]
        gateway_currency: Option<String>,
        method: PaymentMethod,
        status: PaymentStatus,
    },
    /// A payment settled: its amount counts toward the invoice.
    #[serde(rename = "payment.succeeded")]
    PaymentSucceeded {
        payment_id: Uuid,
        invoice_id: Uuid,
        #[serde(with = "money::as_string")]
        amount: Decimal,
        currency: String,
        method: PaymentMethod,
        external_id: Option<String>,
    },
    /// A payment failed (declined, refused by its gateway, or rejected by staff).
    #[serde(rename = "payment.failed")]
    PaymentFailed {
        payment_id: Uuid,
        invoice_id: Uuid,
        error: String,
    },
    /// An invoice is paid in full.
    #[serde(rename = "invoice.paid")]
    InvoicePaid {
        invoice_id: Uuid,
        invoice_number: String,
        #[serde(with = "money::as_string")]
        total: Decimal,
        #[serde(with = "money::as_string")]
        amount_paid: Decimal,
        currency: String,
        paid_date: Option<NaiveDate>,
    },
    /// A refund succeeded: the money is back with the payer.
    #[serde(rename = "payment.refunded")]
    PaymentRefunded {
        refund_id: Uuid,
        payment_id: Uuid,
        invoice_id: Uuid,
        #[serde(with = "money::as_string")]
        refund_amount: Decimal,
        /// All refunds of the payment so far.
        #[serde(with = "money::as_string")]
        refunded_total: Decimal,
        currency: String,
        is_full_refund: bool,
        reason: String,
        external_refund_id: Option<String>,
    },
    /// A refund failed at its gateway; `was_applied`: it had succeeded and was reversed.
    #[serde(rename = "payment.refund_failed")]
    PaymentRefundFailed {
        refund_id: Uuid,
        payment_id: Uuid,
        invoice_id: Uuid,
        #[serde(with = "money::as_string")]
        refund_amount: Decimal,
        currency: String,
        error: String,
        was_applied: bool,
    },
    /// The gateway refunded a refund recorded as failed, and the payment has no room left for
    /// it: staff must settle it.
    #[serde(rename = "payment.refund_needs_attention")]
    PaymentRefundNeedsAttention {
        refund_id: Uuid,
        payment_id: Uuid,
        invoice_id: Uuid,
        #[serde(with = "money::as_string")]
        refund_amount: Decimal,
        #[serde(with = "money::as_string")]
        refundable: Decimal,
        currency: String,
        external_refund_id: Option<String>,
        reason: &'static str,
    },
}

impl Event {
    /// The event's type: the last part of its subject and the payload's `type`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::TenantCreated { .. } => "tenant.created",
            Event::SubscriptionCreated { .. } => "subscription.created",
            Event::SubscriptionPlanChanged { .. } => "subscription.plan_changed",
            Event::InvoiceGenerated { .. } => "invoice_generated",
            Event::InvoiceVoided { .. } => "invoice.voided",
            Event::QuotaExceeded { .. } => "quota.exceeded",
            Event::ExchangeRateChanged { .. } => "exchange_rate.changed",
            Event::InvoiceOverdue { .. } => "invoice_overdue",
            Event::SubscriptionPastDue { .. } => "subscription.past_due",
            Event::SubscriptionSuspended { .. } => "subscription.suspended",
            Event::SubscriptionReactivated { .. } => "subscription.reactivated",
            Event::SubscriptionTrialExpired { .. } => "subscription.trial_expired",
            Event::SubscriptionCanceled { .. } => "subscription.canceled",
            Event::CouponRedeemed { .. } => "coupon.redeemed",
            Event::PaymentCreated { .. } => "payment.created",
            Event::PaymentSucceeded { .. } => "payment.succeeded",
            Event::PaymentFailed { .. } => "payment.failed",
            Event::InvoicePaid { .. } => "invoice.paid",
            Event::PaymentRefunded { .. } => "payment.refunded",
            Event::PaymentRefundFailed { .. } => "payment.refund_failed",
            Event::PaymentRefundNeedsAttention { .. } => "payment.refund_needs_attention",
        }
    }

    /// The payload fields (with `type`), as an object.
    pub fn payload(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            // An internally tagged enum of struct variants always serializes to an object.
            _ => serde_json::Map::new(),
        }
    }
}

/// An event and the tenant it concerns (`None` for platform-wide events).
#[derive(Debug, Clone, PartialEq)]
pub struct TenantEvent {
    pub tenant_id: Option<String>,
    pub event: Event,
}

impl TenantEvent {
    pub fn new(tenant_id: impl Into<String>, event: Event) -> Self {
        TenantEvent {
            tenant_id: Some(tenant_id.into()),
            event,
        }
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
