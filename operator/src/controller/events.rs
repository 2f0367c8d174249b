//! Kubernetes events about the controllers' resources: best effort, a failure is only logged.
//!
//! The same event again within a few minutes (same object, type, reason and note) becomes a
//! count on the first one (`series`, which `kubectl describe` shows as "x3 over 2m") instead of
//! a new object. What was published recently is kept in a small bounded table (`Recent`): a
//! provider turning up 1,000 leases publishes thousands of events in those minutes, and keeping
//! each whole (as `kube::runtime::events::Recorder` does for six minutes) held megabytes.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::EventType;
use kube::{Api, Client, Resource};

/// How long a published event is counted on rather than published again.
const REPEAT_WINDOW: Duration = Duration::from_secs(6 * 60);
/// The most events remembered: older ones are forgotten first (a repeat of a forgotten one is
/// a new event, which is all that is lost).
const REMEMBERED: usize = 1024;
/// The longest note kept, in characters (the API server refuses more than 1 KiB).
const NOTE_CHARS: usize = 1000;

/// Publishes events as the controller `controller`, this process being `instance`.
#[derive(Clone)]
pub(crate) struct Recorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Arc<Mutex<Recent>>,
}

/// The recorder of the controller `controller` (`instance`: this process, when it is known).
pub(crate) fn recorder(client: &Client, controller: &str, instance: Option<String>) -> Recorder {
    Recorder {
        client: client.clone(),
        controller: controller.to_owned(),
        instance: instance.unwrap_or_else(|| controller.to_owned()),
        recent: Arc::new(Mutex::new(Recent::new(REMEMBERED, REPEAT_WINDOW))),
    }
}

/// Publishes an event about `object`; a failure is only logged (events are best effort).
pub(crate) async fn publish<K>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    reason: &str,
    note: &str,
) where
    K: Resource<DynamicType = ()>,
{
    let note: String = note.chars().take(NOTE_CHARS).collect();
    if let Err(e) = recorder
        .publish(&object.object_ref(&()), type_, reason, &note)
        .await
    {
        tracing::debug!(error = %e, "publishing an event failed");
    }
}

impl Recorder {
    async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
    ) -> kube::Result<()> {
        let key = event_key(regarding, type_, reason, note);
        let now = Instant::now();
        // Cluster-scoped objects' events go to `default`, as kubectl looks for them there.
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api = Api::<K8sEvent>::namespaced(self.client.clone(), namespace);
        let repeat = self.recent.lock().expect("events table").repeat(key, now);
        if let Some(Repeat { name, count }) = repeat {
            let series = EventSeries {
                count,
                last_observed_time: MicroTime(Timestamp::now()),
            };
            let patch = serde_json::json!({ "series": series });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Deleted meanwhile (the API server keeps events an hour): publish it anew.
                Err(e) => tracing::debug!(error = %e, event = %name, "counting a repeated event"),
            }
        }
        let event = self.event(regarding, type_, reason, note);
        let name = event.metadata.name.clone().unwrap_or_default();
        api.create(&PostParams::default(), &event).await?;
        self.recent
            .lock()
            .expect("events table")
            .remember(key, name, now);
        Ok(())
    }

    fn event(
        &self,
        regarding: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: &str,
    ) -> K8sEvent {
        let now = Timestamp::now();
        let object = regarding.name.as_deref().unwrap_or(&self.controller);
        K8sEvent {
            metadata: ObjectMeta {
                // The object's name and the time in hex, as the API server's own events are named.
                name: Some(format!("{object}.{:x}", now.as_nanosecond())),
                namespace: regarding.namespace.clone(),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some("Reconcile".into()),
            reason: Some(reason.into()),
            note: Some(note.into()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(type_name(type_).into()),
            ..Default::default()
        }
    }
}

fn type_name(type_: EventType) -> &'static str {
    match type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    }
}

/// What makes two events the same: the object (by uid too, so a re-created object's events are
/// its own), the type, the reason and the note.
fn event_key(regarding: &ObjectReference, type_: EventType, reason: &str, note: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (
        &regarding.api_version,
        &regarding.kind,
        &regarding.namespace,
        &regarding.name,
        &regarding.uid,
    )
        .hash(&mut hasher);
    (type_name(type_), reason, note).hash(&mut hasher);
    hasher.finish()
}

/// A repeat of a recent event: its name, and its count with this one.
#[derive(Debug, PartialEq, Eq)]
struct Repeat {
    name: String,
    count: i32,
}

/// The events published recently, by key: at most `capacity`, each for `window`.
struct Recent {
    seen: HashMap<u64, Seen>,
    capacity: usize,
    window: Duration,
}

struct Seen {
    name: String,
    count: i32,
    first: Instant,
}

impl Recent {
    fn new(capacity: usize, window: Duration) -> Self {
        Self {
            seen: HashMap::new(),
            capacity,
            window,
        }
    }

    /// If the event `key` was published within the window: counts this one and names it.
    fn repeat(&mut self, key: u64, now: Instant) -> Option<Repeat> {
        let window = self.window;
        let seen = self.seen.get_mut(&key)?;
        if now.saturating_duration_since(seen.first) >= window {
            self.seen.remove(&key);
            return None;
        }
        seen.count = seen.count.saturating_add(1);
        Some(Repeat {
            name: seen.name.clone(),
            count: seen.count,
        })
    }

    /// Remembers the event `key`, just published as `name`; forgets the expired, then the
    /// oldest, to stay within the capacity.
    fn remember(&mut self, key: u64, name: String, now: Instant) {
        if self.seen.len() >= self.capacity && !self.seen.contains_key(&key) {
            let window = self.window;
            self.seen
                .retain(|_, s| now.saturating_duration_since(s.first) < window);
            if self.seen.len() >= self.capacity
                && let Some(oldest) = self
                    .seen
                    .iter()
                    .min_by_key(|(_, s)| s.first)
                    .map(|(k, _)| *k)
            {
                self.seen.remove(&oldest);
            }
        }
        self.seen.insert(
            key,
            Seen {
                name,
                count: 1,
                first: now,
            },
        );
    }
}

#[cfg(test)]
mod tests;
