//! The not-found answers several use cases give for the same missing thing. Their own module,
//! below `tenants` and `usage`, so neither has to import the other for them. `http::errors`
//! makes each the 404 envelope (a tenant role asking for another tenant's resource gets the
//! same answer as for a missing one).

/// A thing a request names that does not exist (or that the caller may not see).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("tenant not found")]
    Tenant,
    #[error("subscription not found")]
    Subscription,
}

pub fn tenant_not_found() -> Missing {
    Missing::Tenant
}

pub fn subscription_not_found() -> Missing {
    Missing::Subscription
}
