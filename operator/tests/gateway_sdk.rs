//! The official SDK's manifests as it sends them over gRPC (`SendManifest`: protobuf groups) turned
//! back into manifest JSON by the gateway hash to the version the SDK computed, for every SDL of
//! `testdata/sdl` (and `../shared/testdata/sdl`, when present) the SDK accepts. Otherwise a tenant using the SDK would be told its
//! manifest does not match its deployment.
//!
//! Every one of those requests also passes the gateway's bounds on list sizes (checked on the
//! protobuf before decoding), so the bounds refuse no manifest the SDK makes.
//!
//! Needs Node 20+ and `sdk-ref/node_modules` (as chain-client's gateway test does).

use chain_client::akash::manifest::v2beta3 as mv;
use chain_client::akash::provider::lease::v1::SendManifestRequest;
use prost::Message;
use sha2::{Digest, Sha256};

const SCRIPT: &str = r#"
import fs from "node:fs";
import * as sdk from "@akashnetwork/chain-sdk";
import yaml from "js-yaml";
const mod = await import("@akashnetwork/chain-sdk/private-types/provider.akash.v2beta3");
const Group = Object.values(mod).find(v => v && v.$type === "akash.manifest.v2beta3.Group");
const hex = (b) => Buffer.from(b).toString("hex");
const out = [];
for (const file of process.argv.slice(1)) {
  let result;
  try {
    result = sdk.generateManifest(yaml.load(fs.readFileSync(file, "utf8")));
  } catch (e) {
    continue;
  }
  if (!result.ok) continue;
  const groups = result.value.groups;
  out.push({
    file,
    version: hex(await sdk.generateManifestVersion(groups)),
    groups: groups.map((g) => hex(Group.encode(g).finish())),
  });
}
console.log(JSON.stringify(out));
"#;

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

#[path = "../../testdata/sdl_files.rs"]
mod sdl_files;

#[test]
fn sdk_protobuf_manifests_hash_to_the_sdk_version() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let files: Vec<String> = sdl_files::all_sdl_files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert!(!files.is_empty(), "no SDL test files");
    let output = std::process::Command::new("node")
        .arg("--input-type=module")
        .arg("-e")
        .arg(SCRIPT)
        .args(&files)
        .current_dir(root.join("sdk-ref"))
        .output()
        .expect("run node (Node 20+ on PATH, sdk-ref/node_modules installed)");
    assert!(
        output.status.success(),
        "node failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("JSON from node");
    assert!(
        records.len() > files.len() / 2,
        "the SDK accepted too few files"
    );
    let mut failures = Vec::new();
    for record in &records {
        let groups: Vec<mv::Group> = record["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| mv::Group::decode(unhex(g.as_str().expect("hex")).as_slice()).expect("proto"))
            .collect();
        let request = SendManifestRequest {
            lease_id: None,
            manifest: groups.clone(),
        };
        if let Err(e) =
            operator::gateway::wire_limits::check_send_manifest(&request.encode_to_vec())
        {
            failures.push(format!(
                "{}: over the gateway's bounds: {e}",
                record["file"]
            ));
        }
        let manifest = operator::gateway::manifest_from_proto(&groups);
        // What the gateway hands on (converted one group at a time, capped) is the same JSON.
        match operator::gateway::manifest_json_from_proto(&groups, usize::MAX) {
            Ok(body) if body == serde_json::to_vec(&manifest).expect("JSON") => {}
            Ok(_) => failures.push(format!("{}: the capped JSON differs", record["file"])),
            Err(e) => failures.push(format!("{}: {e}", record["file"])),
        }
        let json = crds::sdl::version::manifest_json(&manifest);
        let version = crds::sdl::version::hex(&Sha256::digest(json.as_bytes()));
        if version != record["version"].as_str().expect("version") {
            failures.push(format!("{}: {json}", record["file"]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} SDK manifests hash differently after protobuf → JSON, or break the bounds:\n{}",
        failures.len(),
        records.len(),
        failures.join("\n")
    );
}
