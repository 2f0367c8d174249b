//! One signer per key: it serialises transactions of that key so that concurrent callers never
//! race for a sequence number, and it recovers from sequence mismatches.
//!
//! Under one mutex over (account number, sequence): simulate → fee → sign → `broadcast_sync`.
//! - CheckTx accepted (code 0): the tx is in the mempool and its sequence is used: increment.
//! - CheckTx rejected (other code): the sequence was not consumed; the typed error is returned.
//! - Sequence mismatch (sdk/32, from simulation or CheckTx): re-read the account and try again,
//!   at most `max_sequence_retries` times. Committed state lags the mempool (transactions of ours
//!   still pending are not in it), so the next sequence is the larger of the re-read value and the
//!   "expected N" of the chain's log.
//! - Transport failure during broadcast: the node may or may not hold the tx, so the cached
//!   sequence is dropped and re-read on the next call.
//!
//! Waiting for inclusion (polling `get_tx`) happens after the mutex is released, so a slow block
//! does not hold up the next transaction.

use std::time::Duration;

use tokio::sync::Mutex;

use crate::error::{ChainError, Result};
use crate::keys::Key;
use crate::transport::{AccountInfo, TxResult, TxTransport};
use crate::tx::{FeePolicy, SignerData, sign_tx, simulation_tx};

/// How a [`Signer`] builds and follows its transactions.
#[derive(Debug, Clone)]
pub struct SignerConfig {
    pub chain_id: String,
    pub fee: FeePolicy,
    pub memo: String,
    /// Re-reads of the account after a sequence mismatch before giving up (default 3).
    pub max_sequence_retries: u32,
    /// How long to wait for a broadcast transaction to be included in a block.
    pub inclusion_timeout: Duration,
    /// How often to ask for the transaction while waiting.
    pub poll_interval: Duration,
}

impl SignerConfig {
    /// Defaults: memo empty, 3 retries, 60 s inclusion timeout polled every second.
    pub fn new(chain_id: impl Into<String>, fee: FeePolicy) -> Self {
        Self {
            chain_id: chain_id.into(),
            fee,
            memo: String::new(),
            max_sequence_retries: 3,
            inclusion_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// A transaction accepted into the mempool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    pub hash: String,
    pub sequence: u64,
    pub gas_limit: u64,
}

#[derive(Debug, Clone, Copy)]
struct SeqState {
    account_number: u64,
    sequence: u64,
}

/// Signs and broadcasts the transactions of one key.
pub struct Signer<T> {
    key: Key,
    transport: T,
    config: SignerConfig,
    state: Mutex<Option<SeqState>>,
}

impl<T: TxTransport> Signer<T> {
    pub fn new(key: Key, transport: T, config: SignerConfig) -> Self {
        Self {
            key,
            transport,
            config,
            state: Mutex::new(None),
        }
    }

    /// The signer's bech32 address.
    pub fn address(&self) -> &str {
        self.key.address().as_ref()
    }

    /// The transport (for the queries a [`crate::Chain`] implementation shares with it).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    async fn read_account(&self) -> Result<AccountInfo> {
        self.transport.account(self.address()).await
    }

    /// Simulates, signs and broadcasts `msgs` as one transaction; returns once CheckTx accepted it.
    pub async fn submit(&self, msgs: &[prost_types::Any]) -> Result<Submitted> {
        let mut state = self.state.lock().await;
        let mut retries = 0u32;
        // The "expected N" of the last mismatch, a floor for the next sequence.
        let mut expected_floor: Option<u64> = None;
        loop {
            let current = match *state {
                Some(s) => s,
                None => {
                    let acc = self.read_account().await?;
                    let sequence = acc.sequence.max(expected_floor.unwrap_or(0));
                    let s = SeqState {
                        account_number: acc.account_number,
                        sequence,
                    };
                    *state = Some(s);
                    s
                }
            };
            let error = match self.try_once(msgs, current).await {
                Ok(submitted) => {
                    *state = Some(SeqState {
                        sequence: current.sequence + 1,
                        ..current
                    });
                    return Ok(submitted);
                }
                Err(e) => e,
            };
            match &error {
                ChainError::SequenceMismatch { expected, got, .. } => {
                    *state = None;
                    expected_floor = *expected;
                    if retries >= self.config.max_sequence_retries {
                        tracing::warn!(
                            address = self.address(),
                            expected = ?expected,
                            got = ?got,
                            retries,
                            "account sequence mismatch persists; giving up"
                        );
                        return Err(error);
                    }
                    retries += 1;
                    tracing::info!(
                        address = self.address(),
                        expected = ?expected,
                        got = ?got,
                        sent = current.sequence,
                        retry = retries,
                        "account sequence mismatch; re-reading the account"
                    );
                }
                ChainError::Transport(_) | ChainError::Timeout(_) => {
                    // Unknown whether the node kept the transaction.
                    *state = None;
                    return Err(error);
                }
                _ => return Err(error),
            }
        }
    }

    async fn try_once(&self, msgs: &[prost_types::Any], s: SeqState) -> Result<Submitted> {
        let sim = simulation_tx(&self.key, msgs, &self.config.memo, s.sequence)?;
        let gas_used = self.transport.simulate(sim).await?;
        let fee = self.config.fee.fee(gas_used)?;
        let signed = sign_tx(
            &self.key,
            msgs,
            &self.config.memo,
            &fee,
            &SignerData {
                chain_id: self.config.chain_id.clone(),
                account_number: s.account_number,
                sequence: s.sequence,
            },
        )?;
        let check = self.transport.broadcast_sync(signed.bytes).await?;
        if check.code != 0 {
            return Err(ChainError::from_abci(
                &check.codespace,
                check.code,
                &check.log,
            ));
        }
        tracing::debug!(
            address = self.address(),
            hash = %signed.hash,
            sequence = s.sequence,
            gas_limit = fee.gas_limit,
            fee = %format!("{}{}", fee.amount, fee.denom),
            "transaction accepted into the mempool"
        );
        Ok(Submitted {
            hash: signed.hash,
            sequence: s.sequence,
            gas_limit: fee.gas_limit,
        })
    }

    /// Waits until the transaction is in a block; a failed execution becomes its typed error.
    pub async fn wait(&self, hash: &str) -> Result<TxResult> {
        let deadline = tokio::time::Instant::now() + self.config.inclusion_timeout;
        loop {
            match self.transport.get_tx(hash).await {
                Ok(Some(r)) if r.code == 0 => return Ok(r),
                Ok(Some(r)) => return Err(ChainError::from_abci(&r.codespace, r.code, &r.log)),
                Ok(None) => {}
                // A node that is briefly unreachable while we poll is not a failed transaction.
                Err(e @ (ChainError::Transport(_) | ChainError::Timeout(_))) => {
                    tracing::debug!(hash, error = %e, "polling for the transaction failed");
                }
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ChainError::Timeout(format!(
                    "transaction {hash} not in a block after {:?}",
                    self.config.inclusion_timeout
                )));
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// [`Self::submit`] then [`Self::wait`].
    pub async fn broadcast(&self, msgs: &[prost_types::Any]) -> Result<TxResult> {
        let submitted = self.submit(msgs).await?;
        self.wait(&submitted.hash).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::akash::market::v1beta5::MsgWithdrawLease;
    use crate::transport::CheckTxResult;
    use crate::tx::GasPrice;
    use async_trait::async_trait;
    use cosmos_sdk_proto::cosmos::tx::v1beta1::{AuthInfo, TxRaw};
    use prost::Message;
    use std::collections::{HashMap, VecDeque};
    use std::sync::{Arc, Mutex as StdMutex};

    /// A chain account as a scripted node sees it: `committed` is the sequence queries return,
    /// `check_state` the sequence CheckTx expects (committed + txs in the mempool).
    #[derive(Default)]
    struct Script {
        committed: u64,
        check_state: u64,
        /// Codes to answer CheckTx with, one per broadcast, before the normal behaviour.
        check_codes: VecDeque<(u32, &'static str)>,
        /// Make every CheckTx a sequence mismatch.
        always_mismatch: bool,
        /// Make the next simulation fail as the SDK does for a stale sequence.
        simulate_mismatch_once: bool,
        account_reads: u32,
        broadcasts: u32,
        accepted_sequences: Vec<u64>,
        included: HashMap<String, TxResult>,
        simulated_gas: u64,
        fees: Vec<(u64, String)>,
    }

    #[derive(Clone, Default)]
    struct FakeNode(Arc<StdMutex<Script>>);

    fn sequence_of(tx: &[u8]) -> u64 {
        let raw = TxRaw::decode(tx).unwrap();
        AuthInfo::decode(raw.auth_info_bytes.as_slice())
            .unwrap()
            .signer_infos[0]
            .sequence
    }

    fn mismatch(expected: u64, got: u64) -> ChainError {
        ChainError::from_abci(
            "sdk",
            32,
            &format!(
                "account sequence mismatch, expected {expected}, got {got}: incorrect account sequence"
            ),
        )
    }

    #[async_trait]
    impl TxTransport for FakeNode {
        async fn account(&self, address: &str) -> Result<AccountInfo> {
            // Yield so that concurrent callers really interleave.
            tokio::task::yield_now().await;
            let mut s = self.0.lock().unwrap();
            s.account_reads += 1;
            Ok(AccountInfo {
                address: address.into(),
                account_number: 3,
                sequence: s.committed,
                pub_key: None,
            })
        }

        async fn simulate(&self, tx: Vec<u8>) -> Result<u64> {
            tokio::task::yield_now().await;
            let mut s = self.0.lock().unwrap();
            let seq = sequence_of(&tx);
            if std::mem::take(&mut s.simulate_mismatch_once) {
                return Err(mismatch(s.check_state, seq));
            }
            Ok(s.simulated_gas)
        }

        async fn broadcast_sync(&self, tx: Vec<u8>) -> Result<CheckTxResult> {
            tokio::task::yield_now().await;
            let mut s = self.0.lock().unwrap();
            s.broadcasts += 1;
            let hash = crate::tx::tx_hash(&tx);
            let seq = sequence_of(&tx);
            let raw = TxRaw::decode(tx.as_slice()).unwrap();
            let fee = AuthInfo::decode(raw.auth_info_bytes.as_slice())
                .unwrap()
                .fee
                .unwrap();
            s.fees.push((fee.gas_limit, fee.amount[0].amount.clone()));
            let reject = |code: u32, codespace: &str, log: String| CheckTxResult {
                hash: hash.clone(),
                code,
                codespace: codespace.into(),
                log,
            };
            if let Some((code, log)) = s.check_codes.pop_front() {
                return Ok(reject(code, "sdk", log.into()));
            }
            if s.always_mismatch || seq != s.check_state {
                let e = format!(
                    "account sequence mismatch, expected {}, got {seq}: incorrect account sequence",
                    s.check_state
                );
                return Ok(reject(32, "sdk", e));
            }
            s.check_state += 1;
            s.accepted_sequences.push(seq);
            let gas_used = s.simulated_gas;
            s.included.insert(
                hash.clone(),
                TxResult {
                    hash: hash.clone(),
                    height: 10,
                    code: 0,
                    codespace: String::new(),
                    log: String::new(),
                    gas_wanted: fee.gas_limit,
                    gas_used,
                },
            );
            Ok(reject(0, "", String::new()))
        }

        async fn get_tx(&self, hash: &str) -> Result<Option<TxResult>> {
            Ok(self.0.lock().unwrap().included.get(hash).cloned())
        }
    }

    fn signer(node: &FakeNode) -> Signer<FakeNode> {
        let mut config = SignerConfig::new(
            "testnet-1",
            FeePolicy::new(GasPrice::parse("0.025uakt").unwrap()),
        );
        config.poll_interval = Duration::from_millis(1);
        config.inclusion_timeout = Duration::from_millis(50);
        Signer::new(Key::random("akash").unwrap(), node.clone(), config)
    }

    fn msg() -> Vec<prost_types::Any> {
        vec![crate::to_any(&MsgWithdrawLease::default())]
    }

    fn node(committed: u64) -> FakeNode {
        FakeNode(Arc::new(StdMutex::new(Script {
            committed,
            check_state: committed,
            simulated_gas: 100_000,
            ..Default::default()
        })))
    }

    #[tokio::test]
    async fn concurrent_callers_get_distinct_consecutive_sequences() {
        let node = node(7);
        let signer = Arc::new(signer(&node));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let s = signer.clone();
                tokio::spawn(async move { s.submit(&msg()).await })
            })
            .collect();
        let mut got: Vec<u64> = Vec::new();
        for t in tasks {
            got.push(t.await.unwrap().unwrap().sequence);
        }
        got.sort_unstable();
        assert_eq!(got, (7..15).collect::<Vec<_>>());
        let s = node.0.lock().unwrap();
        assert_eq!(s.accepted_sequences.len(), 8);
        // One account read for all eight: the sequence is tracked locally after that.
        assert_eq!(s.account_reads, 1);
        assert_eq!(s.broadcasts, 8);
    }

    #[tokio::test]
    async fn the_fee_follows_the_simulation() {
        let node = node(0);
        let signer = signer(&node);
        node.0.lock().unwrap().simulated_gas = 80_001;
        signer.submit(&msg()).await.unwrap();
        // 80001 × 1.5 → 120002 gas; × 0.025 → 3001uakt.
        assert_eq!(
            node.0.lock().unwrap().fees,
            vec![(120_002, "3001".to_string())]
        );
    }

    #[tokio::test]
    async fn a_mismatch_triggers_one_reread_and_succeeds() {
        let node = node(4);
        let signer = signer(&node);
        signer.submit(&msg()).await.unwrap(); // seq 4, cache now says 5
        // Someone else (another process with the same key) used sequence 5 and it committed.
        {
            let mut s = node.0.lock().unwrap();
            s.committed = 6;
            s.check_state = 6;
        }
        let before = node.0.lock().unwrap().account_reads;
        let r = signer.submit(&msg()).await.unwrap();
        assert_eq!(r.sequence, 6);
        let s = node.0.lock().unwrap();
        assert_eq!(s.account_reads - before, 1, "exactly one re-read");
        assert_eq!(s.accepted_sequences, vec![4, 6]);
    }

    #[tokio::test]
    async fn a_mismatch_while_our_txs_are_pending_uses_the_expected_sequence() {
        // Committed state says 2 but the mempool already holds our txs 2 and 3: CheckTx expects 4.
        let node = node(2);
        node.0.lock().unwrap().check_state = 4;
        let signer = signer(&node);
        let r = signer.submit(&msg()).await.unwrap();
        assert_eq!(r.sequence, 4);
        assert_eq!(node.0.lock().unwrap().account_reads, 2);
    }

    #[tokio::test]
    async fn a_mismatch_found_by_the_simulation_is_recovered_the_same_way() {
        let node = node(0);
        let signer = signer(&node);
        signer.submit(&msg()).await.unwrap(); // seq 0
        {
            let mut s = node.0.lock().unwrap();
            // Sequence 1 was used elsewhere and committed; the simulation notices first.
            s.committed = 2;
            s.check_state = 2;
            s.simulate_mismatch_once = true;
        }
        let r = signer.submit(&msg()).await.unwrap();
        assert_eq!(r.sequence, 2);
        let s = node.0.lock().unwrap();
        assert_eq!(s.account_reads, 2);
        // The stale transaction never reached the mempool.
        assert_eq!(s.broadcasts, 2);
        assert_eq!(s.accepted_sequences, vec![0, 2]);
    }

    #[tokio::test]
    async fn a_persistent_mismatch_stops_after_the_bound() {
        let node = node(1);
        node.0.lock().unwrap().always_mismatch = true;
        let signer = signer(&node);
        let err = signer.submit(&msg()).await.unwrap_err();
        assert_eq!(err, mismatch(1, 1));
        assert_eq!(err.metric_label(), "sequence_mismatch");
        let s = node.0.lock().unwrap();
        // The first try plus three retries, each after a fresh account read.
        assert_eq!(s.broadcasts, 4);
        assert_eq!(s.account_reads, 4);
        assert!(s.accepted_sequences.is_empty());
    }

    #[tokio::test]
    async fn a_failed_check_tx_does_not_consume_the_sequence() {
        let node = node(9);
        let signer = signer(&node);
        node.0.lock().unwrap().check_codes.push_back((
            5,
            "spendable balance 0uakt is smaller than 3750uakt: insufficient funds",
        ));
        let err = signer.submit(&msg()).await.unwrap_err();
        assert!(
            matches!(err, ChainError::InsufficientFunds { ref log } if log.contains("3750uakt")),
            "{err:?}"
        );
        let ok = signer.submit(&msg()).await.unwrap();
        assert_eq!(ok.sequence, 9, "the rejected tx did not use sequence 9");
        let s = node.0.lock().unwrap();
        assert_eq!(
            s.account_reads, 1,
            "no re-read needed after a plain rejection"
        );
        assert_eq!(s.accepted_sequences, vec![9]);
    }

    #[tokio::test]
    async fn broadcast_waits_for_inclusion() {
        let node = node(0);
        let signer = signer(&node);
        let r = signer.broadcast(&msg()).await.unwrap();
        assert_eq!(r.height, 10);
        assert_eq!(r.gas_used, 100_000);
        assert_eq!(r.gas_wanted, 150_000);
    }

    #[tokio::test]
    async fn a_tx_never_included_times_out_and_a_failed_one_is_typed() {
        let node = node(0);
        let signer = signer(&node);
        let err = signer.wait("ABCDEF").await.unwrap_err();
        assert_eq!(err.metric_label(), "timeout");

        let sub = signer.submit(&msg()).await.unwrap();
        {
            let mut s = node.0.lock().unwrap();
            let r = s.included.get_mut(&sub.hash).unwrap();
            r.code = 11;
            r.codespace = "sdk".into();
            r.log = "out of gas in location: WriteFlat; gasWanted: 150000, gasUsed: 150123".into();
        }
        let err = signer.wait(&sub.hash).await.unwrap_err();
        assert!(matches!(err, ChainError::OutOfGas { .. }), "{err:?}");
    }
}
