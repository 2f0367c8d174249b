//! The node: committed state, the mempool and its check state, block production.
//!
//! `CheckTx` runs a transaction's ante step on the check state (the committed state plus the
//! mempool's transactions), so a client can send several transactions with consecutive sequences
//! within one block. Every block time, the mempool's transactions run in order on a copy of the
//! committed state; the block, its results and the state's changes are committed to the store
//! together. The copies share the state's maps (see [`crate::state`]), so neither a check nor a
//! block costs more with a large state.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::{broadcast, watch};

use crate::ante::{self, Mode, Params, TxResult};
use crate::state::State;
use crate::store::{BlockRecord, Store, TxLocation};

/// How the node is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub chain_id: String,
    pub block_time: Duration,
    /// Minimum gas prices (denom, price × 10⁶), see [`ante::parse_gas_prices`].
    pub min_gas_prices: Vec<(String, u128)>,
    /// The whitepaper rules applied at the end of each block (off by default).
    pub rules: crate::whitepaper::WhitepaperRules,
}

/// The shortest block time the node accepts.
pub const MIN_BLOCK_TIME: Duration = Duration::from_millis(100);

/// A transaction found in a committed block.
#[derive(Debug, Clone)]
pub struct FoundTx {
    pub hash: String,
    pub location: TxLocation,
    pub raw: Vec<u8>,
    pub result: TxResult,
    pub block_time: String,
}

struct Inner {
    committed: State,
    /// The app hash of `committed`.
    app_hash: [u8; 32],
    check: State,
    mempool: Vec<(String, Vec<u8>)>,
    /// The hashes in `mempool`, so that admission does not scan it.
    pending: HashSet<String>,
    last_block_hash: String,
}

pub struct Node {
    params: Params,
    rules: crate::whitepaper::WhitepaperRules,
    block_time: Duration,
    store: Store,
    inner: Mutex<Inner>,
    heights: watch::Sender<u64>,
    blocks: broadcast::Sender<Arc<BlockRecord>>,
}

/// How many committed blocks a slow event subscriber may fall behind before it misses some.
pub const BLOCK_EVENTS_CAPACITY: usize = 256;

/// Upper-case hex SHA-256 of the raw transaction: its hash everywhere (RPC, gRPC, events).
pub fn tx_hash(raw: &[u8]) -> String {
    data_encoding::HEXUPPER.encode(&Sha256::digest(raw))
}

impl Node {
    /// Opens the node's home: resumes the stored chain, or writes `genesis` to a fresh home.
    /// Returns the node and whether the home was fresh.
    pub fn open(
        home: &Path,
        config: NodeConfig,
        genesis: impl FnOnce() -> anyhow::Result<State>,
    ) -> anyhow::Result<(Arc<Self>, bool)> {
        anyhow::ensure!(
            config.block_time >= MIN_BLOCK_TIME,
            "block time {:?} is below the minimum of {:?}",
            config.block_time,
            MIN_BLOCK_TIME
        );
        let store = Store::open(home)?;
        let (state, app_hash, fresh) = match store.load_state()? {
            Some((s, app_hash)) => {
                anyhow::ensure!(
                    s.chain_id == config.chain_id,
                    "home {} holds chain {:?}, not {:?}",
                    home.display(),
                    s.chain_id,
                    config.chain_id
                );
                (s, app_hash, false)
            }
            None => {
                let s = genesis()?;
                anyhow::ensure!(
                    s.chain_id == config.chain_id,
                    "genesis is for another chain id"
                );
                let app_hash = store.commit_genesis(&s)?;
                (s, app_hash, true)
            }
        };
        let last_block_hash = if state.height == 0 {
            String::new()
        } else {
            store
                .block(state.height)?
                .with_context(|| format!("block {} missing from the store", state.height))?
                .hash
        };
        let (heights, _) = watch::channel(state.height);
        let node = Self {
            params: Params::new(&config.chain_id, config.min_gas_prices),
            rules: config.rules,
            block_time: config.block_time,
            store,
            inner: Mutex::new(Inner {
                check: state.clone(),
                committed: state,
                app_hash,
                mempool: Vec::new(),
                pending: HashSet::new(),
                last_block_hash,
            }),
            heights,
            blocks: broadcast::channel(BLOCK_EVENTS_CAPACITY).0,
        };
        node.index_events();
        Ok((Arc::new(node), fresh))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every change is a whole-value
        // replacement), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn chain_id(&self) -> &str {
        &self.params.chain_id
    }

    pub fn block_time(&self) -> Duration {
        self.block_time
    }

    /// Height of the last committed block.
    pub fn height(&self) -> u64 {
        self.lock().committed.height
    }

    /// Reads the committed state.
    pub fn with_state<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock().committed)
    }

    /// Mempool admission. `Err` when the transaction is already known (CometBFT's cache error);
    /// otherwise the check result, and the transaction is queued when its code is 0.
    pub fn check_tx(&self, raw: Vec<u8>) -> Result<(String, TxResult), String> {
        let hash = tx_hash(&raw);
        let mut inner = self.lock();
        if inner.pending.contains(&hash) || matches!(self.store.tx_location(&hash), Ok(Some(_))) {
            return Err("tx already exists in cache".to_owned());
        }
        let mut check = inner.check.clone();
        let result = ante::run_tx(&mut check, &raw, Mode::Check, &self.params);
        if result.is_ok() {
            inner.check = check;
            inner.pending.insert(hash.clone());
            inner.mempool.push((hash.clone(), raw));
        }
        Ok((hash, result))
    }

    /// Runs a transaction on a copy of the check state without signature checks or gas limit.
    pub fn simulate(&self, raw: &[u8]) -> TxResult {
        let mut state = self.lock().check.clone();
        ante::run_tx(&mut state, raw, Mode::Simulate, &self.params)
    }

    /// Produces and commits the next block with the mempool's transactions.
    pub fn produce_block(&self) -> anyhow::Result<BlockRecord> {
        let mut inner = self.lock();
        let mempool = std::mem::take(&mut inner.mempool);
        inner.pending.clear();
        let mut state = inner.committed.clone();
        let app_hash = data_encoding::HEXUPPER.encode(&inner.app_hash);
        let mut tx_results = Vec::with_capacity(mempool.len());
        for (_, raw) in &mempool {
            tx_results.push(ante::run_tx(&mut state, raw, Mode::Deliver, &self.params));
        }
        state.height += 1;
        let height = state.height;
        let finalize_block_events = crate::whitepaper::end_block(&mut state, height, &self.rules);
        let time = crate::time::rfc3339(SystemTime::now());
        let txs: Vec<Vec<u8>> = mempool.iter().map(|(_, raw)| raw.clone()).collect();
        let hashes: Vec<String> = mempool.into_iter().map(|(h, _)| h).collect();
        // Only what the block changed: the maps share every other node with the committed state.
        let changes = state.changes_since(&inner.committed)?;
        let result_app_hash = state.next_app_hash(&inner.app_hash, &changes);
        let hash = block_hash(&HeaderForHash {
            chain_id: &state.chain_id,
            height: state.height,
            time: &time,
            last_block_hash: &inner.last_block_hash,
            app_hash: &app_hash,
            txs: &hashes,
        });
        let block = BlockRecord {
            height: state.height,
            time,
            hash: hash.clone(),
            last_block_hash: inner.last_block_hash.clone(),
            app_hash,
            result_app_hash: data_encoding::HEXUPPER.encode(&result_app_hash),
            txs,
            tx_results,
            finalize_block_events,
        };
        self.store
            .commit_block(&block, &state.header(), &changes, &result_app_hash, &hashes)?;
        inner.check = state.clone();
        inner.committed = state;
        inner.app_hash = result_app_hash;
        inner.last_block_hash = hash;
        let height = block.height;
        drop(inner);
        // No receiver (nobody subscribed) is not an error.
        let _ = self.blocks.send(Arc::new(block.clone()));
        self.heights.send_replace(height);
        self.index_events();
        Ok(block)
    }

    /// Brings the index by event up to the committed height (after a block, and on opening a home
    /// whose last blocks were committed but not indexed). A failure is logged and retried after
    /// the next block; `tx_search` reads the blocks the index lacks meanwhile.
    fn index_events(&self) {
        let result = (|| -> anyhow::Result<()> {
            let height = self.height();
            for h in self.store.events_indexed_height()? + 1..=height {
                let block = self
                    .store
                    .block(h)?
                    .with_context(|| format!("block {h} missing from the store"))?;
                self.store.index_events(&block)?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            tracing::warn!(error = %e, "indexing transactions by event failed; will retry");
        }
    }

    /// The last height `tx_search`'s index by event covers.
    pub fn events_indexed_height(&self) -> anyhow::Result<u64> {
        self.store.events_indexed_height()
    }

    /// Produces a block every block time until `shutdown` resolves.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut ticker = tokio::time::interval(self.block_time);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = ticker.tick() => {
                    let node = self.clone();
                    let block = tokio::task::spawn_blocking(move || node.produce_block()).await??;
                    tracing::debug!(height = block.height, txs = block.txs.len(), "committed block");
                    for (i, r) in block.tx_results.iter().enumerate() {
                        tracing::info!(height = block.height, index = i, code = r.code, gas_used = r.gas_used, log = %r.log, "tx");
                    }
                }
            }
        }
    }

    /// A receiver of the committed height, updated after each block.
    pub fn subscribe_heights(&self) -> watch::Receiver<u64> {
        self.heights.subscribe()
    }

    /// A receiver of each block as it is committed (the websocket's event source).
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<BlockRecord>> {
        self.blocks.subscribe()
    }

    pub fn block(&self, height: u64) -> anyhow::Result<Option<BlockRecord>> {
        self.store.block(height)
    }

    /// A committed transaction by hash (upper- or lower-case hex).
    pub fn tx(&self, hash: &str) -> anyhow::Result<Option<FoundTx>> {
        let hash = hash.to_ascii_uppercase();
        let Some(location) = self.store.tx_location(&hash)? else {
            return Ok(None);
        };
        let block = self
            .store
            .block(location.height)?
            .with_context(|| format!("block {} of tx {hash} is missing", location.height))?;
        let i = location.index as usize;
        let (Some(raw), Some(result)) = (block.txs.get(i), block.tx_results.get(i)) else {
            anyhow::bail!("tx {hash} is not at index {i} of block {}", location.height);
        };
        Ok(Some(FoundTx {
            hash,
            location,
            raw: raw.clone(),
            result: result.clone(),
            block_time: block.time,
        }))
    }

    /// The committed transactions with event `attribute` equal to `value` between heights `low`
    /// and `high`, by height and index.
    pub fn tx_locations_with(
        &self,
        attribute: &str,
        value: &str,
        low: u64,
        high: u64,
    ) -> anyhow::Result<Vec<crate::store::TxLocation>> {
        self.store.tx_locations_with(attribute, value, low, high)
    }

    /// Waits until the transaction is in a committed block, up to `timeout`.
    pub async fn wait_for_tx(
        &self,
        hash: &str,
        timeout: Duration,
    ) -> anyhow::Result<Option<FoundTx>> {
        let mut heights = self.subscribe_heights();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self.tx(hash)? {
                return Ok(Some(found));
            }
            match tokio::time::timeout_at(deadline, heights.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Ok(None),
            }
        }
    }
}

#[derive(Serialize)]
struct HeaderForHash<'a> {
    chain_id: &'a str,
    height: u64,
    time: &'a str,
    last_block_hash: &'a str,
    app_hash: &'a str,
    txs: &'a [String],
}

fn block_hash(h: &HeaderForHash<'_>) -> String {
    let json = serde_json::to_vec(h).unwrap_or_default();
    data_encoding::HEXUPPER.encode(&Sha256::digest(json))
}

#[cfg(test)]
mod tests;
