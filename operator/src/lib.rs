//! The library behind `akash-provider`: the provider (identity, inventory, bid engine, leases),
//! the gateway, the workload reconciler, the tenant controller, and later the overlay. The
//! binary (`main.rs`) only parses the command line and calls in here; tests and benchmarks use
//! the same modules.

pub mod bidding;
pub mod cert_events;
pub mod certificate;
pub mod chain_args;
pub mod chain_events;
pub mod chain_groups;
pub mod controller;
pub mod gateway;
pub mod inventory;
pub mod keeper;
pub mod kube_requests;
pub mod lease_secret;
pub mod metrics;
pub mod overlay;
pub mod provider;
pub mod provider_status;
pub mod reconcile_metrics;
pub mod tenant;
#[cfg(test)]
mod test_support;
pub mod workload;
