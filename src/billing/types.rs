//! Enums and identifiers shared by every layer. Enum labels are the lowercase API values and
//! match the PostgreSQL enum labels in `migrations/` exactly.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! api_enum {
    ($(#[$m:meta])* $name:ident, $pg:literal, { $($variant:ident => $label:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(type_name = $pg, rename_all = "snake_case")]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($label => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

api_enum!(PlanTier, "plan_tier", {
    Free => "free", Starter => "starter", Professional => "professional", Enterprise => "enterprise"
});
api_enum!(OveragePolicy, "overage_policy", { Billed => "billed", Blocked => "blocked" });
api_enum!(MetricKind, "metric_kind", {
    PeriodCounter => "period_counter", DailyCounter => "daily_counter", Gauge => "gauge"
});
api_enum!(SubscriptionStatus, "subscription_status", {
    Trial => "trial", Active => "active", PastDue => "past_due", Suspended => "suspended",
    Canceled => "canceled"
});
api_enum!(BillingCycle, "billing_cycle", {
    Monthly => "monthly", Quarterly => "quarterly", Yearly => "yearly"
});
api_enum!(InvoiceStatus, "invoice_status", {
    Draft => "draft", Pending => "pending", Paid => "paid", Overdue => "overdue",
    Canceled => "canceled", Refunded => "refunded"
});
api_enum!(InvoiceKind, "invoice_kind", {
    Subscription => "subscription", Proration => "proration", Manual => "manual"
});
api_enum!(InvoiceLineKind, "invoice_line_kind", {
    Plan => "plan", Overage => "overage", Proration => "proration", Credit => "credit",
    Other => "other", Discount => "discount"
});
api_enum!(PaymentMethod, "payment_method", {
    CreditCard => "credit_card", Tharwatt => "tharwatt", Cash => "cash",
    BankTransfer => "bank_transfer", MobileMoney => "mobile_money"
});
api_enum!(PaymentStatus, "payment_status", {
    Pending => "pending", Processing => "processing", Succeeded => "succeeded",
    Failed => "failed", Refunded => "refunded"
});
api_enum!(RefundStatus, "refund_status", {
    Pending => "pending", Succeeded => "succeeded", Failed => "failed"
});
api_enum!(UsageAction, "usage_action", { Increment => "increment", Set => "set" });

impl SubscriptionStatus {
    /// Live subscriptions: at most one per tenant (a unique partial index enforces it).
    pub fn is_live(self) -> bool {
        !matches!(self, SubscriptionStatus::Canceled)
    }
}

impl BillingCycle {
    pub fn months(self) -> u32 {
        match self {
            BillingCycle::Monthly => 1,
            BillingCycle::Quarterly => 3,
            BillingCycle::Yearly => 12,
        }
    }
    pub fn label_en(self) -> &'static str {
        match self {
            BillingCycle::Monthly => "Monthly",
            BillingCycle::Quarterly => "Quarterly",
            BillingCycle::Yearly => "Yearly",
        }
    }
    pub fn label_ar(self) -> &'static str {
        match self {
            BillingCycle::Monthly => "شهري",
            BillingCycle::Quarterly => "ربع سنوي",
            BillingCycle::Yearly => "سنوي",
        }
    }
}

/// The currency allow-list. All have two decimals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Currency {
    Usd,
    Yer,
    Sar,
    Aed,
    Eur,
}

impl Currency {
    pub const ALL: &'static [Currency] = &[
        Currency::Usd,
        Currency::Yer,
        Currency::Sar,
        Currency::Aed,
        Currency::Eur,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Yer => "YER",
            Currency::Sar => "SAR",
            Currency::Aed => "AED",
            Currency::Eur => "EUR",
        }
    }

    /// Case-insensitive: `"yer"` is accepted as `YER`.
    pub fn parse(s: &str) -> Option<Self> {
        let up = s.trim().to_ascii_uppercase();
        Currency::ALL.iter().copied().find(|c| c.code() == up)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
            .ok_or_else(|| format!("unsupported currency {s:?}; allowed: USD, YER, SAR, AED, EUR"))
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_string()
    }
}

/// Validated identifier types. Parsing at the edge means the inside never re-checks strings.
macro_rules! id_type {
    ($name:ident, $check:expr, $what:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(s) {
                    Ok($name(s.to_string()))
                } else {
                    Err(format!("{:?} is not a valid {}", truncate(s), $what))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                $name::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// `[A-Za-z0-9_-]{1,100}`
pub fn is_tenant_id(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `[a-z][a-z0-9_]{0,99}` — plan ids and metric names.
pub fn is_slug(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=100).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

id_type!(
    TenantId,
    is_tenant_id,
    "tenant id ([A-Za-z0-9_-], 1-100 characters)"
);
id_type!(PlanId, is_slug, "plan id ([a-z][a-z0-9_]{0,99})");
id_type!(MetricName, is_slug, "metric name ([a-z][a-z0-9_]{0,99})");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_round_trip() {
        for s in SubscriptionStatus::ALL {
            assert_eq!(SubscriptionStatus::parse(s.as_str()), Some(*s));
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!(PaymentMethod::CreditCard.as_str(), "credit_card");
        assert_eq!(SubscriptionStatus::PastDue.as_str(), "past_due");
    }

    #[test]
    fn currency_allow_list_is_case_insensitive() {
        assert_eq!(Currency::parse("yer"), Some(Currency::Yer));
        assert_eq!(Currency::parse("JPY"), None);
        assert!(serde_json::from_str::<Currency>("\"XYZ\"").is_err());
    }

    #[test]
    fn identifiers_follow_their_patterns() {
        assert!(TenantId::parse("farm-42_A").is_ok());
        assert!(TenantId::parse("../etc").is_err());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse(&"a".repeat(101)).is_err());
        assert!(PlanId::parse("starter").is_ok());
        assert!(PlanId::parse("Starter").is_err());
        assert!(MetricName::parse("INVALID-METRIC!").is_err());
    }
}
