//! The configuration's defaults and its refusals at start.

use super::*;
use std::collections::HashMap;

fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(|k| map.get(k).cloned())
}

#[test]
fn defaults_match_the_spec() {
    let c = cfg(&[]).unwrap();
    assert_eq!(c.port, 8089);
    assert_eq!(c.pool_max(), 60);
    assert_eq!(c.invoice_due_days, 7);
    assert_eq!(c.past_due_grace_days, 14);
    assert_eq!(c.suspend_after_days, 30);
    assert_eq!(c.db_pool_timeout, Duration::from_secs(30));
}

#[test]
fn production_refuses_to_start_without_a_jwt_secret() {
    let err = cfg(&[("ENVIRONMENT", "production")]).unwrap_err();
    assert!(err.0.contains("JWT_SECRET"));
    assert!(cfg(&[
        ("ENVIRONMENT", "production"),
        ("JWT_SECRET", &"x".repeat(40))
    ])
    .is_ok());
}

#[test]
fn the_platform_secret_name_is_read_and_a_conflict_refuses_to_start() {
    let c = cfg(&[("JWT_SECRET_KEY", "platform-secret")]).unwrap();
    assert_eq!(c.jwt_secret, "platform-secret");
    let c = cfg(&[("JWT_SECRET_KEY", "same"), ("JWT_SECRET", "same")]).unwrap();
    assert_eq!(c.jwt_secret, "same");
    let err = cfg(&[("JWT_SECRET_KEY", "one"), ("JWT_SECRET", "two")]).unwrap_err();
    assert!(err.0.contains("JWT_SECRET and JWT_SECRET_KEY"), "{}", err.0);
    let err = cfg(&[("ENVIRONMENT", "production"), ("JWT_SECRET_KEY", "short")]).unwrap_err();
    assert!(err.0.contains("32 characters"), "{}", err.0);
}

#[test]
fn audience_and_role_map_are_validated_at_start() {
    assert_eq!(cfg(&[]).unwrap().jwt_policy.audiences, vec!["sahool-api"]);
    let c = cfg(&[("JWT_AUDIENCE", "a, b")]).unwrap();
    assert_eq!(c.jwt_policy.audiences, vec!["a", "b"]);
    assert!(cfg(&[("JWT_AUDIENCE", " , ")]).is_err());
    let err = cfg(&[("JWT_ROLE_MAP", "MANAGER=boss")]).unwrap_err();
    assert!(err.0.contains("JWT_ROLE_MAP"), "{}", err.0);
    assert!(cfg(&[("JWT_ROLE_MAP", "MANAGER=tenant_admin")]).is_ok());
}

#[test]
fn bad_numbers_are_named_in_the_error() {
    let err = cfg(&[("DB_POOL_SIZE", "lots")]).unwrap_err();
    assert!(err.0.contains("DB_POOL_SIZE"));
    assert!(cfg(&[("YER_EXCHANGE_RATE", "-1")]).is_err());
}

fn d_ttl(pairs: &[(&str, &str)]) -> Duration {
    cfg(pairs).unwrap().usage_cache_ttl
}

#[test]
fn rate_limits_log_filter_and_the_embedded_folder_are_read_with_the_rest() {
    let c = cfg(&[
        ("RATE_LIMIT_PER_MINUTE_TENANT_USER", "7"),
        ("RUST_LOG", "debug"),
        ("BILLING_PGDATA", "/srv/pg"),
    ])
    .unwrap();
    assert_eq!(
        (c.rate_limits.tenant_user, c.rate_limits.service),
        (7, 120_000)
    );
    assert_eq!(c.log_filter.as_deref(), Some("debug"));
    assert_eq!(c.embedded_pgdata, Some(PathBuf::from("/srv/pg")));
    assert_eq!(
        d_ttl(&[("USAGE_CACHE_TTL_MS", "250")]),
        Duration::from_millis(250)
    );
    assert_eq!(
        d_ttl(&[("USAGE_CACHE_TTL_MS", "60000")]),
        Duration::from_secs(10)
    );
    assert_eq!(d_ttl(&[]), Duration::from_secs(1));
    assert!(cfg(&[("USAGE_CACHE_TTL_MS", "soon")]).is_err());
    let d = cfg(&[]).unwrap();
    assert_eq!(d.rate_limits, RateLimits::default());
    assert_eq!((d.log_filter, d.embedded_pgdata), (None, None));
    // A bad budget stops the start, named, instead of falling back to the defaults.
    let err = cfg(&[("RATE_LIMIT_ENABLED", "maybe")]).unwrap_err();
    assert!(
        err.0.contains("RATE_LIMIT_ENABLED must be true or false"),
        "{}",
        err.0
    );
}

#[test]
fn hsts_is_off_unless_a_max_age_is_given() {
    assert_eq!(cfg(&[]).unwrap().hsts_max_age, None);
    assert_eq!(
        cfg(&[("HSTS_MAX_AGE", "31536000")]).unwrap().hsts_max_age,
        Some(31_536_000)
    );
    assert_eq!(cfg(&[("HSTS_MAX_AGE", "0")]).unwrap().hsts_max_age, Some(0));
    let err = cfg(&[("HSTS_MAX_AGE", "1y")]).unwrap_err();
    assert!(err.0.contains("HSTS_MAX_AGE"), "{}", err.0);
}

#[test]
fn debug_output_hides_secrets() {
    let c = cfg(&[
        ("JWT_SECRET", "supersecretvalue"),
        ("STRIPE_API_KEY", "sk_live_x"),
    ])
    .unwrap();
    let s = format!("{c:?}");
    assert!(!s.contains("supersecretvalue") && !s.contains("sk_live_x"));
}
