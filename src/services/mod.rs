//! Use cases: each owns its transaction, locks, idempotency record and outbox event.

pub mod audit;
pub mod credits;
pub mod dunning;
pub mod gateway_flow;
pub mod idempotency;
pub mod invoice_document;
pub mod invoices;
pub mod invoicing;
pub mod lifecycle;
pub mod missing;
pub mod overage;
pub mod payments;
pub mod plans;
pub mod rates;
pub mod refunds;
pub mod renewal;
pub mod reports;
pub mod tenants;
pub mod usage;
pub mod validate;
pub mod webhooks;
