//! Shared steps of the provider scenarios: a `Provider` resource, a provider process, tenants
//! posting deployments and leasing bids, and reading back `Bid`/`Lease` resources and chain bids.

use std::time::Duration;

use anyhow::Context;
use chain_client::Chain;
use chain_client::akash::market::v1 as mv1;
use chain_client::akash::market::v1beta5::{MsgCreateLease, bid};
use chain_client::chain::{BidFilters, PageRequest};
use chain_client::node::NodeChain;
use crds::resources::{
    Attribute, Bid, BidPhase, Lease, PricingStrategy, Provider, ProviderSpec, ScalePricing,
};
use kube::api::{DeleteParams, PostParams};
use kube::{Api, ResourceExt};

use crate::scenario::Scenario;
use crate::wait::{Poll, until};
use chain_client::cert::CertificateRole;
use operator::gateway::client::TenantIdentity;

/// Scale rates of the scenarios: 1 uact per millicore, MiB of memory and MiB of storage (ephemeral,
/// `beta2` and `ram`).
pub fn scale_rates() -> ScalePricing {
    ScalePricing {
        cpu: 1.0,
        memory: 1.0,
        storage: [("ephemeral", 1.0), ("beta2", 1.0), ("ram", 1.0)]
            .map(|(class, rate)| (class.to_owned(), rate))
            .into(),
        ..Default::default()
    }
}

/// openspeedtest.yaml: 1 CPU, 512 MiB memory, 512 MiB storage, one global port 80, 10000 uact.
/// At [`scale_rates`] (1 per millicore and per MiB): 1000 + 512 + 512.
pub const OPENSPEEDTEST_PRICE: &str = "2024";

/// A cluster-scoped `Provider` resource, deleted on drop.
pub struct ProviderResource {
    pub name: String,
    client: kube::Client,
}

impl ProviderResource {
    pub async fn create(
        client: &kube::Client,
        name: &str,
        attributes: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let host_uri = format!("https://{name}.provider.test:8443");
        Self::create_with(client, name, &host_uri, attributes, scale_rates()).await
    }

    /// A `Provider` at `host_uri` with these scale rates.
    pub async fn create_with(
        client: &kube::Client,
        name: &str,
        host_uri: &str,
        attributes: &[(&str, &str)],
        rates: ScalePricing,
    ) -> anyhow::Result<Self> {
        let provider = Provider::new(
            name,
            ProviderSpec {
                host_uri: host_uri.to_owned(),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| Attribute {
                        key: (*k).into(),
                        value: (*v).into(),
                    })
                    .collect(),
                info: None,
                pricing: Some(PricingStrategy::Scale(rates)),
            },
        );
        Api::<Provider>::all(client.clone())
            .create(&PostParams::default(), &provider)
            .await
            .context("creating the Provider resource")?;
        Ok(Self {
            name: name.to_owned(),
            client: client.clone(),
        })
    }

    /// Waits until the provider reports itself registered on chain.
    pub async fn wait_registered(&self) -> anyhow::Result<Provider> {
        let api = Api::<Provider>::all(self.client.clone());
        until(
            "the provider registered on chain",
            Duration::from_secs(90),
            || async {
                let p = api.get(&self.name).await?;
                let status = p.status.clone().unwrap_or_default();
                Ok(if status.registered {
                    Poll::Ready(p)
                } else {
                    Poll::Pending(format!("{:?}", status.conditions))
                })
            },
        )
        .await
    }
}

impl Drop for ProviderResource {
    fn drop(&mut self) {
        let api = Api::<Provider>::all(self.client.clone());
        let name = self.name.clone();
        // Best effort, from whatever runtime is (or is not) around.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(api.delete(&name, &DeleteParams::default()));
            }
        })
        .join();
    }
}

/// The name of the provider's objects for order (owner, dseq, 1, 1).
pub fn object_name(owner: &str, dseq: u64) -> String {
    format!("{owner}-{dseq}-1-1")
}

/// Waits until the `Bid` resource of the order is in `phase`.
pub async fn wait_bid_phase(api: &Api<Bid>, name: &str, phase: BidPhase) -> anyhow::Result<Bid> {
    until(
        &format!("Bid {name} in phase {phase:?}"),
        Duration::from_secs(60),
        || async {
            Ok(match api.get_opt(name).await? {
                Some(b) if b.status.as_ref().and_then(|s| s.phase) == Some(phase) => Poll::Ready(b),
                Some(b) => Poll::Pending(format!("phase {:?}", b.status.and_then(|s| s.phase))),
                None => Poll::Pending("no Bid resource yet".into()),
            })
        },
    )
    .await
}

/// Waits until the `Bid` resource is gone (its reservation released).
pub async fn wait_bid_gone(api: &Api<Bid>, name: &str) -> anyhow::Result<()> {
    until(
        &format!("Bid {name} released"),
        Duration::from_secs(60),
        || async {
            Ok(match api.get_opt(name).await? {
                None => Poll::Ready(()),
                Some(b) => Poll::Pending(format!(
                    "still there, phase {:?}",
                    b.status.and_then(|s| s.phase)
                )),
            })
        },
    )
    .await
}

/// Waits until the `Lease` resource exists.
pub async fn wait_lease(api: &Api<Lease>, name: &str) -> anyhow::Result<Lease> {
    until(
        &format!("Lease {name}"),
        Duration::from_secs(60),
        || async {
            Ok(match api.get_opt(name).await? {
                Some(l) => Poll::Ready(l),
                None => Poll::Pending("no Lease resource yet".into()),
            })
        },
    )
    .await
}

/// Waits until the Lease resource `name` is Active.
pub async fn wait_lease_active(api: &Api<Lease>, name: &str) -> anyhow::Result<Lease> {
    until(
        &format!("Lease {name} Active"),
        Duration::from_secs(120),
        || async {
            let lease = api.get(name).await?;
            let phase = lease.status.as_ref().and_then(|s| s.phase);
            Ok(if phase == Some(crds::resources::LeasePhase::Active) {
                Poll::Ready(lease)
            } else {
                Poll::Pending(format!("phase {phase:?}"))
            })
        },
    )
    .await
}

/// Every bid of `provider` on deployment (owner, dseq), as the chain holds them.
pub async fn chain_bids(
    chain: &NodeChain,
    owner: &str,
    dseq: u64,
    provider: &str,
) -> anyhow::Result<Vec<chain_client::akash::market::v1beta5::Bid>> {
    let page = chain
        .bids(
            BidFilters {
                owner: owner.into(),
                dseq,
                provider: provider.into(),
                ..Default::default()
            },
            PageRequest::first(100),
        )
        .await?;
    Ok(page.items.into_iter().filter_map(|r| r.bid).collect())
}

/// Waits until the chain holds `provider`'s open bid on (owner, dseq, 1, 1).
pub async fn wait_chain_bid(
    chain: &NodeChain,
    owner: &str,
    dseq: u64,
    provider: &str,
) -> anyhow::Result<chain_client::akash::market::v1beta5::Bid> {
    until(
        &format!("{provider}'s bid on {owner}/{dseq}"),
        Duration::from_secs(60),
        || async {
            let bids = chain_bids(chain, owner, dseq, provider).await?;
            Ok(
                match bids
                    .into_iter()
                    .find(|b| b.state == bid::State::Open as i32)
                {
                    Some(b) => Poll::Ready(b),
                    None => Poll::Pending("no open bid".into()),
                },
            )
        },
    )
    .await
}

/// The tenant leases `provider`'s bid on (its own deployment dseq, 1, 1).
pub async fn lease(tenant: &NodeChain, dseq: u64, provider: &str) -> anyhow::Result<()> {
    let msg = MsgCreateLease {
        bid_id: Some(mv1::BidId {
            owner: tenant.address().to_owned(),
            dseq,
            gseq: 1,
            oseq: 1,
            provider: provider.to_owned(),
            bseq: 0,
        }),
    };
    tenant
        .broadcast(vec![chain_client::to_any(&msg)])
        .await
        .context("MsgCreateLease")?;
    Ok(())
}

/// The names of the `Bid` resources in the namespace.
pub async fn bid_names(api: &Api<Bid>) -> anyhow::Result<Vec<String>> {
    Ok(api
        .list(&Default::default())
        .await?
        .items
        .iter()
        .map(|b| b.name_any())
        .collect())
}

/// The value of a counter line (`name{labels} value`) in a metrics text, 0 when absent.
pub fn counter(metrics: &str, line_prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Publishes a fresh client certificate for `who` and returns it.
pub async fn certificate(who: &chain_client::node::NodeChain) -> anyhow::Result<TenantIdentity> {
    let owner = who.address().to_owned();
    let pair = chain_client::cert::generate(
        &owner,
        &CertificateRole::Client,
        Duration::from_secs(86_400),
    )?;
    who.broadcast(vec![chain_client::to_any(&pair.create_msg(&owner))])
        .await?;
    Ok(TenantIdentity {
        cert_pem: pair.cert_pem.clone(),
        key_pem: pair.key_pem().to_owned(),
    })
}

/// A deployment sequence no other test of this run uses: lease namespaces are named after the
/// lease id, cluster-wide, and every scenario's tenant and provider keys are the same.
pub fn unique_dseq(n: u64) -> u64 {
    u64::from(std::process::id()) * 100 + n
}

/// Deploys openspeedtest as `dseq` and leases the provider's bid; returns the lease namespace.
pub async fn leased(s: &Scenario, dseq: u64) -> anyhow::Result<String> {
    let sdl = crate::tenant::testdata_sdl("openspeedtest.yaml")?;
    leased_sdl(s, dseq, &sdl).await
}

/// Deploys `sdl` (one group) as `dseq` and leases the provider's bid; returns the lease namespace.
pub async fn leased_sdl(s: &Scenario, dseq: u64, sdl: &crds::sdl::Sdl) -> anyhow::Result<String> {
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    crate::tenant::create_deployment(&s.tenant, sdl, dseq).await?;
    wait_bid_phase(&s.bids(), &object_name(&owner, dseq), BidPhase::Open).await?;
    lease(&s.tenant, dseq, &me).await?;
    wait_lease(&s.leases(), &object_name(&owner, dseq)).await?;
    Ok(crds::sdl::names::lease_namespace(
        &crds::sdl::names::LeaseId {
            owner,
            dseq,
            gseq: 1,
            oseq: 1,
            provider: me,
        },
    ))
}

/// The tenant closes its deployment `dseq` (`MsgCloseDeployment`).
pub async fn close_deployment(tenant: &NodeChain, dseq: u64) -> anyhow::Result<()> {
    let msg = chain_client::akash::deployment::v1beta4::MsgCloseDeployment {
        id: Some(chain_client::akash::deployment::v1::DeploymentId {
            owner: tenant.address().to_owned(),
            dseq,
        }),
    };
    tenant
        .broadcast(vec![chain_client::to_any(&msg)])
        .await
        .context("MsgCloseDeployment")?;
    Ok(())
}

/// Waits until the lease namespace `namespace` is gone.
pub async fn wait_namespace_gone(client: &kube::Client, namespace: &str) -> anyhow::Result<()> {
    let api = Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone());
    until(
        "the lease namespace removed",
        Duration::from_secs(120),
        || async {
            Ok(match api.get_opt(namespace).await? {
                None => Poll::Ready(()),
                Some(ns) => Poll::Pending(format!("{:?}", ns.status.and_then(|s| s.phase))),
            })
        },
    )
    .await
}

/// Sends the SDL's manifest to the provider's gateway as the tenant.
pub async fn send_manifest(s: &Scenario, dseq: u64, sdl: &crds::sdl::Sdl) -> anyhow::Result<()> {
    let identity = certificate(&s.tenant).await?;
    let http =
        operator::gateway::client::rest_client(&s.tenant, &s.provider_address(), &identity).await?;
    let url = format!(
        "https://{}/deployment/{dseq}/manifest",
        s.provider.gateway_rest_addr
    );
    let response = http.put(&url).body(sdl.manifest_json()).send().await?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{status}: {}", response.text().await?);
    Ok(())
}
