//! Sample data for `db init --seed`.

pub async fn seed(_pool: &sqlx::PgPool) -> anyhow::Result<String> {
    Ok("seeding: not implemented yet".to_string())
}
