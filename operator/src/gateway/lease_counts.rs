//! How many leases the provider holds, for `/status` and `GetStatus`, kept in memory from a watch
//! of the `Lease` resources: a status request, which anyone may send, costs no API server request
//! (a LIST of every Lease carries every manifest).

use std::collections::HashMap;

use crds::resources::Lease;
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
    pub fn of<'a>(leases: impl IntoIterator<Item = &'a Lease>) -> Self {
        leases
            .into_iter()
            .map(summary)
            .fold(Self::default(), Self::add)
    }

    fn add(mut self, (live, with_manifest): (bool, bool)) -> Self {
        self.live += usize::from(live);
        self.with_manifest += usize::from(with_manifest);
        self
    }
}

/// (live, live with a manifest): all that is kept of a lease.
fn summary(lease: &Lease) -> (bool, bool) {
    let live = super::source::is_live(lease);
    (live, live && lease.spec.manifest.is_some())
}

/// Page size of the watch's initial list: a page of Leases with their manifests is held at once.
const PAGE: u32 = 50;

/// Starts watching `api`; the receiver holds `None` until the first list is complete, then the
/// counts as they change. The watch stops once every receiver is gone.
pub fn watch_counts(api: Api<Lease>) -> watch::Receiver<Option<LeaseCounts>> {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let mut known: HashMap<String, (bool, bool)> = HashMap::new();
        let mut listing: Option<HashMap<String, (bool, bool)>> = None;
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
            match event {
                Ok(Event::Init) => listing = Some(HashMap::new()),
                Ok(Event::InitApply(lease)) => {
                    listing
                        .get_or_insert_default()
                        .insert(lease.name_any(), summary(&lease));
                }
                Ok(Event::InitDone) => known = listing.take().unwrap_or_default(),
                Ok(Event::Apply(lease)) => {
                    known.insert(lease.name_any(), summary(&lease));
                }
                Ok(Event::Delete(lease)) => {
                    known.remove(&lease.name_any());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watching Lease resources for the gateway's status failed; retrying");
                    continue;
                }
            }
            if listing.is_none() {
                let counts = known
                    .values()
                    .fold(LeaseCounts::default(), |c, s| c.add(*s));
                tx.send_replace(Some(counts));
            }
        }
    });
    rx
}
