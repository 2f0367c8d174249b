//! The state as the store keeps it: one entry per key of each map (`<map>/<key>` → the value's
//! JSON) and a header with the scalars, so that a block writes only the entries it changed.
//!
//! The app hash chains the changes: the genesis hash is the SHA-256 of the whole state's JSON,
//! and each block's is the SHA-256 of the previous hash, the header and every changed entry in
//! order. It commits to the state as a whole-state hash does (the same history gives the same
//! hash, any change of an entry changes it) without reading the unchanged entries each block.

use imbl::OrdMap;
use imbl::ordmap::DiffItem;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::State;

/// Calls `$apply!(field, …)` with every map of [`State`]; the one list the store's code reads.
macro_rules! for_each_map {
    ($apply:ident) => {
        $apply!(
            accounts,
            balances,
            deployments,
            groups,
            orders,
            bids,
            leases,
            lease_confirmed_at,
            payments,
            escrow_accounts,
            providers,
            certificates,
            audited_providers
        )
    };
}

/// One stored entry: `<map>/<key>` and its value's JSON, or `None` when the block removed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// The state's scalars, stored beside its entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub chain_id: String,
    pub height: u64,
    pub next_account_number: u64,
}

impl State {
    pub fn header(&self) -> Header {
        Header {
            chain_id: self.chain_id.clone(),
            height: self.height,
            next_account_number: self.next_account_number,
        }
    }

    /// Every entry, in map and key order (a fresh home's first write).
    pub fn entries(&self) -> serde_json::Result<Vec<Entry>> {
        self.changes_since(&Self::default())
    }

    /// The entries added, changed or removed since `old`, in map and key order. Walks only the
    /// nodes the two states do not share, so it costs what the block changed, not the state's size.
    pub fn changes_since(&self, old: &Self) -> serde_json::Result<Vec<Entry>> {
        let mut out = Vec::new();
        macro_rules! diff {
            ($($field:ident),*) => {
                $( diff_map(stringify!($field), &old.$field, &self.$field, &mut out)?; )*
            };
        }
        for_each_map!(diff);
        Ok(out)
    }

    /// The state from its header and stored entries (in any order).
    pub fn from_entries(
        header: Header,
        entries: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> anyhow::Result<Self> {
        let mut state = Self {
            chain_id: header.chain_id,
            height: header.height,
            next_account_number: header.next_account_number,
            ..Self::default()
        };
        for (stored, value) in entries {
            let Some((map, key)) = stored.split_once('/') else {
                anyhow::bail!("stored state entry {stored:?} names no map");
            };
            macro_rules! load {
                ($($field:ident),*) => {
                    match map {
                        $( stringify!($field) => insert(&mut state.$field, key, &value),)*
                        _ => anyhow::bail!("stored state entry {stored:?}: no map {map:?}"),
                    }
                };
            }
            for_each_map!(load)
                .map_err(|e| anyhow::anyhow!("decoding stored state entry {stored:?}: {e}"))?;
        }
        Ok(state)
    }

    /// The genesis app hash: SHA-256 of the whole state's canonical JSON.
    pub fn app_hash(&self) -> [u8; 32] {
        let json = serde_json::to_vec(self).unwrap_or_default();
        Sha256::digest(json).into()
    }

    /// The app hash after a block: `previous`, this state's header and the block's `changes`.
    pub fn next_app_hash(&self, previous: &[u8; 32], changes: &[Entry]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(previous);
        h.update(serde_json::to_vec(&self.header()).unwrap_or_default());
        for e in changes {
            // Length-prefixed, so that no two different change lists hash alike.
            h.update((e.key.len() as u64).to_be_bytes());
            h.update(e.key.as_bytes());
            match &e.value {
                Some(v) => {
                    h.update([1]);
                    h.update((v.len() as u64).to_be_bytes());
                    h.update(v);
                }
                None => h.update([0]),
            }
        }
        h.finalize().into()
    }
}

fn diff_map<V: Serialize + PartialEq + Clone>(
    name: &str,
    old: &OrdMap<String, V>,
    new: &OrdMap<String, V>,
    out: &mut Vec<Entry>,
) -> serde_json::Result<()> {
    for item in old.diff(new) {
        let (key, value) = match item {
            DiffItem::Add(k, v) | DiffItem::Update { new: (k, v), .. } => {
                (k, Some(serde_json::to_vec(v)?))
            }
            DiffItem::Remove(k, _) => (k, None),
        };
        out.push(Entry {
            key: format!("{name}/{key}"),
            value,
        });
    }
    Ok(())
}

fn insert<V: DeserializeOwned + Clone>(
    map: &mut OrdMap<String, V>,
    key: &str,
    value: &[u8],
) -> serde_json::Result<()> {
    map.insert(key.to_owned(), serde_json::from_slice(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Coin, Proto};

    fn sample() -> State {
        let mut s = State::new("t");
        s.add_coins("a", &[Coin::new(10, "uakt")]);
        s.add_coins("b", &[Coin::new(3, "uact")]);
        s.lease_confirmed_at.insert("a/1".into(), 7);
        s.deployments
            .insert("a/00000000000000000001".into(), Proto::default());
        s
    }

    #[test]
    fn a_state_read_back_from_its_entries_is_the_same_state() {
        let s = sample();
        let stored = s
            .entries()
            .unwrap()
            .into_iter()
            .rev() // order does not matter
            .map(|e| (e.key, e.value.unwrap()));
        assert_eq!(State::from_entries(s.header(), stored).unwrap(), s);
    }

    #[test]
    fn changes_are_exactly_what_a_block_added_changed_and_removed() {
        let old = sample();
        let mut new = old.clone();
        new.transfer("a", "b", &[Coin::new(10, "uakt")]).unwrap(); // a's balance map empties
        new.lease_confirmed_at.remove("a/1");
        new.lease_confirmed_at.insert("a/2".into(), 9);
        let keys: Vec<(String, bool)> = new
            .changes_since(&old)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value.is_some()))
            .collect();
        assert_eq!(
            keys,
            [
                ("balances/a".to_owned(), true),
                ("balances/b".to_owned(), true),
                ("lease_confirmed_at/a/1".to_owned(), false),
                ("lease_confirmed_at/a/2".to_owned(), true),
            ]
        );
        // Applying the changes to the old entries gives the new state.
        let mut stored: std::collections::BTreeMap<String, Vec<u8>> = old
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value.unwrap()))
            .collect();
        for e in new.changes_since(&old).unwrap() {
            match e.value {
                Some(v) => stored.insert(e.key, v),
                None => stored.remove(&e.key),
            };
        }
        assert_eq!(State::from_entries(new.header(), stored).unwrap(), new);
        assert!(new.changes_since(&new.clone()).unwrap().is_empty());
    }

    #[test]
    fn the_app_hash_changes_with_any_change_and_not_without() {
        let old = sample();
        let genesis = old.app_hash();
        let same = old.next_app_hash(&genesis, &[]);
        assert_eq!(same, old.clone().next_app_hash(&genesis, &[]));
        let mut new = old.clone();
        new.lease_confirmed_at.insert("a/1".into(), 8);
        let changed = new.next_app_hash(&genesis, &new.changes_since(&old).unwrap());
        assert_ne!(changed, same);
        let mut higher = old.clone();
        higher.height += 1;
        assert_ne!(higher.next_app_hash(&genesis, &[]), same);
    }

    #[test]
    fn an_entry_of_an_unknown_map_is_an_error_naming_it() {
        let err = State::from_entries(sample().header(), [("nope/x".into(), b"1".to_vec())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope/x") && err.contains("no map"), "{err}");
    }
}
