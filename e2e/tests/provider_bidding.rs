//! The provider end to end (issue "provider, part 1"): the real `akash-provider run` against the
//! real control plane and a real devnet process; tenants and a competing provider are
//! `chain-client`s signing with the devnet's test keys.

use std::time::Duration;

use chain_client::Chain;
use chain_client::akash::market::v1beta5::bid;
use chain_client::akash::provider::v1beta4::MsgCreateProvider;
use crds::resources::BidPhase;
use e2e::devnet::TEST_MNEMONICS;
use e2e::market::{self, OPENSPEEDTEST_PRICE, object_name};
use e2e::provider::ProviderProcess;
use e2e::scenario::{COMPETITOR_KEY, STRANGER_KEY, TENANT_KEY, scenario};
use e2e::tenant;
use e2e::wait::{Poll, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_bids_at_its_price_wins_a_lease_and_releases_a_losing_bid() -> anyhow::Result<()> {
    let s = scenario("bidding", &[("host", "akash")], vec![]).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    let sdl = tenant::testdata_sdl("openspeedtest.yaml")?;

    // Deployment 1: the provider bids at its scale price; the tenant leases that bid.
    tenant::create_deployment(&s.tenant, &sdl, 1).await?;
    let placed = market::wait_bid_phase(&s.bids(), &object_name(&owner, 1), BidPhase::Open).await?;
    assert_eq!(placed.spec.price.amount, OPENSPEEDTEST_PRICE);
    assert_eq!(placed.spec.price.denom, "uact");
    let on_chain = market::wait_chain_bid(&s.tenant, &owner, 1, &me).await?;
    let price = on_chain.price.unwrap();
    assert_eq!(
        chain_client::dec::from_wire(&price.amount)?,
        OPENSPEEDTEST_PRICE
    );

    market::lease(&s.tenant, 1, &me).await?;
    let lease = market::wait_lease(&s.leases(), &object_name(&owner, 1)).await?;
    assert_eq!(lease.spec.lease_id.provider, me);
    assert_eq!(lease.spec.price.amount, OPENSPEEDTEST_PRICE);
    market::wait_bid_phase(&s.bids(), &object_name(&owner, 1), BidPhase::Won).await?;
    let cluster = e2e::Cluster::shared().await?;
    let shown = cluster
        .kubectl()
        .args(["get", "leases.akash.network", "-n", s.ns.name()])
        .output()?;
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.contains(&owner))
        .unwrap_or_default();
    assert!(
        row.contains(" 1 ") && row.contains(OPENSPEEDTEST_PRICE) && row.contains("Pending"),
        "{text}"
    );

    // Deployment 2: a competitor bids lower and the tenant leases the competitor's bid.
    tenant::create_deployment(&s.tenant, &sdl, 2).await?;
    market::wait_bid_phase(&s.bids(), &object_name(&owner, 2), BidPhase::Open).await?;
    let d = &s.devnet_ref;
    let competitor = e2e::tenant::client_for(
        &d.chain_id,
        &d.rpc_url,
        &d.grpc_url,
        TEST_MNEMONICS[COMPETITOR_KEY],
    )?;
    let rival = competitor.address().to_owned();
    competitor
        .broadcast(vec![chain_client::to_any(&MsgCreateProvider {
            owner: rival.clone(),
            host_uri: "https://rival.provider.test:8443".into(),
            attributes: vec![],
            info: None,
        })])
        .await?;
    competitor
        .broadcast(vec![chain_client::to_any(
            &chain_client::akash::market::v1beta5::MsgCreateBid {
                id: Some(chain_client::akash::market::v1::BidId {
                    owner: owner.clone(),
                    dseq: 2,
                    gseq: 1,
                    oseq: 1,
                    provider: rival.clone(),
                    bseq: 0,
                }),
                price: Some(chain_client::dec::dec_coin("uact", "1000")?),
                deposit: Some(chain_client::akash::base::deposit::v1::Deposit {
                    amount: Some(cosmos_sdk_proto::cosmos::base::v1beta1::Coin {
                        denom: "uact".into(),
                        amount: "500000".into(),
                    }),
                    sources: vec![chain_client::akash::base::deposit::v1::Source::Balance as i32],
                }),
                resources_offer: vec![],
                reclamation_window: None,
            },
        )])
        .await?;
    market::lease(&s.tenant, 2, &rival).await?;
    market::wait_bid_gone(&s.bids(), &object_name(&owner, 2)).await?;
    let ours = market::chain_bids(&s.tenant, &owner, 2, &me).await?;
    assert_eq!(ours.len(), 1);
    assert!(
        [bid::State::Lost as i32, bid::State::Closed as i32].contains(&ours[0].state),
        "our losing bid is {:?} on chain",
        ours[0].state
    );
    assert!(s.leases().get_opt(&object_name(&owner, 2)).await?.is_none());

    let metrics = s.provider.metrics().await.unwrap_or_default();
    assert_eq!(
        market::counter(&metrics, "akash_provider_bids_won_total"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        market::counter(&metrics, "akash_provider_bids_lost_total"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        market::counter(&metrics, "akash_provider_bids_sent_total"),
        2.0,
        "{metrics}"
    );
    Ok(())
}

/// A deployment the tenant posts from SDL text.
async fn post(
    tenant: &chain_client::node::NodeChain,
    dseq: u64,
    sdl: &crds::sdl::Sdl,
) -> anyhow::Result<()> {
    tenant::create_deployment(tenant, sdl, dseq).await?;
    Ok(())
}

fn openspeedtest_with(replace: &[(&str, &str)]) -> anyhow::Result<crds::sdl::Sdl> {
    let path = e2e::repo_dir().join("testdata/sdl/awesome-akash/openspeedtest.yaml");
    let mut text = std::fs::read_to_string(path)?;
    for (from, to) in replace {
        assert!(text.contains(from), "{from:?} not in openspeedtest.yaml");
        text = text.replacen(from, to, 1);
    }
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_bid_when_resources_attributes_auditors_allow_list_or_price_say_no() -> anyhow::Result<()>
{
    let d0 = TEST_MNEMONICS[TENANT_KEY];
    let allowed = {
        // The allow list holds only the main tenant.
        let key = chain_client::keys::Key::from_mnemonic(
            &chain_client::keys::Mnemonic::from_phrase(d0)?,
        )?;
        key.address().to_string()
    };
    let s = scenario(
        "no-bid",
        &[("host", "akash"), ("region", "us-west")],
        vec!["--allow-owner".into(), allowed.clone()],
    )
    .await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    assert_eq!(owner, allowed);

    // 1: more CPU than any kwok node has.
    post(
        &s.tenant,
        1,
        &openspeedtest_with(&[("units: 1.0", "units: 100.0")])?,
    )
    .await?;
    // 2: a placement attribute this provider does not have.
    post(
        &s.tenant,
        2,
        &openspeedtest_with(&[(
            "    akash:\n      pricing:",
            "    akash:\n      attributes:\n        region: eu-north\n      pricing:",
        )])?,
    )
    .await?;
    // 3: auditors this provider has no signature from (a real testdata SDL).
    post(&s.tenant, 3, &tenant::testdata_sdl("MemoryGame.yaml")?).await?;
    // 4: a price below this provider's.
    post(
        &s.tenant,
        4,
        &openspeedtest_with(&[("amount: 10000", "amount: 100")])?,
    )
    .await?;
    // 5: a tenant not on the allow list.
    let d = &s.devnet_ref;
    let stranger = tenant::client_for(
        &d.chain_id,
        &d.rpc_url,
        &d.grpc_url,
        TEST_MNEMONICS[STRANGER_KEY],
    )?;
    post(&stranger, 5, &tenant::testdata_sdl("openspeedtest.yaml")?).await?;
    // 6: the control: an order the provider does bid on, posted last.
    post(&s.tenant, 6, &tenant::testdata_sdl("openspeedtest.yaml")?).await?;

    market::wait_bid_phase(&s.bids(), &object_name(&owner, 6), BidPhase::Open).await?;
    // The control was decided after the others (same or later block): they are decided too.
    let names = market::bid_names(&s.bids()).await?;
    assert_eq!(
        names,
        vec![object_name(&owner, 6)],
        "only the control order holds a reservation"
    );
    for dseq in 1..=4 {
        assert!(
            market::chain_bids(&s.tenant, &owner, dseq, &me)
                .await?
                .is_empty(),
            "bid on {dseq}"
        );
    }
    let stranger_owner = stranger.address().to_owned();
    assert!(
        market::chain_bids(&s.tenant, &stranger_owner, 5, &me)
            .await?
            .is_empty()
    );

    let metrics = until(
        "the skip reasons in /metrics",
        Duration::from_secs(20),
        || async {
            let text = s.provider.metrics().await.unwrap_or_default();
            Ok(if text.contains("akash_provider_orders_skipped_total") {
                Poll::Ready(text)
            } else {
                Poll::Pending("no skips counted yet".into())
            })
        },
    )
    .await?;
    let skipped: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("akash_provider_orders_skipped_total{"))
        .collect();
    assert_eq!(
        skipped.len(),
        5,
        "one reason per refused order: {skipped:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_bid_and_lease_and_after_the_lease_loses_nothing_and_bids_once()
-> anyhow::Result<()> {
    let mut s = scenario("restart", &[("host", "akash")], vec![]).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    let sdl = tenant::testdata_sdl("openspeedtest.yaml")?;

    // Two bids placed; then the provider dies.
    tenant::create_deployment(&s.tenant, &sdl, 1).await?;
    tenant::create_deployment(&s.tenant, &sdl, 2).await?;
    market::wait_bid_phase(&s.bids(), &object_name(&owner, 1), BidPhase::Open).await?;
    market::wait_bid_phase(&s.bids(), &object_name(&owner, 2), BidPhase::Open).await?;
    s.provider.kill();

    // While it is down: deployment 1 is leased to it; deployment 2 is closed by the tenant.
    market::lease(&s.tenant, 1, &me).await?;
    s.tenant
        .broadcast(vec![chain_client::to_any(
            &chain_client::akash::deployment::v1beta4::MsgCloseDeployment {
                id: Some(chain_client::akash::deployment::v1::DeploymentId {
                    owner: owner.clone(),
                    dseq: 2,
                }),
            },
        )])
        .await?;

    s.provider.restart()?;
    let lease = market::wait_lease(&s.leases(), &object_name(&owner, 1)).await?;
    assert_eq!(lease.spec.lease_id.dseq, 1);
    market::wait_bid_phase(&s.bids(), &object_name(&owner, 1), BidPhase::Won).await?;
    market::wait_bid_gone(&s.bids(), &object_name(&owner, 2)).await?;

    // Killed again after the lease: the lease and its reservation stay.
    s.provider.restart()?;
    let metrics = until(
        "the restarted provider's metrics",
        Duration::from_secs(60),
        || async {
            let text = s.provider.metrics().await.unwrap_or_default();
            Ok(if text.contains("akash_provider_active_leases 1") {
                Poll::Ready(text)
            } else {
                Poll::Pending(
                    text.lines()
                        .find(|l| l.starts_with("akash_provider_active_leases"))
                        .unwrap_or("no metrics")
                        .to_owned(),
                )
            })
        },
    )
    .await?;
    assert_eq!(
        market::counter(&metrics, "akash_provider_bids_sent_total"),
        0.0,
        "no bid is sent again: {metrics}"
    );
    assert!(
        !metrics.contains("akash_provider_bid_failures_total{"),
        "{metrics}"
    );
    let bid = market::wait_bid_phase(&s.bids(), &object_name(&owner, 1), BidPhase::Won).await?;
    assert_eq!(bid.spec.price.amount, OPENSPEEDTEST_PRICE);
    let lease = s.leases().get(&object_name(&owner, 1)).await?;
    assert_ne!(
        lease.status.and_then(|st| st.phase),
        Some(crds::resources::LeasePhase::Closed)
    );
    assert_eq!(
        market::chain_bids(&s.tenant, &owner, 1, &me).await?.len(),
        1
    );
    assert!(s.provider.running());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_only_the_leader_bids_and_the_standby_takes_over() -> anyhow::Result<()> {
    let lease_duration = vec!["--leader-lease-duration".to_owned(), "3s".to_owned()];
    let mut s = scenario("leader", &[("host", "akash")], lease_duration).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    let sdl = tenant::testdata_sdl("openspeedtest.yaml")?;
    let cluster = e2e::Cluster::shared().await?;
    let standby = ProviderProcess::start(cluster.kubeconfig(), &s.devnet, s.options.clone())?;

    tenant::create_deployment(&s.tenant, &sdl, 1).await?;
    market::wait_bid_phase(&s.bids(), &object_name(&owner, 1), BidPhase::Open).await?;
    until("the standby to say so", Duration::from_secs(30), || async {
        let logs = standby.logs();
        Ok(if logs.contains("standing by") {
            Poll::Ready(())
        } else {
            Poll::Pending("no 'standing by' in its log".into())
        })
    })
    .await?;
    assert!(!standby.logs().contains("bid placed"), "{}", standby.logs());

    // The leader dies; the standby takes the election lease once it expires, and bids.
    s.provider.kill();
    tenant::create_deployment(&s.tenant, &sdl, 2).await?;
    market::wait_bid_phase(&s.bids(), &object_name(&owner, 2), BidPhase::Open).await?;
    let logs = standby.logs();
    assert!(logs.contains("leading"), "{logs}");
    assert!(logs.contains("bid placed"), "{logs}");
    for dseq in [1, 2] {
        assert_eq!(
            market::chain_bids(&s.tenant, &owner, dseq, &me)
                .await?
                .len(),
            1
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_the_leader_gives_up_the_election_lease_and_the_standby_leads_without_waiting()
-> anyhow::Result<()> {
    // A lease duration no test waits out: the standby can only lead soon if it is given up.
    let lease_duration = vec!["--leader-lease-duration".to_owned(), "60s".to_owned()];
    let mut s = scenario("sigterm", &[("host", "akash")], lease_duration).await?;
    let me = s.provider_address();
    let owner = s.tenant.address().to_owned();
    let sdl = tenant::testdata_sdl("openspeedtest.yaml")?;
    let cluster = e2e::Cluster::shared().await?;
    let standby = ProviderProcess::start(cluster.kubeconfig(), &s.devnet, s.options.clone())?;
    until("the standby to say so", Duration::from_secs(30), || async {
        Ok(if standby.logs().contains("standing by") {
            Poll::Ready(())
        } else {
            Poll::Pending("no 'standing by' in its log".into())
        })
    })
    .await?;
    let leader = s.provider.identity().to_owned();

    // SIGTERM, as Kubernetes stops a pod: it exits cleanly, having given the lease up.
    let status = s.provider.terminate(Duration::from_secs(40))?;
    let logs = s.provider.logs();
    assert!(status.success(), "{status}: {logs}");
    assert!(logs.contains("leadership given up"), "{logs}");
    let elections = kube::Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        cluster.client(),
        &s.options.namespace,
    );
    let holder = elections
        .get("akash-provider-leader")
        .await?
        .spec
        .and_then(|spec| spec.holder_identity)
        .unwrap_or_default();
    assert_ne!(
        holder, leader,
        "the stopped replica still holds the election lease"
    );

    // The standby leads (at its next try, a third of the lease duration) and bids.
    tenant::create_deployment(&s.tenant, &sdl, 1).await?;
    market::wait_bid_phase(&s.bids(), &object_name(&owner, 1), BidPhase::Open).await?;
    let logs = standby.logs();
    assert!(
        logs.contains("leading") && logs.contains("bid placed"),
        "{logs}"
    );
    assert_eq!(
        market::chain_bids(&s.tenant, &owner, 1, &me).await?.len(),
        1
    );
    Ok(())
}
