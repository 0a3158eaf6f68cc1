//! The non-serve commands: `migrate`, `db init|embedded`, `token`. Each returns an exit code.

use std::io::{BufRead, Write};

use anyhow::{bail, Context};

use crate::auth::{issue_token, Role};
use crate::cli::{Command, DbCommand};
use crate::config::Config;

pub async fn run(command: Command, config: Config) -> anyhow::Result<u8> {
    match command {
        Command::Serve { .. } => unreachable!("serve is handled by main"),
        Command::Migrate => {
            let pool = pool(&config).await?;
            crate::db::migrate(&pool).await.context("applying migrations")?;
            let state = crate::db::migration_state(&pool).await?;
            println!("migrations applied: {} of {}", state.applied, state.known);
            Ok(0)
        }
        Command::Token { role, tenant, subject, ttl } => {
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role {role:?}: use super_admin, tenant_admin, tenant_user or service")
            })?;
            if matches!(role, Role::TenantAdmin | Role::TenantUser) && tenant.is_none() {
                bail!("--tenant is required for the {} role", role.as_str());
            }
            if let Some(t) = &tenant {
                crate::billing::types::TenantId::parse(t).map_err(anyhow::Error::msg)?;
            }
            println!("{}", issue_token(&config.jwt_secret, &subject, role, tenant.as_deref(), ttl)?);
            Ok(0)
        }
        Command::Db { command } => match command {
            DbCommand::Embedded { stop } => {
                if stop {
                    let stopped = tokio::task::spawn_blocking(crate::db::embedded::stop).await??;
                    println!("{}", if stopped { "embedded PostgreSQL stopped" } else { "embedded PostgreSQL was not running" });
                } else {
                    let url = tokio::task::spawn_blocking(crate::db::embedded::ensure_running).await??;
                    println!("{url}");
                }
                Ok(0)
            }
            DbCommand::Init { seed, drop, yes, check_only } => db_init(&config, seed, drop, yes, check_only).await,
        },
    }
}

async fn pool(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    let url = crate::db::resolve_database_url(config).await?;
    crate::db::connect(config, &url).await.context("connecting to PostgreSQL (check DATABASE_URL)")
}

async fn db_init(config: &Config, seed: bool, drop: bool, yes: bool, check_only: bool) -> anyhow::Result<u8> {
    if check_only {
        let url = crate::db::resolve_database_url(config).await?;
        let pool = match crate::db::connect(config, &url).await {
            Ok(p) => p,
            Err(e) => {
                println!("database: unreachable ({e})");
                return Ok(1);
            }
        };
        let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&pool).await?;
        let state = crate::db::migration_state(&pool).await?;
        println!("database: connected (PostgreSQL {version})");
        println!(
            "migrations: {} of {} applied{}{}",
            state.applied,
            state.known,
            if state.pending.is_empty() { String::new() } else { format!(", pending: {:?}", state.pending) },
            if state.dirty { ", a failed migration is recorded" } else { "" }
        );
        return Ok(if state.pending.is_empty() && !state.dirty { 0 } else { 3 });
    }
    let pool = pool(config).await?;
    if drop {
        if !yes && !confirm("Drop every billing table and all data in this database?")? {
            println!("aborted; nothing dropped");
            return Ok(1);
        }
        drop_all(&pool).await?;
        println!("dropped the schema");
    }
    crate::db::migrate(&pool).await.context("applying migrations")?;
    let state = crate::db::migration_state(&pool).await?;
    println!("schema ready: {} migrations applied", state.applied);
    if seed {
        let report = crate::seed::seed(&pool).await?;
        println!("{report}");
    }
    Ok(0)
}

fn confirm(question: &str) -> anyhow::Result<bool> {
    print!("{question} Type 'yes' to continue: ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim() == "yes")
}

/// Drops the public schema's contents (tables, types, functions) and the migration history.
async fn drop_all(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("DROP SCHEMA public CASCADE").execute(&mut *tx).await?;
    sqlx::query("CREATE SCHEMA public").execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}
