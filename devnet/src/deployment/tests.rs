use super::*;
use crate::ante::{Mode, Params, parse_gas_prices, run_tx};
use crate::genesis::{GENESIS_AMOUNT, genesis_state, test_accounts};
use crate::sign::{SignOpts, any_of, create_deployment_msg, sign_tx};

const CHAIN: &str = "devnet-deployment";

fn params() -> Params {
    Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap())
}

#[test]
fn create_deployment_makes_groups_orders_escrow_and_events() {
    let mut state = genesis_state(CHAIN).unwrap();
    state.height = 41;
    let tenant = &test_accounts().unwrap()[1];
    let msg = create_deployment_msg(&tenant.address, 7, &["dcloud", "westcoast"], [9; 32]);
    let raw = sign_tx(&tenant.key, vec![any_of(&msg)], &SignOpts::new(CHAIN, 1, 0)).unwrap();
    let r = run_tx(&mut state, &raw, Mode::Deliver, &params());
    assert_eq!(r.code, 0, "{}", r.log);

    let d = &state.deployments[&keys::deployment(&tenant.address, 7)].0;
    assert_eq!(d.state, dv1::deployment::State::Active as i32);
    assert_eq!((d.hash.as_slice(), d.created_at), (&[9u8; 32][..], 42));
    let g2 = &state.groups[&keys::group(&tenant.address, 7, 2)].0;
    assert_eq!(g2.group_spec.as_ref().unwrap().name, "westcoast");
    assert_eq!(g2.state, dv1beta4::group::State::Open as i32);
    let orders: Vec<_> = state.orders.values().map(|o| o.0.clone()).collect();
    assert_eq!(orders.len(), 2);
    for (i, o) in orders.iter().enumerate() {
        let id = o.id.as_ref().unwrap();
        assert_eq!((id.dseq, id.gseq, id.oseq), (7, i as u32 + 1, 1));
        assert_eq!(o.state, mv1beta5::order::State::Open as i32);
        assert_eq!(o.spec.as_ref(), msg.groups.get(i));
    }
    let escrow = state.escrow_accounts[&keys::deployment(&tenant.address, 7)]
        .0
        .clone();
    assert_eq!(escrow.id.unwrap().xid, format!("{}/7", tenant.address));
    let funds = &escrow.state.unwrap().funds[0];
    assert_eq!(
        (
            funds.denom.as_str(),
            chain_client::dec::from_wire(&funds.amount).unwrap()
        ),
        ("uact", "500000".into())
    );
    assert_eq!(
        state.balance(&tenant.address, "uact"),
        GENESIS_AMOUNT - 500_000
    );
    assert_eq!(state.balance(&escrow_module_address(), "uact"), 500_000);

    let created: Vec<_> = r
        .events
        .iter()
        .filter(|e| e.kind == "akash.market.v1.EventOrderCreated")
        .collect();
    assert_eq!(created.len(), 2);
    let id: serde_json::Value = serde_json::from_str(created[1].get("id").unwrap()).unwrap();
    assert_eq!(
        id,
        json!({"owner": tenant.address, "dseq": "7", "gseq": 2, "oseq": 1})
    );
    assert_eq!(created[1].get("msg_index"), Some("0"));
    let dep = r
        .events
        .iter()
        .find(|e| e.kind == "akash.deployment.v1.EventDeploymentCreated")
        .unwrap();
    assert_eq!(
        dep.get("hash"),
        Some(format!("\"{}\"", data_encoding::BASE64.encode(&[9; 32])).as_str())
    );

    // Persisted state round-trips through its JSON form (the store's encoding).
    let json = serde_json::to_vec(&state).unwrap();
    let back: State = serde_json::from_slice(&json).unwrap();
    assert_eq!(back, state);

    // The same dseq again: code 3 in codespace deployment; the fee is still charged.
    let raw = sign_tx(&tenant.key, vec![any_of(&msg)], &SignOpts::new(CHAIN, 1, 1)).unwrap();
    let before_uact = state.balance(&tenant.address, "uact");
    let r = run_tx(&mut state, &raw, Mode::Deliver, &params());
    assert_eq!((r.code, r.codespace.as_str()), (3, "deployment"));
    assert_eq!(
        r.log,
        "failed to execute message; message index: 0: Deployment exists"
    );
    assert_eq!(state.balance(&tenant.address, "uact"), before_uact);
    assert_eq!(state.orders.len(), 2);
}

#[test]
fn invalid_deployments_are_refused_with_deployment_codes() {
    let owner = &test_accounts().unwrap()[0].address;
    let ok = create_deployment_msg(owner, 1, &["a"], [1; 32]);
    assert!(validate_create(&ok).is_ok());
    let case = |f: &dyn Fn(&mut dv1beta4::MsgCreateDeployment)| {
        let mut m = ok.clone();
        f(&mut m);
        let e = validate_create(&m).unwrap_err();
        (e.code, e.codespace, e.log)
    };
    assert_eq!(case(&|m| m.id.as_mut().unwrap().dseq = 0).0, 8);
    assert_eq!(
        case(&|m| m.groups.clear()),
        (7, "deployment", "empty groups: Invalid groups".into())
    );
    assert_eq!(case(&|m| m.groups.push(m.groups[0].clone())).0, 7);
    assert_eq!(
        case(&|m| m.hash.clear()),
        (9, "deployment", "Invalid: empty hash".into())
    );
    assert_eq!(case(&|m| m.hash.truncate(31)).0, 10);
    assert_eq!(case(&|m| m.groups[0].resources[0].count = 0).0, 19);
    assert_eq!(
        case(&|m| m.groups[0].resources[0].price.as_mut().unwrap().denom = "uakt".into()).0,
        19
    );
    assert_eq!(
        case(&|m| m.deposit.as_mut().unwrap().amount.as_mut().unwrap().amount = "499999".into()).0,
        20
    );
    assert_eq!(
        case(&|m| m.deposit.as_mut().unwrap().amount.as_mut().unwrap().denom = "uakt".into()).0,
        20
    );
    assert_eq!(
        case(&|m| m.id.as_mut().unwrap().owner = "cosmos1xyz".into()).1,
        "sdk"
    );
}

#[test]
fn deposit_beyond_balance_is_insufficient_funds_and_creates_nothing() {
    let mut state = genesis_state(CHAIN).unwrap();
    let tenant = &test_accounts().unwrap()[0];
    let mut msg = create_deployment_msg(&tenant.address, 3, &["a"], [1; 32]);
    msg.deposit
        .as_mut()
        .unwrap()
        .amount
        .as_mut()
        .unwrap()
        .amount = (GENESIS_AMOUNT + 1).to_string();
    let raw = sign_tx(&tenant.key, vec![any_of(&msg)], &SignOpts::new(CHAIN, 0, 0)).unwrap();
    let r = run_tx(&mut state, &raw, Mode::Deliver, &params());
    assert_eq!(r.code, 5, "{}", r.log);
    assert!(
        state.deployments.is_empty() && state.orders.is_empty() && state.escrow_accounts.is_empty()
    );
    assert_eq!(state.balance(&tenant.address, "uact"), GENESIS_AMOUNT);
}

#[test]
fn update_deployment_changes_the_hash_of_an_active_deployment() {
    let mut state = genesis_state(CHAIN).unwrap();
    let tenant = &test_accounts().unwrap()[0];
    let msg = create_deployment_msg(&tenant.address, 4, &["a"], [1; 32]);
    let raw = sign_tx(&tenant.key, vec![any_of(&msg)], &SignOpts::new(CHAIN, 0, 0)).unwrap();
    assert_eq!(run_tx(&mut state, &raw, Mode::Deliver, &params()).code, 0);
    let id = Some(dv1::DeploymentId {
        owner: tenant.address.clone(),
        dseq: 4,
    });
    let update = dv1beta4::MsgUpdateDeployment {
        id: id.clone(),
        hash: vec![2; 32],
    };
    let raw = sign_tx(
        &tenant.key,
        vec![any_of(&update)],
        &SignOpts::new(CHAIN, 0, 1),
    )
    .unwrap();
    let r = run_tx(&mut state, &raw, Mode::Deliver, &params());
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(
        state.deployments[&keys::deployment(&tenant.address, 4)]
            .0
            .hash,
        vec![2; 32]
    );
    assert!(
        r.events
            .iter()
            .any(|e| e.kind == "akash.deployment.v1.EventDeploymentUpdated")
    );
    let missing = dv1beta4::MsgUpdateDeployment {
        id: Some(dv1::DeploymentId {
            owner: tenant.address.clone(),
            dseq: 5,
        }),
        hash: vec![2; 32],
    };
    let raw = sign_tx(
        &tenant.key,
        vec![any_of(&missing)],
        &SignOpts::new(CHAIN, 0, 2),
    )
    .unwrap();
    assert_eq!(run_tx(&mut state, &raw, Mode::Deliver, &params()).code, 4);
    let short = dv1beta4::MsgUpdateDeployment {
        id,
        hash: vec![2; 8],
    };
    let raw = sign_tx(
        &tenant.key,
        vec![any_of(&short)],
        &SignOpts::new(CHAIN, 0, 3),
    )
    .unwrap();
    assert_eq!(run_tx(&mut state, &raw, Mode::Deliver, &params()).code, 10);
}
