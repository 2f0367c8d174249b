//! CometBFT `abci_query` for gRPC query paths (`/cosmos.bank.v1beta1.Query/Balance`, ...), as
//! CosmJS-based clients (the official TypeScript SDK's signer among them) ask the chain: the
//! request bytes are decoded and handed to the same service implementations gRPC serves.

use std::sync::Arc;

use chain_client::akash::audit::v1 as aq;
use chain_client::akash::cert::v1 as cq;
use chain_client::akash::deployment::v1beta4 as dq;
use chain_client::akash::escrow::v1 as eq;
use chain_client::akash::market::v1beta5 as mq;
use chain_client::akash::provider::v1beta4 as pq;
use cosmos_sdk_proto::cosmos::auth::v1beta1 as auth;
use cosmos_sdk_proto::cosmos::bank::v1beta1 as bank;
use cosmos_sdk_proto::cosmos::tx::v1beta1 as tx;
use prost::Message;
use tonic::{Request, Status};

use crate::grpc::Services;
use crate::grpc_akash::AkashQueries;
use crate::node::Node;

/// Answers one query path with the encoded response.
pub async fn query(node: &Arc<Node>, path: &str, data: &[u8]) -> Result<Vec<u8>, Status> {
    let cosmos = Services::new(node.clone());
    let akash = AkashQueries::new(node.clone());
    macro_rules! route {
        ($($path:literal => $svc:ident as $ty:ty : $tr:path, $method:ident($req:ty);)*) => {
            match path {
                $(
                    $path => {
                        let req = <$req>::decode(data).map_err(|e| Status::invalid_argument(e.to_string()))?;
                        let resp = <$ty as $tr>::$method(&$svc, Request::new(req)).await?;
                        Ok(resp.into_inner().encode_to_vec())
                    }
                )*
                other => Err(Status::unimplemented(format!("unknown query path {other}"))),
            }
        };
    }
    route! {
        "/cosmos.auth.v1beta1.Query/Account" => cosmos as Services: auth::query_server::Query, account(auth::QueryAccountRequest);
        "/cosmos.auth.v1beta1.Query/AccountInfo" => cosmos as Services: auth::query_server::Query, account_info(auth::QueryAccountInfoRequest);
        "/cosmos.bank.v1beta1.Query/Balance" => cosmos as Services: bank::query_server::Query, balance(bank::QueryBalanceRequest);
        "/cosmos.bank.v1beta1.Query/AllBalances" => cosmos as Services: bank::query_server::Query, all_balances(bank::QueryAllBalancesRequest);
        "/cosmos.bank.v1beta1.Query/SpendableBalances" => cosmos as Services: bank::query_server::Query, spendable_balances(bank::QuerySpendableBalancesRequest);
        "/cosmos.tx.v1beta1.Service/Simulate" => cosmos as Services: tx::service_server::Service, simulate(tx::SimulateRequest);
        "/cosmos.tx.v1beta1.Service/GetTx" => cosmos as Services: tx::service_server::Service, get_tx(tx::GetTxRequest);
        "/akash.deployment.v1beta4.Query/Deployments" => akash as AkashQueries: dq::query_server::Query, deployments(dq::QueryDeploymentsRequest);
        "/akash.deployment.v1beta4.Query/Deployment" => akash as AkashQueries: dq::query_server::Query, deployment(dq::QueryDeploymentRequest);
        "/akash.deployment.v1beta4.Query/Group" => akash as AkashQueries: dq::query_server::Query, group(dq::QueryGroupRequest);
        "/akash.market.v1beta5.Query/Orders" => akash as AkashQueries: mq::query_server::Query, orders(mq::QueryOrdersRequest);
        "/akash.market.v1beta5.Query/Order" => akash as AkashQueries: mq::query_server::Query, order(mq::QueryOrderRequest);
        "/akash.market.v1beta5.Query/Bids" => akash as AkashQueries: mq::query_server::Query, bids(mq::QueryBidsRequest);
        "/akash.market.v1beta5.Query/Bid" => akash as AkashQueries: mq::query_server::Query, bid(mq::QueryBidRequest);
        "/akash.market.v1beta5.Query/Leases" => akash as AkashQueries: mq::query_server::Query, leases(mq::QueryLeasesRequest);
        "/akash.market.v1beta5.Query/Lease" => akash as AkashQueries: mq::query_server::Query, lease(mq::QueryLeaseRequest);
        "/akash.market.v1beta5.Query/Params" => akash as AkashQueries: mq::query_server::Query, params(mq::QueryParamsRequest);
        "/akash.provider.v1beta4.Query/Providers" => akash as AkashQueries: pq::query_server::Query, providers(pq::QueryProvidersRequest);
        "/akash.provider.v1beta4.Query/Provider" => akash as AkashQueries: pq::query_server::Query, provider(pq::QueryProviderRequest);
        "/akash.cert.v1.Query/Certificates" => akash as AkashQueries: cq::query_server::Query, certificates(cq::QueryCertificatesRequest);
        "/akash.audit.v1.Query/AllProvidersAttributes" => akash as AkashQueries: aq::query_server::Query, all_providers_attributes(aq::QueryAllProvidersAttributesRequest);
        "/akash.audit.v1.Query/ProviderAttributes" => akash as AkashQueries: aq::query_server::Query, provider_attributes(aq::QueryProviderAttributesRequest);
        "/akash.audit.v1.Query/ProviderAuditorAttributes" => akash as AkashQueries: aq::query_server::Query, provider_auditor_attributes(aq::QueryProviderAuditorRequest);
        "/akash.audit.v1.Query/AuditorAttributes" => akash as AkashQueries: aq::query_server::Query, auditor_attributes(aq::QueryAuditorAttributesRequest);
        "/akash.escrow.v1.Query/Accounts" => akash as AkashQueries: eq::query_server::Query, accounts(eq::QueryAccountsRequest);
        "/akash.escrow.v1.Query/Payments" => akash as AkashQueries: eq::query_server::Query, payments(eq::QueryPaymentsRequest);
    }
}
