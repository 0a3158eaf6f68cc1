//! The schemas of typed query parameters. A query value is text, and the server reads an empty
//! one (`?limit=`) as not given, so each schema admits `""` besides the typed value; a client
//! that generates its types from the document can send either. They are inlined with
//! `#[param(value_type = Option<...>, inline)]`, which keeps the parameter's description.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use crate::billing::types::{InvoiceStatus, PaymentStatus};

/// `schema`, or an empty value (not given); `description` goes on the whole.
pub(crate) fn or_empty(schema: impl Into<RefOr<Schema>>, description: Option<&str>) -> Schema {
    let empty = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(0));
    Schema::OneOf(
        OneOfBuilder::new()
            .item(schema)
            .item(empty)
            .description(description.map(str::to_string))
            .build(),
    )
}

fn integer(minimum: i64, maximum: Option<i64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
        .minimum(Some(minimum))
        .maximum(maximum)
}

fn labels<'a>(values: impl IntoIterator<Item = &'a str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
}

macro_rules! query_schema {
    ($ty:ident, $doc:literal, $schema:expr) => {
        #[doc = $doc]
        pub struct $ty;
        impl ::utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                RefOr::T(or_empty($schema, None))
            }
        }
        impl ::utoipa::ToSchema for $ty {}
    };
}

query_schema!(
    LimitParam,
    "`limit` of a list: 1-100, default 20.",
    integer(1, Some(100)).default(Some(20.into()))
);
query_schema!(
    SeqParam,
    "A `seq` cursor (events, audit): 0 or more.",
    integer(0, None)
);
query_schema!(
    QuantityParam,
    "`quantity` of the enforce check: 1-100000, default 1.",
    integer(1, Some(100_000)).default(Some(1.into()))
);
query_schema!(
    DateParam,
    "A date as YYYY-MM-DD.",
    ObjectBuilder::new().schema_type(Type::String).format(Some(
        utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Date,)
    ))
);
query_schema!(
    BoolParam,
    "true or false (1 or 0 too).",
    ObjectBuilder::new().schema_type(Type::Boolean)
);
query_schema!(
    InvoiceStatusParam,
    "An invoice status.",
    labels(InvoiceStatus::ALL.iter().map(|v| v.as_str()))
);
query_schema!(
    PaymentStatusParam,
    "A payment status.",
    labels(PaymentStatus::ALL.iter().map(|v| v.as_str()))
);

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn every_query_schema_admits_an_empty_value() {
        for schema in [
            LimitParam::schema(),
            SeqParam::schema(),
            QuantityParam::schema(),
            DateParam::schema(),
            BoolParam::schema(),
            InvoiceStatusParam::schema(),
            PaymentStatusParam::schema(),
        ] {
            let v = serde_json::to_value(schema).unwrap();
            assert_eq!(v["oneOf"][1]["maxLength"], 0, "{v}");
        }
    }
}
