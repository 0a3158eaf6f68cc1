//! The one place where the services' error enums become statuses and the bilingual envelope.

use crate::error::AppError;
use crate::services::plans::PlanError;

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
