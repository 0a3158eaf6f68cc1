//! The shared pieces of the generated document: scalar schemas (money as a decimal string, ids
//! with their patterns), the error responses in the one envelope, the security schemes and the
//! parameters many operations take. Handlers name them in `#[utoipa::path]`.

use std::borrow::Cow;

use serde_json::json;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, Modify, PartialSchema, ToSchema};

/// Money: exactly two decimals, always a JSON string. Inputs have at most 12 digits, but an
/// answer may convert one at a rate (a YER price), so the integer part is not bounded here.
pub const MONEY_PATTERN: &str = r"^-?[0-9]+\.[0-9]{2}$";

fn string(pattern: Option<&str>, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(pattern.map(str::to_string))
        .description(Some(description.to_string()))
}

/// A named string schema (a marker type: the value on the wire is a plain string).
macro_rules! string_schema {
    ($ty:ident, $name:literal, $schema:expr) => {
        #[doc = concat!("The `", $name, "` schema of the document.")]
        pub struct $ty;
        impl ::utoipa::PartialSchema for $ty {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                ::utoipa::openapi::RefOr::T(::utoipa::openapi::schema::Schema::Object(
                    $schema.build(),
                ))
            }
        }
        impl ::utoipa::ToSchema for $ty {
            fn name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed($name)
            }
        }
    };
}
pub(crate) use string_schema;

string_schema!(
    MoneySchema,
    "Money",
    string(
        Some(MONEY_PATTERN),
        "An amount with exactly 2 decimals, always a string (never a JSON number)."
    )
    .examples([json!("29.00")])
);
string_schema!(
    DecimalSchema,
    "Decimal",
    string(
        Some(r"^-?[0-9]+(\.[0-9]+)?$"),
        "An exact decimal as a string (rates carry up to 6 decimals)."
    )
    .examples([json!("250.00")])
);
string_schema!(
    TenantIdSchema,
    "TenantId",
    string(Some("^[A-Za-z0-9_-]{1,100}$"), "A tenant id.")
);
string_schema!(
    PlanIdSchema,
    "PlanId",
    string(Some("^[a-z][a-z0-9_]{0,99}$"), "A plan id.")
);
string_schema!(
    MetricNameSchema,
    "MetricName",
    string(Some("^[a-z][a-z0-9_]{0,99}$"), "A metric of the catalogue.")
        .examples([json!("satellite_analyses_per_month")])
);

/// An enum of `billing::types` as a named string schema with its API labels.
macro_rules! enum_schema {
    ($ty:ident, $name:literal, $domain:ty) => {
        $crate::http::openapi::components::string_schema!(
            $ty,
            $name,
            ::utoipa::openapi::schema::ObjectBuilder::new()
                .schema_type(::utoipa::openapi::schema::Type::String)
                .enum_values(Some(<$domain>::ALL.iter().map(|v| v.as_str())))
        );
    };
}
pub(crate) use enum_schema;

enum_schema!(PlanTierSchema, "PlanTier", crate::billing::types::PlanTier);
enum_schema!(
    OveragePolicySchema,
    "OveragePolicy",
    crate::billing::types::OveragePolicy
);

/// The metrics of the catalogue (SPEC section 4, seeded by a migration; a test compares this
/// list with the `metrics` table), so a client knows which keys `limits` takes.
pub const CATALOGUE_METRICS: [&str; 7] = [
    "ai_diagnoses_per_month",
    "api_calls_per_day",
    "fields",
    "pdf_reports_per_month",
    "satellite_analyses_per_month",
    "storage_gb",
    "team_members",
];

/// Text that is not only whitespace and has no U+0000 (the server trims it and refuses NUL,
/// which PostgreSQL cannot store). `#[schema(pattern)]` takes a literal, so DTOs repeat it and a
/// unit test checks they do.
pub const TEXT_PATTERN: &str = r"^[^\u0000]*[^\s\u0000][^\u0000]*$";

/// An input amount: a string (preferred) or a number; `> 0`, at most 2 decimals and 12 digits.
pub struct MoneyInputSchema;
impl PartialSchema for MoneyInputSchema {
    fn schema() -> RefOr<Schema> {
        decimal_input(
            "^(?!0+(\\.0{1,2})?$)[0-9]{1,10}(\\.[0-9]{1,2})?$",
            true,
            "An amount > 0 with at most 2 decimals and at most 12 digits, as a string (preferred) or a number.",
        )
    }
}
impl ToSchema for MoneyInputSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("MoneyInput")
    }
}

/// An input price: like [`MoneyInputSchema`] but 0 is allowed.
pub struct PriceInputSchema;
impl PartialSchema for PriceInputSchema {
    fn schema() -> RefOr<Schema> {
        decimal_input(
            "^[0-9]{1,10}(\\.[0-9]{1,2})?$",
            false,
            "A price >= 0 with at most 2 decimals and at most 12 digits, as a string or a number.",
        )
    }
}
impl ToSchema for PriceInputSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PriceInput")
    }
}

fn decimal_input(pattern: &str, positive: bool, description: &str) -> RefOr<Schema> {
    let number = ObjectBuilder::new().schema_type(Type::Number);
    let number = if positive {
        number.exclusive_minimum(Some(0))
    } else {
        number.minimum(Some(0))
    };
    // At most 10 integer digits and 2 decimals, as `billing::money` checks them.
    let number = number
        .maximum(Some(9_999_999_999.99))
        .multiple_of(Some(0.01));
    let one_of = OneOfBuilder::new()
        .item(string(Some(pattern), "As a string.").build())
        .item(number.build())
        .description(Some(description.to_string()))
        .examples([json!("29.00")]);
    RefOr::T(Schema::OneOf(one_of.build()))
}

/// An error response in the envelope, referenced by name from `#[utoipa::path]`.
macro_rules! error_response {
    ($ty:ident, $description:literal) => {
        error_response!($ty, $description, false);
    };
    ($ty:ident, $description:literal, $retry:expr) => {
        #[doc = $description]
        pub struct $ty;
        impl<'r> utoipa::ToResponse<'r> for $ty {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($ty), RefOr::T(envelope($description, $retry)))
            }
        }
    };
}

fn envelope(description: &str, retry: bool) -> Response {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Error")))
        .build();
    let mut b = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    if retry {
        b = b.header(
            "Retry-After",
            utoipa::openapi::HeaderBuilder::new()
                .schema(i64::schema())
                .description(Some("Seconds to wait before retrying.".to_string()))
                .build(),
        );
    }
    b.build()
}

error_response!(BadRequest, "Malformed identifier (`invalid_id`, `invalid_path_parameter`) or, for webhooks, `invalid_signature`.");
error_response!(Unauthorized, "`unauthorized`: no or invalid credentials.");
error_response!(
    PaymentRequired,
    "`subscription_suspended`: the tenant's subscription is suspended for non-payment."
);
error_response!(Forbidden, "`forbidden`: the principal lacks the role.");
error_response!(
    NotFound,
    "`not_found`: missing, or another tenant's (the two are indistinguishable)."
);
error_response!(
    Conflict,
    "`already_exists`, `idempotency_key_reused` or another state conflict."
);
error_response!(PayloadTooLarge, "`payload_too_large`.");
error_response!(Unprocessable, "`validation_error` with `fields`, or a domain rule (e.g. `unknown_metric`); malformed JSON, wrong types and bad query values too.");
error_response!(
    RateLimited,
    "`rate_limited`: the principal's request budget is spent (see the X-RateLimit headers).",
    true
);
error_response!(TooManyRequestsOrQuota, "`rate_limited` (request budget), or `quota_exceeded` with `allowed: false, limit, used, requested` (plan quota; no Retry-After then).", true);
error_response!(BadGateway, "The payment gateway failed.");
error_response!(ServiceUnavailable, "Not ready.");
error_response!(DatabaseUnavailable, "`database_unavailable`: the database is unreachable (answered at once while it is known down) or the connection broke mid-request, so the effect may or may not have happened; `usage_outcome_unknown` for a usage event without `event_id` in that case. Retry after `Retry-After` seconds with the same `Idempotency-Key` or `event_id`: the retry converges to one effect.", true);

/// `bearerAuth` (platform and billing JWTs) and `apiKeyAuth` (service callers).
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some("HS256 with JWT_SECRET (or JWT_SECRET_KEY); claims sub, tid (or tenant_id, tenantId), roles (or role, platform names mapped by JWT_ROLE_MAP), exp; aud, when present, one of JWT_AUDIENCE (default sahool-api); type, when present, access."))
            .build();
        bearer.description = bearer.description.take();
        components.add_security_scheme("bearerAuth", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "apiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "One of AUTH_API_KEYS; the caller has the service role.",
            ))),
        );
    }
}

/// `limit` and `starting_after` of every keyset list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by the extractor as strings; this type only documents them
pub struct PageParams {
    /// Page size.
    #[param(value_type = Option<crate::http::dto::query_schemas::LimitParam>, inline)]
    limit: Option<i64>,
    /// The id of the last item of the previous page.
    #[param(max_length = 200, pattern = r"^[^\u0000]*$")]
    starting_after: Option<String>,
}

/// The `Idempotency-Key` header of the POSTs that move money or record usage.
#[derive(IntoParams)]
#[into_params(names("Idempotency-Key"), parameter_in = Header)]
#[allow(dead_code)]
pub struct IdempotencyKeyHeader(
    /// Same key and same request: the first response is replayed (with idempotent-replayed:
    /// true); same key, different request: 409 idempotency_key_reused. The prefixes share keys.
    #[param(min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7E]+$")]
    Option<String>,
);

/// The `X-Tenant-Id` header: which tenant a platform caller asks about.
#[derive(IntoParams)]
#[into_params(names("X-Tenant-Id"), parameter_in = Header)]
#[allow(dead_code)]
pub struct TenantHeader(
    /// Required for service and super_admin callers; ignored for tenant principals (they ask
    /// for themselves).
    #[param(value_type = Option<TenantIdSchema>)]
    Option<String>,
);
