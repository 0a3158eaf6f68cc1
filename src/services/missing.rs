//! The not-found answers several use cases give for the same missing thing. Their own module,
//! below `tenants` and `usage`, so neither has to import the other for them.

use crate::error::AppError;

pub fn tenant_not_found() -> AppError {
    AppError::not_found("Tenant", "المستأجر غير موجود")
}

pub fn subscription_not_found() -> AppError {
    AppError::not_found("Subscription", "لا يوجد اشتراك")
}
