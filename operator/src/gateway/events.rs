//! A lease's Kubernetes events over a websocket: `GET /lease/{dseq}/{gseq}/{oseq}/kubeevents`,
//! as the Go provider serves them (`provider-services lease-events`): the `events.k8s.io/v1`
//! Events of the lease's namespace, one JSON text message each in the Go provider's `LeaseEvent`
//! shape, then close 1000; with `follow`, new ones as they come until the tenant hangs up, the
//! lease closes or the gateway stops.

use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::WebSocket;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, Client};

use super::logs::LogError;
use super::ws_stream::{self, close};

/// One message: the Go provider's `LeaseEvent`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseEvent {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) reporting_controller: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) reporting_instance: String,
    pub reason: String,
    pub(crate) note: String,
    pub object: LeaseEventObject,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseEventObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl From<&Event> for LeaseEvent {
    fn from(e: &Event) -> Self {
        let regarding = e.regarding.clone().unwrap_or_default();
        Self {
            type_: e.type_.clone().unwrap_or_default(),
            reporting_controller: e.reporting_controller.clone().unwrap_or_default(),
            reporting_instance: e.reporting_instance.clone().unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
            note: e.note.clone().unwrap_or_default(),
            object: LeaseEventObject {
                kind: regarding.kind.unwrap_or_default(),
                namespace: regarding.namespace.unwrap_or_default(),
                name: regarding.name.unwrap_or_default(),
            },
        }
    }
}

/// Where events come from: the cluster, or a fake in tests.
#[async_trait]
pub trait LeaseEvents: Send + Sync {
    /// The events of `namespace` now, and with `follow` every later one (the stream ends when
    /// the namespace's events can no longer be watched).
    async fn events(
        &self,
        namespace: &str,
        follow: bool,
    ) -> Result<BoxStream<'static, LeaseEvent>, LogError>;
}

/// Events through the API server.
pub(crate) struct KubeLeaseEvents {
    client: Client,
}

impl KubeLeaseEvents {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl LeaseEvents for KubeLeaseEvents {
    async fn events(
        &self,
        namespace: &str,
        follow: bool,
    ) -> Result<BoxStream<'static, LeaseEvent>, LogError> {
        let api = Api::<Event>::namespaced(self.client.clone(), namespace);
        let listed = api
            .list(&ListParams::default())
            .await
            .map_err(|e| LogError(format!("listing the lease's events: {e}")))?;
        let now: Vec<LeaseEvent> = listed.items.iter().map(LeaseEvent::from).collect();
        let now = futures::stream::iter(now);
        if !follow {
            return Ok(now.boxed());
        }
        let version = listed.metadata.resource_version.unwrap_or_default();
        // Watches end every few minutes: each is started again from the last version seen,
        // until the API server says the namespace's events are gone (or the version too old).
        type Watch = BoxStream<'static, kube::Result<WatchEvent<Event>>>;
        let later = futures::stream::unfold(
            (api, version, None::<Watch>),
            |(api, mut version, mut watching)| async move {
                loop {
                    let stream = match watching.as_mut() {
                        Some(stream) => stream,
                        None => match api.watch(&WatchParams::default(), &version).await {
                            Ok(stream) => watching.insert(stream.boxed()),
                            // The namespace or the API server away for good: the end.
                            Err(_) => return None,
                        },
                    };
                    match stream.next().await {
                        Some(Ok(WatchEvent::Added(e) | WatchEvent::Modified(e))) => {
                            if let Some(v) = &e.metadata.resource_version {
                                version.clone_from(v);
                            }
                            return Some((LeaseEvent::from(&e), (api, version, watching)));
                        }
                        Some(Ok(WatchEvent::Bookmark(b))) => {
                            version = b.metadata.resource_version;
                        }
                        Some(Ok(WatchEvent::Deleted(_))) => {}
                        // Gone (410) or refused: nothing more to follow.
                        Some(Ok(WatchEvent::Error(_)) | Err(_)) => return None,
                        // This watch ended (they do every few minutes): another from here.
                        None => {
                            watching = None;
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
            },
        );
        Ok(now.chain(later).boxed())
    }
}

/// Sends `namespace`'s events to `socket` (see the module's documentation).
pub(crate) async fn stream(
    events: &dyn LeaseEvents,
    namespace: &str,
    follow: bool,
    socket: WebSocket,
    end: super::stream_end::StreamEnd,
) {
    let (mut sink, incoming) = socket.split();
    let feed = match events.events(namespace, follow).await {
        Ok(feed) => feed,
        Err(e) => {
            tracing::warn!(namespace, error = %e, "lease events: reading failed");
            let _ = sink
                .send(close(4000, "the lease's events could not be read"))
                .await;
            return ws_stream::finish(sink, incoming).await;
        }
    };
    let texts = feed
        .map(|event| serde_json::to_string(&event).unwrap_or_default())
        .boxed();
    ws_stream::send_texts(sink, incoming, texts, end).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ObjectReference;

    #[test]
    fn an_event_reads_as_the_go_providers_lease_event() {
        let event = Event {
            type_: Some("Normal".into()),
            reason: Some("Pulled".into()),
            note: Some("Successfully pulled image".into()),
            reporting_controller: Some("kubelet".into()),
            regarding: Some(ObjectReference {
                kind: Some("Pod".into()),
                namespace: Some("lease-ns".into()),
                name: Some("web-1".into()),
                ..ObjectReference::default()
            }),
            ..Event::default()
        };
        let json = serde_json::to_value(LeaseEvent::from(&event)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "type": "Normal",
                "reportingController": "kubelet",
                "reason": "Pulled",
                "note": "Successfully pulled image",
                "object": { "kind": "Pod", "namespace": "lease-ns", "name": "web-1" },
            })
        );
    }
}
