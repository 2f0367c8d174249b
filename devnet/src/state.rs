//! The application state: accounts (number, sequence, public key) and balances.
//!
//! The whole state is one value. A transaction runs on a clone and the clone replaces the original
//! only when the step succeeds, so a rejected transaction changes nothing. The maps are persistent
//! ordered maps (`imbl::OrdMap`): a clone shares every node with the original and a change copies
//! only the path to the changed entry, so a clone per transaction costs the same with 10,000
//! leases in the state as with none, and the changes of a block are found by walking only the
//! nodes that differ ([`State::changes_since`]). Ordered, so the state serialises deterministically.

use std::collections::BTreeMap;

use imbl::OrdMap;

use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv1beta4};
use chain_client::akash::escrow::types::v1 as escrow;
use chain_client::akash::market::v1beta5 as mv1beta5;
use serde::{Deserialize, Serialize};

mod entries;
pub use entries::{Entry, Header};

/// An account as the auth module keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub number: u64,
    pub sequence: u64,
    /// Compressed secp256k1 public key (33 bytes), set by the account's first transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pub_key: Option<Vec<u8>>,
}

/// A coin with an integer amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coin {
    pub denom: String,
    pub amount: u128,
}

impl Coin {
    pub fn new(amount: u128, denom: &str) -> Self {
        Self {
            denom: denom.to_owned(),
            amount,
        }
    }
}

impl std::fmt::Display for Coin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.amount, self.denom)
    }
}

/// Formats coins as the Cosmos SDK does: `100uakt,5uact` (empty for no coins).
pub fn coins_to_string(coins: &[Coin]) -> String {
    coins
        .iter()
        .map(Coin::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Why a balance change failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// Cosmos SDK `insufficient funds` (code 5).
    #[error("spendable balance {have} is smaller than {want}")]
    InsufficientFunds { have: Coin, want: Coin },
}

/// A protobuf message kept in the state, serialised as the base64 of its encoding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Proto<T>(pub T);

impl<T: prost::Message> Serialize for Proto<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&data_encoding::BASE64.encode(&self.0.encode_to_vec()))
    }
}

impl<'de, T: prost::Message + Default> Deserialize<'de> for Proto<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = data_encoding::BASE64
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        T::decode(bytes.as_slice())
            .map(Proto)
            .map_err(serde::de::Error::custom)
    }
}

/// Prost messages are `PartialEq` but not `Eq`; the state's equality is only used by tests.
impl<T: PartialEq> Eq for Proto<T> {}

/// The application state of the devnet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub chain_id: String,
    /// Height of the last committed block (0 at genesis).
    pub height: u64,
    pub next_account_number: u64,
    pub accounts: OrdMap<String, Account>,
    /// address → denom → amount.
    pub balances: OrdMap<String, BTreeMap<String, u128>>,
    /// Akash deployment module: deployments by [`keys::deployment`].
    #[serde(default)]
    pub deployments: OrdMap<String, Proto<dv1::Deployment>>,
    /// Groups by [`keys::group`].
    #[serde(default)]
    pub groups: OrdMap<String, Proto<dv1beta4::Group>>,
    /// Akash market module: orders by [`keys::order`].
    #[serde(default)]
    pub orders: OrdMap<String, Proto<mv1beta5::Order>>,
    /// Market bids by [`crate::market::bid_key`].
    #[serde(default)]
    pub bids: OrdMap<String, Proto<mv1beta5::Bid>>,
    /// Market leases by [`crate::market::bid_key`] of their bid.
    #[serde(default)]
    pub leases: OrdMap<String, Proto<chain_client::akash::market::v1::Lease>>,
    /// Height of each lease's last confirmation (`MsgWithdrawLease`), by the lease's key.
    #[serde(default)]
    pub lease_confirmed_at: OrdMap<String, i64>,
    /// Escrow payments of leases, by the lease's key.
    #[serde(default)]
    pub payments: OrdMap<String, Proto<escrow::Payment>>,
    /// Akash escrow module: accounts by [`keys::deployment`] (deployment scope) and by
    /// `bid/` + [`crate::market::bid_key`] (bid scope).
    #[serde(default)]
    pub escrow_accounts: OrdMap<String, Proto<escrow::Account>>,
    /// Akash provider module: providers by owner address.
    #[serde(default)]
    pub providers: OrdMap<String, Proto<chain_client::akash::provider::v1beta4::Provider>>,
    /// Akash cert module: certificates (with their decimal serial) by [`keys::certificate`].
    #[serde(default, skip_serializing_if = "OrdMap::is_empty")]
    pub certificates: OrdMap<String, Proto<chain_client::akash::cert::v1::CertificateResponse>>,
    /// Akash audit module: attributes an auditor signed for a provider, by [`keys::audited`].
    #[serde(default, skip_serializing_if = "OrdMap::is_empty")]
    pub audited_providers: OrdMap<String, Proto<chain_client::akash::audit::v1::AuditedProvider>>,
}

/// Keys of the Akash stores: fixed-width numbers so that the ordered maps iterate as the chain's
/// stores do (owner, then dseq, gseq, oseq ascending).
pub mod keys {
    pub fn deployment(owner: &str, dseq: u64) -> String {
        format!("{owner}/{dseq:020}")
    }
    pub fn group(owner: &str, dseq: u64, gseq: u32) -> String {
        format!("{owner}/{dseq:020}/{gseq:010}")
    }
    pub fn order(owner: &str, dseq: u64, gseq: u32, oseq: u32) -> String {
        format!("{owner}/{dseq:020}/{gseq:010}/{oseq:010}")
    }
    /// A certificate: its owner, then its decimal serial prefixed by its length, so that an
    /// owner's certificates iterate in numeric serial order.
    pub fn certificate(owner: &str, serial: &str) -> String {
        format!("{owner}/{:03}{serial}", serial.len())
    }
    /// Audited attributes: the provider, then the auditor (as the audit module's store).
    pub fn audited(owner: &str, auditor: &str) -> String {
        format!("{owner}/{auditor}")
    }
}

impl State {
    pub fn new(chain_id: &str) -> Self {
        Self {
            chain_id: chain_id.to_owned(),
            ..Self::default()
        }
    }

    /// The account at `addr`, created (with the next account number) if it does not exist, as the
    /// bank module does for a recipient.
    pub fn ensure_account(&mut self, addr: &str) -> &mut Account {
        let next = &mut self.next_account_number;
        self.accounts.entry(addr.to_owned()).or_insert_with(|| {
            let number = *next;
            *next += 1;
            Account {
                number,
                sequence: 0,
                pub_key: None,
            }
        })
    }

    pub fn balance(&self, addr: &str, denom: &str) -> u128 {
        self.balances
            .get(addr)
            .and_then(|b| b.get(denom))
            .copied()
            .unwrap_or(0)
    }

    /// All non-zero balances of `addr`, ordered by denom.
    pub fn all_balances(&self, addr: &str) -> Vec<Coin> {
        self.balances
            .get(addr)
            .map(|b| {
                b.iter()
                    .filter(|(_, a)| **a > 0)
                    .map(|(d, a)| Coin::new(*a, d))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn add_coins(&mut self, addr: &str, coins: &[Coin]) {
        self.ensure_account(addr);
        let entry = self.balances.entry(addr.to_owned()).or_default();
        for c in coins {
            *entry.entry(c.denom.clone()).or_insert(0) += c.amount;
        }
    }

    /// Takes `coins` from `addr`; on failure nothing is taken.
    pub fn sub_coins(&mut self, addr: &str, coins: &[Coin]) -> Result<(), BankError> {
        for c in coins {
            let have = self.balance(addr, &c.denom);
            if have < c.amount {
                return Err(BankError::InsufficientFunds {
                    have: Coin::new(have, &c.denom),
                    want: c.clone(),
                });
            }
        }
        let entry = self.balances.entry(addr.to_owned()).or_default();
        for c in coins {
            if let Some(a) = entry.get_mut(&c.denom) {
                *a -= c.amount;
            }
        }
        entry.retain(|_, a| *a > 0);
        Ok(())
    }

    pub fn transfer(&mut self, from: &str, to: &str, coins: &[Coin]) -> Result<(), BankError> {
        self.sub_coins(from, coins)?;
        self.add_coins(to, coins);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_moves_coins_and_failed_transfer_moves_nothing() {
        let mut s = State::new("t");
        s.add_coins("a", &[Coin::new(10, "uakt"), Coin::new(3, "uact")]);
        s.transfer("a", "b", &[Coin::new(4, "uakt")]).unwrap();
        assert_eq!(s.balance("a", "uakt"), 6);
        assert_eq!(s.balance("b", "uakt"), 4);
        let before = s.clone();
        let err = s
            .transfer("a", "b", &[Coin::new(1, "uakt"), Coin::new(4, "uact")])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spendable balance 3uact is smaller than 4uact"
        );
        assert_eq!(s, before);
        assert_eq!(s.accounts["a"].number, 0);
        assert_eq!(s.accounts["b"].number, 1);
    }
}
