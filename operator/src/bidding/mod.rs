pub mod eligibility;
pub mod pricing;
