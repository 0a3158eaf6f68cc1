//! A short-lived, in-process cache of the plan and subscription state the enforce check needs
//! (tenant → live subscription, status, period, plan overage policy, metric kind and limit),
//! so `GET /enforce` does one primary-key read on `usage_counters` instead of a five-table join.
//!
//! Why a process-wide map and not a field of `AppState`: the state is owned elsewhere, and a
//! cache per pool is what we need anyway. Entries are keyed by the pool's database identity
//! (host, port, socket, database name) plus tenant and metric, so two pools on different
//! databases in one process (tests, a second "replica") never see each other's entries.
//!
//! Staleness bound: an entry is used for at most `ttl()` (1 s by default, `USAGE_CACHE_TTL_MS`
//! to change it, 0 to disable) after it was read, measured on the monotonic clock. So a plan
//! change, suspension or cancellation made by any process reaches enforce within the TTL;
//! `invalidate_tenant` makes it immediate for writes made in this process. The billing period
//! itself is recomputed from the cached period fields on every request, so a period rollover
//! is never stale. The usage write path (`POST .../usage`) always reads fresh state.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::PgPool;

use crate::repository::usage::{QuotaContext, UsageRepository};

/// Above this many entries, expired ones are swept; if that is not enough the map is cleared
/// (a burst of distinct tenants must not grow memory without bound).
const MAX_ENTRIES: usize = 100_000;
const DEFAULT_TTL_MS: u64 = 1_000;

struct Entry {
    at: Instant,
    ctx: QuotaContext,
}

fn map() -> &'static Mutex<HashMap<String, Entry>> {
    static MAP: OnceLock<Mutex<HashMap<String, Entry>>> = OnceLock::new();
    MAP.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The time an entry stays usable; read once from `USAGE_CACHE_TTL_MS` (max 10 s).
pub fn ttl() -> Duration {
    static TTL: OnceLock<Duration> = OnceLock::new();
    *TTL.get_or_init(|| {
        let ms = std::env::var("USAGE_CACHE_TTL_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_TTL_MS)
            .min(10_000);
        Duration::from_millis(ms)
    })
}

fn database_key(pool: &PgPool) -> String {
    let o = pool.connect_options();
    format!(
        "{}:{}:{}:{}",
        o.get_host(),
        o.get_port(),
        o.get_socket()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        o.get_database().unwrap_or_default()
    )
}

fn entry_key(db: &str, tenant_id: &str, metric: &str) -> String {
    // NUL cannot occur in a tenant id or a metric name, so keys cannot collide.
    format!("{db}\0{tenant_id}\0{metric}")
}

/// The quota context of (tenant, metric), from the cache when fresh, else from the database.
/// `None` when the tenant does not exist (never cached, so a new tenant is seen at once).
pub async fn quota_context(
    pool: &PgPool,
    tenant_id: &str,
    metric: &str,
) -> sqlx::Result<Option<QuotaContext>> {
    let ttl = ttl();
    let key = entry_key(&database_key(pool), tenant_id, metric);
    if !ttl.is_zero() {
        let guard = map().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = guard.get(&key) {
            if e.at.elapsed() < ttl {
                return Ok(Some(e.ctx.clone()));
            }
        }
    }
    let mut conn = pool.acquire().await?;
    let loaded_at = Instant::now();
    let ctx = UsageRepository::quota_context(&mut conn, tenant_id, metric).await?;
    if let (Some(ctx), false) = (&ctx, ttl.is_zero()) {
        let mut guard = map().lock().unwrap_or_else(|e| e.into_inner());
        if guard.len() >= MAX_ENTRIES {
            guard.retain(|_, e| e.at.elapsed() < ttl);
            if guard.len() >= MAX_ENTRIES {
                guard.clear();
            }
        }
        // Stamped with the time the read started, so the bound holds from the database's view.
        guard.insert(
            key,
            Entry {
                at: loaded_at,
                ctx: ctx.clone(),
            },
        );
    }
    Ok(ctx)
}

/// Drops every cached entry of `tenant_id` (all databases, all metrics). Call it after a
/// write that changes the tenant's plan or subscription status, to skip the TTL wait.
pub fn invalidate_tenant(tenant_id: &str) {
    let needle = format!("\0{tenant_id}\0");
    let mut guard = map().lock().unwrap_or_else(|e| e.into_inner());
    guard.retain(|k, _| !k.contains(&needle));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_databases_tenants_and_metrics() {
        assert_ne!(entry_key("db1", "t", "m"), entry_key("db2", "t", "m"));
        assert_ne!(entry_key("db", "t1", "m"), entry_key("db", "t", "1m"));
        assert!(entry_key("db", "farm-1", "fields").contains("\0farm-1\0"));
    }
}
