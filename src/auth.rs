//! Principals, roles and JWT handling. Tokens are HS256 with `JWT_SECRET`; service callers use
//! `X-API-Key`. A tenant role reaches only its own tenant, and another tenant's resource answers
//! 404 exactly like a missing one.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::billing::types::TenantId;
use crate::error::AppError;
use crate::state::AppState;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    SuperAdmin,
    TenantAdmin,
    TenantUser,
    Service,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "super_admin" => Some(Role::SuperAdmin),
            "tenant_admin" => Some(Role::TenantAdmin),
            "tenant_user" => Some(Role::TenantUser),
            "service" => Some(Role::Service),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::SuperAdmin => "super_admin",
            Role::TenantAdmin => "tenant_admin",
            Role::TenantUser => "tenant_user",
            Role::Service => "service",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Principal {
    pub subject: String,
    pub tenant_id: Option<TenantId>,
    pub roles: Vec<Role>,
    /// Stable identity for idempotency scopes (never the raw key or token).
    pub scope: String,
}

impl Principal {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn is_super_admin(&self) -> bool {
        self.has(Role::SuperAdmin)
    }

    /// Platform-wide callers: super admins and services.
    pub fn is_platform(&self) -> bool {
        self.has(Role::SuperAdmin) || self.has(Role::Service)
    }

    /// 403 unless the principal holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            Err(AppError::forbidden(format!(
                "This action needs one of the roles: {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// Whether the principal may see `tenant`'s data.
    pub fn can_access(&self, tenant: &TenantId) -> bool {
        self.is_platform() || self.tenant_id.as_ref() == Some(tenant)
    }

    /// 404 (not 403) for another tenant's resource, so ids of other tenants do not leak.
    pub fn require_tenant(&self, tenant: &TenantId, what: &str, ar: &str) -> Result<(), AppError> {
        if self.can_access(tenant) {
            Ok(())
        } else {
            Err(AppError::not_found(what, ar))
        }
    }

    /// For tenant-scoped writes: platform roles, or the tenant's own admin.
    pub fn require_tenant_admin(&self, tenant: &TenantId) -> Result<(), AppError> {
        self.require_tenant(tenant, "Tenant", "المستأجر غير موجود")?;
        if self.is_platform() || self.has(Role::TenantAdmin) {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "This action needs the tenant_admin role",
            ))
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
}

/// Mints a token (the `token` CLI command and tests).
pub fn issue_token(
    secret: &str,
    subject: &str,
    role: Role,
    tenant: Option<&str>,
    ttl_secs: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: subject.to_string(),
        tid: tenant.map(str::to_string),
        tenant_id: None,
        roles: Some(vec![role.as_str().to_string()]),
        role: None,
        exp: now + ttl_secs,
        iat: now,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

pub fn verify_token(secret: &str, token: &str) -> Result<Principal, AppError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 30;
    let data = decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| AppError::unauthorized(format!("Invalid bearer token: {e}")))?;
    let c = data.claims;
    let mut roles: Vec<Role> = c
        .roles
        .unwrap_or_default()
        .iter()
        .chain(c.role.iter())
        .filter_map(|r| Role::parse(r))
        .collect();
    roles.dedup();
    if roles.is_empty() {
        return Err(AppError::unauthorized("The token carries no known role"));
    }
    let tenant_id = match c.tid.or(c.tenant_id) {
        Some(t) => Some(
            TenantId::parse(&t)
                .map_err(|_| AppError::unauthorized("The token's tenant is invalid"))?,
        ),
        None => None,
    };
    let needs_tenant = !roles
        .iter()
        .any(|r| matches!(r, Role::SuperAdmin | Role::Service));
    if needs_tenant && tenant_id.is_none() {
        return Err(AppError::unauthorized(
            "A tenant role needs a tenant claim (tid)",
        ));
    }
    let scope = match &tenant_id {
        Some(t) if needs_tenant => format!("tenant:{t}"),
        _ => format!("user:{}", c.sub),
    };
    Ok(Principal {
        subject: c.sub,
        tenant_id,
        roles,
        scope,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn authenticate(state: &AppState, parts: &Parts) -> Result<Option<Principal>, AppError> {
    if let Some(key) = parts.headers.get("x-api-key") {
        let key = key
            .to_str()
            .map_err(|_| AppError::unauthorized("Invalid API key"))?;
        let known = state
            .config
            .api_keys
            .iter()
            .any(|k| constant_time_eq(k.as_bytes(), key.as_bytes()));
        if !known {
            return Err(AppError::unauthorized("Invalid API key"));
        }
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        return Ok(Some(Principal {
            subject: "api-key".into(),
            tenant_id: None,
            roles: vec![Role::Service],
            scope: format!("apikey:{}", &digest[..16]),
        }));
    }
    match parts.headers.get(axum::http::header::AUTHORIZATION) {
        None => Ok(None),
        Some(v) => {
            let v = v
                .to_str()
                .map_err(|_| AppError::unauthorized("Invalid Authorization header"))?;
            let token = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or_else(|| AppError::unauthorized("Authorization must be 'Bearer <token>'"))?;
            verify_token(&state.config.jwt_secret, token.trim()).map(Some)
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        // Already verified by the rate limiter (see `rate_limit::RateLimiter::identify`).
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        authenticate(state, parts)?.ok_or_else(|| {
            AppError::unauthorized("Authentication required: send a Bearer token or X-API-Key")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_with_roles_and_tenant() {
        let t = issue_token("s3cret", "u1", Role::TenantAdmin, Some("farm-1"), 60).unwrap();
        let p = verify_token("s3cret", &t).unwrap();
        assert_eq!(p.tenant_id.unwrap().as_str(), "farm-1");
        assert_eq!(p.roles, vec![Role::TenantAdmin]);
        assert!(verify_token("other", &t).is_err());
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let t = issue_token("s3cret", "u1", Role::SuperAdmin, None, -3600).unwrap();
        assert!(verify_token("s3cret", &t).is_err());
    }

    #[test]
    fn tenant_roles_need_a_tenant_claim() {
        let t = issue_token("s3cret", "u1", Role::TenantUser, None, 60).unwrap();
        assert!(verify_token("s3cret", &t).is_err());
    }
}
