//! The provider's (or tenant's) account key: a BIP-39 mnemonic read from a file, derived along the
//! Cosmos HD path `m/44'/118'/0'/0/0` to a secp256k1 key, with its bech32 `akash` address.
//!
//! The mnemonic only ever comes from a file (a mounted Kubernetes Secret in production), never from
//! a command-line flag. It is held in [`Mnemonic`], whose `Debug` prints `[redacted]` and whose
//! memory is wiped on drop; errors name the file and the position of a bad word, never a word.

use std::fmt;
use std::path::Path;

use cosmrs::AccountId;
use cosmrs::bip32::DerivationPath;
use cosmrs::crypto::PublicKey;
use cosmrs::crypto::secp256k1::SigningKey;
use zeroize::Zeroizing;

/// Bech32 prefix of Akash account addresses.
pub const AKASH_PREFIX: &str = "akash";
/// The Cosmos HD path (coin type 118), first account, first address.
pub const COSMOS_HD_PATH: &str = "m/44'/118'/0'/0/0";

/// Why a key could not be loaded. Never contains any part of the mnemonic.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("cannot read the mnemonic file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("the mnemonic has {0} words; a BIP-39 mnemonic has 12, 15, 18, 21 or 24")]
    WordCount(usize),
    #[error("word {0} of the mnemonic is not in the BIP-39 English word list")]
    UnknownWord(usize),
    #[error("the mnemonic's checksum is wrong (a word is mistyped or out of order)")]
    Checksum,
    #[error("key derivation failed: {0}")]
    Derivation(String),
}

/// A BIP-39 mnemonic phrase. `Debug` never shows it; the memory is zeroed on drop.
pub struct Mnemonic(Zeroizing<String>);

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mnemonic([redacted])")
    }
}

impl Mnemonic {
    /// Reads the phrase from a file (surrounding whitespace and line breaks are ignored).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: path.display().to_string(),
            // The io::Error's kind only: its Display is safe, but keep the message fixed.
            reason: e.kind().to_string(),
        })?);
        warn_if_readable_by_others(path);
        Self::from_phrase(&text)
    }

    /// Validates a phrase: word count, every word in the English list, checksum.
    pub fn from_phrase(phrase: &str) -> Result<Self, KeyError> {
        let normalized = Zeroizing::new(phrase.split_whitespace().collect::<Vec<_>>().join(" "));
        bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &normalized).map_err(
            |e| match e {
                bip39::Error::BadWordCount(n) => KeyError::WordCount(n),
                // bip39 counts from 0; people count from 1.
                bip39::Error::UnknownWord(i) => KeyError::UnknownWord(i + 1),
                bip39::Error::InvalidChecksum => KeyError::Checksum,
                bip39::Error::BadEntropyBitCount(_) => {
                    KeyError::WordCount(normalized.split(' ').count())
                }
                bip39::Error::AmbiguousLanguages(_) => {
                    KeyError::Derivation("ambiguous mnemonic language".into())
                }
            },
        )?;
        Ok(Self(normalized))
    }

    /// The 64-byte BIP-39 seed (empty passphrase, as the Cosmos tools use).
    fn seed(&self) -> Result<Zeroizing<[u8; 64]>, KeyError> {
        let m = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &self.0)
            .map_err(|_| KeyError::Checksum)?;
        Ok(Zeroizing::new(m.to_seed_normalized("")))
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the mnemonic file is readable by group or others");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// A signing key with its public key and address. `Debug` shows the address only.
pub struct Key {
    signing_key: SigningKey,
    public_key: PublicKey,
    address: AccountId,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("address", &self.address.as_ref())
            .field("signing_key", &"[redacted]")
            .finish()
    }
}

impl Key {
    /// Derives the key at [`COSMOS_HD_PATH`] with the `akash` prefix.
    pub fn from_mnemonic(mnemonic: &Mnemonic) -> Result<Self, KeyError> {
        Self::derive(mnemonic, COSMOS_HD_PATH, AKASH_PREFIX)
    }

    /// Reads a mnemonic file and derives the key at [`COSMOS_HD_PATH`].
    pub fn from_mnemonic_file(path: &Path) -> Result<Self, KeyError> {
        Self::from_mnemonic(&Mnemonic::from_file(path)?)
    }

    /// Derives the key at `path` with the bech32 `prefix`.
    pub fn derive(mnemonic: &Mnemonic, path: &str, prefix: &str) -> Result<Self, KeyError> {
        let path: DerivationPath = path
            .parse()
            .map_err(|e| KeyError::Derivation(format!("bad HD path: {e}")))?;
        let seed = mnemonic.seed()?;
        let signing_key = SigningKey::derive_from_path(seed.as_slice(), &path)
            .map_err(|e| KeyError::Derivation(e.to_string()))?;
        Self::from_signing_key(signing_key, prefix)
    }

    /// Wraps an existing signing key (e.g. a random one in tests).
    pub fn from_signing_key(signing_key: SigningKey, prefix: &str) -> Result<Self, KeyError> {
        let public_key = signing_key.public_key();
        let address = public_key
            .account_id(prefix)
            .map_err(|e| KeyError::Derivation(e.to_string()))?;
        Ok(Self {
            signing_key,
            public_key,
            address,
        })
    }

    /// A fresh random key (tests, throwaway tenants on the devnet).
    pub fn random(prefix: &str) -> Result<Self, KeyError> {
        Self::from_signing_key(SigningKey::random(), prefix)
    }

    /// The bech32 account address.
    pub fn address(&self) -> &AccountId {
        &self.address
    }

    /// The compressed secp256k1 public key.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// Signs `msg` (SHA-256 then ECDSA, low-S, 64 bytes r‖s, as Cosmos expects).
    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signing_key
            .sign(msg)
            .map(|s| s.to_vec())
            .map_err(|e| KeyError::Derivation(format!("signing failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed once with the official cosmjs (sdk-ref/node_modules):
    //   (await DirectSecp256k1HdWallet.fromMnemonic(m, { prefix: "akash" }).getAccounts())[0]
    // printing `address` and `pubkey` as hex.
    const M12: &str = "test walk nut penalty hip pave soap entry language right filter choice";
    const M12_ADDRESS: &str = "akash19k2ukzsxut4sftk87qzuv30cnjjfdw293gelk8";
    const M12_PUBKEY: &str = "0230ccb0783c92946ee4ff3f1f1fb502d078e2ee9cce4870255237f9dabaa8fb3f";
    // 24 words from Bip39.encode of the entropy bytes (i*37+11) & 0xff, i = 0..32 (cosmjs).
    const M24: &str = "arctic live gadget display excess mandate sniff autumn people disorder affair \
                       hole retreat fancy close tip deer village tuition orbit cannon owner maid spare";
    const M24_ADDRESS: &str = "akash1ulyukze5euf53canp49fry2dr4vynwsxfxkkc3";
    const ABANDON_ADDRESS: &str = "akash19rl4cm2hmr8afy4kldpxz3fka4jguq0a3mq6x0";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn known_mnemonics_give_the_cosmjs_addresses() {
        let k = Key::from_mnemonic(&Mnemonic::from_phrase(M12).unwrap()).unwrap();
        assert_eq!(k.address().as_ref(), M12_ADDRESS);
        assert_eq!(hex(&k.public_key().to_bytes()), M12_PUBKEY);

        let k = Key::from_mnemonic(&Mnemonic::from_phrase(M24).unwrap()).unwrap();
        assert_eq!(k.address().as_ref(), M24_ADDRESS);

        let abandon = ["abandon"; 11].join(" ") + " about";
        let k = Key::from_mnemonic(&Mnemonic::from_phrase(&abandon).unwrap()).unwrap();
        assert_eq!(k.address().as_ref(), ABANDON_ADDRESS);
    }

    #[test]
    fn the_mnemonic_is_read_from_a_file_with_stray_whitespace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnemonic");
        std::fs::write(&path, format!("  {}\n\n", M12.replace(' ', "  \t"))).unwrap();
        let k = Key::from_mnemonic_file(&path).unwrap();
        assert_eq!(k.address().as_ref(), M12_ADDRESS);
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let err = Key::from_mnemonic_file(Path::new("/nonexistent/mnemonic")).unwrap_err();
        assert!(matches!(err, KeyError::Read { ref path, .. } if path == "/nonexistent/mnemonic"));
    }

    fn assert_no_word_leaks(err: &KeyError, phrase: &str) {
        let text = format!("{err} {err:?}");
        for word in phrase.split_whitespace() {
            // Short words like "hip" could appear inside ordinary English; the test words are
            // all checked as whole words.
            assert!(
                !text
                    .split(|c: char| !c.is_ascii_alphabetic())
                    .any(|w| w == word),
                "error {text:?} leaks the word {word:?}"
            );
        }
    }

    #[test]
    fn a_word_outside_the_list_is_reported_by_position_only() {
        let bad = M12.replace("penalty", "penalti");
        let err = Mnemonic::from_phrase(&bad).unwrap_err();
        assert_eq!(err, KeyError::UnknownWord(4)); // "penalty" is the fourth word
        assert_no_word_leaks(&err, &bad);
    }

    #[test]
    fn a_wrong_checksum_is_an_error() {
        // Two valid words swapped: every word is in the list, the checksum no longer matches.
        let swapped = M12.replace("walk nut", "nut walk");
        let err = Mnemonic::from_phrase(&swapped).unwrap_err();
        assert_eq!(err, KeyError::Checksum);
        assert_no_word_leaks(&err, &swapped);
    }

    #[test]
    fn a_wrong_word_count_is_an_error() {
        let eleven: Vec<&str> = M12.split(' ').take(11).collect();
        let err = Mnemonic::from_phrase(&eleven.join(" ")).unwrap_err();
        assert_eq!(err, KeyError::WordCount(11));
        assert_no_word_leaks(&err, M12);
        assert_eq!(
            Mnemonic::from_phrase("").unwrap_err(),
            KeyError::WordCount(0)
        );
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let m = Mnemonic::from_phrase(M12).unwrap();
        assert_eq!(format!("{m:?}"), "Mnemonic([redacted])");
        let k = Key::from_mnemonic(&m).unwrap();
        let dbg = format!("{k:?}");
        assert!(dbg.contains(M12_ADDRESS), "{dbg}");
        assert!(dbg.contains("[redacted]"), "{dbg}");
    }

    #[test]
    fn signatures_verify_with_the_public_key() {
        use cosmrs::bip32::secp256k1::ecdsa::signature::Verifier;
        use cosmrs::crypto::secp256k1::{Signature, VerifyingKey};
        let k = Key::from_mnemonic(&Mnemonic::from_phrase(M12).unwrap()).unwrap();
        let sig = k.sign(b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        let vk = VerifyingKey::from_sec1_bytes(&k.public_key().to_bytes()).unwrap();
        let sig = Signature::from_slice(&sig).unwrap();
        assert!(vk.verify(b"hello", &sig).is_ok());
        assert!(vk.verify(b"hellO", &sig).is_err());
    }
}
