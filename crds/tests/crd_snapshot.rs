//! The committed CRD files of the chart are exactly what the Rust types generate: a change to a
//! resource type must come with its regenerated YAML, reviewed in the same commit.

use std::collections::BTreeMap;
use std::path::Path;

#[test]
fn committed_chart_crds_match_the_generated_ones() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../helm/akash-provider/crds");
    let regenerate = "regenerate with: cargo run -p operator -- crd --dir helm/akash-provider/crds";
    let generated: BTreeMap<String, String> = crds::resources::files().into_iter().collect();
    let committed: BTreeMap<String, String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; {regenerate}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a readable directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (
                name,
                std::fs::read_to_string(&path).expect("a readable CRD file"),
            )
        })
        .collect();

    let mut problems = Vec::new();
    for (name, yaml) in &generated {
        match committed.get(name) {
            None => problems.push(format!("{name}: generated but not committed")),
            Some(old) if old != yaml => {
                let line = old
                    .lines()
                    .zip(yaml.lines())
                    .position(|(a, b)| a != b)
                    .map(|i| i + 1)
                    .unwrap_or_else(|| old.lines().count().min(yaml.lines().count()) + 1);
                problems.push(format!(
                    "{name}: differs from the generated YAML from line {line}"
                ));
            }
            Some(_) => {}
        }
    }
    for name in committed.keys().filter(|n| !generated.contains_key(*n)) {
        problems.push(format!("{name}: committed but no longer generated"));
    }
    assert!(problems.is_empty(), "{}\n{regenerate}", problems.join("\n"));
}

#[test]
fn every_resource_has_a_short_name_the_akash_category_and_printer_columns() {
    for crd in crds::resources::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        assert_eq!(crd.spec.group, "akash.network", "{name}");
        let short = crd.spec.names.short_names.clone().unwrap_or_default();
        assert!(!short.is_empty(), "{name} has no short name");
        let categories = crd.spec.names.categories.clone().unwrap_or_default();
        assert!(
            categories.contains(&"akash".to_string()),
            "{name} is not in category akash"
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1", "{name}");
        assert!(
            version.served && version.storage,
            "{name} v1 is not served and stored"
        );
        let columns = version
            .additional_printer_columns
            .clone()
            .unwrap_or_default();
        assert!(columns.len() >= 3, "{name} has too few printer columns");
        assert!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "{name} has no status subresource"
        );
    }
}

#[test]
fn lease_is_reachable_as_aleases_because_leases_belongs_to_coordination() {
    let lease = crds::resources::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "Lease")
        .expect("a Lease CRD");
    assert_eq!(lease.metadata.name.as_deref(), Some("leases.akash.network"));
    assert_eq!(
        lease.spec.names.short_names,
        Some(vec!["aleases".to_string()])
    );
    let columns: Vec<String> = lease.spec.versions[0]
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect();
    for wanted in ["Owner", "DSeq", "Price", "Phase", "Ready", "Age"] {
        assert!(
            columns.contains(&wanted.to_string()),
            "no {wanted} column in {columns:?}"
        );
    }
}

#[test]
fn lease_keeps_the_whole_deployment_manifest_as_an_optional_string_for_peers() {
    let lease = crds::resources::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "Lease")
        .expect("a Lease CRD");
    let schema = lease.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("a schema");
    let spec = &schema.properties.as_ref().unwrap()["spec"];
    let field = &spec.properties.as_ref().unwrap()["deploymentManifest"];
    assert_eq!(field.type_.as_deref(), Some("string"));
    let required = spec.required.clone().unwrap_or_default();
    assert!(
        !required.contains(&"deploymentManifest".to_string()),
        "optional: Leases written before it exist: {required:?}"
    );
}
