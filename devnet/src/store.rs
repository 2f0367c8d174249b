//! The embedded database under `--home` (redb, one file): the state after the last committed
//! block (one entry per key of each of its maps, see [`crate::state::Entry`], so a block writes
//! only what it changed), every block with its transaction results, an index of transactions by
//! hash and one by event attribute (`tx_search` reads it instead of every block).
//!
//! A block is committed in one write transaction (block, index entries and state changes
//! together), so a crash leaves either the previous block or the new one, never half of it.

use std::path::Path;

use anyhow::Context;
use redb::{Database, MultimapTableDefinition, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::ante::TxResult;
use crate::events::Event;
use crate::state::{Entry, Header, State};

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const TXS: TableDefinition<&str, &[u8]> = TableDefinition::new("txs");
/// The state's entries: `<map>/<key>` → the value's JSON.
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
/// `<event type>.<attribute>=<value>` → the transactions with it, as `height << 32 | index`.
const TX_EVENTS: MultimapTableDefinition<&str, u64> = MultimapTableDefinition::new("tx_events");
/// The whole state as one JSON value, as homes written before the entries kept it; read once and
/// rewritten as entries.
const LEGACY_STATE_KEY: &str = "state";
const HEADER_KEY: &str = "state-header";
const APP_HASH_KEY: &str = "app-hash";
const EVENTS_INDEXED_KEY: &str = "events-indexed-height";

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
        w.open_table(STATE)?;
        w.open_multimap_table(TX_EVENTS)?;
        w.commit()?;
        Ok(Self { db })
    }

    /// The state after the last committed block and its app hash, or `None` for a fresh home.
    pub fn load_state(&self) -> anyhow::Result<Option<(State, [u8; 32])>> {
        let r = self.db.begin_read()?;
        let meta = r.open_table(META)?;
        let Some(header) = meta.get(HEADER_KEY)? else {
            let Some(legacy) = meta.get(LEGACY_STATE_KEY)? else {
                return Ok(None);
            };
            let state: State =
                serde_json::from_slice(legacy.value()).context("decoding stored state")?;
            // The hash such a home's blocks were made with; its next block chains on it.
            let app_hash = state.app_hash();
            self.rewrite_state(&state, &app_hash, true)?;
            return Ok(Some((state, app_hash)));
        };
        let header: Header =
            serde_json::from_slice(header.value()).context("decoding stored state header")?;
        let app_hash: [u8; 32] = meta
            .get(APP_HASH_KEY)?
            .context("the stored state has no app hash")?
            .value()
            .try_into()
            .context("the stored app hash is not 32 bytes")?;
        let table = r.open_table(STATE)?;
        let mut entries = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            entries.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(Some((State::from_entries(header, entries)?, app_hash)))
    }

    /// Writes the genesis state of a fresh home; returns its app hash.
    pub fn commit_genesis(&self, state: &State) -> anyhow::Result<[u8; 32]> {
        let app_hash = state.app_hash();
        self.rewrite_state(state, &app_hash, false)?;
        Ok(app_hash)
    }

    /// Writes every entry of `state` (and drops a legacy whole-state value).
    fn rewrite_state(
        &self,
        state: &State,
        app_hash: &[u8; 32],
        legacy: bool,
    ) -> anyhow::Result<()> {
        let w = self.db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            if legacy {
                meta.remove(LEGACY_STATE_KEY)?;
            }
            write_state(
                &mut meta,
                &mut w.open_table(STATE)?,
                &state.header(),
                &state.entries()?,
                app_hash,
            )?;
        }
        w.commit()?;
        Ok(())
    }

    /// Commits a block, its transactions' index by hash and the state's `changes` with the header
    /// and app hash after it, atomically. The index by event follows ([`Store::index_events`]).
    pub fn commit_block(
        &self,
        block: &BlockRecord,
        header: &Header,
        changes: &[Entry],
        app_hash: &[u8; 32],
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
            write_state(
                &mut w.open_table(META)?,
                &mut w.open_table(STATE)?,
                header,
                changes,
                app_hash,
            )?;
        }
        w.commit()?;
        Ok(())
    }

    /// Adds the committed block at `height` to the index by event attribute, if it is the next
    /// one the index lacks. Separate from the block's commit so that the node's lock is not held
    /// for it; as CometBFT's indexer, it runs after the commit. [`Store::events_indexed_height`]
    /// says how far it has got; `tx_search` reads the blocks above that.
    pub fn index_events(&self, block: &BlockRecord) -> anyhow::Result<()> {
        if block.height != self.events_indexed_height()? + 1 {
            return Ok(());
        }
        let w = self.db.begin_write()?;
        {
            let mut by_event = w.open_multimap_table(TX_EVENTS)?;
            for (i, (raw, result)) in block.txs.iter().zip(&block.tx_results).enumerate() {
                let loc = TxLocation {
                    height: block.height,
                    index: u32::try_from(i)?,
                };
                let hash = crate::node::tx_hash(raw);
                for (attribute, values) in
                    &crate::query::tx_event_map(&result.events, &hash, block.height)
                {
                    if crate::rpc::UNINDEXED.contains(&attribute.as_str()) {
                        continue;
                    }
                    for value in values {
                        by_event.insert(format!("{attribute}={value}").as_str(), loc.packed())?;
                    }
                }
            }
            w.open_table(META)?
                .insert(EVENTS_INDEXED_KEY, block.height.to_be_bytes().as_slice())?;
        }
        w.commit()?;
        Ok(())
    }

    /// The last height in the index by event (0 before the first block).
    pub fn events_indexed_height(&self) -> anyhow::Result<u64> {
        let r = self.db.begin_read()?;
        let meta = r.open_table(META)?;
        Ok(match meta.get(EVENTS_INDEXED_KEY)? {
            Some(v) => u64::from_be_bytes(
                v.value()
                    .try_into()
                    .context("the stored indexed height is not 8 bytes")?,
            ),
            None => 0,
        })
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

    /// The transactions with `attribute` (`<event type>.<key>`) equal to `value`, from height
    /// `low` to `high`, by height and index.
    pub fn tx_locations_with(
        &self,
        attribute: &str,
        value: &str,
        low: u64,
        high: u64,
    ) -> anyhow::Result<Vec<TxLocation>> {
        let r = self.db.begin_read()?;
        let t = r.open_multimap_table(TX_EVENTS)?;
        let mut out = Vec::new();
        for packed in t.get(format!("{attribute}={value}").as_str())? {
            let loc = TxLocation::unpack(packed?.value());
            if loc.height > high {
                break; // ascending
            }
            if loc.height >= low {
                out.push(loc);
            }
        }
        Ok(out)
    }
}

impl TxLocation {
    /// Height and index in one number that orders as (height, index).
    fn packed(self) -> u64 {
        (self.height << 32) | u64::from(self.index)
    }

    fn unpack(packed: u64) -> Self {
        Self {
            height: packed >> 32,
            index: (packed & u64::from(u32::MAX)) as u32,
        }
    }
}

fn write_state(
    meta: &mut redb::Table<'_, &str, &[u8]>,
    table: &mut redb::Table<'_, &str, &[u8]>,
    header: &Header,
    changes: &[Entry],
    app_hash: &[u8; 32],
) -> anyhow::Result<()> {
    for e in changes {
        match &e.value {
            Some(v) => table.insert(e.key.as_str(), v.as_slice())?,
            None => table.remove(e.key.as_str())?,
        };
    }
    meta.insert(HEADER_KEY, serde_json::to_vec(header)?.as_slice())?;
    meta.insert(APP_HASH_KEY, app_hash.as_slice())?;
    Ok(())
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
            let genesis = state.clone();
            assert_eq!(store.commit_genesis(&state).unwrap(), state.app_hash());
            state.height = 1;
            state.add_coins("b", &[crate::state::Coin::new(1, "uakt")]);
            let block = BlockRecord {
                height: 1,
                time: "t".into(),
                hash: "H".into(),
                last_block_hash: String::new(),
                app_hash: String::new(),
                result_app_hash: String::new(),
                txs: vec![vec![1, 2, 3]],
                tx_results: vec![TxResult {
                    code: 0,
                    codespace: String::new(),
                    log: String::new(),
                    data: Vec::new(),
                    gas_wanted: 0,
                    gas_used: 0,
                    events: vec![Event::new("message").attr("sender", "a")],
                }],
                finalize_block_events: Vec::new(),
            };
            let changes = state.changes_since(&genesis).unwrap();
            assert_eq!(changes.len(), 2, "{changes:?}"); // b's account and balance
            store
                .commit_block(&block, &state.header(), &changes, &[7; 32], &["AB".into()])
                .unwrap();
            assert_eq!(store.events_indexed_height().unwrap(), 0);
            store.index_events(&block).unwrap();
            store.index_events(&block).unwrap(); // once only
            assert_eq!(store.events_indexed_height().unwrap(), 1);
        }
        let store = Store::open(home.path()).unwrap();
        assert_eq!(store.load_state().unwrap(), Some((state, [7; 32])));
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
        let found = store
            .tx_locations_with("message.sender", "a", 1, 1)
            .unwrap();
        assert_eq!(
            found,
            [TxLocation {
                height: 1,
                index: 0
            }]
        );
        assert!(
            store
                .tx_locations_with("message.sender", "a", 2, 9)
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .tx_locations_with("message.sender", "b", 1, 1)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_home_with_the_whole_state_in_one_value_is_read_and_rewritten_as_entries() {
        let home = tempfile::tempdir().unwrap();
        let mut state = State::new("c");
        state.add_coins("a", &[crate::state::Coin::new(5, "uakt")]);
        {
            let store = Store::open(home.path()).unwrap();
            let w = store.db.begin_write().unwrap();
            w.open_table(META)
                .unwrap()
                .insert(
                    LEGACY_STATE_KEY,
                    serde_json::to_vec(&state).unwrap().as_slice(),
                )
                .unwrap();
            w.commit().unwrap();
        }
        let store = Store::open(home.path()).unwrap();
        let expected = Some((state.clone(), state.app_hash()));
        assert_eq!(store.load_state().unwrap(), expected);
        let r = store.db.begin_read().unwrap();
        assert!(
            r.open_table(META)
                .unwrap()
                .get(LEGACY_STATE_KEY)
                .unwrap()
                .is_none()
        );
        drop(r);
        assert_eq!(store.load_state().unwrap(), expected);
    }
}
