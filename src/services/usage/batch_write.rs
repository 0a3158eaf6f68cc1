//! The writes of a batch (see `batch`): the records in one UNNEST insert, then the counters
//! from the rows actually inserted.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::UsageInput;
use crate::billing::types::{MetricKind, UsageAction};
use crate::error::AppResult;
use crate::repository::usage::{CounterDeltas, CounterKey, RecordColumns, UsageRepository};

/// An event that passed every check, with the counter window it belongs to.
pub(super) struct Accepted {
    pub(super) index: usize,
    pub(super) tenant_id: String,
    pub(super) subscription_id: Option<uuid::Uuid>,
    pub(super) kind: MetricKind,
    pub(super) window_start: NaiveDate,
    pub(super) input: UsageInput,
}

/// Inserts the records sorted by (tenant, event id); returns, per (sorted) event, whether
/// its row was inserted (false: the event id was already stored).
pub(super) async fn write_records(
    conn: &mut PgConnection,
    accepted: &mut [Accepted],
    now: DateTime<Utc>,
) -> AppResult<Vec<bool>> {
    accepted
        .sort_by(|a, b| (&a.tenant_id, &a.input.event_id).cmp(&(&b.tenant_id, &b.input.event_id)));
    if accepted.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = RecordColumns::default();
    for a in accepted.iter() {
        c.record_id.push(Uuid::now_v7());
        c.tenant_id.push(a.tenant_id.clone());
        c.subscription_id.push(a.subscription_id);
        c.metric.push(a.input.metric.as_str().to_string());
        c.action.push(match a.input.action {
            UsageAction::Increment => "increment",
            UsageAction::Set => "set",
        });
        c.quantity.push(a.input.quantity);
        c.event_id
            .push(a.input.event_id.clone().unwrap_or_default());
        c.recorded_at.push(a.input.timestamp.unwrap_or(now));
        c.metadata.push(a.input.metadata.clone());
    }
    let inserted: HashSet<Uuid> = UsageRepository::insert_records(conn, &c)
        .await?
        .into_iter()
        .collect();
    Ok(c.record_id.iter().map(|id| inserted.contains(id)).collect())
}

/// Counter totals from the inserted events: one UPSERT for all counter metrics, then the
/// gauge events in batch order (their rows created if needed and locked in key order first).
pub(super) async fn apply_counters(
    conn: &mut PgConnection,
    accepted: &[Accepted],
    inserted: &[bool],
) -> AppResult<()> {
    let mut sums: BTreeMap<(&str, &str, NaiveDate), i64> = BTreeMap::new();
    let mut gauges: Vec<&Accepted> = Vec::new();
    for (a, _) in accepted.iter().zip(inserted).filter(|(_, ins)| **ins) {
        if a.kind == MetricKind::Gauge {
            gauges.push(a);
        } else {
            *sums
                .entry((&a.tenant_id, a.input.metric.as_str(), a.window_start))
                .or_default() += a.input.quantity;
        }
    }

    let gauge_keys: BTreeSet<(&str, &str, NaiveDate)> = gauges
        .iter()
        .map(|a| {
            (
                a.tenant_id.as_str(),
                a.input.metric.as_str(),
                a.window_start,
            )
        })
        .collect();
    for &(tenant_id, metric, window_start) in &gauge_keys {
        let key = CounterKey {
            tenant_id,
            metric,
            window_start,
        };
        UsageRepository::ensure_counter(conn, key, true).await?;
    }
    UsageRepository::lock_counters(conn, &columns(gauge_keys.iter().map(|k| (*k, 0)))).await?;

    UsageRepository::add_to_counters(conn, &columns(sums.into_iter())).await?;

    gauges.sort_by_key(|a| a.index);
    for a in gauges {
        let key = CounterKey {
            tenant_id: &a.tenant_id,
            metric: a.input.metric.as_str(),
            window_start: a.window_start,
        };
        // Not blocked, limit -1: a batch meters what already happened and never refuses.
        UsageRepository::apply(conn, key, a.input.action, a.input.quantity, -1, false).await?;
    }
    Ok(())
}

/// Key-sorted (tenant, metric, window) → amount pairs as the repository's column vectors.
fn columns<'a>(pairs: impl Iterator<Item = ((&'a str, &'a str, NaiveDate), i64)>) -> CounterDeltas {
    let mut d = CounterDeltas::default();
    for ((t, m, w), n) in pairs {
        d.tenant_id.push(t.to_string());
        d.metric.push(m.to_string());
        d.window_start.push(w);
        d.amount.push(n);
    }
    d
}
