//! `akash-provider tenant deploy|status|close` from a terminal, against the devnet and two real
//! providers: the progress it prints, the cheaper provider running the SDL, and the close.

use std::process::Command;

use chain_client::akash::deployment::v1 as dv1;
use e2e::market::unique_dseq;
use e2e::marketplace::Marketplace;

fn tenant_cli(
    m: &Marketplace,
    home: &std::path::Path,
    key: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<(bool, String)> {
    let output = Command::new(e2e::binaries::akash_provider()?)
        .arg("tenant")
        .args(args)
        .args(["--chain-id", &m.devnet.chain_id])
        .args([
            "--rpc-url",
            &m.devnet.rpc_url,
            "--grpc-url",
            &m.devnet.grpc_url,
        ])
        .args(["--poll-interval", "100ms", "--block-interval", "200ms"])
        .arg("--key-file")
        .arg(key)
        .arg("--home")
        .arg(home)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_deploy_shows_bids_winner_and_endpoints_then_status_and_close_work()
-> anyhow::Result<()> {
    let m = Marketplace::start("tc-cli", [1.0, 3.0], &[]).await?;
    let dir = tempfile::tempdir()?;
    let key = dir.path().join("mnemonic");
    std::fs::write(&key, e2e::devnet::TEST_MNEMONICS[e2e::scenario::TENANT_KEY])?;
    let home = dir.path().join("home");
    let sdl = e2e::repo_dir().join("testdata/sdl/awesome-akash/openspeedtest.yaml");
    let dseq = unique_dseq(44);
    let dseq_text = dseq.to_string();
    let cheaper = m.sites[0].address.clone();

    let (ok, out) = tenant_cli(
        &m,
        &home,
        &key,
        &[
            "deploy",
            sdl.to_str().unwrap(),
            "--dseq",
            &dseq_text,
            "--wait-blocks",
            "3",
            "--timeout",
            "2m",
        ],
    )?;
    assert!(ok, "{out}");
    println!("{out}");
    for expected in [
        format!("deployment {dseq} created"),
        "group 1: 2 bids".to_owned(),
        format!("group 1: leased to {cheaper} at 2024uact/block"),
        format!("manifest sent to {cheaper}"),
        "1/1 services ready".to_owned(),
        "service openspeedtest: 1/1 ready".to_owned(),
        ".ingress.localhost".to_owned(),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in:\n{out}");
    }
    // The tenant's key never reaches the output; its certificate key is private to its owner.
    assert!(!out.contains(e2e::devnet::TEST_MNEMONICS[e2e::scenario::TENANT_KEY]));
    let key_pem = std::fs::read_dir(&home)?
        .next()
        .unwrap()?
        .path()
        .join("key.pem");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key_pem)?.permissions());
    assert_eq!(mode & 0o777, 0o600);

    let (ok, out) = tenant_cli(&m, &home, &key, &["status", &dseq_text])?;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("deployment {dseq} of")), "{out}");
    assert!(out.contains("active"), "{out}");
    assert!(out.contains("service openspeedtest: 1/1 ready"), "{out}");

    let (ok, out) = tenant_cli(&m, &home, &key, &["close", &dseq_text])?;
    assert!(ok, "{out}");
    assert!(out.contains(&format!("deployment {dseq} closed")), "{out}");
    let closed = operator::tenant::flow::deployment(
        &m.tenant,
        chain_client::Chain::address(&m.tenant),
        dseq,
    )
    .await?
    .unwrap()
    .deployment
    .unwrap();
    assert_eq!(closed.state, dv1::deployment::State::Closed as i32);

    // Closing again is a clear error, not a second transaction.
    let (ok, out) = tenant_cli(&m, &home, &key, &["close", &dseq_text])?;
    assert!(!ok);
    assert!(out.contains("no active deployment"), "{out}");
    Ok(())
}
