//! The transactional outbox: events are written in the same transaction as the state change
//! they describe; a relay publishes them later.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::{Event, TenantEvent};

pub struct OutboxRepository;

/// The envelope every payload carries: `event_id`, `type`, `occurred_at`, `tenant_id`. Payloads
/// may carry gateway or client text (a failure reason), so the result is made storable.
fn envelope(
    mut body: Map<String, Value>,
    event_id: Uuid,
    event_type: &str,
    tenant_id: Option<&str>,
    occurred_at: DateTime<Utc>,
) -> Value {
    body.insert("event_id".into(), Value::from(event_id.to_string()));
    body.insert("type".into(), Value::from(event_type));
    body.insert("occurred_at".into(), Value::from(occurred_at.to_rfc3339()));
    body.insert(
        "tenant_id".into(),
        tenant_id.map(Value::from).unwrap_or(Value::Null),
    );
    let mut body = Value::Object(body);
    crate::storable::scrub(&mut body);
    body
}

/// An event of the catalogue ready to store: its row's columns, the payload with its
/// envelope. Built in Rust for every write, so statements that insert events alongside other
/// rows (the invoice insert) pass them through UNNEST and never assemble JSON in SQL.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub event_id: Uuid,
    pub subject: String,
    pub event_type: &'static str,
    pub tenant_id: Option<String>,
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
}

impl StoredEvent {
    pub fn new(
        event_id: Uuid,
        tenant_id: Option<&str>,
        event: &Event,
        occurred_at: DateTime<Utc>,
    ) -> StoredEvent {
        let event_type = event.event_type();
        StoredEvent {
            event_id,
            subject: format!("sahool.billing.{event_type}"),
            event_type,
            tenant_id: tenant_id.map(str::to_string),
            payload: envelope(
                event.payload(),
                event_id,
                event_type,
                tenant_id,
                occurred_at,
            ),
            occurred_at,
        }
    }
}

/// An unpublished event as the relay needs it.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    pub event_id: Uuid,
    pub seq: i64,
    pub subject: String,
    pub payload: Value,
}

/// An event as `GET /v1/events` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventRow {
    pub event_id: Uuid,
    pub seq: i64,
    pub subject: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub tenant_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub payload: Value,
}

/// Filters of the events list; `None` matches everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct EventFilter<'a> {
    pub event_type: Option<&'a str>,
    pub tenant_id: Option<&'a str>,
}

const EVENT_COLUMNS: &str =
    "event_id, seq, subject, event_type, tenant_id, occurred_at, published_at, payload";

/// `last_error` is a diagnostic, not a log: keep it short.
const MAX_ERROR_CHARS: usize = 500;

fn short(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

impl OutboxRepository {
    /// Records `sahool.billing.{event_type}` with the common envelope fields merged into
    /// `payload` (which should be an object of ids and string amounts).
    pub async fn record(
        conn: &mut PgConnection,
        event_type: &str,
        tenant_id: Option<&str>,
        payload: Value,
    ) -> sqlx::Result<Uuid> {
        let event_id = Uuid::new_v4();
        let occurred_at = chrono::Utc::now();
        let body = match payload {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("data".into(), other);
                m
            }
        };
        let body = envelope(body, event_id, event_type, tenant_id, occurred_at);
        sqlx::query!(
            "INSERT INTO outbox_events (event_id, subject, event_type, tenant_id, payload, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            event_id,
            format!("sahool.billing.{event_type}"),
            event_type,
            tenant_id,
            body,
            occurred_at
        )
        .execute(conn)
        .await?;
        Ok(event_id)
    }

    /// Records one event of the catalogue (`crate::events`).
    pub async fn record_event(
        conn: &mut PgConnection,
        tenant_id: Option<&str>,
        event: &Event,
    ) -> sqlx::Result<Uuid> {
        Self::record(
            conn,
            event.event_type(),
            tenant_id,
            Value::Object(event.payload()),
        )
        .await
    }

    /// Records many events in one statement (the set-based jobs): the payloads are built here,
    /// in Rust, and passed as arrays, so no event is assembled in SQL.
    pub async fn record_events(
        conn: &mut PgConnection,
        events: &[TenantEvent],
    ) -> sqlx::Result<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        let occurred_at = chrono::Utc::now();
        let stored: Vec<StoredEvent> = events
            .iter()
            .map(|e| {
                StoredEvent::new(
                    Uuid::new_v4(),
                    e.tenant_id.as_deref(),
                    &e.event,
                    occurred_at,
                )
            })
            .collect();
        let ids: Vec<Uuid> = stored.iter().map(|e| e.event_id).collect();
        let subjects: Vec<&str> = stored.iter().map(|e| e.subject.as_str()).collect();
        let types: Vec<&str> = stored.iter().map(|e| e.event_type).collect();
        let tenants: Vec<Option<&str>> = stored.iter().map(|e| e.tenant_id.as_deref()).collect();
        let payloads: Vec<&Value> = stored.iter().map(|e| &e.payload).collect();
        // Borrowed arrays (`&str`, `&Value`) encode as text[] and jsonb[] like owned ones; the
        // macro's type check wants owned element types, hence `as _`.
        let done = sqlx::query!(
            "INSERT INTO outbox_events (event_id, subject, event_type, tenant_id, payload, occurred_at)
             SELECT e.id, e.subject, e.type, e.tenant, e.payload, $6
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
                  AS e(id, subject, type, tenant, payload)",
            &ids,
            &subjects as _,
            &types as _,
            &tenants as _,
            &payloads as _,
            occurred_at
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// Locks up to `limit` unpublished events, oldest first. Rows another relay holds are
    /// skipped, so two relays never work on the same event; the locks last until the caller's
    /// transaction ends, which is why the caller marks the outcome in that same transaction.
    pub async fn claim_pending(
        conn: &mut PgConnection,
        limit: i64,
    ) -> sqlx::Result<Vec<PendingEvent>> {
        sqlx::query_as!(
            PendingEvent,
            "SELECT event_id, seq, subject, payload FROM outbox_events
             WHERE published_at IS NULL
             ORDER BY seq
             LIMIT $1
             FOR UPDATE SKIP LOCKED",
            limit
        )
        .fetch_all(conn)
        .await
    }

    pub async fn mark_published(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query!(
            "UPDATE outbox_events SET published_at = now(), last_error = NULL, updated_at = now()
             WHERE event_id = ANY($1) AND published_at IS NULL",
            ids
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn mark_failed(
        conn: &mut PgConnection,
        ids: &[Uuid],
        error: &str,
    ) -> sqlx::Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let done = sqlx::query!(
            "UPDATE outbox_events SET attempts = attempts + 1, last_error = $2, updated_at = now()
             WHERE event_id = ANY($1) AND published_at IS NULL",
            ids,
            short(error)
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// Counts a failed attempt against the next `limit` waiting events when the relay cannot
    /// even reach NATS, so a stuck outbox is visible in the table. Rows another relay holds are
    /// left alone.
    pub async fn note_relay_failure(
        conn: &mut PgConnection,
        limit: i64,
        error: &str,
    ) -> sqlx::Result<u64> {
        let done = sqlx::query!(
            "UPDATE outbox_events SET attempts = attempts + 1, last_error = $2, updated_at = now()
             WHERE event_id IN (
                SELECT event_id FROM outbox_events WHERE published_at IS NULL
                ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)",
            limit,
            short(error)
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected())
    }

    /// Events with `seq > after`, ascending; `total` counts every event matching the filter,
    /// whatever the cursor.
    pub async fn list(
        conn: &mut PgConnection,
        filter: EventFilter<'_>,
        after: Option<i64>,
        limit: i64,
    ) -> sqlx::Result<crate::pagination::Page<EventRow>> {
        use crate::repository::keyset::{none, After, Keyset};
        const LIST: Keyset = Keyset::asc("outbox_events", EVENT_COLUMNS, &["seq"]);
        let conditions = |q: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>| {
            if let Some(t) = filter.event_type {
                q.push(" AND event_type = ").push_bind(t.to_string());
            }
            if let Some(t) = filter.tenant_id {
                q.push(" AND tenant_id = ").push_bind(t.to_string());
            }
        };
        LIST.page(conn, none, conditions, After::key(after), limit)
            .await
    }
}
