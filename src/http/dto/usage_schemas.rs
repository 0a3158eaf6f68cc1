//! The hand-built schemas of the usage DTOs, where a derive cannot say what the server takes:
//! the enums by their API labels, the quantity range, metadata, the batch's events.

use std::borrow::Cow;

use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::billing::types::{MetricKind, UsageAction};
use crate::http::openapi::components::{enum_schema, CATALOGUE_METRICS};

enum_schema!(UsageActionSchema, "UsageAction", UsageAction);
enum_schema!(MetricKindSchema, "MetricKind", MetricKind);
pub use crate::http::dto::subscriptions::SubscriptionStatusSchema;

/// The metric names the server knows (the catalogue; any other answers 422 `unknown_metric`).
pub struct CatalogueMetricSchema;
impl PartialSchema for CatalogueMetricSchema {
    fn schema() -> RefOr<Schema> {
        let o = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(CATALOGUE_METRICS))
            .description(Some("A metric of the catalogue."));
        RefOr::T(Schema::Object(o.build()))
    }
}
impl ToSchema for CatalogueMetricSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("CatalogueMetric")
    }
}

/// Any JSON value without U+0000 in its strings or keys (the server refuses a body that holds
/// one anywhere, since PostgreSQL cannot store it): what unknown members and metadata take.
pub struct NulFreeValue;
impl PartialSchema for NulFreeValue {
    fn schema() -> RefOr<Schema> {
        let me = || Ref::from_schema_name("NulFreeValue");
        let any = utoipa::openapi::schema::AnyOfBuilder::new()
            .item(no_nul_string())
            .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([
                Type::Number,
                Type::Boolean,
                Type::Null,
            ])))
            .item(ArrayBuilder::new().items(me()))
            .item(nul_free_object(me()));
        RefOr::T(Schema::AnyOf(any.build()))
    }
}
impl ToSchema for NulFreeValue {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NulFreeValue")
    }
}

fn no_nul_string() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^[^\u0000]*$"))
}

/// An object whose keys hold no U+0000 and whose other members are `values`.
fn nul_free_object(values: Ref) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property_names(Some(no_nul_string()))
        .additional_properties(Some(values))
}

/// The gauge metrics of the catalogue (levels: `set`, or a signed delta); the others are
/// counters. A test compares this list with the `metrics` table.
pub const GAUGE_METRICS: [&str; 3] = ["fields", "storage_gb", "team_members"];

fn integer(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(min))
        .maximum(Some(max))
}

fn nullable(t: Type) -> SchemaType {
    SchemaType::from_iter([t, Type::Null])
}

/// One event's members other than metric, action and quantity (null is taken as absent).
fn event_members(o: ObjectBuilder, event_id_required: bool) -> ObjectBuilder {
    let event_id = ObjectBuilder::new()
        .schema_type(if event_id_required {
            SchemaType::Type(Type::String)
        } else {
            nullable(Type::String)
        })
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(r"^[^\u0000]*$"))
        .description(Some(
            "Deduplication key: the same event_id is counted once.",
        ));
    let timestamp = timestamp(nullable(Type::String)).description(Some(
        "When the usage happened (default: now): not before the current billing period \
             and at most 5 minutes ahead of the server's clock (422 otherwise).",
    ));
    o.property("event_id", event_id)
        .property("timestamp", timestamp)
        .property("metadata", metadata_schema())
}

/// An RFC 3339 timestamp as the server parses it (the format alone is only an annotation in
/// JSON Schema 2020-12, so the pattern says it too).
fn timestamp(t: SchemaType) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(t)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::DateTime,
        )))
        .pattern(Some(TIMESTAMP_PATTERN))
}

/// Dates and times in range (a day the month does not have is still refused, 422).
const TIMESTAMP_PATTERN: &str = "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$";

fn labels(values: &'static [&'static str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
}

fn counter_metrics() -> Vec<&'static str> {
    CATALOGUE_METRICS
        .iter()
        .copied()
        .filter(|m| !GAUGE_METRICS.contains(m))
        .collect()
}

/// The three shapes an event takes, by the metric's kind: a counter increment (1–100000), a
/// gauge level (`set`, 0–1000000000) or a gauge delta (non-zero, −100000…100000).
fn event_shapes(event_id_required: bool) -> [ObjectBuilder; 3] {
    let increment = || {
        ObjectBuilder::new()
            .schema_type(nullable(Type::String))
            .enum_values(Some(["increment"]))
    };
    let counters = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(counter_metrics()));
    let counter = ObjectBuilder::new()
        .title(Some("A counter increment"))
        .property("metric", counters)
        .property("action", increment())
        .property("quantity", integer(1, 100_000).default(Some(1.into())));
    let level = ObjectBuilder::new()
        .title(Some("A gauge level"))
        .property("metric", labels(&GAUGE_METRICS))
        .property("action", labels(&["set"]))
        .property(
            "quantity",
            integer(0, 1_000_000_000).default(Some(1.into())),
        )
        .required("action");
    let non_zero = OneOfBuilder::new()
        .item(integer(-100_000, -1))
        .item(integer(1, 100_000))
        .default(Some(1.into()));
    let delta = ObjectBuilder::new()
        .title(Some("A gauge delta"))
        .property("metric", labels(&GAUGE_METRICS))
        .property("action", increment())
        .property("quantity", non_zero);
    [counter, level, delta].map(|o| {
        let o = o
            .schema_type(Type::Object)
            .property_names(Some(no_nul_string()))
            .additional_properties(Some(Ref::from_schema_name("NulFreeValue")));
        let o = event_members(o, event_id_required).required("metric");
        if event_id_required {
            o.required("event_id")
        } else {
            o
        }
    })
}

/// The body of POST /tenants/{id}/usage: one of the three event shapes. A metric outside the
/// catalogue answers 422 `unknown_metric`; unknown members are ignored.
pub(super) fn record_usage_schema() -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new();
    for shape in event_shapes(false) {
        one_of = one_of.item(shape);
    }
    RefOr::T(Schema::OneOf(one_of.build()))
}

/// The widest range any metric kind takes (the per-kind rules are in the description).
pub(super) fn quantity_schema() -> RefOr<Schema> {
    let o = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(-100_000))
        .maximum(Some(1_000_000_000))
        .default(Some(1.into()))
        .description(Some(
            "Counters: 1–100000. Gauges: with action=set 0–1000000000 (the new level); \
             otherwise a non-zero delta −100000…100000. Default 1.",
        ));
    RefOr::T(Schema::Object(o.build()))
}

/// Any JSON object (null is taken as none) up to 16 KiB, stored with the record. Like every
/// string of a body, its keys and values may not hold U+0000.
pub(super) fn metadata_schema() -> RefOr<Schema> {
    let o = nul_free_object(Ref::from_schema_name("NulFreeValue"))
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some(
            "Any JSON object up to 16 KiB (serialized), stored with the record.",
        ));
    RefOr::T(Schema::Object(o.build()))
}

fn batch_event_schema() -> ObjectBuilder {
    let event_id = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(200))
        .pattern(Some(r"^[^\u0000]*$"))
        .description(Some(
            "Required in a batch: the same event_id is counted once.",
        ));
    let timestamp = timestamp(nullable(Type::String));
    ObjectBuilder::new()
        .property("tenant_id", Ref::from_schema_name("TenantId"))
        .property("metric", Ref::from_schema_name("MetricName"))
        .property("quantity", quantity_schema())
        .property("event_id", event_id)
        .property("action", Ref::from_schema_name("UsageAction"))
        .property("timestamp", timestamp)
        .property("metadata", metadata_schema())
        .required("tenant_id")
        .required("metric")
        .required("quantity")
        .required("event_id")
}

/// `events`: 1 to 10 000 of them. An event that fails its checks is reported in `rejected`
/// by index and the others are still written.
pub(super) fn batch_events_schema() -> RefOr<Schema> {
    // Any item is taken: one that is not an event is not refused with the request but
    // reported in `rejected` by index (so the schema of an item cannot be a constraint).
    let item = utoipa::openapi::schema::AnyOfBuilder::new()
        .item(batch_event_schema())
        .item(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
        .description(Some(
            "An event (the first shape); anything else is reported in `rejected` by index.",
        ));
    let a = ArrayBuilder::new()
        .items(item)
        .min_items(Some(1))
        .max_items(Some(10_000));
    RefOr::T(Schema::Array(a.build()))
}
