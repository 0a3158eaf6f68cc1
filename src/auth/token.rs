//! Bearer tokens: HS256, signed with `JWT_SECRET` (or the platform's `JWT_SECRET_KEY`).
//!
//! Tokens come from two places and both must work: `billing-core token` (no `aud`, billing's
//! role names, tenant in `tid`) and the SAHOOL platform (the user service and
//! `shared/auth/jwt_handler.py`: `aud` "sahool-api", `iss` "sahool-platform", `type` "access" or
//! "refresh", `roles` in the platform's names, tenant in `tid`). What is checked:
//! - signature and `exp` (30 s leeway), `nbf` when present;
//! - `aud`, when the token has one, must be one of `JWT_AUDIENCE`; a token without `aud` passes;
//! - `iss`, when `JWT_ISSUER` is set and the token has one, must match;
//! - `type`, when present, must be `access` (a refresh token is not a credential for calls);
//! - roles go through the role map (`role_map.rs`); a token left with no billing role is refused;
//! - the tenant is read from `tid`, `tenant_id` or `tenantId`; two of them that disagree are refused.

use std::sync::OnceLock;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::{Principal, Role, RoleMap};
use crate::billing::types::TenantId;
use crate::error::AppError;

/// The audience the platform signs (`JWT_AUDIENCE` in its services) and our default.
pub const DEFAULT_AUDIENCE: &str = "sahool-api";

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, rename = "tenantId", skip_serializing_if = "Option::is_none")]
    pub tenant_id_camel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The platform's `access` / `refresh`; absent in billing's own tokens.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
}

/// What a token must satisfy besides its signature: built once from the configuration.
#[derive(Clone, Debug)]
pub struct TokenPolicy {
    validation: Validation,
    pub audiences: Vec<String>,
    pub issuer: Option<String>,
    pub role_map: RoleMap,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy::new(vec![DEFAULT_AUDIENCE.to_string()], None, RoleMap::default())
    }
}

impl TokenPolicy {
    pub fn new(audiences: Vec<String>, issuer: Option<String>, role_map: RoleMap) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.validate_nbf = true;
        // `aud` is checked when present and not required (billing's own tokens carry none);
        // `iss` likewise, and only when an issuer is configured.
        validation.set_audience(&audiences);
        if let Some(iss) = &issuer {
            validation.set_issuer(&[iss]);
        }
        TokenPolicy {
            validation,
            audiences,
            issuer,
            role_map,
        }
    }
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
        tenant_id_camel: None,
        roles: Some(vec![role.as_str().to_string()]),
        role: None,
        token_type: None,
        exp: now + ttl_secs,
        iat: now,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Verifies with the default policy (audience `sahool-api`, the default role table).
pub fn verify_token(secret: &str, token: &str) -> Result<Principal, AppError> {
    static DEFAULT: OnceLock<TokenPolicy> = OnceLock::new();
    verify_token_with(secret, DEFAULT.get_or_init(TokenPolicy::default), token)
}

pub fn verify_token_with(
    secret: &str,
    policy: &TokenPolicy,
    token: &str,
) -> Result<Principal, AppError> {
    let data = decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &policy.validation,
    )
    .map_err(|e| {
        AppError::unauthorized(match e.kind() {
            ErrorKind::ExpiredSignature => "The bearer token has expired",
            ErrorKind::ImmatureSignature => "The bearer token is not valid yet (nbf)",
            ErrorKind::InvalidAudience => {
                "The bearer token is meant for another audience (aud does not match JWT_AUDIENCE)"
            }
            ErrorKind::InvalidIssuer => "The bearer token's issuer (iss) is not JWT_ISSUER",
            ErrorKind::InvalidSignature => "The bearer token's signature is invalid",
            ErrorKind::InvalidAlgorithm => "The bearer token must be signed with HS256",
            _ => "Invalid bearer token",
        })
    })?;
    let c = data.claims;
    if let Some(t) = c.token_type.as_deref() {
        if t != "access" {
            return Err(AppError::unauthorized(
                "Only access tokens are accepted (the token's type is not \"access\")",
            ));
        }
    }
    let mut roles: Vec<Role> = c
        .roles
        .iter()
        .flatten()
        .chain(c.role.iter())
        .filter_map(|r| policy.role_map.map(r))
        .collect();
    roles.sort_by_key(|r| r.as_str());
    roles.dedup();
    if roles.is_empty() {
        return Err(AppError::unauthorized(
            "The token carries no role this service knows (see JWT_ROLE_MAP)",
        ));
    }
    let tenant_id = tenant_claim(c.tid, c.tenant_id, c.tenant_id_camel)?;
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

/// The tenant from whichever of the accepted claim names the token uses.
fn tenant_claim(
    tid: Option<String>,
    tenant_id: Option<String>,
    camel: Option<String>,
) -> Result<Option<TenantId>, AppError> {
    let mut found: Option<String> = None;
    for t in [tid, tenant_id, camel].into_iter().flatten() {
        match &found {
            Some(f) if *f != t => {
                return Err(AppError::unauthorized(
                    "The token names two different tenants (tid, tenant_id, tenantId)",
                ))
            }
            _ => found = Some(t),
        }
    }
    found
        .map(|t| {
            TenantId::parse(&t).map_err(|_| AppError::unauthorized("The token's tenant is invalid"))
        })
        .transpose()
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

    #[test]
    fn two_different_tenant_claims_are_refused() {
        assert!(tenant_claim(Some("a".into()), None, Some("a".into()))
            .unwrap()
            .is_some());
        assert!(tenant_claim(Some("a".into()), Some("b".into()), None).is_err());
    }
}
