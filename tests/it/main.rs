//! The integration tests: one binary (it links once), one module per area. Each test gets its own
//! database cloned from a migrated template and drives the real router over HTTP.

#[macro_use]
mod common;
mod fakes;

mod api_audit;
mod api_coupon_redemptions;
mod api_coupons;
mod api_events;
mod api_gateway_prefix;
mod api_invoices;
mod api_metrics;
mod api_openapi;
mod api_payments;
mod api_plans;
mod api_rate_limit;
mod api_rates;
mod api_refunds;
mod api_reports;
mod api_reports_by_plan;
mod api_tenants;
mod api_usage;
mod api_usage_batch;
mod architecture;
mod billing_dunning;
mod billing_engine;
mod cli;
mod coupon_discounts;
mod db_tls;
mod faults;
mod gateway_stripe;
mod gateway_stripe_contract;
mod gateway_stripe_reconcile;
mod gateway_tharwatt;
mod invoice_arithmetic;
mod invoice_document;
mod logs;
mod outbox_platform_stream;
mod outbox_relay;
mod overage_pricing;
mod platform_tokens;
mod repo_invoices_payments;
mod repo_tenants_subscriptions;
mod repo_usage;
mod security_headers;
mod sizes;
mod sql_checked;
mod subscription_changes;
mod test_databases;
mod usage_partitions;
mod usage_two_replicas;
