//! The HTTP surface: one router per resource, merged once and served under `/v1`, `/api/v1` and
//! `/api/v1/billing` (see `api_path`).

pub mod db_gate;
pub mod dto;
pub mod errors;
pub mod extract;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod rate_limit;
pub mod request_id;
pub mod routes;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::error::AppError;
use crate::state::AppState;

/// Default request body limit (batch ingestion raises its own).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Routes served under every API prefix (paths relative to the prefix).
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::admin::router())
        .merge(routes::audit::router())
        .merge(routes::coupons::router())
        .merge(routes::events::router())
        .merge(routes::invoices::router())
        .merge(routes::invoice_document::router())
        .merge(routes::payments::router())
        .merge(routes::lifecycle::router())
        .merge(routes::plans::router())
        .merge(routes::rates::router())
        .merge(routes::reports::router())
        .merge(routes::tenants::router())
        .merge(routes::usage::router())
        .merge(routes::refunds::router())
        .merge(routes::webhooks::router())
}

/// Operator routes, at the root only.
fn ops_routes() -> OpenApiRouter<AppState> {
    routes::health::router()
}

/// The document parts the router carries: the API routes (relative to `/v1`) and the operator
/// routes. Building the routers costs little and needs no state.
pub fn route_docs() -> (utoipa::openapi::OpenApi, utoipa::openapi::OpenApi) {
    (api_routes().into_openapi(), ops_routes().into_openapi())
}

/// The whole application, without a socket (tests and `serve` both use this), with the
/// configured rate limits.
pub fn router(state: AppState) -> Router {
    let limits = state.config.rate_limits;
    router_with_limits(state, limits)
}

/// The application with the given rate limits (tests use small ones).
pub fn router_with_limits(state: AppState, limits: rate_limit::RateLimits) -> Router {
    crate::metrics::handle();
    // `route_layer` runs after routing, so the metrics see the route template.
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .route_layer(middleware::from_fn_with_state(state.clone(), db_gate::gate))
        .route_layer(middleware::from_fn(metrics::track));
    let (ops, _) = ops_routes().split_for_parts();
    let ops = ops.route_layer(middleware::from_fn(metrics::track));
    let app = crate::api_path::API_PREFIXES
        .iter()
        .fold(Router::new().merge(ops), |app, prefix| {
            app.nest(prefix, api.clone())
        })
        .fallback(fallback);
    // Disabled limits add no layer at all (the enforce path pays for every layer it passes).
    let app = if limits.enabled {
        app.layer(middleware::from_fn_with_state(
            rate_limit::RateLimiter::new(state.clone(), limits),
            rate_limit::enforce,
        ))
    } else {
        app
    };
    let hsts = state.config.hsts_max_age;
    let app = app
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| {
            AppError::internal(anyhow::anyhow!("handler panicked")).into_response()
        }))
        .layer(middleware::from_fn(edge))
        .with_state(state);
    security_headers(app, hsts)
}

/// The standard headers on every response, errors and 404s included (outermost, so nothing
/// answers without them); a handler that sets one itself keeps its own.
/// `Referrer-Policy: no-referrer`: the only pages served (`/docs`, the invoice document) have
/// URLs that name an invoice or sit behind a token, and no page here needs to tell another site
/// where its reader came from, so nothing is lost by sending no referrer at all.
/// `Strict-Transport-Security` only with `HSTS_MAX_AGE`: sent over plain HTTP it means nothing,
/// and it must come from whoever knows the service is reached over TLS.
fn security_headers(app: Router, hsts_max_age: Option<u32>) -> Router {
    use axum::http::HeaderValue;
    use tower_http::set_header::SetResponseHeaderLayer;
    let app = app
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    match hsts_max_age {
        Some(age) => app.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_str(&format!("max-age={age}")).expect("digits are a valid header"),
        )),
        None => app,
    }
}

/// The outermost layer, one for the three things every request needs around everything else:
/// its request id (and span), running writes to completion, and the error envelope for errors
/// that layers and the router answer in plain text. One layer, not three: each layer is paid
/// on every request, and `GET /enforce` is called before every metered call of the gateway.
async fn edge(req: Request, next: Next) -> Response {
    request_id::with_request_id(req, |req| async move {
        envelope_for_plain_errors(run_to_completion(req, next).await)
    })
    .await
}

/// A client that hangs up must not cancel a write half-way through a transaction (a future
/// dropped between statements leaves the connection in an unknown state): a request that may
/// write runs in its own task to the end, and only its answer is lost. Reads are left alone.
async fn run_to_completion(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let run = request_id::carry(next.run(req)).instrument(tracing::Span::current());
    let task = tokio::spawn(run);
    match task.await {
        Ok(resp) => resp,
        Err(e) => AppError::internal(anyhow::anyhow!("request task failed: {e}")).into_response(),
    }
}

async fn fallback() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such route",
        "المسار غير موجود",
    )
}

/// Errors produced outside our handlers (405, 413 from layers, ...) get the envelope too.
fn envelope_for_plain_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let (code, message, ar) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "Method not allowed for this route",
            "الطريقة غير مسموحة",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "The request body is too large",
            "حجم الطلب كبير جداً",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Unsupported media type",
            "نوع المحتوى غير مدعوم",
        ),
        StatusCode::NOT_FOUND => ("not_found", "Not found", "غير موجود"),
        s if s.is_server_error() => (
            "internal_error",
            "An internal error occurred",
            "حدث خطأ داخلي",
        ),
        _ => (
            "bad_request",
            "The request could not be processed",
            "تعذرت معالجة الطلب",
        ),
    };
    let mut out = AppError::new(status, code, message, ar).into_response();
    for (k, v) in resp.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
