//! Script pricing with tiny shell scripts in a temporary directory.

use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

use crds::resources::GpuModel;

use super::*;
use crate::bidding::pricing::{Pricing, order_max_price};
use crate::inventory::demand_of;
use crate::inventory::fixtures::group;

fn script(dir: &tempfile::TempDir, name: &str, body: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn placed() -> Vec<ReservedUnit> {
    let mut units = demand_of(&group("priced.yaml")).unwrap();
    units[0].allocated_gpu = Some(GpuModel {
        vendor: "nvidia".into(),
        model: "a100".into(),
    });
    units
}

async fn run(path: PathBuf, timeout: Duration) -> Result<Price, PricingError> {
    let g = group("priced.yaml");
    let (denom, max) = order_max_price(&g).unwrap();
    Pricing::Script(ScriptPricing::new(path, timeout, DEFAULT_PROCESS_LIMIT))
        .price("akash1tenant", &g, &placed(), &denom, &max)
        .await
}

#[tokio::test]
async fn the_script_gets_the_order_and_its_price_is_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("input.json");
    let env = dir.path().join("env");
    let body = format!(
        "cat > '{}'\necho \"$AKASH_OWNER $AKASH_DENOM\" > '{}'\necho ' 42.5 '",
        out.display(),
        env.display()
    );
    let price = run(script(&dir, "price.sh", &body), DEFAULT_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(price.to_string(), "42.5");
    assert_eq!(
        std::fs::read_to_string(&env).unwrap().trim(),
        "akash1tenant uact"
    );
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        input,
        serde_json::json!({
            "resources": [{
                "memory": 2u64 << 30,
                "cpu": 1500,
                "gpu": {"units": 1, "attributes": {"vendor": {"nvidia": {"model": "a100"}}}},
                "storage": [
                    {"class": "ephemeral", "size": 10u64 << 30},
                    {"class": "beta2", "size": 5u64 << 30}
                ],
                "count": 2,
                "endpoint_quantity": 3,
                "ip_lease_quantity": 1
            }],
            "price": {"denom": "uact", "amount": "100.000000000000000000"},
            "price_precision": 6,
            "confidential_compute": false
        })
    );
}

#[tokio::test]
async fn garbage_output_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "garbage.sh", "cat >/dev/null; echo 'about 12 uact'");
    let err = run(path, DEFAULT_TIMEOUT).await.unwrap_err();
    assert!(
        err.to_string()
            .ends_with("printed \"about 12 uact\", not a decimal price"),
        "{err}"
    );
    assert_eq!(err.label(), "script_output");
    let path = script(&dir, "zero.sh", "echo 0");
    assert_eq!(
        run(path, DEFAULT_TIMEOUT).await.unwrap_err(),
        PricingError::Zero
    );
}

#[tokio::test]
async fn a_failing_script_reports_the_first_line_of_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        &dir,
        "fail.sh",
        "echo 'no GPUs for you' >&2; echo 'second line' >&2; exit 1",
    );
    let err = run(path, DEFAULT_TIMEOUT).await.unwrap_err();
    let PricingError::ScriptFailed { stderr, status, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(stderr, "no GPUs for you");
    assert!(status.contains('1'), "{status}");
    assert!(err.to_string().ends_with(": no GPUs for you"), "{err}");
}

#[tokio::test]
async fn a_hanging_script_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "hang.sh", "exec sleep 30");
    let started = Instant::now();
    let err = run(path, Duration::from_millis(300)).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(err, PricingError::ScriptTimeout { .. }), "{err}");
    assert!(
        err.to_string().contains("did not finish within 300ms"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_script_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    let err = run(dir.path().join("nope.sh"), DEFAULT_TIMEOUT)
        .await
        .unwrap_err();
    assert_eq!(err.label(), "script_spawn");
}

#[tokio::test]
async fn at_most_the_process_limit_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "slow.sh", "sleep 0.3; echo 1");
    let pricing = ScriptPricing::new(path, DEFAULT_TIMEOUT, 1);
    let g = group("priced.yaml");
    let input = ScriptInput::new(&g, &placed(), "uact", Price::from_int(100));
    let started = Instant::now();
    let (a, b) = tokio::join!(
        pricing.run(&input, "akash1tenant", "uact"),
        pricing.run(&input, "akash1tenant", "uact")
    );
    assert_eq!(
        (a.unwrap(), b.unwrap()),
        (Price::from_int(1), Price::from_int(1))
    );
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "one after the other"
    );
}

#[test]
fn the_input_names_the_allocated_model_with_the_constraints_it_met() {
    let g = group("gpu-a100.yaml");
    let mut units = demand_of(&g).unwrap();
    units[0].allocated_gpu = Some(GpuModel {
        vendor: "nvidia".into(),
        model: "a100".into(),
    });
    let input = ScriptInput::new(&g, &units, "uact", Price::from_int(1300));
    let json = serde_json::to_value(&input).unwrap();
    assert_eq!(
        json["resources"][0]["gpu"],
        serde_json::json!({"units": 2, "attributes": {"vendor": {"nvidia": {"model": "a100", "ram": "80Gi"}}}})
    );
    assert_eq!(
        json["resources"][1]["gpu"],
        serde_json::json!({"units": 0, "attributes": {}})
    );
    let classes: Vec<&str> = json["resources"][0]["storage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["class"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["ephemeral", "ram", "beta2"]);
    assert_eq!(
        json["resources"][0]["memory"],
        16u64 << 30,
        "ram volumes are storage here"
    );
    assert_eq!(
        json["resources"][1]["ip_lease_quantity"], 2,
        "per unit, as Go counts"
    );
    assert_eq!(json["price"]["amount"], "1300.000000000000000000");
}
