fn main() {
    // `sqlx::migrate!` embeds migrations/ at compile time; rebuild when a file there changes.
    println!("cargo:rerun-if-changed=migrations");
}
