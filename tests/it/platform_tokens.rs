//! Tokens shaped exactly like the SAHOOL platform's: the user service (NestJS `jwtService.sign`
//! with issuer and audience: `sub`, `email`, `roles: [user.role]`, `tid`, `jti`, `type`, `iat`,
//! `exp`, `iss`, `aud`) and `shared/auth/jwt_handler.py` (`sub`, `roles`, `exp`, `iat`, `iss`,
//! `aud`, `jti`, `type`, `tid`, `permissions`). Each mapped role does what its billing role may,
//! and nothing more.

use crate::common;

use billing_core::auth::{RoleMap, TokenPolicy};
use common::{Auth, TestApp};
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::{json, Value};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn sign(app: &TestApp, claims: &Value) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(app.config.jwt_secret.as_bytes()),
    )
    .unwrap()
}

/// An access token as the user service signs it for a user with `role` in `tenant`.
fn user_service_token(app: &TestApp, role: &str, tenant: &str) -> String {
    sign(
        app,
        &json!({
            "sub": uuid::Uuid::new_v4().to_string(), "email": "user@farm.example.com",
            "roles": [role], "tid": tenant, "jti": uuid::Uuid::new_v4().to_string(),
            "type": "access", "iat": now(), "exp": now() + 1800,
            "iss": "sahool-platform", "aud": "sahool-api"
        }),
    )
}

/// An access token as `shared/auth/jwt_handler.create_access_token` makes it.
fn shared_package_token(app: &TestApp, roles: &[&str], tenant: Option<&str>) -> String {
    let mut c = json!({
        "sub": "user-123", "roles": roles, "exp": now() + 1800, "iat": now(),
        "iss": "sahool-platform", "aud": "sahool-api",
        "jti": uuid::Uuid::new_v4().to_string(), "type": "access",
        "permissions": ["farm:read"]
    });
    if let Some(t) = tenant {
        c["tid"] = json!(t);
    }
    sign(app, &c)
}

async fn sign_up(app: &TestApp, tenant: &str) {
    let r = app
        .post(
            "/v1/tenants",
            Auth::Admin,
            json!({
                "tenant_id": tenant, "name": "Farm", "name_ar": "مزرعة",
                "email": "owner@farm.example.com", "phone": "+967771234567", "plan_id": "starter"
            }),
        )
        .await;
    assert_status!(r, 201);
}

/// What a tenant_user may and may not do, checked with `token` for tenant `farm-a`.
async fn acts_as_tenant_user(app: &TestApp, token: String, role: &str) {
    let t = Auth::Bearer(token);
    let r = app
        .get("/api/v1/tenants/farm-a/subscription", t.clone())
        .await;
    assert_eq!(
        r.status, 200,
        "{role}: reads its own subscription: {}",
        r.body
    );
    let r = app.get("/api/v1/tenants/farm-a/invoices", t.clone()).await;
    assert_eq!(r.status, 200, "{role}: reads its own invoices: {}", r.body);
    let r = app
        .get("/api/v1/tenants/farm-b/subscription", t.clone())
        .await;
    assert_eq!(
        r.status, 404,
        "{role}: another tenant is invisible: {}",
        r.body
    );
    let r = app
        .post("/api/v1/tenants/farm-a/cancel", t.clone(), json!({}))
        .await;
    assert_eq!(r.status, 403, "{role}: may not cancel: {}", r.body);
    let r = app
        .patch(
            "/api/v1/tenants/farm-a/subscription",
            t.clone(),
            json!({"plan_id": "professional"}),
        )
        .await;
    assert_eq!(r.status, 403, "{role}: may not change the plan: {}", r.body);
    let r = app.get("/api/v1/tenants", t).await;
    assert_eq!(r.status, 403, "{role}: may not list tenants: {}", r.body);
}

#[tokio::test]
async fn every_platform_tenant_role_without_billing_rights_acts_as_a_tenant_user() {
    let app = TestApp::spawn().await;
    sign_up(&app, "farm-a").await;
    sign_up(&app, "farm-b").await;
    for role in ["FARMER", "MANAGER", "WORKER", "VIEWER"] {
        acts_as_tenant_user(&app, user_service_token(&app, role, "farm-a"), role).await;
    }
    for role in ["farm_manager", "field_operator", "agronomist", "viewer"] {
        acts_as_tenant_user(
            &app,
            shared_package_token(&app, &[role], Some("farm-a")),
            role,
        )
        .await;
    }
}

#[tokio::test]
async fn a_platform_admin_token_is_the_tenant_admin_of_its_own_tenant_only() {
    let app = TestApp::spawn().await;
    sign_up(&app, "farm-a").await;
    sign_up(&app, "farm-b").await;
    for token in [
        user_service_token(&app, "ADMIN", "farm-a"),
        shared_package_token(&app, &["tenant_admin"], Some("farm-a")),
    ] {
        let t = Auth::Bearer(token);
        let r = app.get("/api/v1/tenants/farm-b", t.clone()).await;
        assert_status!(r, 404);
        let r = app.get("/api/v1/tenants", t.clone()).await;
        assert_status!(r, 403);
        let r = app
            .post(
                "/api/v1/plans",
                t.clone(),
                json!({"name": "Mine", "name_ar": "خطتي", "description": "Mine",
                       "description_ar": "خطتي", "tier": "starter",
                       "monthly_price_usd": "1.00", "features": [], "limits": {}}),
            )
            .await;
        assert_status!(r, 403);
        // What a tenant_user may not do, the tenant's admin may.
        let r = app
            .post("/api/v1/tenants/farm-a/cancel", t.clone(), json!({}))
            .await;
        assert_status!(r, 200);
        let r = app
            .post(
                "/api/v1/tenants/farm-a/subscription/resume",
                t.clone(),
                json!({}),
            )
            .await;
        assert_status!(r, 200);
    }
}

#[tokio::test]
async fn a_platform_super_admin_token_without_a_tenant_reaches_every_tenant() {
    let app = TestApp::spawn().await;
    sign_up(&app, "farm-a").await;
    let t = Auth::Bearer(shared_package_token(&app, &["super_admin"], None));
    let r = app.get("/api/v1/tenants", t.clone()).await;
    assert_status!(r, 200);
    assert_eq!(r.body["total"], 1);
    let r = app.get("/api/v1/tenants/farm-a", t).await;
    assert_status!(r, 200);
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_and_one_without_an_audience_is_accepted() {
    let app = TestApp::spawn().await;
    sign_up(&app, "farm-a").await;
    let mut c = json!({
        "sub": "u1", "roles": ["ADMIN"], "tid": "farm-a", "type": "access",
        "iat": now(), "exp": now() + 600, "aud": "another-api"
    });
    let r = app
        .get("/v1/tenants/farm-a", Auth::Bearer(sign(&app, &c)))
        .await;
    assert_status!(r, 401);
    assert_eq!(r.error_code(), "unauthorized");
    assert!(r.body["message"].as_str().unwrap().contains("audience"));

    c["aud"] = json!(["another-api", "sahool-api"]);
    let r = app
        .get("/v1/tenants/farm-a", Auth::Bearer(sign(&app, &c)))
        .await;
    assert_status!(r, 200);

    c.as_object_mut().unwrap().remove("aud");
    let r = app
        .get("/v1/tenants/farm-a", Auth::Bearer(sign(&app, &c)))
        .await;
    assert_status!(r, 200);
    // And billing's own tokens, which carry no audience.
    let r = app
        .get("/v1/tenants/farm-a", Auth::TenantAdmin("farm-a".into()))
        .await;
    assert_status!(r, 200);
}

#[tokio::test]
async fn a_configured_audience_replaces_the_platform_default() {
    let url = common::fresh_database().await;
    let app = TestApp::spawn_on(&url, |c| {
        c.jwt_policy = TokenPolicy::new(vec!["billing".into()], None, RoleMap::default())
    })
    .await;
    sign_up(&app, "farm-a").await;
    let r = app
        .get(
            "/v1/tenants/farm-a",
            Auth::Bearer(user_service_token(&app, "ADMIN", "farm-a")),
        )
        .await;
    assert_status!(r, 401);
}

#[tokio::test]
async fn a_refresh_token_is_not_a_credential() {
    let app = TestApp::spawn().await;
    sign_up(&app, "farm-a").await;
    let token = sign(
        &app,
        &json!({
            "sub": "u1", "email": "u@example.com", "roles": ["ADMIN"], "tid": "farm-a",
            "jti": "j1", "type": "refresh", "family": "f1", "iat": now(), "exp": now() + 86400,
            "iss": "sahool-platform", "aud": "sahool-api"
        }),
    );
    let r = app.get("/v1/tenants/farm-a", Auth::Bearer(token)).await;
    assert_status!(r, 401);
    assert!(r.body["message"].as_str().unwrap().contains("access"));
}

#[tokio::test]
async fn an_expired_platform_token_is_refused() {
    let app = TestApp::spawn().await;
    sign_up(&app, "farm-a").await;
    let token = sign(
        &app,
        &json!({"sub": "u1", "roles": ["ADMIN"], "tid": "farm-a", "type": "access",
                "iat": now() - 7200, "exp": now() - 3600, "aud": "sahool-api"}),
    );
    let r = app.get("/v1/tenants/farm-a", Auth::Bearer(token)).await;
    assert_status!(r, 401);
    assert!(r.body["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn an_unmapped_role_grants_nothing_until_jwt_role_map_names_it() {
    let app = TestApp::spawn().await;
    sign_up(&app, "farm-a").await;
    let seller = user_service_token(&app, "seller", "farm-a");
    let r = app
        .get("/v1/tenants/farm-a", Auth::Bearer(seller.clone()))
        .await;
    assert_status!(r, 401);
    assert!(r.body["message"].as_str().unwrap().contains("JWT_ROLE_MAP"));
    // A known role beside an unknown one still counts.
    let both = shared_package_token(&app, &["seller", "viewer"], Some("farm-a"));
    let r = app.get("/v1/tenants/farm-a", Auth::Bearer(both)).await;
    assert_status!(r, 200);

    let mapped = TestApp::spawn_on(&app.database_url, |c| {
        c.jwt_policy = TokenPolicy::new(
            vec!["sahool-api".into()],
            None,
            RoleMap::with_overrides("seller=tenant_user,MANAGER=tenant_admin,viewer=none").unwrap(),
        )
    })
    .await;
    let r = mapped.get("/v1/tenants/farm-a", Auth::Bearer(seller)).await;
    assert_status!(r, 200);
    let manager = user_service_token(&mapped, "MANAGER", "farm-a");
    let r = mapped
        .post(
            "/v1/tenants/farm-a/cancel",
            Auth::Bearer(manager),
            json!({}),
        )
        .await;
    assert_status!(r, 200);
    let viewer = user_service_token(&mapped, "VIEWER", "farm-a");
    let r = mapped.get("/v1/tenants/farm-a", Auth::Bearer(viewer)).await;
    assert_status!(r, 401);
}

#[tokio::test]
async fn the_tenant_is_read_from_each_claim_name_the_platform_uses() {
    let app = TestApp::spawn().await;
    sign_up(&app, "farm-a").await;
    for claim in ["tid", "tenant_id", "tenantId"] {
        let mut c = json!({"sub": "u1", "roles": ["FARMER"], "type": "access",
                           "iat": now(), "exp": now() + 600, "aud": "sahool-api"});
        c[claim] = json!("farm-a");
        let r = app
            .get("/v1/tenants/farm-a", Auth::Bearer(sign(&app, &c)))
            .await;
        assert_eq!(r.status, 200, "{claim}: {}", r.body);
    }
    let c = json!({"sub": "u1", "roles": ["FARMER"], "tid": "farm-a", "tenant_id": "farm-b",
                   "iat": now(), "exp": now() + 600});
    let r = app
        .get("/v1/tenants/farm-a", Auth::Bearer(sign(&app, &c)))
        .await;
    assert_status!(r, 401);
}

#[tokio::test]
async fn a_configured_issuer_refuses_tokens_from_another_issuer() {
    let url = common::fresh_database().await;
    let app = TestApp::spawn_on(&url, |c| {
        c.jwt_policy = TokenPolicy::new(
            vec!["sahool-api".into()],
            Some("sahool-platform".into()),
            RoleMap::default(),
        )
    })
    .await;
    sign_up(&app, "farm-a").await;
    let r = app
        .get(
            "/v1/tenants/farm-a",
            Auth::Bearer(user_service_token(&app, "FARMER", "farm-a")),
        )
        .await;
    assert_status!(r, 200);
    let c = json!({"sub": "u1", "roles": ["FARMER"], "tid": "farm-a", "iss": "elsewhere",
                   "iat": now(), "exp": now() + 600, "aud": "sahool-api"});
    let r = app
        .get("/v1/tenants/farm-a", Auth::Bearer(sign(&app, &c)))
        .await;
    assert_status!(r, 401);
}
