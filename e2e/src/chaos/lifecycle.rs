//! One deployment's life, from its `Manifest` to its close, checked at each step.

use std::time::{Duration, Instant};

use crds::resources::{Distribution, Lease, LeasePhase, Manifest, ManifestPhase};
use futures::StreamExt;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

use crate::marketplace::manifest_of;
use crate::wait::{Poll, until};

/// Two groups, `dcN` pinned to provider N by `site: pN`; tiny services.
pub fn sdl(image: &str) -> String {
    let mut text = String::from("version: \"2.0\"\nservices:\n");
    for i in 0..2 {
        text.push_str(&format!(
            "  web{i}:\n    image: {image}\n    expose:\n      - port: 80\n        as: 80\n        to:\n          - global: true\n"
        ));
    }
    text.push_str("profiles:\n  compute:\n    tiny:\n      resources:\n        cpu:\n          units: 0.01\n        memory:\n          size: 16Mi\n        storage:\n          size: 16Mi\n  placement:\n");
    for i in 0..2 {
        text.push_str(&format!(
            "    dc{i}:\n      attributes:\n        site: p{i}\n      pricing:\n        tiny:\n          denom: uact\n          amount: 10000\n"
        ));
    }
    text.push_str("deployment:\n");
    for i in 0..2 {
        text.push_str(&format!(
            "  web{i}:\n    dc{i}:\n      profile: tiny\n      count: 1\n"
        ));
    }
    text
}

/// What one deployment went through.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub dseq: u64,
    /// Manifest versions that ran on both providers (0, 1 or 2).
    pub versions_delivered: usize,
    /// From creation to gone, when it got there.
    pub took: Option<Duration>,
    /// Where it stopped, when it did not get through.
    pub failure: Option<String>,
}

/// Not closing or closed.
pub(super) fn lease_live(lease: &Lease) -> bool {
    !matches!(
        lease.status.as_ref().and_then(|s| s.phase),
        Some(LeasePhase::Closing | LeasePhase::Closed)
    )
}

/// Errors while something is down are expected: a check that fails reads as "not yet".
pub(super) async fn tolerant<T>(
    check: impl std::future::Future<Output = anyhow::Result<Poll<T>>>,
) -> anyhow::Result<Poll<T>> {
    Ok(check
        .await
        .unwrap_or_else(|e| Poll::Pending(format!("error: {e:#}"))))
}

/// How long one step of a lifecycle may take, kills included (a hang bound, not a speed claim).
const STEP_LIMIT: Duration = Duration::from_secs(300);

/// One deployment's life; `Err` names the step it stopped at.
async fn live(
    manifests: &Api<Manifest>,
    leases: &[Api<Lease>],
    name: &str,
    dseq: u64,
) -> Lifecycle {
    let started = Instant::now();
    let mut lifecycle = Lifecycle {
        dseq,
        versions_delivered: 0,
        took: None,
        failure: None,
    };
    let result = async {
        let first = crds::sdl::Sdl::parse(&sdl("nginx:1.27"))?;
        let manifest = manifest_of(name, &first, dseq, 3, Distribution::SendToAll);
        until(&format!("{name} created"), STEP_LIMIT, || {
            tolerant(async {
                match manifests.create(&PostParams::default(), &manifest).await {
                    Ok(_) => Ok(Poll::Ready(())),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(Poll::Ready(())),
                    Err(e) => Err(e.into()),
                }
            })
        })
        .await?;
        running(manifests, leases, name, dseq, &first.manifest_version_hex()).await?;
        lifecycle.versions_delivered = 1;

        let second = crds::sdl::Sdl::parse(&sdl("nginx:1.28"))?;
        let patch = serde_json::json!({ "spec": { "sdl": second.document() } });
        until(&format!("{name} updated"), STEP_LIMIT, || {
            tolerant(async {
                manifests
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                Ok(Poll::Ready(()))
            })
        })
        .await?;
        running(
            manifests,
            leases,
            name,
            dseq,
            &second.manifest_version_hex(),
        )
        .await?;
        lifecycle.versions_delivered = 2;

        until(&format!("{name} deleted"), STEP_LIMIT, || {
            tolerant(async {
                match manifests.delete(name, &DeleteParams::default()).await {
                    Ok(_) => Ok(Poll::Ready(())),
                    Err(kube::Error::Api(e)) if e.code == 404 => Ok(Poll::Ready(())),
                    Err(e) => Err(e.into()),
                }
            })
        })
        .await?;
        until(
            &format!("{name} gone (deployment closed)"),
            STEP_LIMIT,
            || {
                tolerant(async {
                    Ok(match manifests.get_opt(name).await? {
                        None => Poll::Ready(()),
                        Some(m) => Poll::Pending(format!("{:?}", m.status.and_then(|s| s.phase))),
                    })
                })
            },
        )
        .await?;
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => lifecycle.took = Some(started.elapsed()),
        Err(e) => lifecycle.failure = Some(format!("{name} (dseq {dseq}): {e:#}")),
    }
    lifecycle
}

/// Waits until `version` runs: the Manifest says so for every group, and each provider's
/// `Lease` holds it and is Active.
async fn running(
    manifests: &Api<Manifest>,
    leases: &[Api<Lease>],
    name: &str,
    dseq: u64,
    version: &str,
) -> anyhow::Result<()> {
    until(
        &format!("{name} running {}", &version[..8]),
        STEP_LIMIT,
        || {
            tolerant(async {
                let st = manifests.get(name).await?.status.unwrap_or_default();
                let tenant_side = st.phase == Some(ManifestPhase::Running)
                    && st.version.as_deref() == Some(version)
                    && st.groups.len() == 2
                    && st
                        .groups
                        .iter()
                        .all(|g| g.running_version.as_deref() == Some(version));
                if !tenant_side {
                    return Ok(Poll::Pending(format!(
                        "manifest {:?}, groups {:?}",
                        st.phase,
                        st.groups
                            .iter()
                            .map(|g| (g.name.clone(), g.running_version.clone(), g.message.clone()))
                            .collect::<Vec<_>>()
                    )));
                }
                for (i, api) in leases.iter().enumerate() {
                    let held = api
                        .list(&Default::default())
                        .await?
                        .items
                        .into_iter()
                        .find(|l| l.spec.lease_id.dseq == dseq && lease_live(l));
                    let ok = held.as_ref().is_some_and(|l| {
                        l.spec.manifest.as_ref().map(|m| m.version.as_str()) == Some(version)
                            && l.status.as_ref().and_then(|s| s.phase) == Some(LeasePhase::Active)
                    });
                    if !ok {
                        return Ok(Poll::Pending(format!(
                            "provider {i}'s Lease: {:?}",
                            held.map(|l| l.status.and_then(|s| s.phase))
                        )));
                    }
                }
                Ok(Poll::Ready(()))
            })
        },
    )
    .await
}

/// Runs `count` deployments from `first_dseq` on, `concurrency` at a time.
pub(super) async fn lifecycles(
    manifests: &Api<Manifest>,
    leases: &[Api<Lease>],
    first_dseq: u64,
    count: usize,
    concurrency: usize,
    prefix: &str,
) -> Vec<Lifecycle> {
    futures::stream::iter(0..count)
        .map(|k| {
            let name = format!("{prefix}-{k}");
            let dseq = first_dseq + k as u64;
            async move { live(manifests, leases, &name, dseq).await }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soak_sdl_has_one_group_per_provider() {
        let parsed = crds::sdl::Sdl::parse(&sdl("nginx:1.27")).unwrap();
        let names: Vec<&str> = parsed.manifest().iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["dc0", "dc1"]);
        assert_ne!(
            parsed.manifest_version_hex(),
            crds::sdl::Sdl::parse(&sdl("nginx:1.28"))
                .unwrap()
                .manifest_version_hex()
        );
    }
}
