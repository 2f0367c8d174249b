//! The chain client's reading of CometBFT JSON-RPC answers (what a node, or anything answering in
//! its place, sends back): the envelope, `status`, CheckTx and `tx` results, `block_results` and
//! every Akash event in them. Seeds are the world's node's real answers and the chain client's
//! event fixtures.

use std::sync::Arc;

use chain_client::events::{BlockResults, decode_block_results};
use chain_client::rpc::{
    check_tx_from_json, latest_height_from_json, parse_response, tx_from_json,
};
use serde_json::Value;

use crate::engine::{Target, label};
use crate::mutate::{self, Rng};
use crate::world::World;

pub struct ChainRpc {
    seeds: Vec<Vec<u8>>,
}

impl ChainRpc {
    pub fn new(world: Arc<World>) -> Self {
        let rt = crate::runtime();
        let mut seeds = world.rpc_responses(&rt);
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../chain-client/tests/fixtures/events");
        for name in ["block_results_market.json", "block_results_empty.json"] {
            if let Ok(bytes) = std::fs::read(fixtures.join(name)) {
                seeds.push(bytes);
            }
        }
        Self { seeds }
    }
}

impl Target for ChainRpc {
    fn name(&self) -> &'static str {
        "chain_rpc"
    }

    fn weight(&self) -> u64 {
        12
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        self.seeds.clone()
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        if rng.one_in(3) {
            let mut out = base.to_vec();
            mutate::bytes(rng, &mut out, donor);
            return out;
        }
        let mut tree: Value = serde_json::from_slice(base).unwrap_or(Value::Null);
        let donor: Value = serde_json::from_slice(donor).unwrap_or(Value::Null);
        for _ in 0..1 + rng.below(3) {
            mutate::json(rng, &mut tree, &donor);
        }
        serde_json::to_vec(&tree).unwrap_or_default()
    }

    fn run(&mut self, input: &[u8]) -> String {
        let mut out = String::new();
        match parse_response::<Value>(input) {
            Err(e) => {
                out.push_str(&label("envelope", &e.to_string()));
                out.push_str(if chain_client::rpc::is_tx_not_found(&e) {
                    ":not found"
                } else {
                    ""
                });
            }
            Ok(v) => {
                out.push_str(&crate::targets::outcome(
                    "height",
                    &latest_height_from_json(&v),
                ));
                out.push_str(&crate::targets::outcome(" check", &check_tx_from_json(&v)));
                out.push_str(&crate::targets::outcome(" tx", &tx_from_json(&v)));
            }
        }
        match parse_response::<BlockResults>(input) {
            Err(e) => out.push_str(&label(" block", &e.to_string())),
            Ok(results) => match decode_block_results(&results) {
                Ok(events) => out.push_str(&format!(" events:{}", events.events.len().min(9))),
                Err(e) => out.push_str(&label(" events", &e.to_string())),
            },
        }
        out
    }
}
