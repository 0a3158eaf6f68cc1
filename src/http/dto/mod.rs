//! Request and response types of the HTTP API, one module per resource. Each derives its
//! schema (`ToSchema`), so the document describes exactly what is parsed and sent; services
//! return domain values and these types map them to the wire (money as strings).

pub mod number;
pub mod ops;
mod plan_schemas;
pub mod plans;
pub mod rates;
pub mod subscriptions;
pub mod tenants;
pub mod usage;
pub mod usage_schemas;
