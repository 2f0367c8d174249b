use super::*;
use crate::ante::{Mode, Params, TxResult, parse_gas_prices, run_tx};
use crate::genesis::{GENESIS_AMOUNT, TestAccount, genesis_state, test_accounts};
use crate::sign::{SignOpts, any_of, create_deployment_msg, sign_tx};
use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::provider::v1beta4::MsgCreateProvider;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin as ProtoCoin;

const CHAIN: &str = "devnet-close";

/// Tenant 0 with deployment 1 (one group); providers 2 and 3 registered and bidding; a lease on
/// provider 3's bid.
struct World {
    state: State,
    accounts: Vec<TestAccount>,
    seqs: [u64; 4],
}

impl World {
    fn tx(&mut self, who: usize, msg: cosmrs::Any) -> TxResult {
        let raw = sign_tx(
            &self.accounts[who].key,
            vec![msg],
            &SignOpts::new(CHAIN, who as u64, self.seqs[who]),
        )
        .unwrap();
        self.seqs[who] += 1;
        run_tx(
            &mut self.state,
            &raw,
            Mode::Deliver,
            &Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap()),
        )
    }

    fn bid_id(&self, p: usize) -> mv1::BidId {
        mv1::BidId {
            owner: self.accounts[0].address.clone(),
            dseq: 1,
            gseq: 1,
            oseq: 1,
            provider: self.accounts[p].address.clone(),
            bseq: 0,
        }
    }

    fn new(lease: bool) -> Self {
        let mut w = Self {
            state: genesis_state(CHAIN).unwrap(),
            accounts: test_accounts().unwrap(),
            seqs: [0; 4],
        };
        let d = create_deployment_msg(&w.accounts[0].address, 1, &["g"], [5; 32]);
        assert_eq!(w.tx(0, any_of(&d)).code, 0);
        for p in [2, 3] {
            let reg = MsgCreateProvider {
                owner: w.accounts[p].address.clone(),
                host_uri: "https://127.0.0.1:8443".into(),
                attributes: vec![],
                info: None,
            };
            assert_eq!(w.tx(p, any_of(&reg)).code, 0);
            let bid = mv1beta5::MsgCreateBid {
                id: Some(w.bid_id(p)),
                price: Some(chain_client::dec::dec_coin("uact", "500").unwrap()),
                deposit: Some(Deposit {
                    amount: Some(ProtoCoin {
                        denom: "uact".into(),
                        amount: "500000".into(),
                    }),
                    sources: vec![Source::Balance as i32],
                }),
                resources_offer: vec![],
                reclamation_window: None,
            };
            assert_eq!(w.tx(p, any_of(&bid)).code, 0);
        }
        if lease {
            let l = mv1beta5::MsgCreateLease {
                bid_id: Some(w.bid_id(3)),
            };
            assert_eq!(w.tx(0, any_of(&l)).code, 0);
        }
        w
    }

    fn uact(&self, who: usize) -> u128 {
        self.state.balance(&self.accounts[who].address, "uact")
    }
}

#[test]
fn closing_an_open_bid_refunds_it() {
    let mut w = World::new(false);
    assert_eq!(w.uact(2), GENESIS_AMOUNT - 500_000);
    let close = mv1beta5::MsgCloseBid {
        id: Some(w.bid_id(2)),
        reason: 0,
    };
    let r = w.tx(2, any_of(&close));
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(w.uact(2), GENESIS_AMOUNT);
    assert_eq!(
        w.state.bids[&bid_key(&w.bid_id(2))].0.state,
        mv1beta5::bid::State::Closed as i32
    );
    assert!(
        r.events
            .iter()
            .any(|e| e.kind == "akash.market.v1.EventBidClosed")
    );
    // Again: the bid is no longer open.
    let r = w.tx(2, any_of(&close));
    assert_eq!((r.code, r.codespace.as_str()), (11, "market"));
}

#[test]
fn closing_an_active_bid_closes_the_lease_and_order_and_pauses_the_group() {
    let mut w = World::new(true);
    let close = mv1beta5::MsgCloseBid {
        id: Some(w.bid_id(3)),
        reason: mv1::LeaseClosedReason::Unstable as i32,
    };
    let r = w.tx(3, any_of(&close));
    assert_eq!(r.code, 0, "{}", r.log);
    let lease = &w.state.leases[&bid_key(&w.bid_id(3))].0;
    assert_eq!(
        (lease.state, lease.reason),
        (
            mv1::lease::State::Closed as i32,
            mv1::LeaseClosedReason::Unstable as i32
        )
    );
    let owner = w.accounts[0].address.clone();
    assert_eq!(
        w.state.orders[&keys::order(&owner, 1, 1, 1)].0.state,
        mv1beta5::order::State::Closed as i32
    );
    assert_eq!(
        w.state.groups[&keys::group(&owner, 1, 1)].0.state,
        dv1beta4::group::State::Paused as i32
    );
    assert_eq!(w.uact(3), GENESIS_AMOUNT);
    let closed = r
        .events
        .iter()
        .find(|e| e.kind == "akash.market.v1.EventLeaseClosed")
        .unwrap();
    assert_eq!(
        closed.get("reason"),
        Some("\"lease_closed_reason_unstable\"")
    );
}

#[test]
fn closing_the_deployment_closes_everything_and_refunds_the_escrow() {
    let mut w = World::new(true);
    assert_eq!(w.uact(0), GENESIS_AMOUNT - 500_000);
    let close = dv1beta4::MsgCloseDeployment {
        id: Some(dv1::DeploymentId {
            owner: w.accounts[0].address.clone(),
            dseq: 1,
        }),
    };
    let r = w.tx(0, any_of(&close));
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(w.uact(0), GENESIS_AMOUNT);
    assert_eq!(w.uact(3), GENESIS_AMOUNT);
    assert_eq!(w.uact(2), GENESIS_AMOUNT);
    assert!(
        w.state
            .bids
            .values()
            .all(|b| b.0.state != mv1beta5::bid::State::Open as i32
                && b.0.state != mv1beta5::bid::State::Active as i32)
    );
    assert!(
        w.state
            .orders
            .values()
            .all(|o| o.0.state == mv1beta5::order::State::Closed as i32)
    );
    assert!(
        w.state
            .groups
            .values()
            .all(|g| g.0.state == dv1beta4::group::State::Closed as i32)
    );
    let lease = w.state.leases.values().next().unwrap();
    assert_eq!(
        lease.0.reason,
        mv1::LeaseClosedReason::LeaseClosedOwner as i32
    );
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "akash.market.v1.EventLeaseClosed",
        "akash.market.v1.EventOrderClosed",
        "akash.deployment.v1.EventGroupClosed",
        "akash.deployment.v1.EventDeploymentClosed",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let r = w.tx(0, any_of(&close));
    assert_eq!((r.code, r.codespace.as_str()), (5, "deployment"));
}

#[test]
fn the_tenant_closing_a_lease_pays_the_provider_and_reopens_the_order() {
    let mut w = World::new(true);
    w.state.height = 40; // the lease started at height 1; it closes at 41
    let lease_id = w.state.leases.values().next().unwrap().0.id.clone();
    let close = mv1beta5::MsgCloseLease {
        id: lease_id,
        reason: 0,
    };
    let r = w.tx(0, any_of(&close));
    assert_eq!(r.code, 0, "{}", r.log);
    let lease = w.state.leases.values().next().unwrap().0.clone();
    assert_eq!(
        (lease.state, lease.reason),
        (
            mv1::lease::State::Closed as i32,
            mv1::LeaseClosedReason::LeaseClosedOwner as i32
        )
    );
    // Deposit back, and 40 blocks at 500 uact paid out.
    assert_eq!(w.uact(3), GENESIS_AMOUNT + 40 * 500);
    let payment = w
        .state
        .payments
        .values()
        .next()
        .unwrap()
        .0
        .state
        .clone()
        .unwrap();
    assert_eq!(payment.withdrawn.unwrap().amount, (40 * 500).to_string());
    assert_eq!(payment.balance.unwrap().amount, "0");
    let owner = w.accounts[0].address.clone();
    assert_eq!(
        w.state.orders[&keys::order(&owner, 1, 1, 1)].0.state,
        mv1beta5::order::State::Closed as i32
    );
    let next = &w.state.orders[&keys::order(&owner, 1, 1, 2)].0;
    assert_eq!(
        (next.state, next.created_at),
        (mv1beta5::order::State::Open as i32, 41)
    );
    let r = w.tx(0, any_of(&close));
    assert_eq!((r.code, r.codespace.as_str()), (10, "market"));
}
