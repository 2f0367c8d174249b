pub mod eligibility;
pub(crate) mod engine;
pub mod pricing;
