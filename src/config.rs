//! Typed configuration read from the environment (and `.env`), validated once at start.
//! Secrets are kept out of `Debug` output so the config can be logged safely.

mod rate_limits;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::auth::{RoleMap, TokenPolicy};
pub use rate_limits::RateLimits;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Environment {
    Production,
    Development,
    Test,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Clone)]
pub struct Config {
    /// `None`: use the embedded PostgreSQL started from the installed server binaries.
    pub database_url: Option<String>,
    pub db_pool_size: u32,
    pub db_max_overflow: u32,
    pub db_pool_timeout: Duration,
    pub db_pool_recycle: Duration,
    pub environment: Environment,
    pub port: u16,
    pub jwt_secret: String,
    /// Audience, issuer and role table bearer tokens are checked against (`JWT_AUDIENCE`,
    /// `JWT_ISSUER`, `JWT_ROLE_MAP`).
    pub jwt_policy: TokenPolicy,
    pub api_keys: Vec<String>,
    pub yer_exchange_rate: Option<Decimal>,
    pub invoice_due_days: u32,
    pub past_due_grace_days: u32,
    pub suspend_after_days: u32,
    pub stripe_api_key: Option<String>,
    pub stripe_webhook_secret: Option<String>,
    pub stripe_api_base: String,
    /// How long one gateway call may take (`GATEWAY_TIMEOUT_SECS`, default 30).
    pub gateway_timeout: Duration,
    pub tharwatt_base_url: Option<String>,
    pub tharwatt_api_key: Option<String>,
    pub tharwatt_merchant_id: Option<String>,
    pub tharwatt_webhook_secret: Option<String>,
    /// Where Tharwatt posts payment results (our `/api/v1/webhooks/tharwatt` as the world sees it).
    pub tharwatt_callback_url: Option<String>,
    pub nats_url: Option<String>,
    pub redis_url: Option<String>,
    pub log_format: LogFormat,
    /// UTC hour at which the daily billing jobs run (`BILLING_RUN_HOUR`, default 2).
    pub billing_run_hour: u32,
    /// `SCHEDULER_ENABLED=false` turns the in-process scheduler off (e.g. a dedicated worker does it).
    pub scheduler_enabled: bool,
    /// `HSTS_MAX_AGE` (seconds): when set, every response carries `Strict-Transport-Security`.
    /// Unset by default: only whoever terminates TLS for the service knows it is served over it.
    pub hsts_max_age: Option<u32>,
    /// Request budgets per role (`RATE_LIMIT_*`).
    pub rate_limits: RateLimits,
    /// How long the usage path's cached quota contexts and counter levels are used
    /// (`USAGE_CACHE_TTL_MS`, default 1000, at most 10 000; 0 turns the caches off).
    pub usage_cache_ttl: Duration,
    /// `RUST_LOG`: which log lines are written (unset: `telemetry::DEFAULT_FILTER`).
    pub log_filter: Option<String>,
    /// `BILLING_PGDATA`: the embedded PostgreSQL's data folder (unset: `.pgdata`), relative to
    /// the working directory.
    pub embedded_pgdata: Option<PathBuf>,
    /// `NO_COLOR`: set to anything but empty, log lines carry no ANSI colours.
    pub no_color: Option<String>,
}

/// The secret used when none is configured outside production. Fixed, so tokens minted by
/// `billing-core token` keep working across restarts on a developer machine.
pub const DEV_JWT_SECRET: &str = "sahool-billing-dev-secret-change-me";

#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads the process environment, after loading `.env` if one exists. The one place the
    /// service reads its environment: everything else gets its settings from the result.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let environment = environment(&var)?;
        let jwt_secret = jwt_secret(&var, environment)?;
        let jwt_policy = jwt_policy(&var)?;
        let yer_exchange_rate = yer_exchange_rate(&var)?;
        let log_format = log_format(&var, environment)?;
        Ok(Config {
            database_url: var("DATABASE_URL"),
            db_pool_size: parse_num(&var, "DB_POOL_SIZE", 20, 1, 1000)?,
            db_max_overflow: parse_num(&var, "DB_MAX_OVERFLOW", 40, 0, 1000)?,
            db_pool_timeout: Duration::from_secs(
                parse_num(&var, "DB_POOL_TIMEOUT", 30, 1, 3600)?.into(),
            ),
            db_pool_recycle: Duration::from_secs(
                parse_num(&var, "DB_POOL_RECYCLE", 3600, 1, 86_400 * 7)?.into(),
            ),
            environment,
            port: parse_num(&var, "PORT", 8089, 0, 65535)? as u16,
            jwt_secret,
            jwt_policy,
            api_keys: var("AUTH_API_KEYS")
                .map(|v| comma_list(&v))
                .unwrap_or_default(),
            yer_exchange_rate,
            invoice_due_days: parse_num(&var, "INVOICE_DUE_DAYS", 7, 0, 365)?,
            past_due_grace_days: parse_num(&var, "PAST_DUE_GRACE_DAYS", 14, 0, 365)?,
            suspend_after_days: parse_num(&var, "SUSPEND_AFTER_DAYS", 30, 0, 365)?,
            stripe_api_key: var("STRIPE_API_KEY"),
            stripe_webhook_secret: var("STRIPE_WEBHOOK_SECRET"),
            stripe_api_base: var("STRIPE_API_BASE")
                .unwrap_or_else(|| "https://api.stripe.com".to_string()),
            gateway_timeout: Duration::from_secs(
                parse_num(&var, "GATEWAY_TIMEOUT_SECS", 30, 1, 300)?.into(),
            ),
            tharwatt_base_url: var("THARWATT_BASE_URL"),
            tharwatt_api_key: var("THARWATT_API_KEY"),
            tharwatt_merchant_id: var("THARWATT_MERCHANT_ID"),
            tharwatt_webhook_secret: var("THARWATT_WEBHOOK_SECRET"),
            tharwatt_callback_url: var("THARWATT_CALLBACK_URL"),
            nats_url: var("NATS_URL"),
            redis_url: var("REDIS_URL"),
            log_format,
            billing_run_hour: parse_num(&var, "BILLING_RUN_HOUR", 2, 0, 23)?,
            scheduler_enabled: parse_bool(&var, "SCHEDULER_ENABLED", true)?,
            // Up to two years, the longest the HSTS preload list asks for; 0 tells browsers to
            // forget an earlier policy.
            hsts_max_age: match var("HSTS_MAX_AGE") {
                None => None,
                Some(_) => Some(parse_num(&var, "HSTS_MAX_AGE", 0, 0, 63_072_000)?),
            },
            rate_limits: RateLimits::from_lookup(&get).map_err(ConfigError)?,
            usage_cache_ttl: usage_cache_ttl(&var)?,
            log_filter: var("RUST_LOG"),
            embedded_pgdata: var("BILLING_PGDATA").map(PathBuf::from),
            no_color: var("NO_COLOR"),
        })
    }

    /// Pool maximum: the base size plus the allowed overflow (the SQLAlchemy meaning).
    pub fn pool_max(&self) -> u32 {
        self.db_pool_size + self.db_max_overflow
    }

    /// A configuration for tests: development defaults with the given database.
    pub fn for_tests(database_url: &str) -> Self {
        let mut cfg = Self::from_lookup(|_| None).expect("defaults are valid");
        cfg.database_url = Some(database_url.to_string());
        cfg.environment = Environment::Test;
        cfg.db_pool_size = 5;
        cfg.db_max_overflow = 5;
        cfg.api_keys = vec!["test-service-key".to_string()];
        cfg
    }
}

fn environment(var: &impl Fn(&str) -> Option<String>) -> Result<Environment, ConfigError> {
    let Some(v) = var("ENVIRONMENT").map(|v| v.to_ascii_lowercase()) else {
        return Ok(Environment::Development);
    };
    match v.as_str() {
        "production" | "prod" => Ok(Environment::Production),
        "development" | "dev" => Ok(Environment::Development),
        "test" | "testing" => Ok(Environment::Test),
        other => Err(ConfigError(format!(
            "ENVIRONMENT must be production, development or test, not {other:?}"
        ))),
    }
}

fn yer_exchange_rate(
    var: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Decimal>, ConfigError> {
    let Some(v) = var("YER_EXCHANGE_RATE") else {
        return Ok(None);
    };
    let rate: Decimal = v.parse().map_err(|_| {
        ConfigError(format!(
            "YER_EXCHANGE_RATE must be a decimal number, not {v:?}"
        ))
    })?;
    if rate <= Decimal::ZERO {
        return Err(ConfigError("YER_EXCHANGE_RATE must be positive".into()));
    }
    Ok(Some(rate))
}

/// JSON in production unless told otherwise, readable text elsewhere.
fn log_format(
    var: &impl Fn(&str) -> Option<String>,
    environment: Environment,
) -> Result<LogFormat, ConfigError> {
    match var("LOG_FORMAT").as_deref() {
        None if environment == Environment::Production => Ok(LogFormat::Json),
        None => Ok(LogFormat::Pretty),
        Some("json") => Ok(LogFormat::Json),
        Some("pretty") => Ok(LogFormat::Pretty),
        Some(other) => Err(ConfigError(format!(
            "LOG_FORMAT must be json or pretty, not {other:?}"
        ))),
    }
}

fn parse_bool(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
) -> Result<bool, ConfigError> {
    match var(name).as_deref() {
        None => Ok(default),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(ConfigError(format!(
            "{name} must be true or false, not {other:?}"
        ))),
    }
}

fn comma_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// `JWT_SECRET`, or `JWT_SECRET_KEY` as every other SAHOOL service names it. Both set to
/// different values is a mistake that would reject one side's tokens: refuse to start.
fn jwt_secret(
    var: &impl Fn(&str) -> Option<String>,
    environment: Environment,
) -> Result<String, ConfigError> {
    let secret = match (var("JWT_SECRET"), var("JWT_SECRET_KEY")) {
        (Some(a), Some(b)) if a != b => {
            return Err(ConfigError(
                "JWT_SECRET and JWT_SECRET_KEY are both set and differ: set one of them (or both to the same secret)"
                    .into(),
            ))
        }
        (a, b) => a.or(b),
    };
    match secret {
        Some(s) if environment == Environment::Production && s.len() < 32 => Err(ConfigError(
            "JWT_SECRET (or JWT_SECRET_KEY) must be at least 32 characters in production".into(),
        )),
        Some(s) => Ok(s),
        None if environment == Environment::Production => Err(ConfigError(
            "JWT_SECRET (or JWT_SECRET_KEY) is required when ENVIRONMENT=production".into(),
        )),
        None => Ok(DEV_JWT_SECRET.to_string()),
    }
}

fn jwt_policy(var: &impl Fn(&str) -> Option<String>) -> Result<TokenPolicy, ConfigError> {
    let audiences: Vec<String> = match var("JWT_AUDIENCE") {
        None => vec![crate::auth::DEFAULT_AUDIENCE.to_string()],
        Some(v) => v
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect(),
    };
    if audiences.is_empty() {
        return Err(ConfigError("JWT_AUDIENCE names no audience".into()));
    }
    let role_map = match var("JWT_ROLE_MAP") {
        None => RoleMap::default(),
        Some(spec) => RoleMap::with_overrides(&spec).map_err(ConfigError)?,
    };
    Ok(TokenPolicy::new(audiences, var("JWT_ISSUER"), role_map))
}

/// `USAGE_CACHE_TTL_MS`; a longer TTL than 10 s is cut to 10 s (as it always was), since
/// enforce's staleness bound is this TTL.
fn usage_cache_ttl(var: &impl Fn(&str) -> Option<String>) -> Result<Duration, ConfigError> {
    let ms = match var("USAGE_CACHE_TTL_MS") {
        None => 1_000,
        Some(v) => v.parse::<u64>().map_err(|_| {
            ConfigError(format!(
                "USAGE_CACHE_TTL_MS must be a whole number of milliseconds, not {v:?}"
            ))
        })?,
    };
    Ok(Duration::from_millis(ms.min(10_000)))
}

fn parse_num(
    var: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    match var(key) {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ConfigError(format!(
                "{key} must be a whole number from {min} to {max}, not {v:?}"
            ))),
        },
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |o: &Option<String>| if o.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("database_url", &set(&self.database_url))
            .field("db_pool_size", &self.db_pool_size)
            .field("db_max_overflow", &self.db_max_overflow)
            .field("db_pool_timeout", &self.db_pool_timeout)
            .field("db_pool_recycle", &self.db_pool_recycle)
            .field("environment", &self.environment)
            .field("port", &self.port)
            .field("jwt_secret", &"<redacted>")
            .field("jwt_audiences", &self.jwt_policy.audiences)
            .field("jwt_issuer", &self.jwt_policy.issuer)
            .field("api_keys", &self.api_keys.len())
            .field("yer_exchange_rate", &self.yer_exchange_rate)
            .field("invoice_due_days", &self.invoice_due_days)
            .field("past_due_grace_days", &self.past_due_grace_days)
            .field("suspend_after_days", &self.suspend_after_days)
            .field("stripe_api_key", &set(&self.stripe_api_key))
            .field("stripe_api_base", &self.stripe_api_base)
            .field("tharwatt_base_url", &self.tharwatt_base_url)
            .field("tharwatt_api_key", &set(&self.tharwatt_api_key))
            .field("nats_url", &self.nats_url)
            .field("redis_url", &set(&self.redis_url))
            .field("log_format", &self.log_format)
            .field("billing_run_hour", &self.billing_run_hour)
            .field("scheduler_enabled", &self.scheduler_enabled)
            .field("hsts_max_age", &self.hsts_max_age)
            .field("rate_limits", &self.rate_limits)
            .field("usage_cache_ttl", &self.usage_cache_ttl)
            .field("log_filter", &self.log_filter)
            .field("embedded_pgdata", &self.embedded_pgdata)
            .field("no_color", &self.no_color)
            .finish()
    }
}

#[cfg(test)]
mod tests;
