//! The Akash chain API as the provider and the tenant controller use it: the Akash messages
//! (compiled from this crate's own `.proto` files), the `Chain` trait with its gRPC + CometBFT RPC
//! implementation, keys, signing, and on-chain certificates. Knows nothing of Kubernetes.
//!
//! Filled in by the issue "Akash wire API and the chain client"; until then it exports nothing.
