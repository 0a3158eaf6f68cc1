//! Principals, roles and JWT handling. Tokens are HS256 with `JWT_SECRET`; service callers use
//! `X-API-Key`. A tenant role reaches only its own tenant, and another tenant's resource answers
//! 404 exactly like a missing one.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::billing::types::TenantId;
use crate::error::AppError;
use crate::state::AppState;

mod role_map;
mod token;

pub use role_map::{RoleMap, DEFAULT_ROLE_MAP};
pub use token::{
    issue_token, verify_token, verify_token_with, Claims, TokenPolicy, DEFAULT_AUDIENCE,
};

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

/// Equal bytes, compared in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
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
            verify_token_with(
                &state.config.jwt_secret,
                &state.config.jwt_policy,
                token.trim(),
            )
            .map(Some)
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
