//! Use cases: each owns its transaction, locks, idempotency record and outbox event.

pub mod idempotency;
pub mod plans;
pub mod validate;
