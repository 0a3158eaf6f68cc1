//! Use cases: each owns its transaction, locks, idempotency record and outbox event.

pub mod audit;
pub mod credits;
pub mod dunning;
pub mod idempotency;
pub mod invoices;
pub mod invoice_document;
pub mod invoicing;
pub mod lifecycle;
pub mod overage;
pub mod payments;
pub mod plans;
pub mod refunds;
pub mod rates;
pub mod reports;
pub mod renewal;
pub mod validate;
pub mod webhooks;
pub mod tenants;
pub mod usage;
