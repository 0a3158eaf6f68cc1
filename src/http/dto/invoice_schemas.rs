//! Named string schemas of the invoice, report, event and audit DTOs: the enums of
//! `billing::types` with their API labels, and the formats of a few strings the server writes.

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

use crate::billing::types::{Currency, InvoiceKind, InvoiceLineKind, InvoiceStatus, PaymentStatus};
use crate::http::openapi::components::string_schema;

fn labels<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description.to_string()))
}

string_schema!(
    InvoiceStatusSchema,
    "InvoiceStatus",
    labels(
        InvoiceStatus::ALL.iter().map(|v| v.as_str()),
        "An invoice's status."
    )
);
string_schema!(
    PaymentStatusSchema,
    "PaymentStatus",
    labels(
        PaymentStatus::ALL.iter().map(|v| v.as_str()),
        "A payment's status."
    )
);
string_schema!(
    InvoiceKindSchema,
    "InvoiceKind",
    labels(
        InvoiceKind::ALL.iter().map(|v| v.as_str()),
        "What an invoice bills."
    )
);
string_schema!(
    InvoiceLineKindSchema,
    "InvoiceLineKind",
    labels(
        InvoiceLineKind::ALL.iter().map(|v| v.as_str()),
        "What an invoice line bills."
    )
);
string_schema!(
    CurrencySchema,
    "Currency",
    labels(
        Currency::ALL.iter().map(|c| c.code()),
        "A currency of the allow-list (case-insensitive on input)."
    )
);
string_schema!(
    InvoiceNumberSchema,
    "InvoiceNumber",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^SAH-[0-9]{4}-[0-9]{4,}$"))
        .description(Some("SAH-<year>-<number of the year, at least 4 digits>."))
);

/// Query filters treat an empty value as absent, so their schemas admit `""` too.
fn or_empty(schema: utoipa::openapi::schema::Object, description: &str) -> Schema {
    crate::http::dto::query_schemas::or_empty(schema, Some(description))
}

/// Query values are strings: a schema of one named in `#[param(schema_with = ...)]`.
fn string_with(pattern: &str, max_length: usize) -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max_length))
        .pattern(Some(pattern))
        .build()
}

/// `start_date`, `end_date`, `date`: a date as YYYY-MM-DD, or empty.
pub fn date_filter() -> Schema {
    let date = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Date,
        )))
        .build();
    or_empty(date, "A date as YYYY-MM-DD; empty means not given.")
}

/// `tenant_id` of the events and audit lists.
pub fn tenant_filter() -> Schema {
    or_empty(
        string_with("^[A-Za-z0-9_-]{1,100}$", 100),
        "A tenant id; empty means every tenant.",
    )
}

/// `type` of the events list.
pub fn event_type_filter() -> Schema {
    or_empty(
        string_with(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", 100),
        "An event type: lowercase words joined by dots, such as invoice.paid; empty means every type.",
    )
}

/// `action` of the audit list.
pub fn action_filter() -> Schema {
    or_empty(
        string_with(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$", 100),
        "An action: lowercase words joined by dots, such as payment.confirm; empty means every action.",
    )
}

/// A query value out of `values`, or blank (empty or only whitespace: the default).
pub fn one_of_labels(values: &[&str], description: &str) -> Schema {
    let blank = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^\s*$"))
        .build();
    Schema::OneOf(
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(labels(values.iter().copied(), "One of the values.").build())
            .item(blank)
            .description(Some(format!(
                "{description} Blank means the default; case and surrounding spaces are ignored."
            )))
            .build(),
    )
}
