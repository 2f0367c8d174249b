//! Which hosts a lease may serve: [`reserve`] decides, before a manifest is written, from the
//! `Lease` resources themselves, so the reservation survives restarts with nothing else to keep.
//!
//! A lease holds the hosts its manifest names (`accept`) from the moment the manifest is accepted
//! until the lease closes: each `Lease` records them (`spec.manifest.hostnames`). A manifest
//! naming a host another tenant's live lease holds is refused (409), and so is one naming a
//! blocked host (`--blocked-hostnames`) or a host under the provider's ingress domain other than
//! the lease's own automatic hosts. A deployment of the same owner may take a host over from
//! another of its deployments: the older lease gives it up (its Ingress drops it).
//!
//! The gateway runs [`reserve`] and its writes one manifest at a time; only the leader replica
//! runs the gateway.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use crds::resources::Lease;
use crds::sdl::ManifestGroup;
use crds::sdl::names::ingress_host;
use kube::ResourceExt;

use super::accept::{Accepted, Rejection};
use super::source::is_live;

/// An entry of `--blocked-hostnames`: one host, or `*.<domain>` for every host under `<domain>`
/// (not `<domain>` itself, as a DNS wildcard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockedHost {
    Exact(String),
    Under(String),
}

impl FromStr for BlockedHost {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let lower = text.trim().to_lowercase();
        let (under, name) = match lower.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, lower.as_str()),
        };
        if !is_host_name(name) {
            return Err(format!(
                "{text:?} is neither a host name nor \"*.\" followed by one"
            ));
        }
        Ok(if under {
            Self::Under(name.to_owned())
        } else {
            Self::Exact(name.to_owned())
        })
    }
}

impl BlockedHost {
    fn blocks(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => host == name,
            // As a DNS wildcard: names under the domain, not the domain itself.
            Self::Under(domain) => host != domain && is_under(host, domain),
        }
    }
}

/// What the provider refuses of the hosts manifests name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostnamePolicy {
    /// The domain of automatic hosts (`--ingress-domain`): a lease may name only its own there.
    pub ingress_domain: String,
    pub blocked: Vec<BlockedHost>,
}

/// Dot-separated DNS labels (letters, digits, `-`), at most 253 characters.
fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `host` is `domain` or a name under it.
fn is_under(host: &str, domain: &str) -> bool {
    !domain.is_empty()
        && (host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// The hosts a manifest group names, lowercase.
pub(crate) fn named_hosts(group: &ManifestGroup) -> BTreeSet<String> {
    group
        .services
        .iter()
        .flat_map(|s| &s.expose)
        .flat_map(|e| e.hosts.iter().flatten())
        .map(|h| h.to_lowercase())
        .collect()
}

/// The hosts `lease` holds now: none unless it is live with a manifest; else those its manifest
/// was granted, or, for a manifest an older provider accepted, every host it names.
pub(crate) fn held_hosts(lease: &Lease) -> BTreeSet<String> {
    if !is_live(lease) || lease.metadata.deletion_timestamp.is_some() {
        return BTreeSet::new();
    }
    let Some(manifest) = &lease.spec.manifest else {
        return BTreeSet::new();
    };
    match &manifest.hostnames {
        Some(hosts) => hosts.iter().map(|h| h.to_lowercase()).collect(),
        None => named_hosts(&manifest.group),
    }
}

/// A lease of the same owner giving hosts up: (its Lease resource, the hosts it keeps).
pub(crate) type Release = (String, Vec<String>);

fn taken(host: &str, why: &str) -> Rejection {
    Rejection::HostnameTaken(format!("host {host:?} {why}"))
}

/// Grants each accepted manifest the hosts it names (`hostnames`), or refuses them all. `all` is
/// every `Lease` resource of this provider, the accepted ones included. Returns the leases of
/// the same owner that give hosts up to the accepted ones.
pub(crate) fn reserve(
    accepted: &mut Accepted,
    all: &[Lease],
    policy: &HostnamePolicy,
) -> Result<Vec<Release>, Rejection> {
    let domain = policy.ingress_domain.to_lowercase();
    let accepting: BTreeSet<&str> = accepted.iter().map(|(name, _)| name.as_str()).collect();
    let mut named_by: BTreeMap<String, &str> = BTreeMap::new();
    let mut moved: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut grants = Vec::with_capacity(accepted.len());
    for (name, manifest) in accepted.iter() {
        let Some(lease) = all.iter().find(|l| l.name_any() == *name) else {
            return Err(Rejection::Unavailable(format!(
                "the Lease resource {name} is gone; try again"
            )));
        };
        let lease_id = lease.spec.lease_id.names_id();
        let own: BTreeSet<String> = manifest
            .group
            .services
            .iter()
            .map(|s| ingress_host(&lease_id, &s.name, &domain))
            .collect();
        let hosts = named_hosts(&manifest.group);
        for host in &hosts {
            if policy.blocked.iter().any(|b| b.blocks(host)) {
                return Err(taken(host, "is blocked by this provider"));
            }
            if is_under(host, &domain) && !own.contains(host) {
                return Err(taken(
                    host,
                    &format!(
                        "is under this provider's ingress domain {domain:?} and is not one of this lease's own hosts"
                    ),
                ));
            }
            if let Some(other) = named_by.insert(host.clone(), &manifest.group.name) {
                return Err(taken(
                    host,
                    &format!(
                        "is named by groups {other} and {} of the deployment; a host routes to one group",
                        manifest.group.name
                    ),
                ));
            }
            let others = all
                .iter()
                .filter(|l| !accepting.contains(l.name_any().as_str()));
            take_host(host, &lease_id.owner, others, &mut moved)?;
        }
        grants.push(hosts.into_iter().collect::<Vec<_>>());
    }
    for ((_, manifest), hosts) in accepted.iter_mut().zip(grants) {
        manifest.hostnames = Some(hosts);
    }
    Ok(releases(moved, all, held_hosts))
}

/// `POST /hostname/migrate`: moves `hosts` to the live lease `destination` from the other leases
/// of its owner that hold them. Each host must be one the destination's manifest names (400
/// otherwise); a host another owner's lease holds is never moved (409). Returns the hosts the
/// destination then holds and the leases that give hosts up.
pub(crate) fn migrate(
    destination: &Lease,
    hosts: &[String],
    all: &[Lease],
) -> Result<(Vec<String>, Vec<Release>), Rejection> {
    let owner = &destination.spec.lease_id.owner;
    let Some(manifest) = destination.spec.manifest.as_ref() else {
        return Err(Rejection::Malformed(
            "the destination lease has no manifest yet".into(),
        ));
    };
    let named = named_hosts(&manifest.group);
    let hosts: BTreeSet<String> = hosts.iter().map(|h| h.to_lowercase()).collect();
    if let Some(host) = hosts.iter().find(|h| !named.contains(*h)) {
        return Err(Rejection::Malformed(format!(
            "the hostname {host:?} is not used by this deployment"
        )));
    }
    let mut moved: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for host in &hosts {
        let others = all
            .iter()
            .filter(|l| l.name_any() != destination.name_any());
        take_host(host, owner, others, &mut moved)?;
    }
    let mut held = held_hosts(destination);
    held.extend(hosts);
    Ok((held.into_iter().collect(), releases(moved, all, held_hosts)))
}

/// Takes `host` from each lease of `others` that holds it, recording in `moved` what each gives
/// up; a lease of another owner than `owner` never gives a host up (409).
fn take_host<'a>(
    host: &str,
    owner: &str,
    others: impl Iterator<Item = &'a Lease>,
    moved: &mut BTreeMap<String, BTreeSet<String>>,
) -> Result<(), Rejection> {
    for holder in others.filter(|l| held_hosts(l).contains(host)) {
        if holder.spec.lease_id.owner != owner {
            return Err(taken(
                host,
                "is in use by another tenant's deployment on this provider",
            ));
        }
        moved
            .entry(holder.name_any())
            .or_default()
            .insert(host.to_owned());
    }
    Ok(())
}

/// The releases of a move: each lease of `moved` (by name, with what it gives up) keeps the
/// rest of what `held` says it holds. Hosts and leased-IP endpoints move alike.
pub(super) fn releases(
    moved: BTreeMap<String, BTreeSet<String>>,
    all: &[Lease],
    held: impl Fn(&Lease) -> BTreeSet<String>,
) -> Vec<Release> {
    moved
        .into_iter()
        .filter_map(|(name, gone)| {
            let holder = all.iter().find(|l| l.name_any() == name)?;
            let keep = held(holder).difference(&gone).cloned().collect();
            Some((name, keep))
        })
        .collect()
}

#[cfg(test)]
mod tests;
