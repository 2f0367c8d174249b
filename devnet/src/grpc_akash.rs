//! The Akash query services: `akash.deployment.v1beta4.Query` (Deployments, Deployment, Group,
//! Params), `akash.market.v1beta5.Query` (Orders, Order, Bids, Bid, Leases, Lease, Params) and
//! `akash.provider.v1beta4.Query` (Providers, Provider) and `akash.escrow.v1.Query` (Accounts,
//! Payments). The cert and audit queries are served from their modules ([`crate::cert`],
//! [`crate::audit`]) on the same [`AkashQueries`].
//!
//! Pagination: `limit` (default 100), `offset`, `count_total`, and `key`, which is the opaque
//! `next_key` of the previous page.

use std::sync::Arc;

use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dq};
use chain_client::akash::escrow::{types::v1 as escrow, v1 as eq};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mq};
use chain_client::akash::provider::v1beta4 as pq;
use cosmos_sdk_proto::cosmos::base::query::v1beta1::{PageRequest, PageResponse};
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin as ProtoCoin;
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::state::{State, keys};

const DEFAULT_LIMIT: u64 = 100;

/// One page of `items` as the request asks.
#[allow(clippy::result_large_err)] // tonic's `Status`, as every handler returns.
pub(crate) fn paginate<T>(
    items: Vec<T>,
    page: Option<PageRequest>,
) -> Result<(Vec<T>, Option<PageResponse>), Status> {
    let page = page.unwrap_or_default();
    let total = items.len() as u64;
    let start = if page.key.is_empty() {
        page.offset
    } else {
        let bytes: [u8; 8] = page
            .key
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("invalid pagination key"))?;
        u64::from_be_bytes(bytes)
    };
    let limit = if page.limit == 0 {
        DEFAULT_LIMIT
    } else {
        page.limit
    };
    let end = start.saturating_add(limit).min(total);
    let next_key = if end < total {
        end.to_be_bytes().to_vec()
    } else {
        Vec::new()
    };
    let out = items
        .into_iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(end.saturating_sub(start)).unwrap_or(0))
        .collect();
    let total = if page.count_total && page.key.is_empty() {
        total
    } else {
        0
    };
    Ok((out, Some(PageResponse { next_key, total })))
}

/// Checks a state filter against the enum's names (empty matches everything).
#[allow(clippy::result_large_err)]
pub(crate) fn state_filter<'a>(filter: &'a str, valid: &[&str]) -> Result<Option<&'a str>, Status> {
    if filter.is_empty() {
        return Ok(None);
    }
    if valid.contains(&filter) {
        Ok(Some(filter))
    } else {
        Err(Status::invalid_argument(format!(
            "invalid state value: {filter}"
        )))
    }
}

fn coin(amount: u128, denom: &str) -> ProtoCoin {
    ProtoCoin {
        denom: denom.to_owned(),
        amount: amount.to_string(),
    }
}

/// The two Akash query services over one node.
#[derive(Clone)]
pub struct AkashQueries {
    node: Arc<Node>,
}

impl AkashQueries {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// The node the queries read (the cert and audit modules serve their queries from it too).
    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }
}

fn deployment_response(s: &State, key: &str) -> Option<dq::QueryDeploymentResponse> {
    let d = s.deployments.get(key)?.0.clone();
    let groups = s
        .groups
        .range(format!("{key}/")..)
        .take_while(|(k, _)| k.starts_with(&format!("{key}/")))
        .map(|(_, g)| g.0.clone())
        .collect();
    Some(dq::QueryDeploymentResponse {
        deployment: Some(d),
        groups,
        escrow_account: s.escrow_accounts.get(key).map(|a| a.0.clone()),
    })
}

#[tonic::async_trait]
impl dq::query_server::Query for AkashQueries {
    async fn deployments(
        &self,
        request: Request<dq::QueryDeploymentsRequest>,
    ) -> Result<Response<dq::QueryDeploymentsResponse>, Status> {
        let req = request.into_inner();
        let f = req.filters.unwrap_or_default();
        let state = state_filter(&f.state, &["active", "closed"])?;
        let all = self.node.with_state(|s| {
            s.deployments
                .iter()
                .filter(|(_, d)| {
                    let id = d.0.id.clone().unwrap_or_default();
                    (f.owner.is_empty() || id.owner == f.owner)
                        && (f.dseq == 0 || id.dseq == f.dseq)
                        && state.is_none_or(|st| {
                            dv1::deployment::State::try_from(d.0.state).map(|x| x.as_str_name())
                                == Ok(st)
                        })
                })
                .filter_map(|(k, _)| deployment_response(s, k))
                .collect::<Vec<_>>()
        });
        let (deployments, pagination) = paginate(all, req.pagination)?;
        Ok(Response::new(dq::QueryDeploymentsResponse {
            deployments,
            pagination,
        }))
    }

    async fn deployment(
        &self,
        request: Request<dq::QueryDeploymentRequest>,
    ) -> Result<Response<dq::QueryDeploymentResponse>, Status> {
        let id = request
            .into_inner()
            .id
            .ok_or_else(|| Status::invalid_argument("empty request"))?;
        self.node
            .with_state(|s| deployment_response(s, &keys::deployment(&id.owner, id.dseq)))
            .map(Response::new)
            .ok_or_else(|| Status::not_found("deployment not found"))
    }

    async fn group(
        &self,
        request: Request<dq::QueryGroupRequest>,
    ) -> Result<Response<dq::QueryGroupResponse>, Status> {
        let id = request
            .into_inner()
            .id
            .ok_or_else(|| Status::invalid_argument("empty request"))?;
        let group = self
            .node
            .with_state(|s| {
                s.groups
                    .get(&keys::group(&id.owner, id.dseq, id.gseq))
                    .map(|g| g.0.clone())
            })
            .ok_or_else(|| Status::not_found("group not found"))?;
        Ok(Response::new(dq::QueryGroupResponse { group: Some(group) }))
    }

    async fn params(
        &self,
        _request: Request<dq::QueryParamsRequest>,
    ) -> Result<Response<dq::QueryParamsResponse>, Status> {
        Ok(Response::new(dq::QueryParamsResponse {
            params: Some(dq::Params {
                min_deposits: vec![coin(
                    crate::deployment::MIN_DEPOSIT,
                    crate::deployment::PRICE_DENOM,
                )],
            }),
        }))
    }
}

#[tonic::async_trait]
impl mq::query_server::Query for AkashQueries {
    async fn orders(
        &self,
        request: Request<mq::QueryOrdersRequest>,
    ) -> Result<Response<mq::QueryOrdersResponse>, Status> {
        let req = request.into_inner();
        let f = req.filters.unwrap_or_default();
        let state = state_filter(&f.state, &["open", "active", "closed"])?;
        let all = self.node.with_state(|s| {
            s.orders
                .values()
                .map(|o| o.0.clone())
                .filter(|o| {
                    let id = o.id.clone().unwrap_or_default();
                    (f.owner.is_empty() || id.owner == f.owner)
                        && (f.dseq == 0 || id.dseq == f.dseq)
                        && (f.gseq == 0 || id.gseq == f.gseq)
                        && (f.oseq == 0 || id.oseq == f.oseq)
                        && state.is_none_or(|st| {
                            mq::order::State::try_from(o.state).map(|x| x.as_str_name()) == Ok(st)
                        })
                })
                .collect::<Vec<_>>()
        });
        let (orders, pagination) = paginate(all, req.pagination)?;
        Ok(Response::new(mq::QueryOrdersResponse {
            orders,
            pagination,
        }))
    }

    async fn order(
        &self,
        request: Request<mq::QueryOrderRequest>,
    ) -> Result<Response<mq::QueryOrderResponse>, Status> {
        let id = request
            .into_inner()
            .id
            .ok_or_else(|| Status::invalid_argument("empty request"))?;
        let order = self
            .node
            .with_state(|s| {
                s.orders
                    .get(&keys::order(&id.owner, id.dseq, id.gseq, id.oseq))
                    .map(|o| o.0.clone())
            })
            .ok_or_else(|| Status::not_found("order not found"))?;
        Ok(Response::new(mq::QueryOrderResponse { order: Some(order) }))
    }

    async fn bids(
        &self,
        request: Request<mq::QueryBidsRequest>,
    ) -> Result<Response<mq::QueryBidsResponse>, Status> {
        let req = request.into_inner();
        let f = req.filters.unwrap_or_default();
        let state = state_filter(&f.state, &["open", "active", "lost", "closed"])?;
        let all = self.node.with_state(|s| {
            s.bids
                .iter()
                .filter(|(_, b)| {
                    let id = b.0.id.clone().unwrap_or_default();
                    (f.owner.is_empty() || id.owner == f.owner)
                        && (f.dseq == 0 || id.dseq == f.dseq)
                        && (f.gseq == 0 || id.gseq == f.gseq)
                        && (f.oseq == 0 || id.oseq == f.oseq)
                        && (f.provider.is_empty() || id.provider == f.provider)
                        && state.is_none_or(|st| {
                            mq::bid::State::try_from(b.0.state).map(|x| x.as_str_name()) == Ok(st)
                        })
                })
                .map(|(k, b)| mq::QueryBidResponse {
                    bid: Some(b.0.clone()),
                    escrow_account: s
                        .escrow_accounts
                        .get(&format!("bid/{k}"))
                        .map(|a| a.0.clone()),
                })
                .collect::<Vec<_>>()
        });
        let (bids, pagination) = paginate(all, req.pagination)?;
        Ok(Response::new(mq::QueryBidsResponse { bids, pagination }))
    }

    async fn bid(
        &self,
        request: Request<mq::QueryBidRequest>,
    ) -> Result<Response<mq::QueryBidResponse>, Status> {
        let id = request
            .into_inner()
            .id
            .ok_or_else(|| Status::invalid_argument("empty request"))?;
        let key = crate::market::bid_key(&id);
        self.node
            .with_state(|s| {
                s.bids.get(&key).map(|b| mq::QueryBidResponse {
                    bid: Some(b.0.clone()),
                    escrow_account: s
                        .escrow_accounts
                        .get(&format!("bid/{key}"))
                        .map(|a| a.0.clone()),
                })
            })
            .map(Response::new)
            .ok_or_else(|| Status::not_found("invalid bid: bid not found"))
    }

    async fn leases(
        &self,
        request: Request<mq::QueryLeasesRequest>,
    ) -> Result<Response<mq::QueryLeasesResponse>, Status> {
        let req = request.into_inner();
        let f = req.filters.unwrap_or_default();
        let state = state_filter(
            &f.state,
            &["active", "insufficient_funds", "closed", "reclaiming"],
        )?;
        let all = self.node.with_state(|s| {
            s.leases
                .iter()
                .filter(|(_, l)| {
                    let id = l.0.id.clone().unwrap_or_default();
                    (f.owner.is_empty() || id.owner == f.owner)
                        && (f.dseq == 0 || id.dseq == f.dseq)
                        && (f.gseq == 0 || id.gseq == f.gseq)
                        && (f.oseq == 0 || id.oseq == f.oseq)
                        && (f.provider.is_empty() || id.provider == f.provider)
                        && state.is_none_or(|st| {
                            mv1::lease::State::try_from(l.0.state).map(|x| x.as_str_name())
                                == Ok(st)
                        })
                })
                .map(|(k, l)| mq::QueryLeaseResponse {
                    lease: Some(l.0.clone()),
                    escrow_payment: s.payments.get(k).map(|p| p.0.clone()),
                })
                .collect::<Vec<_>>()
        });
        let (leases, pagination) = paginate(all, req.pagination)?;
        Ok(Response::new(mq::QueryLeasesResponse {
            leases,
            pagination,
        }))
    }

    async fn lease(
        &self,
        request: Request<mq::QueryLeaseRequest>,
    ) -> Result<Response<mq::QueryLeaseResponse>, Status> {
        let id = request
            .into_inner()
            .id
            .ok_or_else(|| Status::invalid_argument("empty request"))?;
        let key = crate::market::lease_key(&id);
        self.node
            .with_state(|s| {
                s.leases.get(&key).map(|l| mq::QueryLeaseResponse {
                    lease: Some(l.0.clone()),
                    escrow_payment: s.payments.get(&key).map(|p| p.0.clone()),
                })
            })
            .map(Response::new)
            .ok_or_else(|| Status::not_found("invalid lease: lease not found"))
    }

    async fn params(
        &self,
        _request: Request<mq::QueryParamsRequest>,
    ) -> Result<Response<mq::QueryParamsResponse>, Status> {
        let hour = prost_types::Duration {
            seconds: 3600,
            nanos: 0,
        };
        Ok(Response::new(mq::QueryParamsResponse {
            params: Some(mq::Params {
                bid_min_deposit: Some(coin(500_000, crate::DENOM_AKT)),
                order_max_bids: 20,
                bid_min_deposits: vec![
                    coin(500_000, crate::DENOM_AKT),
                    coin(500_000, crate::DENOM_ACT),
                ],
                min_reclamation_window: Some(hour),
                max_reclamation_window: Some(prost_types::Duration {
                    seconds: 720 * 3600,
                    nanos: 0,
                }),
            }),
        }))
    }
}

#[tonic::async_trait]
impl pq::query_server::Query for AkashQueries {
    async fn providers(
        &self,
        request: Request<pq::QueryProvidersRequest>,
    ) -> Result<Response<pq::QueryProvidersResponse>, Status> {
        let all = self.node.with_state(|s| {
            s.providers
                .values()
                .map(|p| p.0.clone())
                .collect::<Vec<_>>()
        });
        let (providers, pagination) = paginate(all, request.into_inner().pagination)?;
        Ok(Response::new(pq::QueryProvidersResponse {
            providers,
            pagination,
        }))
    }

    async fn provider(
        &self,
        request: Request<pq::QueryProviderRequest>,
    ) -> Result<Response<pq::QueryProviderResponse>, Status> {
        let owner = request.into_inner().owner;
        let provider = self
            .node
            .with_state(|s| s.providers.get(&owner).map(|p| p.0.clone()))
            .ok_or_else(|| Status::not_found("invalid provider: address not found"))?;
        Ok(Response::new(pq::QueryProviderResponse {
            provider: Some(provider),
        }))
    }
}

/// `akash.escrow.v1.Query`: `state` is an escrow state name (`open`, `closed`, `overdrawn`; empty
/// for any); `xid` selects by prefix: an account's xid (`owner/dseq` for a deployment account,
/// `owner/dseq/gseq/oseq/provider/bseq` for a bid account), or a payment's account xid followed by
/// its own (`owner/dseq/gseq/oseq/provider`). Accounts are listed deployment accounts first, then
/// bid accounts.
#[tonic::async_trait]
impl eq::query_server::Query for AkashQueries {
    async fn accounts(
        &self,
        request: Request<eq::QueryAccountsRequest>,
    ) -> Result<Response<eq::QueryAccountsResponse>, Status> {
        let req = request.into_inner();
        let state = state_filter(&req.state, &["open", "closed", "overdrawn"])?;
        let all = self.node.with_state(|s| {
            let (bids, deployments): (Vec<_>, Vec<_>) = s
                .escrow_accounts
                .iter()
                .partition(|(k, _)| k.starts_with("bid/"));
            deployments
                .into_iter()
                .chain(bids)
                .map(|(_, a)| a.0.clone())
                .filter(|a| {
                    let xid = a.id.as_ref().map(|i| i.xid.as_str()).unwrap_or_default();
                    let st = a.state.as_ref().map(|st| st.state).unwrap_or_default();
                    xid.starts_with(&req.xid)
                        && state.is_none_or(|want| {
                            escrow::State::try_from(st).map(|x| x.as_str_name()) == Ok(want)
                        })
                })
                .collect::<Vec<_>>()
        });
        let (accounts, pagination) = paginate(all, req.pagination)?;
        Ok(Response::new(eq::QueryAccountsResponse {
            accounts,
            pagination,
        }))
    }

    async fn payments(
        &self,
        request: Request<eq::QueryPaymentsRequest>,
    ) -> Result<Response<eq::QueryPaymentsResponse>, Status> {
        let req = request.into_inner();
        let state = state_filter(&req.state, &["open", "closed", "overdrawn"])?;
        let all = self.node.with_state(|s| {
            s.payments
                .values()
                .map(|p| p.0.clone())
                .filter(|p| {
                    let id = p.id.clone().unwrap_or_default();
                    let xid = format!("{}/{}", id.aid.unwrap_or_default().xid, id.xid);
                    let st = p.state.as_ref().map(|st| st.state).unwrap_or_default();
                    xid.starts_with(&req.xid)
                        && state.is_none_or(|want| {
                            escrow::State::try_from(st).map(|x| x.as_str_name()) == Ok(want)
                        })
                })
                .collect::<Vec<_>>()
        });
        let (payments, pagination) = paginate(all, req.pagination)?;
        Ok(Response::new(eq::QueryPaymentsResponse {
            payments,
            pagination,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_next_key_to_the_end() {
        let items: Vec<u32> = (0..250).collect();
        let (first, p) = paginate(
            items.clone(),
            Some(PageRequest {
                count_total: true,
                ..Default::default()
            }),
        )
        .unwrap();
        let p = p.unwrap();
        assert_eq!((first.len(), p.total), (100, 250));
        let (second, p2) = paginate(
            items.clone(),
            Some(PageRequest {
                key: p.next_key,
                ..Default::default()
            }),
        )
        .unwrap();
        assert_eq!(second[0], 100);
        let (third, p3) = paginate(
            items.clone(),
            Some(PageRequest {
                key: p2.unwrap().next_key,
                ..Default::default()
            }),
        )
        .unwrap();
        assert_eq!((third.len(), third[49]), (50, 249));
        assert!(p3.unwrap().next_key.is_empty());
        let (o, _) = paginate(
            items,
            Some(PageRequest {
                offset: 10,
                limit: 2,
                ..Default::default()
            }),
        )
        .unwrap();
        assert_eq!(o, vec![10, 11]);
    }

    #[test]
    fn state_filters_are_checked() {
        assert_eq!(state_filter("", &["open"]).unwrap(), None);
        assert_eq!(state_filter("open", &["open"]).unwrap(), Some("open"));
        assert_eq!(
            state_filter("bogus", &["open"]).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
