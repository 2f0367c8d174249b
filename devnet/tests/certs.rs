//! Certificates and audited attributes end to end, over a devnet's real ports on 127.0.0.1, with
//! the project's own client (`chain-client`'s `NodeChain`): a tenant makes an Akash certificate,
//! publishes it, finds it on chain and is accepted as a peer until it revokes it; an auditor signs a
//! provider's attributes and the provider's audited attributes are read back. Also the escrow
//! queries and the same queries through `abci_query`.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use chain_client::Chain;
use chain_client::akash::audit::v1 as audit;
use chain_client::akash::base::attributes::v1::Attribute;
use chain_client::akash::cert::v1 as cert;
use chain_client::akash::escrow::v1 as escrow;
use chain_client::cert::{
    CertError, CertificateRole, OnChainCertificate, claimed_identity, generate, lookup_filter,
    revoke_msg, verify_peer,
};
use chain_client::chain::PageRequest;
use chain_client::keys::{Key, Mnemonic};
use chain_client::node::{NodeChain, NodeConfig as ClientConfig};
use chain_client::signer::SignerConfig;
use chain_client::to_any;
use chain_client::tx::{FeePolicy, GasPrice};
use devnet::genesis::{TEST_MNEMONICS, genesis_state};
use devnet::node::{Node, NodeConfig};
use prost::Message;

const CHAIN: &str = "devnet-certs";

async fn start() -> (tempfile::TempDir, devnet::server::Running) {
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
    (home, running)
}

/// A `NodeChain` for one of the test mnemonics, polling fast.
fn client(running: &devnet::server::Running, mnemonic: &str) -> NodeChain {
    let key = Key::from_mnemonic(&Mnemonic::from_phrase(mnemonic).unwrap()).unwrap();
    let mut signer =
        SignerConfig::new(CHAIN, FeePolicy::new(GasPrice::parse("0.025uakt").unwrap()));
    signer.poll_interval = Duration::from_millis(100);
    signer.inclusion_timeout = Duration::from_secs(20);
    NodeChain::new(
        key,
        ClientConfig {
            grpc_url: format!("http://{}", running.grpc_addr),
            rpc_url: format!("http://{}", running.rpc_addr),
            request_timeout: Duration::from_secs(10),
            signer,
            follow: Default::default(),
        },
    )
    .unwrap()
}

/// What the chain holds for the peer presenting `der`, as a server checking it would look it up.
async fn on_chain_for(chain: &NodeChain, der: &[u8]) -> Vec<OnChainCertificate> {
    let peer = claimed_identity(der).unwrap();
    chain
        .certificates(lookup_filter(&peer), PageRequest::first(10))
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| OnChainCertificate::from_response(&peer.owner, c))
        .collect()
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    data_encoding::BASE64.decode(body.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_certificate_is_accepted_until_revoked() {
    let (_home, running) = start().await;
    let tenant = client(&running, TEST_MNEMONICS[2]);
    let owner = tenant.address().to_owned();

    let pair = generate(&owner, &CertificateRole::Client, Duration::from_secs(3600)).unwrap();
    let result = tenant
        .broadcast(vec![to_any(&pair.create_msg(&owner))])
        .await
        .unwrap();
    assert_eq!(result.code, 0, "{}", result.log);

    let listed = tenant
        .certificates(
            cert::CertificateFilter {
                owner: owner.clone(),
                state: "valid".into(),
                ..Default::default()
            },
            PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].serial, pair.serial);
    assert_eq!(
        listed.items[0].certificate.as_ref().unwrap().cert,
        pair.cert_pem.as_bytes()
    );

    let der = pem_der(&pair.cert_pem);
    let held = on_chain_for(&tenant, &der).await;
    let peer = verify_peer(std::slice::from_ref(&der), &held, SystemTime::now()).unwrap();
    assert_eq!(
        (peer.owner.as_str(), peer.serial.as_str()),
        (owner.as_str(), pair.serial.as_str())
    );

    // Publishing it again: the chain's "certificate exists".
    let err = tenant
        .broadcast(vec![to_any(&pair.create_msg(&owner))])
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("certificate exists"), "{err:?}");

    let result = tenant
        .broadcast(vec![to_any(&revoke_msg(&owner, &pair.serial))])
        .await
        .unwrap();
    assert_eq!(result.code, 0, "{}", result.log);
    let held = on_chain_for(&tenant, &der).await;
    assert_eq!(held.len(), 1);
    assert!(!held[0].valid);
    assert!(matches!(
        verify_peer(&[der], &held, SystemTime::now()),
        Err(CertError::NotOnChain { .. })
    ));

    // The same query through CometBFT's abci_query path.
    let request = cert::QueryCertificatesRequest {
        filter: Some(cert::CertificateFilter {
            owner: owner.clone(),
            state: "revoked".into(),
            ..Default::default()
        }),
        pagination: None,
    };
    let bytes = devnet::abci_query::query(
        &running.node,
        "/akash.cert.v1.Query/Certificates",
        &request.encode_to_vec(),
    )
    .await
    .unwrap();
    let answer = cert::QueryCertificatesResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!(answer.certificates.len(), 1);
    assert_eq!(answer.certificates[0].serial, pair.serial);

    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditors_signature_is_read_back_as_audited_attributes() {
    let (_home, running) = start().await;
    let auditor = client(&running, TEST_MNEMONICS[1]);
    let provider = client(&running, TEST_MNEMONICS[3]);
    let owner = provider.address().to_owned();

    assert!(
        provider
            .provider_audited_attributes(&owner)
            .await
            .unwrap()
            .is_empty()
    );

    let tier = Attribute {
        key: "tier".into(),
        value: "community".into(),
    };
    let region = Attribute {
        key: "region".into(),
        value: "eu-west".into(),
    };
    let sign = audit::MsgSignProviderAttributes {
        owner: owner.clone(),
        auditor: auditor.address().to_owned(),
        attributes: vec![tier.clone(), region.clone()],
    };
    let result = auditor.broadcast(vec![to_any(&sign)]).await.unwrap();
    assert_eq!(result.code, 0, "{}", result.log);

    let audited = provider.provider_audited_attributes(&owner).await.unwrap();
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].owner, owner);
    assert_eq!(audited[0].auditor, auditor.address());
    assert_eq!(audited[0].attributes, vec![region, tier.clone()]);

    // The provider cannot delete what the auditor signed.
    let delete = audit::MsgDeleteProviderAttributes {
        owner: owner.clone(),
        auditor: owner.clone(),
        keys: vec![],
    };
    let err = provider.broadcast(vec![to_any(&delete)]).await.unwrap_err();
    assert!(format!("{err:?}").contains("address not found"), "{err:?}");

    // The auditor deletes one key.
    let delete = audit::MsgDeleteProviderAttributes {
        owner: owner.clone(),
        auditor: auditor.address().to_owned(),
        keys: vec!["region".into()],
    };
    let result = auditor.broadcast(vec![to_any(&delete)]).await.unwrap();
    assert_eq!(result.code, 0, "{}", result.log);
    let audited = provider.provider_audited_attributes(&owner).await.unwrap();
    assert_eq!(audited[0].attributes, vec![tier]);

    // The audit queries over gRPC and abci_query.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut q = audit::query_client::QueryClient::new(channel.clone());
    let all = q
        .all_providers_attributes(audit::QueryAllProvidersAttributesRequest { pagination: None })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.providers.len(), 1);
    let by_auditor = q
        .auditor_attributes(audit::QueryAuditorAttributesRequest {
            auditor: auditor.address().to_owned(),
            pagination: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_auditor.providers, all.providers);
    let missing = q
        .provider_auditor_attributes(audit::QueryProviderAuditorRequest {
            auditor: owner.clone(),
            owner: owner.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let bytes = devnet::abci_query::query(
        &running.node,
        "/akash.audit.v1.Query/ProviderAuditorAttributes",
        &audit::QueryProviderAuditorRequest {
            auditor: auditor.address().to_owned(),
            owner: owner.clone(),
        }
        .encode_to_vec(),
    )
    .await
    .unwrap();
    let answer = audit::QueryProvidersResponse::decode(bytes.as_slice()).unwrap();
    assert_eq!(answer.providers, all.providers);

    // Escrow queries: a deployment's account, by owner prefix and state.
    let tenant = client(&running, TEST_MNEMONICS[2]);
    let tenant_addr = tenant.address().to_owned();
    let msg = devnet::sign::create_deployment_msg(&tenant_addr, 7, &["web"], [3; 32]);
    let result = tenant.broadcast(vec![to_any(&msg)]).await.unwrap();
    assert_eq!(result.code, 0, "{}", result.log);
    let mut e = escrow::query_client::QueryClient::new(channel);
    let accounts = e
        .accounts(escrow::QueryAccountsRequest {
            state: "open".into(),
            xid: tenant_addr.clone(),
            pagination: None,
        })
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        accounts[0].id.as_ref().unwrap().xid,
        format!("{tenant_addr}/7")
    );
    let none = e
        .accounts(escrow::QueryAccountsRequest {
            state: "closed".into(),
            xid: String::new(),
            pagination: None,
        })
        .await
        .unwrap()
        .into_inner()
        .accounts;
    assert!(none.is_empty());
    let payments = e
        .payments(escrow::QueryPaymentsRequest {
            state: String::new(),
            xid: tenant_addr,
            pagination: None,
        })
        .await
        .unwrap()
        .into_inner()
        .payments;
    assert!(payments.is_empty(), "no lease, no payment");

    running.shutdown().await.unwrap();
}
