//! The hand-built schemas of the plan DTOs (features and limits), where a derive cannot say
//! what the server takes.

use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use crate::http::openapi::components::CATALOGUE_METRICS;

/// `features` as stored: whatever JSON list or object the plan was given.
pub(super) fn features_schema() -> RefOr<Schema> {
    let any = ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
        .description(Some("A list of features (`[{key, name, name_ar, included, limit}]`) or an object, as stored."));
    RefOr::T(Schema::Object(any.build()))
}

fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    let null = ObjectBuilder::new().schema_type(Type::Null);
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new().item(schema).item(null).build(),
    ))
}

/// Features as a client should send them: a list of `{key, name, name_ar, included, limit}`.
/// (The server also stores an object or other members as given; answers show what is stored.)
fn feature_input_schema() -> RefOr<Schema> {
    let text = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(200))
            .pattern(Some(crate::http::openapi::components::TEXT_PATTERN))
    };
    let feature = ObjectBuilder::new()
        .property("key", text())
        .property("name", text())
        .property("name_ar", text())
        .property("included", ObjectBuilder::new().schema_type(Type::Boolean))
        .property(
            "limit",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(-1)),
        )
        .additional_properties(Some(
            utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
        ));
    // An object is stored as given too; its keys (like every string) may not hold U+0000.
    let object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[^\u0000]*$")),
        ));
    let one_of = OneOfBuilder::new()
        .item(ArrayBuilder::new().items(feature))
        .item(object);
    RefOr::T(Schema::OneOf(one_of.build()))
}

pub(super) fn nullable_features_schema() -> RefOr<Schema> {
    nullable(feature_input_schema())
}

pub(super) fn nullable_limits_schema() -> RefOr<Schema> {
    nullable(limits_schema())
}

pub(super) fn limits_schema() -> RefOr<Schema> {
    let keys = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(CATALOGUE_METRICS));
    let values = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(-1))
        .maximum(Some(i64::MAX));
    let o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(keys))
        .additional_properties(Some(values))
        .description(Some(
            "metric → limit; -1 = unlimited. A metric outside the catalogue answers 422 \
             unknown_metric (with fields, and the metrics named); with other invalid fields as \
             well, 422 validation_error listing them all.",
        ));
    RefOr::T(Schema::Object(o.build()))
}
