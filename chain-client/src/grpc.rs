//! Queries and simulation over a node's Cosmos gRPC endpoint (tonic; TLS with rustls on ring for
//! `https://`). The clients are the ones generated from our Akash `.proto` files and from
//! `cosmos-sdk-proto`.
//!
//! What the node's answers mean is decided in small functions tested on their own:
//! [`status_to_error`] (a gRPC status, often carrying an SDK error text, to a [`ChainError`]) and
//! [`account_from_any`] (the `Any` account of `auth/Account` to an [`AccountInfo`]).

use std::time::Duration;

use cosmos_sdk_proto::cosmos::auth::v1beta1::{
    BaseAccount, QueryAccountRequest, query_client::QueryClient as AuthClient,
};
use cosmos_sdk_proto::cosmos::bank::v1beta1::{
    QueryBalanceRequest, query_client::QueryClient as BankClient,
};
use cosmos_sdk_proto::cosmos::tx::v1beta1::{SimulateRequest, service_client::ServiceClient};
use prost::{Message, Name};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::akash::audit::v1::{
    AuditedProvider, QueryProviderAttributesRequest, query_client::QueryClient as AuditClient,
};
use crate::akash::cert::v1::{QueryCertificatesRequest, query_client::QueryClient as CertClient};
use crate::akash::deployment::v1beta4::{
    QueryDeploymentsRequest, query_client::QueryClient as DeploymentClient,
};
use crate::akash::market::v1beta5::{
    QueryBidsRequest, QueryLeasesRequest, QueryOrdersRequest, QueryParamsRequest,
    query_client::QueryClient as MarketClient,
};
use crate::akash::provider::v1beta4::{
    QueryProviderRequest, QueryProvidersRequest, query_client::QueryClient as ProviderClient,
};
use crate::chain::{
    BidFilters, CertificateFilter, CertificateResponse, DeploymentFilters, LeaseFilters,
    MarketParams, Order, OrderFilters, Page, PageRequest, Provider, QueryBidResponse,
    QueryDeploymentResponse, QueryLeaseResponse,
};
use crate::error::{
    CODE_INSUFFICIENT_FEE, CODE_INSUFFICIENT_FUNDS, CODE_OUT_OF_GAS, CODE_TX_IN_MEMPOOL_CACHE,
    CODE_UNAUTHORIZED, CODE_WRONG_SEQUENCE, ChainError, Result, SDK_CODESPACE,
};
use crate::transport::AccountInfo;

/// The codespace given to gRPC failures that are not a recognisable SDK error.
pub const GRPC_CODESPACE: &str = "grpc";

/// Maps a gRPC status to a [`ChainError`]. The SDK reports transaction failures in simulation as
/// a status whose message holds the error's registered text ("…: incorrect account sequence"),
/// so those texts are recognised; transport-level codes become `Transport`/`Timeout`.
pub fn status_to_error(status: &tonic::Status) -> ChainError {
    use tonic::Code;
    let msg = status.message();
    match status.code() {
        Code::Unavailable | Code::Cancelled => {
            return ChainError::Transport(format!("gRPC {:?}: {msg}", status.code()));
        }
        Code::DeadlineExceeded => return ChainError::Timeout(format!("gRPC: {msg}")),
        _ => {}
    }
    // Registered texts of cosmos-sdk/types/errors.
    const SDK_TEXTS: [(&str, u32); 6] = [
        ("incorrect account sequence", CODE_WRONG_SEQUENCE),
        ("insufficient funds", CODE_INSUFFICIENT_FUNDS),
        ("insufficient fee", CODE_INSUFFICIENT_FEE),
        ("out of gas", CODE_OUT_OF_GAS),
        ("tx already in mempool", CODE_TX_IN_MEMPOOL_CACHE),
        ("unauthorized", CODE_UNAUTHORIZED),
    ];
    if let Some((_, code)) = SDK_TEXTS.iter().find(|(text, _)| msg.contains(text)) {
        return ChainError::from_abci(SDK_CODESPACE, *code, msg);
    }
    ChainError::Other {
        codespace: GRPC_CODESPACE.into(),
        code: status.code() as u32,
        log: msg.to_owned(),
    }
}

/// Account number and sequence out of `auth/Account`'s `Any` (a `BaseAccount`).
pub fn account_from_any(address: &str, any: &cosmos_sdk_proto::Any) -> Result<AccountInfo> {
    if any.type_url != BaseAccount::type_url() {
        return Err(ChainError::Decode(format!(
            "account {address} is a {}, not a BaseAccount",
            any.type_url
        )));
    }
    let acc = BaseAccount::decode(any.value.as_slice())
        .map_err(|e| ChainError::Decode(format!("BaseAccount: {e}")))?;
    // Only a secp256k1 key is an account key a token can be checked with.
    let pub_key = acc
        .pub_key
        .filter(|k| k.type_url == "/cosmos.crypto.secp256k1.PubKey")
        .and_then(|k| {
            cosmos_sdk_proto::cosmos::crypto::secp256k1::PubKey::decode(k.value.as_slice()).ok()
        })
        .map(|k| k.key);
    Ok(AccountInfo {
        address: acc.address,
        account_number: acc.account_number,
        sequence: acc.sequence,
        pub_key,
    })
}

/// A gRPC connection to a node (lazy: connects on first use and reconnects by itself).
#[derive(Clone)]
pub struct GrpcClient {
    channel: Channel,
}

impl GrpcClient {
    /// `url` is `http://host:9090` or `https://…`; every call is bounded by `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        let mut endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| ChainError::Invalid(format!("gRPC URL {url:?}: {e}")))?
            .timeout(timeout)
            .connect_timeout(timeout);
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_native_roots())
                .map_err(|e| ChainError::Invalid(format!("gRPC TLS: {e}")))?;
        }
        Ok(Self {
            channel: endpoint.connect_lazy(),
        })
    }

    pub async fn account(&self, address: &str) -> Result<AccountInfo> {
        let r = AuthClient::new(self.channel.clone())
            .account(QueryAccountRequest {
                address: address.to_owned(),
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        let any = r
            .account
            .ok_or_else(|| ChainError::Decode(format!("no account in the answer for {address}")))?;
        account_from_any(address, &any)
    }

    pub async fn balance(&self, address: &str, denom: &str) -> Result<u128> {
        let r = BankClient::new(self.channel.clone())
            .balance(QueryBalanceRequest {
                address: address.to_owned(),
                denom: denom.to_owned(),
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        match r.balance {
            None => Ok(0),
            Some(c) => c
                .amount
                .parse()
                .map_err(|_| ChainError::Decode(format!("balance amount {:?}", c.amount))),
        }
    }

    /// The gas a transaction uses.
    pub async fn simulate(&self, tx_bytes: Vec<u8>) -> Result<u64> {
        let r = ServiceClient::new(self.channel.clone())
            .simulate(SimulateRequest {
                tx_bytes,
                ..Default::default()
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        r.gas_info
            .map(|g| g.gas_used)
            .ok_or_else(|| ChainError::Decode("simulation without gas info".into()))
    }

    pub async fn orders(&self, filters: OrderFilters, page: PageRequest) -> Result<Page<Order>> {
        let r = MarketClient::new(self.channel.clone())
            .orders(QueryOrdersRequest {
                filters: Some(filters),
                pagination: Some(page.to_proto()),
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        Ok(Page::from_proto(r.orders, r.pagination))
    }

    pub async fn bids(
        &self,
        filters: BidFilters,
        page: PageRequest,
    ) -> Result<Page<QueryBidResponse>> {
        let r = MarketClient::new(self.channel.clone())
            .bids(QueryBidsRequest {
                filters: Some(filters),
                pagination: Some(page.to_proto()),
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        Ok(Page::from_proto(r.bids, r.pagination))
    }

    pub async fn leases(
        &self,
        filters: LeaseFilters,
        page: PageRequest,
    ) -> Result<Page<QueryLeaseResponse>> {
        let r = MarketClient::new(self.channel.clone())
            .leases(QueryLeasesRequest {
                filters: Some(filters),
                pagination: Some(page.to_proto()),
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        Ok(Page::from_proto(r.leases, r.pagination))
    }

    pub async fn market_params(&self) -> Result<MarketParams> {
        let r = MarketClient::new(self.channel.clone())
            .params(QueryParamsRequest {})
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        r.params
            .ok_or_else(|| ChainError::Decode("market params missing".into()))
    }

    pub async fn deployments(
        &self,
        filters: DeploymentFilters,
        page: PageRequest,
    ) -> Result<Page<QueryDeploymentResponse>> {
        let r = DeploymentClient::new(self.channel.clone())
            .deployments(QueryDeploymentsRequest {
                filters: Some(filters),
                pagination: Some(page.to_proto()),
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        Ok(Page::from_proto(r.deployments, r.pagination))
    }

    pub async fn providers(&self, page: PageRequest) -> Result<Page<Provider>> {
        let r = ProviderClient::new(self.channel.clone())
            .providers(QueryProvidersRequest {
                pagination: Some(page.to_proto()),
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        Ok(Page::from_proto(r.providers, r.pagination))
    }

    pub async fn provider(&self, owner: &str) -> Result<Option<Provider>> {
        match ProviderClient::new(self.channel.clone())
            .provider(QueryProviderRequest {
                owner: owner.to_owned(),
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().provider),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(status_to_error(&s)),
        }
    }

    pub async fn certificates(
        &self,
        filter: CertificateFilter,
        page: PageRequest,
    ) -> Result<Page<CertificateResponse>> {
        let r = CertClient::new(self.channel.clone())
            .certificates(QueryCertificatesRequest {
                filter: Some(filter),
                pagination: Some(page.to_proto()),
            })
            .await
            .map_err(|s| status_to_error(&s))?
            .into_inner();
        Ok(Page::from_proto(r.certificates, r.pagination))
    }

    /// Every auditor's attributes for provider `owner`. The chain answers "invalid provider:
    /// address not found" when there are none (as `NOT_FOUND`, or as `UNKNOWN` with that text from
    /// the Go chain's registered error): that is an empty list.
    pub async fn provider_audited_attributes(&self, owner: &str) -> Result<Vec<AuditedProvider>> {
        match AuditClient::new(self.channel.clone())
            .provider_attributes(QueryProviderAttributesRequest {
                owner: owner.to_owned(),
                pagination: None,
            })
            .await
        {
            Ok(r) => Ok(r.into_inner().providers),
            Err(s)
                if s.code() == tonic::Code::NotFound
                    || s.message().contains("invalid provider: address not found") =>
            {
                Ok(Vec::new())
            }
            Err(s) => Err(status_to_error(&s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    #[test]
    fn sdk_error_texts_in_a_status_map_to_their_variants() {
        let s = Status::new(
            Code::Unknown,
            "account sequence mismatch, expected 7, got 6: incorrect account sequence \
             [cosmos/cosmos-sdk@v0.50.13/x/auth/ante/sigverify.go:290] with gas used: '35004'",
        );
        let e = status_to_error(&s);
        assert!(
            matches!(
                e,
                ChainError::SequenceMismatch {
                    expected: Some(7),
                    got: Some(6),
                    ..
                }
            ),
            "{e:?}"
        );
        let s = Status::new(
            Code::Unknown,
            "spendable balance 10uakt is smaller than 500000uakt: insufficient funds",
        );
        assert_eq!(status_to_error(&s).metric_label(), "insufficient_funds");
        let s = Status::new(
            Code::InvalidArgument,
            "pubKey does not match signer address akash1x with signer index: 0: invalid pubkey; unauthorized",
        );
        assert_eq!(status_to_error(&s).metric_label(), "unauthorized");
    }

    #[test]
    fn transport_codes_and_others() {
        assert_eq!(
            status_to_error(&Status::unavailable("connection refused")).metric_label(),
            "transport"
        );
        assert_eq!(
            status_to_error(&Status::deadline_exceeded("slow")).metric_label(),
            "timeout"
        );
        assert_eq!(
            status_to_error(&Status::not_found("order not found")),
            ChainError::Other {
                codespace: "grpc".into(),
                code: Code::NotFound as u32,
                log: "order not found".into()
            }
        );
    }

    #[test]
    fn base_accounts_decode_and_others_are_refused() {
        let acc = BaseAccount {
            address: "akash1abc".into(),
            pub_key: None,
            account_number: 12,
            sequence: 34,
        };
        let any = cosmos_sdk_proto::Any {
            type_url: "/cosmos.auth.v1beta1.BaseAccount".into(),
            value: acc.encode_to_vec(),
        };
        assert_eq!(
            account_from_any("akash1abc", &any).unwrap(),
            AccountInfo {
                address: "akash1abc".into(),
                account_number: 12,
                sequence: 34,
                pub_key: None,
            }
        );
        let module = cosmos_sdk_proto::Any {
            type_url: "/cosmos.auth.v1beta1.ModuleAccount".into(),
            value: vec![],
        };
        assert_eq!(
            account_from_any("akash1abc", &module)
                .unwrap_err()
                .metric_label(),
            "decode"
        );
    }

    #[tokio::test]
    async fn a_node_that_is_not_there_is_a_transport_error() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client =
            GrpcClient::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5)).unwrap();
        let err = client.account("akash1abc").await.unwrap_err();
        assert_eq!(err.metric_label(), "transport", "{err:?}");
        assert!(GrpcClient::new("not a url", Duration::from_secs(1)).is_err());
    }
}
