//! The devnet's queries: every gRPC query path it serves, as `abci_query` and its gRPC server
//! decode them (the request bytes are decoded and handed to the same service implementations).
//! An input is one byte choosing the path, then the request's protobuf bytes.

use std::sync::Arc;

use chain_client::akash::audit::v1 as aq;
use chain_client::akash::cert::v1 as cq;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dq};
use chain_client::akash::escrow::v1 as eq;
use chain_client::akash::market::{v1 as mv1, v1beta5 as mq};
use chain_client::akash::provider::v1beta4 as pq;
use cosmos_sdk_proto::cosmos::auth::v1beta1 as auth;
use cosmos_sdk_proto::cosmos::bank::v1beta1 as bank;
use cosmos_sdk_proto::cosmos::base::query::v1beta1::PageRequest;
use cosmos_sdk_proto::cosmos::tx::v1beta1 as tx;
use prost::Message;

use crate::engine::{Target, label};
use crate::mutate::{self, Rng};
use crate::world::{DSEQ, World};

/// The query paths the devnet serves (those of `devnet::abci_query`).
pub const PATHS: &[&str] = &[
    "/cosmos.auth.v1beta1.Query/Account",
    "/cosmos.auth.v1beta1.Query/AccountInfo",
    "/cosmos.bank.v1beta1.Query/Balance",
    "/cosmos.bank.v1beta1.Query/AllBalances",
    "/cosmos.bank.v1beta1.Query/SpendableBalances",
    "/cosmos.tx.v1beta1.Service/Simulate",
    "/cosmos.tx.v1beta1.Service/GetTx",
    "/akash.deployment.v1beta4.Query/Deployments",
    "/akash.deployment.v1beta4.Query/Deployment",
    "/akash.deployment.v1beta4.Query/Group",
    "/akash.market.v1beta5.Query/Orders",
    "/akash.market.v1beta5.Query/Order",
    "/akash.market.v1beta5.Query/Bids",
    "/akash.market.v1beta5.Query/Bid",
    "/akash.market.v1beta5.Query/Leases",
    "/akash.market.v1beta5.Query/Lease",
    "/akash.market.v1beta5.Query/Params",
    "/akash.provider.v1beta4.Query/Providers",
    "/akash.provider.v1beta4.Query/Provider",
    "/akash.cert.v1.Query/Certificates",
    "/akash.audit.v1.Query/AllProvidersAttributes",
    "/akash.audit.v1.Query/ProviderAttributes",
    "/akash.audit.v1.Query/ProviderAuditorAttributes",
    "/akash.audit.v1.Query/AuditorAttributes",
    "/akash.escrow.v1.Query/Accounts",
    "/akash.escrow.v1.Query/Payments",
];

/// Real requests for every path about the world's accounts, deployment, bid and lease: (path
/// index, request bytes).
pub fn requests(w: &World) -> Vec<(usize, Vec<u8>)> {
    let (tenant, provider, auditor) = (
        w.tenant().to_owned(),
        w.provider().to_owned(),
        w.auditor().to_owned(),
    );
    let page = || {
        Some(PageRequest {
            limit: 10,
            count_total: true,
            ..Default::default()
        })
    };
    let did = dv1::DeploymentId {
        owner: tenant.clone(),
        dseq: DSEQ,
    };
    let gid = dv1::GroupId {
        owner: tenant.clone(),
        dseq: DSEQ,
        gseq: 1,
    };
    let oid = mv1::OrderId {
        owner: tenant.clone(),
        dseq: DSEQ,
        gseq: 1,
        oseq: 1,
    };
    let bid = mv1::BidId {
        owner: tenant.clone(),
        dseq: DSEQ,
        gseq: 1,
        oseq: 1,
        provider: provider.clone(),
        bseq: 0,
    };
    let lid = mv1::LeaseId {
        owner: tenant.clone(),
        dseq: DSEQ,
        gseq: 1,
        oseq: 1,
        provider: provider.clone(),
        bseq: 0,
    };
    let hash = devnet::node::tx_hash(&w.txs[0]);
    let list: Vec<Vec<u8>> = vec![
        auth::QueryAccountRequest {
            address: tenant.clone(),
        }
        .encode_to_vec(),
        auth::QueryAccountInfoRequest {
            address: provider.clone(),
        }
        .encode_to_vec(),
        bank::QueryBalanceRequest {
            address: tenant.clone(),
            denom: "uakt".into(),
        }
        .encode_to_vec(),
        bank::QueryAllBalancesRequest {
            address: tenant.clone(),
            pagination: page(),
            ..Default::default()
        }
        .encode_to_vec(),
        bank::QuerySpendableBalancesRequest {
            address: provider.clone(),
            pagination: page(),
        }
        .encode_to_vec(),
        tx::SimulateRequest {
            tx_bytes: w.txs[w.txs.len() - 1].clone(),
            ..Default::default()
        }
        .encode_to_vec(),
        tx::GetTxRequest { hash }.encode_to_vec(),
        dq::QueryDeploymentsRequest {
            filters: Some(dq::DeploymentFilters {
                owner: tenant.clone(),
                dseq: 0,
                state: "active".into(),
            }),
            pagination: page(),
        }
        .encode_to_vec(),
        dq::QueryDeploymentRequest { id: Some(did) }.encode_to_vec(),
        dq::QueryGroupRequest { id: Some(gid) }.encode_to_vec(),
        mq::QueryOrdersRequest {
            filters: Some(mq::OrderFilters {
                owner: tenant.clone(),
                state: "open".into(),
                ..Default::default()
            }),
            pagination: page(),
        }
        .encode_to_vec(),
        mq::QueryOrderRequest { id: Some(oid) }.encode_to_vec(),
        mq::QueryBidsRequest {
            filters: Some(mq::BidFilters {
                provider: provider.clone(),
                ..Default::default()
            }),
            pagination: page(),
        }
        .encode_to_vec(),
        mq::QueryBidRequest { id: Some(bid) }.encode_to_vec(),
        mq::QueryLeasesRequest {
            filters: Some(mv1::LeaseFilters {
                owner: tenant.clone(),
                dseq: DSEQ,
                ..Default::default()
            }),
            pagination: page(),
        }
        .encode_to_vec(),
        mq::QueryLeaseRequest { id: Some(lid) }.encode_to_vec(),
        mq::QueryParamsRequest {}.encode_to_vec(),
        pq::QueryProvidersRequest { pagination: page() }.encode_to_vec(),
        pq::QueryProviderRequest {
            owner: provider.clone(),
        }
        .encode_to_vec(),
        cq::QueryCertificatesRequest {
            filter: Some(cq::CertificateFilter {
                owner: provider.clone(),
                serial: w.provider_cert.serial.clone(),
                state: "valid".into(),
            }),
            pagination: page(),
        }
        .encode_to_vec(),
        aq::QueryAllProvidersAttributesRequest { pagination: page() }.encode_to_vec(),
        aq::QueryProviderAttributesRequest {
            owner: provider.clone(),
            pagination: page(),
        }
        .encode_to_vec(),
        aq::QueryProviderAuditorRequest {
            auditor: auditor.clone(),
            owner: provider.clone(),
        }
        .encode_to_vec(),
        aq::QueryAuditorAttributesRequest {
            auditor,
            pagination: page(),
        }
        .encode_to_vec(),
        eq::QueryAccountsRequest {
            state: "open".into(),
            xid: format!("{tenant}/{DSEQ}"),
            pagination: page(),
        }
        .encode_to_vec(),
        eq::QueryPaymentsRequest {
            state: String::new(),
            xid: format!("{tenant}/{DSEQ}"),
            pagination: page(),
        }
        .encode_to_vec(),
    ];
    assert_eq!(list.len(), PATHS.len());
    list.into_iter().enumerate().collect()
}

pub struct DevnetQuery {
    world: Arc<World>,
    rt: tokio::runtime::Runtime,
}

impl DevnetQuery {
    pub fn new(world: Arc<World>) -> Self {
        Self {
            world,
            rt: crate::runtime(),
        }
    }
}

impl Target for DevnetQuery {
    fn name(&self) -> &'static str {
        "devnet_query"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        requests(&self.world)
            .into_iter()
            .map(|(path, bytes)| {
                let mut input = vec![path as u8];
                input.extend(bytes);
                input
            })
            .collect()
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        let (head, body) = base.split_first().unwrap_or((&0, &[]));
        let mut body = body.to_vec();
        mutate::proto(rng, &mut body, donor.get(1..).unwrap_or_default());
        let head = if rng.one_in(20) {
            rng.below(PATHS.len()) as u8
        } else {
            *head
        };
        let mut out = vec![head];
        out.extend(body);
        out
    }

    fn run(&mut self, input: &[u8]) -> String {
        let Some((head, data)) = input.split_first() else {
            return "empty".into();
        };
        let path = PATHS[usize::from(*head) % PATHS.len()];
        let node = &self.world.node;
        match self
            .rt
            .block_on(devnet::abci_query::query(node, path, data))
        {
            Ok(bytes) => format!("{path}:ok:{}", bytes.len().min(1)),
            Err(status) => label(path, &format!("{:?} {}", status.code(), status.message())),
        }
    }
}
