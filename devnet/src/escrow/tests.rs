use super::*;
use crate::ante::{Mode, Params, parse_gas_prices, run_tx};
use crate::genesis::{GENESIS_AMOUNT, genesis_state, test_accounts};
use crate::sign::{SignOpts, any_of, create_deployment_msg, sign_tx};
use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::provider::v1beta4::MsgCreateProvider;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin as ProtoCoin;

const CHAIN: &str = "devnet-escrow";

#[test]
fn withdrawals_pay_the_price_per_block_until_the_deposit_runs_out() {
    let accounts = test_accounts().unwrap();
    let (tenant, provider) = (&accounts[0], &accounts[3]);
    let mut state = genesis_state(CHAIN).unwrap();
    let mut seqs = [0u64; 4];
    let mut tx = |state: &mut State, who: usize, msg: cosmrs::Any| {
        let raw = sign_tx(
            &accounts[who].key,
            vec![msg],
            &SignOpts::new(CHAIN, who as u64, seqs[who]),
        )
        .unwrap();
        seqs[who] += 1;
        run_tx(
            state,
            &raw,
            Mode::Deliver,
            &Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap()),
        )
    };
    let lease_id = mv1::LeaseId {
        owner: tenant.address.clone(),
        dseq: 1,
        gseq: 1,
        oseq: 1,
        provider: provider.address.clone(),
        bseq: 0,
    };
    let bid_id = mv1::BidId {
        owner: lease_id.owner.clone(),
        dseq: 1,
        gseq: 1,
        oseq: 1,
        provider: lease_id.provider.clone(),
        bseq: 0,
    };
    assert_eq!(
        tx(
            &mut state,
            0,
            any_of(&create_deployment_msg(&tenant.address, 1, &["g"], [1; 32]))
        )
        .code,
        0
    );
    let reg = MsgCreateProvider {
        owner: provider.address.clone(),
        host_uri: "https://127.0.0.1:8443".into(),
        attributes: vec![],
        info: None,
    };
    assert_eq!(tx(&mut state, 3, any_of(&reg)).code, 0);
    let bid = mv1beta5::MsgCreateBid {
        id: Some(bid_id.clone()),
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
    assert_eq!(tx(&mut state, 3, any_of(&bid)).code, 0);
    // The lease starts at height 11.
    state.height = 10;
    assert_eq!(
        tx(
            &mut state,
            0,
            any_of(&mv1beta5::MsgCreateLease {
                bid_id: Some(bid_id)
            })
        )
        .code,
        0
    );
    let start = GENESIS_AMOUNT - 500_000;
    assert_eq!(state.balance(&provider.address, "uact"), start);

    // 100 blocks later: 100 × 500 uact.
    state.height = 110;
    let withdraw = mv1beta5::MsgWithdrawLease {
        id: Some(lease_id.clone()),
    };
    let r = tx(&mut state, 3, any_of(&withdraw));
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(state.balance(&provider.address, "uact"), start + 50_000);
    let funds = &state.escrow_accounts[&keys::deployment(&tenant.address, 1)]
        .0
        .state
        .clone()
        .unwrap()
        .funds[0];
    assert_eq!(wire(&funds.amount), 450_000 * UNIT);

    // Far later: only 450000 is left; the lease closes for insufficient funds.
    state.height = 5_000;
    let r = tx(&mut state, 3, any_of(&withdraw));
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(state.balance(&provider.address, "uact"), start + 500_000);
    let lease = state.leases.values().next().unwrap();
    assert_eq!(
        lease.0.reason,
        mv1::LeaseClosedReason::InsufficientFunds as i32
    );
    let account = state.escrow_accounts[&keys::deployment(&tenant.address, 1)]
        .0
        .state
        .clone()
        .unwrap();
    assert_eq!(account.state, escrow::State::Overdrawn as i32);
    let closed = r
        .events
        .iter()
        .find(|e| e.kind == "akash.market.v1.EventLeaseClosed")
        .unwrap();
    assert_eq!(
        closed.get("reason"),
        Some("\"lease_closed_reason_insufficient_funds\"")
    );

    // The lease is no longer active.
    let r = tx(&mut state, 3, any_of(&withdraw));
    assert_eq!((r.code, r.codespace.as_str()), (10, "market"));
}
