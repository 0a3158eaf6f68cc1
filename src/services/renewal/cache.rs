//! The renewal run's caches.

use crate::repository::coupons::redemptions::RedemptionRepository;
use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::billing::types::Currency;
use crate::error::{AppError, AppResult};
use crate::repository::plans::{Plan, PlanRepository};
use crate::repository::rates::RateRepository;
use crate::repository::renewal::RenewalRepository;
use crate::repository::subscriptions::SubscriptionRow;
use crate::repository::tenants::TenantRow;

/// Per-run caches: plans and exchange rates do not change within a run. Per batch: the
/// tenants of the claimed subscriptions, and which of them have credit or usage at all, so
/// the common case (no credit, no usage counters) costs no query per subscription.
#[derive(Default)]
pub(super) struct RunCache {
    pub(super) plans: HashMap<String, Plan>,
    pub(super) rates: HashMap<Currency, Decimal>,
    pub(super) tenants: HashMap<String, TenantRow>,
    pub(super) with_credit: HashSet<String>,
    pub(super) with_usage: HashSet<String>,
    /// Subscriptions of the batch that hold a coupon.
    pub(super) with_coupon: HashSet<uuid::Uuid>,
}

impl RunCache {
    pub(super) async fn load_batch(
        &mut self,
        conn: &mut PgConnection,
        subs: &[SubscriptionRow],
    ) -> sqlx::Result<()> {
        let ids: Vec<&str> = subs.iter().map(|s| s.tenant_id.as_str()).collect();
        self.tenants = RenewalRepository::tenants(&mut *conn, &ids)
            .await?
            .into_iter()
            .map(|t| (t.tenant_id.clone(), t))
            .collect();
        self.with_credit = RenewalRepository::tenants_with_credit(&mut *conn, &ids).await?;
        self.with_usage = RenewalRepository::tenants_with_usage(&mut *conn, &ids).await?;
        let subscriptions: Vec<uuid::Uuid> = subs.iter().map(|s| s.subscription_id).collect();
        self.with_coupon = RedemptionRepository::holders(&mut *conn, &subscriptions).await?;
        Ok(())
    }
}

impl RunCache {
    pub(super) async fn plan(&mut self, conn: &mut PgConnection, plan_id: &str) -> AppResult<Plan> {
        if let Some(p) = self.plans.get(plan_id) {
            return Ok(p.clone());
        }
        let p = PlanRepository::get(conn, plan_id).await?.ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("subscription refers to a missing plan"))
        })?;
        self.plans.insert(plan_id.to_string(), p.clone());
        Ok(p)
    }

    pub(super) async fn rate(
        &mut self,
        conn: &mut PgConnection,
        currency: Currency,
        on: NaiveDate,
    ) -> AppResult<Decimal> {
        if let Some(r) = self.rates.get(&currency) {
            return Ok(*r);
        }
        let r = RateRepository::rate_on(conn, currency, on).await?;
        self.rates.insert(currency, r);
        Ok(r)
    }
}
