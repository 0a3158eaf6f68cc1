//! Pure domain logic: no I/O here, so everything is unit- and property-tested.

pub mod money;
pub mod period;
pub mod proration;
pub mod quota;
pub mod types;
