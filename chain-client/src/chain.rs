//! The [`Chain`] trait: everything the operator asks of the Akash chain. It is object safe, so
//! the operator holds an `Arc<dyn Chain>` (the gRPC/CometBFT client in production, [`crate::fake`]
//! in unit tests).

use std::future::Future;

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::error::{ChainError, Result};
use crate::events::BlockEvents;

pub use crate::akash::cert::v1::{CertificateFilter, CertificateResponse};
pub use crate::akash::deployment::v1beta4::{DeploymentFilters, QueryDeploymentResponse};
pub use crate::akash::market::v1::LeaseFilters;
pub use crate::akash::market::v1beta5::{
    BidFilters, Order, OrderFilters, Params as MarketParams, QueryBidResponse, QueryLeaseResponse,
};
pub use crate::akash::provider::v1beta4::Provider;
pub use crate::transport::{AccountInfo, TxResult};

/// One page of a paginated query: start after `key` (empty: from the start), at most `limit`
/// items (0: the node's default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub key: Vec<u8>,
    pub limit: u64,
}

impl PageRequest {
    /// The first page with `limit` items.
    pub fn first(limit: u64) -> Self {
        Self {
            key: Vec::new(),
            limit,
        }
    }

    /// As the Cosmos `PageRequest` the query services take.
    pub fn to_proto(&self) -> cosmos_sdk_proto::cosmos::base::query::v1beta1::PageRequest {
        cosmos_sdk_proto::cosmos::base::query::v1beta1::PageRequest {
            key: self.key.clone(),
            limit: self.limit,
            ..Default::default()
        }
    }
}

/// Items of one page and the key of the next one (`None` on the last page).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_key: Option<Vec<u8>>,
}

impl<T> Page<T> {
    /// Builds a page from a Cosmos `PageResponse` (an empty `next_key` means the end).
    pub fn from_proto(
        items: Vec<T>,
        response: Option<cosmos_sdk_proto::cosmos::base::query::v1beta1::PageResponse>,
    ) -> Self {
        let next_key = response.map(|r| r.next_key).filter(|k| !k.is_empty());
        Self { items, next_key }
    }
}

/// The Akash chain as the provider and the tenant controller use it.
#[async_trait]
pub trait Chain: Send + Sync {
    /// The address this client signs transactions with.
    fn address(&self) -> &str;

    /// The latest committed block height.
    async fn latest_height(&self) -> Result<u64>;
    /// Account number and sequence.
    async fn account(&self, address: &str) -> Result<AccountInfo>;
    /// The spendable balance of `denom` (0 for an unknown account or denom).
    async fn balance(&self, address: &str, denom: &str) -> Result<u128>;

    async fn orders(&self, filters: OrderFilters, page: PageRequest) -> Result<Page<Order>>;
    async fn bids(&self, filters: BidFilters, page: PageRequest) -> Result<Page<QueryBidResponse>>;
    async fn leases(
        &self,
        filters: LeaseFilters,
        page: PageRequest,
    ) -> Result<Page<QueryLeaseResponse>>;
    async fn deployments(
        &self,
        filters: DeploymentFilters,
        page: PageRequest,
    ) -> Result<Page<QueryDeploymentResponse>>;
    async fn providers(&self, page: PageRequest) -> Result<Page<Provider>>;
    /// One provider, `None` when it is not registered.
    async fn provider(&self, owner: &str) -> Result<Option<Provider>>;
    async fn certificates(
        &self,
        filter: CertificateFilter,
        page: PageRequest,
    ) -> Result<Page<CertificateResponse>>;
    async fn market_params(&self) -> Result<MarketParams>;
    /// The attributes each auditor has signed for provider `owner` (`akash.audit.v1`), one entry
    /// per auditor; empty when no auditor has signed any.
    async fn provider_audited_attributes(
        &self,
        owner: &str,
    ) -> Result<Vec<crate::akash::audit::v1::AuditedProvider>>;

    /// Signs `msgs` as one transaction with this client's key, broadcasts it and waits until it is
    /// in a block. A chain failure comes back as its [`ChainError`] variant.
    async fn broadcast(&self, msgs: Vec<prost_types::Any>) -> Result<TxResult>;

    /// The Akash events of every block from `from_height` on, in order, without gaps.
    fn events(&self, from_height: u64) -> BoxStream<'static, Result<BlockEvents>>;
}

/// Reads every page of a paginated query, `page_size` items at a time. A node that hands back the
/// same page key twice would loop forever; that is an error.
pub async fn collect_all<T, F, Fut>(page_size: u64, mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>>>,
{
    let mut all = Vec::new();
    let mut request = PageRequest::first(page_size);
    let mut seen_keys = std::collections::HashSet::new();
    loop {
        let page = fetch(request.clone()).await?;
        all.extend(page.items);
        match page.next_key {
            None => return Ok(all),
            Some(key) => {
                if !seen_keys.insert(key.clone()) {
                    return Err(ChainError::Decode(
                        "the node returned a page key it had already returned".into(),
                    ));
                }
                request = PageRequest {
                    key,
                    limit: page_size,
                };
            }
        }
    }
}

/// Every lease of deployment (`owner`, `dseq`), in any state, read page by page.
pub async fn deployment_leases(
    chain: &dyn Chain,
    owner: &str,
    dseq: u64,
) -> Result<Vec<QueryLeaseResponse>> {
    collect_all(100, |page| {
        chain.leases(
            LeaseFilters {
                owner: owner.to_owned(),
                dseq,
                ..Default::default()
            },
            page,
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn collect_all_follows_next_keys_to_the_end() {
        let data: Vec<u32> = (0..7).collect();
        let mut requests = Vec::new();
        let all = collect_all(3, |req| {
            requests.push(req.clone());
            let start: usize = if req.key.is_empty() {
                0
            } else {
                String::from_utf8(req.key).unwrap().parse().unwrap()
            };
            let end = (start + req.limit as usize).min(data.len());
            let next_key = (end < data.len()).then(|| end.to_string().into_bytes());
            let items = data[start..end].to_vec();
            async move { Ok(Page { items, next_key }) }
        })
        .await
        .unwrap();
        assert_eq!(all, data);
        assert_eq!(requests.len(), 3);
        assert_eq!(
            requests[1],
            PageRequest {
                key: b"3".to_vec(),
                limit: 3
            }
        );
    }

    #[tokio::test]
    async fn a_repeated_page_key_is_an_error_not_a_loop() {
        let err = collect_all(1, |_| async {
            Ok(Page {
                items: vec![1],
                next_key: Some(b"same".to_vec()),
            })
        })
        .await
        .unwrap_err();
        assert_eq!(err.metric_label(), "decode");
    }

    #[test]
    fn an_empty_next_key_is_the_last_page() {
        use cosmos_sdk_proto::cosmos::base::query::v1beta1::PageResponse;
        let last = Page::from_proto(
            vec![1],
            Some(PageResponse {
                next_key: vec![],
                total: 1,
            }),
        );
        assert_eq!(last.next_key, None);
        let more = Page::<u8>::from_proto(
            vec![],
            Some(PageResponse {
                next_key: vec![9],
                total: 0,
            }),
        );
        assert_eq!(more.next_key, Some(vec![9]));
        assert_eq!(PageRequest::first(5).to_proto().limit, 5);
    }
}
