//! The one status writer: server-side apply of the status subresource under the controller's
//! field manager. Where the status was computed from the object as read, the write carries that
//! object's resource version, so a change someone made meanwhile is never undone: the API server
//! answers 409, reported as [`StatusWrite::Requeue`] (the watch brings the new version and the
//! next reconcile starts from it), not as an error.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// What a status write is conditioned on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// The status was computed from the object as read: written only over that version.
    ReadVersion,
    /// The writer is the status' only author, or reports its own state: the last write wins.
    LastWriteWins,
}

/// How a status write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusWrite {
    Written,
    /// The status was already the one computed: nothing was sent.
    Unchanged,
    /// The object changed since it was read (409): nothing was written; reconcile again from the
    /// new version.
    Requeue,
}

/// Writes `status` of `object` unless it equals `current` (the status the caller started from).
pub(crate) async fn write_status<K, S>(
    api: &Api<K>,
    object: &K,
    field_manager: &str,
    precondition: Precondition,
    current: Option<&S>,
    status: &S,
) -> kube::Result<StatusWrite>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(StatusWrite::Unchanged);
    }
    let resource_version = match precondition {
        Precondition::ReadVersion => object.resource_version(),
        Precondition::LastWriteWins => None,
    };
    apply_status(
        api,
        &object.name_any(),
        field_manager,
        resource_version.as_deref(),
        status,
    )
    .await
}

/// Writes `status` of the object `name` by server-side apply (forced: the status is this field
/// manager's), over `resource_version` when one is given. Fields this manager wrote before and
/// omits now are removed.
pub(crate) async fn apply_status<K, S>(
    api: &Api<K>,
    name: &str,
    field_manager: &str,
    resource_version: Option<&str>,
    status: &S,
) -> kube::Result<StatusWrite>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let mut patch = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    if let Some(version) = resource_version {
        patch["metadata"] = serde_json::json!({ "resourceVersion": version });
    }
    match api
        .patch_status(
            name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&patch),
        )
        .await
    {
        Ok(_) => Ok(StatusWrite::Written),
        Err(kube::Error::Api(e)) if e.code == 409 && resource_version.is_some() => {
            Ok(StatusWrite::Requeue)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Pod, PodStatus};
    use kube::Client;

    use super::*;
    use crate::test_support::{Seen, recording_client};

    /// A kube client whose API server answers every request with HTTP `code` (a `Status` unless
    /// 200), recording the requests.
    fn client(code: u16) -> (Client, Seen) {
        recording_client("default", move |_| {
            let answer = if code == 200 {
                serde_json::to_value(pod()).unwrap()
            } else {
                serde_json::json!({
                    "apiVersion": "v1",
                    "kind": "Status",
                    "metadata": {},
                    "status": "Failure",
                    "message": "the object has been modified",
                    "reason": if code == 409 { "Conflict" } else { "InternalError" },
                    "code": code,
                })
            };
            (code, answer)
        })
    }

    fn pod() -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.namespace = Some("default".into());
        pod.metadata.resource_version = Some("42".into());
        pod
    }

    fn running() -> PodStatus {
        PodStatus {
            phase: Some("Running".into()),
            ..Default::default()
        }
    }

    /// `write_status` of a running `web` pod against an API server answering `code`, with the
    /// status it believes is already there (`current`).
    async fn write(
        code: u16,
        precondition: Precondition,
        current: Option<&PodStatus>,
    ) -> (Result<StatusWrite, kube::Error>, Seen) {
        let (client, seen) = client(code);
        let api: Api<Pod> = Api::namespaced(client, "default");
        let result = write_status(
            &api,
            &pod(),
            "test-manager",
            precondition,
            current,
            &running(),
        )
        .await;
        (result, seen)
    }

    #[tokio::test]
    async fn a_status_computed_from_a_read_object_is_applied_over_its_version() {
        let (written, seen) = write(200, Precondition::ReadVersion, None).await;
        assert_eq!(written.unwrap(), StatusWrite::Written);
        let seen = seen.lock().unwrap();
        let (method, uri, content_type, body) = &seen[0];
        assert_eq!(method, "PATCH");
        assert!(
            uri.starts_with("/api/v1/namespaces/default/pods/web/status?"),
            "{uri}"
        );
        assert!(uri.contains("fieldManager=test-manager") && uri.contains("force=true"));
        assert_eq!(content_type, "application/apply-patch+yaml");
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(body).unwrap(),
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": { "resourceVersion": "42" },
                "status": { "phase": "Running" },
            })
        );
    }

    #[tokio::test]
    async fn a_conflict_is_a_requeue_not_an_error() {
        let (written, _) = write(409, Precondition::ReadVersion, None).await;
        assert_eq!(written.unwrap(), StatusWrite::Requeue);
    }

    #[tokio::test]
    async fn without_a_precondition_no_version_is_sent_and_a_conflict_is_an_error() {
        let (result, seen) = write(409, Precondition::LastWriteWins, None).await;
        assert!(matches!(result, Err(kube::Error::Api(e)) if e.code == 409));
        let body: serde_json::Value = serde_json::from_slice(&seen.lock().unwrap()[0].3).unwrap();
        assert!(body.get("metadata").is_none());
    }

    #[tokio::test]
    async fn other_failures_are_errors() {
        let (result, _) = write(500, Precondition::ReadVersion, None).await;
        assert!(matches!(result, Err(kube::Error::Api(e)) if e.code == 500));
    }

    #[tokio::test]
    async fn an_unchanged_status_is_not_sent() {
        let (written, seen) = write(200, Precondition::ReadVersion, Some(&running())).await;
        assert_eq!(written.unwrap(), StatusWrite::Unchanged);
        assert!(seen.lock().unwrap().is_empty());
    }
}
