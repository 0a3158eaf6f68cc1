//! The process's metrics: the Prometheus recorder and the business counters that services and
//! jobs increment. At the crate root so every layer can count without importing the HTTP layer;
//! the request middleware and the `/metrics` handler are in `http::metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The process-wide recorder, installed on first use. `None` if another recorder was
/// installed first (metrics are then simply not exported).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("http_request_duration_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full("billing_job_duration_seconds".into()),
                    &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            // Histogram samples are kept until upkeep folds them into the buckets; a recorder
            // built this way has no upkeep of its own, so without this a service nobody
            // scrapes would keep every latency sample it ever took.
            // (Rendering runs upkeep too, so if the thread cannot start, scrapes still work.)
            let upkeep = handle.clone();
            let started = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                });
            if let Err(e) = started {
                tracing::warn!(error = %e, "metrics upkeep thread did not start");
            }
            Some(handle)
        })
        .as_ref()
}

/// One line of HELP for every series this service exports (Prometheus's linter, `promtool
/// check metrics`, asks for it). A new metric gets its line here.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method (OTHER for a non-standard one), route template and status"
    );
    describe_histogram!(
        "http_request_duration_seconds",
        "Time to answer an HTTP request, by method, route template and status"
    );
    describe_counter!(
        "http_rate_limited_total",
        "Requests refused by the rate limiter, by caller tier"
    );
    describe_gauge!(
        "db_pool_connections",
        "Connections open in the database pool"
    );
    describe_gauge!(
        "db_pool_idle_connections",
        "Idle connections in the database pool"
    );
    describe_gauge!(
        "db_pool_max_connections",
        "Largest number of connections the database pool may open"
    );
    describe_gauge!(
        "billing_outbox_backlog",
        "Outbox events written but not yet published"
    );
    describe_counter!(
        "billing_payments_total",
        "Payments by method and event (created, succeeded, failed, refunded)"
    );
    describe_counter!(
        "billing_usage_flushes_total",
        "Group commits of single usage events"
    );
    describe_counter!(
        "billing_usage_flushed_events_total",
        "Single usage events written by group commits"
    );
    describe_counter!(
        "billing_usage_events_total",
        "Usage events by outcome (accepted, duplicate, blocked by a quota, rejected in a batch)"
    );
    describe_counter!("billing_job_runs_total", "Runs of the daily billing jobs");
    describe_histogram!(
        "billing_job_duration_seconds",
        "Time a daily billing run took"
    );
    describe_counter!(
        "billing_invoices_issued_total",
        "Invoices issued, by kind and currency"
    );
}

/// Payments by method and what happened to them (created, succeeded, failed, refunded).
pub fn count_payment(method: crate::billing::types::PaymentMethod, event: &'static str) {
    metrics::counter!("billing_payments_total", "method" => method.as_str(), "event" => event)
        .increment(1);
}

/// One group-commit flush of single usage events (`services::usage::coalesce`) and its size.
pub fn observe_usage_flush(events: usize) {
    metrics::counter!("billing_usage_flushes_total").increment(1);
    metrics::counter!("billing_usage_flushed_events_total").increment(events as u64);
}

/// Usage events by outcome: accepted, duplicate, blocked (quota), rejected (batch validation).
pub fn count_usage(outcome: &'static str, n: u64) {
    metrics::counter!("billing_usage_events_total", "outcome" => outcome).increment(n);
}
