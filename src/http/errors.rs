//! The one place where the services' error enums become statuses and the bilingual envelope.

use crate::error::AppError;
use crate::services::plans::PlanError;

mod payments;

impl From<PlanError> for AppError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::NotFound => AppError::not_found("Plan", "الخطة غير موجودة"),
            PlanError::AlreadyExists(id) => AppError::already_exists(&format!("Plan {id}")),
            PlanError::Invalid(fields) => AppError::validation(fields),
            PlanError::UnknownMetrics { metrics, fields } => {
                let mut err = AppError::unprocessable(
                    "unknown_metric",
                    format!("Unknown metric in limits: {}", metrics.join(", ")),
                    "المقياس غير معروف",
                )
                .with_extra("metric", &metrics[0])
                .with_extra("metrics", &metrics);
                err.fields = fields;
                err
            }
            PlanError::Database(e) => AppError::internal(e),
            PlanError::Audit(e) => e,
        }
    }
}

impl From<crate::services::invoices::InvoiceError> for AppError {
    fn from(e: crate::services::invoices::InvoiceError) -> Self {
        use crate::services::invoices::InvoiceError;
        use axum::http::StatusCode;
        match e {
            InvoiceError::NotFound => crate::services::invoices::invoice_not_found(),
            InvoiceError::TenantNotFound => AppError::from(crate::services::invoices::tenant_not_found()),
            InvoiceError::NoLiveSubscription => AppError::new(
                StatusCode::NOT_FOUND,
                "no_active_subscription",
                "The tenant has no live subscription",
                "لا يوجد اشتراك",
            ),
            InvoiceError::InTrial => AppError::conflict(
                "subscription_in_trial",
                "The subscription is in its trial; the first invoice is issued when the trial ends",
                "الاشتراك في الفترة التجريبية ولا تصدر فاتورة قبل انتهائها",
            ),
            InvoiceError::NotVoidable {
                status,
                amount_paid,
            } => AppError::conflict(
                "invoice_not_voidable",
                format!(
                    "Only unpaid pending, overdue or draft invoices can be voided; this one is {status} with {} paid",
                    crate::billing::money::money_string(amount_paid)
                ),
                "لا يمكن إلغاء هذه الفاتورة",
            )
            .with_extra("invoice_status", status),
            InvoiceError::Inconsistent(what) => AppError::internal(anyhow::anyhow!(what)),
            InvoiceError::Database(e) => AppError::from(e),
            InvoiceError::Payload(e) => AppError::internal(e),
            InvoiceError::Service(e) => e,
        }
    }
}

impl From<crate::services::rates::RateError> for AppError {
    fn from(e: crate::services::rates::RateError) -> Self {
        use crate::services::rates::RateError;
        match e {
            RateError::Database(e) => AppError::internal(e),
            RateError::Audit(e) => e,
        }
    }
}

impl From<crate::services::missing::Missing> for AppError {
    fn from(e: crate::services::missing::Missing) -> Self {
        use crate::services::missing::Missing;
        match e {
            Missing::Tenant => AppError::not_found("Tenant", "المستأجر غير موجود"),
            Missing::Subscription => AppError::not_found("Subscription", "لا يوجد اشتراك"),
        }
    }
}

impl From<crate::services::validate::Invalid> for AppError {
    fn from(e: crate::services::validate::Invalid) -> Self {
        AppError::validation(e.0)
    }
}

impl From<crate::services::coupons::CouponError> for AppError {
    fn from(e: crate::services::coupons::CouponError) -> Self {
        use crate::services::coupons::CouponError as E;
        match e {
            E::AlreadyExists(code) => AppError::already_exists(&format!("Coupon {code}")),
            E::NotFound => AppError::not_found("Coupon", "القسيمة غير موجودة"),
            E::UnknownPlans(ids) => AppError::field(
                "plan_ids",
                format!("names plans that do not exist: {}", ids.join(", ")),
            ),
            E::UnknownCode => AppError::unprocessable(
                "coupon_not_found",
                "No coupon has this code",
                "لا توجد قسيمة بهذا الرمز",
            ),
            E::Expired => AppError::unprocessable(
                "coupon_expired",
                "The coupon is archived or past its redeem_by date",
                "انتهت صلاحية القسيمة",
            ),
            E::Exhausted => AppError::unprocessable(
                "coupon_exhausted",
                "The coupon has no redemptions left",
                "نفدت مرات استخدام القسيمة",
            ),
            E::NotApplicable => AppError::unprocessable(
                "coupon_not_applicable",
                "The coupon does not apply to the subscription's plan",
                "القسيمة لا تنطبق على خطة الاشتراك",
            ),
            E::CurrencyMismatch => AppError::unprocessable(
                "coupon_currency_mismatch",
                "The coupon's amount is in another currency than the subscription",
                "عملة القسيمة تختلف عن عملة الاشتراك",
            ),
            E::AlreadyApplied => AppError::conflict(
                "coupon_already_applied",
                "The subscription already holds a coupon; remove it first",
                "الاشتراك لديه قسيمة بالفعل",
            ),
            E::NoDiscount => {
                AppError::not_found("Coupon on the subscription", "لا توجد قسيمة على الاشتراك")
            }
            E::TenantNotFound => crate::services::missing::tenant_not_found().into(),
            E::SubscriptionNotFound => crate::services::missing::subscription_not_found().into(),
            E::Database(e) => AppError::internal(e),
            E::Audit(e) => e,
        }
    }
}

impl From<crate::services::lifecycle::SubscriptionError> for AppError {
    fn from(e: crate::services::lifecycle::SubscriptionError) -> Self {
        use crate::services::lifecycle::SubscriptionError as E;
        use crate::services::missing::{subscription_not_found, tenant_not_found};
        match e {
            E::TenantNotFound => tenant_not_found().into(),
            E::SubscriptionNotFound => subscription_not_found().into(),
            E::NothingToChange => AppError::field(
                "body",
                "give at least one of plan_id, billing_cycle, payment_method",
            ),
            E::UnknownPlan(plan_id) => AppError::unprocessable(
                "unknown_plan",
                format!("Plan {plan_id:?} does not exist or is archived"),
                "الخطة غير موجودة",
            ),
            E::NotChangeable(status) => AppError::conflict(
                "subscription_not_changeable",
                format!(
                    "A {status} subscription cannot be changed; settle the open invoices first"
                ),
                "لا يمكن تعديل الاشتراك في حالته الحالية",
            ),
            E::NotPendingCancellation => AppError::conflict(
                "not_pending_cancellation",
                "The subscription has no pending cancellation",
                "لا يوجد إلغاء معلق لهذا الاشتراك",
            ),
            E::Inconsistent(what) => AppError::internal(anyhow::anyhow!(what)),
            E::Database(e) => AppError::internal(e),
            E::Other(e) => e,
        }
    }
}

impl From<crate::services::invoice_document::DocumentError> for AppError {
    fn from(e: crate::services::invoice_document::DocumentError) -> Self {
        use crate::services::invoice_document::DocumentError;
        match e {
            DocumentError::InvalidOption { field, issue } => AppError::field(field, issue),
            DocumentError::NotFound => crate::services::invoices::invoice_not_found(),
            DocumentError::TenantMissing => {
                AppError::internal(anyhow::anyhow!("invoice without its tenant"))
            }
            DocumentError::Database(e) => AppError::from(e),
        }
    }
}

impl From<crate::services::reports::ReportError> for AppError {
    fn from(e: crate::services::reports::ReportError) -> Self {
        use crate::services::reports::ReportError;
        match e {
            ReportError::BadDate(field) => AppError::field(field, "must be a date as YYYY-MM-DD"),
            ReportError::EndBeforeStart => {
                AppError::field("end_date", "must be on or after start_date")
            }
            ReportError::BadRate(rate) => {
                AppError::internal(anyhow::anyhow!("exchange rate {rate} cannot convert"))
            }
            ReportError::Database(e) => AppError::from(e),
        }
    }
}

impl From<crate::services::tenants::TenantError> for AppError {
    fn from(e: crate::services::tenants::TenantError) -> Self {
        use crate::services::missing::{subscription_not_found, tenant_not_found};
        use crate::services::tenants::TenantError as E;
        match e {
            E::Coupon(e) => AppError::from(e),
            E::UnknownPlan(plan_id) => AppError::unprocessable(
                "unknown_plan",
                format!("Plan {plan_id:?} does not exist or is archived"),
                "الخطة غير موجودة",
            ),
            E::AlreadyExists(id) => AppError::already_exists(&format!("Tenant {id}")),
            E::Idempotency(e) => e.into(),
            E::TenantNotFound => tenant_not_found().into(),
            E::SubscriptionNotFound => subscription_not_found().into(),
            E::Inconsistent(what) => AppError::internal(anyhow::anyhow!(what)),
            E::Database(e) => AppError::internal(e),
            E::Other(e) => e,
        }
    }
}

impl From<crate::services::idempotency::IdempotencyError> for AppError {
    fn from(e: crate::services::idempotency::IdempotencyError) -> Self {
        use crate::services::idempotency::IdempotencyError as E;
        match e {
            E::KeyReused => AppError::conflict(
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request",
                "مفتاح عدم التكرار مستخدم مسبقاً مع طلب مختلف",
            ),
            E::InProgress => AppError::conflict(
                "idempotency_request_in_progress",
                "A request with this Idempotency-Key is still in progress",
                "طلب بنفس المفتاح قيد المعالجة",
            ),
            E::Database(e) => AppError::from(e),
        }
    }
}

impl crate::services::idempotency::StoredResponse {
    /// The stored form of an answer `http` rendered.
    pub fn new(status: axum::http::StatusCode, body: serde_json::Value) -> Self {
        Self {
            status: status.as_u16(),
            body,
        }
    }
}

/// An idempotent write's answer: its status and body, marked when it is a replay.
impl axum::response::IntoResponse for crate::services::idempotency::Outcome {
    fn into_response(self) -> axum::response::Response {
        let status =
            axum::http::StatusCode::from_u16(self.status).unwrap_or(axum::http::StatusCode::OK);
        let mut resp = (status, axum::Json(self.body)).into_response();
        if self.replayed {
            resp.headers_mut().insert(
                "idempotent-replayed",
                axum::http::HeaderValue::from_static("true"),
            );
        }
        resp
    }
}

impl From<crate::services::usage::UsageError> for AppError {
    fn from(e: crate::services::usage::UsageError) -> Self {
        use crate::services::usage::UsageError;
        use axum::http::StatusCode;
        match e {
            UsageError::NoActiveSubscription => AppError::new(
                StatusCode::PAYMENT_REQUIRED,
                "no_active_subscription",
                "The tenant has no active subscription",
                "لا يوجد اشتراك نشط",
            ),
            UsageError::SubscriptionSuspended => AppError::new(
                StatusCode::PAYMENT_REQUIRED,
                "subscription_suspended",
                "The subscription is suspended for non-payment",
                "الاشتراك موقوف بسبب عدم السداد",
            ),
            UsageError::QuotaExceeded(r) => {
                let (metric, view) = (&r.metric, r.view);
                AppError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "quota_exceeded",
                    format!(
                        "Quota exceeded for {metric}: limit {}, used {}",
                        view.limit, view.used
                    ),
                    format!(
                        "تم تجاوز الحد الأقصى للاستخدام: {metric}. الحد: {}، المستخدم: {}",
                        view.limit, view.used
                    ),
                )
                .with_extra("allowed", false)
                .with_extra("tenant_id", &r.tenant_id)
                .with_extra("metric", metric)
                .with_extra("limit", view.limit)
                .with_extra("used", view.used)
                .with_extra("remaining", view.remaining())
                .with_extra("requested", r.requested)
            }
            UsageError::UnknownMetric(metric) => AppError::unprocessable(
                "unknown_metric",
                format!("Unknown metric {metric:?}"),
                "المقياس غير معروف",
            )
            .with_extra("metric", metric),
            UsageError::SubscriptionChanging => AppError::conflict(
                "subscription_changing",
                "The tenant's subscription changed while recording; retry the request",
                "تغير اشتراك المستأجر أثناء التسجيل؛ أعد المحاولة",
            ),
            UsageError::DatabaseUnavailable => AppError::database_unavailable(anyhow::anyhow!(
                "usage flush could not reach the database"
            )),
            UsageError::OutcomeUnknown => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "usage_outcome_unknown",
                "The database connection broke while recording; the event may or may not be \
                 stored. Send usage with an event_id so that a retry counts once",
                "انقطع الاتصال بقاعدة البيانات أثناء التسجيل؛ قد يكون الحدث سُجّل أو لا. أرسل event_id ليُحتسب التكرار مرة واحدة",
            ),
        }
    }
}
