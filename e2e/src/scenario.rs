//! The provider scenarios' common set-up: the shared control plane with the CRDs, a namespace, a
//! devnet, a `Provider` resource, the provider process, and chain clients for the provider's key
//! and a tenant's.

use chain_client::Chain;
use crds::resources::{Bid, Lease};
use kube::Api;

use crate::devnet::{Devnet, TEST_MNEMONICS};
use crate::market::ProviderResource;
use crate::provider::{ProviderOptions, ProviderProcess};
use crate::tenant;

/// The devnet test account the provider signs with.
pub const PROVIDER_KEY: usize = 1;
/// The main tenant's account.
pub const TENANT_KEY: usize = 2;
/// A second provider's account.
pub const COMPETITOR_KEY: usize = 3;
/// A tenant no allow list names.
pub const STRANGER_KEY: usize = 0;

pub struct Scenario {
    pub devnet: Devnet,
    pub provider: ProviderProcess,
    /// How `provider` was started, for a second replica.
    pub options: ProviderOptions,
    pub _resource: ProviderResource,
    pub ns: crate::TestNamespace,
    pub chain_of_provider: chain_client::node::NodeChain,
    pub tenant: chain_client::node::NodeChain,
    pub devnet_ref: DevnetUrls,
}

#[derive(Clone)]
pub struct DevnetUrls {
    pub chain_id: String,
    pub rpc_url: String,
    pub grpc_url: String,
}

pub async fn scenario(
    name: &str,
    attributes: &[(&str, &str)],
    extra_args: Vec<String>,
) -> anyhow::Result<Scenario> {
    crate::init_tracing();
    let cluster = crate::Cluster::shared().await?;
    crate::crds::install(&cluster).await?;
    let ns = cluster.namespace(name).await?;
    let devnet = Devnet::start(&format!("e2e-{name}"), "200ms")?;
    // The host URI on chain is the gateway's real address: tenants' tools can reach it.
    let rest_port = crate::provider::free_port()?;
    let resource = ProviderResource::create_with(
        &cluster.client(),
        ns.name(),
        &format!("https://127.0.0.1:{rest_port}"),
        attributes,
        crate::market::scale_rates(),
    )
    .await?;
    let options = ProviderOptions {
        namespace: ns.name().to_owned(),
        provider_resource: resource.name.clone(),
        mnemonic: TEST_MNEMONICS[PROVIDER_KEY].to_owned(),
        extra_args,
    };
    let provider = ProviderProcess::start_with_gateway(
        cluster.kubeconfig(),
        &devnet,
        options.clone(),
        Some(rest_port),
    )?;
    resource.wait_registered().await?;
    Ok(Scenario {
        chain_of_provider: tenant::client(&devnet, TEST_MNEMONICS[PROVIDER_KEY])?,
        tenant: tenant::client(&devnet, TEST_MNEMONICS[TENANT_KEY])?,
        devnet_ref: DevnetUrls {
            chain_id: devnet.chain_id.clone(),
            rpc_url: devnet.rpc_url.clone(),
            grpc_url: devnet.grpc_url.clone(),
        },
        devnet,
        provider,
        options,
        _resource: resource,
        ns,
    })
}

impl Scenario {
    pub fn provider_address(&self) -> String {
        self.chain_of_provider.address().to_owned()
    }
    pub fn bids(&self) -> Api<Bid> {
        self.ns.api()
    }
    pub fn leases(&self) -> Api<Lease> {
        self.ns.api()
    }
}
