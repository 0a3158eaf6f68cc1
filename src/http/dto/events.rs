//! `/events` and `/audit`: outbox events and audit rows on the wire.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType};
use utoipa::openapi::RefOr;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::repository::audit::AuditRow;
use crate::repository::outbox::EventRow;

fn payload_schema() -> RefOr<Schema> {
    let o = ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Object)
        .additional_properties(Some(ObjectBuilder::new().schema_type(SchemaType::AnyValue)))
        .description(Some(
            "The event's payload as published (amounts as strings; `event_id` and `type` repeated).",
        ));
    RefOr::T(Schema::Object(o.build()))
}

fn snapshot_schema() -> RefOr<Schema> {
    let any = ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some(
            "A snapshot or the changed members (secrets removed); null when not recorded.",
        ));
    RefOr::T(Schema::Object(any.build()))
}

/// One outbox event.
#[derive(Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventBody {
    pub event_id: Uuid,
    /// Ascending, gap-tolerant: the cursor of `after`.
    pub seq: i64,
    #[schema(examples("sahool.billing.invoice.paid"))]
    pub subject: String,
    #[serde(rename = "type")]
    #[schema(examples("invoice.paid"))]
    pub event_type: String,
    pub tenant_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    /// When the relay published it to NATS; null while it waits.
    pub published_at: Option<DateTime<Utc>>,
    #[schema(schema_with = payload_schema)]
    pub payload: Value,
}

impl From<EventRow> for EventBody {
    fn from(e: EventRow) -> Self {
        EventBody {
            event_id: e.event_id,
            seq: e.seq,
            subject: e.subject,
            event_type: e.event_type,
            tenant_id: e.tenant_id,
            occurred_at: e.occurred_at,
            published_at: e.published_at,
            payload: e.payload,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<EventBody>,
    pub total: i64,
    pub has_more: bool,
}

/// One audit row.
#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub audit_id: Uuid,
    /// Ascending: the cursor of `after`.
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    /// The principal's subject, or the system job's name.
    pub actor: String,
    /// The strongest role the actor held (`system` for jobs).
    pub actor_role: String,
    pub tenant_id: Option<String>,
    #[schema(examples("payment.confirm"))]
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    #[schema(schema_with = snapshot_schema)]
    pub before: Option<Value>,
    #[schema(schema_with = snapshot_schema)]
    pub after: Option<Value>,
    pub request_id: Option<String>,
}

impl From<AuditRow> for AuditEntry {
    fn from(a: AuditRow) -> Self {
        AuditEntry {
            audit_id: a.audit_id,
            seq: a.seq,
            occurred_at: a.occurred_at,
            actor: a.actor,
            actor_role: a.actor_role,
            tenant_id: a.tenant_id,
            action: a.action,
            target_type: a.target_type,
            target_id: a.target_id,
            before: a.before,
            after: a.after,
            request_id: a.request_id,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    pub audit: Vec<AuditEntry>,
    pub total: i64,
    pub has_more: bool,
}
