//! What the gateway's background work needs to know of every `Lease` resource, kept in memory
//! from one watch: per lease its id, whether it is live and the version of its manifest, never
//! the manifest itself. `/status` and `GetStatus` (which anyone may call) count from it, and the
//! peer fetcher picks the deployments to work on from it, so neither costs an API-server request
//! while nothing changes (a LIST of every Lease carries every manifest).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crds::resources::{Lease, LeaseRef};
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

/// Page size of the watch's initial list: a page of Leases with their manifests is held at once.
const PAGE: u32 = 50;

/// The summaries of every Lease resource, as a watch keeps them.
#[derive(Clone)]
pub(super) struct LeaseIndex {
    known: Arc<Mutex<HashMap<String, LeaseSummary>>>,
    /// False until the first complete list; closed when the watch stops.
    ready: watch::Receiver<bool>,
}

impl LeaseIndex {
    /// Starts watching `api`. The watch stops once every clone of the index is gone.
    pub(super) fn watch(api: Api<Lease>) -> Self {
        let (tx, ready) = watch::channel(false);
        let known: Arc<Mutex<HashMap<String, LeaseSummary>>> = Arc::default();
        let index = Arc::downgrade(&known);
        tokio::spawn(async move {
            let mut listing: Option<HashMap<String, LeaseSummary>> = None;
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
                    Ok(Event::Init) => listing = Some(HashMap::new()),
                    Ok(Event::InitApply(lease)) => {
                        listing
                            .get_or_insert_default()
                            .insert(lease.name_any(), LeaseSummary::of(&lease));
                    }
                    Ok(Event::InitDone) => {
                        *known = listing.take().unwrap_or_default();
                        tx.send_replace(true);
                    }
                    Ok(Event::Apply(lease)) => {
                        known.insert(lease.name_any(), LeaseSummary::of(&lease));
                    }
                    Ok(Event::Delete(lease)) => {
                        known.remove(&lease.name_any());
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
        Ok(known.values().cloned().collect())
    }

    /// The counts, once the first list is complete.
    pub(super) async fn counts(&self) -> Result<LeaseCounts, String> {
        self.wait_ready().await?;
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        Ok(LeaseCounts::of(known.values()))
    }
}
