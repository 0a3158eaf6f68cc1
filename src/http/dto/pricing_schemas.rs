//! The schemas of a plan's `overage_pricing` (SPEC section 10): `{metric: {model, …}}`, one of
//! per_unit, graduated, volume or package. Prices are decimals with up to 6 decimals, given as
//! strings (preferred) or numbers and answered as strings.

use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::RefOr;

use crate::http::openapi::components::CATALOGUE_METRICS;

/// A price ≥ 0 with at most 6 decimals (and at most 12 integer digits).
fn price_input() -> RefOr<Schema> {
    let text = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^[0-9]{1,12}(\.[0-9]{1,6})?$"));
    let number = ObjectBuilder::new()
        .schema_type(Type::Number)
        .minimum(Some(0))
        .maximum(Some(999_999_999_999.0))
        .multiple_of(Some(0.000001));
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new().item(text).item(number).build(),
    ))
}

/// A count of units: 1 to a trillion.
fn units() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(1_000_000_000_000i64))
}

fn price_output() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^[0-9]+(\.[0-9]+)?$"))
}

fn model(name: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([name]))
}

fn closed(o: ObjectBuilder) -> ObjectBuilder {
    o.schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// A tier table: `[{up_to, unit_price, flat_fee?}]`.
fn tiers(input: bool) -> ArrayBuilder {
    let price = |o: ObjectBuilder, key: &str| -> ObjectBuilder {
        if input {
            o.property(key, price_input())
        } else {
            o.property(key, price_output())
        }
    };
    let up_to = OneOfBuilder::new()
        .item(units())
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "The last overage unit of the tier (units count from 1 above the limit); null \
             for the last tier, which has no end.",
        ));
    let tier: RefOr<Schema> = RefOr::T(Schema::Object(
        price(
            price(
                closed(ObjectBuilder::new()).property("up_to", up_to),
                "unit_price",
            ),
            "flat_fee",
        )
        .required("up_to")
        .required("unit_price")
        .build(),
    ));
    ArrayBuilder::new()
        .items(tier)
        .min_items(Some(1))
        .max_items(Some(50))
        .description(Some(
            "In ascending order of up_to; only the last is open (up_to null).",
        ))
}

/// The four models; `input` takes prices as strings or numbers, answers write strings.
fn pricing(input: bool) -> RefOr<Schema> {
    let price = |o: ObjectBuilder, key: &str| -> ObjectBuilder {
        if input {
            o.property(key, price_input())
        } else {
            o.property(key, price_output())
        }
    };
    let tiers = || tiers(input);
    let per_unit = price(
        closed(ObjectBuilder::new()).property("model", model("per_unit")),
        "unit_price",
    )
    .required("model")
    .required("unit_price");
    let graduated = closed(ObjectBuilder::new())
        .property("model", model("graduated"))
        .property("tiers", tiers())
        .required("model")
        .required("tiers")
        .description(Some("Each unit at the price of the tier it falls in."));
    let volume = closed(ObjectBuilder::new())
        .property("model", model("volume"))
        .property("tiers", tiers())
        .required("model")
        .required("tiers")
        .description(Some(
            "All units at the price of the tier the total falls in, plus its flat fee.",
        ));
    let package = price(
        closed(ObjectBuilder::new())
            .property("model", model("package"))
            .property("package_size", units()),
        "package_price",
    )
    .required("model")
    .required("package_size")
    .required("package_price")
    .description(Some("A price per started package of package_size units."));
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(per_unit)
            .item(graduated)
            .item(volume)
            .item(package)
            .build(),
    ))
}

fn by_metric(values: RefOr<Schema>, description: &str) -> RefOr<Schema> {
    let keys = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(CATALOGUE_METRICS));
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(keys))
            .additional_properties(Some(values))
            .description(Some(description))
            .build(),
    ))
}

/// `overage_pricing` in a plan answer: the metrics the plan prices itself.
pub(super) fn overage_pricing_schema() -> RefOr<Schema> {
    by_metric(
        pricing(false),
        "metric → how the plan prices its overage; a metric not listed is priced per unit at \
         the catalogue's overage rate.",
    )
}

/// `overage_pricing` of a plan create: metric → pricing.
pub(super) fn overage_pricing_input_schema() -> RefOr<Schema> {
    by_metric(
        pricing(true),
        "metric → how the plan prices its overage (default: per unit at the catalogue rate). \
         Tiers not ascending, no open last tier, negative prices or more than 6 decimals → 422.",
    )
}

/// `overage_pricing` of a plan update: a metric set to null goes back to the catalogue rate.
pub(super) fn overage_pricing_update_schema() -> RefOr<Schema> {
    let nullable = RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(pricing(true))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    ));
    let map = by_metric(
        nullable,
        "metric → pricing to set, or null to go back to per unit at the catalogue rate; \
         metrics not named keep theirs. null or absent: no change.",
    );
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(map)
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    ))
}
