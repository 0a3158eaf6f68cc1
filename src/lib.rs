#![forbid(unsafe_code)]
//! SAHOOL Billing Core.

pub mod api_path;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod gateways;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod pagination;
pub mod repository;
pub mod request_context;
pub mod seed;
pub mod server;
pub mod services;
pub mod state;
pub mod storable;
pub mod telemetry;
