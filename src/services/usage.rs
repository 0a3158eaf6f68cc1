//! Usage recording (SPEC sections 4 and 6); the enforce check and the quota report are in
//! `reads`, the counter windows in `window`.
//!
//! The quota check and the write are one UPDATE on `usage_counters` (see
//! `UsageRepository::apply`), so concurrent requests never overshoot a blocked limit. An
//! `event_id` is claimed first by inserting the usage record (unique per tenant); a copy racing
//! the first waits on that index and then answers as a duplicate, and a refused quota rolls the
//! claim back so nothing is left behind.

mod batch;
mod batch_write;
pub mod cache;
pub mod coalesce;
mod notice;
mod overage_preview;
mod reads;
mod record;
mod recorded;
mod report;
mod window;

pub use batch::{
    ingest_batch, BatchRequest, BatchSummary, ParsedBatch, Rejection, RenderBatch, MAX_BATCH_EVENTS,
};
pub use reads::{
    enforce, quota_report, quota_snapshot, Allowed, MetricQuota, PlanNames, QuotaReport,
};
pub use record::{record_in, record_usage};
pub use recorded::{Recorded, Render, UsageAnswer, Written};
pub use report::{usage_report, GaugeFigures, MetricUsage, RangeQuery, UsageReport};
pub use window::{current_period, PeriodInfo};

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};
use serde_json::{Map, Value};
use sqlx::PgConnection;

use crate::billing::quota::QuotaView;
use crate::billing::types::{MetricKind, MetricName, SubscriptionStatus, UsageAction};
use crate::error::{AppError, AppResult};
use crate::repository::usage::{QuotaContext, UsageRepository};
use crate::services::validate::Checks;
use crate::services::validate::Invalid;
use window::{counter_window, period_info};

const MAX_METADATA_BYTES: usize = 16 * 1024;
const MAX_FUTURE_SKEW_SECS: i64 = 300;
pub const MAX_COUNTER_QUANTITY: i64 = 100_000;
const MAX_GAUGE_LEVEL: i64 = 1_000_000_000;

/// One usage event as sent, before its checks (the HTTP body or a batch event).
#[derive(Debug)]
pub struct RecordUsageRequest {
    pub metric: String,
    /// 1 when the client sent none, as the Python service did.
    pub quantity: i64,
    pub action: Option<UsageAction>,
    pub event_id: Option<String>,
    pub timestamp: Option<String>,
    pub metadata: Option<Value>,
}

/// A request whose shape has been checked; the checks that need the metric's kind follow.
pub struct UsageInput {
    metric: MetricName,
    quantity: i64,
    action: UsageAction,
    event_id: Option<String>,
    timestamp: Option<DateTime<Utc>>,
    metadata: Value,
}

impl UsageInput {
    /// When the event happened, as the database stores it (microseconds), so the answer shows
    /// what was stored.
    fn recorded_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.timestamp.unwrap_or(now).trunc_subsecs(6)
    }
}

impl RecordUsageRequest {
    pub fn validate(self) -> AppResult<UsageInput> {
        let mut checks = Checks::default();
        let metric = MetricName::parse(&self.metric);
        if let Err(e) = &metric {
            checks.push("metric", e);
        }
        if let Some(id) = &self.event_id {
            if !(1..=200).contains(&id.chars().count()) {
                checks.push("event_id", "must be 1-200 characters");
            }
        }
        let timestamp = match self.timestamp.as_deref().map(DateTime::parse_from_rfc3339) {
            None => None,
            Some(Ok(t)) => Some(t.with_timezone(&Utc)),
            Some(Err(_)) => {
                checks.push("timestamp", "must be an RFC 3339 timestamp");
                None
            }
        };
        let metadata = match self.metadata {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(m @ Value::Object(_)) => {
                if m.to_string().len() > MAX_METADATA_BYTES {
                    checks.push("metadata", "must be at most 16 KiB");
                }
                m
            }
            Some(_) => {
                checks.push("metadata", "must be a JSON object");
                Value::Null
            }
        };
        checks.finish()?;
        Ok(UsageInput {
            metric: metric.map_err(|e| Invalid::field("metric", e))?,
            quantity: self.quantity,
            action: self.action.unwrap_or(UsageAction::Increment),
            event_id: self.event_id,
            timestamp,
            metadata,
        })
    }
}

/// Quantity rules by kind: counters take 1..=100 000 increments; gauges take a level
/// 0..=1 000 000 000 with `set`, or a non-zero delta of at most 100 000 either way.
fn check_quantity(kind: MetricKind, action: UsageAction, quantity: i64) -> AppResult<()> {
    let issue = match (kind, action) {
        (MetricKind::Gauge, UsageAction::Set) if !(0..=MAX_GAUGE_LEVEL).contains(&quantity) => {
            Some((
                "quantity",
                "a gauge level must be a whole number from 0 to 1000000000",
            ))
        }
        (MetricKind::Gauge, UsageAction::Increment)
            if quantity == 0 || quantity.abs() > MAX_COUNTER_QUANTITY =>
        {
            Some((
                "quantity",
                "a gauge delta must be a non-zero whole number from -100000 to 100000",
            ))
        }
        (MetricKind::Gauge, _) => None,
        (_, UsageAction::Set) => Some((
            "action",
            "only gauge metrics can be set; counters take increments",
        )),
        (_, UsageAction::Increment) if !(1..=MAX_COUNTER_QUANTITY).contains(&quantity) => {
            Some(("quantity", "must be a whole number from 1 to 100000"))
        }
        _ => None,
    };
    match issue {
        Some((field, text)) => Err(Invalid::field(field, text).into()),
        None => Ok(()),
    }
}

use crate::services::missing::tenant_not_found;

pub(crate) fn unknown_metric(metric: &str) -> AppError {
    UsageError::UnknownMetric(metric.to_string()).into()
}

/// What refuses a usage event or an enforce check beyond its input (`http::errors` gives
/// each its status and bilingual envelope).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// 402: the tenant has no live subscription.
    #[error("the tenant has no active subscription")]
    NoActiveSubscription,
    /// 402: the subscription is suspended for non-payment.
    #[error("the subscription is suspended for non-payment")]
    SubscriptionSuspended,
    /// 429: the units do not fit a plan that blocks overage.
    #[error("quota exceeded for {}: limit {}, used {}", .0.metric, .0.view.limit, .0.view.used)]
    QuotaExceeded(Refusal),
    /// 503: the connection broke while recording; the event may or may not be stored.
    #[error("the database connection broke while recording; the outcome is unknown")]
    OutcomeUnknown,
    /// 422: a metric outside the catalogue.
    #[error("unknown metric {0:?}")]
    UnknownMetric(String),
    /// 409: the subscription changed under the write; a retry succeeds.
    #[error("the tenant's subscription changed while recording")]
    SubscriptionChanging,
    /// 503: the group-commit flush could not reach the database; nothing was stored.
    #[error("usage flush could not reach the database")]
    DatabaseUnavailable,
}

/// A context whose subscription may record usage: 402 when there is none or it is suspended.
fn require_usable(ctx: &QuotaContext) -> AppResult<PeriodInfo> {
    match ctx.status {
        None => Err(UsageError::NoActiveSubscription.into()),
        Some(SubscriptionStatus::Suspended) => Err(UsageError::SubscriptionSuspended.into()),
        Some(_) => period_info(ctx).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("live subscription without a period"))
        }),
    }
}

async fn load_context(
    conn: &mut PgConnection,
    tenant_id: &str,
    metric: &str,
) -> AppResult<(QuotaContext, MetricKind)> {
    let ctx = UsageRepository::quota_context(conn, tenant_id, metric)
        .await?
        .ok_or_else(tenant_not_found)?;
    let kind = ctx.kind.ok_or_else(|| unknown_metric(metric))?;
    Ok((ctx, kind))
}

/// A usage event or enforce check refused by a blocked plan's quota: the figures it was
/// refused on (the answer's, and the `quota.exceeded` event's).
#[derive(Clone, Debug)]
pub struct Refusal {
    pub tenant_id: String,
    pub metric: String,
    pub view: QuotaView,
    pub requested: i64,
}

impl Refusal {
    /// The 429 `quota_exceeded` answer.
    pub fn error(&self) -> AppError {
        UsageError::QuotaExceeded(self.clone()).into()
    }
}

/// The checks an event must pass against its tenant's quota context (metric known, quantity
/// valid for its kind, subscription usable, timestamp inside the current period and not in
/// the future); returns the metric's kind and the counter window the event belongs to.
pub(crate) fn place_event(
    ctx: &QuotaContext,
    input: &UsageInput,
    now: DateTime<Utc>,
) -> AppResult<(MetricKind, NaiveDate)> {
    let kind = ctx
        .kind
        .ok_or_else(|| unknown_metric(input.metric.as_str()))?;
    check_quantity(kind, input.action, input.quantity)?;
    let info = require_usable(ctx)?;
    let (period_start, _) = current_period(&info, now.date_naive());
    let at = input.timestamp.unwrap_or(now);
    if at > now + Duration::seconds(MAX_FUTURE_SKEW_SECS) {
        return Err(
            Invalid::field("timestamp", "must not be more than 5 minutes in the future").into(),
        );
    }
    if at.date_naive() < period_start {
        return Err(
            Invalid::field("timestamp", "must not be before the current billing period").into(),
        );
    }
    Ok((kind, counter_window(kind, period_start, at.date_naive())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_follow_the_metric_kind() {
        use MetricKind::*;
        use UsageAction::*;
        assert!(check_quantity(PeriodCounter, Increment, 1).is_ok());
        assert!(check_quantity(PeriodCounter, Increment, 0).is_err());
        assert!(check_quantity(DailyCounter, Increment, 100_001).is_err());
        assert!(check_quantity(PeriodCounter, Set, 5).is_err());
        assert!(check_quantity(Gauge, Set, 0).is_ok());
        assert!(check_quantity(Gauge, Set, 1_000_000_001).is_err());
        assert!(check_quantity(Gauge, Increment, -100_000).is_ok());
        assert!(check_quantity(Gauge, Increment, 0).is_err());
    }
}
