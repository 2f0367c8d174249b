//! The lease's side of a manifest group. [`check_fits`] refuses a group that asks for anything
//! the lease's group on chain does not hold: amounts, CPU/memory/GPU/storage attributes (a GPU
//! model, a storage class, `persistent`, `ram`), endpoints, the global exposes that use them,
//! and replicas. [`totals`] is what the lease pays for, which becomes the namespace's quota.
//!
//! The gateway runs [`check_fits`] before it accepts a manifest; the builder runs it again, so a
//! `Lease` resource edited by hand cannot run more than was leased either.

use std::collections::BTreeMap;

use crds::resources::LeasedUnit;
use crds::sdl::ManifestGroup;
use crds::sdl::groups::{Attribute, Endpoint, Resources};
use crds::sdl::manifest::ManifestService;

use super::network::is_ingress;
use super::pod::{Amounts, Totals, committed};
use super::validate::{BuildError, VolumeKind, gpu, number, volume_kind};
use crate::inventory::Overcommit;

/// What the services of one resource unit use together.
#[derive(Default)]
struct Use<'a> {
    replicas: u64,
    services: Vec<&'a str>,
    /// Global exposes on port 80 (the shared ingress).
    shared_http: usize,
    /// Other global exposes (node ports).
    random_ports: usize,
}

/// Every service of `group` uses a resource unit of the lease with exactly its resources and
/// attributes; together the services of a unit want no more replicas than its count, and no
/// more global exposes of each kind than it has endpoints of that kind; an expose to a leased
/// IP names one of the unit's.
pub(crate) fn check_fits(group: &ManifestGroup, units: &[LeasedUnit]) -> Result<(), BuildError> {
    let mut used: BTreeMap<u32, Use> = BTreeMap::new();
    for svc in &group.services {
        let id = svc.resources.id;
        let Some(unit) = units.iter().find(|u| u.resources.id == id) else {
            return Err(BuildError::new(
                at(svc, "resources.id"),
                format!("resource unit {id}, which the lease's group does not have"),
            ));
        };
        same_resources(svc, &unit.resources)?;
        let entry = used.entry(id).or_default();
        entry.replicas += u64::from(svc.count);
        entry.services.push(&svc.name);
        for (i, expose) in svc.expose.iter().enumerate().filter(|(_, e)| e.global) {
            if is_ingress(expose) {
                entry.shared_http += 1;
            } else {
                entry.random_ports += 1;
            }
            let leased_ip = unit.resources.endpoints.iter().any(|e| {
                e.kind == Endpoint::LEASED_IP
                    && e.sequence_number == expose.endpoint_sequence_number
            });
            if !expose.ip.is_empty() && !leased_ip {
                return Err(BuildError::new(
                    at(svc, &format!("expose[{i}].ip")),
                    format!(
                        "leased IP {:?} (endpoint {}), which resource unit {id} of the lease does not have",
                        expose.ip, expose.endpoint_sequence_number
                    ),
                ));
            }
        }
    }
    for (id, used) in used {
        let Some(unit) = units.iter().find(|u| u.resources.id == id) else {
            continue;
        };
        let names = used.services.join(",");
        if used.replicas > u64::from(unit.count) {
            let reason = match used.services.as_slice() {
                [one] => format!(
                    "service {one} wants {} replicas, the lease has {}",
                    used.replicas, unit.count
                ),
                many => format!(
                    "services {} want {} replicas of resource unit {id} together, the lease has {}",
                    many.join(", "),
                    used.replicas,
                    unit.count
                ),
            };
            return Err(BuildError::new(format!("services[{names}].count"), reason));
        }
        let have = |kind: i32| {
            unit.resources
                .endpoints
                .iter()
                .filter(|e| e.kind == kind)
                .count()
        };
        for (wanted, kind, what) in [
            (
                used.shared_http,
                Endpoint::SHARED_HTTP,
                "global exposes on port 80 (shared HTTP)",
            ),
            (
                used.random_ports,
                Endpoint::RANDOM_PORT,
                "other global exposes (node ports)",
            ),
        ] {
            if wanted > have(kind) {
                return Err(BuildError::new(
                    format!("services[{names}].expose"),
                    format!(
                        "{wanted} {what}, resource unit {id} of the lease has {} such endpoints",
                        have(kind)
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The field `rest` of service `svc`.
fn at(svc: &ManifestService, rest: &str) -> String {
    format!("services[{}].{rest}", svc.name)
}

/// Two resource amounts are the same number (compared as text when either is not an integer);
/// empty is 0.
fn same_amount(a: &str, b: &str) -> bool {
    let parse = |s: &str| {
        let s = s.trim();
        if s.is_empty() {
            Some(0u128)
        } else {
            s.parse::<u128>().ok()
        }
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Attributes as a sorted list of `key=value` (their order carries no meaning: the two SDKs
/// order them differently).
fn attribute_list(attrs: &[Attribute]) -> Vec<String> {
    let mut out: Vec<String> = attrs
        .iter()
        .map(|a| format!("{}={}", a.key, a.value))
        .collect();
    out.sort();
    out
}

fn same_attributes(
    svc: &ManifestService,
    field: &str,
    asked: Option<&[Attribute]>,
    leased: &[Attribute],
    id: u32,
) -> Result<(), BuildError> {
    let asked = attribute_list(asked.unwrap_or_default());
    let leased = attribute_list(leased);
    if asked == leased {
        return Ok(());
    }
    Err(BuildError::new(
        at(svc, field),
        format!("{asked:?}, resource unit {id} of the lease has {leased:?}"),
    ))
}

fn same_resources(svc: &ManifestService, unit: &Resources) -> Result<(), BuildError> {
    let asked = &svc.resources;
    let id = unit.id;
    let amounts = [
        (
            "resources.cpu.units",
            &asked.cpu.units.val,
            &unit.cpu.units.val,
            "millicores of CPU",
        ),
        (
            "resources.memory.size",
            &asked.memory.size.val,
            &unit.memory.quantity.val,
            "bytes of memory",
        ),
        (
            "resources.gpu.units",
            &asked.gpu.units.val,
            &unit.gpu.units.val,
            "GPUs",
        ),
    ];
    for (field, a, b, what) in amounts {
        if !same_amount(a, b) {
            return Err(BuildError::new(
                at(svc, field),
                format!("{a} {what} per replica, resource unit {id} of the lease has {b}"),
            ));
        }
    }
    same_attributes(
        svc,
        "resources.cpu.attributes",
        asked.cpu.attributes.as_deref(),
        &unit.cpu.attributes,
        id,
    )?;
    same_attributes(
        svc,
        "resources.memory.attributes",
        asked.memory.attributes.as_deref(),
        &unit.memory.attributes,
        id,
    )?;
    same_attributes(
        svc,
        "resources.gpu.attributes",
        asked.gpu.attributes.as_deref(),
        &unit.gpu.attributes,
        id,
    )?;
    let leased_names: Vec<&str> = unit.storage.iter().map(|s| s.name.as_str()).collect();
    for (i, volume) in asked.storage.iter().enumerate() {
        let Some(leased) = unit.storage.iter().find(|s| s.name == volume.name) else {
            return Err(BuildError::new(
                at(svc, &format!("resources.storage[{i}].name")),
                format!(
                    "volume {:?}, resource unit {id} of the lease has {leased_names:?}",
                    volume.name
                ),
            ));
        };
        if !same_amount(&volume.size.val, &leased.quantity.val) {
            return Err(BuildError::new(
                at(svc, &format!("resources.storage[{i}].size")),
                format!(
                    "{} bytes, volume {:?} of resource unit {id} of the lease has {}",
                    volume.size.val, volume.name, leased.quantity.val
                ),
            ));
        }
        same_attributes(
            svc,
            &format!("resources.storage[{i}].attributes"),
            volume.attributes.as_deref(),
            &leased.attributes,
            id,
        )?;
    }
    if let Some(missing) = unit
        .storage
        .iter()
        .find(|s| !asked.storage.iter().any(|v| v.name == s.name))
    {
        return Err(BuildError::new(
            at(svc, "resources.storage"),
            format!(
                "no volume {:?}, which resource unit {id} of the lease has",
                missing.name
            ),
        ));
    }
    let endpoints = |list: Vec<(i32, u32)>| {
        let mut list = list;
        list.sort_unstable();
        list
    };
    let asked_endpoints = endpoints(
        asked
            .endpoints
            .iter()
            .map(|e| (e.kind.unwrap_or(Endpoint::SHARED_HTTP), e.sequence_number))
            .collect(),
    );
    let leased_endpoints = endpoints(
        unit.endpoints
            .iter()
            .map(|e| (e.kind, e.sequence_number))
            .collect(),
    );
    if asked_endpoints != leased_endpoints {
        return Err(BuildError::new(
            at(svc, "resources.endpoints"),
            format!(
                "{asked_endpoints:?} (kind, sequence), resource unit {id} of the lease has {leased_endpoints:?}"
            ),
        ));
    }
    Ok(())
}

/// What the lease pays for, read the way the builders read a service: CPU, memory (plus `ram`
/// volumes) and ephemeral storage per replica, requests scaled by the overcommit, GPUs by
/// extended resource, persistent volumes, and one node port per random-port endpoint.
pub(crate) fn totals(units: &[LeasedUnit], pct: Overcommit) -> Result<Totals, BuildError> {
    let mut totals = Totals::default();
    for unit in units {
        let r = &unit.resources;
        let field = |rest: &str| format!("lease.resources[{}].{rest}", r.id);
        let n = u64::from(unit.count);
        let mut ram = 0u64;
        let mut ephemeral = 0u64;
        let mut has_ephemeral = false;
        for (i, volume) in r.storage.iter().enumerate() {
            let at = field(&format!("storage[{i}]"));
            let bytes = number(&volume.quantity.val, &format!("{at}.size"))?;
            match volume_kind(&volume.attributes, &at)? {
                VolumeKind::Ram => ram = ram.saturating_add(bytes),
                VolumeKind::Ephemeral => {
                    has_ephemeral = true;
                    ephemeral = ephemeral.saturating_add(bytes);
                }
                VolumeKind::Persistent { .. } => {
                    totals.persistent_bytes = totals
                        .persistent_bytes
                        .saturating_add(bytes.saturating_mul(n));
                    totals.persistent_claims = totals.persistent_claims.saturating_add(n);
                }
            }
        }
        let limit = Amounts {
            cpu_millis: number(&r.cpu.units.val, &field("cpu.units"))?,
            memory: number(&r.memory.quantity.val, &field("memory.size"))?.saturating_add(ram),
            ephemeral,
        };
        let request = Amounts {
            cpu_millis: committed(limit.cpu_millis, pct.cpu),
            memory: committed(limit.memory, pct.memory),
            ephemeral: committed(limit.ephemeral, pct.storage),
        };
        add(&mut totals.limits, &limit, n);
        add(&mut totals.requests, &request, n);
        if !has_ephemeral {
            totals.pods_without_ephemeral = totals.pods_without_ephemeral.saturating_add(n);
        }
        let units = number(&r.gpu.units.val, &field("gpu.units"))?;
        if let Some(plan) = gpu(units, &r.gpu.attributes, &field("gpu.attributes"))? {
            let sum = totals.gpus.entry(plan.resource).or_default();
            *sum = sum.saturating_add(plan.units.saturating_mul(n));
        }
        let ports = r
            .endpoints
            .iter()
            .filter(|e| e.kind == Endpoint::RANDOM_PORT)
            .count() as u64;
        totals.node_ports = totals.node_ports.saturating_add(ports);
    }
    Ok(totals)
}

fn add(sum: &mut Amounts, one: &Amounts, n: u64) {
    sum.cpu_millis = sum
        .cpu_millis
        .saturating_add(one.cpu_millis.saturating_mul(n));
    sum.memory = sum.memory.saturating_add(one.memory.saturating_mul(n));
    sum.ephemeral = sum
        .ephemeral
        .saturating_add(one.ephemeral.saturating_mul(n));
}

#[cfg(test)]
mod tests;
