use super::*;
use crate::ante::{Mode, Params, TxResult, parse_gas_prices, run_tx};
use crate::genesis::{GENESIS_AMOUNT, TestAccount, genesis_state, test_accounts};
use crate::market::bid_key;
use crate::sign::{SignOpts, any_of, create_deployment_msg, sign_tx};
use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::provider::v1beta4::MsgCreateProvider;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin as ProtoCoin;

const CHAIN: &str = "devnet-group";

/// Tenant 0 with deployment 1 (groups 1 and 2); providers 2 and 3 registered and bidding on
/// group 1's order; a lease on provider 3's bid.
struct World {
    state: State,
    accounts: Vec<TestAccount>,
    seqs: [u64; 4],
}

impl World {
    /// `msg` signed by `key`'s key as account `who`.
    fn tx_signed(&mut self, key: usize, who: usize, msg: cosmrs::Any) -> TxResult {
        let raw = sign_tx(
            &self.accounts[key].key,
            vec![msg],
            &SignOpts::new(CHAIN, who as u64, self.seqs[who]),
        )
        .unwrap();
        let r = run_tx(
            &mut self.state,
            &raw,
            Mode::Deliver,
            &Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap()),
        );
        if r.codespace != "sdk" {
            self.seqs[who] += 1;
        }
        r
    }

    fn tx(&mut self, who: usize, msg: cosmrs::Any) -> TxResult {
        self.tx_signed(who, who, msg)
    }

    fn owner(&self) -> String {
        self.accounts[0].address.clone()
    }

    fn gid(&self, gseq: u32) -> dv1::GroupId {
        dv1::GroupId {
            owner: self.owner(),
            dseq: 1,
            gseq,
        }
    }

    fn bid_id(&self, p: usize, oseq: u32) -> mv1::BidId {
        mv1::BidId {
            owner: self.owner(),
            dseq: 1,
            gseq: 1,
            oseq,
            provider: self.accounts[p].address.clone(),
            bseq: 0,
        }
    }

    fn bid(&mut self, p: usize, oseq: u32) -> TxResult {
        let bid = mv1beta5::MsgCreateBid {
            id: Some(self.bid_id(p, oseq)),
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
        self.tx(p, any_of(&bid))
    }

    fn new() -> Self {
        let mut w = Self {
            state: genesis_state(CHAIN).unwrap(),
            accounts: test_accounts().unwrap(),
            seqs: [0; 4],
        };
        let d = create_deployment_msg(&w.owner(), 1, &["a", "b"], [5; 32]);
        assert_eq!(w.tx(0, any_of(&d)).code, 0);
        for p in [2, 3] {
            let reg = MsgCreateProvider {
                owner: w.accounts[p].address.clone(),
                host_uri: "https://127.0.0.1:8443".into(),
                attributes: vec![],
                info: None,
            };
            assert_eq!(w.tx(p, any_of(&reg)).code, 0);
            assert_eq!(w.bid(p, 1).code, 0);
        }
        let l = mv1beta5::MsgCreateLease {
            bid_id: Some(w.bid_id(3, 1)),
        };
        assert_eq!(w.tx(0, any_of(&l)).code, 0);
        w
    }

    fn group_state(&self, gseq: u32) -> i32 {
        self.state.groups[&keys::group(&self.owner(), 1, gseq)]
            .0
            .state
    }

    fn order(&self, gseq: u32, oseq: u32) -> &mv1beta5::Order {
        &self.state.orders[&keys::order(&self.owner(), 1, gseq, oseq)].0
    }

    fn lease(&self) -> &mv1::Lease {
        &self.state.leases[&bid_key(&self.bid_id(3, 1))].0
    }

    fn uact(&self, who: usize) -> u128 {
        self.state.balance(&self.accounts[who].address, "uact")
    }

    fn pause(&self) -> cosmrs::Any {
        any_of(&dv1beta4::MsgPauseGroup {
            id: Some(self.gid(1)),
        })
    }

    fn start(&self) -> cosmrs::Any {
        any_of(&dv1beta4::MsgStartGroup {
            id: Some(self.gid(1)),
        })
    }

    fn close(&self) -> cosmrs::Any {
        any_of(&dv1beta4::MsgCloseGroup {
            id: Some(self.gid(1)),
        })
    }
}

fn kinds(r: &TxResult) -> Vec<&str> {
    r.events.iter().map(|e| e.kind.as_str()).collect()
}

fn assert_err(r: &TxResult, code: u32, log: &str) {
    assert_eq!(
        (r.code, r.codespace.as_str()),
        (code, "deployment"),
        "{}",
        r.log
    );
    assert!(r.log.contains(log), "{}", r.log);
}

#[test]
fn a_provider_closing_its_lease_pauses_the_group_and_start_group_reopens_it() {
    let mut w = World::new();
    let close = mv1beta5::MsgCloseBid {
        id: Some(w.bid_id(3, 1)),
        reason: mv1::LeaseClosedReason::Unstable as i32,
    };
    assert_eq!(w.tx(3, any_of(&close)).code, 0);
    assert_eq!(w.group_state(1), GroupState::Paused as i32);
    w.state.height = 9; // the start runs in block 10
    let r = w.tx(0, w.start());
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(w.group_state(1), GroupState::Open as i32);
    let next = w.order(1, 2);
    assert_eq!(
        (
            next.state,
            next.created_at,
            next.spec.as_ref().unwrap().name.as_str()
        ),
        (mv1beta5::order::State::Open as i32, 10, "a")
    );
    let typed: Vec<&str> = kinds(&r)
        .into_iter()
        .filter(|k| k.starts_with("akash."))
        .collect();
    assert_eq!(
        typed,
        [
            "akash.deployment.v1.EventGroupStarted",
            "akash.market.v1.EventOrderCreated"
        ]
    );
    let created = r.events.last().unwrap();
    let id: serde_json::Value = serde_json::from_str(created.get("id").unwrap()).unwrap();
    assert_eq!(
        id,
        json!({"owner": w.owner(), "dseq": "1", "gseq": 1, "oseq": 2})
    );
    // Providers bid on the new order.
    let r = w.bid(2, 2);
    assert_eq!(r.code, 0, "{}", r.log);
}

#[test]
fn pausing_closes_the_groups_market_and_starting_opens_a_new_order() {
    let mut w = World::new();
    w.state.height = 40; // the lease started at height 1; it is paid up to 41
    let r = w.tx(0, w.pause());
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(w.group_state(1), GroupState::Paused as i32);
    assert_eq!(w.group_state(2), GroupState::Open as i32);
    assert_eq!(
        (w.lease().state, w.lease().reason),
        (
            mv1::lease::State::Closed as i32,
            mv1::LeaseClosedReason::LeaseClosedOwner as i32
        )
    );
    assert_eq!(w.order(1, 1).state, mv1beta5::order::State::Closed as i32);
    assert_eq!(w.order(2, 1).state, mv1beta5::order::State::Open as i32);
    // Deposits back; 40 blocks at 500 uact paid to the leased provider.
    assert_eq!(w.uact(2), GENESIS_AMOUNT);
    assert_eq!(w.uact(3), GENESIS_AMOUNT + 40 * 500);
    for k in [
        "akash.deployment.v1.EventGroupPaused",
        "akash.market.v1.EventOrderClosed",
        "akash.market.v1.EventLeaseClosed",
        "akash.market.v1.EventBidClosed",
    ] {
        assert!(kinds(&r).contains(&k), "{k} missing from {:?}", kinds(&r));
    }
    assert_err(&w.tx(0, w.pause()), 17, "Group paused");

    let r = w.tx(0, w.start());
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(w.group_state(1), GroupState::Open as i32);
    assert_eq!(w.order(1, 2).state, mv1beta5::order::State::Open as i32);
    assert_err(&w.tx(0, w.start()), 16, "Group open");
    // Paused again, then started: the third order.
    assert_eq!(w.tx(0, w.pause()).code, 0);
    assert_eq!(w.order(1, 2).state, mv1beta5::order::State::Closed as i32);
    assert_eq!(w.tx(0, w.start()).code, 0);
    assert_eq!(w.order(1, 3).state, mv1beta5::order::State::Open as i32);
}

#[test]
fn closing_a_group_closes_its_orders_bids_and_leases_for_good() {
    let mut w = World::new();
    let r = w.tx(0, w.close());
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(w.group_state(1), GroupState::Closed as i32);
    assert_eq!(w.group_state(2), GroupState::Open as i32);
    assert_eq!(w.lease().state, mv1::lease::State::Closed as i32);
    assert_eq!(w.order(1, 1).state, mv1beta5::order::State::Closed as i32);
    assert!(
        w.state
            .payments
            .values()
            .all(|p| p.0.state.as_ref().unwrap().state == escrow_closed())
    );
    assert_eq!((w.uact(2), w.uact(3)), (GENESIS_AMOUNT, GENESIS_AMOUNT));
    assert!(kinds(&r).contains(&"akash.deployment.v1.EventGroupClosed"));
    // The deployment stays active, with its other group.
    let d = &w.state.deployments[&keys::deployment(&w.owner(), 1)].0;
    assert_eq!(d.state, dv1::deployment::State::Active as i32);
    for msg in [w.close(), w.pause(), w.start()] {
        assert_err(&w.tx(0, msg), 15, "Group already closed");
    }
}

fn escrow_closed() -> i32 {
    chain_client::akash::escrow::types::v1::State::Closed as i32
}

#[test]
fn group_messages_need_the_owner_and_an_existing_group_of_an_active_deployment() {
    let mut w = World::new();
    // Provider 2 signs the tenant's message: the signature is not the owner's.
    let r = w.tx_signed(2, 0, w.pause());
    assert_eq!((r.code, r.codespace.as_str()), (4, "sdk"), "{}", r.log);
    assert_eq!(w.group_state(1), GroupState::Open as i32);
    // No such group, no such deployment.
    for (dseq, gseq) in [(1, 9), (7, 1)] {
        let id = dv1::GroupId {
            owner: w.owner(),
            dseq,
            gseq,
        };
        let msg = any_of(&dv1beta4::MsgPauseGroup { id: Some(id) });
        assert_err(&w.tx(0, msg), 14, "Group not found");
    }
    assert_err(&w.tx(0, w.start()), 16, "Group open");
    // A group whose deployment is closed is closed with it.
    let close = dv1beta4::MsgCloseDeployment {
        id: Some(dv1::DeploymentId {
            owner: w.owner(),
            dseq: 1,
        }),
    };
    assert_eq!(w.tx(0, any_of(&close)).code, 0);
    assert_err(&w.tx(0, w.start()), 15, "Group already closed");
    // A paused group of a closed deployment (not reachable through messages) does not start.
    let key = keys::group(&w.owner(), 1, 2);
    w.state.groups.get_mut(&key).unwrap().0.state = GroupState::Paused as i32;
    let msg = any_of(&dv1beta4::MsgStartGroup { id: Some(w.gid(2)) });
    assert_err(&w.tx(0, msg), 5, "Deployment closed");
}
