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

/// Path of a userspace WireGuard (`wireguard-go`), built by `deploy/build-wireguard-go.sh` and
/// cached, for the overlay's WireGuard mode.
pub fn wireguard_go() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = Command::new("bash")
                .arg(crate::cluster::repo_dir().join("deploy/build-wireguard-go.sh"))
                .output()
                .map_err(|e| format!("running deploy/build-wireguard-go.sh: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "deploy/build-wireguard-go.sh failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// A `cargo` command that does not inherit the variables `cargo test`/`cargo bench` set for the
/// process running it (`CARGO_PKG_*`, `CARGO_MANIFEST_DIR`, ...): build scripts that read them
/// would see a changed environment and every nested build would start from scratch.
pub fn cargo_command() -> Command {
    // Under rustup, `CARGO` may name another toolchain's cargo than the one rust-toolchain.toml
    // picked (the same version from another directory still rebuilds everything): go through
    // the rustup proxy, which honours RUSTUP_TOOLCHAIN.
    let cargo = if std::env::var_os("RUSTUP_TOOLCHAIN").is_some() {
        "cargo".into()
    } else {
        std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
    };
    let mut cmd = Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("CARGO") && !matches!(name, "CARGO_HOME" | "CARGO_TARGET_DIR") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// The cargo profile the running test or bench was built with: the name of `<target>/<profile>/`
/// it runs from (`debug` under `cargo test`, `release` under `cargo bench`).
pub fn profile() -> anyhow::Result<String> {
    let exe = std::env::current_exe()?;
    exe.parent()
        .and_then(|deps| deps.parent())
        .and_then(|dir| dir.file_name())
        .and_then(|name| name.to_str())
        .map(str::to_owned)
        .context("the test binary is not in <target>/<profile>/deps")
}

/// Builds `bin` with the running test's profile and returns this checkout's build of it.
///
/// The target directory may be shared by several checkouts (`CARGO_TARGET_DIR`): then
/// `<target>/<profile>/<bin>` is whichever checkout built last, possibly another one in between
/// this build and its use. Cargo links `deps/<bin>-<hash>` there and then writes `<bin>.d`, whose
/// paths are absolute: while `<bin>.d` names this checkout's sources before and after, the file
/// is this checkout's build, and a hard link of it under `e2e-bin/<checkout>/` keeps it (cargo
/// replaces files rather than rewriting them). Should another checkout's build land in between,
/// link again. (Sharing a target directory has a worse trap: the hash is the same for every
/// checkout, so cargo may take another checkout's newer library of a workspace crate as fresh.
/// Give each checkout its own target directory.)
fn build(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    for _ in 0..5 {
        let linked = build_once(package, bin)?;
        if let Some(own) = own_artifact(&linked, package)? {
            return private_link(&linked, &own);
        }
    }
    bail!("{bin}: another checkout sharing the target directory keeps replacing it")
}

/// `<target>/<profile>/e2e-bin/<this checkout's path>/<bin>`, a hard link of `own`: under its
/// own name (programs show it in their usage), and no other checkout's build replaces it.
fn private_link(linked: &std::path::Path, own: &std::path::Path) -> anyhow::Result<PathBuf> {
    let checkout: String = crate::cluster::repo_dir()
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = linked
        .parent()
        .context("no parent")?
        .join("e2e-bin")
        .join(checkout.trim_matches('-'));
    std::fs::create_dir_all(&dir)?;
    let name = linked.file_name().context("a file name")?;
    let path = dir.join(name);
    // A new name, then a rename: a test already running the old file keeps it.
    let fresh = dir.join(format!(
        ".{}.{}.new",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&fresh);
    if std::fs::hard_link(own, &fresh).is_err() {
        std::fs::copy(own, &fresh)?;
    }
    std::fs::rename(&fresh, &path)?;
    Ok(path)
}

/// The `deps/` file `linked` is a hard link of, when this checkout's build linked it.
fn own_artifact(linked: &std::path::Path, package: &str) -> anyhow::Result<Option<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let main = crate::cluster::repo_dir().join(package).join("src/main.rs");
    let main = format!("{} ", main.display());
    let depinfo = linked.with_extension("d");
    let ours = || -> bool {
        std::fs::read_to_string(&depinfo)
            .map(|text| format!("{} ", text.replace('\n', " ")).contains(&main))
            .unwrap_or(false)
    };
    if !ours() {
        return Ok(None);
    }
    let inode = std::fs::metadata(linked)?.ino();
    let deps = linked.parent().context("no parent")?.join("deps");
    let prefix = format!(
        "{}-",
        linked
            .file_name()
            .and_then(|n| n.to_str())
            .context("a file name")?
            .replace('-', "_")
    );
    for entry in std::fs::read_dir(&deps)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(&prefix) || name.contains('.') || entry.metadata()?.ino() != inode {
            continue;
        }
        let still = std::fs::metadata(linked)?.ino() == inode && ours();
        return Ok(still.then(|| entry.path()));
    }
    Ok(None)
}

/// Builds `bin` with the running test's profile: the path cargo links it to.
fn build_once(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    let profile = profile()?;
    let mut cmd = cargo_command();
    cmd.current_dir(crate::cluster::repo_dir())
        .args(["build", "--quiet", "-p", package, "--bin", bin]);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .status()
        .with_context(|| format!("running cargo build for {bin}"))?;
    if !status.success() {
        bail!("cargo build -p {package} --bin {bin} ({profile}) failed ({status})");
    }
    // Tests run from <target>/<profile>/deps/; the binaries are in <target>/<profile>/.
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
