//! Agreement with the official Akash TypeScript SDK on every SDL file under `../shared/testdata/sdl/`.
//!
//! The SDK (installed in `sdk-ref/`) writes one record per file through `sdk-ref/sdl-reference.mjs`:
//! accepted or rejected, groups, manifest, the exact JSON it hashes and the manifest version. For every
//! file we require the same verdict and, when accepted, the same groups, manifest, JSON and version.
//! New files are picked up without code changes.
//!
//! Files where the SDK fails with a JavaScript `TypeError` (an SDK bug, not a validation message) are
//! listed in `SDK_TYPE_ERRORS` with the reason; we reject them with our own message. The list is
//! checked to be exactly right, so it fails when a file is added, fixed or removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crds::sdl::Sdl;
use serde_json::Value;

/// Files on which the SDK throws a TypeError, and why. We reject each of them.
const SDK_TYPE_ERRORS: &[(&str, &str)] = &[
    (
        "awesome-akash/dify.yaml",
        "a service has no `expose`; the SDK reads `expose.flatMap` of undefined while numbering endpoints",
    ),
    (
        "awesome-akash/langfuse.yaml",
        "a service has no `expose`; the SDK reads `expose.flatMap` of undefined while numbering endpoints",
    ),
    (
        "awesome-akash/postgres-s3-backup.yaml",
        "a service has no `expose`; the SDK reads `expose.flatMap` of undefined while numbering endpoints",
    ),
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crds sits inside the repository")
        .to_path_buf()
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

/// The first place where two JSON values differ, as `path: ours … vs sdk …`.
fn first_difference(path: &str, ours: &Value, sdk: &Value) -> Option<String> {
    match (ours, sdk) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|k| {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_difference(&p, x, y),
                    (x, y) => Some(format!("{p}: ours {x:?} vs sdk {y:?}")),
                }
            })
        }
        (Value::Array(a), Value::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!(
                    "{path}: ours has {} items, sdk has {}",
                    a.len(),
                    b.len()
                ));
            }
            a.iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(&format!("{path}[{i}]"), x, y))
        }
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: ours {a} vs sdk {b}")),
    }
}

fn compare(
    rel: &str,
    text: &str,
    record: &Value,
    type_errors: &BTreeMap<&str, &str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let sdk_accepts = record["accepted"].as_bool().unwrap_or(false);
    let ours = Sdl::parse(text);
    let sdk_type_error = !sdk_accepts && record["errorName"] == "TypeError";
    if sdk_type_error != type_errors.contains_key(rel) {
        problems.push(format!(
            "{rel}: SDK_TYPE_ERRORS is out of date: the SDK {} with a TypeError here ({})",
            if sdk_type_error {
                "fails"
            } else {
                "does not fail"
            },
            record["error"]
        ));
    }
    match (&ours, sdk_accepts) {
        (Ok(_), false) => problems.push(format!(
            "{rel}: we accept, the SDK rejects at {}: {} {}",
            record["stage"], record["errorName"], record["error"]
        )),
        (Err(e), true) => problems.push(format!("{rel}: the SDK accepts, we reject: {e}")),
        (Err(_), false) => {}
        (Ok(sdl), true) => {
            let groups = serde_json::to_value(sdl.groups()).expect("groups serialise");
            if let Some(d) = first_difference("groups", &groups, &record["groups"]) {
                problems.push(format!("{rel}: groups differ at {d}"));
            }
            let manifest = serde_json::to_value(sdl.manifest()).expect("manifest serialises");
            if let Some(d) = first_difference("manifest", &manifest, &record["manifest"]) {
                problems.push(format!("{rel}: manifest differs at {d}"));
            }
            if record["sortedJson"].as_str() != Some(sdl.manifest_json().as_str()) {
                problems.push(format!("{rel}: the hashed manifest JSON differs"));
            }
            if record["version"].as_str() != Some(sdl.manifest_version_hex().as_str()) {
                problems.push(format!(
                    "{rel}: version ours {} vs sdk {}",
                    sdl.manifest_version_hex(),
                    record["version"]
                ));
            }
        }
    }
    problems
}

#[test]
fn every_sdl_file_agrees_with_the_official_sdk() {
    let root = repo_root();
    let testdata = root.join("../shared/testdata/sdl");
    let mut files = Vec::new();
    yaml_files(&testdata, &mut files);
    assert!(
        !files.is_empty(),
        "no SDL files under {}",
        testdata.display()
    );

    let out = tempfile::tempdir().expect("temp dir");
    let status = Command::new("node")
        .current_dir(&root)
        .arg("sdk-ref/sdl-reference.mjs")
        .arg(&testdata)
        .arg(out.path())
        .status()
        .expect("node must be installed to run the SDK reference (see test.sh)");
    assert!(
        status.success(),
        "sdk-ref/sdl-reference.mjs failed; is the SDK installed in sdk-ref/node_modules?"
    );

    let type_errors: BTreeMap<&str, &str> = SDK_TYPE_ERRORS.iter().copied().collect();
    let mut problems = Vec::new();
    let mut agreed = 0;
    let mut seen = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&testdata)
            .expect("under testdata")
            .to_string_lossy()
            .replace('\\', "/");
        seen.push(rel.clone());
        let text = std::fs::read_to_string(file).expect("read SDL file");
        let record_path = out.path().join(format!("{rel}.json"));
        let record: Value = match std::fs::read_to_string(&record_path) {
            Ok(s) => serde_json::from_str(&s).expect("record is JSON"),
            Err(e) => {
                problems.push(format!("{rel}: no SDK record ({e})"));
                continue;
            }
        };
        let found = compare(&rel, &text, &record, &type_errors);
        if found.is_empty() {
            agreed += 1;
        }
        problems.extend(found);
    }
    for listed in type_errors.keys() {
        if !seen.iter().any(|s| s == listed) {
            problems.push(format!(
                "{listed}: listed in SDK_TYPE_ERRORS but not in testdata"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{agreed} of {} SDL files agree with the SDK; {} problems:\n{}",
        files.len(),
        problems.len(),
        problems.join("\n")
    );
    eprintln!("{agreed} of {} SDL files agree with the SDK", files.len());
}
