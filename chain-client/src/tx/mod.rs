//! The transaction path, one step per file: [`fee`] (gas and fee arithmetic) and [`build`]
//! (body, auth info, sign doc, signature). Simulation, broadcast, waiting and retries are driven by
//! [`crate::signer::Signer`] over a [`crate::transport::TxTransport`].

pub mod build;
pub mod fee;

pub use build::{SignedTx, SignerData, sign_doc_bytes, sign_tx, simulation_tx, tx_hash};
pub use fee::{Dec18, Fee, FeePolicy, GasPrice};
