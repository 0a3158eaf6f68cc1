//! The command line: `serve` (default), `migrate`, `db ...`, `token`.

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "billing-core", version, about = "SAHOOL Billing Core: plans, usage, invoices and payments")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default). Applies pending migrations first.
    Serve {
        /// Do not apply migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Database set-up and inspection.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Print a signed JWT for local use.
    Token {
        /// super_admin, tenant_admin, tenant_user or service.
        #[arg(long)]
        role: String,
        /// The tenant the token belongs to (required for tenant roles).
        #[arg(long)]
        tenant: Option<String>,
        /// Subject (user id) claim.
        #[arg(long, default_value = "local-user")]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create the schema (apply migrations); optionally drop everything first and seed sample data.
    Init {
        /// Add sample tenants, subscriptions, an invoice with its payment, and usage records.
        #[arg(long)]
        seed: bool,
        /// Drop every table first (asks for confirmation unless --yes).
        #[arg(long)]
        drop: bool,
        /// Do not ask before dropping.
        #[arg(long)]
        yes: bool,
        /// Only report connection and migration state; exit non-zero when unreachable.
        #[arg(long)]
        check_only: bool,
    },
    /// Start the embedded PostgreSQL if needed and print its URL.
    Embedded {
        /// Stop the embedded server instead.
        #[arg(long)]
        stop: bool,
    },
}
