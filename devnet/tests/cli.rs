//! The `akash-devnet` binary as a user runs it: start on a fresh home, see the banner, stop with
//! SIGTERM, start again and resume at the same height.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the binary; returns the child and the stdout lines up to the gRPC address line.
fn start(home: &std::path::Path) -> (Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_akash-devnet"))
        .args(["start", "--chain-id", "cli-test", "--block-time", "100ms"])
        .args(["--rpc-laddr", "127.0.0.1:0", "--grpc-laddr", "127.0.0.1:0"])
        .arg("--home")
        .arg(home)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "exited early: {lines:?}"
        );
        let done = line.starts_with("gRPC");
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    (child, lines)
}

fn stop(mut child: Child) {
    // SIGTERM to the child we started, by its id.
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the node did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn height_in(home: &std::path::Path) -> u64 {
    let store = devnet::store::Store::open(home).unwrap();
    store.load_state().unwrap().unwrap().0.height
}

#[test]
fn start_prints_accounts_and_a_restart_resumes() {
    let home = tempfile::tempdir().unwrap();
    let (child, lines) = start(home.path());
    let text = lines.join("\n");
    assert!(
        text.contains("genesis       written (fresh home)"),
        "{text}"
    );
    assert!(text.contains("chain id      cli-test"), "{text}");
    let first = devnet::genesis::test_accounts().unwrap()[0].address.clone();
    assert!(text.contains(&format!("(0) {first}")), "{text}");
    assert!(text.contains("mnemonic: test test test test test test test test test test test junk"));
    let rpc = lines
        .iter()
        .find(|l| l.starts_with("CometBFT RPC"))
        .unwrap();
    assert!(rpc.contains("http://127.0.0.1:"), "{rpc}");
    std::thread::sleep(Duration::from_millis(600));
    stop(child);
    let height = height_in(home.path());
    assert!(height >= 2, "height {height}");

    let (child, lines) = start(home.path());
    let text = lines.join("\n");
    assert!(
        text.contains(&format!("resuming      at height {height}")),
        "{text}"
    );
    stop(child);
    assert!(height_in(home.path()) >= height);
}
