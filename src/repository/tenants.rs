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

/// The columns of [`TenantRow`], for the keyset list (a query built at run time).
const TENANT_COLUMNS: &str = "tenant_id, name, name_ar, email, phone, tax_id, tax_rate, \
    is_active, created_at, updated_at";

pub struct TenantRepository;

impl TenantRepository {
    /// Inserts a tenant; `Ok(false)` when the id is taken.
    pub async fn create(conn: &mut PgConnection, t: &NewTenant<'_>) -> sqlx::Result<bool> {
        let done = sqlx::query!(
            "INSERT INTO tenants (tenant_id, name, name_ar, email, phone, tax_id, tax_rate)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id) DO NOTHING",
            t.tenant_id,
            t.name,
            t.name_ar,
            t.email,
            t.phone,
            t.tax_id,
            t.tax_rate
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn get(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<Option<TenantRow>> {
        sqlx::query_as!(
            TenantRow,
            "SELECT tenant_id, name, name_ar, email, phone, tax_id, tax_rate, is_active, created_at,
                 updated_at
             FROM tenants WHERE tenant_id = $1",
            tenant_id
        )
        .fetch_optional(conn)
        .await
    }

    /// Locks the tenant row: the first lock in the documented order
    /// tenant → subscription → invoice → payment. `NO KEY UPDATE` (here and for the other
    /// aggregate locks) still excludes every other writer of the row, but not the `KEY SHARE`
    /// that a foreign-key check takes when a child row (an invoice, a credit entry) is inserted
    /// — so a renewal inserting an invoice never waits on, or deadlocks with, a request that
    /// holds the tenant.
    pub async fn lock(conn: &mut PgConnection, tenant_id: &str) -> sqlx::Result<Option<TenantRow>> {
        sqlx::query_as!(
            TenantRow,
            "SELECT tenant_id, name, name_ar, email, phone, tax_id, tax_rate, is_active, created_at,
                 updated_at
             FROM tenants WHERE tenant_id = $1 FOR NO KEY UPDATE",
            tenant_id
        )
        .fetch_optional(conn)
        .await
    }
}

/// Fields an update may change; `None` leaves the column alone.
#[derive(Clone, Debug, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub name_ar: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `Some(None)` clears the tax id.
    pub tax_id: Option<Option<String>>,
    pub tax_rate: Option<Decimal>,
}

impl TenantRepository {
    /// Newest first (`created_at DESC, tenant_id DESC`), after the `starting_after` tenant id,
    /// with the true total. An unknown cursor yields an empty page, as the plan list does.
    pub async fn list(
        conn: &mut PgConnection,
        limit: i64,
        starting_after: Option<&str>,
    ) -> sqlx::Result<crate::pagination::Page<TenantRow>> {
        use crate::repository::keyset::{none, After, Keyset};
        const LIST: Keyset = Keyset::desc("tenants", TENANT_COLUMNS, &["created_at", "tenant_id"]);
        let after = After::row(starting_after);
        LIST.page(conn, none, none, after, limit).await
    }

    pub async fn count(conn: &mut PgConnection) -> sqlx::Result<i64> {
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM tenants"#)
            .fetch_one(conn)
            .await
    }

    /// Applies `changes`; `None` when the tenant does not exist.
    pub async fn update(
        conn: &mut PgConnection,
        tenant_id: &str,
        changes: &TenantChanges,
    ) -> sqlx::Result<Option<TenantRow>> {
        // A column whose change is `None` keeps its value; `tax_id` is set (possibly to NULL)
        // only when `$6` says it changes.
        sqlx::query_as!(
            TenantRow,
            "UPDATE tenants SET updated_at = now(), name = COALESCE($2, name),
                 name_ar = COALESCE($3, name_ar), email = COALESCE($4, email),
                 phone = COALESCE($5, phone), tax_id = CASE WHEN $6 THEN $7 ELSE tax_id END,
                 tax_rate = COALESCE($8, tax_rate)
             WHERE tenant_id = $1
             RETURNING tenant_id, name, name_ar, email, phone, tax_id, tax_rate, is_active,
                 created_at, updated_at",
            tenant_id,
            changes.name.as_deref(),
            changes.name_ar.as_deref(),
            changes.email.as_deref(),
            changes.phone.as_deref(),
            changes.tax_id.is_some(),
            changes.tax_id.as_ref().and_then(|t| t.as_deref()),
            changes.tax_rate
        )
        .fetch_optional(conn)
        .await
    }
}
