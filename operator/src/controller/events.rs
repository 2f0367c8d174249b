//! Kubernetes events about the controllers' resources: best effort, a failure is only logged.

use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// The recorder of the controller `controller` (`instance`: this process, when it is known).
pub(crate) fn recorder(client: &Client, controller: &str, instance: Option<String>) -> Recorder {
    let reporter = Reporter {
        controller: controller.into(),
        instance,
    };
    Recorder::new(client.clone(), reporter)
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
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::debug!(error = %e, "publishing an event failed");
    }
}
