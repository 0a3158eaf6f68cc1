//! Shared application state handed to every handler and job.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgPool;

use crate::config::Config;

/// Time is injected so tests and `bill --date` can travel.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock a test can set and advance.
#[derive(Default)]
pub struct ManualClock(std::sync::Mutex<Option<DateTime<Utc>>>);

impl ManualClock {
    pub fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .unwrap_or_else(Utc::now)
    }
}

/// The state every handler and middleware receives. Axum clones it several times per request
/// (each layer with state, each `State` extractor), so it is one reference count, not one per
/// field: on two cores serving tens of thousands of requests a second, every shared counter
/// that both cores bump is a cache line they pass back and forth.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Clone)]
pub struct Shared {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// The usage path's caches of quota contexts and counter levels (see
    /// `services::usage::cache`).
    pub usage_cache: crate::services::usage::cache::UsageCache,
    /// Group commit for single usage events (see `services::usage::coalesce`).
    pub usage_writer: crate::services::usage::coalesce::Writer,
    /// Usage batches written at once. Every batch raises counters of many tenants, so more
    /// batches at a time only queue on the same counter rows inside PostgreSQL; waiting for a
    /// slot here (before the body is parsed, without a connection) keeps the throughput of a
    /// few and the memory of a few parsed bodies.
    pub batch_slots: Arc<tokio::sync::Semaphore>,
    /// Whether the database is known to be down (see `db::health`).
    pub db_health: Arc<crate::db::health::DbHealth>,
    /// What the outbox relay is doing (`/readyz` reports it).
    pub relay_health: crate::jobs::outbox_relay::RelayHealth,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(pool: PgPool, config: Config) -> Self {
        AppState(Arc::new(Shared {
            db_health: crate::db::health::of(&pool.connect_options()),
            usage_cache: crate::services::usage::cache::UsageCache::new(
                pool.clone(),
                config.usage_cache_ttl,
            ),
            pool,
            config: Arc::new(config),
            clock: Arc::new(SystemClock),
            usage_writer: Default::default(),
            batch_slots: Arc::new(tokio::sync::Semaphore::new(batch_slots())),
            relay_health: Default::default(),
        }))
    }

    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let mut shared = Arc::unwrap_or_clone(self.0);
        shared.clock = clock;
        AppState(Arc::new(shared))
    }
}

/// One batch writer per core (at least two).
fn batch_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().max(2))
}
