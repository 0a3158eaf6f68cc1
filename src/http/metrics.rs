//! HTTP metrics: traffic by route and status with latency histograms (the `track` middleware),
//! and the `/metrics` scrape with pool state and outbox backlog. The recorder and the business
//! counters live in `crate::metrics`, below the services that count.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::metrics::handle;
use crate::state::AppState;

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
        latency_ms = latency_ms(elapsed),
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
    let backlog = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM outbox_events WHERE published_at IS NULL"#
    )
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

/// Milliseconds with their fraction, for the access line (a duration, not money).
#[allow(clippy::float_arithmetic)]
fn latency_ms(elapsed: std::time::Duration) -> f64 {
    elapsed.as_secs_f64() * 1000.0
}
