//! The embedded database under `--home` (redb, one file): the state after the last committed
//! block, every block with its transaction results, and an index of transactions by hash.
//!
//! A block is committed in one write transaction (block, index entries and state together), so a
//! crash leaves either the previous block or the new one, never half of it.

use std::path::Path;

use anyhow::Context;
use redb::{Database, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::ante::TxResult;
use crate::events::Event;
use crate::state::State;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const TXS: TableDefinition<&str, &[u8]> = TableDefinition::new("txs");
const STATE_KEY: &str = "state";

/// The database file's name inside the home directory.
pub const DB_FILE: &str = "devnet.redb";

/// A committed block and its results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    pub height: u64,
    pub time: String,
    /// Upper-case hex SHA-256 of the header fields.
    pub hash: String,
    pub last_block_hash: String,
    /// App hash before this block ran (CometBFT's header field).
    pub app_hash: String,
    /// App hash after this block ran (`block_results.app_hash`).
    pub result_app_hash: String,
    pub txs: Vec<Vec<u8>>,
    pub tx_results: Vec<TxResult>,
    pub finalize_block_events: Vec<Event>,
}

/// Where a transaction was included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    pub height: u64,
    pub index: u32,
}

pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the database in `home`.
    pub fn open(home: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(home).with_context(|| format!("creating {}", home.display()))?;
        let path = home.join(DB_FILE);
        let db = Database::create(&path).with_context(|| format!("opening {}", path.display()))?;
        let w = db.begin_write()?;
        w.open_table(META)?;
        w.open_table(BLOCKS)?;
        w.open_table(TXS)?;
        w.commit()?;
        Ok(Self { db })
    }

    /// The state after the last committed block, or `None` for a fresh home.
    pub fn load_state(&self) -> anyhow::Result<Option<State>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        match t.get(STATE_KEY)? {
            Some(v) => Ok(Some(
                serde_json::from_slice(v.value()).context("decoding stored state")?,
            )),
            None => Ok(None),
        }
    }

    /// Writes the genesis state of a fresh home.
    pub fn commit_genesis(&self, state: &State) -> anyhow::Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            meta.insert(STATE_KEY, serde_json::to_vec(state)?.as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    /// Commits a block, its transaction index and the state after it, atomically.
    pub fn commit_block(
        &self,
        block: &BlockRecord,
        state: &State,
        tx_hashes: &[String],
    ) -> anyhow::Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut blocks = w.open_table(BLOCKS)?;
            blocks.insert(block.height, serde_json::to_vec(block)?.as_slice())?;
            let mut txs = w.open_table(TXS)?;
            for (i, hash) in tx_hashes.iter().enumerate() {
                let loc = TxLocation {
                    height: block.height,
                    index: u32::try_from(i)?,
                };
                txs.insert(hash.as_str(), serde_json::to_vec(&loc)?.as_slice())?;
            }
            let mut meta = w.open_table(META)?;
            meta.insert(STATE_KEY, serde_json::to_vec(state)?.as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    pub fn block(&self, height: u64) -> anyhow::Result<Option<BlockRecord>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(BLOCKS)?;
        match t.get(height)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    /// Finds a transaction by its upper-case hex hash.
    pub fn tx_location(&self, hash: &str) -> anyhow::Result<Option<TxLocation>> {
        let r = self.db.begin_read()?;
        let t = r.open_table(TXS)?;
        match t.get(hash)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_state_and_tx_index_survive_reopening() {
        let home = tempfile::tempdir().unwrap();
        let mut state = State::new("c");
        state.add_coins("a", &[crate::state::Coin::new(5, "uakt")]);
        {
            let store = Store::open(home.path()).unwrap();
            assert_eq!(store.load_state().unwrap(), None);
            store.commit_genesis(&state).unwrap();
            state.height = 1;
            let block = BlockRecord {
                height: 1,
                time: "t".into(),
                hash: "H".into(),
                last_block_hash: String::new(),
                app_hash: String::new(),
                result_app_hash: String::new(),
                txs: vec![vec![1, 2, 3]],
                tx_results: Vec::new(),
                finalize_block_events: Vec::new(),
            };
            store.commit_block(&block, &state, &["AB".into()]).unwrap();
        }
        let store = Store::open(home.path()).unwrap();
        assert_eq!(store.load_state().unwrap(), Some(state));
        assert_eq!(store.block(1).unwrap().unwrap().txs, vec![vec![1, 2, 3]]);
        assert_eq!(store.block(2).unwrap(), None);
        assert_eq!(
            store.tx_location("AB").unwrap(),
            Some(TxLocation {
                height: 1,
                index: 0
            })
        );
        assert_eq!(store.tx_location("CD").unwrap(), None);
    }
}
