//! The accounts a fresh home is funded with: public BIP-39 test mnemonics (the same kind of
//! well-known keys local Ethereum nodes print), derived at m/44'/118'/0'/0/0 with prefix `akash`.
//!
//! These keys are public. Never fund them on a real network.

use cosmrs::bip32::DerivationPath;
use cosmrs::crypto::secp256k1::SigningKey;

use crate::state::{Coin, State};
use crate::{BECH32_PREFIX, DENOM_ACT, DENOM_AKT};

/// The Cosmos HD path (coin type 118), first account.
pub const HD_PATH: &str = "m/44'/118'/0'/0/0";

/// Public test mnemonics: the Hardhat/Anvil one and BIP-39 test vectors.
pub const TEST_MNEMONICS: [&str; 4] = [
    "test test test test test test test test test test test junk",
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    "legal winner thank year wave sausage worth useful legal winner thank yellow",
    "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo wrong",
];

/// Each test account's genesis balance, in each of `uakt` and `uact` (one million tokens).
pub const GENESIS_AMOUNT: u128 = 1_000_000_000_000;

/// A test account: its mnemonic, key and address.
pub struct TestAccount {
    pub mnemonic: &'static str,
    pub key: SigningKey,
    pub address: String,
}

/// Derives the signing key of `mnemonic` at [`HD_PATH`].
pub fn key_from_mnemonic(mnemonic: &str) -> anyhow::Result<SigningKey> {
    let m = bip39::Mnemonic::parse_normalized(mnemonic)
        .map_err(|e| anyhow::anyhow!("invalid mnemonic: {e}"))?;
    let seed = m.to_seed("");
    let path: DerivationPath = HD_PATH
        .parse()
        .map_err(|e| anyhow::anyhow!("HD path {HD_PATH}: {e}"))?;
    SigningKey::derive_from_path(seed, &path)
        .map_err(|e| anyhow::anyhow!("deriving {HD_PATH}: {e}"))
}

/// The bech32 address (`akash1...`) of a signing key.
pub fn address_of(key: &SigningKey) -> anyhow::Result<String> {
    Ok(key
        .public_key()
        .account_id(BECH32_PREFIX)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_string())
}

/// The well-known test accounts.
pub fn test_accounts() -> anyhow::Result<Vec<TestAccount>> {
    TEST_MNEMONICS
        .iter()
        .map(|m| {
            let key = key_from_mnemonic(m)?;
            let address = address_of(&key)?;
            Ok(TestAccount {
                mnemonic: m,
                key,
                address,
            })
        })
        .collect()
}

/// The genesis state: the test accounts, numbered in order, each funded in `uakt` and `uact`.
pub fn genesis_state(chain_id: &str) -> anyhow::Result<State> {
    let mut state = State::new(chain_id);
    for a in test_accounts()? {
        state.add_coins(
            &a.address,
            &[
                Coin::new(GENESIS_AMOUNT, DENOM_AKT),
                Coin::new(GENESIS_AMOUNT, DENOM_ACT),
            ],
        );
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_accounts_are_distinct_akash_addresses_and_funded() {
        let accounts = test_accounts().unwrap();
        assert_eq!(accounts.len(), TEST_MNEMONICS.len());
        for a in &accounts {
            assert!(a.address.starts_with("akash1"), "{}", a.address);
            assert_eq!(a.address.len(), 44);
        }
        let mut addrs: Vec<_> = accounts.iter().map(|a| &a.address).collect();
        addrs.dedup();
        assert_eq!(addrs.len(), accounts.len());
        let g = genesis_state("devnet-1").unwrap();
        assert_eq!(g.balance(&accounts[0].address, "uakt"), GENESIS_AMOUNT);
        assert_eq!(g.balance(&accounts[3].address, "uact"), GENESIS_AMOUNT);
        assert_eq!(g.accounts[&accounts[2].address].number, 2);
    }

    #[test]
    fn derivation_is_the_cosmos_one() {
        // The BIP-39 "abandon ... about" vector at m/44'/118'/0'/0/0 is the widely published
        // cosmos1 address cosmos19rl4cm2hmr8afy4kldpxz3fka4jguq0auqdal4; same key, akash prefix.
        let key = key_from_mnemonic(TEST_MNEMONICS[1]).unwrap();
        let id = key.public_key().account_id("cosmos").unwrap();
        assert_eq!(
            id.to_string(),
            "cosmos19rl4cm2hmr8afy4kldpxz3fka4jguq0auqdal4"
        );
    }
}
