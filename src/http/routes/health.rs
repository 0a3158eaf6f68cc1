//! Liveness, readiness and (later) metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::jobs::outbox_relay::RelayState;
use crate::state::AppState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    // Known down: say so at once (liveness stays 200) rather than wait for a connection.
    let db_ok = !state.db_health.is_down() && {
        let ping = tokio::time::timeout(
            Duration::from_secs(2),
            sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool),
        )
        .await;
        report(&state, &ping);
        matches!(ping, Ok(Ok(1)))
    };
    let pool = &state.pool;
    Json(json!({
        "status": if db_ok { "healthy" } else { "degraded" },
        "service": "billing-core",
        "version": VERSION,
        "database": {
            "status": if db_ok { "connected" } else { "disconnected" },
            "database": "postgresql",
            "pool_size": pool.size(),
            "idle": pool.num_idle(),
            "max_connections": pool.options().get_max_connections(),
            "configured_pool_size": state.config.db_pool_size,
            "max_overflow": state.config.db_max_overflow,
        }
    }))
}

pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
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
    let (db, mig) = match migrations {
        Ok(Ok(m)) if m.pending.is_empty() && !m.dirty => ("connected", "applied"),
        Ok(Ok(_)) => ("connected", "pending"),
        _ => ("disconnected", "unknown"),
    };
    let ready = db == "connected" && mig == "applied";
    // Events wait in the outbox while NATS or the stream is not right, and the API keeps working,
    // so these checks inform but do not make the instance unready.
    let (nats, stream, stream_error) = match state.relay_health.get() {
        RelayState::NotConfigured => ("not_configured", "not_configured", None),
        RelayState::Starting => ("connecting", "unknown", None),
        RelayState::Publishing => ("connected", "ok", None),
        RelayState::Unreachable(_) => ("disconnected", "unknown", None),
        RelayState::StreamMisconfigured(why) => ("connected", "misconfigured", Some(why)),
    };
    let mut checks =
        json!({ "database": db, "migrations": mig, "nats": nats, "events_stream": stream });
    if let Some(why) = stream_error {
        checks["events_stream_error"] = json!(why);
    }
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "service": "billing-core",
        "version": VERSION,
        "checks": checks,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
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
