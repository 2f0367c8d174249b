//! The fuzz targets, one per input surface.

pub mod cert;
pub mod chain_proto;
pub mod chain_rpc;
pub mod devnet_query;
pub mod devnet_rpc;
pub mod devnet_tx;
pub mod manifest;
pub mod sdl;

use crate::engine::label;

/// A label for a `Result`: `ok`, or the error's kind.
pub fn outcome<T, E: std::fmt::Display>(prefix: &str, r: &Result<T, E>) -> String {
    match r {
        Ok(_) => format!("{prefix}:ok"),
        Err(e) => label(prefix, &e.to_string()),
    }
}
