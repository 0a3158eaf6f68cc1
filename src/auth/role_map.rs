//! How the roles in a token become this service's roles.
//!
//! The SAHOOL platform signs its own role names: the user service `ADMIN`, `MANAGER`, `FARMER`,
//! `WORKER`, `VIEWER`; the shared Python auth package `super_admin`, `tenant_admin`,
//! `farm_manager`, `field_operator`, `agronomist`, `viewer`; the shared RBAC module also
//! `admin`, `manager`, `supervisor`, `worker`. Billing knows four roles. The default table maps
//! each platform role to the narrowest billing role that still lets it do what the platform lets
//! it do with billing: only the tenant administrator holds the platform's "billing manage"
//! permission, so only `ADMIN`/`admin`/`tenant_admin` become `tenant_admin`. `FARMER` stays a
//! `tenant_user` on purpose: the user service gives it to anyone who registers, for a tenant id
//! the registrant chooses, so it must not be able to pay, cancel or change a plan.
//!
//! `JWT_ROLE_MAP` extends or overrides the table: comma-separated `platform_role=billing_role`
//! pairs, where the billing role is `super_admin`, `tenant_admin`, `tenant_user`, `service` or
//! `none` (the platform role then grants nothing). Names match case-insensitively. A role
//! neither the table nor the map names grants nothing.

use std::collections::HashMap;

use super::Role;

/// The default table: (platform role, billing role), names in lowercase.
pub const DEFAULT_ROLE_MAP: &[(&str, Role)] = &[
    // Billing's own names (tokens from `billing-core token`, existing service clients).
    ("super_admin", Role::SuperAdmin),
    ("tenant_admin", Role::TenantAdmin),
    ("tenant_user", Role::TenantUser),
    ("service", Role::Service),
    // User service (`UserRole` enum) and shared RBAC (`shared/security/rbac.py`).
    ("admin", Role::TenantAdmin),
    ("manager", Role::TenantUser),
    ("supervisor", Role::TenantUser),
    ("farmer", Role::TenantUser),
    ("worker", Role::TenantUser),
    ("viewer", Role::TenantUser),
    // Shared Python auth package (`RoleType`).
    ("farm_manager", Role::TenantUser),
    ("field_operator", Role::TenantUser),
    ("agronomist", Role::TenantUser),
];

/// The platform-to-billing role table in force. `None` values mean "grants nothing".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleMap {
    entries: HashMap<String, Option<Role>>,
}

impl Default for RoleMap {
    fn default() -> Self {
        RoleMap {
            entries: DEFAULT_ROLE_MAP
                .iter()
                .map(|(name, role)| (name.to_string(), Some(*role)))
                .collect(),
        }
    }
}

impl RoleMap {
    /// The default table with `JWT_ROLE_MAP`'s pairs applied on top.
    pub fn with_overrides(spec: &str) -> Result<RoleMap, String> {
        let mut map = RoleMap::default();
        let mut seen = Vec::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, target) = pair.split_once('=').ok_or_else(|| {
                format!("JWT_ROLE_MAP entry {pair:?} is not platform_role=billing_role")
            })?;
            let name = name.trim().to_ascii_lowercase();
            let valid_name = (1..=100).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
            if !valid_name {
                return Err(format!(
                    "JWT_ROLE_MAP entry {pair:?}: the platform role must be 1-100 letters, digits or _ - . :"
                ));
            }
            let target = match target.trim() {
                "none" => None,
                t => Some(Role::parse(t).ok_or_else(|| {
                    format!(
                        "JWT_ROLE_MAP entry {pair:?}: the billing role must be super_admin, tenant_admin, tenant_user, service or none"
                    )
                })?),
            };
            if seen.contains(&name) {
                return Err(format!("JWT_ROLE_MAP names the role {name:?} twice"));
            }
            seen.push(name.clone());
            map.entries.insert(name, target);
        }
        Ok(map)
    }

    /// The billing role a token role grants, if any.
    pub fn map(&self, platform_role: &str) -> Option<Role> {
        if let Some(r) = self.entries.get(platform_role) {
            return *r;
        }
        // Platform names are upper case in the user service; only allocate for those.
        if platform_role.bytes().any(|b| b.is_ascii_uppercase()) {
            return self
                .entries
                .get(&platform_role.to_ascii_lowercase())
                .copied()
                .flatten();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_table_maps_platform_roles_to_the_narrower_billing_role() {
        let m = RoleMap::default();
        assert_eq!(m.map("ADMIN"), Some(Role::TenantAdmin));
        assert_eq!(m.map("FARMER"), Some(Role::TenantUser));
        assert_eq!(m.map("MANAGER"), Some(Role::TenantUser));
        assert_eq!(m.map("farm_manager"), Some(Role::TenantUser));
        assert_eq!(m.map("super_admin"), Some(Role::SuperAdmin));
        assert_eq!(m.map("seller"), None);
    }

    #[test]
    fn overrides_replace_add_and_remove_entries() {
        let m = RoleMap::with_overrides(" MANAGER=tenant_admin, owner=tenant_admin,viewer=none")
            .unwrap();
        assert_eq!(m.map("MANAGER"), Some(Role::TenantAdmin));
        assert_eq!(m.map("Owner"), Some(Role::TenantAdmin));
        assert_eq!(m.map("viewer"), None);
        assert_eq!(m.map("FARMER"), Some(Role::TenantUser));
    }

    #[test]
    fn malformed_overrides_are_refused_with_the_entry_named() {
        for bad in [
            "admin",
            "admin=root",
            "=tenant_user",
            "a b=tenant_user",
            "x=none,X=service",
        ] {
            let err = RoleMap::with_overrides(bad).unwrap_err();
            assert!(err.contains("JWT_ROLE_MAP"), "{bad}: {err}");
        }
    }
}
