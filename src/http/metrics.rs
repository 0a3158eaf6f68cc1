//! Prometheus metrics: HTTP traffic by route and status with latency histograms, pool state,
//! outbox backlog, and the business counters the services increment (`metrics::counter!`).

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::state::AppState;

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

/// The `method` label: the standard methods by name, any other as `OTHER`, since a client may
/// send any token as a method and each distinct label value is a new series kept for good.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "OTHER",
    }
}

/// Records every request under its route template (never the raw path, which holds ids).
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    // Only worked out when the access line below will be written.
    let tenant = if tracing::enabled!(tracing::Level::INFO) {
        tenant_in_path(&req)
    } else {
        None
    };
    // On the request span, so the access line and anything logged while handling carry it
    // once (as text, like `http.method`).
    tracing::Span::current().record("http.route", tracing::field::display(route));
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let code = resp.status().as_u16();
    // One access line per request: status and latency (the method, route and request id are
    // the span's) — never bodies, amounts, emails or credentials.
    tracing::info!(
        http.status = code,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        tenant.id = tenant.as_deref().unwrap_or(""),
        "request finished"
    );
    Series::observe(method_label(&method), route, code, elapsed.as_secs_f64());
    resp
}

/// The request counter and latency histogram of one (method, route, status), registered once
/// and then found by route without building label strings on every request. Every label is
/// bounded: methods by `method_label`, routes are the router's templates (unmatched paths never
/// reach this layer), statuses are the ones this service answers.
struct Series {
    method: &'static str,
    status: u16,
    requests: metrics::Counter,
    latency: metrics::Histogram,
}

type SeriesByRoute = RwLock<HashMap<String, Vec<Series>>>;

impl Series {
    fn observe(method: &'static str, route: &str, status: u16, seconds: f64) {
        static ALL: OnceLock<SeriesByRoute> = OnceLock::new();
        let all = ALL.get_or_init(Default::default);
        let found = |series: &[Series]| {
            series
                .iter()
                .find(|s| s.status == status && s.method == method)
                .map(|s| {
                    s.requests.increment(1);
                    s.latency.record(seconds);
                })
                .is_some()
        };
        {
            let read = all.read().unwrap_or_else(|e| e.into_inner());
            if read.get(route).is_some_and(|series| found(series)) {
                return;
            }
        }
        let mut write = all.write().unwrap_or_else(|e| e.into_inner());
        let series = write.entry(route.to_string()).or_default();
        if found(series) {
            return;
        }
        let labels = [
            ("method", method.to_string()),
            ("route", route.to_string()),
            ("status", status.to_string()),
        ];
        let s = Series {
            method,
            status,
            requests: metrics::counter!("http_requests_total", &labels),
            latency: metrics::histogram!("http_request_duration_seconds", &labels),
        };
        s.requests.increment(1);
        s.latency.record(seconds);
        series.push(s);
    }
}

/// The `{tenant_id}` path parameter, when the route has one and it is a well-formed id.
fn tenant_in_path(req: &Request) -> Option<String> {
    let path = req.uri().path();
    let rest = path.split("/tenants/").nth(1)?;
    let id = rest.split('/').next()?;
    crate::billing::types::is_tenant_id(id).then(|| id.to_string())
}

pub async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = handle() else {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable\n",
        )
            .into_response();
    };
    let pool = &state.pool;
    metrics::gauge!("db_pool_connections").set(pool.size() as f64);
    metrics::gauge!("db_pool_idle_connections").set(pool.num_idle() as f64);
    metrics::gauge!("db_pool_max_connections").set(pool.options().get_max_connections() as f64);
    let backlog: Result<i64, _> =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE published_at IS NULL")
            .fetch_one(pool)
            .await;
    if let Ok(n) = backlog {
        metrics::gauge!("billing_outbox_backlog").set(n as f64);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
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
