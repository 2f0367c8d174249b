//! Transactions as the devnet's ante handler and message handlers take them (`CheckTx`,
//! `DeliverTx`, `Simulate`): `TxRaw`, its body and auth info, every message type's `Any`.
//! Seeds are the world's signed transactions; simulation (no signature check) lets mutated
//! messages reach their handlers, run against the genesis state or the world's state.

use std::sync::Arc;

use devnet::ante::{Mode, run_tx};

use crate::engine::{Target, fnv, label};
use crate::mutate::{self, Rng};
use crate::world::World;

pub struct DevnetTx {
    world: Arc<World>,
}

impl DevnetTx {
    pub fn new(world: Arc<World>) -> Self {
        Self { world }
    }
}

impl Target for DevnetTx {
    fn name(&self) -> &'static str {
        "devnet_tx"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        self.world.txs.clone()
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        let mut out = base.to_vec();
        for _ in 0..1 + rng.below(3) {
            mutate::proto(rng, &mut out, donor);
        }
        out
    }

    fn run(&mut self, input: &[u8]) -> String {
        let h = fnv(input);
        let mut state = if h & 1 == 0 {
            self.world.state.clone()
        } else {
            self.world.genesis.clone()
        };
        let mode = match (h >> 1) % 4 {
            0 => Mode::Check,
            1 => Mode::Deliver,
            _ => Mode::Simulate,
        };
        let r = run_tx(&mut state, input, mode, &self.world.params);
        if r.is_ok() {
            format!("{mode:?}:ok:{}", r.events.len().min(9))
        } else {
            label(&format!("{mode:?}:{}:{}", r.codespace, r.code), &r.log)
        }
    }
}
