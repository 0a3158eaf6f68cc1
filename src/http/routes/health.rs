//! The operator routes at the root: liveness, readiness, the Prometheus scrape, the document
//! and its page. Public and not rate limited.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::dto::ops::{
    DatabaseKind, DatabaseStatus, Health, HealthDatabase, HealthStatus, MigrationsStatus,
    NatsStatus, Ready, ReadyChecks, ReadyStatus, ServiceName, StreamStatus,
};
use crate::http::openapi;
use crate::jobs::outbox_relay::RelayState;
use crate::state::AppState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(openapi::document))
        .routes(routes!(openapi::docs))
}

/// Liveness; pings the database pool
///
/// Public operator endpoint; not rate limited. Always 200 (a process that answers is alive);
/// `degraded` while the database does not answer.
#[utoipa::path(get, path = "/healthz", tag = "Operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    // Known down: say so at once (liveness stays 200) rather than wait for a connection.
    let db_ok = !state.db_health.is_down() && {
        let ping = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query_scalar!(r#"SELECT 1 AS "one!""#).fetch_one(&state.pool),
        )
        .await;
        report(&state, &ping);
        matches!(ping, Ok(Ok(1)))
    };
    let pool = &state.pool;
    Json(Health {
        database: HealthDatabase {
            configured_pool_size: state.config.db_pool_size,
            database: DatabaseKind::Postgresql,
            idle: pool.num_idle(),
            max_connections: pool.options().get_max_connections(),
            max_overflow: state.config.db_max_overflow,
            pool_size: pool.size(),
            status: if db_ok {
                DatabaseStatus::Connected
            } else {
                DatabaseStatus::Disconnected
            },
        },
        service: ServiceName::BillingCore,
        status: if db_ok {
            HealthStatus::Healthy
        } else {
            HealthStatus::Degraded
        },
        version: VERSION,
    })
}

/// Readiness: database reachable and migrations applied
///
/// Public operator endpoint; not rate limited. The NATS and stream checks inform but do not
/// make the instance unready (events wait in the outbox).
#[utoipa::path(get, path = "/readyz", tag = "Operations",
    responses((status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready", body = Ready)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let migrations = if state.db_health.is_down() {
        Err(())
    } else {
        let state_now = tokio::time::timeout(
            Duration::from_secs(2),
            crate::db::migration_state(&state.pool),
        )
        .await;
        report(&state, &state_now);
        state_now.map_err(|_| ())
    };
    use DatabaseStatus::{Connected, Disconnected};
    let (database, migrations) = match migrations {
        Ok(Ok(m)) if m.pending.is_empty() && !m.dirty => (Connected, MigrationsStatus::Applied),
        Ok(Ok(_)) => (Connected, MigrationsStatus::Pending),
        _ => (Disconnected, MigrationsStatus::Unknown),
    };
    let ready = matches!(
        (database, migrations),
        (Connected, MigrationsStatus::Applied)
    );
    // Events wait in the outbox while NATS or the stream is not right, and the API keeps working,
    // so these checks inform but do not make the instance unready.
    let (nats, events_stream, events_stream_error) = match state.relay_health.get() {
        RelayState::NotConfigured => (NatsStatus::NotConfigured, StreamStatus::NotConfigured, None),
        RelayState::Starting => (NatsStatus::Connecting, StreamStatus::Unknown, None),
        RelayState::Publishing => (NatsStatus::Connected, StreamStatus::Ok, None),
        RelayState::Unreachable(_) => (NatsStatus::Disconnected, StreamStatus::Unknown, None),
        RelayState::StreamMisconfigured(why) => (
            NatsStatus::Connected,
            StreamStatus::Misconfigured,
            Some(why),
        ),
    };
    let body = Ready {
        checks: ReadyChecks {
            database,
            events_stream,
            events_stream_error,
            migrations,
            nats,
        },
        service: ServiceName::BillingCore,
        status: if ready {
            ReadyStatus::Ready
        } else {
            ReadyStatus::NotReady
        },
        version: VERSION,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics
///
/// Public operator endpoint; not rate limited. The text exposition format: traffic by route
/// and status with latency histograms, pool state, outbox backlog, usage outcomes.
#[utoipa::path(get, path = "/metrics", tag = "Operations",
    responses((status = 200, description = "The scrape", content_type = "text/plain", body = String),
        (status = 503, response = crate::http::openapi::components::ServiceUnavailable)))]
async fn metrics(state: State<AppState>) -> Response {
    crate::http::metrics::render(state).await
}

/// A ping that failed at the connection level (or did not answer in time) starts a probe, so a
/// readiness check notices an outage even when no request does.
fn report<T>(state: &AppState, ping: &Result<Result<T, sqlx::Error>, tokio::time::error::Elapsed>) {
    match ping {
        Ok(Err(e)) => state.db_health.report(e),
        Err(_) => state.db_health.suspect(),
        Ok(Ok(_)) => {}
    }
}
