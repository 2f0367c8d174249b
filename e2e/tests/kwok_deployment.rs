//! The control plane schedules and "runs" Pods on kwok nodes, and garbage-collects them.

use std::time::Duration;

use e2e::Cluster;
use e2e::wait::{self, Poll};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};

fn deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    // kwok's nodes only: the real node would really pull and run the image.
                    "nodeSelector": { "type": "kwok" },
                    "containers": [{
                        "name": "web",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } }
                    }]
                }
            }
        }
    }))
    .expect("a valid Deployment")
}

#[tokio::test]
async fn deployment_pods_run_on_kwok_nodes_and_go_away_when_deleted() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    let ns = cluster.namespace("kwok-deployment").await?;
    let deployments: Api<Deployment> = ns.api();
    let pods: Api<Pod> = ns.api();
    let selector = ListParams::default().labels("app=web");

    let kwok_nodes: Vec<String> = Api::<Node>::all(cluster.client())
        .list(&ListParams::default().labels("type=kwok"))
        .await?
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(
        !kwok_nodes.is_empty(),
        "the control plane has no kwok nodes"
    );

    deployments
        .create(&PostParams::default(), &deployment("web", 3))
        .await?;

    let running = wait::until("3 Running pods", Duration::from_secs(120), || async {
        let list = pods.list(&selector).await?;
        let running: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| {
                p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    && p.metadata.deletion_timestamp.is_none()
            })
            .collect();
        Ok(if running.len() == 3 {
            Poll::Ready(running)
        } else {
            Poll::Pending(format!("{} running", running.len()))
        })
    })
    .await?;

    for pod in &running {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        assert!(
            kwok_nodes.contains(&node),
            "pod {name} runs on {node:?}, not a kwok node ({kwok_nodes:?})"
        );
        let status = pod.status.as_ref().expect("a running pod has a status");
        assert!(status.pod_ip.is_some(), "pod {name} has no IP");
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        assert!(ready, "pod {name} is Running but not Ready");
    }

    let ready_replicas = deployments
        .get("web")
        .await?
        .status
        .and_then(|s| s.ready_replicas);
    // The Deployment controller may lag the Pods by a moment; wait for it rather than race it.
    if ready_replicas != Some(3) {
        wait::until(
            "Deployment to report 3 ready replicas",
            Duration::from_secs(60),
            || async {
                let ready = deployments
                    .get("web")
                    .await?
                    .status
                    .and_then(|s| s.ready_replicas);
                Ok(if ready == Some(3) {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!("ready replicas {ready:?}"))
                })
            },
        )
        .await?;
    }

    deployments
        .delete("web", &DeleteParams::foreground())
        .await?;
    wait::until("the pods to go away", Duration::from_secs(120), || async {
        let left = pods.list(&selector).await?.items.len();
        Ok(if left == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("{left} pods left"))
        })
    })
    .await?;
    // Foreground deletion removes the Deployment itself only after the garbage collector saw its
    // dependents gone, a moment after the last pod.
    wait::until(
        "the Deployment to go away",
        Duration::from_secs(60),
        || async {
            Ok(match deployments.get_opt("web").await? {
                None => Poll::Ready(()),
                Some(d) => Poll::Pending(format!(
                    "still there, finalizers {:?}",
                    d.metadata.finalizers.unwrap_or_default()
                )),
            })
        },
    )
    .await?;
    Ok(())
}
