use super::*;
use crate::ante::{Mode, Params, parse_gas_prices, run_tx};
use crate::genesis::{GENESIS_AMOUNT, genesis_state, test_accounts};
use crate::sign::{SignOpts, any_of, create_deployment_msg, sign_tx};
use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::provider::v1beta4::MsgCreateProvider;

const CHAIN: &str = "devnet-lease";

fn params() -> Params {
    Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap())
}

#[test]
fn the_tenant_picks_a_bid_the_others_lose_and_are_refunded() {
    let accounts = test_accounts().unwrap();
    let mut state = genesis_state(CHAIN).unwrap();
    let tenant = &accounts[0];
    let deliver = |state: &mut State, who: usize, seq: u64, msg: cosmrs::Any| {
        let raw = sign_tx(
            &accounts[who].key,
            vec![msg],
            &SignOpts::new(CHAIN, who as u64, seq),
        )
        .unwrap();
        run_tx(state, &raw, Mode::Deliver, &params())
    };
    let d = create_deployment_msg(&tenant.address, 1, &["g"], [2; 32]);
    assert_eq!(deliver(&mut state, 0, 0, any_of(&d)).code, 0);
    let bid_id = |p: usize| mv1::BidId {
        owner: tenant.address.clone(),
        dseq: 1,
        gseq: 1,
        oseq: 1,
        provider: accounts[p].address.clone(),
        bseq: 0,
    };
    for (p, price) in [(2usize, "800"), (3, "600")] {
        let reg = MsgCreateProvider {
            owner: accounts[p].address.clone(),
            host_uri: "https://127.0.0.1:8443".into(),
            attributes: vec![],
            info: None,
        };
        assert_eq!(deliver(&mut state, p, 0, any_of(&reg)).code, 0);
        let bid = mv1beta5::MsgCreateBid {
            id: Some(bid_id(p)),
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
        assert_eq!(deliver(&mut state, p, 1, any_of(&bid)).code, 0);
    }
    // A lease on a bid that does not exist.
    let r = deliver(
        &mut state,
        0,
        1,
        any_of(&mv1beta5::MsgCreateLease {
            bid_id: Some(mv1::BidId {
                bseq: 0,
                ..bid_id(1)
            }),
        }),
    );
    assert_eq!((r.code, r.codespace.as_str()), (18, "market"));

    // The tenant takes the cheaper bid (provider 3).
    let r = deliver(
        &mut state,
        0,
        2,
        any_of(&mv1beta5::MsgCreateLease {
            bid_id: Some(bid_id(3)),
        }),
    );
    assert_eq!(r.code, 0, "{}", r.log);
    let lease = &state.leases[&bid_key(&bid_id(3))].0;
    assert_eq!(lease.state, mv1::lease::State::Active as i32);
    assert_eq!(
        chain_client::dec::dec_coin_amount(lease.price.as_ref().unwrap()).unwrap(),
        "600"
    );
    assert_eq!(
        state.bids[&bid_key(&bid_id(3))].0.state,
        mv1beta5::bid::State::Active as i32
    );
    assert_eq!(
        state.bids[&bid_key(&bid_id(2))].0.state,
        mv1beta5::bid::State::Lost as i32
    );
    let order = &state.orders[&keys::order(&tenant.address, 1, 1, 1)].0;
    assert_eq!(order.state, mv1beta5::order::State::Active as i32);
    // The loser got its deposit back; the winner's stays in escrow.
    assert_eq!(state.balance(&accounts[2].address, "uact"), GENESIS_AMOUNT);
    assert_eq!(
        state.balance(&accounts[3].address, "uact"),
        GENESIS_AMOUNT - 500_000
    );
    let payment = &state.payments[&bid_key(&bid_id(3))].0;
    assert_eq!(
        payment.id.as_ref().unwrap().xid,
        format!("1/1/{}", accounts[3].address)
    );
    let kinds: Vec<&str> = r.events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds.contains(&"akash.market.v1.EventBidClosed"),
        "{kinds:?}"
    );
    let created = r
        .events
        .iter()
        .find(|e| e.kind == "akash.market.v1.EventLeaseCreated")
        .unwrap();
    let price: serde_json::Value = serde_json::from_str(created.get("price").unwrap()).unwrap();
    assert_eq!(price["amount"], "600.000000000000000000");

    // The order is no longer open: a second lease on it fails.
    let r = deliver(
        &mut state,
        0,
        3,
        any_of(&mv1beta5::MsgCreateLease {
            bid_id: Some(bid_id(2)),
        }),
    );
    assert_eq!(r.code, 12, "{}", r.log);
}
