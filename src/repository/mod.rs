//! Data access, one struct per aggregate. Functions take a connection they do not own, so a
//! service can compose several in one transaction; tenant-owned data is always queried with
//! its tenant.

pub mod audit;
pub mod coupons;
pub mod credits;
pub mod dunning;
pub mod idempotency;
pub mod invoices;
pub mod job_runs;
pub mod keyset;
pub mod outbox;
pub mod overage;
pub mod overage_pricing;
pub mod payments;
pub mod plans;
pub mod rates;
pub mod renewal;
pub mod reports;
pub mod subscriptions;
pub mod tenants;
pub mod usage;
