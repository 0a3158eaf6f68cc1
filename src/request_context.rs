//! The request a piece of work runs for: its id, held in a task-local while the request runs,
//! so error envelopes, audit rows and logs can name it. At the crate root because services and
//! the error type read it; the HTTP layer sets it (`http::request_id`) from `x-request-id`.

use std::future::Future;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request the current task works for, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Runs `fut` as the work of request `id`.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}

/// `fut` with the current request id (if any) in scope, for running it in another task.
pub fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let id = current_request_id();
    async move {
        match id {
            Some(id) => REQUEST_ID.scope(id, fut).await,
            None => fut.await,
        }
    }
}
