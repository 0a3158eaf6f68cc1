//! The non-serve commands: `migrate`, `db init|embedded`, `token`. Each returns an exit code.

use std::io::{BufRead, IsTerminal, Write};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::auth::{issue_token, Role};
use crate::cli::{Command, DbCommand};
use crate::config::Config;

/// `token`: prints a signed token for the role (and tenant).
fn token(
    config: &Config,
    role: &str,
    tenant: Option<&str>,
    subject: &str,
    ttl: i64,
) -> anyhow::Result<u8> {
    let role = Role::parse(role).with_context(|| {
        format!("unknown role {role:?}: use super_admin, tenant_admin, tenant_user or service")
    })?;
    if matches!(role, Role::TenantAdmin | Role::TenantUser) && tenant.is_none() {
        bail!("--tenant is required for the {} role", role.as_str());
    }
    if let Some(t) = tenant {
        crate::billing::types::TenantId::parse(t).map_err(anyhow::Error::msg)?;
    }
    println!(
        "{}",
        issue_token(&config.jwt_secret, subject, role, tenant, ttl)?
    );
    Ok(0)
}

/// `db embedded [--stop]`: starts (or reuses) the embedded server and prints its URL, or stops it.
async fn embedded(config: &Config, stop: bool) -> anyhow::Result<u8> {
    let pgdata = config.embedded_pgdata.clone();
    if stop {
        let stopped =
            tokio::task::spawn_blocking(move || crate::db::embedded::stop(pgdata.as_deref()))
                .await??;
        println!(
            "{}",
            if stopped {
                "embedded PostgreSQL stopped"
            } else {
                "embedded PostgreSQL was not running"
            }
        );
    } else {
        let url = tokio::task::spawn_blocking(move || {
            crate::db::embedded::ensure_running(pgdata.as_deref())
        })
        .await??;
        println!("{url}");
    }
    Ok(0)
}

/// How long a command waits for PostgreSQL to answer before giving up. Commands are run by
/// people and deploy scripts, who should hear about a wrong DATABASE_URL in seconds, not after
/// the service's pool timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn run(command: Command, config: Config) -> anyhow::Result<u8> {
    match command {
        Command::Serve { no_migrate } => {
            crate::server::serve(config, !no_migrate).await.map(|()| 0)
        }
        Command::Migrate => {
            let (pool, _) = pool(&config).await?;
            crate::db::migrate(&pool)
                .await
                .context("applying migrations")?;
            let state = crate::db::migration_state(&pool).await?;
            println!("migrations applied: {} of {}", state.applied, state.known);
            Ok(0)
        }
        Command::Bill { date, migrate } => {
            let (pool, _) = pool(&config).await?;
            if migrate {
                crate::db::migrate(&pool)
                    .await
                    .context("applying migrations")?;
            }
            bill(&pool, &config, date).await
        }
        Command::Token {
            role,
            tenant,
            subject,
            ttl,
        } => token(&config, &role, tenant.as_deref(), &subject, ttl),
        Command::Db { command } => match command {
            DbCommand::Embedded { stop } => embedded(&config, stop).await,
            DbCommand::Init {
                seed,
                drop,
                yes,
                check_only,
            } => {
                if check_only {
                    check(&config).await
                } else {
                    db_init(&config, seed, drop, yes).await
                }
            }
        },
    }
}

/// `user@host:port/database`, for messages: never the password.
fn describe(url: &str) -> String {
    match PgConnectOptions::from_str(url) {
        Ok(o) => format!(
            "{}@{}:{}/{}",
            o.get_username(),
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("")
        ),
        Err(_) => "an unparsable DATABASE_URL".to_string(),
    }
}

/// One direct connection attempt, bounded by CONNECT_TIMEOUT, so the driver's own reason
/// ("connection refused", "password authentication failed") reaches the user.
async fn probe(url: &str) -> anyhow::Result<String> {
    let options =
        PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid PostgreSQL URL")?;
    let mut conn = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| anyhow!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))??;
    let version = sqlx::query_scalar!(r#"SELECT current_setting('server_version') AS "v!""#)
        .fetch_one(&mut conn)
        .await?;
    let _ = conn.close().await;
    Ok(version)
}

/// The database a command works on: resolved, probed, and a small pool on it.
async fn pool(config: &Config) -> anyhow::Result<(sqlx::PgPool, String)> {
    let url = crate::db::resolve_database_url(config).await?;
    probe(&url).await.with_context(|| {
        format!(
            "connecting to PostgreSQL at {} (check DATABASE_URL)",
            describe(&url)
        )
    })?;
    Ok((small_pool(config, &url).await?, url))
}

/// Commands need two connections at most, and fail fast rather than queue.
async fn small_pool(config: &Config, url: &str) -> anyhow::Result<sqlx::PgPool> {
    let mut small = config.clone();
    small.db_pool_size = 2;
    small.db_max_overflow = 0;
    small.db_pool_timeout = CONNECT_TIMEOUT;
    crate::db::connect(&small, url)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", describe(url)))
}

/// `db init --check-only`: 0 reachable and migrated, 1 unreachable, 3 migrations pending.
async fn check(config: &Config) -> anyhow::Result<u8> {
    let url = crate::db::resolve_database_url(config).await?;
    let target = describe(&url);
    let version = match probe(&url).await {
        Ok(v) => v,
        Err(e) => {
            println!("database: unreachable at {target} ({e})");
            return Ok(1);
        }
    };
    println!("database: connected to {target} (PostgreSQL {version})");
    let pool = small_pool(config, &url).await?;
    let state = crate::db::migration_state(&pool).await?;
    println!(
        "migrations: {} of {} applied{}{}",
        state.applied,
        state.known,
        if state.pending.is_empty() {
            String::new()
        } else {
            format!(", pending: {:?}", state.pending)
        },
        if state.dirty {
            ", a failed migration is recorded"
        } else {
            ""
        }
    );
    pool.close().await;
    Ok(if state.pending.is_empty() && !state.dirty {
        0
    } else {
        3
    })
}

async fn db_init(config: &Config, seed: bool, drop: bool, yes: bool) -> anyhow::Result<u8> {
    let (pool, url) = pool(config).await?;
    if drop {
        let question = format!(
            "Drop every billing table and all data in {}?",
            describe(&url)
        );
        if !yes && !confirm(&question)? {
            println!("aborted; nothing dropped");
            return Ok(1);
        }
        drop_all(&pool).await?;
        println!("dropped the schema");
    }
    crate::db::migrate(&pool)
        .await
        .context("applying migrations")?;
    let state = crate::db::migration_state(&pool).await?;
    println!("schema ready: {} migrations applied", state.applied);
    if seed {
        let report = crate::seed::seed(&pool, config.invoice_due_days).await?;
        println!("{report}");
    }
    pool.close().await;
    Ok(0)
}

/// Asks on the terminal. Without one (CI, a closed or piped stdin) the answer is "no": a drop
/// must be a person's decision or an explicit `--yes`.
fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        println!("{question} No terminal to ask on; pass --yes to drop without asking.");
        return Ok(false);
    }
    print!("{question} Type 'yes' to continue: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == "yes")
}

/// Drops the public schema's contents (tables, types, functions) and the migration history.
async fn drop_all(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query!("DROP SCHEMA public CASCADE")
        .execute(&mut *tx)
        .await?;
    sqlx::query!("CREATE SCHEMA public")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// `bill --date`: the daily jobs as of `date`, with progress on stderr for large runs.
async fn bill(
    pool: &sqlx::PgPool,
    config: &Config,
    date: Option<chrono::NaiveDate>,
) -> anyhow::Result<u8> {
    let now = chrono::Utc::now();
    let at = match date {
        Some(d) => d.and_time(now.time()).and_utc(),
        None => now,
    };
    let started = std::time::Instant::now();
    let mut last_print = std::time::Instant::now();
    let report = crate::jobs::run_daily(pool, config, at, |r| {
        if last_print.elapsed() >= Duration::from_secs(2) {
            last_print = std::time::Instant::now();
            eprintln!(
                "billing {}: {} subscriptions processed, {} invoices issued ({:.1} s)",
                at.date_naive(),
                r.subscriptions_processed,
                r.invoices_issued,
                started.elapsed().as_secs_f64()
            );
        }
    })
    .await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(0)
}
