//! Lease turn-up on the real node beside kwok, in one run (issue "a real node"): from the
//! gateway's 200 for a manifest to every object of the lease applied (kwok and real node), and on
//! the real node on to the first HTTP 200 from the tenant's container through Traefik.
//!
//! `cargo bench -p e2e --bench real_node_turnup` builds `akash-provider` and `akash-devnet` in
//! release, needs the local environment with its real node (`deploy/cluster-up.sh` as root; the
//! bench uses the control plane of `AKASH_E2E_KUBECONFIG` when set) and turns up `BENCH_LEASES`
//! leases (default 20) one at a time on each kind of node; prints p50, p90 and max of each.

use std::process::ExitCode;

fn main() -> ExitCode {
    e2e::bench::main("real_node_turnup", run, || async {})
}

async fn run() -> anyhow::Result<()> {
    let profile = e2e::bench::build_binaries()?;
    let leases: usize = std::env::var("BENCH_LEASES")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(20);
    println!("real_node_turnup: {leases} leases per kind of node, binaries in {profile}");
    let report = e2e::turnup::measure(leases).await?;
    print!("{}", e2e::turnup::table(&report));
    Ok(())
}
