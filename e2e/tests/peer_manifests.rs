//! Peer-to-peer manifest distribution end to end: the devnet, the real control plane, real
//! providers and the tenant controller. With `distribution: SeedOne` the tenant sends the
//! manifest to one provider and the others fetch it from their peers, verify it against the
//! hash on chain and run their groups, and an update sent to the one reaches the others the
//! same way; a provider of another deployment and the tenant itself
//! are refused the manifest at a provider's gateway.

use std::time::Duration;

use chain_client::Chain;
use crds::resources::{Distribution, Lease, LeasePhase, Manifest, ManifestPhase};
use e2e::market::{certificate, unique_dseq};
use e2e::marketplace::{Marketplace, SiteSpec, manifest_of};
use e2e::wait::{Poll, until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use operator::gateway::client::rest_client;

/// Peers looked at often, for a short test.
const FAST_FETCH: &[&str] = &["--peer-fetch-interval", "300ms"];

/// The image of every service after the update (kwok runs no containers: nothing is pulled).
const NEW_IMAGE: &str = "nginx:1.28";

/// The site whose service pulls its image with registry credentials, and their password.
const PRIVATE_SITE: usize = 1;
const PASSWORD: &str = "s3cret-pull-token-5e1f";

/// One group per site, pinned by the placement attribute `site: pN`; tiny services.
fn pinned_sdl(sites: &[usize]) -> String {
    let mut services = String::new();
    let mut compute = String::new();
    let mut placement = String::new();
    let mut deployment = String::new();
    for i in sites {
        services.push_str(&format!(
            "  web{i}:\n    image: nginx:1.27\n    env:\n      - SITE=p{i}\n    expose:\n      - port: 80\n        as: 80\n        to:\n          - global: true\n"
        ));
        if *i == PRIVATE_SITE {
            services.push_str(&format!(
                "    credentials:\n      host: registry.example.com\n      username: robot\n      password: {PASSWORD}\n"
            ));
        }
        compute.push_str(&format!(
            "    web{i}:\n      resources:\n        cpu:\n          units: 0.1\n        memory:\n          size: 64Mi\n        storage:\n          size: 64Mi\n"
        ));
        placement.push_str(&format!(
            "    dc{i}:\n      attributes:\n        site: p{i}\n      pricing:\n        web{i}:\n          denom: uact\n          amount: 10000\n"
        ));
        deployment.push_str(&format!(
            "  web{i}:\n    dc{i}:\n      profile: web{i}\n      count: 1\n"
        ));
    }
    format!(
        "version: \"2.0\"\nservices:\n{services}profiles:\n  compute:\n{compute}  placement:\n{placement}deployment:\n{deployment}"
    )
}

async fn wait_running(m: &Marketplace, name: &str) -> anyhow::Result<Manifest> {
    until(
        &format!("Manifest {name} Running on every version"),
        Duration::from_secs(150),
        || async {
            let manifest = m.manifests().get(name).await?;
            let st = manifest.status.clone().unwrap_or_default();
            let current =
                st.version.is_some() && st.groups.iter().all(|g| g.running_version == st.version);
            Ok(if st.phase == Some(ManifestPhase::Running) && current {
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

async fn lease_of(m: &Marketplace, site: usize, dseq: u64) -> anyhow::Result<Option<Lease>> {
    Ok(m.sites[site]
        .ns
        .api::<Lease>()
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .find(|l| l.spec.lease_id.dseq == dseq))
}

/// Lines of `logs` with all of `words`.
/// The whole manifest without registry credentials: what a `Lease` resource may show.
fn public_manifest(sdl: &crds::sdl::Sdl) -> String {
    let mut groups = sdl.manifest().to_vec();
    for service in groups.iter_mut().flat_map(|g| g.services.iter_mut()) {
        service.credentials = None;
    }
    crds::sdl::version::manifest_json(&groups)
}

/// No provider's `Lease` shows the password; each keeps the whole manifest, credentials
/// included, in a Secret of its namespace that the Lease owns and names, whose hash is the
/// version on chain; the private site's lease namespace has the pull Secret kubelet uses.
async fn credentials_kept_apart(m: &Marketplace, site: usize, lease: &Lease) -> anyhow::Result<()> {
    let shown = serde_json::to_string(lease)?;
    assert!(
        !shown.contains(PASSWORD),
        "provider {site}'s Lease shows the password"
    );
    let held = lease.spec.manifest.as_ref().expect("a manifest");
    let name = held
        .secret_name
        .clone()
        .expect("the Lease names its Secret");
    let secret = m.sites[site].ns.api::<Secret>().get(&name).await?;
    let owner = &secret.metadata.owner_references.clone().unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), Some(owner.uid.as_str())),
        ("Lease", lease.metadata.uid.as_deref())
    );
    let whole = operator::lease_secret::whole_manifest(&secret)?;
    assert!(whole.contains(PASSWORD));
    let verified = operator::gateway::peer::verify_version(whole.as_bytes(), &held.version);
    assert_eq!(verified.as_deref(), Ok(held.version.as_str()));
    if site == PRIVATE_SITE {
        let cluster = e2e::Cluster::shared().await?;
        let id = &lease.spec.lease_id;
        let namespace = crds::sdl::names::lease_namespace(&crds::sdl::names::LeaseId {
            owner: id.owner.clone(),
            dseq: id.dseq,
            gseq: id.gseq,
            oseq: id.oseq,
            provider: id.provider.clone(),
        });
        let pull = until(
            "the lease's pull Secret",
            Duration::from_secs(60),
            || async {
                let list = Api::<Secret>::namespaced(cluster.client(), &namespace)
                    .list(&Default::default())
                    .await?;
                Ok(
                    match list
                        .items
                        .into_iter()
                        .find(|s| s.type_.as_deref() == Some("kubernetes.io/dockerconfigjson"))
                    {
                        Some(s) => Poll::Ready(s),
                        None => Poll::Pending("none yet".into()),
                    },
                )
            },
        )
        .await?;
        let config = &pull.data.unwrap_or_default()[".dockerconfigjson"];
        assert!(String::from_utf8_lossy(&config.0).contains("registry.example.com"));
    }
    Ok(())
}

fn lines_with(logs: &str, words: &[&str]) -> usize {
    logs.lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_seed_one_the_tenant_sends_to_one_provider_and_two_fetch_it_and_its_update_from_peers()
-> anyhow::Result<()> {
    let specs: Vec<SiteSpec> = (0..3)
        .map(|i| {
            SiteSpec::nth(i, 1.0)
                .with_attribute("site", &format!("p{i}"))
                .with_args(FAST_FETCH)
        })
        .collect();
    let m = Marketplace::start_sites("pm-three", &specs, &[]).await?;
    m.with_logs(async {
        let dseq = unique_dseq(50);
        let sdl = crds::sdl::Sdl::parse(&pinned_sdl(&[0, 1, 2]))?;
        let version = sdl.manifest_version_hex();
        m.manifests()
            .create(
                &PostParams::default(),
                &manifest_of("three", &sdl, dseq, 3, Distribution::SeedOne),
            )
            .await?;
        let running = wait_running(&m, "three").await?;
        let st = running.status.unwrap();
        assert_eq!(st.version.as_deref(), Some(version.as_str()));
        assert_eq!(st.groups.len(), 3, "{st:?}");
        for g in &st.groups {
            // Group dcN went to provider N, the only one with `site: pN`.
            let site = m
                .site_index(g.provider.as_deref().unwrap_or_default())
                .expect("a provider of the marketplace");
            assert_eq!(g.name, format!("dc{site}"), "{st:?}");
            assert_eq!(g.running_version.as_deref(), Some(version.as_str()));
        }

        // Every provider runs its group.
        for site in 0..3 {
            let lease = until(
                &format!("provider {site}'s Lease Active"),
                Duration::from_secs(60),
                || async {
                    Ok(match lease_of(&m, site, dseq).await? {
                        Some(l)
                            if l.status.as_ref().and_then(|s| s.phase)
                                == Some(LeasePhase::Active) =>
                        {
                            Poll::Ready(l)
                        }
                        other => Poll::Pending(format!(
                            "{:?}",
                            other.and_then(|l| l.status).and_then(|s| s.phase)
                        )),
                    })
                },
            )
            .await?;
            let held = lease.spec.manifest.clone().expect("a manifest");
            assert_eq!(held.version, version);
            assert_eq!(held.group.name, format!("dc{site}"));
            assert_eq!(
                lease.spec.deployment_manifest.as_deref(),
                Some(public_manifest(&sdl).as_str()),
                "the whole manifest, as the tenant sent it, without its credentials"
            );
            credentials_kept_apart(&m, site, &lease).await?;
        }

        // The tenant sent it to one provider (the lowest address; perhaps twice, when the
        // controller's next round read its status from a cache that lagged behind); the two
        // others fetched it from a peer, which served it.
        let seed = (0..3).min_by_key(|&i| m.sites[i].address.clone()).unwrap();
        for (i, site) in m.sites.iter().enumerate() {
            let logs = site.process.logs();
            let from_tenant = lines_with(&logs, &["manifest accepted", "the tenant"]);
            let fetched = lines_with(&logs, &["manifest fetched from peer"]);
            if i == seed {
                assert!(from_tenant >= 1 && fetched == 0, "the seed, provider {i}");
            } else {
                assert_eq!((from_tenant, fetched), (0, 1), "provider {i}");
            }
        }
        let served: usize = m
            .sites
            .iter()
            .map(|s| lines_with(&s.process.logs(), &["manifest served to peer"]))
            .sum();
        assert!(served >= 2, "peers served the two fetchers: {served}");
        let tenant_logs = m.controller.logs();
        let seed_address = m.sites[seed].address.as_str();
        assert!(lines_with(&tenant_logs, &["ManifestSent", seed_address]) >= 1);
        assert_eq!(
            lines_with(&tenant_logs, &["ManifestSent"]),
            lines_with(&tenant_logs, &["ManifestSent", seed_address]),
            "the tenant sent to the seed only"
        );

        // An update (a new image for every service): the tenant sends the new version to the
        // seed again, and the two others, still on the old one, fetch it from a peer.
        let mut spec = running.spec.clone();
        for service in spec.sdl.services.values_mut() {
            service.image = NEW_IMAGE.into();
        }
        m.manifests()
            .patch(
                "three",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await?;
        let updated = until("the update everywhere", Duration::from_secs(90), || async {
            let st = m.manifests().get("three").await?.status.unwrap_or_default();
            let new = st.version.is_some() && st.version.as_deref() != Some(version.as_str());
            Ok(
                if new && st.groups.iter().all(|g| g.running_version == st.version) {
                    Poll::Ready(st.version.unwrap())
                } else {
                    Poll::Pending(format!("{:?} {:?}", st.version, st.groups))
                },
            )
        })
        .await?;
        let cluster = e2e::Cluster::shared().await?;
        for site in 0..3 {
            let lease = lease_of(&m, site, dseq).await?.expect("the lease");
            assert_eq!(
                lease.spec.manifest.as_ref().map(|mf| mf.version.clone()),
                Some(updated.clone()),
                "provider {site}"
            );
            // The lease's namespace runs the new image.
            let id = &lease.spec.lease_id;
            let namespace = crds::sdl::names::lease_namespace(&crds::sdl::names::LeaseId {
                owner: id.owner.clone(),
                dseq: id.dseq,
                gseq: id.gseq,
                oseq: id.oseq,
                provider: id.provider.clone(),
            });
            let deployments = Api::<Deployment>::namespaced(cluster.client(), &namespace);
            let service = format!("web{site}");
            until(
                &format!("provider {site}'s Deployment on {NEW_IMAGE}"),
                Duration::from_secs(60),
                || async {
                    let image = deployments
                        .get_opt(&service)
                        .await?
                        .map(|d| d.spec)
                        .and_then(|s| s.template.spec)
                        .and_then(|p| p.containers.first().and_then(|c| c.image.clone()));
                    Ok(if image.as_deref() == Some(NEW_IMAGE) {
                        Poll::Ready(())
                    } else {
                        Poll::Pending(format!("image {image:?}"))
                    })
                },
            )
            .await?;
        }
        for (i, site) in m.sites.iter().enumerate() {
            let logs = site.process.logs();
            let fetched = lines_with(&logs, &["manifest fetched from peer"]);
            assert_eq!(fetched, if i == seed { 0 } else { 2 }, "provider {i}");
            assert!(!logs.contains(PASSWORD), "provider {i} logged the password");
        }
        // The new version has its own Secret; the old one's is gone.
        for site in 0..3 {
            let lease = lease_of(&m, site, dseq).await?.expect("the lease");
            credentials_kept_apart(&m, site, &lease).await?;
            let old =
                operator::lease_secret::secret_name(&kube::ResourceExt::name_any(&lease), &version);
            let secrets = m.sites[site].ns.api::<Secret>();
            until(
                &format!("provider {site}'s Secret of the old version gone"),
                Duration::from_secs(30),
                || async {
                    Ok(match secrets.get_opt(&old).await? {
                        None => Poll::Ready(()),
                        Some(_) => Poll::Pending(format!("{old} still there")),
                    })
                },
            )
            .await?;
        }
        let tenant_logs = m.controller.logs();
        assert_eq!(
            lines_with(&tenant_logs, &["ManifestSent"]),
            lines_with(&tenant_logs, &["ManifestSent", seed_address]),
            "the tenant sent the update to the seed only"
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_of_other_deployments_and_tenants_are_refused_the_manifest() -> anyhow::Result<()>
{
    let specs: Vec<SiteSpec> = (0..2)
        .map(|i| {
            SiteSpec::nth(i, 1.0)
                .with_attribute("site", &format!("p{i}"))
                .with_args(FAST_FETCH)
        })
        .collect();
    let m = Marketplace::start_sites("pm-refused", &specs, &[]).await?;
    m.with_logs(async {
        // Deployment A runs on provider 0 only; deployment B on provider 1 only.
        let (a, b) = (unique_dseq(51), unique_dseq(52));
        let sdl_a = crds::sdl::Sdl::parse(&pinned_sdl(&[0]))?;
        let sdl_b = crds::sdl::Sdl::parse(&pinned_sdl(&[1]))?;
        for (name, sdl, dseq) in [("a", &sdl_a, a), ("b", &sdl_b, b)] {
            m.manifests()
                .create(
                    &PostParams::default(),
                    &manifest_of(name, sdl, dseq, 3, Distribution::SendToAll),
                )
                .await?;
        }
        wait_running(&m, "a").await?;
        wait_running(&m, "b").await?;
        let client = e2e::Cluster::shared().await?.client();
        let owner = m.tenant.address().to_owned();
        let p0 = &m.sites[0];
        let url = |dseq: u64| {
            format!(
                "https://{}/deployment/{owner}/{dseq}/manifest",
                p0.process.gateway_rest_addr
            )
        };

        // Provider 1, with its own on-chain certificate, holds a lease of B, not of A.
        let p1_identity = m.sites[1].certificate(&client).await?;
        let as_p1 = rest_client(&m.tenant, &p0.address, &p1_identity).await?;
        // The tenant of A, with its own certificate.
        let tenant_identity = certificate(&m.tenant).await?;
        let as_tenant = rest_client(&m.tenant, &p0.address, &tenant_identity).await?;
        // Nobody: no client certificate.
        let anonymous = reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()?;
        for (who, http, dseq, want) in [
            ("provider of another deployment", &as_p1, a, 403),
            ("the deployment's own tenant", &as_tenant, a, 403),
            (
                "a provider asking for its own deployment here",
                &as_p1,
                b,
                404,
            ),
            ("no certificate", &anonymous, a, 401),
        ] {
            let response = http.get(url(dseq)).send().await?;
            let status = response.status().as_u16();
            let body = response.text().await?;
            assert_eq!(status, want, "{who}: {body}");
            assert!(
                !body.contains("nginx") && !body.contains("SITE="),
                "{who}: nothing of the manifest: {body}"
            );
        }
        // Nothing was served by either provider.
        for site in &m.sites {
            assert_eq!(
                lines_with(&site.process.logs(), &["manifest served to peer"]),
                0
            );
        }
        Ok(())
    })
    .await
}
