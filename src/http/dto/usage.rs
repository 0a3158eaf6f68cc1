//! Usage on the wire: recording (one event, a batch), the usage and quota reports, the enforce
//! answer. Each answer borrows from the service's value and is serialized once (the enforce and
//! usage POSTs are the hot paths); field names and order are the ones always sent.

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::http::StatusCode;

use crate::services::idempotency::StoredResponse;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use uuid::Uuid;

use crate::billing::types::{MetricKind, SubscriptionStatus, UsageAction};
use crate::error::FieldIssue;
use crate::http::dto::number::WholeNumber;
use crate::http::dto::usage_schemas::{
    batch_events_schema, record_usage_schema, MetricKindSchema, NulFreeValue,
    SubscriptionStatusSchema, UsageActionSchema,
};
use crate::http::openapi::components::MoneySchema;
use crate::http::openapi::components::{MetricNameSchema, TenantIdSchema};
use crate::services::usage::{
    Allowed, BatchSummary, MetricQuota, QuotaReport, RecordUsageRequest, Recorded, Rejection,
    UsageReport,
};

fn one() -> WholeNumber {
    WholeNumber(1)
}

/// One usage event (its schema, `RecordUsageRequest`, spells the rules per metric kind).
/// Unknown members are ignored.
#[derive(Deserialize)]
pub struct RecordUsageBody {
    pub metric: String,
    #[serde(default = "one")]
    pub quantity: WholeNumber,
    pub action: Option<UsageAction>,
    pub event_id: Option<String>,
    pub timestamp: Option<String>,
    pub metadata: Option<Value>,
}

impl PartialSchema for RecordUsageBody {
    fn schema() -> RefOr<Schema> {
        record_usage_schema()
    }
}

impl ToSchema for RecordUsageBody {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RecordUsageRequest")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((NulFreeValue::name().into(), NulFreeValue::schema()));
    }
}

impl From<RecordUsageBody> for RecordUsageRequest {
    fn from(b: RecordUsageBody) -> Self {
        RecordUsageRequest {
            metric: b.metric,
            quantity: b.quantity.0,
            action: b.action,
            event_id: b.event_id,
            timestamp: b.timestamp,
            metadata: b.metadata,
        }
    }
}

/// A recorded usage event with its metric's figures after it (a duplicate: the original
/// record, with `event_id`, and the current figures).
#[derive(Serialize, ToSchema)]
#[schema(as = UsageRecorded)]
pub struct UsageRecorded<'a> {
    #[schema(value_type = UsageActionSchema)]
    pub action: UsageAction,
    pub duplicate: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub event_id: Option<&'a str>,
    /// -1 = unlimited.
    pub limit: i64,
    #[schema(value_type = MetricNameSchema)]
    pub metric: &'a str,
    /// Beyond the limit on a plan that bills overage.
    pub overage: bool,
    pub quantity: i64,
    pub record_id: Uuid,
    pub recorded_at: DateTime<Utc>,
    /// Null when unlimited.
    pub remaining: Option<i64>,
    pub success: bool,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: &'a str,
    pub used: i64,
}

impl<'a> From<&'a Recorded> for UsageRecorded<'a> {
    fn from(r: &'a Recorded) -> Self {
        UsageRecorded {
            action: r.action,
            duplicate: r.duplicate,
            // Only a duplicate names the event id it matched.
            event_id: r.event_id.as_deref().filter(|_| r.duplicate),
            limit: r.view.limit,
            metric: &r.metric,
            overage: r.overage(),
            quantity: r.quantity,
            record_id: r.record_id,
            recorded_at: r.recorded_at,
            remaining: r.view.remaining(),
            success: true,
            tenant_id: &r.tenant_id,
            used: r.view.used,
        }
    }
}

impl UsageRecorded<'_> {
    /// 201 for a new record, 200 for a duplicate.
    pub fn status(r: &Recorded) -> StatusCode {
        if r.duplicate {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        }
    }

    /// The stored form under an Idempotency-Key (`services::usage::Render`).
    pub fn stored(r: &Recorded) -> StoredResponse {
        let body = serde_json::to_value(UsageRecorded::from(r)).unwrap_or(Value::Null);
        StoredResponse::new(Self::status(r), body)
    }
}

/// Up to 10 000 events; each is checked on its own and a bad one is reported by index.
#[derive(ToSchema)]
#[schema(as = UsageBatchRequest)]
#[allow(dead_code)] // documents the body; the handler parses `services::usage::BatchRequest`
pub struct UsageBatchBody {
    #[schema(schema_with = batch_events_schema)]
    events: Vec<Value>,
}

/// An event of the batch that was not written.
#[derive(Serialize, ToSchema)]
pub struct UsageBatchRejection<'a> {
    /// The code it would have answered alone (`validation_error`, `not_found`, ...).
    pub error: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(value_type = Vec<FieldIssue>)]
    pub fields: &'a [FieldIssue],
    /// Its position in `events`.
    pub index: usize,
    pub message: &'a str,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UsageBatchResponse)]
pub struct UsageBatchResponse<'a> {
    /// Events written and counted.
    pub accepted: usize,
    /// Events whose event_id was already stored, or repeated in the batch.
    pub duplicates: usize,
    pub rejected: Vec<UsageBatchRejection<'a>>,
}

impl<'a> From<&'a BatchSummary> for UsageBatchResponse<'a> {
    fn from(s: &'a BatchSummary) -> Self {
        let rejected = s.rejected.iter().map(rejection).collect();
        UsageBatchResponse {
            accepted: s.accepted,
            duplicates: s.duplicates,
            rejected,
        }
    }
}

fn rejection(r: &Rejection) -> UsageBatchRejection<'_> {
    UsageBatchRejection {
        error: r.code,
        fields: &r.fields,
        index: r.index,
        message: &r.message,
    }
}

impl UsageBatchResponse<'_> {
    /// The answer, stored under an Idempotency-Key (`services::usage::RenderBatch`).
    pub fn stored(s: &BatchSummary) -> StoredResponse {
        let body = serde_json::to_value(UsageBatchResponse::from(s)).unwrap_or(Value::Null);
        StoredResponse::new(StatusCode::OK, body)
    }
}

/// A metric's use over the range: counters the sum; gauges the level at the end (`used`),
/// the level now (`current`) and the highest level in the range (`peak`).
#[derive(Serialize, ToSchema)]
pub struct MetricUsageBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<i64>,
    #[schema(value_type = MetricKindSchema)]
    pub kind: MetricKind,
    /// -1 = unlimited; 0 without a live subscription.
    pub limit: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak: Option<i64>,
    pub used: i64,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UsageReport)]
pub struct UsageReportBody<'a> {
    /// First day counted (inclusive).
    pub from: NaiveDate,
    /// Every metric of the catalogue.
    pub metrics: BTreeMap<&'a str, MetricUsageBody>,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: &'a str,
    /// End of the range, exclusive: the range is [from, to).
    pub to: NaiveDate,
}

impl<'a> From<&'a UsageReport> for UsageReportBody<'a> {
    fn from(r: &'a UsageReport) -> Self {
        let metrics = r
            .metrics
            .iter()
            .map(|m| {
                let body = MetricUsageBody {
                    current: m.gauge.map(|g| g.current),
                    kind: m.kind,
                    limit: m.limit,
                    peak: m.gauge.map(|g| g.peak),
                    used: m.used,
                };
                (m.metric.as_str(), body)
            })
            .collect();
        UsageReportBody {
            from: r.from,
            metrics,
            tenant_id: &r.tenant_id,
            to: r.to,
        }
    }
}

/// A metric's limit and use in the current window.
#[derive(Serialize, ToSchema)]
pub struct MetricQuotaBody {
    #[schema(value_type = MetricKindSchema)]
    pub kind: MetricKind,
    /// -1 = unlimited; 0 without a live subscription.
    pub limit: i64,
    /// Of the limit, one decimal (0 when unlimited).
    pub percentage: f64,
    /// Null when unlimited.
    pub remaining: Option<i64>,
    pub used: i64,
    /// Use over the limit at the current level: a period counter's so far this period, a
    /// daily counter's today, a gauge's level now (0 within the limit or unlimited).
    pub overage_units: i64,
    /// What those units cost at the plan's overage pricing, in the subscription's currency
    /// ("0.00" within the limit).
    #[schema(value_type = MoneySchema)]
    pub overage_amount: String,
}

/// `{metric: {kind, limit, percentage, remaining, used}}` for every metric of the catalogue.
pub fn quota_usage(usage: &[MetricQuota]) -> BTreeMap<&str, MetricQuotaBody> {
    usage
        .iter()
        .map(|m| {
            let body = MetricQuotaBody {
                kind: m.kind,
                limit: m.view.limit,
                // Unlimited metrics report 0 %, as the Python service did.
                percentage: m.view.percentage().unwrap_or(0.0),
                remaining: m.view.remaining(),
                used: m.view.used,
                overage_units: m.overage.units,
                overage_amount: crate::billing::money::money_string(m.overage.amount),
            };
            (m.metric.as_str(), body)
        })
        .collect()
}

/// The live subscription's plan and state (nulls without one) and every metric's figures.
#[derive(Serialize, ToSchema)]
#[schema(as = QuotaReport)]
pub struct QuotaReportBody<'a> {
    /// The current period's end_date, exclusive: the period's last day is the day before.
    pub billing_cycle_ends: Option<NaiveDate>,
    pub plan: Option<&'a str>,
    pub plan_ar: Option<&'a str>,
    pub plan_id: Option<&'a str>,
    #[schema(value_type = Option<SubscriptionStatusSchema>)]
    pub subscription_status: Option<SubscriptionStatus>,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: &'a str,
    pub usage: BTreeMap<&'a str, MetricQuotaBody>,
}

impl<'a> From<&'a QuotaReport> for QuotaReportBody<'a> {
    fn from(r: &'a QuotaReport) -> Self {
        let plan = r.plan.as_ref();
        QuotaReportBody {
            billing_cycle_ends: r.period_end,
            plan: plan.map(|p| p.name.as_str()),
            plan_ar: plan.map(|p| p.name_ar.as_str()),
            plan_id: plan.map(|p| p.plan_id.as_str()),
            subscription_status: r.status,
            tenant_id: &r.tenant_id,
            usage: quota_usage(&r.usage),
        }
    }
}

/// The enforce answer when the units fit (or the plan bills overage); a refusal is 429
/// `quota_exceeded` with the same figures and `allowed: false`.
#[derive(Serialize, ToSchema)]
#[schema(as = EnforceResponse)]
pub struct EnforceAllowed<'a> {
    pub allowed: bool,
    /// -1 = unlimited.
    pub limit: i64,
    #[schema(value_type = MetricNameSchema)]
    pub metric: &'a str,
    /// The units are beyond the limit, on a plan that bills overage.
    pub overage: bool,
    /// Null when unlimited.
    pub remaining: Option<i64>,
    pub requested: i64,
    #[schema(value_type = TenantIdSchema)]
    pub tenant_id: &'a str,
    pub used: i64,
}

impl<'a> From<Allowed<'a>> for EnforceAllowed<'a> {
    fn from(a: Allowed<'a>) -> Self {
        EnforceAllowed {
            allowed: a.allowed,
            limit: a.limit,
            metric: a.metric,
            overage: a.overage,
            remaining: a.remaining,
            requested: a.requested,
            tenant_id: a.tenant_id,
            used: a.used,
        }
    }
}
