//! This workspace's own binaries, built once per test run with the same target directory as the
//! tests, so a test never runs a stale one.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// Path of the `akash-provider` binary, built (or found up to date) before first use.
pub fn akash_provider() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build("operator", "akash-provider").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Path of the `akash-devnet` binary, built (or found up to date) before first use.
pub fn akash_devnet() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build("devnet", "akash-devnet").map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(crate::cluster::repo_dir())
        .args(["build", "--quiet", "-p", package, "--bin", bin])
        .status()
        .with_context(|| format!("running cargo build for {bin}"))?;
    if !status.success() {
        bail!("cargo build -p {package} --bin {bin} failed ({status})");
    }
    // Tests run from <target>/debug/deps/; the binaries are in <target>/debug/.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test binary is not in <target>/<profile>/deps")?;
    let path = profile_dir.join(bin);
    if !path.is_file() {
        bail!("{} was not built", path.display());
    }
    Ok(path)
}
