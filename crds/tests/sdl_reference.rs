//! Agreement with the official Akash TypeScript SDK on SDL files: every file under `testdata/sdl/`
//! (real deployments), under `../shared/testdata/sdl/` when that folder exists beside the clone and
//! holds files the repository does not, and under `crds/tests/sdl-edge/` (hand-written corner cases).
//!
//! The SDK (installed in `sdk-ref/`) writes one record per file through `sdk-ref/sdl-reference.mjs`:
//! accepted or rejected, groups, manifest, the exact JSON it hashes and the manifest version. For every
//! file we require the same verdict and, when accepted, the same groups, manifest, JSON and version.
//! New files are picked up without code changes.
//!
//! Files where the SDK fails with a JavaScript `TypeError` (an SDK bug, not a validation message) are
//! listed with the reason; we reject them with our own message. Files where we deliberately differ are
//! listed with the reason and the difference expected. Both lists are checked to be exactly right, so
//! the test fails when a file is added, fixed or removed without updating them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crds::sdl::Sdl;
use serde_json::Value;

/// Files of the shared test data on which the SDK throws a TypeError, and why. We reject each of them.
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

/// Edge-case files on which the SDK throws a TypeError, and why. We reject each of them.
const EDGE_SDK_TYPE_ERRORS: &[(&str, &str)] = &[
    (
        "placements-out-of-order-uneven.yaml",
        "the SDK takes resource ids by position: placement index in document order into groups sorted by name, and runs past the end of a shorter group",
    ),
    (
        "placements-unused-first.yaml",
        "an unused placement declared first shifts the SDK's position lookup onto a group that does not exist",
    ),
    (
        "shared-profile-later.yaml",
        "two services share a compute profile that is not the group's first unit; the SDK adds arrays with `+=` and calls sort on the resulting string",
    ),
];

/// Edge-case files where we deliberately differ from the SDK: (file, reason, expected problem text).
const EDGE_KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "storage-class-unknown.yaml",
        "we accept only the storage classes providers offer (default, beta1, beta2, beta3, ram), as the Go SDL parser does; the SDK accepts any text",
        "the SDK accepts, we reject",
    ),
    (
        "reclamation.yaml",
        "`reclamation.min_window` (AEP-82) is part of SDL and of the Go schema; the SDK 1.0.0-alpha.25 schema does not know it yet",
        "we accept, the SDK rejects",
    ),
];

#[path = "../../testdata/sdl_files.rs"]
mod sdl_files;
use sdl_files::{all_sdl_files, repo_root, repo_sdl_dir, shared_sdl_dir, yaml_files};

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

/// Runs the SDK over `dir` and compares every file; returns the failure report, if any.
fn check_dir(
    dir: &Path,
    type_errors: &[(&str, &str)],
    known: &[(&str, &str, &str)],
) -> Result<String, String> {
    let root = repo_root();
    let files = yaml_files(dir);
    assert!(!files.is_empty(), "no SDL files under {}", dir.display());

    let out = tempfile::tempdir().expect("temp dir");
    let status = Command::new("node")
        .current_dir(&root)
        .arg("sdk-ref/sdl-reference.mjs")
        .arg(dir)
        .arg(out.path())
        .status()
        .expect("node must be installed to run the SDK reference (see test.sh)");
    assert!(
        status.success(),
        "sdk-ref/sdl-reference.mjs failed; is the SDK installed in sdk-ref/node_modules?"
    );

    let type_errors: BTreeMap<&str, &str> = type_errors.iter().copied().collect();
    let mut problems = Vec::new();
    let mut agreed = 0;
    let mut seen = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(dir)
            .expect("under the directory")
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
        match known.iter().find(|(f, _, _)| *f == rel) {
            Some((_, reason, expected)) => {
                let as_expected = found.len() == 1 && found[0].contains(expected);
                if !as_expected {
                    problems.push(format!(
                        "{rel}: listed as a known difference ({reason}: {expected}) but found {found:?}"
                    ));
                }
            }
            None if found.is_empty() => agreed += 1,
            None => problems.extend(found),
        }
    }
    for listed in type_errors.keys().chain(known.iter().map(|(f, _, _)| f)) {
        if !seen.iter().any(|s| s == listed) {
            problems.push(format!(
                "{listed}: listed above but not in {}",
                dir.display()
            ));
        }
    }
    let summary = format!(
        "{agreed} of {} SDL files under {} agree fully with the SDK ({} known differences)",
        files.len(),
        dir.display(),
        known.len()
    );
    if problems.is_empty() {
        Ok(summary)
    } else {
        Err(format!(
            "{summary}; {} problems:\n{}",
            problems.len(),
            problems.join("\n")
        ))
    }
}

#[test]
fn every_real_sdl_file_agrees_with_the_official_sdk() {
    match check_dir(&repo_sdl_dir(), SDK_TYPE_ERRORS, &[]) {
        Ok(summary) => eprintln!("{summary}"),
        Err(report) => panic!("{report}"),
    }
}

/// The extra cases of `../shared/testdata/sdl/`, when it exists and has files the repository lacks.
#[test]
fn extra_shared_sdl_files_agree_with_the_official_sdk() {
    let Some(shared) = shared_sdl_dir() else {
        eprintln!("no ../shared/testdata/sdl beside the clone: nothing extra to check");
        return;
    };
    if !all_sdl_files().iter().any(|f| f.starts_with(&shared)) {
        eprintln!("{} holds no file the repository lacks", shared.display());
        return;
    }
    match check_dir(&shared, SDK_TYPE_ERRORS, &[]) {
        Ok(summary) => eprintln!("{summary}"),
        Err(report) => panic!("{report}"),
    }
}

#[test]
fn edge_case_sdl_files_agree_with_the_official_sdk() {
    let dir = repo_root().join("crds/tests/sdl-edge");
    match check_dir(&dir, EDGE_SDK_TYPE_ERRORS, EDGE_KNOWN_DIFFERENCES) {
        Ok(summary) => eprintln!("{summary}"),
        Err(report) => panic!("{report}"),
    }
}
