//! A tenant or a stranger trying to step outside its lease: another tenant's hostname
//! ([`hostnames`]), more than the lease holds ([`limits`]), fees paid from the provider's account
//! ([`fees`]). Each refusal writes nothing.

mod fees;
mod hostnames;
mod limits;

use std::time::Duration;

use chain_client::Chain;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::node::NodeChain;
use crds::resources::{BidPhase, Lease};
use crds::sdl::version::manifest_version;
use crds::sdl::{ManifestGroup, Sdl};
use e2e::market::{self, object_name, wait_bid_phase, wait_lease};
use e2e::scenario::Scenario;
use e2e::tenant;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;

const WAIT: Duration = Duration::from_secs(120);

/// `who` deploys `sdl` as `dseq` and leases this provider's bid; the Lease resource's name.
async fn deploy(s: &Scenario, who: &NodeChain, sdl: &Sdl, dseq: u64) -> anyhow::Result<String> {
    tenant::create_deployment(who, sdl, dseq).await?;
    let name = object_name(who.address(), dseq);
    wait_bid_phase(&s.bids(), &name, BidPhase::Open).await?;
    market::lease(who, dseq, &s.provider_address()).await?;
    wait_lease(&s.leases(), &name).await?;
    Ok(name)
}

/// Sets deployment `dseq`'s version on chain to `groups`' (the tenant chooses it: the chain
/// never sees a manifest), so the gateway judges `groups` on what they ask, not on the hash.
async fn set_version(who: &NodeChain, dseq: u64, groups: &[ManifestGroup]) -> anyhow::Result<()> {
    let msg = dv4::MsgUpdateDeployment {
        id: Some(dv1::DeploymentId {
            owner: who.address().to_owned(),
            dseq,
        }),
        hash: manifest_version(groups).to_vec(),
    };
    who.broadcast(vec![chain_client::to_any(&msg)]).await?;
    Ok(())
}

/// PUTs a manifest; (status, body).
async fn put(
    http: &reqwest::Client,
    s: &Scenario,
    dseq: u64,
    body: String,
) -> anyhow::Result<(u16, String)> {
    let url = format!(
        "https://{}/deployment/{dseq}/manifest",
        s.provider.gateway_rest_addr
    );
    let response = http.put(url).body(body).send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

fn lease_namespace(lease: &Lease) -> String {
    lease.spec.lease_id.namespace()
}

/// Nothing of the refused manifests was written: the lease has no manifest, its namespace
/// does not exist.
async fn nothing_written(s: &Scenario, lease_name: &str) -> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    let lease = s.leases().get(lease_name).await?;
    assert!(
        lease.spec.manifest.is_none(),
        "{lease_name}: a manifest was recorded"
    );
    assert!(
        Api::<Namespace>::all(cluster.client())
            .get_opt(&lease_namespace(&lease))
            .await?
            .is_none(),
        "{lease_name}: a namespace was created"
    );
    Ok(())
}
