//! Named string schemas of the invoice, report, event and audit DTOs: the enums of
//! `billing::types` with their API labels, and the formats of a few strings the server writes.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::billing::types::{Currency, InvoiceKind, InvoiceLineKind, InvoiceStatus, PaymentStatus};

/// A named string schema built by `$schema` (a marker type: the wire value is a string).
macro_rules! named_string {
    ($ty:ident, $name:literal, $schema:expr) => {
        #[doc = concat!("The `", $name, "` schema of the document.")]
        pub struct $ty;
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                RefOr::T(Schema::Object($schema))
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

fn labels<'a>(values: impl IntoIterator<Item = &'a str>, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description.to_string()))
}

named_string!(
    InvoiceStatusSchema,
    "InvoiceStatus",
    labels(
        InvoiceStatus::ALL.iter().map(|v| v.as_str()),
        "An invoice's status."
    )
    .build()
);
named_string!(
    PaymentStatusSchema,
    "PaymentStatus",
    labels(
        PaymentStatus::ALL.iter().map(|v| v.as_str()),
        "A payment's status."
    )
    .build()
);
named_string!(
    InvoiceKindSchema,
    "InvoiceKind",
    labels(
        InvoiceKind::ALL.iter().map(|v| v.as_str()),
        "What an invoice bills."
    )
    .build()
);
named_string!(
    InvoiceLineKindSchema,
    "InvoiceLineKind",
    labels(
        InvoiceLineKind::ALL.iter().map(|v| v.as_str()),
        "What an invoice line bills."
    )
    .build()
);
named_string!(
    CurrencySchema,
    "Currency",
    labels(
        Currency::ALL.iter().map(|c| c.code()),
        "A currency of the allow-list (case-insensitive on input)."
    )
    .build()
);
named_string!(
    InvoiceNumberSchema,
    "InvoiceNumber",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^SAH-[0-9]{4}-[0-9]{4,}$"))
        .description(Some("SAH-<year>-<number of the year, at least 4 digits>."))
        .build()
);

/// Query filters treat an empty value as absent, so their schemas admit `""` too.
fn or_empty(schema: utoipa::openapi::schema::Object, description: &str) -> Schema {
    let empty = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(0))
        .build();
    Schema::OneOf(
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(schema)
            .item(empty)
            .description(Some(description.to_string()))
            .build(),
    )
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
