//! The tenant controller end to end: `Manifest` resources on the real control plane, the devnet
//! over its real ports, two real providers with their own keys and prices, and
//! `akash-provider tenant` choosing between them, delivering over mTLS, following, updating,
//! replacing a stopped provider and closing on delete.

use std::time::Duration;

use chain_client::Chain;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::chain::PageRequest;
use crds::resources::{LeasePhase, Manifest, ManifestPhase};
use e2e::market::unique_dseq;
use e2e::marketplace::{Marketplace, manifest};
use e2e::wait::{Poll, until};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};

async fn wait_phase(
    m: &Marketplace,
    name: &str,
    phase: ManifestPhase,
    check: impl Fn(&Manifest) -> bool,
) -> anyhow::Result<Manifest> {
    until(
        &format!("Manifest {name} {phase:?}"),
        Duration::from_secs(150),
        || async {
            let manifest = m.manifests().get(name).await?;
            let st = manifest.status.clone().unwrap_or_default();
            Ok(if st.phase == Some(phase) && check(&manifest) {
                Poll::Ready(manifest)
            } else {
                Poll::Pending(format!(
                    "phase {:?}, ready {:?}, groups {:?}",
                    st.phase, st.ready, st.groups
                ))
            })
        },
    )
    .await
}

async fn chain_deployment(
    m: &Marketplace,
    dseq: u64,
) -> anyhow::Result<Option<dv4::QueryDeploymentResponse>> {
    Ok(operator::tenant::flow::deployment(&m.tenant, m.tenant.address(), dseq).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cheaper_provider_runs_the_manifest_an_update_reaches_it_and_delete_closes_the_deployment()
-> anyhow::Result<()> {
    // Provider 1 asks half of what provider 0 asks.
    let m = Marketplace::start("tc-cheap", [2.0, 1.0], &[]).await?;
    m.with_logs(async {
        let dseq = unique_dseq(40);
        let cheaper = m.sites[1].address.clone();
        m.manifests()
            .create(
                &PostParams::default(),
                &manifest("speed", "openspeedtest.yaml", dseq, 5)?,
            )
            .await?;
        let running = wait_phase(&m, "speed", ManifestPhase::Running, |_| true).await?;
        let st = running.status.clone().unwrap();
        assert_eq!(st.dseq, Some(dseq));
        assert_eq!(st.groups.len(), 1);
        let group = &st.groups[0];
        assert_eq!(group.provider.as_deref(), Some(cheaper.as_str()), "{st:?}");
        assert_eq!(group.bids_seen, 2, "both providers bid: {st:?}");
        let price = group.price.clone().unwrap();
        assert_eq!(
            (price.amount.as_str(), price.denom.as_str()),
            ("2024", "uact")
        );
        assert_eq!(group.running_version, st.version);
        assert_eq!(st.ready.as_deref(), Some("1/1"));
        let service = &st.services[0];
        assert_eq!(service.name, "openspeedtest");
        assert!(
            service
                .uris
                .iter()
                .any(|u| u.ends_with(".ingress.localhost")),
            "{service:?}"
        );
        // The winner runs it; the other provider's bid lost and it holds no lease.
        let lease = until(
            "the winner's Lease Active",
            Duration::from_secs(60),
            || async {
                let leases = m.sites[1]
                    .ns
                    .api::<crds::resources::Lease>()
                    .list(&Default::default())
                    .await?;
                Ok(
                    match leases
                        .items
                        .into_iter()
                        .find(|l| l.spec.lease_id.dseq == dseq)
                    {
                        Some(l)
                            if l.status.as_ref().and_then(|s| s.phase)
                                == Some(LeasePhase::Active) =>
                        {
                            Poll::Ready(l)
                        }
                        other => Poll::Pending(format!("{:?}", other.map(|l| l.status))),
                    },
                )
            },
        )
        .await?;
        let losers = m.sites[0]
            .ns
            .api::<crds::resources::Lease>()
            .list(&Default::default())
            .await?;
        assert!(
            losers.items.is_empty(),
            "the dearer provider holds no lease"
        );

        // An update: a new image. The chain gets the new version, the provider runs it.
        let new_image = "openspeedtest/latest:v2.0.4";
        let mut spec = running.spec.clone();
        spec.sdl.services.get_mut("openspeedtest").unwrap().image = new_image.into();
        m.manifests()
            .patch(
                "speed",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await?;
        let updated = wait_phase(&m, "speed", ManifestPhase::Running, |mf| {
            let st = mf.status.clone().unwrap_or_default();
            st.version.is_some()
                && st.version != running_version(&running)
                && st.groups.iter().all(|g| g.running_version == st.version)
        })
        .await?;
        let version = updated.status.unwrap().version.unwrap();
        let on_chain = chain_deployment(&m, dseq)
            .await?
            .unwrap()
            .deployment
            .unwrap();
        assert_eq!(hex(&on_chain.hash), version);
        let namespace = crds::sdl::names::lease_namespace(&crds::sdl::names::LeaseId {
            owner: lease.spec.lease_id.owner.clone(),
            dseq,
            gseq: 1,
            oseq: lease.spec.lease_id.oseq,
            provider: cheaper.clone(),
        });
        let cluster = e2e::Cluster::shared().await?;
        until(
            "the Deployment on the new image",
            Duration::from_secs(60),
            || async {
                let d = Api::<Deployment>::namespaced(cluster.client(), &namespace)
                    .get("openspeedtest")
                    .await?;
                let image = d
                    .spec
                    .template
                    .spec
                    .and_then(|p| p.containers.first().and_then(|c| c.image.clone()));
                Ok(if image.as_deref() == Some(new_image) {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!("image {image:?}"))
                })
            },
        )
        .await?;

        // Delete: the finalizer closes the deployment; the escrow's remainder comes back.
        let before = m.tenant.balance(m.tenant.address(), "uact").await?;
        m.manifests()
            .delete("speed", &DeleteParams::default())
            .await?;
        until("the Manifest gone", Duration::from_secs(60), || async {
            Ok(match m.manifests().get_opt("speed").await? {
                None => Poll::Ready(()),
                Some(mf) => Poll::Pending(format!("{:?}", mf.status.and_then(|s| s.phase))),
            })
        })
        .await?;
        let closed = chain_deployment(&m, dseq)
            .await?
            .unwrap()
            .deployment
            .unwrap();
        assert_eq!(closed.state, dv1::deployment::State::Closed as i32);
        let after = m.tenant.balance(m.tenant.address(), "uact").await?;
        assert!(after > before, "refund: {before} -> {after}");
        Ok(())
    })
    .await
}

fn running_version(m: &Manifest) -> Option<String> {
    m.status.as_ref().and_then(|s| s.version.clone())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_equal_prices_the_earlier_bid_wins() -> anyhow::Result<()> {
    let mut m = Marketplace::start("tc-tie", [1.0, 1.0], &[]).await?;
    // The later bidder is the lower address, so a tie broken by address alone would pick it.
    let (early, late) = if m.sites[0].address < m.sites[1].address {
        (1, 0)
    } else {
        (0, 1)
    };
    m.sites[late].process.kill();
    let dseq = unique_dseq(41);
    let early_address = m.sites[early].address.clone();
    let result = async {
        m.manifests()
            .create(
                &PostParams::default(),
                // A long wait (20 s of 200 ms blocks): the late provider restarts, catches up and
                // bids within it even when CI runs the other tests of this file beside it.
                &manifest("tie", "openspeedtest.yaml", dseq, 100)?,
            )
            .await?;
        let owner = m.tenant.address().to_owned();
        e2e::market::wait_chain_bid(&m.tenant, &owner, dseq, &early_address).await?;
        Ok::<_, anyhow::Error>(())
    }
    .await;
    m.sites[late].process.restart()?;
    result?;
    let late_address = m.sites[late].address.clone();
    let owner = m.tenant.address().to_owned();
    m.with_logs(async {
        e2e::market::wait_chain_bid(&m.tenant, &owner, dseq, &late_address).await?;
        let running = wait_phase(&m, "tie", ManifestPhase::Running, |_| true).await?;
        let st = running.status.unwrap();
        // `ensure!` rather than `assert!`, so that a failure prints the processes' logs.
        anyhow::ensure!(
            st.groups[0].bids_seen == 2,
            "both bid before the wait ended: {st:?}"
        );
        anyhow::ensure!(
            st.groups[0].provider.as_deref() == Some(early_address.as_str()),
            "the earlier bid won: {st:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_provider_is_replaced_by_the_other_and_the_status_says_so() -> anyhow::Result<()>
{
    let mut m =
        Marketplace::start("tc-failover", [1.0, 2.0], &["--failure-threshold", "15s"]).await?;
    let dseq = unique_dseq(42);
    let first = m.sites[0].address.clone();
    let second = m.sites[1].address.clone();
    let step1 = m
        .with_logs(async {
            m.manifests()
                .create(
                    &PostParams::default(),
                    &manifest("move", "openspeedtest.yaml", dseq, 3)?,
                )
                .await?;
            let running = wait_phase(&m, "move", ManifestPhase::Running, |_| true).await?;
            let st = running.status.unwrap();
            assert_eq!(st.groups[0].provider.as_deref(), Some(first.as_str()));
            Ok(())
        })
        .await;
    step1?;
    m.sites[0].process.kill();
    m.with_logs(async {
        let moved = wait_phase(&m, "move", ManifestPhase::Running, |mf| {
            let st = mf.status.clone().unwrap_or_default();
            st.groups[0].provider.as_deref() == Some(second.as_str())
        })
        .await?;
        let st = moved.status.unwrap();
        let group = &st.groups[0];
        assert_eq!(
            group.dropped_providers,
            std::slice::from_ref(&first),
            "{st:?}"
        );
        assert_eq!(group.oseq, Some(2), "a new order: {st:?}");
        assert_eq!(group.running_version, st.version);
        assert_eq!(st.ready.as_deref(), Some("1/1"));
        // The chain agrees: the first lease closed, the second active.
        let leases = m
            .tenant
            .leases(
                chain_client::akash::market::v1::LeaseFilters {
                    owner: m.tenant.address().to_owned(),
                    dseq,
                    ..Default::default()
                },
                PageRequest::first(10),
            )
            .await?;
        let states: Vec<(String, i32)> = leases
            .items
            .iter()
            .filter_map(|l| l.lease.as_ref())
            .map(|l| (l.id.clone().unwrap().provider, l.state))
            .collect();
        assert!(
            states.contains(&(
                first.clone(),
                chain_client::akash::market::v1::lease::State::Closed as i32
            )),
            "{states:?}"
        );
        assert!(
            states.contains(&(
                second.clone(),
                chain_client::akash::market::v1::lease::State::Active as i32
            )),
            "{states:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_manifest_is_rejected_in_status_with_the_field_path_and_nothing_is_posted()
-> anyhow::Result<()> {
    let m = Marketplace::start("tc-invalid", [1.0, 1.0], &[]).await?;
    m.with_logs(async {
        let mut bad = manifest("bad", "openspeedtest.yaml", unique_dseq(43), 3)?;
        for placements in bad.spec.sdl.deployment.values_mut() {
            for placement in placements.values_mut() {
                placement.profile = "no-such-profile".into();
            }
        }
        m.manifests().create(&PostParams::default(), &bad).await?;
        let rejected = wait_phase(&m, "bad", ManifestPhase::Invalid, |_| true).await?;
        let st = rejected.status.unwrap();
        let valid = st.conditions.iter().find(|c| c.type_ == "Valid").unwrap();
        assert_eq!(valid.status, "False");
        assert!(
            valid.message.contains("spec.sdl.deployment.openspeedtest."),
            "{}",
            valid.message
        );
        assert!(
            valid.message.contains("no-such-profile"),
            "{}",
            valid.message
        );
        assert_eq!(st.dseq, None);
        // Nothing on chain: the tenant has no deployment at all on this devnet.
        let deployments = m
            .tenant
            .deployments(
                dv4::DeploymentFilters {
                    owner: m.tenant.address().to_owned(),
                    ..Default::default()
                },
                PageRequest::first(10),
            )
            .await?;
        assert!(deployments.items.is_empty(), "{:?}", deployments.items);
        // Deleting it needs no chain work.
        m.manifests()
            .delete("bad", &DeleteParams::default())
            .await?;
        until(
            "the invalid Manifest gone",
            Duration::from_secs(30),
            || async {
                Ok(match m.manifests().get_opt("bad").await? {
                    None => Poll::Ready(()),
                    Some(_) => Poll::Pending("still there".into()),
                })
            },
        )
        .await?;
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_while_bids_are_collected_resumes_without_posting_twice()
-> anyhow::Result<()> {
    let mut m = Marketplace::start("tc-restart", [1.0, 2.0], &[]).await?;
    let dseq = unique_dseq(45);
    let first = m
        .with_logs(async {
            m.manifests()
                .create(
                    &PostParams::default(),
                    &manifest("again", "openspeedtest.yaml", dseq, 25)?,
                )
                .await?;
            wait_phase(&m, "again", ManifestPhase::Bidding, |mf| {
                mf.status.as_ref().and_then(|s| s.dseq) == Some(dseq)
            })
            .await?;
            Ok(())
        })
        .await;
    first?;
    // SIGKILL (the old process is dropped) and a new controller in its place.
    let cluster = e2e::Cluster::shared().await?;
    m.controller = e2e::marketplace::TenantController::start(
        cluster.kubeconfig(),
        &m.devnet,
        m.tenant_ns.name(),
        &[],
    )?;
    m.with_logs(async {
        let running = wait_phase(&m, "again", ManifestPhase::Running, |_| true).await?;
        let st = running.status.unwrap();
        assert_eq!(st.dseq, Some(dseq));
        assert_eq!(
            st.groups[0].provider.as_deref(),
            Some(m.sites[0].address.as_str())
        );
        let deployments = m
            .tenant
            .deployments(
                dv4::DeploymentFilters {
                    owner: m.tenant.address().to_owned(),
                    ..Default::default()
                },
                PageRequest::first(10),
            )
            .await?;
        assert_eq!(deployments.items.len(), 1, "one deployment on chain");
        let leases = m
            .tenant
            .leases(
                chain_client::akash::market::v1::LeaseFilters {
                    owner: m.tenant.address().to_owned(),
                    dseq,
                    ..Default::default()
                },
                PageRequest::first(10),
            )
            .await?;
        assert_eq!(leases.items.len(), 1, "one lease: {:?}", leases.items);
        Ok(())
    })
    .await
}
