//! `/events`: the outbox, readable by platform admins whether or not a relay publishes it to
//! NATS (without `NATS_URL` this is how other systems catch up).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::billing::types::TenantId;
use crate::error::{AppError, AppResult};
use crate::http::dto::events::{EventBody, EventList};
use crate::http::dto::invoice_schemas::{event_type_filter, tenant_filter};
use crate::http::extract::ApiQuery;
use crate::http::openapi::components::{Forbidden, Unauthorized, Unprocessable};
use crate::http::pagination::PageQuery;
use crate::repository::outbox::{EventFilter, OutboxRepository};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// The `seq` of the last event seen (0: from the start).
    #[param(value_type = Option<crate::http::dto::query_schemas::SeqParam>, inline)]
    after: Option<String>,
    /// Same as `after` (the conventional name); when both are given they must be equal.
    #[param(value_type = Option<crate::http::dto::query_schemas::SeqParam>, inline)]
    starting_after: Option<String>,
    /// Page size.
    #[param(value_type = Option<crate::http::dto::query_schemas::LimitParam>, inline)]
    limit: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(schema_with = event_type_filter)]
    event_type: Option<String>,
    /// Only this tenant's events.
    #[param(schema_with = tenant_filter)]
    tenant_id: Option<String>,
}

/// The outbox events, oldest first
///
/// Roles: super_admin. Readable whether or not a relay publishes them to NATS.
#[utoipa::path(get, path = "/events", tag = "Events", params(EventsQuery),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "One page of events", body = EventList),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable)))]
async fn list_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> AppResult<Json<EventList>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let limit = PageQuery {
        limit: q.limit,
        starting_after: None,
    }
    .page()?
    .limit;
    let after = parse_cursor(q.after.as_deref(), q.starting_after.as_deref())?;
    let event_type = nonempty(q.event_type.as_deref());
    if let Some(t) = event_type {
        if !is_event_type(t) {
            return Err(AppError::field(
                "type",
                "must be an event type such as invoice.paid",
            ));
        }
    }
    let tenant_id = match nonempty(q.tenant_id.as_deref()) {
        Some(t) => Some(TenantId::parse(t).map_err(|issue| AppError::field("tenant_id", issue))?),
        None => None,
    };
    let filter = EventFilter {
        event_type,
        tenant_id: tenant_id.as_ref().map(TenantId::as_str),
    };
    let mut conn = state.pool.acquire().await?;
    let page = OutboxRepository::list(&mut conn, filter, after, limit).await?;
    Ok(Json(EventList {
        events: page.items.into_iter().map(EventBody::from).collect(),
        total: page.total,
        has_more: page.has_more,
    }))
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

/// The cursor is an event `seq` (a positive integer, or 0 for "from the start").
fn parse_cursor(after: Option<&str>, starting_after: Option<&str>) -> AppResult<Option<i64>> {
    let (field, raw) = match (nonempty(after), nonempty(starting_after)) {
        (Some(a), Some(b)) if a != b => {
            return Err(AppError::field(
                "after",
                "give either after or starting_after, not both",
            ))
        }
        (Some(a), _) => ("after", a),
        (None, Some(b)) => ("starting_after", b),
        (None, None) => return Ok(None),
    };
    match raw.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(Some(n)),
        _ => Err(AppError::field(
            field,
            "must be a whole number: the seq of the last event seen",
        )),
    }
}

/// `invoice.paid`, `subscription.plan_changed`, `invoice_generated`: lowercase words joined by
/// dots.
fn is_event_type(s: &str) -> bool {
    s.len() <= 100
        && s.split('.').all(|part| {
            part.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_dotted_lowercase_words() {
        assert!(is_event_type("invoice.paid"));
        assert!(is_event_type("subscription.plan_changed"));
        assert!(is_event_type("invoice_generated"));
        assert!(!is_event_type("Invoice.paid"));
        assert!(!is_event_type("invoice..paid"));
        assert!(!is_event_type("invoice.paid; drop"));
        assert!(!is_event_type(""));
    }

    #[test]
    fn the_cursor_is_a_non_negative_integer() {
        assert_eq!(parse_cursor(Some("12"), None).unwrap(), Some(12));
        assert_eq!(parse_cursor(None, Some("3")).unwrap(), Some(3));
        assert_eq!(parse_cursor(Some("3"), Some("3")).unwrap(), Some(3));
        assert_eq!(parse_cursor(None, None).unwrap(), None);
        assert!(parse_cursor(Some("abc"), None).is_err());
        assert!(parse_cursor(Some("-1"), None).is_err());
        assert!(parse_cursor(Some("1"), Some("2")).is_err());
    }
}
