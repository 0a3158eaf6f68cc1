//! The transactional outbox: events are written in the same transaction as the state change
//! they describe; a relay publishes them later.

use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

pub struct OutboxRepository;

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
        let mut body = match payload {
            Value::Object(m) => m,
            other => {
                let mut m = Map::new();
                m.insert("data".into(), other);
                m
            }
        };
        body.insert("event_id".into(), Value::from(event_id.to_string()));
        body.insert("type".into(), Value::from(event_type));
        body.insert("occurred_at".into(), Value::from(occurred_at.to_rfc3339()));
        body.insert("tenant_id".into(), tenant_id.map(Value::from).unwrap_or(Value::Null));
        sqlx::query(
            "INSERT INTO outbox_events (event_id, subject, event_type, tenant_id, payload, occurred_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(event_id)
        .bind(format!("sahool.billing.{event_type}"))
        .bind(event_type)
        .bind(tenant_id)
        .bind(Value::Object(body))
        .bind(occurred_at)
        .execute(conn)
        .await?;
        Ok(event_id)
    }
}
