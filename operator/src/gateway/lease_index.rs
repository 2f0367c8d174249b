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
//!
//! A manifest for a deployment the index has no lease of (the lease is usually being created
//! at that moment) waits a little for the watch to bring one ([`LeaseIndex::wait_for_dseq`])
//! before the gateway lists: a tenant retrying until its lease exists costs a LIST a second at
//! most, not one per attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

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
    /// Counts the watch events taken: a change wakes those waiting for a lease.
    changes: watch::Receiver<u64>,
}

/// What takes the watch's events into a [`LeaseIndex`].
pub(super) struct Feed {
    known: Weak<Mutex<HashMap<String, Entry>>>,
    listing: Option<HashMap<String, Entry>>,
    ready: watch::Sender<bool>,
    changes: watch::Sender<u64>,
}

impl Feed {
    /// Takes one event; false once the index is gone.
    pub(super) fn take(&mut self, event: Event<Lease>) -> bool {
        let Some(known) = self.known.upgrade() else {
            return false;
        };
        let listed = {
            let mut known = known.lock().unwrap_or_else(|p| p.into_inner());
            on_event(&mut known, &mut self.listing, event)
        };
        if listed {
            self.ready.send_replace(true);
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        true
    }
}

impl LeaseIndex {
    /// An empty index, and what fills it.
    pub(super) fn fed() -> (Self, Feed) {
        let (ready_tx, ready) = watch::channel(false);
        let (changes_tx, changes) = watch::channel(0);
        let known: Arc<Mutex<HashMap<String, Entry>>> = Arc::default();
        let feed = Feed {
            known: Arc::downgrade(&known),
            listing: None,
            ready: ready_tx,
            changes: changes_tx,
        };
        (
            Self {
                known,
                ready,
                changes,
            },
            feed,
        )
    }

    /// Starts watching `api`. The watch stops once every clone of the index is gone.
    pub(super) fn watch(api: Api<Lease>) -> Self {
        let (index, mut feed) = Self::fed();
        tokio::spawn(async move {
            let events =
                watcher::watcher(api, watcher::Config::default().page_size(PAGE)).default_backoff();
            let mut events = std::pin::pin!(events);
            loop {
                let event = tokio::select! {
                    () = feed.ready.closed() => return,
                    event = events.next() => match event {
                        Some(event) => event,
                        None => return,
                    },
                };
                match event {
                    Ok(event) => {
                        if !feed.take(event) {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "watching Lease resources for the gateway failed; retrying");
                    }
                }
            }
        });
        index
    }

    /// Whether the index holds a lease (of any owner, live or not) of deployment `dseq`.
    fn knows_dseq(&self, dseq: u64) -> bool {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.values().any(|e| e.summary.id.dseq == dseq)
    }

    /// Waits up to `limit` for the index to hold a lease of deployment `dseq`; whether it does.
    pub(super) async fn wait_for_dseq(&self, dseq: u64, limit: Duration) -> bool {
        // Cloned before looking, so that an event taken in between still wakes the wait.
        let mut changes = self.changes.clone();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.knows_dseq(dseq) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // Out of time, or the watch stopped.
                _ => return false,
            }
        }
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
