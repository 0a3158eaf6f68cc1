//! Plans, their limits, and the metrics catalogue.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection};

use crate::billing::pricing::OveragePricing;
use crate::billing::types::{MetricKind, OveragePolicy, PlanTier};
use crate::repository::overage_pricing::OveragePricingRepository;

#[derive(Clone, Debug, FromRow)]
pub struct PlanRow {
    pub plan_id: String,
    pub name: String,
    pub name_ar: String,
    pub description: String,
    pub description_ar: String,
    pub tier: PlanTier,
    pub monthly_price_usd: Decimal,
    pub quarterly_price_usd: Decimal,
    pub yearly_price_usd: Decimal,
    pub trial_days: i32,
    pub overage: OveragePolicy,
    pub features: serde_json::Value,
    pub is_active: bool,
    pub sort_order: i32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A plan with its limits (`-1` unlimited; metrics not listed have limit 0) and the overage
/// pricing it sets (metrics not listed are priced per unit at the catalogue rate).
#[derive(Clone, Debug)]
pub struct Plan {
    pub row: PlanRow,
    pub limits: BTreeMap<String, i64>,
    pub overage_pricing: BTreeMap<String, OveragePricing>,
}

impl Plan {
    pub fn limit_for(&self, metric: &str) -> i64 {
        self.limits.get(metric).copied().unwrap_or(0)
    }

    pub fn price_usd(&self, cycle: crate::billing::types::BillingCycle) -> Decimal {
        use crate::billing::types::BillingCycle::*;
        match cycle {
            Monthly => self.row.monthly_price_usd,
            Quarterly => self.row.quarterly_price_usd,
            Yearly => self.row.yearly_price_usd,
        }
    }

    /// How the plan prices `metric`'s overage: its own pricing, else per unit at `catalogue_rate`.
    pub fn pricing_for(&self, metric: &str, catalogue_rate: Decimal) -> OveragePricing {
        self.overage_pricing
            .get(metric)
            .cloned()
            .unwrap_or_else(|| OveragePricing::per_unit(catalogue_rate))
    }

    pub fn is_free(&self) -> bool {
        self.row.monthly_price_usd.is_zero()
            && self.row.quarterly_price_usd.is_zero()
            && self.row.yearly_price_usd.is_zero()
    }
}

#[derive(Clone, Debug, FromRow)]
pub struct MetricRow {
    pub metric: String,
    pub kind: MetricKind,
    pub name: String,
    pub name_ar: String,
    pub overage_rate_usd: Decimal,
}

pub struct NewPlan<'a> {
    pub plan_id: &'a str,
    pub name: &'a str,
    pub name_ar: &'a str,
    pub description: &'a str,
    pub description_ar: &'a str,
    pub tier: PlanTier,
    pub monthly: Decimal,
    pub quarterly: Decimal,
    pub yearly: Decimal,
    pub trial_days: i32,
    pub overage: OveragePolicy,
    pub features: &'a serde_json::Value,
}

/// Fields a PATCH may change; `None` leaves the column alone.
#[derive(Default)]
pub struct PlanChanges {
    pub name: Option<String>,
    pub name_ar: Option<String>,
    pub description: Option<String>,
    pub description_ar: Option<String>,
    pub monthly: Option<Decimal>,
    pub quarterly: Option<Decimal>,
    pub yearly: Option<Decimal>,
    pub trial_days: Option<i32>,
    pub overage: Option<OveragePolicy>,
    pub features: Option<serde_json::Value>,
    pub is_active: Option<bool>,
}

/// The columns of [`PlanRow`], for the keyset list (a query built at run time).
const PLAN_COLUMNS: &str = "plan_id, name, name_ar, description, description_ar, tier, \
    monthly_price_usd, quarterly_price_usd, yearly_price_usd, trial_days, overage, features, \
    is_active, sort_order, created_at, updated_at";

pub struct PlanRepository;

impl PlanRepository {
    /// Locks the plan's row until the transaction ends; false when there is no such plan.
    pub async fn lock(conn: &mut PgConnection, plan_id: &str) -> sqlx::Result<bool> {
        let found = sqlx::query_scalar!(
            r#"SELECT 1 AS "found!" FROM plans WHERE plan_id = $1 FOR UPDATE"#,
            plan_id
        )
        .fetch_optional(conn)
        .await?;
        Ok(found.is_some())
    }

    pub async fn get(conn: &mut PgConnection, plan_id: &str) -> sqlx::Result<Option<Plan>> {
        let row = sqlx::query_as!(
            PlanRow,
            r#"SELECT plan_id, name, name_ar, description, description_ar, tier AS "tier: _",
                monthly_price_usd, quarterly_price_usd, yearly_price_usd, trial_days,
                overage AS "overage: _", features, is_active, sort_order, created_at, updated_at
             FROM plans WHERE plan_id = $1"#,
            plan_id
        )
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            None => Ok(None),
            Some(row) => {
                let limits = Self::limits(conn, &row.plan_id).await?;
                let overage_pricing =
                    OveragePricingRepository::for_plan(conn, &row.plan_id).await?;
                Ok(Some(Plan {
                    row,
                    limits,
                    overage_pricing,
                }))
            }
        }
    }

    pub async fn limits(
        conn: &mut PgConnection,
        plan_id: &str,
    ) -> sqlx::Result<BTreeMap<String, i64>> {
        let rows = sqlx::query!(
            "SELECT metric, limit_value FROM plan_limits WHERE plan_id = $1",
            plan_id
        )
        .fetch_all(conn)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.metric, r.limit_value))
            .collect())
    }

    /// Plans in catalogue order, with the true total, after the `starting_after` plan id.
    pub async fn list(
        conn: &mut PgConnection,
        active_only: bool,
        limit: i64,
        starting_after: Option<&str>,
    ) -> sqlx::Result<crate::pagination::Page<Plan>> {
        use crate::repository::keyset::{none, After, Keyset};
        const LIST: Keyset = Keyset::asc("plans", PLAN_COLUMNS, &["sort_order", "plan_id"]);
        let active = |q: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>| {
            if active_only {
                q.push(" AND is_active");
            }
        };
        let page: crate::pagination::Page<PlanRow> = LIST
            .page(conn, none, active, After::row(starting_after), limit)
            .await?;
        let ids: Vec<String> = page.items.iter().map(|r| r.plan_id.clone()).collect();
        let limit_rows = sqlx::query!(
            "SELECT plan_id, metric, limit_value FROM plan_limits WHERE plan_id = ANY($1)",
            &ids
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut pricing = OveragePricingRepository::for_plans(conn, &ids).await?;
        Ok(page.map(|row| {
            let overage_pricing = pricing.remove(&row.plan_id).unwrap_or_default();
            let limits = limit_rows
                .iter()
                .filter(|l| l.plan_id == row.plan_id)
                .map(|l| (l.metric.clone(), l.limit_value))
                .collect();
            Plan {
                row,
                limits,
                overage_pricing,
            }
        }))
    }

    /// Inserts a plan; `Ok(false)` when the plan id is taken.
    pub async fn create(conn: &mut PgConnection, p: &NewPlan<'_>) -> sqlx::Result<bool> {
        let done = sqlx::query!(
            "INSERT INTO plans (plan_id, name, name_ar, description, description_ar, tier,
                 monthly_price_usd, quarterly_price_usd, yearly_price_usd, trial_days, overage, features)
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)
             ON CONFLICT (plan_id) DO NOTHING",
            p.plan_id,
            p.name,
            p.name_ar,
            p.description,
            p.description_ar,
            p.tier as _,
            p.monthly,
            p.quarterly,
            p.yearly,
            p.trial_days,
            p.overage as _,
            p.features
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets the given limits (other metrics keep theirs).
    pub async fn set_limits(
        conn: &mut PgConnection,
        plan_id: &str,
        limits: &BTreeMap<String, i64>,
    ) -> sqlx::Result<()> {
        let metrics: Vec<&str> = limits.keys().map(String::as_str).collect();
        let values: Vec<i64> = limits.values().copied().collect();
        sqlx::query!(
            "INSERT INTO plan_limits (plan_id, metric, limit_value)
             SELECT $1, m, v FROM UNNEST($2::text[], $3::bigint[]) AS t(m, v)
             ON CONFLICT (plan_id, metric) DO UPDATE SET limit_value = EXCLUDED.limit_value, updated_at = now()",
            plan_id,
            &metrics as &[&str],
            &values
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Applies `changes`; `Ok(false)` when no such plan exists.
    pub async fn update(
        conn: &mut PgConnection,
        plan_id: &str,
        c: &PlanChanges,
    ) -> sqlx::Result<bool> {
        let done = sqlx::query!(
            "UPDATE plans SET
                name = COALESCE($2, name), name_ar = COALESCE($3, name_ar),
                description = COALESCE($4, description), description_ar = COALESCE($5, description_ar),
                monthly_price_usd = COALESCE($6, monthly_price_usd),
                quarterly_price_usd = COALESCE($7, quarterly_price_usd),
                yearly_price_usd = COALESCE($8, yearly_price_usd),
                trial_days = COALESCE($9, trial_days), overage = COALESCE($10, overage),
                features = COALESCE($11, features), is_active = COALESCE($12, is_active)
             WHERE plan_id = $1",
            plan_id,
            c.name.as_deref(),
            c.name_ar.as_deref(),
            c.description.as_deref(),
            c.description_ar.as_deref(),
            c.monthly,
            c.quarterly,
            c.yearly,
            c.trial_days,
            c.overage as _,
            c.features.as_ref(),
            c.is_active
        )
        .execute(conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn metrics(conn: &mut PgConnection) -> sqlx::Result<Vec<MetricRow>> {
        sqlx::query_as!(
            MetricRow,
            r#"SELECT metric, kind AS "kind: _", name, name_ar, overage_rate_usd
             FROM metrics ORDER BY metric"#
        )
        .fetch_all(conn)
        .await
    }

    pub async fn metric(conn: &mut PgConnection, metric: &str) -> sqlx::Result<Option<MetricRow>> {
        sqlx::query_as!(
            MetricRow,
            r#"SELECT metric, kind AS "kind: _", name, name_ar, overage_rate_usd
             FROM metrics WHERE metric = $1"#,
            metric
        )
        .fetch_optional(conn)
        .await
    }
}
