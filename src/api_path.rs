//! The prefixes every API route is served under, and the route a path names whichever it uses.
//!
//! `/v1` is the contract's own; `/api/v1` is the gateway's; `/api/v1/billing` is how SAHOOL's
//! Kong (`strip_path: false`) and helm ingress forward `/api/v1/billing/...` unchanged. The same
//! request under any of them is the same request: idempotency keys and rate-limit exemptions
//! look at the route, not at the prefix.

/// Longest first, so `/api/v1/billing/x` is not read as `/api/v1` + `/billing/x`.
pub const API_PREFIXES: [&str; 3] = ["/api/v1/billing", "/api/v1", "/v1"];

/// The path after its API prefix (`/api/v1/billing/payments` → `/payments`); `None` for paths
/// outside the API (`/healthz`).
pub fn api_route(path: &str) -> Option<&str> {
    API_PREFIXES.iter().find_map(|p| {
        path.strip_prefix(p)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_names_the_same_route() {
        for p in [
            "/v1/payments",
            "/api/v1/payments",
            "/api/v1/billing/payments",
        ] {
            assert_eq!(api_route(p), Some("/payments"), "{p}");
        }
        assert_eq!(
            api_route("/v1/admin/billing-run"),
            Some("/admin/billing-run")
        );
        assert_eq!(api_route("/api/v1/billingx"), Some("/billingx"));
        assert_eq!(api_route("/v1x"), None);
        assert_eq!(api_route("/v10/x"), None);
        assert_eq!(api_route("/healthz"), None);
    }
}
