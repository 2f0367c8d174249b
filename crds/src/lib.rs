//! The custom resources of `akash.network/v1` (`Manifest`, `Lease`, `Provider`, `Tunnel`), the SDL
//! model with its parser and validation, the SDL → on-chain groups and manifest conversion, and the
//! manifest version hash.
//!
//! This crate does no I/O: no network, no Kubernetes client, no chain.

pub mod resources;
pub mod sdl;
