pub mod admin;
pub mod health;
pub mod lifecycle;
pub mod invoices;
pub mod payments;
pub mod plans;
pub mod tenants;
pub mod usage;
