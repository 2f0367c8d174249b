//! Real inputs to seed the targets with, made once per campaign: the repository's SDL files and
//! their manifests, a devnet with a deployment, a provider, certificates, a bid, a lease and an
//! audit (every transaction signed as a wallet signs it and committed in blocks), and what its
//! RPC and queries answer about them.

use std::sync::Arc;
use std::time::Duration;

use chain_client::akash::audit::v1 as audit;
use chain_client::akash::base::attributes::v1::Attribute;
use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::cert::v1 as cv1;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::akash::market::{v1 as mv1, v1beta5 as mv5};
use chain_client::akash::provider::v1beta4 as pv4;
use chain_client::cert::{CertificateKeyPair, CertificateRole};
use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use crds::sdl::Sdl;
use devnet::ante::{Params, parse_gas_prices};
use devnet::genesis::{TestAccount, genesis_state, test_accounts};
use devnet::node::{Node, NodeConfig};
use devnet::sign::{SignOpts, any_of, sign_tx};
use devnet::state::State;
use serde_json::{Value, json};

pub const CHAIN_ID: &str = "akash-fuzz-1";
/// The deployment the world's tenant made.
pub const DSEQ: u64 = 100;

#[path = "../../testdata/sdl_files.rs"]
mod sdl_files;

/// Everything the targets start from.
pub struct World {
    pub accounts: Vec<TestAccount>,
    /// Every SDL file of the repository (`testdata/sdl/`, `crds/tests/sdl-edge/`).
    pub sdl_texts: Vec<String>,
    /// The files among them that are valid.
    pub sdls: Vec<Sdl>,
    pub params: Params,
    pub genesis: State,
    /// The state after every transaction of [`World::txs`] was delivered.
    pub state: State,
    /// Signed transactions: those the chain committed, then more that it did not run (closing the
    /// lease, the group, the deployment; revoking; updating), for the transaction targets.
    pub txs: Vec<Vec<u8>>,
    /// A node holding the committed blocks (its home is removed with the world).
    pub node: Arc<Node>,
    _home: tempfile::TempDir,
    /// The provider's and the tenant's certificates, as published.
    pub provider_cert: CertificateKeyPair,
    pub tenant_cert: CertificateKeyPair,
}

impl World {
    pub fn tenant(&self) -> &str {
        &self.accounts[0].address
    }

    pub fn provider(&self) -> &str {
        &self.accounts[1].address
    }

    pub fn auditor(&self) -> &str {
        &self.accounts[3].address
    }

    /// The SDL the world's deployment was made from.
    pub fn deployed_sdl(&self) -> &Sdl {
        &self.sdls[0]
    }

    pub fn build() -> World {
        let sdl_texts = sdl_texts();
        let mut sdls: Vec<Sdl> = sdl_texts
            .iter()
            .filter_map(|t| Sdl::parse(t).ok())
            .collect();
        // The deployment is of a small, common SDL: the first one in the list.
        let first = sdls
            .iter()
            .position(|s| s.manifest().len() == 1 && s.manifest()[0].services.len() == 1)
            .expect("a one-service SDL among the test files");
        sdls.swap(0, first);

        let accounts = test_accounts().expect("the devnet's test accounts");
        let params = Params::new(CHAIN_ID, parse_gas_prices("0.025uakt").expect("gas prices"));
        let genesis = genesis_state(CHAIN_ID).expect("the genesis state");
        let home = tempfile::tempdir().expect("a temporary directory");
        let config = NodeConfig {
            chain_id: CHAIN_ID.into(),
            block_time: Duration::from_secs(1),
            min_gas_prices: params.min_gas_prices.clone(),
            rules: Default::default(),
        };
        let g = genesis.clone();
        let (node, _) = Node::open(home.path(), config, move || Ok(g)).expect("the devnet node");

        let provider_cert = chain_client::cert::generate(
            &accounts[1].address,
            &CertificateRole::Server {
                dns_names: vec!["provider.example.com".into()],
            },
            Duration::from_secs(365 * 86_400),
        )
        .expect("a provider certificate");
        let tenant_cert = chain_client::cert::generate(
            &accounts[0].address,
            &CertificateRole::Client,
            Duration::from_secs(365 * 86_400),
        )
        .expect("a tenant certificate");

        let mut world = World {
            sdl_texts,
            sdls,
            params,
            state: genesis.clone(),
            genesis,
            txs: Vec::new(),
            node,
            _home: home,
            provider_cert,
            tenant_cert,
            accounts,
        };
        world.make_blocks();
        world.state = world.node.with_state(State::clone);
        world
    }

    fn sign(&self, who: usize, seq: u64, msgs: Vec<cosmrs::Any>) -> Vec<u8> {
        let mut opts = SignOpts::new(CHAIN_ID, who as u64, seq);
        opts.gas_limit = 2_000_000;
        opts.fee_amount = 50_000;
        sign_tx(&self.accounts[who].key, msgs, &opts).expect("a signed transaction")
    }

    fn ids(&self) -> (dv1::DeploymentId, dv1::GroupId, mv1::BidId, mv1::LeaseId) {
        let (tenant, provider) = (self.tenant().to_owned(), self.provider().to_owned());
        let d = dv1::DeploymentId {
            owner: tenant.clone(),
            dseq: DSEQ,
        };
        let g = dv1::GroupId {
            owner: tenant.clone(),
            dseq: DSEQ,
            gseq: 1,
        };
        let b = mv1::BidId {
            owner: tenant.clone(),
            dseq: DSEQ,
            gseq: 1,
            oseq: 1,
            provider: provider.clone(),
            bseq: 0,
        };
        let l = mv1::LeaseId {
            owner: tenant,
            dseq: DSEQ,
            gseq: 1,
            oseq: 1,
            provider,
            bseq: 0,
        };
        (d, g, b, l)
    }

    /// Commits the world's transactions, a few per block.
    fn make_blocks(&mut self) {
        let (did, gid, bid, lid) = self.ids();
        let sdl = self.deployed_sdl();
        let deposit = |amount: &str| Deposit {
            amount: Some(Coin {
                denom: "uact".into(),
                amount: amount.into(),
            }),
            sources: vec![Source::Balance as i32],
        };
        let create = dv4::MsgCreateDeployment {
            id: Some(did.clone()),
            groups: operator::chain_groups::to_chain(sdl.groups()).expect("chain groups"),
            hash: sdl.manifest_version().to_vec(),
            deposit: Some(deposit("5000000")),
            reclamation: None,
        };
        let attributes = vec![Attribute {
            key: "region".into(),
            value: "us-west".into(),
        }];
        let provider = pv4::MsgCreateProvider {
            owner: self.provider().into(),
            host_uri: "https://provider.example.com:8443".into(),
            attributes: attributes.clone(),
            info: None,
        };
        let price = chain_client::dec::dec_coin("uact", "1").expect("a price");
        let blocks: Vec<Vec<(usize, u64, cosmrs::Any)>> = vec![
            vec![
                (0, 0, any_of(&create)),
                (1, 0, any_of(&provider)),
                (
                    1,
                    1,
                    any_of(&self.provider_cert.create_msg(self.provider())),
                ),
                (0, 1, any_of(&self.tenant_cert.create_msg(self.tenant()))),
            ],
            vec![
                (
                    1,
                    2,
                    any_of(&mv5::MsgCreateBid {
                        id: Some(bid.clone()),
                        price: Some(price),
                        deposit: Some(deposit("500000")),
                        resources_offer: vec![],
                        reclamation_window: None,
                    }),
                ),
                (
                    3,
                    0,
                    any_of(&audit::MsgSignProviderAttributes {
                        owner: self.provider().into(),
                        auditor: self.auditor().into(),
                        attributes: attributes.clone(),
                    }),
                ),
            ],
            vec![(
                0,
                2,
                any_of(&mv5::MsgCreateLease {
                    bid_id: Some(bid.clone()),
                }),
            )],
            vec![
                (
                    1,
                    3,
                    any_of(&mv5::MsgWithdrawLease {
                        id: Some(lid.clone()),
                    }),
                ),
                (
                    0,
                    3,
                    any_of(&MsgSend {
                        from_address: self.tenant().into(),
                        to_address: self.accounts[2].address.clone(),
                        amount: vec![Coin {
                            denom: "uakt".into(),
                            amount: "1000".into(),
                        }],
                    }),
                ),
                (
                    0,
                    4,
                    any_of(&dv4::MsgUpdateDeployment {
                        id: Some(did.clone()),
                        hash: vec![7; 32],
                    }),
                ),
            ],
        ];
        for block in blocks {
            for (who, seq, msg) in block {
                let raw = self.sign(who, seq, vec![msg]);
                let (_, result) = self.node.check_tx(raw.clone()).expect("a new transaction");
                assert!(result.is_ok(), "world transaction refused: {}", result.log);
                self.txs.push(raw);
            }
            self.node.produce_block().expect("a block");
        }
        // Signed but not run: each one valid against the final state.
        let later: Vec<(usize, u64, cosmrs::Any)> = vec![
            (
                1,
                4,
                any_of(&mv5::MsgCloseBid {
                    id: Some(bid),
                    reason: 0,
                }),
            ),
            (
                0,
                5,
                any_of(&mv5::MsgCloseLease {
                    id: Some(lid),
                    reason: 0,
                }),
            ),
            (
                0,
                5,
                any_of(&dv4::MsgPauseGroup {
                    id: Some(gid.clone()),
                }),
            ),
            (
                0,
                5,
                any_of(&dv4::MsgStartGroup {
                    id: Some(gid.clone()),
                }),
            ),
            (0, 5, any_of(&dv4::MsgCloseGroup { id: Some(gid) })),
            (0, 5, any_of(&dv4::MsgCloseDeployment { id: Some(did) })),
            (
                1,
                4,
                any_of(&pv4::MsgUpdateProvider {
                    owner: self.provider().into(),
                    host_uri: "https://p2.example.com:8443".into(),
                    attributes,
                    info: None,
                }),
            ),
            (
                1,
                4,
                any_of(&chain_client::cert::revoke_msg(
                    self.provider(),
                    &self.provider_cert.serial,
                )),
            ),
            (
                3,
                1,
                any_of(&audit::MsgDeleteProviderAttributes {
                    owner: self.provider().into(),
                    auditor: self.auditor().into(),
                    keys: vec!["region".into()],
                }),
            ),
        ];
        for (who, seq, msg) in later {
            let raw = self.sign(who, seq, vec![msg]);
            self.txs.push(raw);
        }
        let _ = cv1::State::Valid;
    }

    /// JSON-RPC responses of the world's node, as a client receives them: `status`, `abci_info`,
    /// every block and its results, every transaction, a CheckTx answer, an error.
    pub fn rpc_responses(&self, rt: &tokio::runtime::Runtime) -> Vec<Vec<u8>> {
        let node = &self.node;
        let mut calls: Vec<(&str, Value)> = vec![("status", json!({})), ("abci_info", json!({}))];
        for h in 1..=node.height() {
            calls.push(("block", json!({"height": h.to_string()})));
            calls.push(("block_results", json!({"height": h.to_string()})));
        }
        for tx in &self.txs[..self.txs.len().min(10)] {
            let hash = devnet::node::tx_hash(tx);
            calls.push(("tx", json!({"hash": format!("0x{hash}")})));
        }
        calls.push((
            "broadcast_tx_sync",
            json!({"tx": data_encoding::BASE64.encode(&self.txs[0])}),
        ));
        calls.push(("block", json!({"height": "999999"})));
        calls.push((
            "tx_search",
            json!({"query": "tx.height>=1", "per_page": "5"}),
        ));
        let mut out = Vec::new();
        for (method, params) in calls {
            let params = params.as_object().cloned().unwrap_or_default();
            let r = rt.block_on(devnet::rpc::call(node, method, &params));
            let envelope = match r {
                Ok(result) => json!({"jsonrpc": "2.0", "id": 1, "result": result}),
                Err(e) => {
                    json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "Internal error", "data": format!("{e:?}")}})
                }
            };
            out.push(serde_json::to_vec(&envelope).expect("JSON"));
        }
        out
    }
}

fn sdl_texts() -> Vec<String> {
    let mut files = sdl_files::all_sdl_files();
    let edge = sdl_files::repo_root().join("crds/tests/sdl-edge");
    if edge.is_dir() {
        files.extend(sdl_files::yaml_files(&edge));
    }
    files
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}
