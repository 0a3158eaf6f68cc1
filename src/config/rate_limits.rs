//! Request budgets per role, from `RATE_LIMIT_ENABLED` (default true),
//! `RATE_LIMIT_PER_MINUTE_SUPER_ADMIN` (600), `RATE_LIMIT_PER_MINUTE_TENANT_ADMIN` (300),
//! `RATE_LIMIT_PER_MINUTE_TENANT_USER` (300), `RATE_LIMIT_PER_MINUTE_SERVICE` (120000: the
//! gateway calls `/enforce` before every metered request, SPEC section 8 expects 1 000 req/s),
//! `RATE_LIMIT_PER_MINUTE_ANONYMOUS` (60). The limiter that spends them is `http::rate_limit`.

/// The largest budget a role can be given.
const MAX_PER_MINUTE: u32 = 10_000_000;

/// Requests per minute for each tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub enabled: bool,
    pub super_admin: u32,
    pub tenant_admin: u32,
    pub tenant_user: u32,
    pub service: u32,
    pub anonymous: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            enabled: true,
            super_admin: 600,
            tenant_admin: 300,
            tenant_user: 300,
            service: 120_000,
            anonymous: 60,
        }
    }
}

impl RateLimits {
    /// No limiting at all (benchmarks, or a deployment that limits at its gateway).
    pub fn disabled() -> Self {
        RateLimits {
            enabled: false,
            ..Self::default()
        }
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let d = Self::default();
        let num = |key: &str, default: u32| -> Result<u32, String> {
            match var(key) {
                None => Ok(default),
                Some(v) => match v.parse::<u32>() {
                    Ok(n) if (1..=MAX_PER_MINUTE).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "{key} must be a whole number from 1 to {MAX_PER_MINUTE}, not {v:?}"
                    )),
                },
            }
        };
        let enabled = match var("RATE_LIMIT_ENABLED")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(other) => {
                return Err(format!(
                    "RATE_LIMIT_ENABLED must be true or false, not {other:?}"
                ))
            }
        };
        Ok(RateLimits {
            enabled,
            super_admin: num("RATE_LIMIT_PER_MINUTE_SUPER_ADMIN", d.super_admin)?,
            tenant_admin: num("RATE_LIMIT_PER_MINUTE_TENANT_ADMIN", d.tenant_admin)?,
            tenant_user: num("RATE_LIMIT_PER_MINUTE_TENANT_USER", d.tenant_user)?,
            service: num("RATE_LIMIT_PER_MINUTE_SERVICE", d.service)?,
            anonymous: num("RATE_LIMIT_PER_MINUTE_ANONYMOUS", d.anonymous)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_configuration_reads_named_variables_and_rejects_bad_values() {
        let map: HashMap<&str, &str> = [
            ("RATE_LIMIT_PER_MINUTE_TENANT_USER", "7"),
            ("RATE_LIMIT_ENABLED", "False"),
        ]
        .into();
        let l = RateLimits::from_lookup(|k| map.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!((l.tenant_user, l.enabled, l.anonymous), (7, false, 60));
        assert_eq!(
            RateLimits::from_lookup(|_| None).unwrap(),
            RateLimits::default()
        );
        let err = RateLimits::from_lookup(|k| {
            (k == "RATE_LIMIT_PER_MINUTE_SERVICE").then(|| "0".to_string())
        })
        .unwrap_err();
        assert!(err.contains("RATE_LIMIT_PER_MINUTE_SERVICE"));
    }
}
