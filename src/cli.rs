//! The command line: `serve` (default), `migrate`, `db ...`, `token`.

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Without DATABASE_URL, every command that needs a database starts (or reuses) a private PostgreSQL
from the installed server binaries in ./.pgdata (or BILLING_PGDATA). A set DATABASE_URL always wins.
Configuration comes from the environment and .env; see .env.example.

Examples:
  billing-core                               serve on PORT (8089)
  billing-core db init --seed                schema plus sample data
  billing-core token --role super_admin      a bearer token for curl";

#[derive(Parser, Debug)]
#[command(
    name = "billing-core",
    version,
    about = "SAHOOL Billing Core: plans, usage, invoices and payments",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default). Applies pending migrations first.
    Serve {
        /// Do not apply migrations at start (when a deploy step runs `billing-core migrate`).
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending migrations and exit (the same files `sqlx migrate run` applies).
    Migrate,
    /// Database set-up and inspection.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Run the daily billing jobs (renewals, trial ends, dunning) as of a date and print what
    /// they did. Safe beside a running service: rows are claimed with SKIP LOCKED.
    Bill {
        /// The date to bill as of, YYYY-MM-DD (default: today, UTC).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
        /// Apply pending migrations first.
        #[arg(long)]
        migrate: bool,
    },
    /// Print a signed JWT (HS256, JWT_SECRET) for local use, e.g. with curl.
    Token {
        /// The role the token carries.
        #[arg(long, value_parser = ["super_admin", "tenant_admin", "tenant_user", "service"])]
        role: String,
        /// The tenant the token belongs to (required for tenant_admin and tenant_user).
        #[arg(long)]
        tenant: Option<String>,
        /// Subject (user id) claim.
        #[arg(long, default_value = "local-user")]
        subject: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(i64).range(1..=31_622_400))]
        ttl: i64,
    },
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Create the schema (apply migrations); optionally drop everything first and seed sample data.
    ///
    /// Exit codes: 0 done (or, with --check-only, reachable and migrated); 1 unreachable or
    /// drop not confirmed; 3 reachable but migrations pending or failed (--check-only).
    Init {
        /// Add sample data: two demo farms (demo-farm-active, demo-farm-trial), a paid invoice with
        /// its payment, and usage records. Running it again adds nothing.
        #[arg(long)]
        seed: bool,
        /// Drop every table and all data first (asks for confirmation unless --yes; without a
        /// terminal the answer is "no").
        #[arg(long)]
        drop: bool,
        /// Do not ask before dropping.
        #[arg(long, requires = "drop")]
        yes: bool,
        /// Only report connection and migration state; change nothing.
        #[arg(long, conflicts_with_all = ["seed", "drop"])]
        check_only: bool,
    },
    /// Start the embedded PostgreSQL if needed and print its URL (scripts/test uses this).
    Embedded {
        /// Stop the embedded server instead.
        #[arg(long)]
        stop: bool,
    },
}
