//! Which leased-IP endpoints a lease holds: [`reserve`] decides when a manifest is accepted,
//! [`migrate`] when the owner moves endpoints (`POST /endpoint/migrate`), both from the `Lease`
//! resources themselves (`spec.manifest.ipEndpoints`), as hosts are held (`hostnames.rs`).
//!
//! An endpoint's address belongs to its owner and name (the load balancer's sharing key), not to
//! one lease: another deployment of the same owner naming an endpoint that a live lease already
//! holds does not get it (it would get another address, or none) until the owner moves it there;
//! then the moved endpoint keeps its address. Endpoints of different owners never meet.

use std::collections::{BTreeMap, BTreeSet};

use crds::resources::Lease;
use crds::sdl::ManifestGroup;
use kube::ResourceExt;

use super::accept::{Accepted, Rejection};
use super::source::is_live;
use crate::workload::build::leased_ip::is_leased_ip;

/// The endpoint names a manifest group uses on its global exposes.
pub(crate) fn named_endpoints(group: &ManifestGroup) -> BTreeSet<String> {
    group
        .services
        .iter()
        .flat_map(|s| &s.expose)
        .filter(|e| is_leased_ip(e))
        .map(|e| e.ip.clone())
        .collect()
}

/// The endpoints `lease` holds now: none unless it is live with a manifest; else those granted,
/// or, for a manifest an older provider accepted, every one it names.
pub(crate) fn held_endpoints(lease: &Lease) -> BTreeSet<String> {
    if !is_live(lease) || lease.metadata.deletion_timestamp.is_some() {
        return BTreeSet::new();
    }
    let Some(manifest) = &lease.spec.manifest else {
        return BTreeSet::new();
    };
    match &manifest.ip_endpoints {
        Some(held) => held.iter().cloned().collect(),
        None => named_endpoints(&manifest.group),
    }
}

/// Grants each accepted manifest the endpoints it names that no other live lease of its owner
/// holds; a lease keeps what it held under its previous manifest, and the addresses moved to it.
/// `all` is every `Lease` resource of this provider, the accepted ones included.
pub(crate) fn reserve(accepted: &mut Accepted, all: &[Lease]) {
    let accepting: BTreeSet<String> = accepted.iter().map(|(name, _)| name.clone()).collect();
    for (name, manifest) in accepted.iter_mut() {
        let current = all.iter().find(|l| l.name_any() == *name);
        let Some(owner) = current.map(|l| l.spec.lease_id.owner.clone()) else {
            continue;
        };
        let held_elsewhere: BTreeSet<String> = all
            .iter()
            .filter(|l| !accepting.contains(&l.name_any()) && l.spec.lease_id.owner == owner)
            .flat_map(held_endpoints)
            .collect();
        let named = named_endpoints(&manifest.group);
        let granted: Vec<String> = named.difference(&held_elsewhere).cloned().collect();
        let previous = current
            .and_then(|l| l.spec.manifest.as_ref())
            .map(|m| m.ip_addresses.clone())
            .unwrap_or_default();
        manifest.ip_addresses = previous
            .into_iter()
            .filter(|(endpoint, _)| granted.contains(endpoint))
            .collect();
        manifest.ip_endpoints = Some(granted);
    }
}

/// A lease giving endpoints up: (its Lease resource, the endpoints it keeps).
pub(crate) type Release = (String, Vec<String>);

/// What a migration writes: the destination's endpoints and addresses, and the releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Migration {
    pub held: Vec<String>,
    pub addresses: BTreeMap<String, String>,
    pub releases: Vec<Release>,
}

/// `POST /endpoint/migrate`: moves `endpoints` to the live lease `destination` from the other
/// leases of its owner that hold them, with the address each had (read from their status). Each
/// endpoint must be one the destination's manifest names (400 otherwise).
pub(crate) fn migrate(
    destination: &Lease,
    endpoints: &[String],
    all: &[Lease],
) -> Result<Migration, Rejection> {
    let owner = &destination.spec.lease_id.owner;
    let Some(manifest) = destination.spec.manifest.as_ref() else {
        return Err(Rejection::Malformed(
            "the destination lease has no manifest yet".into(),
        ));
    };
    let named = named_endpoints(&manifest.group);
    let wanted: BTreeSet<String> = endpoints.iter().cloned().collect();
    if let Some(endpoint) = wanted.iter().find(|e| !named.contains(*e)) {
        return Err(Rejection::Malformed(format!(
            "the endpoint {endpoint:?} does not exist in the destination deployment"
        )));
    }
    let mut addresses = manifest.ip_addresses.clone();
    let mut moved: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for endpoint in &wanted {
        for holder in all.iter().filter(|l| {
            l.name_any() != destination.name_any()
                && l.spec.lease_id.owner == *owner
                && held_endpoints(l).contains(endpoint)
        }) {
            if let Some(ip) = address_of(holder, endpoint) {
                addresses.insert(endpoint.clone(), ip);
            }
            moved
                .entry(holder.name_any())
                .or_default()
                .insert(endpoint.clone());
        }
    }
    let mut held = held_endpoints(destination);
    held.extend(wanted);
    Ok(Migration {
        held: held.into_iter().collect(),
        addresses,
        releases: super::hostnames::releases(moved, all, held_endpoints),
    })
}

/// The address `lease` reports for `endpoint`, if it has one.
fn address_of(lease: &Lease, endpoint: &str) -> Option<String> {
    lease
        .status
        .as_ref()?
        .services
        .iter()
        .flat_map(|s| &s.ips)
        .find(|i| i.endpoint == endpoint && !i.ip.is_empty())
        .map(|i| i.ip.clone())
}

#[cfg(test)]
mod tests;
