//! The hand-built schemas of the plan DTOs (features and limits), where a derive cannot say
//! what the server takes.

use utoipa::openapi::schema::{
    AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

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
    // An object is stored as given too; no string in it, key or value at any depth, may hold
    // U+0000.
    let object = nul_free_object(Ref::from_schema_name(NulFreeJson::name()));
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

/// An object whose keys hold no U+0000 and whose values are `values`.
fn nul_free_object(values: Ref) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(r"^[^\u0000]*$")),
        ))
        .additional_properties(Some(values))
}

/// Any JSON value in which no string, key or value at any depth, holds U+0000 (the server
/// refuses one with 422 and names where it is).
pub struct NulFreeJson;

impl PartialSchema for NulFreeJson {
    fn schema() -> RefOr<Schema> {
        let itself = || Ref::from_schema_name(NulFreeJson::name());
        let string = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[^\u0000]*$"));
        let any = AnyOfBuilder::new()
            .item(string)
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(ArrayBuilder::new().items(itself()))
            .item(nul_free_object(itself()))
            .description(Some(
                "Any JSON value in which no string (key or value, at any depth) holds U+0000.",
            ));
        RefOr::T(Schema::AnyOf(any.build()))
    }
}

impl ToSchema for NulFreeJson {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("NulFreeJson")
    }
}
