//! Database access: the pool, the migrator, and the embedded local PostgreSQL.

pub mod embedded;
pub mod health;

use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::Config;

/// The SQL files in `migrations/`, compiled in. `sqlx migrate run` applies the same files.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The URL to use: `DATABASE_URL` when set, otherwise the embedded server (started if needed).
pub async fn resolve_database_url(config: &Config) -> anyhow::Result<String> {
    match &config.database_url {
        Some(url) => Ok(url.clone()),
        None => {
            let pgdata = config.embedded_pgdata.clone();
            let url =
                tokio::task::spawn_blocking(move || embedded::ensure_running(pgdata.as_deref()))
                    .await??;
            Ok(url)
        }
    }
}

/// The longest a request waits for a connection, whatever `DB_POOL_TIMEOUT` says: sqlx keeps
/// retrying a refused connect until the wait is over, so a longer wait would hold every request
/// for that long while the database is down (SPEC section 8: 503 within 2 s).
pub const ACQUIRE_TIMEOUT_MAX: std::time::Duration = std::time::Duration::from_millis(1500);

/// Builds the pool from `DB_POOL_SIZE` (+ `DB_MAX_OVERFLOW`), `DB_POOL_TIMEOUT`, `DB_POOL_RECYCLE`.
/// Waits up to `DB_POOL_TIMEOUT` for a first connection (a database still starting up), while a
/// request later waits at most [`ACQUIRE_TIMEOUT_MAX`].
pub async fn connect(config: &Config, url: &str) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(url)?.application_name("billing-core");
    let pool = pool_options(&options, config.pool_max(), config.db_pool_timeout)
        .min_connections(0)
        .max_lifetime(config.db_pool_recycle)
        .idle_timeout(std::time::Duration::from_secs(600))
        .connect_lazy_with(options);
    let deadline = tokio::time::Instant::now() + config.db_pool_timeout;
    loop {
        match pool.acquire().await {
            Ok(_) => return Ok(pool),
            Err(e) if not_up_yet(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(health::PROBE_EVERY).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// A database that may still be starting: nothing listens yet, or the connection was dropped. A
/// TLS failure (reported as I/O too) or a refused login will not go away by waiting.
fn not_up_yet(e: &sqlx::Error) -> bool {
    use std::io::ErrorKind::*;
    match e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ConnectionRefused | ConnectionReset | ConnectionAborted | UnexpectedEof | TimedOut
        ),
        _ => false,
    }
}

/// What every pool on the database shares: the bounded wait, and dropping connections opened
/// before an outage (see [`health`]).
fn pool_options(
    options: &PgConnectOptions,
    max: u32,
    timeout: std::time::Duration,
) -> PgPoolOptions {
    let health = health::of(options);
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(timeout.min(ACQUIRE_TIMEOUT_MAX))
        // No ping before every checkout (a round trip per request); a connection that broke
        // fails its query, and sqlx closes it instead of returning it to the pool.
        .test_before_acquire(false)
        .before_acquire(move |_, meta| {
            let keep = health.survives(meta.age);
            Box::pin(async move { Ok(keep) })
        })
}

/// A small pool of its own on the same database and options as `main`, for a path that keeps a
/// few connections busy all the time (the usage group commit): they stay warm and never queue
/// behind the main pool. Connects lazily; call it inside the runtime.
pub fn side_pool(main: &PgPool, connections: u32) -> PgPool {
    let options = main.connect_options();
    pool_options(&options, connections, main.options().get_acquire_timeout())
        .connect_lazy_with((*options).clone())
}

/// Applies pending migrations. sqlx takes a PostgreSQL advisory lock around the run, so two
/// replicas starting together apply each migration once.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Months of `usage_records` partitions kept ready ahead of the current one.
pub const USAGE_PARTITIONS_AHEAD: i32 = 3;

/// Creates the missing monthly `usage_records` partitions from this month to
/// [`USAGE_PARTITIONS_AHEAD`] months ahead (run at `serve` start and by the daily job); returns
/// how many were created. Rows outside them land in the DEFAULT partition.
pub async fn ensure_usage_partitions(pool: &PgPool) -> sqlx::Result<i32> {
    let created = sqlx::query_scalar!(
        r#"SELECT ensure_usage_partitions($1) AS "created!""#,
        USAGE_PARTITIONS_AHEAD
    )
    .fetch_one(pool)
    .await?;
    if created > 0 {
        tracing::info!(created, "usage_records partitions created");
    }
    Ok(created)
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationState {
    pub known: usize,
    pub applied: usize,
    pub pending: Vec<i64>,
    pub dirty: bool,
}

/// Compares the compiled-in migrations with `_sqlx_migrations`. Runtime queries: sqlx's own
/// bookkeeping table is not part of migrations/ and may not exist yet (checked first).
pub async fn migration_state(pool: &PgPool) -> Result<MigrationState, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")
            .fetch_one(pool)
            .await?;
    let applied: Vec<(i64, bool)> = if exists {
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    let pending = MIGRATOR
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .filter(|v| !applied.iter().any(|(a, ok)| a == v && *ok))
        .collect();
    Ok(MigrationState {
        known: MIGRATOR.iter().count(),
        applied: applied.iter().filter(|(_, ok)| *ok).count(),
        pending,
        dirty: applied.iter().any(|(_, ok)| !ok),
    })
}

/// Applies `YER_EXCHANGE_RATE` when it is set and differs from the rate in force today, as a
/// new rate effective today — but only while the rate in force is the migration's seed or an
/// earlier value from this variable. A rate staff set through the API is never overwritten by
/// a restart. Catalogue data is never rewritten at start-up; rates are history.
pub async fn sync_configured_rates(
    pool: &PgPool,
    config: &Config,
    today: chrono::NaiveDate,
) -> anyhow::Result<()> {
    if let Some(rate) = config.yer_exchange_rate {
        let current = sqlx::query!(
            "SELECT rate, source FROM exchange_rates WHERE currency = 'YER' AND effective_date <= $1
             ORDER BY effective_date DESC LIMIT 1",
            today
        )
        .fetch_optional(pool)
        .await?
        .map(|r| (r.rate, r.source));
        let replaceable = match &current {
            None => true,
            Some((r, source)) => *r != rate && (source == "seed" || source == ENV_SOURCE),
        };
        if replaceable {
            sqlx::query!(
                "INSERT INTO exchange_rates (currency, effective_date, rate, source)
                 VALUES ('YER', $1, $2, $3)
                 ON CONFLICT (currency, effective_date) DO UPDATE SET rate = EXCLUDED.rate,
                     source = EXCLUDED.source",
                today,
                rate,
                ENV_SOURCE
            )
            .execute(pool)
            .await?;
            tracing::info!(
                currency = "YER",
                "exchange rate from YER_EXCHANGE_RATE in force from today"
            );
        } else if current.as_ref().is_some_and(|(r, _)| *r != rate) {
            tracing::warn!(
                currency = "YER",
                "YER_EXCHANGE_RATE differs from a rate set through the API; the API's rate stays"
            );
        }
    }
    Ok(())
}

const ENV_SOURCE: &str = "env:YER_EXCHANGE_RATE";
