use super::*;
use crate::genesis::{GENESIS_AMOUNT, genesis_state, test_accounts};
use crate::sign::{SignOpts, sign_send};

const CHAIN: &str = "devnet-node-test";

fn config(block_time: Duration) -> NodeConfig {
    NodeConfig {
        chain_id: CHAIN.to_owned(),
        block_time,
        min_gas_prices: ante::parse_gas_prices("0.025uakt").unwrap(),
        rules: Default::default(),
    }
}

fn open(home: &Path) -> (Arc<Node>, bool) {
    Node::open(home, config(Duration::from_secs(1)), || {
        genesis_state(CHAIN)
    })
    .unwrap()
}

#[test]
fn a_committed_tx_and_the_height_survive_a_restart() {
    let home = tempfile::tempdir().unwrap();
    let accounts = test_accounts().unwrap();
    let (from, to) = (&accounts[0], &accounts[1].address);
    let hash;
    {
        let (node, fresh) = open(home.path());
        assert!(fresh);
        assert_eq!(node.height(), 0);
        let raw = sign_send(&from.key, to, 250, "uact", &SignOpts::new(CHAIN, 0, 0)).unwrap();
        let (h, check) = node.check_tx(raw.clone()).unwrap();
        assert_eq!(check.code, 0, "{}", check.log);
        assert_eq!(h, tx_hash(&raw));
        hash = h;
        // Not committed yet.
        assert!(node.tx(&hash).unwrap().is_none());
        assert_eq!(node.with_state(|s| s.balance(to, "uact")), GENESIS_AMOUNT);
        let b1 = node.produce_block().unwrap();
        assert_eq!((b1.height, b1.txs.len(), b1.tx_results[0].code), (1, 1, 0));
        let b2 = node.produce_block().unwrap();
        assert_eq!(b2.last_block_hash, b1.hash);
        assert_eq!(b2.app_hash, b1.result_app_hash);
        assert!(b2.txs.is_empty());
        let found = node.tx(&hash.to_lowercase()).unwrap().unwrap();
        assert_eq!(
            found.location,
            TxLocation {
                height: 1,
                index: 0
            }
        );
        assert_eq!(found.raw, raw);
    }
    let (node, fresh) = open(home.path());
    assert!(!fresh);
    assert_eq!(node.height(), 2);
    assert_eq!(
        node.with_state(|s| s.balance(to, "uact")),
        GENESIS_AMOUNT + 250
    );
    assert_eq!(node.with_state(|s| s.accounts[&from.address].sequence), 1);
    assert_eq!(node.tx(&hash).unwrap().unwrap().location.height, 1);
    let b2 = node.block(2).unwrap().unwrap();
    let b3 = node.produce_block().unwrap();
    assert_eq!(b3.height, 3);
    assert_eq!(b3.last_block_hash, b2.hash);
    // The same transaction again is a replay: already known.
    let raw = sign_send(&from.key, to, 250, "uact", &SignOpts::new(CHAIN, 0, 0)).unwrap();
    assert_eq!(
        node.check_tx(raw).unwrap_err(),
        "tx already exists in cache"
    );
}

#[test]
fn a_home_of_another_chain_is_refused() {
    let home = tempfile::tempdir().unwrap();
    drop(open(home.path()));
    let other = NodeConfig {
        chain_id: "other".into(),
        ..config(Duration::from_secs(1))
    };
    let err = Node::open(home.path(), other, || genesis_state("other"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("holds chain"), "{err}");
}

#[test]
fn block_time_below_100ms_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let err = Node::open(home.path(), config(Duration::from_millis(50)), || {
        genesis_state(CHAIN)
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("below the minimum"), "{err}");
}

#[test]
fn consecutive_sequences_fit_in_one_block_and_a_rejected_tx_is_not_queued() {
    let home = tempfile::tempdir().unwrap();
    let (node, _) = open(home.path());
    let accounts = test_accounts().unwrap();
    let (from, to) = (&accounts[0], &accounts[2].address);
    for seq in 0..3 {
        let raw = sign_send(&from.key, to, 10, "uakt", &SignOpts::new(CHAIN, 0, seq)).unwrap();
        assert_eq!(node.check_tx(raw).unwrap().1.code, 0);
    }
    // Sequence 3 is next; 5 is rejected and must not enter the block.
    let raw = sign_send(&from.key, to, 10, "uakt", &SignOpts::new(CHAIN, 0, 5)).unwrap();
    let (_, r) = node.check_tx(raw).unwrap();
    assert_eq!(r.code, 32);
    assert_eq!(
        r.log,
        "account sequence mismatch, expected 3, got 5: incorrect account sequence"
    );
    let b = node.produce_block().unwrap();
    assert_eq!(
        b.tx_results.iter().map(|r| r.code).collect::<Vec<_>>(),
        vec![0, 0, 0]
    );
    assert_eq!(
        node.with_state(|s| s.balance(to, "uakt")),
        GENESIS_AMOUNT + 30
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_come_every_block_time() {
    let home = tempfile::tempdir().unwrap();
    let (node, _) = Node::open(home.path(), config(Duration::from_millis(100)), || {
        genesis_state(CHAIN)
    })
    .unwrap();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(node.clone().run(async {
        let _ = stop_rx.await;
    }));
    let mut heights = node.subscribe_heights();
    let started = tokio::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(10), heights.wait_for(|h| *h >= 5))
        .await
        .unwrap()
        .unwrap();
    // Five blocks at 100 ms take at least ~400 ms (the first comes one block time after start).
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let h = node.height();
    assert!(node.block(h).unwrap().is_some());
}

#[test]
fn whitepaper_matching_lands_in_finalize_block_events() {
    use crate::sign::{any_of, create_deployment_msg, sign_tx};
    use chain_client::akash::base::deposit::v1::{Deposit, Source};
    use chain_client::akash::market::{v1 as mv1, v1beta5 as mv1beta5};

    let home = tempfile::tempdir().unwrap();
    let rules = crate::whitepaper::WhitepaperRules {
        match_after_blocks: 2,
        reconfirmation_blocks: 0,
    };
    let (node, _) = Node::open(
        home.path(),
        NodeConfig {
            rules,
            ..config(Duration::from_secs(1))
        },
        || genesis_state(CHAIN),
    )
    .unwrap();
    let accounts = test_accounts().unwrap();
    let (tenant, provider) = (&accounts[0], &accounts[1]);
    let send = |who: &crate::genesis::TestAccount, number: u64, seq: u64, msg: cosmrs::Any| {
        let raw = sign_tx(&who.key, vec![msg], &SignOpts::new(CHAIN, number, seq)).unwrap();
        assert_eq!(node.check_tx(raw).unwrap().1.code, 0);
    };
    send(
        tenant,
        0,
        0,
        any_of(&create_deployment_msg(&tenant.address, 9, &["g"], [1; 32])),
    );
    let reg = chain_client::akash::provider::v1beta4::MsgCreateProvider {
        owner: provider.address.clone(),
        host_uri: "https://127.0.0.1:8443".into(),
        attributes: vec![],
        info: None,
    };
    send(provider, 1, 0, any_of(&reg));
    let bid = mv1beta5::MsgCreateBid {
        id: Some(mv1::BidId {
            owner: tenant.address.clone(),
            dseq: 9,
            gseq: 1,
            oseq: 1,
            provider: provider.address.clone(),
            bseq: 0,
        }),
        price: Some(chain_client::dec::dec_coin("uact", "10").unwrap()),
        deposit: Some(Deposit {
            amount: Some(cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                denom: "uact".into(),
                amount: "500000".into(),
            }),
            sources: vec![Source::Balance as i32],
        }),
        resources_offer: vec![],
        reclamation_window: None,
    };
    send(provider, 1, 1, any_of(&bid));
    let b1 = node.produce_block().unwrap();
    assert!(
        b1.tx_results.iter().all(|r| r.code == 0),
        "{:?}",
        b1.tx_results
    );
    assert!(b1.finalize_block_events.is_empty());
    node.produce_block().unwrap();
    let b3 = node.produce_block().unwrap();
    let kinds: Vec<&str> = b3
        .finalize_block_events
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(kinds, ["akash.market.v1.EventLeaseCreated"]);
    assert_eq!(node.with_state(|s| s.leases.len()), 1);
    // Stored with the block, so block_results serves them after a restart too.
    assert_eq!(
        node.block(3).unwrap().unwrap().finalize_block_events,
        b3.finalize_block_events
    );
}
