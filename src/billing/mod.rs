//! Pure domain logic: no I/O here, so everything is unit- and property-tested.

pub mod discount;
pub mod money;
pub mod period;
pub mod pricing;
pub mod proration;
pub mod quota;
pub mod types;
