//! Extractors whose rejections use the error envelope: malformed JSON and wrong types are 422
//! naming the field; bad path ids are 400; query strings are parsed strictly.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{AppError, FieldIssue};
use crate::storable::{nul_error, nul_path};

/// JSON body. Accepts any content type so `curl -d` works; the body must be a JSON document.
pub struct ApiJson<T>(pub T);

/// The raw JSON value of a body alongside the parsed type (for idempotency fingerprints).
pub struct ApiJsonWithRaw<T> {
    pub value: T,
    pub raw: serde_json::Value,
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, serde_json::Value), AppError> {
    let raw = parse_value(bytes)?;
    let value = typed(&raw)?;
    Ok((value, raw))
}

/// A body parsed straight into `T`, which may borrow from it, without building a JSON tree
/// (large bodies). Its strings are not checked for U+0000 here: whoever reads `T`'s raw parts
/// must (`storable::nul_path`).
pub fn parse_json_borrowed<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, AppError> {
    require_body(bytes)?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = typed(&mut de)?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn require_body(bytes: &[u8]) -> Result<(), AppError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::validation(vec![FieldIssue {
            field: "body".into(),
            issue: "a JSON object is required".into(),
        }]));
    }
    Ok(())
}

fn parse_value(bytes: &[u8]) -> Result<serde_json::Value, AppError> {
    require_body(bytes)?;
    let raw: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed(&e))?;
    if let Some(path) = nul_path(&raw, "") {
        return Err(nul_error(&path));
    }
    Ok(raw)
}

fn malformed(e: &serde_json::Error) -> AppError {
    AppError::validation(vec![FieldIssue {
        field: "body".into(),
        issue: format!("malformed JSON: {e}"),
    }])
}

/// Deserializes with the path of the first bad field in the 422 (a syntax error, possible when
/// reading straight from the body's bytes, is "malformed JSON").
fn typed<'de, T: serde::Deserialize<'de>>(
    de: impl serde::Deserializer<'de, Error = serde_json::Error>,
) -> Result<T, AppError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        use serde_json::error::Category;
        if matches!(e.inner().classify(), Category::Syntax | Category::Eof) {
            return malformed(e.inner());
        }
        let path = e.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        AppError::validation(vec![FieldIssue {
            field,
            issue: e.into_inner().to_string(),
        }])
    })
}

fn body_error(e: axum::extract::rejection::BytesRejection) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "The request body is too large",
            "حجم الطلب كبير جداً",
        )
    } else {
        AppError::bad_request(
            "bad_request",
            "The request body could not be read",
            "تعذرت قراءة الطلب",
        )
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(|(v, _)| ApiJson(v))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonWithRaw<T> {
    type Rejection = AppError;
    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(|(value, raw)| ApiJsonWithRaw { value, raw })
    }
}

/// Query string parsed into `T`; a bad value is a 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let QueryPairs(pairs) = QueryPairs::from_request_parts(parts, state).await?;
        let mut obj = serde_json::Map::with_capacity(pairs.len());
        for (k, v) in pairs {
            // Every parameter is one value: a repeated one is ambiguous, not "the last one".
            if obj.contains_key(&k) {
                return Err(AppError::field(&k, "is given more than once"));
            }
            obj.insert(k, serde_json::Value::String(v));
        }
        serde_path_to_error::deserialize(serde_json::Value::Object(obj))
            .map(ApiQuery)
            .map_err(|e| {
                AppError::validation(vec![FieldIssue {
                    field: e.path().to_string(),
                    issue: e.into_inner().to_string(),
                }])
            })
    }
}

/// The query string as decoded pairs, without typing them (hot paths read their few keys
/// directly with `get`). Malformed strings and U+0000 are rejected as for `ApiQuery`.
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    /// The value of `key`; a key given twice keeps its last value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let q = parts.uri.query().unwrap_or("");
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(q).map_err(|e| {
            AppError::validation(vec![FieldIssue {
                field: "query".into(),
                issue: format!("malformed query string: {e}"),
            }])
        })?;
        if let Some((k, _)) = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(nul_error(k));
        }
        Ok(QueryPairs(pairs))
    }
}

/// A path segment, percent-decoded by axum. Bad ids are rejected by the handler's parse.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = AppError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        if parts.uri.path().contains("%00") {
            return Err(AppError::bad_request(
                "invalid_path_parameter",
                "Path segments must not contain the NUL character",
                "معرّف غير صالح في المسار",
            ));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| {
                AppError::bad_request(
                    "invalid_path_parameter",
                    e.body_text(),
                    "معرّف غير صالح في المسار",
                )
            })
    }
}

/// Parses a UUID path id, answering 400 `invalid_id` when it is not one.
pub fn parse_uuid(what: &str, s: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(s).map_err(|_| {
        AppError::bad_request(
            "invalid_id",
            format!("{what} must be a UUID"),
            "المعرّف غير صالح",
        )
    })
}

impl crate::services::idempotency::IdempotencyKey {
    /// From the `Idempotency-Key` header, falling back to a body field (payments).
    pub fn from_request(
        headers: &axum::http::HeaderMap,
        body_key: Option<&str>,
    ) -> Result<Option<Self>, AppError> {
        match headers.get("idempotency-key") {
            Some(v) => {
                let s = v.to_str().map_err(|_| {
                    AppError::field("Idempotency-Key", "must be visible ASCII characters")
                })?;
                Ok(Some(Self::parse(s)?))
            }
            None => body_key.map(Self::parse).transpose(),
        }
    }
}
