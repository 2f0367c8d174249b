//! Compiles the Akash API from `proto/` with protox (a pure-Rust protobuf compiler, so no system
//! `protoc` is needed) and generates prost messages and tonic clients/servers.
//!
//! The Cosmos messages the Akash files import (`Coin`, `DecCoin`, `PageRequest`, `PageResponse`) are
//! declared minimally under `proto/cosmos/` only so that imports resolve; `extern_path` maps them to
//! the `cosmos-sdk-proto` crate, so no Rust is generated for them and there is one `Coin` type in
//! the whole program. `google.protobuf.*` maps to `prost-types` (and `Empty` to `()`), as prost does
//! by default.

use std::path::{Path, PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("proto");
    let mut files = Vec::new();
    collect_protos(&root, &mut files)?;
    files.sort();
    // Only our own packages are compiled; the Cosmos declarations come in as imports.
    let targets: Vec<PathBuf> = files
        .iter()
        .filter(|f| !f.starts_with(root.join("cosmos")))
        .cloned()
        .collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-changed={}", root.display());

    let fds = protox::compile(&targets, [&root])?;

    let mut config = prost_build::Config::new();
    // `impl prost::Name` for every message, so each can go into a Cosmos `Any`
    // (type URL "/akash.market.v1beta5.MsgCreateBid").
    config.enable_type_names();
    config.type_name_domain(["."], "");
    config.include_file("akash_api.rs");
    // Maps as BTreeMap, so they encode in key order (as Go does) and compare deterministically.
    config.btree_map(["."]);

    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        // Transport (channels, `connect`) is the caller's business; the generated code only needs
        // tonic's codegen.
        .build_transport(false)
        .extern_path(".cosmos", "::cosmos_sdk_proto::cosmos")
        .compile_fds_with_config(config, fds)?;
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}
