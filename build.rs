fn main() {
    // `sqlx::migrate!` embeds migrations/ at compile time; rebuild when a file there changes.
    println!("cargo:rerun-if-changed=migrations");
    // The query macros read .sqlx/ (offline) or describe each query against DATABASE_URL
    // (scripts/sqlx-prepare); cargo does not track either, so rebuild the crate when the
    // committed metadata or the mode changes. scripts/sqlx-prepare writes to a new
    // SQLX_OFFLINE_DIR every run, which forces every macro to expand again.
    println!("cargo:rerun-if-changed=.sqlx");
    println!("cargo:rerun-if-env-changed=SQLX_OFFLINE");
    println!("cargo:rerun-if-env-changed=SQLX_OFFLINE_DIR");
}
