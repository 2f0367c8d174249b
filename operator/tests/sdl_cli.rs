//! `akash-provider sdl …` end to end: the real binary on SDL files.

use std::path::Path;
use std::process::{Command, Output};

const VALID: &str = r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        to:
          - global: true
profiles:
  compute:
    web:
      resources:
        cpu: { units: "250m" }
        memory: { size: 256Mi }
        storage: { size: 1Gi }
  placement:
    dc:
      pricing:
        web: { denom: uact, amount: 1000 }
deployment:
  web:
    dc: { profile: web, count: 2 }
"#;

fn run(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_akash-provider"))
        .arg("sdl")
        .args(args)
        .arg(file)
        .output()
        .expect("run akash-provider")
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write SDL");
    path
}

#[test]
fn validate_prints_ok_for_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "deploy.yaml", VALID);
    let out = run(&["validate"], &file);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "OK\n");
}

#[test]
fn validate_names_the_bad_field_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "bad.yaml",
        &VALID.replace("- port: 80", "- port: 70000"),
    );
    let out = run(&["validate"], &file);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("services.web.expose[0].port: must be between 1 and 65535, found 70000"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn version_groups_and_manifest_agree_with_the_library() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "deploy.yaml", VALID);
    let sdl = crds::sdl::Sdl::parse(VALID).unwrap();

    let out = run(&["version"], &file);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        sdl.manifest_version_hex()
    );

    let out = run(&["groups"], &file);
    let groups: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        groups[0]["resources"][0]["resource"]["cpu"]["units"]["val"],
        "250"
    );
    assert_eq!(groups[0]["resources"][0]["count"], 2);

    let out = run(&["manifest"], &file);
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(manifest[0]["services"][0]["image"], "nginx:1.27");

    let out = run(&["manifest", "--canonical"], &file);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        sdl.manifest_json()
    );
}

#[test]
fn a_missing_file_exits_with_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["validate"], &dir.path().join("nope.yaml"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
