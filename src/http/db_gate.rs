//! The database gate on every API route (SPEC section 8): while the database is known to be
//! down, a request answers 503 `database_unavailable` at once instead of waiting for a connection
//! it cannot get; a request that failed for want of the database has its failure checked by a
//! probe (see `db::health`), which opens the gate again as soon as the database answers.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{AppError, DatabaseUnavailable};
use crate::state::AppState;

pub async fn gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.db_health.is_down() {
        return AppError::database_unavailable(anyhow::anyhow!("database marked down"))
            .into_response();
    }
    let resp = next.run(req).await;
    if resp.extensions().get::<DatabaseUnavailable>().is_some() {
        state.db_health.suspect();
    }
    resp
}
