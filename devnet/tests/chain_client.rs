//! The project's own chain client (`chain-client`'s `NodeChain`, as the provider and the tenant
//! controller use it) against a devnet on 127.0.0.1: queries, a signed broadcast that waits for
//! inclusion, and the Akash event stream.

use std::net::SocketAddr;
use std::time::Duration;

use chain_client::Chain;
use chain_client::chain::{OrderFilters, PageRequest};
use chain_client::events::AkashEvent;
use chain_client::keys::{Key, Mnemonic};
use chain_client::node::{NodeChain, NodeConfig as ClientConfig};
use chain_client::signer::SignerConfig;
use chain_client::tx::{FeePolicy, GasPrice};
use devnet::genesis::{GENESIS_AMOUNT, TEST_MNEMONICS, genesis_state};
use devnet::node::{Node, NodeConfig};
use futures::StreamExt;

const CHAIN: &str = "devnet-client";

/// A `NodeChain` for one of the test mnemonics, polling fast.
fn client(running: &devnet::server::Running, mnemonic: &str) -> NodeChain {
    let key = Key::from_mnemonic(&Mnemonic::from_phrase(mnemonic).unwrap()).unwrap();
    let mut signer =
        SignerConfig::new(CHAIN, FeePolicy::new(GasPrice::parse("0.025uakt").unwrap()));
    signer.poll_interval = Duration::from_millis(100);
    signer.inclusion_timeout = Duration::from_secs(20);
    let follow = chain_client::follow::FollowOptions {
        poll_interval: Duration::from_millis(100),
        ..Default::default()
    };
    NodeChain::new(
        key,
        ClientConfig {
            grpc_url: format!("http://{}", running.grpc_addr),
            rpc_url: format!("http://{}", running.rpc_addr),
            request_timeout: Duration::from_secs(10),
            signer,
            follow,
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_chain_runs_deployment_bid_and_lease_and_follows_events() {
    let home = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        chain_id: CHAIN.into(),
        block_time: Duration::from_millis(200),
        min_gas_prices: devnet::ante::parse_gas_prices("0.025uakt").unwrap(),
        rules: Default::default(),
    };
    let (node, _) = Node::open(home.path(), config, || genesis_state(CHAIN)).unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let running = devnet::server::start(node, loopback, loopback)
        .await
        .unwrap();

    let chain = client(&running, TEST_MNEMONICS[2]);
    let owner = chain.address().to_owned();
    assert_eq!(chain.balance(&owner, "uact").await.unwrap(), GENESIS_AMOUNT);
    let account = chain.account(&owner).await.unwrap();
    assert_eq!(account.account_number, 2);

    let from = chain.latest_height().await.unwrap() + 1;
    let mut events = chain.events(from);

    let msg = devnet::sign::create_deployment_msg(&owner, 5, &["web"], [3; 32]);
    let result = chain
        .broadcast(vec![chain_client::to_any(&msg)])
        .await
        .unwrap();
    assert_eq!(result.code, 0, "{}", result.log);
    assert!(result.gas_used > 0 && result.gas_used <= result.gas_wanted);

    let open = chain
        .orders(
            OrderFilters {
                owner: owner.clone(),
                state: "open".into(),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(open.items.len(), 1);
    assert_eq!(open.items[0].id.as_ref().unwrap().dseq, 5);
    assert_eq!(
        chain.balance(&owner, "uact").await.unwrap(),
        GENESIS_AMOUNT - 500_000
    );

    // The event stream delivers the order, at the height the broadcast reported.
    let order = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(block) = events.next().await {
            let block = block.unwrap();
            for e in block.events {
                if let AkashEvent::OrderCreated(o) = e {
                    return (block.height, o.id.unwrap());
                }
            }
        }
        panic!("event stream ended");
    })
    .await
    .unwrap();
    assert_eq!(order.0, result.height);
    assert_eq!(
        (
            order.1.owner.as_str(),
            order.1.dseq,
            order.1.gseq,
            order.1.oseq
        ),
        (owner.as_str(), 5, 1, 1)
    );

    // A provider registers itself, is found by the provider query, and bids on the order.
    let provider_chain = client(&running, TEST_MNEMONICS[3]);
    let provider = provider_chain.address().to_owned();
    assert!(chain.provider(&provider).await.unwrap().is_none());
    let register = chain_client::akash::provider::v1beta4::MsgCreateProvider {
        owner: provider.clone(),
        host_uri: "https://127.0.0.1:8443".into(),
        attributes: vec![],
        info: None,
    };
    let result = provider_chain
        .broadcast(vec![chain_client::to_any(&register)])
        .await
        .unwrap();
    assert_eq!(result.code, 0, "{}", result.log);
    let registered = chain.provider(&provider).await.unwrap().unwrap();
    assert_eq!(registered.host_uri, "https://127.0.0.1:8443");
    assert_eq!(
        chain
            .providers(PageRequest::first(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    let order_id = order.1;
    let bid = chain_client::akash::market::v1beta5::MsgCreateBid {
        id: Some(chain_client::akash::market::v1::BidId {
            owner: order_id.owner.clone(),
            dseq: order_id.dseq,
            gseq: order_id.gseq,
            oseq: order_id.oseq,
            provider: provider.clone(),
            bseq: 0,
        }),
        price: Some(chain_client::dec::dec_coin("uact", "750").unwrap()),
        deposit: Some(chain_client::akash::base::deposit::v1::Deposit {
            amount: Some(
                chain_client::cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                    denom: "uact".into(),
                    amount: "500000".into(),
                },
            ),
            sources: vec![chain_client::akash::base::deposit::v1::Source::Balance as i32],
        }),
        resources_offer: vec![],
        reclamation_window: None,
    };
    let result = provider_chain
        .broadcast(vec![chain_client::to_any(&bid)])
        .await
        .unwrap();
    assert_eq!(result.code, 0, "{}", result.log);
    let bids = chain
        .bids(
            chain_client::chain::BidFilters {
                owner: owner.clone(),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(bids.items.len(), 1);
    assert_eq!(
        bids.items[0]
            .bid
            .as_ref()
            .unwrap()
            .id
            .as_ref()
            .unwrap()
            .provider,
        provider
    );
    assert!(bids.items[0].escrow_account.is_some());
    let created = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(block) = events.next().await {
            for e in block.unwrap().events {
                if let AkashEvent::BidCreated(b) = e {
                    return b;
                }
            }
        }
        panic!("event stream ended");
    })
    .await
    .unwrap();
    assert_eq!(created.id.unwrap().provider, provider);
    assert_eq!(
        chain_client::dec::dec_coin_amount(&created.price.unwrap()).unwrap(),
        "750"
    );

    // The tenant accepts the bid; the provider sees its lease and the LeaseCreated event.
    let lease = chain_client::akash::market::v1beta5::MsgCreateLease {
        bid_id: bid.id.clone(),
    };
    let result = chain
        .broadcast(vec![chain_client::to_any(&lease)])
        .await
        .unwrap();
    assert_eq!(result.code, 0, "{}", result.log);
    let leases = provider_chain
        .leases(
            chain_client::chain::LeaseFilters {
                provider: provider.clone(),
                state: "active".into(),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(leases.items.len(), 1);
    assert!(leases.items[0].escrow_payment.is_some());
    let leased = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(block) = events.next().await {
            for e in block.unwrap().events {
                if let AkashEvent::LeaseCreated(l) = e {
                    return l;
                }
            }
        }
        panic!("event stream ended");
    })
    .await
    .unwrap();
    assert_eq!(leased.id.unwrap().provider, provider);
    assert_eq!(
        chain_client::dec::dec_coin_amount(&leased.price.unwrap()).unwrap(),
        "750"
    );

    // The provider's lease keeper withdraws: the blocks since the lease started are paid at 750 uact.
    let before = chain.balance(&provider, "uact").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let withdraw = chain_client::akash::market::v1beta5::MsgWithdrawLease {
        id: leases.items[0].lease.as_ref().unwrap().id.clone(),
    };
    let result = provider_chain
        .broadcast(vec![chain_client::to_any(&withdraw)])
        .await
        .unwrap();
    assert_eq!(result.code, 0, "{}", result.log);
    let paid = chain.balance(&provider, "uact").await.unwrap() - before;
    assert!(paid >= 750 && paid % 750 == 0, "paid {paid}");

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_and_revoking_a_certificate_reach_the_event_stream_with_their_owner() {
    let home = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        chain_id: CHAIN.into(),
        block_time: Duration::from_millis(200),
        min_gas_prices: devnet::ante::parse_gas_prices("0.025uakt").unwrap(),
        rules: Default::default(),
    };
    let (node, _) = Node::open(home.path(), config, || genesis_state(CHAIN)).unwrap();
    let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let running = devnet::server::start(node, loopback, loopback)
        .await
        .unwrap();
    let chain = client(&running, TEST_MNEMONICS[2]);
    let owner = chain.address().to_owned();
    let mut events = chain.events(chain.latest_height().await.unwrap() + 1);

    let pair = chain_client::cert::generate(
        &owner,
        &chain_client::cert::CertificateRole::Client,
        Duration::from_secs(3600),
    )
    .unwrap();
    for msg in [
        chain_client::to_any(&pair.create_msg(&owner)),
        chain_client::to_any(&chain_client::cert::revoke_msg(&owner, &pair.serial)),
    ] {
        let result = chain.broadcast(vec![msg]).await.unwrap();
        assert_eq!(result.code, 0, "{}", result.log);
    }

    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        let mut seen = Vec::new();
        while let Some(block) = events.next().await {
            for e in block.unwrap().events {
                if matches!(
                    e,
                    AkashEvent::CertificateCreated { .. } | AkashEvent::CertificateRevoked { .. }
                ) {
                    seen.push(e);
                }
            }
            if seen.len() == 2 {
                return seen;
            }
        }
        panic!("event stream ended");
    })
    .await
    .unwrap();
    assert_eq!(
        seen,
        [
            AkashEvent::CertificateCreated {
                owner: owner.clone()
            },
            AkashEvent::CertificateRevoked { owner }
        ]
    );
}
