//! What the gateway needs to know of every `Lease` resource, kept in memory from one watch: per
//! lease its id, whether it is live and the version of its manifest, and the hosts and leased-IP
//! endpoints it holds, never the manifest itself. `/status` and `GetStatus` (which anyone may
//! call) count from it, the peer fetcher picks the deployments to work on from it, and accepting
//! a manifest checks its hosts and endpoints against it, so none of them costs an API-server
//! request (a LIST of every Lease carries every manifest: at 1,000 leases, megabytes per
//! accepted manifest, read one after another under the reservation lock).
//!
//! The gateway's own writes of what a lease holds go into the index as soon as the API server
//! answers them ([`LeaseIndex::note_written`]), so the next reservation sees them even before
//! the watch brings them. A watch event older than what the index holds is not taken: resource
//! versions of the API server's etcd storage are its revision numbers, which only grow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crds::resources::{Lease, LeaseRef, LeaseStatus};
use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, ResourceExt};
use tokio::sync::watch;

/// Leases held and live (not closing or closed), and how many of those have a manifest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LeaseCounts {
    pub live: usize,
    pub with_manifest: usize,
}

impl LeaseCounts {
    /// The counts of `leases`.
    pub fn of<'a>(leases: impl IntoIterator<Item = &'a LeaseSummary>) -> Self {
        leases.into_iter().fold(Self::default(), |mut c, s| {
            c.live += usize::from(s.live);
            c.with_manifest += usize::from(s.live && s.version.is_some());
            c
        })
    }
}

/// All that is kept of one `Lease` resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseSummary {
    pub name: String,
    pub id: LeaseRef,
    /// Not closing or closed.
    pub live: bool,
    /// The version of its manifest, once it has one.
    pub version: Option<String>,
}

impl LeaseSummary {
    pub fn of(lease: &Lease) -> Self {
        Self {
            name: lease.name_any(),
            id: lease.spec.lease_id.clone(),
            live: super::source::is_live(lease),
            version: lease.spec.manifest.as_ref().map(|m| m.version.clone()),
        }
    }
}

/// What the reservation of hosts and leased-IP endpoints reads of `lease` (see
/// `hostnames::held_hosts` and `endpoints::held_endpoints`): its name, id, deletion, phase, and
/// of its manifest the version, the hosts and endpoints it holds (filled in from the group for a
/// manifest an older provider accepted, which holds every one its group names) and the
/// endpoints' addresses. The group itself, the whole manifest and the status's services are
/// dropped.
pub(crate) fn holdings(lease: &Lease) -> Lease {
    let spec = crds::resources::LeaseSpec {
        lease_id: lease.spec.lease_id.clone(),
        price: lease.spec.price.clone(),
        created_at: lease.spec.created_at,
        manifest: lease.spec.manifest.clone(),
        deployment_manifest: None,
    };
    let mut slim = Lease::new(&lease.name_any(), spec);
    slim.metadata
        .namespace
        .clone_from(&lease.metadata.namespace);
    slim.metadata
        .resource_version
        .clone_from(&lease.metadata.resource_version);
    slim.metadata
        .deletion_timestamp
        .clone_from(&lease.metadata.deletion_timestamp);
    if let Some(manifest) = slim.spec.manifest.as_mut() {
        if manifest.hostnames.is_none() {
            manifest.hostnames = Some(
                super::hostnames::named_hosts(&manifest.group)
                    .into_iter()
                    .collect(),
            );
        }
        if manifest.ip_endpoints.is_none() {
            manifest.ip_endpoints = Some(
                super::endpoints::named_endpoints(&manifest.group)
                    .into_iter()
                    .collect(),
            );
        }
        manifest.group.services.clear();
        manifest.leased.clear();
    }
    slim.status = lease.status.as_ref().map(|s| LeaseStatus {
        phase: s.phase,
        ..LeaseStatus::default()
    });
    slim
}

/// The resource version of `lease` as a number (see the module's comment); `None` if it is not
/// one, and then nothing is ordered by it.
fn version(lease: &Lease) -> Option<u64> {
    lease.resource_version()?.parse().ok()
}

/// Whether `a` is a later version than `b`, as far as both are known.
fn later(a: Option<u64>, b: Option<u64>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a > b)
}

/// `view` (what the index holds) with each lease of `listed` (read from the API server just
/// now) put in where the view has an older version of it or none: a lease created a moment ago
/// may not have reached the watch yet.
pub(crate) fn with_listed(mut view: Vec<Lease>, listed: &[Lease]) -> Vec<Lease> {
    for fresh in listed {
        let name = fresh.name_any();
        match view.iter_mut().find(|l| l.name_any() == name) {
            Some(held) if later(version(held), version(fresh)) => {}
            Some(held) => *held = holdings(fresh),
            None => view.push(holdings(fresh)),
        }
    }
    view
}

/// What the index keeps of one `Lease` resource.
#[derive(Debug, Clone)]
struct Entry {
    summary: LeaseSummary,
    holdings: Lease,
    version: Option<u64>,
}

impl Entry {
    fn of(lease: &Lease) -> Self {
        Self {
            summary: LeaseSummary::of(lease),
            holdings: holdings(lease),
            version: version(lease),
        }
    }
}

/// Puts `entry` in `known` unless `known` holds a later version of it.
fn keep_latest(known: &mut HashMap<String, Entry>, name: String, entry: Entry) {
    match known.get(&name) {
        Some(held) if later(held.version, entry.version) => {}
        _ => {
            known.insert(name, entry);
        }
    }
}

/// Applies one watch event to `known`, with `listing` holding a list in progress; `true` when a
/// list completed.
fn on_event(
    known: &mut HashMap<String, Entry>,
    listing: &mut Option<HashMap<String, Entry>>,
    event: Event<Lease>,
) -> bool {
    match event {
        Event::Init => *listing = Some(HashMap::new()),
        Event::InitApply(lease) => {
            listing
                .get_or_insert_default()
                .insert(lease.name_any(), Entry::of(&lease));
        }
        Event::InitDone => {
            // A write noted while the list's pages were read may be later than what its page
            // had.
            let mut listed = listing.take().unwrap_or_default();
            for (name, held) in known.drain() {
                if listed.contains_key(&name) {
                    keep_latest(&mut listed, name, held);
                }
            }
            *known = listed;
            return true;
        }
        Event::Apply(lease) => keep_latest(known, lease.name_any(), Entry::of(&lease)),
        Event::Delete(lease) => {
            known.remove(&lease.name_any());
        }
    }
    false
}

/// Page size of the watch's initial list: a page of Leases with their manifests is held at once.
const PAGE: u32 = 50;

/// What is kept of every Lease resource, as a watch (and the gateway's own writes) keep it.
#[derive(Clone)]
pub(super) struct LeaseIndex {
    known: Arc<Mutex<HashMap<String, Entry>>>,
    /// False until the first complete list; closed when the watch stops.
    ready: watch::Receiver<bool>,
}

impl LeaseIndex {
    /// Starts watching `api`. The watch stops once every clone of the index is gone.
    pub(super) fn watch(api: Api<Lease>) -> Self {
        let (tx, ready) = watch::channel(false);
        let known: Arc<Mutex<HashMap<String, Entry>>> = Arc::default();
        let index = Arc::downgrade(&known);
        tokio::spawn(async move {
            let mut listing: Option<HashMap<String, Entry>> = None;
            let events =
                watcher::watcher(api, watcher::Config::default().page_size(PAGE)).default_backoff();
            let mut events = std::pin::pin!(events);
            loop {
                let event = tokio::select! {
                    () = tx.closed() => return,
                    event = events.next() => match event {
                        Some(event) => event,
                        None => return,
                    },
                };
                let Some(known) = index.upgrade() else { return };
                let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
                match event {
                    Ok(event) => {
                        if on_event(&mut known, &mut listing, event) {
                            tx.send_replace(true);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching Lease resources for the gateway failed; retrying");
                    }
                }
            }
        });
        Self { known, ready }
    }

    /// Waits for the first complete list.
    async fn wait_ready(&self) -> Result<(), String> {
        let mut ready = self.ready.clone();
        ready
            .wait_for(|r| *r)
            .await
            .map(|_| ())
            .map_err(|_| "the watch of Lease resources stopped".to_owned())
    }

    /// Every lease's summary, once the first list is complete.
    pub(super) async fn summaries(&self) -> Result<Vec<LeaseSummary>, String> {
        self.wait_ready().await?;
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        Ok(known.values().map(|e| e.summary.clone()).collect())
    }

    /// What every lease holds (see [`holdings`]), once the first list is complete.
    pub(super) async fn holdings(&self) -> Result<Vec<Lease>, String> {
        self.wait_ready().await?;
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        Ok(known.values().map(|e| e.holdings.clone()).collect())
    }

    /// Takes `lease` as the API server answered a write of it, unless the watch already brought
    /// a later version.
    pub(super) fn note_written(&self, lease: &Lease) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        keep_latest(&mut known, lease.name_any(), Entry::of(lease));
    }

    /// The counts, once the first list is complete.
    pub(super) async fn counts(&self) -> Result<LeaseCounts, String> {
        self.wait_ready().await?;
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        Ok(LeaseCounts::of(known.values().map(|e| &e.summary)))
    }
}

#[cfg(test)]
mod tests;
