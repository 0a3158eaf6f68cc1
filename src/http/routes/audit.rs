//! `/audit`: the audit log of admin and money-moving actions, for super admins.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, Role};
use crate::billing::types::TenantId;
use crate::error::{AppError, AppResult};
use crate::http::dto::events::{AuditEntry, AuditList};
use crate::http::dto::invoice_schemas::{action_filter, tenant_filter};
use crate::http::extract::ApiQuery;
use crate::http::openapi::components::{Forbidden, Unauthorized, Unprocessable};
use crate::http::pagination::PageQuery;
use crate::repository::audit::AuditFilter;
use crate::services::audit;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only this tenant's entries.
    #[param(schema_with = tenant_filter)]
    tenant_id: Option<String>,
    /// Only this action.
    #[param(schema_with = action_filter)]
    action: Option<String>,
    /// The `seq` of the last entry seen (0: from the start).
    #[param(value_type = Option<crate::http::dto::query_schemas::SeqParam>, inline)]
    after: Option<String>,
    /// Page size.
    #[param(value_type = Option<crate::http::dto::query_schemas::LimitParam>, inline)]
    limit: Option<String>,
}

/// The audit log of admin and money-moving actions
///
/// Roles: super_admin. Oldest first.
#[utoipa::path(get, path = "/audit", tag = "Audit", params(AuditQuery),
    security(("bearerAuth" = [])),
    responses((status = 200, description = "One page of the log", body = AuditList),
        (status = 401, response = Unauthorized), (status = 403, response = Forbidden),
        (status = 422, response = Unprocessable)))]
async fn list_audit(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Json<AuditList>> {
    principal.require_any(&[Role::SuperAdmin])?;
    let limit = PageQuery {
        limit: q.limit,
        starting_after: None,
    }
    .page()?
    .limit;
    let after = match nonempty(q.after.as_deref()) {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(AppError::field(
                    "after",
                    "must be a whole number: the seq of the last row seen",
                ))
            }
        },
    };
    let tenant_id = match nonempty(q.tenant_id.as_deref()) {
        Some(t) => Some(TenantId::parse(t).map_err(|issue| AppError::field("tenant_id", issue))?),
        None => None,
    };
    let action = nonempty(q.action.as_deref());
    if action.is_some_and(|a| !is_action(a)) {
        return Err(AppError::field(
            "action",
            "must be an action name such as payment.confirm",
        ));
    }
    let filter = AuditFilter {
        tenant_id: tenant_id.as_ref().map(TenantId::as_str),
        action,
    };
    let page = audit::list(&state.pool, filter, after, limit).await?;
    Ok(Json(AuditList {
        audit: page.items.into_iter().map(AuditEntry::from).collect(),
        total: page.total,
        has_more: page.has_more,
    }))
}

fn nonempty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

/// `plan.create`, `subscription.cancel`, `exchange_rate.set`: lowercase words joined by dots.
fn is_action(s: &str) -> bool {
    s.len() <= 100
        && s.contains('.')
        && s.split('.').all(|part| {
            part.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
                && part.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_dotted_lowercase_words() {
        assert!(is_action("payment.confirm"));
        assert!(is_action("exchange_rate.set"));
        assert!(!is_action("payment"));
        assert!(!is_action("Payment.confirm"));
        assert!(!is_action("payment..confirm"));
        assert!(!is_action("payment.confirm; drop"));
    }
}
