//! How each plan prices each metric's overage, where it does not use the catalogue's rate.

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::PgConnection;

use crate::billing::pricing::OveragePricing;

pub struct OveragePricingRepository;

impl OveragePricingRepository {
    /// metric → pricing for one plan (metrics without a row use the catalogue rate).
    pub async fn for_plan(
        conn: &mut PgConnection,
        plan_id: &str,
    ) -> sqlx::Result<BTreeMap<String, OveragePricing>> {
        let rows = sqlx::query!(
            r#"SELECT metric, pricing AS "pricing: Json<OveragePricing>"
               FROM plan_overage_pricing WHERE plan_id = $1"#,
            plan_id
        )
        .fetch_all(conn)
        .await?;
        Ok(rows.into_iter().map(|r| (r.metric, r.pricing.0)).collect())
    }

    /// plan → metric → pricing for several plans at once.
    pub async fn for_plans(
        conn: &mut PgConnection,
        plan_ids: &[String],
    ) -> sqlx::Result<BTreeMap<String, BTreeMap<String, OveragePricing>>> {
        let rows = sqlx::query!(
            r#"SELECT plan_id, metric, pricing AS "pricing: Json<OveragePricing>"
               FROM plan_overage_pricing WHERE plan_id = ANY($1)"#,
            plan_ids
        )
        .fetch_all(conn)
        .await?;
        let mut out: BTreeMap<String, BTreeMap<String, OveragePricing>> = BTreeMap::new();
        for r in rows {
            out.entry(r.plan_id)
                .or_default()
                .insert(r.metric, r.pricing.0);
        }
        Ok(out)
    }

    /// Sets the given metrics' pricing (others keep theirs); `None` goes back to the
    /// catalogue rate.
    pub async fn set(
        conn: &mut PgConnection,
        plan_id: &str,
        pricing: &BTreeMap<String, Option<OveragePricing>>,
    ) -> sqlx::Result<()> {
        for (metric, p) in pricing {
            match p {
                Some(p) => {
                    sqlx::query!(
                        "INSERT INTO plan_overage_pricing (plan_id, metric, pricing)
                         VALUES ($1, $2, $3)
                         ON CONFLICT (plan_id, metric)
                         DO UPDATE SET pricing = EXCLUDED.pricing, updated_at = now()",
                        plan_id,
                        metric,
                        Json(p) as _
                    )
                    .execute(&mut *conn)
                    .await?;
                }
                None => {
                    sqlx::query!(
                        "DELETE FROM plan_overage_pricing WHERE plan_id = $1 AND metric = $2",
                        plan_id,
                        metric
                    )
                    .execute(&mut *conn)
                    .await?;
                }
            }
        }
        Ok(())
    }
}
