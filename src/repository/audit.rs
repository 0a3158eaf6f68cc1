//! The audit log: one append-only row per admin or money-moving action, written in the
//! transaction of the change it describes.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

pub struct AuditRepository;

/// A row to write. `before`/`after` are snapshots or the changed fields, never secrets.
#[derive(Debug, Clone)]
pub struct NewAuditEntry<'a> {
    pub actor: &'a str,
    pub actor_role: &'a str,
    pub tenant_id: Option<&'a str>,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<&'a str>,
}

/// A row as `GET /v1/audit` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub audit_id: Uuid,
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub actor_role: String,
    pub tenant_id: Option<String>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
}

/// Filters of the audit list; `None` matches everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditFilter<'a> {
    pub tenant_id: Option<&'a str>,
    pub action: Option<&'a str>,
}

const AUDIT_COLUMNS: &str = "audit_id, seq, occurred_at, actor, actor_role, tenant_id, action, \
     target_type, target_id, before, after, request_id";

impl AuditRepository {
    /// Snapshots may quote client or gateway text: stored with any U+0000 replaced.
    pub async fn record(conn: &mut PgConnection, e: &NewAuditEntry<'_>) -> sqlx::Result<AuditRow> {
        let before = e.before.as_ref().map(crate::storable::storable);
        let after = e.after.as_ref().map(crate::storable::storable);
        sqlx::query_as!(
            AuditRow,
            "INSERT INTO audit_log (audit_id, actor, actor_role, tenant_id, action, target_type,
                 target_id, before, after, request_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             RETURNING audit_id, seq, occurred_at, actor, actor_role, tenant_id, action,
                 target_type, target_id, before, after, request_id",
            Uuid::new_v4(),
            e.actor,
            e.actor_role,
            e.tenant_id,
            e.action,
            e.target_type,
            e.target_id,
            before.as_deref() as _,
            after.as_deref() as _,
            e.request_id
        )
        .fetch_one(conn)
        .await
    }

    /// Rows with `seq > after`, ascending; `total` counts every row matching the filter,
    /// whatever the cursor.
    pub async fn list(
        conn: &mut PgConnection,
        filter: AuditFilter<'_>,
        after: Option<i64>,
        limit: i64,
    ) -> sqlx::Result<crate::pagination::Page<AuditRow>> {
        use crate::repository::keyset::{none, After, Keyset};
        const LIST: Keyset = Keyset::asc("audit_log", AUDIT_COLUMNS, &["seq"]);
        let conditions = |q: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>| {
            if let Some(t) = filter.tenant_id {
                q.push(" AND tenant_id = ").push_bind(t.to_string());
            }
            if let Some(a) = filter.action {
                q.push(" AND action = ").push_bind(a.to_string());
            }
        };
        LIST.page(conn, none, conditions, After::key(after), limit)
            .await
    }
}
