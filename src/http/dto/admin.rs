//! `POST /admin/billing-run`: what the daily jobs did.

use serde::Serialize;
use utoipa::ToSchema;

use crate::jobs::DailyReport;

/// The renewal job.
#[derive(Serialize, ToSchema)]
pub struct RenewalCounts {
    pub subscriptions_processed: u64,
    pub periods_renewed: u64,
    pub invoices_issued: u64,
    pub trials_converted: u64,
    pub canceled_at_period_end: u64,
    /// Renewals that failed (logged and rolled back); the next run retries them.
    pub failed: u64,
}

/// The dunning job.
#[derive(Serialize, ToSchema)]
pub struct DunningCounts {
    pub invoices_overdue: u64,
    pub subscriptions_past_due: u64,
    pub subscriptions_suspended: u64,
    pub subscriptions_reactivated: u64,
}

/// Counts per job of one run.
#[derive(Serialize, ToSchema)]
pub struct BillingRunCounts {
    /// The day the run was for (YYYY-MM-DD).
    #[schema(format = Date)]
    pub date: String,
    pub renewals: RenewalCounts,
    pub dunning: DunningCounts,
    pub idempotency_keys_purged: u64,
    pub elapsed_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct BillingRunReport {
    pub success: bool,
    pub report: BillingRunCounts,
}

impl From<DailyReport> for BillingRunReport {
    fn from(r: DailyReport) -> Self {
        let (n, d) = (r.renewals, r.dunning);
        BillingRunReport {
            success: true,
            report: BillingRunCounts {
                date: r.date,
                renewals: RenewalCounts {
                    subscriptions_processed: n.subscriptions_processed,
                    periods_renewed: n.periods_renewed,
                    invoices_issued: n.invoices_issued,
                    trials_converted: n.trials_converted,
                    canceled_at_period_end: n.canceled_at_period_end,
                    failed: n.failed,
                },
                dunning: DunningCounts {
                    invoices_overdue: d.invoices_overdue,
                    subscriptions_past_due: d.subscriptions_past_due,
                    subscriptions_suspended: d.subscriptions_suspended,
                    subscriptions_reactivated: d.subscriptions_reactivated,
                },
                idempotency_keys_purged: r.idempotency_keys_purged,
                elapsed_ms: u64::try_from(r.elapsed_ms).unwrap_or(u64::MAX),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The audit row of a run records the report itself: the answer must be that shape.
    #[test]
    fn the_answer_is_the_report_the_audit_log_records() {
        let r = DailyReport {
            date: "2026-01-02".into(),
            elapsed_ms: 12,
            idempotency_keys_purged: 3,
            ..Default::default()
        };
        let want = serde_json::json!({ "success": true, "report": r });
        assert_eq!(
            serde_json::to_value(BillingRunReport::from(r)).unwrap(),
            want
        );
    }
}
