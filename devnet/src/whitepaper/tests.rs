use super::*;
use crate::ante::{Mode, Params, TxResult, parse_gas_prices, run_tx};
use crate::genesis::{GENESIS_AMOUNT, TestAccount, genesis_state, test_accounts};
use crate::sign::{SignOpts, any_of, create_deployment_msg, sign_tx};
use crate::state::keys;
use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::provider::v1beta4::MsgCreateProvider;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin as ProtoCoin;

const CHAIN: &str = "devnet-whitepaper";

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

    /// Deployment 1 of tenant 0 at height 1; providers 1, 2, 3 bid the given prices, in order.
    fn with_bids(prices: [&str; 3]) -> Self {
        let mut w = Self {
            state: genesis_state(CHAIN).unwrap(),
            accounts: test_accounts().unwrap(),
            seqs: [0; 4],
        };
        let d = create_deployment_msg(&w.accounts[0].address, 1, &["g"], [5; 32]);
        assert_eq!(w.tx(0, any_of(&d)).code, 0);
        for (i, price) in prices.iter().enumerate() {
            let p = i + 1;
            let reg = MsgCreateProvider {
                owner: w.accounts[p].address.clone(),
                host_uri: "https://127.0.0.1:8443".into(),
                attributes: vec![],
                info: None,
            };
            assert_eq!(w.tx(p, any_of(&reg)).code, 0);
            w.state.height = p as u64; // each bid one block after the previous
            let bid = mv1beta5::MsgCreateBid {
                id: Some(w.bid_id(p)),
                price: Some(chain_client::dec::dec_coin("uact", price).unwrap()),
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
        w
    }
}

#[test]
fn rules_off_change_nothing() {
    let mut w = World::with_bids(["300", "200", "200"]);
    let before = w.state.clone();
    assert!(end_block(&mut w.state, 1_000, &WhitepaperRules::default()).is_empty());
    assert_eq!(w.state, before);
}

#[test]
fn matching_waits_then_leases_the_lowest_price_earliest_on_ties() {
    let mut w = World::with_bids(["300", "200", "200"]);
    let rules = WhitepaperRules {
        match_after_blocks: 10,
        reconfirmation_blocks: 0,
    };
    // The order was created at height 1: nothing before height 11.
    assert!(end_block(&mut w.state, 10, &rules).is_empty());
    assert!(w.state.leases.is_empty());
    let events = end_block(&mut w.state, 11, &rules);
    assert_eq!(w.state.leases.len(), 1);
    // Providers 2 and 3 tie at 200; provider 2 bid first.
    let lease = w.state.leases.values().next().unwrap().0.clone();
    assert_eq!(lease.id.unwrap().provider, w.accounts[2].address);
    assert!(
        events
            .iter()
            .any(|e| e.kind == "akash.market.v1.EventLeaseCreated")
    );
    assert!(events.iter().all(|e| e.kind != "message"));
    assert_eq!(
        w.state.bids[&crate::market::bid_key(&w.bid_id(1))].0.state,
        mv1beta5::bid::State::Lost as i32
    );
    // Matched once: the order is active now.
    assert!(end_block(&mut w.state, 12, &rules).is_empty());
}

#[test]
fn an_unconfirmed_lease_is_closed_its_collateral_goes_to_the_tenant_and_the_order_reopens() {
    let mut w = World::with_bids(["300", "200", "250"]);
    let lease = mv1beta5::MsgCreateLease {
        bid_id: Some(w.bid_id(2)),
    };
    w.state.height = 4;
    assert_eq!(w.tx(0, any_of(&lease)).code, 0); // lease created at height 5
    let rules = WhitepaperRules {
        match_after_blocks: 0,
        reconfirmation_blocks: 20,
    };
    // A confirmation at height 20 keeps it alive past 25.
    w.state.height = 19;
    let withdraw = mv1beta5::MsgWithdrawLease {
        id: w.state.leases.values().next().unwrap().0.id.clone(),
    };
    assert_eq!(w.tx(2, any_of(&withdraw)).code, 0);
    assert!(end_block(&mut w.state, 40, &rules).is_empty());
    let tenant_uact = w.state.balance(&w.accounts[0].address, "uact");
    let events = end_block(&mut w.state, 41, &rules);
    let lease = w.state.leases.values().next().unwrap().0.clone();
    assert_eq!(
        (lease.state, lease.reason),
        (
            mv1::lease::State::Closed as i32,
            mv1::LeaseClosedReason::Unstable as i32
        )
    );
    // The provider's 500000 uact deposit went to the tenant; the unconfirmed blocks are not paid.
    assert_eq!(
        w.state.balance(&w.accounts[0].address, "uact"),
        tenant_uact + 500_000
    );
    assert!(w.state.balance(&w.accounts[2].address, "uact") < GENESIS_AMOUNT);
    let owner = w.accounts[0].address.clone();
    let reopened = &w.state.orders[&keys::order(&owner, 1, 1, 2)].0;
    assert_eq!(
        (reopened.state, reopened.created_at),
        (mv1beta5::order::State::Open as i32, 41)
    );
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"akash.market.v1.EventLeaseClosed"),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"akash.market.v1.EventOrderCreated"),
        "{kinds:?}"
    );
    assert_eq!(
        w.state.orders[&keys::order(&owner, 1, 1, 1)].0.state,
        mv1beta5::order::State::Closed as i32
    );
}
