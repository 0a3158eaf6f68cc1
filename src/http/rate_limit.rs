//! Request rate limiting per principal, with a budget per role.
//!
//! Who is counted: a tenant role counts against its tenant (every user of the tenant with that
//! role shares one budget), a service against its API key's digest (or its token subject), a
//! super admin against its subject, and an anonymous caller (no credentials, or credentials
//! that do not verify — the handler answers 401 for those) against the IP address of the
//! socket. Headers a client chooses (`X-Forwarded-For`, any "tier" header) are never read: a
//! client could otherwise pick its own bucket.
//!
//! The algorithm is GCRA (a token bucket kept as one timestamp per key): a budget of N per
//! minute allows a burst of N and then one request every 60/N seconds. The state lives in this
//! process, so with R replicas behind a balancer a principal can make up to R × N requests a
//! minute; divide the configured budgets by the replica count if that matters.
//!
//! The budgets are part of the configuration (`config::RateLimits`, `RATE_LIMIT_*`), read at
//! start with the rest of it.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{authenticate, Role};
use crate::error::AppError;
use crate::state::AppState;

const WINDOW: Duration = Duration::from_secs(60);
/// Independent locks, so concurrent requests of different principals rarely wait on each other.
const SHARDS: usize = 16;
/// Keys are pruned when a shard grows past this; a pruned key had a full bucket anyway.
const PRUNE_AT: usize = 10_000;

/// Routes that are never limited: probes and scrapes must work while a caller is throttled,
/// the API description is static, and webhooks are the gateways' retries (throttling them only
/// delays settlements; they are authenticated by signature, not by principal).
pub fn is_exempt(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/openapi.json" | "/docs"
    ) || crate::api_path::api_route(path).is_some_and(|r| r.starts_with("/webhooks/"))
}

/// The budget class of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    SuperAdmin,
    TenantAdmin,
    TenantUser,
    Service,
    Anonymous,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::SuperAdmin => "super_admin",
            Tier::TenantAdmin => "tenant_admin",
            Tier::TenantUser => "tenant_user",
            Tier::Service => "service",
            Tier::Anonymous => "anonymous",
        }
    }

    fn of(role: Role) -> Tier {
        match role {
            Role::SuperAdmin => Tier::SuperAdmin,
            Role::TenantAdmin => Tier::TenantAdmin,
            Role::TenantUser => Tier::TenantUser,
            Role::Service => Tier::Service,
        }
    }
}

pub use crate::config::RateLimits;

impl RateLimits {
    pub fn per_minute(&self, tier: Tier) -> u32 {
        match tier {
            Tier::SuperAdmin => self.super_admin,
            Tier::TenantAdmin => self.tenant_admin,
            Tier::TenantUser => self.tenant_user,
            Tier::Service => self.service,
            Tier::Anonymous => self.anonymous,
        }
    }
}

/// What one check decided, with the figures for the response headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the whole budget is available again.
    pub reset_secs: u64,
    /// Seconds until the next request would be allowed (0 when allowed now).
    pub retry_after_secs: u64,
}

#[derive(Default)]
struct Shard {
    /// Theoretical arrival time per key: the bucket is full again at this instant.
    tat: HashMap<String, Instant>,
    prune_at: usize,
}

/// The limiter's state; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    app: AppState,
    limits: RateLimits,
    shards: Vec<Mutex<Shard>>,
}

impl RateLimiter {
    pub fn new(app: AppState, limits: RateLimits) -> Self {
        let shards = (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect();
        RateLimiter {
            inner: Arc::new(Inner {
                app,
                limits,
                shards,
            }),
        }
    }

    pub fn limits(&self) -> RateLimits {
        self.inner.limits
    }

    /// The bucket key and tier of a request. Authentication errors make the caller anonymous
    /// here; the handler still rejects them with 401. A caller that authenticated is left in
    /// the request's extensions, so the handler's `Principal` does not verify it again.
    fn identify(&self, parts: &mut Parts) -> (Tier, String) {
        if let Ok(Some(p)) = authenticate(&self.inner.app, parts) {
            // A principal holding several roles gets its most generous budget.
            let limits = &self.inner.limits;
            let tier = p
                .roles
                .iter()
                .map(|r| Tier::of(*r))
                .max_by_key(|t| limits.per_minute(*t))
                .unwrap_or(Tier::Anonymous);
            // `scope` is `tenant:<id>`, `apikey:<digest>` or `user:<subject>`: exactly the
            // identities the budget belongs to, and never a raw key or token.
            let key = format!("{}|{}", tier.as_str(), p.scope);
            parts.extensions.insert(p);
            return (tier, key);
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| peer_key(addr.ip()));
        // Without the socket address (a server not started with connect info) all anonymous
        // callers share one budget: stricter, never looser.
        let peer = peer.unwrap_or_else(|| "unknown".to_string());
        (Tier::Anonymous, format!("anonymous|ip:{peer}"))
    }

    /// One request against `key`'s budget of `per_minute` (GCRA).
    pub fn check(&self, key: &str, per_minute: u32, now: Instant) -> Decision {
        let per_minute = per_minute.max(1);
        let interval = WINDOW / per_minute;
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let shard = &self.inner.shards[(h.finish() as usize) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let tat = shard
            .tat
            .get(key)
            .copied()
            .filter(|t| *t > now)
            .unwrap_or(now);
        let next = tat + interval;
        let ahead = next - now;
        if ahead > WINDOW {
            let wait = ahead - WINDOW;
            return Decision {
                allowed: false,
                limit: per_minute,
                remaining: 0,
                reset_secs: ceil_secs(tat - now),
                retry_after_secs: ceil_secs(wait).max(1),
            };
        }
        let remaining = ((WINDOW - ahead).as_nanos() / interval.as_nanos().max(1)) as u32;
        shard.tat.insert(key.to_string(), next);
        if shard.tat.len() > shard.prune_at.max(PRUNE_AT) {
            shard.tat.retain(|_, t| *t > now);
            shard.prune_at = shard.tat.len() * 2;
        }
        Decision {
            allowed: true,
            limit: per_minute,
            remaining,
            reset_secs: ceil_secs(ahead),
            retry_after_secs: 0,
        }
    }
}

/// An IPv4 address as is; IPv6 by its /64, since one subscriber usually holds a whole /64 and
/// could otherwise take a fresh budget per address.
fn peer_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    let mut put = |name: &'static str, v: u64| {
        headers.insert(name, HeaderValue::from(v));
    };
    put("x-ratelimit-limit", u64::from(d.limit));
    put("x-ratelimit-remaining", u64::from(d.remaining));
    put("x-ratelimit-reset", d.reset_secs);
    if !d.allowed {
        put("retry-after", d.retry_after_secs);
    }
}

/// The middleware: `middleware::from_fn_with_state(RateLimiter::new(..), rate_limit::enforce)`.
pub async fn enforce(State(limiter): State<RateLimiter>, req: Request, next: Next) -> Response {
    if !limiter.inner.limits.enabled || is_exempt(req.uri().path()) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let (tier, key) = limiter.identify(&mut parts);
    let decision = limiter.check(&key, limiter.inner.limits.per_minute(tier), Instant::now());
    if !decision.allowed {
        metrics::counter!("http_rate_limited_total", "tier" => tier.as_str()).increment(1);
        tracing::info!(rate_limit.tier = tier.as_str(), "request rate limited");
        let mut resp = AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "Too many requests: the limit is {} per minute; retry in {} s",
                decision.limit, decision.retry_after_secs
            ),
            "تم تجاوز الحد المسموح به من الطلبات، يرجى المحاولة لاحقاً",
        )
        .with_extra("retry_after", decision.retry_after_secs)
        .into_response();
        set_headers(resp.headers_mut(), &decision);
        return resp;
    }
    let mut resp = next.run(Request::from_parts(parts, body)).await;
    set_headers(resp.headers_mut(), &decision);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> RateLimiter {
        let config = crate::config::Config::for_tests("postgres://unused/db");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .connect_lazy("postgres://unused/db")
            .unwrap();
        RateLimiter::new(AppState::new(pool, config), RateLimits::default())
    }

    #[tokio::test]
    async fn a_budget_allows_a_burst_of_its_size_then_one_per_interval() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..3 {
            let d = l.check("k", 3, t0);
            assert!(d.allowed);
            assert_eq!(d.remaining, 2 - i);
        }
        let denied = l.check("k", 3, t0);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after_secs, 20);
        assert_eq!(denied.reset_secs, 60);
        assert!(!l.check("k", 3, t0 + Duration::from_secs(19)).allowed);
        let later = l.check("k", 3, t0 + Duration::from_secs(20));
        assert!(later.allowed);
        assert_eq!(later.remaining, 0);
        assert!(l.check("other", 3, t0).allowed);
    }

    #[tokio::test]
    async fn full_buckets_are_pruned_without_changing_any_decision() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..(PRUNE_AT * SHARDS + 500) {
            l.check(&format!("k{i}"), 60, t0);
        }
        let later = t0 + Duration::from_secs(2);
        for i in 0..(PRUNE_AT * SHARDS) {
            l.check(&format!("n{i}"), 60, later);
        }
        let total: usize = l
            .inner
            .shards
            .iter()
            .map(|s| s.lock().unwrap().tat.len())
            .sum();
        assert!(total < PRUNE_AT * SHARDS * 2, "{total} keys kept");
        let d = l.check("k1", 60, later);
        assert!(d.allowed && d.remaining == 59);
    }

    #[test]
    fn ipv6_callers_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_eq!(peer_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn probes_docs_and_webhooks_are_exempt_and_nothing_else() {
        for p in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/v1/webhooks/stripe",
            "/api/v1/webhooks/tharwatt",
            "/api/v1/billing/webhooks/stripe",
        ] {
            assert!(is_exempt(p), "{p}");
        }
        for p in [
            "/v1/plans",
            "/api/v1/tenants",
            "/healthz/x",
            "/v1/webhooksx",
            "/api/v1/billing/plans",
            "/docs/x",
        ] {
            assert!(!is_exempt(p), "{p}");
        }
    }
}
