//! Quota arithmetic shared by usage recording, the quota report and the gateway's enforce call.

use super::types::OveragePolicy;

/// `-1` in the catalogue.
pub const UNLIMITED: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaView {
    pub limit: i64,
    pub used: i64,
}

impl QuotaView {
    pub fn is_unlimited(&self) -> bool {
        self.limit == UNLIMITED
    }

    /// Allowed iff `used + quantity <= limit` (unlimited always allows).
    pub fn fits(&self, quantity: i64) -> bool {
        self.is_unlimited() || self.used.saturating_add(quantity) <= self.limit
    }

    /// Whether a request may proceed: within the limit, or beyond it on a plan that bills overage.
    pub fn allows(&self, quantity: i64, overage: OveragePolicy) -> bool {
        self.fits(quantity) || overage == OveragePolicy::Billed
    }

    /// Units left before the limit; `None` when unlimited.
    pub fn remaining(&self) -> Option<i64> {
        (!self.is_unlimited()).then(|| (self.limit - self.used).max(0))
    }

    /// Percentage of the limit used, one decimal; `None` when unlimited. 0-limit metrics report
    /// 100 once anything is used, else 0. A share of a count, not money: computed exactly in
    /// integers and only the rounded tenths become a float for the JSON number.
    #[allow(clippy::float_arithmetic)]
    pub fn percentage(&self) -> Option<f64> {
        if self.is_unlimited() {
            return None;
        }
        if self.limit == 0 {
            return Some(if self.used > 0 { 100.0 } else { 0.0 });
        }
        let tenths = (self.used as i128 * 1000 + self.limit as i128 / 2) / self.limit as i128;
        Some(tenths as f64 / 10.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_quantity_counts() {
        let q = QuotaView { limit: 10, used: 9 };
        assert!(q.fits(1));
        assert!(!q.fits(2));
        assert!(q.allows(1000, OveragePolicy::Billed));
        assert!(!q.allows(1000, OveragePolicy::Blocked));
        assert_eq!(q.remaining(), Some(1));
    }

    #[test]
    fn unlimited_and_zero_limits() {
        let u = QuotaView {
            limit: UNLIMITED,
            used: 5,
        };
        assert!(u.fits(i64::MAX));
        assert_eq!(u.remaining(), None);
        let z = QuotaView { limit: 0, used: 0 };
        assert!(!z.fits(1));
        assert_eq!(z.percentage(), Some(0.0));
        assert_eq!(QuotaView { limit: 3, used: 1 }.percentage(), Some(33.3));
    }
}
