//! `serve`: connect, migrate (unless told not to), and serve HTTP until SIGTERM/Ctrl-C, letting
//! in-flight requests finish.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

pub async fn serve(config: Config, migrate: bool) -> anyhow::Result<()> {
    let url = crate::db::resolve_database_url(&config).await?;
    let pool = crate::db::connect(&config, &url)
        .await
        .context("connecting to PostgreSQL (check DATABASE_URL)")?;
    if migrate {
        crate::db::migrate(&pool)
            .await
            .context("applying migrations")?;
    }
    // Partitions ahead are a convenience (a DEFAULT partition takes anything), so a failure
    // here — e.g. `--no-migrate` on an older schema — is logged, not fatal.
    if let Err(e) = crate::db::ensure_usage_partitions(&pool).await {
        tracing::warn!(error = %e, "could not create usage_records partitions ahead");
    }
    let state = AppState::new(pool.clone(), config.clone());
    crate::db::sync_configured_rates(&pool, &config, state.clock.today()).await?;
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let relay = config.nats_url.clone().map(|url| {
        tokio::spawn(crate::jobs::outbox_relay::run(
            pool.clone(),
            url,
            state.relay_health.clone(),
            jobs_stopped.clone(),
        ))
    });
    let reconcile = (config.scheduler_enabled && config.stripe_api_key.is_some()).then(|| {
        tokio::spawn(crate::jobs::reconcile::run(
            state.clone(),
            jobs_stopped.clone(),
        ))
    });
    let scheduler = config
        .scheduler_enabled
        .then(|| tokio::spawn(crate::jobs::scheduler::run(state.clone(), jobs_stopped)));
    let app = crate::http::router(state);
    let addr = SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, embedded_db = config.database_url.is_none(), "billing-core listening");
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    // In-flight requests are done; let the current billing run finish, then stop.
    let _ = stop_jobs.send(true);
    if let Some(handle) = scheduler {
        let _ = handle.await;
    }
    if let Some(handle) = reconcile {
        let _ = handle.await;
    }
    if let Some(handle) = relay {
        let _ = handle.await;
    }
    pool.close().await;
    tracing::info!("billing-core stopped");
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; draining requests");
}
