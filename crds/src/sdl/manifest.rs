//! SDL → the provider manifest (Go `manifest/v2beta3` JSON shape) that the tenant sends to each
//! provider, as the reference SDK builds it.
//!
//! One group per placement profile (document order, including placements no service uses), its
//! services sorted by name. Field names and which fields are left out follow the JSON the SDK hashes
//! for the manifest version, so serialising these types gives that JSON (before key sorting).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::endpoints::{EndpointIndex, proto};
use super::error::{FieldPath, SdlIssue};
use super::groups::{
    Attribute, GroupSpec, ResourceValue, cpu_attributes, gpu_attributes, number_text,
    storage_attributes, volume_name,
};
use super::js;
use super::model::{Expose, NumberOrString, Permissions, SdlDocument, Service};
use super::units;

/// One manifest group: the services of one placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestGroup {
    pub name: String,
    pub services: Vec<ManifestService>,
}

/// One service as the provider runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestService {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub resources: ManifestResources,
    pub count: u32,
    pub expose: Vec<ManifestExpose>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<ManifestParams>,
    pub credentials: Option<ManifestCredentials>,
}

/// Resources of a service; `id` is the resource unit id in the matching group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestResources {
    pub id: u32,
    pub cpu: ManifestCpu,
    pub memory: ManifestMemory,
    pub storage: Vec<ManifestStorage>,
    pub gpu: ManifestGpu,
    pub endpoints: Vec<ManifestEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestCpu {
    pub units: ResourceValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<Attribute>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestMemory {
    pub size: ResourceValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<Attribute>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestStorage {
    pub name: String,
    pub size: ResourceValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<Attribute>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestGpu {
    pub units: ResourceValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Vec<Attribute>>,
}

/// An endpoint; `kind` is left out for 0 (shared HTTP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<i32>,
    pub sequence_number: u32,
}

/// One exposed port and one destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestExpose {
    pub port: u16,
    #[serde(rename = "externalPort")]
    pub external_port: u16,
    pub proto: String,
    pub service: String,
    pub global: bool,
    pub hosts: Option<Vec<String>>,
    #[serde(rename = "httpOptions")]
    pub http_options: ManifestHttpOptions,
    pub ip: String,
    #[serde(rename = "endpointSequenceNumber")]
    pub endpoint_sequence_number: u32,
}

/// The largest `http_options.max_body_size` the SDL allows: 100 MiB.
pub const MAX_HTTP_BODY_SIZE: u64 = 104_857_600;
/// The largest `http_options.read_timeout` and `send_timeout` the SDL allows, in milliseconds.
pub const MAX_HTTP_TIMEOUT_MS: u64 = 60_000;
/// What `http_options.next_cases` may list; `off` only alone.
pub const HTTP_NEXT_CASES: &[&str] = &[
    "error", "timeout", "500", "502", "503", "504", "403", "404", "429", "off",
];

/// Ingress settings with their defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManifestHttpOptions {
    pub max_body_size: u64,
    pub read_timeout: u64,
    pub send_timeout: u64,
    pub next_tries: u64,
    pub next_timeout: u64,
    pub next_cases: Vec<String>,
}

/// Volume mounts and permissions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestParams {
    pub storage: Option<Vec<ManifestStorageParams>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestStorageParams {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<String>,
    #[serde(rename = "readOnly")]
    pub read_only: bool,
}

/// Registry credentials; `email` is always present (empty when not given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ManifestCredentials {
    pub host: String,
    pub email: String,
    pub username: String,
    pub password: String,
}

fn http_options(expose: &Expose) -> ManifestHttpOptions {
    let o = expose.http_options.clone().unwrap_or_default();
    let or = |v: Option<u64>, d: u64| v.filter(|v| *v != 0).unwrap_or(d);
    ManifestHttpOptions {
        max_body_size: or(o.max_body_size, 1_048_576),
        read_timeout: or(o.read_timeout, 60_000),
        send_timeout: or(o.send_timeout, 60_000),
        next_tries: or(o.next_tries, 3),
        next_timeout: or(o.next_timeout, 0),
        next_cases: o
            .next_cases
            .unwrap_or_else(|| vec!["error".into(), "timeout".into()]),
    }
}

fn exposes(service: &Service, index: &EndpointIndex) -> Vec<ManifestExpose> {
    let mut out = Vec::new();
    for expose in service.expose.iter().flatten() {
        for to in expose.to.iter().flatten() {
            out.push(ManifestExpose {
                port: expose.port,
                external_port: expose.as_port.unwrap_or(0),
                proto: proto(expose),
                service: to.service.clone().unwrap_or_default(),
                global: to.global == Some(true),
                hosts: expose.accept.clone(),
                http_options: http_options(expose),
                ip: to.ip.clone().unwrap_or_default(),
                endpoint_sequence_number: index.number(to.ip.as_deref()),
            });
        }
    }
    out.sort_by(|a, b| {
        js::locale_compare(&a.service, &b.service)
            .then(a.port.cmp(&b.port))
            .then_with(|| js::locale_compare(&a.proto, &b.proto))
            .then(b.global.cmp(&a.global))
    });
    out
}

fn resources(
    doc: &SdlDocument,
    id: u32,
    profile: &str,
    service: &Service,
    index: &EndpointIndex,
) -> Result<ManifestResources, SdlIssue> {
    let path = FieldPath::root()
        .key("profiles")
        .key("compute")
        .key(profile)
        .key("resources");
    let res = &doc
        .profiles
        .compute
        .get(profile)
        .ok_or_else(|| SdlIssue::new(path.to_string(), "compute profile is not defined"))?
        .resources;
    let size = |text: &str, path: FieldPath| {
        units::size_text(text)
            .map(|val| ResourceValue { val })
            .ok_or_else(|| SdlIssue::new(path.to_string(), format!("\"{text}\" is not a size")))
    };
    let cpu_val = units::cpu_text(&res.cpu.units)
        .ok_or_else(|| SdlIssue::new(path.key("cpu").to_string(), "is not a CPU amount"))?;
    let mut storage = Vec::new();
    for volume in res.storage.volumes() {
        storage.push(ManifestStorage {
            name: volume_name(volume.name.as_deref()),
            size: size(&volume.size, path.key("storage"))?,
            attributes: volume.attributes.as_ref().map(|a| {
                let mut attrs = storage_attributes(a);
                attrs.sort_by(|a, b| js::locale_compare(&a.key, &b.key));
                attrs
            }),
        });
    }
    let gpu_units = match res.gpu.as_ref().map(|g| &g.units) {
        Some(NumberOrString::Text(s)) if !s.is_empty() => s.clone(),
        Some(n @ NumberOrString::Number(x)) if *x != 0.0 && !x.is_nan() => number_text(n),
        _ => "0".into(),
    };
    Ok(ManifestResources {
        id,
        cpu: ManifestCpu {
            units: ResourceValue { val: cpu_val },
            attributes: match &res.cpu.attributes {
                Some(a) => Some(cpu_attributes(
                    a,
                    &path.key("cpu").key("attributes"),
                    js::utf16_cmp,
                )?),
                None => None,
            },
        },
        memory: ManifestMemory {
            size: size(&res.memory.size, path.key("memory").key("size"))?,
            attributes: None,
        },
        storage,
        gpu: ManifestGpu {
            units: ResourceValue { val: gpu_units },
            attributes: res
                .gpu
                .as_ref()
                .and_then(|g| g.attributes.as_ref())
                .map(gpu_attributes),
        },
        endpoints: index
            .resource_endpoints(service)
            .into_iter()
            .map(|e| ManifestEndpoint {
                kind: (e.kind != 0).then_some(e.kind),
                sequence_number: e.sequence_number,
            })
            .collect(),
    })
}

fn params(service: &Service) -> Option<ManifestParams> {
    let p = service.params.as_ref()?;
    if p.storage.is_none() && p.permissions.is_none() {
        return None;
    }
    let storage = p.storage.as_ref().filter(|s| !s.is_empty()).map(|s| {
        js::js_entries(s)
            .into_iter()
            .map(|(name, mount)| ManifestStorageParams {
                name: name.clone(),
                mount: mount.as_ref().and_then(|m| m.mount.clone()),
                read_only: mount.as_ref().and_then(|m| m.read_only).unwrap_or(false),
            })
            .collect()
    });
    Some(ManifestParams {
        storage,
        permissions: p.permissions.clone(),
    })
}

/// Builds the manifest groups. `groups` are the on-chain groups built from the same document; the
/// reference SDK takes each service's resource id from them by position (placement index in
/// document order, service index in name order), and so do we.
pub fn build(doc: &SdlDocument, groups: &[GroupSpec]) -> Result<Vec<ManifestGroup>, SdlIssue> {
    let index = EndpointIndex::new(doc);
    let mut out = Vec::new();
    for (p_idx, (placement, _)) in js::js_entries(&doc.profiles.placement)
        .into_iter()
        .enumerate()
    {
        let mut names: Vec<&String> = js::js_entries(&doc.deployment)
            .into_iter()
            .filter(|(_, d)| d.contains_key(placement))
            .map(|(name, _)| name)
            .collect();
        names.sort_by(|a, b| js::locale_compare(a, b));
        let mut services = Vec::new();
        for (s_idx, name) in names.into_iter().enumerate() {
            let entry = &doc.deployment[name][placement];
            let path = FieldPath::root().key("deployment").key(name).key(placement);
            let service = doc.services.get(name).ok_or_else(|| {
                SdlIssue::new(
                    FieldPath::root().key("deployment").key(name).to_string(),
                    format!("service \"{name}\" is not declared under services"),
                )
            })?;
            let id = groups
                .get(p_idx)
                .and_then(|g| g.resources.get(s_idx))
                .map(|u| u.resource.id)
                .ok_or_else(|| {
                    SdlIssue::new(
                        path.to_string(),
                        "the reference SDK cannot number this service's resources: declare the used placements first under profiles.placement, in name order, and leave out unused ones",
                    )
                })?;
            services.push(ManifestService {
                name: name.clone(),
                image: service.image.clone(),
                command: service.command.clone(),
                args: service.args.clone(),
                env: service.env.clone(),
                resources: resources(doc, id, &entry.profile, service, &index)?,
                count: entry.count,
                expose: exposes(service, &index),
                params: params(service),
                credentials: service.credentials.as_ref().map(|c| ManifestCredentials {
                    host: c.host.clone(),
                    email: c.email.clone().unwrap_or_default(),
                    username: c.username.clone(),
                    password: c.password.clone(),
                }),
            });
        }
        out.push(ManifestGroup {
            name: placement.clone(),
            services,
        });
    }
    Ok(out)
}
