//! What this process last applied for each lease, so that a reconcile with nothing new to apply
//! skips the server-side apply of every object. A lease is reconciled on every change of its
//! `Lease` (its own status writes included) and of its Deployments and StatefulSets (each pod
//! becoming ready): applying every object each time cost a turn-up several passes of one request
//! per object.
//!
//! The objects are applied again when they differ from the last applied (a new manifest, a new
//! provider version building them differently), when one the lease should have is missing, when
//! the spec of a Deployment or StatefulSet changed since (its `generation` moved: someone edited
//! it), and in any case every `recheck` (what is not watched, such as a Service edited by hand).
//! Nothing is kept across restarts: the first reconcile after a start applies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::{Resource, ResourceExt};

use super::apply::workload_key;
use super::build::LeaseObjects;
use super::status::Observed;

/// The last apply of one lease.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Applied {
    digest: u64,
    at: Instant,
    /// `Kind/name` → `metadata.generation` of each Deployment and StatefulSet after the apply.
    generations: BTreeMap<String, i64>,
}

/// The last apply of every lease this process applied, by `Lease` name.
#[derive(Debug, Default)]
pub(crate) struct AppliedLeases {
    leases: Mutex<HashMap<String, Applied>>,
}

impl AppliedLeases {
    /// The record of `lease`, if this process applied it.
    pub(crate) fn get(&self, lease: &str) -> Option<Applied> {
        self.lock().get(lease).cloned()
    }

    /// Records that `objects` were applied at `at`, and the workloads' generations the apply
    /// answered with (`Kind/name` → generation, as [`super::apply::ApplyOutcome`] has them).
    pub(crate) fn record(
        &self,
        lease: &str,
        objects: &LeaseObjects,
        generations: BTreeMap<String, i64>,
        at: Instant,
    ) {
        let applied = Applied {
            digest: digest(objects),
            at,
            generations,
        };
        self.lock().insert(lease.to_owned(), applied);
    }

    /// Forgets `lease` (closed, or its apply failed part-way).
    pub(crate) fn forget(&self, lease: &str) {
        self.lock().remove(lease);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Applied>> {
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Applied {
    /// Whether `objects` are what was applied, and recently enough to trust what is observed.
    pub(crate) fn is_current(
        &self,
        objects: &LeaseObjects,
        now: Instant,
        recheck: Duration,
    ) -> bool {
        self.digest == digest(objects) && now.saturating_duration_since(self.at) < recheck
    }

    /// Whether every watched object the lease should have is there, with the spec it got from the
    /// last apply.
    pub(crate) fn in_place(&self, objects: &LeaseObjects, observed: &Observed) -> bool {
        let present = |names: BTreeSet<String>, of: BTreeSet<String>| names.is_subset(&of);
        present(names(&objects.deployments), names(&observed.deployments))
            && present(
                names(&objects.stateful_sets),
                names(&observed.stateful_sets),
            )
            && present(names(&objects.services), names(&observed.services))
            && present(names(&objects.ingresses), names(&observed.ingresses))
            && generations(observed) == self.generations
    }
}

/// A hash of the objects as they are sent.
fn digest(objects: &LeaseObjects) -> u64 {
    let mut hasher = DefaultHasher::new();
    // Serialising plain data cannot fail; an empty text would only force an apply.
    serde_json::to_vec(objects)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

fn names<K: Resource>(objects: &[K]) -> BTreeSet<String> {
    objects.iter().map(ResourceExt::name_any).collect()
}

fn generations(observed: &Observed) -> BTreeMap<String, i64> {
    let of = |kind: &str, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        (
            workload_key(kind, meta),
            meta.generation.unwrap_or_default(),
        )
    };
    observed
        .deployments
        .iter()
        .map(|d| of("Deployment", &d.metadata))
        .chain(
            observed
                .stateful_sets
                .iter()
                .map(|s| of("StatefulSet", &s.metadata)),
        )
        .collect()
}

#[cfg(test)]
mod tests;
