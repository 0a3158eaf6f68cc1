//! The audit log of admin and money-moving actions. Services call [`record`] with the
//! connection of the transaction that makes the change, so a rolled-back change leaves no row
//! and a committed one always has its row. The billing run spans many transactions and gets
//! one summary row after it finishes (`jobs::billing_run`).

use serde_json::{Map, Value};
use sqlx::{PgConnection, PgPool};

use crate::auth::{Principal, Role};
use crate::error::AppResult;
use crate::repository::audit::{AuditFilter, AuditRepository, AuditRow, NewAuditEntry};
use crate::request_context::current_request_id;

/// Who acted: the principal's subject and its strongest role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub role: &'static str,
}

impl Actor {
    /// Work the platform does by itself (scheduler, CLI), with no principal behind it.
    pub fn system(subject: &str) -> Actor {
        Actor {
            subject: subject.to_string(),
            role: "system",
        }
    }
}

impl From<&Principal> for Actor {
    fn from(p: &Principal) -> Actor {
        // A token may carry several roles; the log names the one that grants the most.
        let role = [
            Role::SuperAdmin,
            Role::Service,
            Role::TenantAdmin,
            Role::TenantUser,
        ]
        .into_iter()
        .find(|r| p.has(*r))
        .map_or("unknown", Role::as_str);
        Actor {
            subject: p.subject.clone(),
            role,
        }
    }
}

/// What an action did to what. `before`/`after` are snapshots or the changed fields.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    pub tenant_id: Option<&'a str>,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Members never written to the log, wherever they appear in a snapshot.
const SECRET_KEYS: &[&str] = &[
    "stripe_token",
    "token",
    "card",
    "card_number",
    "cvc",
    "cvv",
    "secret",
    "password",
    "api_key",
    "client_secret",
    "phone_number",
];

fn scrub(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| !SECRET_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k, scrub(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(scrub).collect()),
        other => other,
    }
}

/// Writes the audit row inside the caller's transaction, tagged with the current request id.
pub async fn record(conn: &mut PgConnection, actor: &Actor, e: AuditEvent<'_>) -> AppResult<()> {
    let request_id = current_request_id();
    AuditRepository::record(
        conn,
        &NewAuditEntry {
            actor: &actor.subject,
            actor_role: actor.role,
            tenant_id: e.tenant_id,
            action: e.action,
            target_type: e.target_type,
            target_id: &e.target_id,
            before: e.before.map(scrub),
            after: e.after.map(scrub),
            request_id: request_id.as_deref(),
        },
    )
    .await?;
    Ok(())
}

/// The top-level members of two object snapshots that differ (`updated_at` aside), as
/// `(before, after)`: the changed fields only.
pub fn changed(before: &Value, after: &Value) -> (Value, Value) {
    let empty = Map::new();
    let b = before.as_object().unwrap_or(&empty);
    let a = after.as_object().unwrap_or(&empty);
    let mut old = Map::new();
    let mut new = Map::new();
    for key in b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))) {
        if key == "updated_at" {
            continue;
        }
        let (x, y) = (b.get(key), a.get(key));
        if x != y {
            old.insert(key.clone(), x.cloned().unwrap_or(Value::Null));
            new.insert(key.clone(), y.cloned().unwrap_or(Value::Null));
        }
    }
    (Value::Object(old), Value::Object(new))
}

/// One page of the audit log, with the true total and whether more follow.
pub async fn list(
    pool: &PgPool,
    filter: AuditFilter<'_>,
    after: Option<i64>,
    limit: i64,
) -> sqlx::Result<crate::pagination::Page<AuditRow>> {
    let mut conn = pool.acquire().await?;
    AuditRepository::list(&mut conn, filter, after, limit).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_changed_members_are_kept() {
        let (b, a) = changed(
            &json!({"name": "A", "price": "1.00", "updated_at": 1, "gone": true}),
            &json!({"name": "B", "price": "1.00", "updated_at": 2, "new": 5}),
        );
        assert_eq!(b, json!({"name": "A", "gone": true, "new": null}));
        assert_eq!(a, json!({"name": "B", "gone": null, "new": 5}));
    }

    #[test]
    fn secrets_are_dropped_at_any_depth() {
        let v =
            scrub(json!({"a": 1, "stripe_token": "tok", "x": [{"phone_number": "+967", "b": 2}]}));
        assert_eq!(v, json!({"a": 1, "x": [{"b": 2}]}));
    }

    #[test]
    fn the_actor_role_is_the_strongest_one_held() {
        let p = Principal {
            subject: "u".into(),
            tenant_id: None,
            roles: vec![Role::TenantUser, Role::SuperAdmin],
            scope: "user:u".into(),
        };
        assert_eq!(
            Actor::from(&p),
            Actor {
                subject: "u".into(),
                role: "super_admin"
            }
        );
    }
}
