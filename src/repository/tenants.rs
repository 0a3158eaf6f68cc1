//! Tenants (farms).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};

#[derive(Clone, Debug, FromRow)]
pub struct TenantRow {
    pub tenant_id: String,
    pub name: String,
    pub name_ar: String,
    pub email: String,
    pub phone: String,
    pub tax_id: Option<String>,
    pub tax_rate: Decimal,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewTenant<'a> {
    pub tenant_id: &'a str,
    pub name: &'a str,
    pub name_ar: &'a str,
    pub email: &'a str,
    pub phone: &'a str,
    pub tax_id: Option<&'a str>,
    pub tax_rate: Decimal,
}

pub const TENANT_COLUMNS: &str =
    "tenant_id, name, name_ar, email, phone, tax_id, tax_rate, is_active, created_at, updated_at";

pub struct TenantRepository;

impl TenantRepository {
    /// Inserts a tenant; `Ok(false)` when the id is taken.
    pub async fn create(conn: &mut PgConnection, t: &NewTenant<'_>) -> sqlx::Result<bool> {
        let done = sqlx::query(
            "INSERT INTO tenants (tenant_id, name, name_ar, email, phone, tax_id, tax_rate)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id) DO NOTHING",
        )
        .bind(t.tenant_id)
        .bind(t.name)
        .bind(t.name_ar)
        .bind(t.email)
        .bind(t.phone)
        .bind(t.tax_id)
        .bind(t.tax_rate)
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn get(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<Option<TenantRow>> {
        sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = $1"))
            .bind(tenant_id)
            .fetch_optional(conn)
            .await
    }

    /// Locks the tenant row: the first lock in the documented order
    /// tenant → subscription → invoice → payment.
    pub async fn lock(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<Option<TenantRow>> {
        sqlx::query_as(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = $1 FOR UPDATE"))
            .bind(tenant_id)
            .fetch_optional(conn)
            .await
    }
}
