//! What recording a usage event comes to, as typed values (`http` maps them to the wire).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Refusal;
use crate::billing::quota::QuotaView;
use crate::billing::types::UsageAction;
use crate::services::idempotency::{Outcome, StoredResponse};

/// A usage event as stored, with its metric's figures after it. A duplicate (its event id was
/// already stored) is the original record with the metric's current figures; nothing counted.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub record_id: Uuid,
    pub tenant_id: String,
    pub metric: String,
    pub action: UsageAction,
    pub quantity: i64,
    pub recorded_at: DateTime<Utc>,
    pub event_id: Option<String>,
    pub view: QuotaView,
    pub duplicate: bool,
}

impl Recorded {
    /// Beyond the limit (a plan that bills overage let it through).
    pub fn overage(&self) -> bool {
        !self.view.is_unlimited() && self.view.used > self.view.limit
    }
}

/// What a write came to: recorded (or found to be a duplicate), or refused by the quota.
pub enum Written {
    Recorded(Recorded),
    Refused(Refusal),
}

/// The answer of [`record_usage`].
pub enum UsageAnswer {
    /// Without an Idempotency-Key: the record (201 new, 200 a duplicate).
    Recorded(Recorded),
    /// Under an Idempotency-Key: the stored answer, this request's own or a replay.
    Stored(Outcome),
}

/// The wire form of a record under an Idempotency-Key (status and body), from `http`.
pub type Render = fn(&Recorded) -> StoredResponse;
