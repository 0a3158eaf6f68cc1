//! Every response carries `x-request-id` (the caller's, when it sent a sane one). The id is put
//! in scope for the request's work through `crate::request_context`, which the layers below read.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tracing::Instrument;

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

pub use crate::request_context::{carry, current_request_id};

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// Runs `handle` with the request's id in scope and inside its span, and names the id on the
/// response.
pub async fn with_request_id<F, Fut>(req: Request, handle: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let span = tracing::info_span!(
        "request",
        request.id = %id,
        http.method = %req.method(),
        http.route = tracing::field::Empty,
    );
    let header = HeaderValue::from_str(&id).ok();
    let mut resp = crate::request_context::scope(id, handle(req).instrument(span)).await;
    if let Some(h) = header {
        resp.headers_mut().insert(REQUEST_ID_HEADER.clone(), h);
    }
    resp
}
