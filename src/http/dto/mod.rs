//! Request and response types of the HTTP API, one module per resource. Each derives its
//! schema (`ToSchema`), so the document describes exactly what is parsed and sent; services
//! return domain values and these types map them to the wire (money as strings).

pub mod admin;
pub mod coupons;
pub mod discounts;
pub mod events;
pub mod invoice_schemas;
pub mod invoices;
pub mod number;
pub mod ops;
pub mod payments;
pub(crate) mod plan_schemas;
pub mod plans;
pub mod pricing_schemas;
pub mod query_schemas;
pub mod rates;
pub mod refunds;
pub mod reports;
pub mod subscriptions;
pub mod tenants;
pub mod usage;
pub mod usage_schemas;
pub mod webhooks;
