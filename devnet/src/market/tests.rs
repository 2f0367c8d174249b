use super::*;
use crate::ante::{Mode, Params, TxResult, parse_gas_prices, run_tx};
use crate::genesis::{GENESIS_AMOUNT, TestAccount, genesis_state, test_accounts};
use crate::sign::{SignOpts, any_of, create_deployment_msg, sign_tx};
use chain_client::akash::base::deposit::v1::Deposit;
use chain_client::akash::provider::v1beta4::MsgCreateProvider;

const CHAIN: &str = "devnet-market";

struct World {
    state: State,
    tenant: TestAccount,
    provider: TestAccount,
    seq: u64,
}

impl World {
    /// A tenant (account 1) with deployment 10 (one group priced 1000 uact), and a registered
    /// provider (account 3).
    fn new() -> Self {
        let mut accounts = test_accounts().unwrap();
        let provider = accounts.remove(3);
        let tenant = accounts.remove(1);
        let mut w = Self {
            state: genesis_state(CHAIN).unwrap(),
            tenant,
            provider,
            seq: 0,
        };
        let d = create_deployment_msg(&w.tenant.address, 10, &["g"], [1; 32]);
        let raw = sign_tx(&w.tenant.key, vec![any_of(&d)], &SignOpts::new(CHAIN, 1, 0)).unwrap();
        assert_eq!(run_tx(&mut w.state, &raw, Mode::Deliver, &params()).code, 0);
        let p = MsgCreateProvider {
            owner: w.provider.address.clone(),
            host_uri: "https://127.0.0.1:8443".into(),
            attributes: vec![],
            info: None,
        };
        assert_eq!(w.provider_tx(&p).code, 0);
        w
    }

    fn provider_tx<M: prost::Name>(&mut self, msg: &M) -> TxResult {
        let raw = sign_tx(
            &self.provider.key,
            vec![any_of(msg)],
            &SignOpts::new(CHAIN, 3, self.seq),
        )
        .unwrap();
        self.seq += 1;
        run_tx(&mut self.state, &raw, Mode::Deliver, &params())
    }

    fn bid(&self, price_uact: &str) -> mv1beta5::MsgCreateBid {
        mv1beta5::MsgCreateBid {
            id: Some(mv1::BidId {
                owner: self.tenant.address.clone(),
                dseq: 10,
                gseq: 1,
                oseq: 1,
                provider: self.provider.address.clone(),
                bseq: 0,
            }),
            price: Some(chain_client::dec::dec_coin("uact", price_uact).unwrap()),
            deposit: Some(Deposit {
                amount: Some(cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                    denom: "uact".into(),
                    amount: "500000".into(),
                }),
                sources: vec![Source::Balance as i32],
            }),
            resources_offer: vec![],
            reclamation_window: None,
        }
    }
}

fn params() -> Params {
    Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap())
}

#[test]
fn a_bid_at_or_below_the_order_price_is_stored_with_its_deposit_in_escrow() {
    let mut w = World::new();
    let r = w.provider_tx(&w.bid("999.5"));
    assert_eq!(r.code, 0, "{}", r.log);
    let (key, bid) = w.state.bids.iter().next().unwrap();
    assert_eq!(bid.0.state, mv1beta5::bid::State::Open as i32);
    assert_eq!(bid.0.created_at, 1);
    assert_eq!(
        w.state.balance(&w.provider.address, "uact"),
        GENESIS_AMOUNT - 500_000
    );
    let escrow = &w.state.escrow_accounts[&format!("bid/{key}")].0;
    assert_eq!(
        escrow.id.as_ref().unwrap().scope,
        escrow_id::Scope::Bid as i32
    );
    let ev = r
        .events
        .iter()
        .find(|e| e.kind == "akash.market.v1.EventBidCreated")
        .unwrap();
    let price: serde_json::Value = serde_json::from_str(ev.get("price").unwrap()).unwrap();
    assert_eq!(
        price,
        json!({"denom": "uact", "amount": "999.500000000000000000"})
    );
    let id: serde_json::Value = serde_json::from_str(ev.get("id").unwrap()).unwrap();
    assert_eq!(id["provider"], w.provider.address.as_str());
    assert_eq!(id["dseq"], "10");

    // A second bid from the same provider on the same order.
    let r = w.provider_tx(&w.bid("1"));
    assert_eq!((r.code, r.codespace.as_str()), (21, "market"));
}

#[test]
fn bids_breaking_the_market_rules_are_refused_and_change_nothing() {
    let mut w = World::new();
    let code = |w: &mut World, m: mv1beta5::MsgCreateBid| {
        let before = (
            w.state.bids.len(),
            w.state.balance(&w.provider.address, "uact"),
        );
        let r = w.provider_tx(&m);
        assert_eq!(
            before,
            (
                w.state.bids.len(),
                w.state.balance(&w.provider.address, "uact")
            ),
            "{}",
            r.log
        );
        (r.code, r.codespace)
    };
    let over = w.bid("1000.000000000000000001");
    assert_eq!(code(&mut w, over), (4, "market".into()));
    let zero = w.bid("0");
    assert_eq!(code(&mut w, zero).0, 19);
    let mut wrong_denom = w.bid("1");
    wrong_denom.price.as_mut().unwrap().denom = "uakt".into();
    assert_eq!(code(&mut w, wrong_denom).0, 22);
    let mut no_order = w.bid("1");
    no_order.id.as_mut().unwrap().gseq = 2;
    assert_eq!(code(&mut w, no_order).0, 15);
    let mut low_deposit = w.bid("1");
    low_deposit
        .deposit
        .as_mut()
        .unwrap()
        .amount
        .as_mut()
        .unwrap()
        .amount = "1".into();
    assert_eq!(code(&mut w, low_deposit).0, 28);
    let mut bseq = w.bid("1");
    bseq.id.as_mut().unwrap().bseq = 1;
    assert_eq!(code(&mut w, bseq).0, 31);
    let mut window = w.bid("1");
    window.reclamation_window = Some(prost_types::Duration {
        seconds: 60,
        nanos: 0,
    });
    assert_eq!(code(&mut w, window).0, 31);

    // The tenant bidding on its own order, and an unregistered provider.
    let mut own = w.bid("1");
    own.id.as_mut().unwrap().provider = w.tenant.address.clone();
    let raw = sign_tx(
        &w.tenant.key,
        vec![any_of(&own)],
        &SignOpts::new(CHAIN, 1, 1),
    )
    .unwrap();
    assert_eq!(run_tx(&mut w.state, &raw, Mode::Deliver, &params()).code, 2);
    let stranger = &test_accounts().unwrap()[0];
    let mut unknown = w.bid("1");
    unknown.id.as_mut().unwrap().provider = stranger.address.clone();
    let raw = sign_tx(
        &stranger.key,
        vec![any_of(&unknown)],
        &SignOpts::new(CHAIN, 0, 0),
    )
    .unwrap();
    let r = run_tx(&mut w.state, &raw, Mode::Deliver, &params());
    assert_eq!(r.code, 30, "{}", r.log);
    assert!(w.state.bids.is_empty());
}

#[test]
fn legacy_dec_prints_eighteen_decimals() {
    assert_eq!(
        legacy_dec_json("1500000000000000000"),
        "1.500000000000000000"
    );
    assert_eq!(legacy_dec_json("5"), "0.000000000000000005");
    assert_eq!(legacy_dec_json("0"), "0.000000000000000000");
}
