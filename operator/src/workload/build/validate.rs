//! The validate step: everything that would make an apply fail half-way (or run something the
//! lease did not pay for) is refused here, before any object is created, with the field at fault.
//! What passes is read into a [`ServicePlan`] per service, the numbers the builders use.

use std::collections::{BTreeMap, BTreeSet};

use crds::sdl::ManifestGroup;
use crds::sdl::groups::Attribute;
use crds::sdl::manifest::ManifestService;

use super::WorkloadConfig;
use crate::inventory::GPU_LABEL;

/// Why a manifest group cannot be run: the field (such as `services[web].expose[0].service`)
/// and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BuildError {
    pub field: String,
    pub reason: String,
}

impl BuildError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        BuildError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// GPUs of a service: how many, of which vendor, and the models it accepts (any of them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GpuPlan {
    pub units: u64,
    pub vendor: String,
    /// The extended resource: `nvidia.com/gpu` or `amd.com/gpu`.
    pub resource: String,
    /// Empty: any model of the vendor.
    pub models: Vec<GpuModel>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GpuModel {
    pub model: String,
    pub ram: Option<String>,
    pub interface: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VolumeKind {
    /// The container's writable layer (`ephemeral-storage`).
    Ephemeral,
    /// A memory-backed emptyDir.
    Ram,
    /// A PersistentVolumeClaim of a storage class (`default`: the cluster's default class).
    Persistent { class: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VolumePlan {
    pub name: String,
    pub bytes: u64,
    pub kind: VolumeKind,
    /// Mount path and read-only.
    pub mount: Option<(String, bool)>,
}

/// One service, checked and with its numbers read.
#[derive(Debug, Clone)]
pub(crate) struct ServicePlan<'a> {
    pub svc: &'a ManifestService,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub gpu: Option<GpuPlan>,
    pub volumes: Vec<VolumePlan>,
}

impl ServicePlan<'_> {
    pub(super) fn persistent(&self) -> bool {
        self.volumes
            .iter()
            .any(|v| matches!(v.kind, VolumeKind::Persistent { .. }))
    }
}

/// Checks a manifest group against what the builders can run.
pub fn validate(group: &ManifestGroup, config: &WorkloadConfig) -> Result<(), BuildError> {
    plan(group, config).map(|_| ())
}

/// Checks the group and reads each service.
pub(crate) fn plan<'a>(
    group: &'a ManifestGroup,
    config: &WorkloadConfig,
) -> Result<Vec<ServicePlan<'a>>, BuildError> {
    if group.services.is_empty() {
        return Err(BuildError::new("services", "the group has no services"));
    }
    let mut names = BTreeSet::new();
    for (i, svc) in group.services.iter().enumerate() {
        if !names.insert(svc.name.as_str()) {
            return Err(BuildError::new(
                format!("services[{i}].name"),
                format!("service \"{}\" appears twice", svc.name),
            ));
        }
    }
    let mut total: u64 = 0;
    let mut plans = Vec::with_capacity(group.services.len());
    for svc in &group.services {
        total += u64::from(svc.count);
        plans.push(service(svc, &names)?);
    }
    // One host routes to one service.
    let mut hosts: BTreeMap<String, &str> = BTreeMap::new();
    for svc in &group.services {
        for (i, expose) in svc.expose.iter().enumerate() {
            for (j, host) in expose.hosts.iter().flatten().enumerate() {
                if let Some(other) = hosts.insert(host.to_lowercase(), &svc.name)
                    && other != svc.name
                {
                    return Err(BuildError::new(
                        format!("services[{}].expose[{i}].hosts[{j}]", svc.name),
                        format!("host \"{host}\" is also accepted by service \"{other}\""),
                    ));
                }
            }
        }
    }
    if total > u64::from(config.max_replicas) {
        return Err(BuildError::new(
            "services[*].count",
            format!(
                "{total} replicas in all, more than the limit of {}",
                config.max_replicas
            ),
        ));
    }
    Ok(plans)
}

fn service<'a>(
    svc: &'a ManifestService,
    names: &BTreeSet<&str>,
) -> Result<ServicePlan<'a>, BuildError> {
    let at = |field: &str| format!("services[{}].{field}", svc.name);
    if !is_dns_label(&svc.name) {
        return Err(BuildError::new(
            format!("services[{}].name", svc.name),
            "is not a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)",
        ));
    }
    if svc.image.trim().is_empty() {
        return Err(BuildError::new(at("image"), "no image"));
    }
    if svc.image.chars().any(char::is_whitespace) {
        return Err(BuildError::new(at("image"), "an image name has no spaces"));
    }
    let res = &svc.resources;
    let cpu_millis = number(&res.cpu.units.val, &at("resources.cpu.units"))?;
    if cpu_millis == 0 {
        return Err(BuildError::new(
            at("resources.cpu.units"),
            "must be above 0",
        ));
    }
    let memory_bytes = number(&res.memory.size.val, &at("resources.memory.size"))?;
    if memory_bytes == 0 {
        return Err(BuildError::new(
            at("resources.memory.size"),
            "must be above 0",
        ));
    }
    let gpu = gpu(
        number(&res.gpu.units.val, &at("resources.gpu.units"))?,
        res.gpu.attributes.as_deref().unwrap_or_default(),
        &at("resources.gpu.attributes"),
    )?;
    let mut volumes = Vec::new();
    for (i, storage) in res.storage.iter().enumerate() {
        let field = at(&format!("resources.storage[{i}]"));
        let kind = volume_kind(storage.attributes.as_deref().unwrap_or_default(), &field)?;
        if kind != VolumeKind::Ephemeral
            && (!is_dns_label(&storage.name) || svc.name.len() + 1 + storage.name.len() > 63)
        {
            return Err(BuildError::new(
                format!("{field}.name"),
                format!(
                    "volume \"{}-{}\" is not a DNS-1123 label of at most 63 characters",
                    svc.name, storage.name
                ),
            ));
        }
        if volumes.iter().any(|v: &VolumePlan| v.name == storage.name) {
            return Err(BuildError::new(
                format!("{field}.name"),
                format!("volume \"{}\" appears twice", storage.name),
            ));
        }
        volumes.push(VolumePlan {
            name: storage.name.clone(),
            bytes: number(&storage.size.val, &format!("{field}.size"))?,
            kind,
            mount: None,
        });
    }
    let persistent = volumes
        .iter()
        .any(|v| matches!(v.kind, VolumeKind::Persistent { .. }));
    // A StatefulSet's pods carry `controller-revision-hash: <name>-<10 characters>`, a label
    // value of at most 63 characters; a NodePort Service is `<name>-np`.
    let max = if persistent { 52 } else { 60 };
    if svc.name.len() > max {
        return Err(BuildError::new(
            format!("services[{}].name", svc.name),
            format!("is longer than {max} characters"),
        ));
    }
    let mut paths = BTreeSet::new();
    let params = svc.params.as_ref().and_then(|p| p.storage.as_ref());
    for (i, param) in params.into_iter().flatten().enumerate() {
        let field = at(&format!("params.storage[{i}]"));
        let Some(volume) = volumes.iter_mut().find(|v| v.name == param.name) else {
            return Err(BuildError::new(
                format!("{field}.name"),
                format!("no volume \"{}\" in the service's resources", param.name),
            ));
        };
        let Some(path) = param.mount.as_deref().filter(|m| !m.is_empty()) else {
            continue;
        };
        if volume.kind == VolumeKind::Ephemeral {
            return Err(BuildError::new(
                format!("{field}.mount"),
                format!(
                    "volume \"{}\" is neither persistent nor ram and cannot be mounted",
                    param.name
                ),
            ));
        }
        if !path.starts_with('/') || path.contains(':') {
            return Err(BuildError::new(
                format!("{field}.mount"),
                format!("\"{path}\" is not an absolute path"),
            ));
        }
        if !paths.insert(path.trim_end_matches('/')) {
            return Err(BuildError::new(
                format!("{field}.mount"),
                format!("two volumes are mounted at \"{path}\""),
            ));
        }
        if volume.mount.is_some() {
            return Err(BuildError::new(
                format!("{field}.name"),
                format!("volume \"{}\" is mounted twice", param.name),
            ));
        }
        volume.mount = Some((path.to_owned(), param.read_only));
    }
    // A manifest sent to the gateway directly (not from an SDL this provider parsed) may name a
    // resource there is no rule for: refused, rather than quietly granting less than it asks.
    let permissions = svc.params.as_ref().and_then(|p| p.permissions.as_ref());
    for (i, resource) in permissions
        .map(|p| p.read())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if !crds::sdl::model::READ_PERMISSIONS.contains(&resource.as_str()) {
            return Err(BuildError::new(
                at(&format!("params.permissions.read[{i}]")),
                format!(
                    "\"{resource}\" is not a resource a service may read; use one of {}",
                    crds::sdl::model::READ_PERMISSIONS.join(", ")
                ),
            ));
        }
    }
    for (i, entry) in svc.env.iter().flatten().enumerate() {
        let name = entry.split_once('=').map_or(entry.as_str(), |(k, _)| k);
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(BuildError::new(
                at(&format!("env[{i}]")),
                "is not NAME=VALUE",
            ));
        }
    }
    for (i, expose) in svc.expose.iter().enumerate() {
        let field = at(&format!("expose[{i}]"));
        if expose.port == 0 {
            return Err(BuildError::new(
                format!("{field}.port"),
                "port 0 is out of range (1 to 65535)",
            ));
        }
        if !matches!(expose.proto.to_uppercase().as_str(), "TCP" | "UDP") {
            return Err(BuildError::new(
                format!("{field}.proto"),
                format!("protocol \"{}\" is neither TCP nor UDP", expose.proto),
            ));
        }
        // A service of another group is allowed: the overlay connects it across providers.
        if !expose.service.is_empty()
            && !names.contains(expose.service.as_str())
            && !is_dns_label(&expose.service)
        {
            return Err(BuildError::new(
                format!("{field}.service"),
                format!(
                    "\"{}\" is not a service name (a DNS-1123 label)",
                    expose.service
                ),
            ));
        }
        super::http_options::check(&expose.http_options, &format!("{field}.http_options"))?;
        for (j, host) in expose.hosts.iter().flatten().enumerate() {
            if !is_dns_subdomain(&host.to_lowercase()) {
                return Err(BuildError::new(
                    format!("{field}.hosts[{j}]"),
                    format!("\"{host}\" is not a DNS name"),
                ));
            }
        }
    }
    if let Some(creds) = &svc.credentials {
        if creds.host.trim().is_empty() {
            return Err(BuildError::new(at("credentials.host"), "no registry host"));
        }
        if creds.username.trim().is_empty() {
            return Err(BuildError::new(at("credentials.username"), "no user name"));
        }
    }
    Ok(ServicePlan {
        svc,
        cpu_millis,
        memory_bytes,
        gpu,
        volumes,
    })
}

/// What a volume is, from its attributes (`persistent`, `class`); `field` is the volume's.
pub(crate) fn volume_kind(attrs: &[Attribute], field: &str) -> Result<VolumeKind, BuildError> {
    let find = |key: &str| {
        attrs
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    };
    let persistent = matches!(find("persistent"), Some("true"));
    let class = find("class").filter(|c| !c.is_empty());
    let kind = match (persistent, class) {
        (true, Some("ram")) => {
            return Err(BuildError::new(field, "a ram volume cannot be persistent"));
        }
        (true, class) => VolumeKind::Persistent {
            class: class.unwrap_or("default").to_owned(),
        },
        (false, Some("ram")) => VolumeKind::Ram,
        (false, _) => VolumeKind::Ephemeral,
    };
    if let VolumeKind::Persistent { class } = &kind
        && !is_dns_label(class)
    {
        return Err(BuildError::new(
            format!("{field}.attributes.class"),
            format!("storage class \"{class}\" is not a DNS-1123 label"),
        ));
    }
    Ok(kind)
}

/// A non-negative integer amount (millicores, bytes, units).
pub(crate) fn number(text: &str, field: &str) -> Result<u64, BuildError> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| BuildError::new(field, format!("\"{text}\" is not a whole number")))
}

/// Reads `vendor/<v>/model/<m>[/ram/<r>][/interface/<i>]` attributes.
pub(crate) fn gpu(
    units: u64,
    attrs: &[Attribute],
    field: &str,
) -> Result<Option<GpuPlan>, BuildError> {
    if units == 0 {
        return Ok(None);
    }
    let mut by_vendor: BTreeMap<String, Vec<GpuModel>> = BTreeMap::new();
    let mut any_model: BTreeSet<String> = BTreeSet::new();
    for attr in attrs {
        let parts: Vec<&str> = attr.key.split('/').collect();
        let ["vendor", vendor, rest @ ..] = parts.as_slice() else {
            return Err(BuildError::new(
                field,
                format!("\"{}\" is not a GPU attribute", attr.key),
            ));
        };
        let mut model = None;
        let mut ram = None;
        let mut interface = None;
        for pair in rest.chunks(2) {
            match pair {
                ["model", m] => model = Some((*m).to_owned()),
                ["ram", r] => ram = Some((*r).to_owned()),
                ["interface", i] => interface = Some((*i).to_owned()),
                _ => {
                    return Err(BuildError::new(
                        field,
                        format!("\"{}\" is not a GPU attribute", attr.key),
                    ));
                }
            }
        }
        let vendor = (*vendor).to_owned();
        let models = by_vendor.entry(vendor.clone()).or_default();
        match model.as_deref() {
            None | Some("*") => {
                any_model.insert(vendor);
            }
            Some(m) => {
                let model = GpuModel {
                    model: m.to_lowercase(),
                    ram,
                    interface: interface.map(|i| i.to_lowercase()),
                };
                let bad_part = [Some(&vendor), Some(&model.model), model.ram.as_ref()]
                    .into_iter()
                    .chain([model.interface.as_ref()])
                    .flatten()
                    .any(|p| {
                        p.is_empty()
                            || !p
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
                    });
                let too_long = gpu_label_keys(&vendor, &model)
                    .iter()
                    .any(|k| k.trim_start_matches("akash.network/").len() > 63);
                if bad_part || too_long {
                    return Err(BuildError::new(
                        field,
                        format!("GPU \"{}\" cannot be written as a node label", attr.key),
                    ));
                }
                models.push(model);
            }
        }
    }
    // The Go provider runs the vendor its bid allocated; without that, the first vendor named
    // (attributes are sorted) is the one asked for.
    let Some((vendor, models)) = by_vendor.into_iter().next() else {
        return Err(BuildError::new(
            field,
            format!("{units} GPUs without a vendor"),
        ));
    };
    let resource = match vendor.as_str() {
        "nvidia" => "nvidia.com/gpu",
        "amd" => "amd.com/gpu",
        other => {
            return Err(BuildError::new(
                field,
                format!("GPU vendor \"{other}\" is not supported (nvidia, amd)"),
            ));
        }
    };
    Ok(Some(GpuPlan {
        units,
        models: if any_model.contains(&vendor) {
            Vec::new()
        } else {
            models
        },
        vendor,
        resource: resource.to_owned(),
    }))
}

/// A DNS-1123 label: at most 63 lowercase letters, digits and `-`, starting and ending with a
/// letter or digit.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The node labels a GPU model needs (each with a count above 0), as the inventory reads them:
/// `akash.network/capabilities.gpu.vendor.<v>.model.<m>`, and `….ram.<r>` / `….interface.<i>`.
pub(crate) fn gpu_label_keys(vendor: &str, model: &GpuModel) -> Vec<String> {
    let base = format!("{GPU_LABEL}{vendor}.model.{}", model.model);
    let mut keys = vec![base.clone()];
    if let Some(ram) = &model.ram {
        keys.push(format!("{base}.ram.{ram}"));
    }
    if let Some(interface) = &model.interface {
        keys.push(format!("{base}.interface.{interface}"));
    }
    keys
}
