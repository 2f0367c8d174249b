//! The custom resources of `akash.network/v1`, derived in Rust. `all()` returns their definitions;
//! `akash-provider crd` prints them and the chart's CRD files are generated from it.

mod bid;
mod common;
mod conditions;
mod lease;
mod manifest;
mod provider;
mod tunnel;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

pub use bid::{Bid, BidPhase, BidSpec, BidStatus, GpuModel, ReservedUnit, StorageReservation};
pub use common::{Condition, LeaseRef, OrderRef, Price};
pub use conditions::{
    ConditionStatus, ConditionType, LeaseReason, ManifestReason, ProviderReason, TunnelReason,
    UnknownName, find_condition,
};
pub use lease::{
    Lease, LeaseManifest, LeasePhase, LeaseSpec, LeaseStatus, LeasedIpStatus, LeasedUnit,
    ServiceStatus,
};
pub use manifest::{
    BidFilter, Distribution, GroupLeaseStatus, Manifest, ManifestPhase, ManifestSpec,
    ManifestStatus, SecretKeyRef, ServiceEndpoints,
};
pub use provider::{
    Attribute, PricingStrategy, Provider, ProviderInfo, ProviderSpec, ProviderStatus, ScalePricing,
};
pub use tunnel::{Tunnel, TunnelMode, TunnelRole, TunnelSpec, TunnelStatus};

/// The API group of every resource here.
pub const GROUP: &str = "akash.network";
/// The served and stored version of every resource here.
pub const VERSION: &str = "v1";

/// The label of a `Bid` and a `Lease` naming the deployment's owner (to select them by).
pub const OWNER_LABEL: &str = "akash.network/owner";
/// The label of a `Bid` and a `Lease` holding the deployment's `dseq`.
pub const DSEQ_LABEL: &str = "akash.network/dseq";

/// Every custom resource definition of `akash.network/v1`, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    [
        Manifest::crd(),
        Lease::crd(),
        Bid::crd(),
        Provider::crd(),
        Tunnel::crd(),
    ]
    .into_iter()
    .map(kubernetes_formats)
    .map(structural)
    .collect()
}

/// The SDL accepts a value in more than one shape in a few places (a number or a string for
/// `cpu.units` and prices, one storage volume or a list). A structural CRD schema cannot say
/// "one of these shapes", so such a field accepts any value in the schema and the tenant
/// controller's SDL validation (which names the field) decides.
fn structural(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(value: &mut serde_json::Value) {
        let serde_json::Value::Object(map) = value else {
            return;
        };
        // Branches that only say which property is required (kube's form for Rust enums) are
        // structural already; branches with types of their own are not.
        let typed_branches = ["anyOf", "oneOf"].iter().any(|key| {
            map.get(*key)
                .and_then(|b| b.as_array())
                .is_some_and(|branches| {
                    branches.iter().any(|b| {
                        b.as_object()
                            .is_none_or(|o| o.keys().any(|k| k != "required"))
                    })
                })
        });
        if typed_branches {
            let mut any = serde_json::Map::new();
            if let Some(description) = map.get("description") {
                any.insert("description".into(), description.clone());
            }
            if map.get("nullable") == Some(&serde_json::Value::Bool(true)) {
                any.insert("nullable".into(), true.into());
            }
            any.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
            *map = any;
            return;
        }
        for key in ["properties", "patternProperties"] {
            if let Some(serde_json::Value::Object(props)) = map.get_mut(key) {
                props.values_mut().for_each(walk);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(inner) = map.get_mut(key) {
                walk(inner);
            }
        }
    }
    let mut value = serde_json::to_value(crd).expect("a CRD serializes to JSON");
    if let Some(versions) = value.pointer_mut("/spec/versions") {
        for version in versions.as_array_mut().into_iter().flatten() {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                walk(schema);
            }
        }
    }
    serde_json::from_value(value).expect("a rewritten schema keeps the CRD valid")
}

/// schemars names Rust's unsigned integers (`uint64`, ...), which the API server does not know and
/// warns about on every apply; the bounds are already in `minimum`/`maximum`. Say `int64` or `int32`.
fn kubernetes_formats(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(format)) = map.get_mut("format") {
                    match format.as_str() {
                        "uint64" | "uint32" => *format = "int64".into(),
                        "uint16" | "uint8" | "int16" | "int8" => *format = "int32".into(),
                        _ => {}
                    }
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut value = serde_json::to_value(crd).expect("a CRD serializes to JSON");
    walk(&mut value);
    serde_json::from_value(value).expect("formats rewritten in place keep the CRD valid")
}

/// Header of every generated CRD file.
pub const GENERATED_HEADER: &str = "# Generated by `akash-provider crd`; do not edit.\n\
# Regenerate with: cargo run -p operator -- crd --dir helm/akash-provider/crds\n";

/// Each definition as a YAML document with the generated-file header, named `<plural>.<group>.yaml`.
pub fn files() -> Vec<(String, String)> {
    all()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"));
            let yaml = serde_yaml::to_string(&crd).expect("a CRD always serializes to YAML");
            (name, format!("{GENERATED_HEADER}{yaml}"))
        })
        .collect()
}
