//! The one error type at the service boundary and its JSON envelope (SPEC section 6):
//! `{error, message, message_ar, detail, request_id, fields?}`. Internals never reach a client;
//! each server error is logged once, here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::request_context::current_request_id;

#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldIssue {
    pub field: String,
    pub issue: String,
}

/// The envelope as it is sent (and documented as the `Error` schema): the body of every 4xx
/// and 5xx answer. Some errors add top-level members (quota figures on 429 `quota_exceeded`,
/// `retry_after` on 429 `rate_limited`), hence `additionalProperties` (set where the document is built).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorEnvelope<'a> {
    /// Stable snake_case code: validation_error, invalid_id, unauthorized, forbidden, not_found,
    /// already_exists, idempotency_key_reused, quota_exceeded, rate_limited, ...
    pub error: &'a str,
    pub message: &'a str,
    pub message_ar: &'a str,
    /// The Arabic message again (the Python service's field).
    pub detail: &'a str,
    /// Always present; null outside a request.
    #[schema(required = true)]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(required = false)]
    pub fields: &'a [FieldIssue],
}

/// Boxed so `Result<T, AppError>` stays one pointer wide on the happy path.
#[derive(Debug)]
pub struct AppError(Box<ErrorBody>);

#[derive(Debug)]
pub struct ErrorBody {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub message_ar: String,
    pub fields: Vec<FieldIssue>,
    /// Extra top-level members merged into the envelope (e.g. quota figures on a 429).
    pub extra: Map<String, Value>,
    /// For server errors: what went wrong, logged and never sent.
    pub source: Option<anyhow::Error>,
}

pub type AppResult<T> = Result<T, AppError>;

/// The code of a request that failed for want of the database (see
/// [`AppError::database_unavailable`]).
pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";

/// Marks a response answered [`DATABASE_UNAVAILABLE`] (a response extension, never sent).
#[derive(Clone, Copy, Debug)]
pub struct DatabaseUnavailable;

impl std::ops::Deref for AppError {
    type Target = ErrorBody;
    fn deref(&self) -> &ErrorBody {
        &self.0
    }
}

impl std::ops::DerefMut for AppError {
    fn deref_mut(&mut self) -> &mut ErrorBody {
        &mut self.0
    }
}

impl AppError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        message_ar: impl Into<String>,
    ) -> Self {
        AppError(Box::new(ErrorBody {
            status,
            code,
            message: message.into(),
            message_ar: message_ar.into(),
            fields: Vec::new(),
            extra: Map::new(),
            source: None,
        }))
    }

    pub fn with_extra(mut self, key: &str, value: impl Serialize) -> Self {
        self.extra.insert(
            key.to_string(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    pub fn validation(fields: Vec<FieldIssue>) -> Self {
        let summary = fields
            .iter()
            .map(|f| format!("{}: {}", f.field, f.issue))
            .collect::<Vec<_>>()
            .join("; ");
        let mut e = AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_error",
            format!("The request is invalid: {summary}"),
            "البيانات المرسلة غير صالحة",
        );
        e.fields = fields;
        e
    }

    pub fn field(field: &str, issue: impl Into<String>) -> Self {
        AppError::validation(vec![FieldIssue {
            field: field.to_string(),
            issue: issue.into(),
        }])
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>, ar: &str) -> Self {
        AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message, ar)
    }

    pub fn not_found(what: &str, ar: &str) -> Self {
        AppError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
            ar,
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>, ar: &str) -> Self {
        AppError::new(StatusCode::CONFLICT, code, message, ar)
    }

    pub fn already_exists(what: &str) -> Self {
        AppError::conflict(
            "already_exists",
            format!("{what} already exists"),
            "موجود بالفعل",
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            message,
            "المصادقة مطلوبة أو غير صالحة",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            message,
            "ليس لديك صلاحية لهذا الإجراء",
        )
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>, ar: &str) -> Self {
        AppError::new(StatusCode::BAD_REQUEST, code, message, ar)
    }

    /// A server error. One whose cause is a lost or unreachable database connection is answered
    /// as [`AppError::database_unavailable`] instead: retryable, not a 500.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        let err = err.into();
        if crate::db::health::connection_error_in(&err) {
            return AppError::database_unavailable(err);
        }
        let mut e = AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An internal error occurred",
            "حدث خطأ داخلي",
        );
        e.source = Some(err);
        e
    }

    /// 503 `database_unavailable`: the database could not be reached or the connection broke
    /// (the request may or may not have taken effect). Retrying with the same `event_id` or
    /// `Idempotency-Key` is safe and converges to one effect.
    pub fn database_unavailable(err: impl Into<anyhow::Error>) -> Self {
        let mut e = AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            DATABASE_UNAVAILABLE,
            "The database is unavailable; retry shortly (with the same Idempotency-Key or event_id)",
            "قاعدة البيانات غير متاحة حالياً؛ أعد المحاولة بعد قليل (بنفس مفتاح عدم التكرار أو event_id)",
        );
        e.source = Some(err.into());
        e
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
            "الخدمة غير متاحة حالياً",
        )
    }

    /// The envelope body, used both for responses and for stored idempotent replays.
    pub fn body(&self) -> Value {
        let envelope = ErrorEnvelope {
            error: self.code,
            message: &self.message,
            message_ar: &self.message_ar,
            detail: &self.message_ar,
            request_id: current_request_id(),
            fields: &self.fields,
        };
        let mut body = serde_json::to_value(envelope).unwrap_or(Value::Null);
        if let Value::Object(m) = &mut body {
            for (k, v) in &self.extra {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        body
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            match &self.source {
                Some(src) => {
                    tracing::error!(error.code = self.code, error = ?src, "request failed")
                }
                None => tracing::error!(error.code = self.code, "request failed"),
            }
        }
        let body = self.body();
        let mut resp = (self.status, Json(body)).into_response();
        if self.code == DATABASE_UNAVAILABLE {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            // Tells the database gate (`http::db_gate`) to check whether the database is down.
            resp.extensions_mut().insert(DatabaseUnavailable);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::internal(e)
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::internal(e)
    }
}

/// True when a database error is a unique-constraint violation (optionally on `constraint`).
pub fn is_unique_violation(e: &sqlx::Error, constraint: Option<&str>) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some("23505")
                && constraint.is_none_or(|c| db.constraint() == Some(c))
        }
        _ => false,
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(src) = &self.source {
            write!(f, " ({src:#})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}
