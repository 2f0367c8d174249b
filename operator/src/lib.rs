//! The library behind `akash-provider`: the provider (identity, inventory, bid engine, leases),
//! the gateway, the workload reconciler, the tenant controller, and later the overlay. The
//! binary (`main.rs`) only parses the command line and calls in here; tests and benchmarks use
//! the same modules.
//!
//! Only the modules and items that the binary, the tests, the benchmarks, `e2e` and `fuzz` use are
//! `pub`; the rest is `pub(crate)` or private, and `unreachable_pub` keeps it so. The lint is set
//! here rather than in Cargo.toml because a crate that inherits the workspace's lints cannot add
//! its own there.

#![warn(unreachable_pub)]

pub mod bidding;
mod cert_events;
mod certificate;
mod chain_args;
mod chain_events;
pub mod chain_groups;
mod controller;
pub mod gateway;
pub mod inventory;
mod keeper;
mod kube_pool;
mod kube_requests;
pub mod lease_secret;
mod metrics;
pub mod overlay;
pub mod provider;
mod provider_status;
mod reconcile_metrics;
pub mod tenant;
#[cfg(test)]
mod test_support;
pub mod workload;
