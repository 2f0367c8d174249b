//! An in-memory [`Chain`] for the operator's unit tests (cargo feature `fake`). Never for an e2e
//! test: those run against the devnet.
//!
//! Tests put orders, bids, leases, deployments, providers, certificates and audited attributes in;
//! queries filter and page them as the chain does (empty filter fields match everything).
//! `broadcast` records every transaction's messages, applies `MsgCreateBid` and `MsgCloseBid` to
//! the bids, and can be told to fail, or to wait (transactions in flight together). Tests push blocks of events, which `events(from)` streams in height order.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::stream::{self, BoxStream};
use prost::{Message, Name};
use tokio::sync::{Notify, watch};

use crate::akash::market::v1::BidId;
use crate::akash::market::v1beta5::{Bid, MsgCloseBid, MsgCreateBid, bid};
use crate::chain::BidFilters;
use crate::chain::{
    AccountInfo, CertificateFilter, CertificateResponse, Chain, DeploymentFilters, LeaseFilters,
    MarketParams, Order, OrderFilters, Page, PageRequest, Provider, QueryBidResponse,
    QueryDeploymentResponse, QueryLeaseResponse, TxResult,
};
use crate::error::{ChainError, Result};
use crate::events::{AkashEvent, BlockEvents};
use crate::tx::tx_hash;

/// What the fake chain holds. Tests may read and change it through [`FakeChain::state`].
#[derive(Debug, Default)]
pub struct FakeState {
    pub height: u64,
    pub accounts: HashMap<String, AccountInfo>,
    /// (address, denom) → amount.
    pub balances: HashMap<(String, String), u128>,
    pub orders: Vec<Order>,
    pub bids: Vec<QueryBidResponse>,
    pub leases: Vec<QueryLeaseResponse>,
    pub deployments: Vec<QueryDeploymentResponse>,
    pub providers: Vec<Provider>,
    pub certificates: Vec<CertificateResponse>,
    /// How many certificate queries were answered (tests of caches count them).
    pub certificate_queries: u64,
    /// How many order queries were answered (one per page).
    pub order_queries: u64,
    /// Audited provider attributes (one entry per provider and auditor), as tests set them.
    pub audited_providers: Vec<crate::akash::audit::v1::AuditedProvider>,
    pub market_params: MarketParams,
    /// The messages of every successful broadcast, one entry per transaction.
    pub broadcasts: Vec<Vec<prost_types::Any>>,
    /// Errors the next broadcasts fail with, in order (nothing is recorded for those).
    pub broadcast_errors: VecDeque<ChainError>,
    /// Blocks pushed by the test.
    pub blocks: Vec<BlockEvents>,
}

/// The in-memory chain. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct FakeChain {
    address: Arc<str>,
    state: Arc<Mutex<FakeState>>,
    new_block: Arc<Notify>,
    gate: Arc<watch::Sender<Gate>>,
}

/// Whether broadcasts are held back ([`FakeChain::hold_broadcasts`]), and how many wait.
#[derive(Debug, Default, Clone, Copy)]
struct Gate {
    held: bool,
    waiting: usize,
}

impl FakeChain {
    /// A chain whose client signs as `address`.
    pub fn new(address: &str) -> Self {
        Self {
            address: address.into(),
            state: Arc::new(Mutex::new(FakeState {
                height: 1,
                ..Default::default()
            })),
            new_block: Arc::new(Notify::new()),
            gate: Arc::new(watch::Sender::new(Gate::default())),
        }
    }

    /// Makes broadcasts wait, as transactions do in the mempool, until
    /// [`Self::release_broadcasts`].
    pub fn hold_broadcasts(&self) {
        self.gate.send_modify(|g| g.held = true);
    }

    /// Lets the held broadcasts (and later ones) through.
    pub fn release_broadcasts(&self) {
        self.gate.send_modify(|g| g.held = false);
    }

    /// Returns once `n` broadcasts are held back at the same time.
    pub async fn broadcasts_waiting(&self, n: usize) {
        let mut gate = self.gate.subscribe();
        // The sender lives in `self`: the channel cannot close while this waits.
        let _ = gate.wait_for(|g| g.waiting >= n).await;
    }

    /// The state, for a test to set up or inspect.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the next broadcast fail with `error`.
    pub fn fail_next_broadcast(&self, error: ChainError) {
        self.state().broadcast_errors.push_back(error);
    }

    /// The messages of every successful broadcast, flattened, decoded as `M` where the type
    /// matches.
    pub fn broadcast_msgs<M: Message + Name + Default>(&self) -> Vec<M> {
        self.state()
            .broadcasts
            .iter()
            .flatten()
            .filter(|a| a.type_url == M::type_url())
            .filter_map(|a| M::decode(a.value.as_slice()).ok())
            .collect()
    }

    /// Appends a block of events at the next height (and moves the chain's height there).
    pub fn push_events(&self, events: Vec<AkashEvent>) -> u64 {
        let height = {
            let mut st = self.state();
            st.height += 1;
            let height = st.height;
            st.blocks.push(BlockEvents { height, events });
            height
        };
        self.new_block.notify_waiters();
        height
    }

    fn apply(st: &mut FakeState, msg: &prost_types::Any) -> Result<()> {
        if msg.type_url == MsgCreateBid::type_url() {
            let m = MsgCreateBid::decode(msg.value.as_slice())
                .map_err(|e| ChainError::Decode(e.to_string()))?;
            let id = m.id.clone().unwrap_or_default();
            // An order the test put in must be open, as on chain (market code 13).
            let order = st.orders.iter().find(|o| {
                o.id.as_ref().is_some_and(|o| {
                    (o.owner.as_str(), o.dseq, o.gseq, o.oseq)
                        == (id.owner.as_str(), id.dseq, id.gseq, id.oseq)
                })
            });
            if order.is_some_and(|o| {
                o.state != crate::akash::market::v1beta5::order::State::Open as i32
            }) {
                return Err(ChainError::Other {
                    codespace: "market".into(),
                    code: 13,
                    log: "bid: order not open".into(),
                });
            }
            if st
                .bids
                .iter()
                .any(|b| b.bid.as_ref().and_then(|b| b.id.as_ref()) == Some(&id))
            {
                return Err(ChainError::Other {
                    codespace: "market".into(),
                    code: 12,
                    log: "bid already exists".into(),
                });
            }
            st.bids.push(QueryBidResponse {
                bid: Some(Bid {
                    id: Some(id),
                    state: bid::State::Open as i32,
                    price: m.price,
                    created_at: st.height as i64,
                    resources_offer: m.resources_offer,
                    reclamation_window: m.reclamation_window,
                }),
                escrow_account: None,
            });
        } else if msg.type_url == MsgCloseBid::type_url() {
            let m = MsgCloseBid::decode(msg.value.as_slice())
                .map_err(|e| ChainError::Decode(e.to_string()))?;
            let found = st
                .bids
                .iter_mut()
                .filter_map(|b| b.bid.as_mut())
                .find(|b| b.id == m.id);
            match found {
                Some(b) => b.state = bid::State::Closed as i32,
                None => {
                    return Err(ChainError::Other {
                        codespace: "market".into(),
                        code: 3,
                        log: "unknown bid".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

fn page_of<T: Clone>(items: Vec<T>, page: &PageRequest) -> Page<T> {
    let start: usize = std::str::from_utf8(&page.key)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let limit = if page.limit == 0 {
        100
    } else {
        page.limit as usize
    };
    let end = start.saturating_add(limit).min(items.len());
    let next_key = (end < items.len()).then(|| end.to_string().into_bytes());
    Page {
        items: items.get(start..end).map(<[T]>::to_vec).unwrap_or_default(),
        next_key,
    }
}

fn matches_str(filter: &str, value: &str) -> bool {
    filter.is_empty() || filter == value
}

fn matches_num<N: PartialEq + Default>(filter: N, value: N) -> bool {
    filter == N::default() || filter == value
}

fn bid_matches(f: &BidFilters, id: &BidId, state: &str) -> bool {
    matches_str(&f.owner, &id.owner)
        && matches_num(f.dseq, id.dseq)
        && matches_num(f.gseq, id.gseq)
        && matches_num(f.oseq, id.oseq)
        && matches_str(&f.provider, &id.provider)
        && matches_str(&f.state, state)
}

#[async_trait]
impl Chain for FakeChain {
    fn address(&self) -> &str {
        &self.address
    }

    async fn latest_height(&self) -> Result<u64> {
        Ok(self.state().height)
    }

    async fn account(&self, address: &str) -> Result<AccountInfo> {
        self.state()
            .accounts
            .get(address)
            .cloned()
            .ok_or_else(|| ChainError::Other {
                codespace: "sdk".into(),
                code: 22,
                log: format!("account {address} not found"),
            })
    }

    async fn balance(&self, address: &str, denom: &str) -> Result<u128> {
        Ok(self
            .state()
            .balances
            .get(&(address.to_owned(), denom.to_owned()))
            .copied()
            .unwrap_or(0))
    }

    async fn orders(&self, f: OrderFilters, page: PageRequest) -> Result<Page<Order>> {
        let mut st = self.state();
        st.order_queries += 1;
        let items = st
            .orders
            .iter()
            .filter(|o| {
                let id = o.id.clone().unwrap_or_default();
                matches_str(&f.owner, &id.owner)
                    && matches_num(f.dseq, id.dseq)
                    && matches_num(f.gseq, id.gseq)
                    && matches_num(f.oseq, id.oseq)
                    && matches_str(&f.state, o.state().as_str_name())
            })
            .cloned()
            .collect();
        Ok(page_of(items, &page))
    }

    async fn bids(&self, f: BidFilters, page: PageRequest) -> Result<Page<QueryBidResponse>> {
        let items = self
            .state()
            .bids
            .iter()
            .filter(|b| {
                let bid = b.bid.clone().unwrap_or_default();
                bid_matches(
                    &f,
                    &bid.id.clone().unwrap_or_default(),
                    bid.state().as_str_name(),
                )
            })
            .cloned()
            .collect();
        Ok(page_of(items, &page))
    }

    async fn leases(&self, f: LeaseFilters, page: PageRequest) -> Result<Page<QueryLeaseResponse>> {
        let items = self
            .state()
            .leases
            .iter()
            .filter(|l| {
                let lease = l.lease.clone().unwrap_or_default();
                let id = lease.id.clone().unwrap_or_default();
                matches_str(&f.owner, &id.owner)
                    && matches_num(f.dseq, id.dseq)
                    && matches_num(f.gseq, id.gseq)
                    && matches_num(f.oseq, id.oseq)
                    && matches_str(&f.provider, &id.provider)
                    && matches_str(&f.state, lease.state().as_str_name())
            })
            .cloned()
            .collect();
        Ok(page_of(items, &page))
    }

    async fn deployments(
        &self,
        f: DeploymentFilters,
        page: PageRequest,
    ) -> Result<Page<QueryDeploymentResponse>> {
        let items = self
            .state()
            .deployments
            .iter()
            .filter(|d| {
                let dep = d.deployment.clone().unwrap_or_default();
                let id = dep.id.clone().unwrap_or_default();
                matches_str(&f.owner, &id.owner)
                    && matches_num(f.dseq, id.dseq)
                    && matches_str(&f.state, dep.state().as_str_name())
            })
            .cloned()
            .collect();
        Ok(page_of(items, &page))
    }

    async fn providers(&self, page: PageRequest) -> Result<Page<Provider>> {
        Ok(page_of(self.state().providers.clone(), &page))
    }

    async fn provider(&self, owner: &str) -> Result<Option<Provider>> {
        Ok(self
            .state()
            .providers
            .iter()
            .find(|p| p.owner == owner)
            .cloned())
    }

    async fn certificates(
        &self,
        f: CertificateFilter,
        page: PageRequest,
    ) -> Result<Page<CertificateResponse>> {
        let mut st = self.state();
        st.certificate_queries += 1;
        let items = st
            .certificates
            .iter()
            .filter(|c| {
                let state = c
                    .certificate
                    .as_ref()
                    .map(|c| c.state().as_str_name())
                    .unwrap_or_default();
                matches_str(&f.serial, &c.serial) && matches_str(&f.state, state)
            })
            .cloned()
            .collect();
        Ok(page_of(items, &page))
    }

    async fn market_params(&self) -> Result<MarketParams> {
        Ok(self.state().market_params.clone())
    }

    async fn provider_audited_attributes(
        &self,
        owner: &str,
    ) -> Result<Vec<crate::akash::audit::v1::AuditedProvider>> {
        Ok(self
            .state()
            .audited_providers
            .iter()
            .filter(|p| p.owner == owner)
            .cloned()
            .collect())
    }

    async fn broadcast(&self, msgs: Vec<prost_types::Any>) -> Result<TxResult> {
        if self.gate.borrow().held {
            let mut gate = self.gate.subscribe();
            self.gate.send_modify(|g| g.waiting += 1);
            let _ = gate.wait_for(|g| !g.held).await;
            self.gate.send_modify(|g| g.waiting -= 1);
        }
        let mut st = self.state();
        if let Some(e) = st.broadcast_errors.pop_front() {
            return Err(e);
        }
        if msgs.is_empty() {
            return Err(ChainError::Invalid(
                "a transaction needs at least one message".into(),
            ));
        }
        // All or nothing, as a transaction: apply to a copy of the bids first.
        let saved_bids = st.bids.clone();
        for m in &msgs {
            if let Err(e) = Self::apply(&mut st, m) {
                st.bids = saved_bids;
                return Err(e);
            }
        }
        let bytes: Vec<u8> = msgs.iter().flat_map(|m| m.encode_to_vec()).collect();
        st.broadcasts.push(msgs);
        Ok(TxResult {
            hash: tx_hash(&bytes),
            height: st.height,
            code: 0,
            codespace: String::new(),
            log: String::new(),
            gas_wanted: 0,
            gas_used: 0,
        })
    }

    fn events(&self, from_height: u64) -> BoxStream<'static, Result<BlockEvents>> {
        let state = self.state.clone();
        let notify = self.new_block.clone();
        Box::pin(stream::unfold(from_height, move |next| {
            let state = state.clone();
            let notify = notify.clone();
            async move {
                loop {
                    // Register for the wake-up before looking, so a push in between is not lost.
                    let notified = notify.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    let found = state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .blocks
                        .iter()
                        .find(|b| b.height >= next)
                        .cloned();
                    if let Some(block) = found {
                        let after = block.height + 1;
                        return Some((Ok(block), after));
                    }
                    notified.await;
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::akash::market::v1::{EventOrderCreated, OrderId};
    use crate::akash::market::v1beta5::order;
    use crate::chain::collect_all;
    use crate::to_any;
    use futures::StreamExt;
    use std::time::Duration;

    fn order(owner: &str, dseq: u64, state: order::State) -> Order {
        Order {
            id: Some(OrderId {
                owner: owner.into(),
                dseq,
                gseq: 1,
                oseq: 1,
            }),
            state: state as i32,
            ..Default::default()
        }
    }

    fn bid_id(dseq: u64) -> BidId {
        BidId {
            owner: "t".into(),
            dseq,
            gseq: 1,
            oseq: 1,
            provider: "akash1me".into(),
            bseq: 0,
        }
    }

    #[tokio::test]
    async fn orders_are_filtered_and_paged() {
        let fake = FakeChain::new("akash1me");
        fake.state().orders = (1..=5)
            .map(|d| order("t", d, order::State::Open))
            .chain([
                order("t", 6, order::State::Closed),
                order("u", 7, order::State::Open),
            ])
            .collect();
        let chain: Arc<dyn Chain> = Arc::new(fake);
        let open = collect_all(2, |p| {
            chain.orders(
                OrderFilters {
                    owner: "t".into(),
                    state: "open".into(),
                    ..Default::default()
                },
                p,
            )
        })
        .await
        .unwrap();
        let dseqs: Vec<u64> = open.iter().map(|o| o.id.as_ref().unwrap().dseq).collect();
        assert_eq!(dseqs, vec![1, 2, 3, 4, 5]);
        let first = chain
            .orders(OrderFilters::default(), PageRequest::first(3))
            .await
            .unwrap();
        assert_eq!(first.items.len(), 3);
        assert_eq!(first.next_key, Some(b"3".to_vec()));
    }

    #[tokio::test]
    async fn broadcasts_are_recorded_and_bids_applied() {
        let fake = FakeChain::new("akash1me");
        let chain: Arc<dyn Chain> = Arc::new(fake.clone());
        chain
            .broadcast(vec![
                to_any(&MsgCreateBid {
                    id: Some(bid_id(1)),
                    ..Default::default()
                }),
                to_any(&MsgCreateBid {
                    id: Some(bid_id(2)),
                    ..Default::default()
                }),
            ])
            .await
            .unwrap();
        chain
            .broadcast(vec![to_any(&MsgCloseBid {
                id: Some(bid_id(1)),
                reason: 0,
            })])
            .await
            .unwrap();
        assert_eq!(fake.broadcast_msgs::<MsgCreateBid>().len(), 2);
        assert_eq!(fake.state().broadcasts.len(), 2);
        let open = chain
            .bids(
                BidFilters {
                    state: "open".into(),
                    ..Default::default()
                },
                PageRequest::default(),
            )
            .await
            .unwrap();
        assert_eq!(open.items.len(), 1);
        assert_eq!(open.items[0].bid.as_ref().unwrap().id, Some(bid_id(2)));

        // A duplicate bid fails the whole transaction; nothing is recorded.
        let err = chain
            .broadcast(vec![
                to_any(&MsgCreateBid {
                    id: Some(bid_id(3)),
                    ..Default::default()
                }),
                to_any(&MsgCreateBid {
                    id: Some(bid_id(2)),
                    ..Default::default()
                }),
            ])
            .await
            .unwrap_err();
        assert_eq!(err.metric_label(), "other");
        assert_eq!(fake.state().bids.len(), 2);
        assert_eq!(fake.state().broadcasts.len(), 2);
    }

    #[tokio::test]
    async fn audited_attributes_are_those_set_for_the_provider() {
        use crate::akash::audit::v1::AuditedProvider;
        use crate::akash::base::attributes::v1::Attribute;
        let fake = FakeChain::new("akash1me");
        let entry = |owner: &str, auditor: &str| AuditedProvider {
            owner: owner.into(),
            auditor: auditor.into(),
            attributes: vec![Attribute {
                key: "tier".into(),
                value: "community".into(),
            }],
        };
        fake.state().audited_providers = vec![
            entry("akash1p", "akash1a"),
            entry("akash1q", "akash1a"),
            entry("akash1p", "akash1b"),
        ];
        let got = fake.provider_audited_attributes("akash1p").await.unwrap();
        let auditors: Vec<&str> = got.iter().map(|p| p.auditor.as_str()).collect();
        assert_eq!(auditors, vec!["akash1a", "akash1b"]);
        assert!(
            fake.provider_audited_attributes("akash1z")
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn scripted_broadcast_errors_come_first() {
        let fake = FakeChain::new("akash1me");
        fake.fail_next_broadcast(ChainError::from_abci("sdk", 5, "insufficient funds"));
        let msg = vec![to_any(&MsgCloseBid::default())];
        let err = fake.broadcast(msg.clone()).await.unwrap_err();
        assert_eq!(err.metric_label(), "insufficient_funds");
        assert!(fake.state().broadcasts.is_empty());
    }

    fn created(dseq: u64) -> AkashEvent {
        AkashEvent::OrderCreated(EventOrderCreated {
            id: Some(OrderId {
                owner: "t".into(),
                dseq,
                gseq: 1,
                oseq: 1,
            }),
        })
    }

    #[tokio::test]
    async fn pushed_events_stream_from_the_requested_height() {
        let fake = FakeChain::new("akash1me");
        let h2 = fake.push_events(vec![created(1)]);
        let h3 = fake.push_events(vec![created(2)]);
        assert_eq!((h2, h3), (2, 3));
        let mut s = fake.events(3);
        assert_eq!(s.next().await.unwrap().unwrap().events, vec![created(2)]);
        // Nothing yet: the stream waits, then sees a block pushed later.
        assert!(
            tokio::time::timeout(Duration::from_millis(20), s.next())
                .await
                .is_err()
        );
        let pusher = fake.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            pusher.push_events(vec![created(3)]);
        });
        let b = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .expect("the pushed block arrives")
            .unwrap()
            .unwrap();
        assert_eq!((b.height, b.events), (4, vec![created(3)]));
        assert_eq!(fake.latest_height().await.unwrap(), 4);
    }
}
