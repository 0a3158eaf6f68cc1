pub mod health;
pub mod plans;
