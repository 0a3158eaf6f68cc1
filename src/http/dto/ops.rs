//! The operator endpoints' answers: liveness (`/healthz`) and readiness (`/readyz`). Members
//! in the order always sent (alphabetical).

use serde::Serialize;
use utoipa::ToSchema;

/// `healthy`, or `degraded` while the database does not answer.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    Degraded,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseStatus {
    Connected,
    Disconnected,
}

/// The service's name, always `billing-core`.
#[derive(Clone, Copy, Serialize, ToSchema)]
pub enum ServiceName {
    #[serde(rename = "billing-core")]
    BillingCore,
}

/// The database kind, always `postgresql`.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    Postgresql,
}

/// Liveness: always 200; `degraded` while the database does not answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub database: HealthDatabase,
    pub service: ServiceName,
    pub status: HealthStatus,
    #[schema(value_type = String)]
    pub version: &'static str,
}

/// The database pool as this instance sees it.
#[derive(Serialize, ToSchema)]
pub struct HealthDatabase {
    /// `DB_POOL_SIZE`.
    pub configured_pool_size: u32,
    pub database: DatabaseKind,
    /// Open connections not in use.
    pub idle: usize,
    pub max_connections: u32,
    /// `DB_MAX_OVERFLOW`.
    pub max_overflow: u32,
    /// Open connections.
    pub pool_size: u32,
    pub status: DatabaseStatus,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    NotReady,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MigrationsStatus {
    Applied,
    Pending,
    Unknown,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NatsStatus {
    NotConfigured,
    Connecting,
    Connected,
    Disconnected,
}

/// `misconfigured`: the JetStream stream does not capture the subjects the relay publishes
/// and could not be changed to; events wait in the outbox. Never makes the instance unready.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamStatus {
    NotConfigured,
    Unknown,
    Ok,
    Misconfigured,
}

/// Readiness: 200 `ready` when the database answers and every migration is applied, else 503
/// `not_ready`. The event checks inform but never make the instance unready.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub checks: ReadyChecks,
    pub service: ServiceName,
    pub status: ReadyStatus,
    #[schema(value_type = String)]
    pub version: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyChecks {
    pub database: DatabaseStatus,
    pub events_stream: StreamStatus,
    /// Why the stream is misconfigured (only then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_stream_error: Option<String>,
    pub migrations: MigrationsStatus,
    pub nats: NatsStatus,
}
