pub mod eligibility;
pub mod engine;
pub mod pricing;
