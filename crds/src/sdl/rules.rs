//! Cross-reference rules: deployments name declared services, placements and profiles; volumes and
//! mounts agree; GPUs are fully described; IP endpoints are declared, global and used.
//!
//! Also the cases where the reference SDK accepts a document at first and then fails while building
//! groups or the manifest (a service without `expose`, a deployment of an undeclared service): we
//! reject those up front with a message that says what to change.

use std::collections::{HashMap, HashSet};

use super::error::{FieldPath, Report};
use super::model::{BoolOrString, NumberOrString, SdlDocument, Service};

/// Applies every cross-reference rule.
pub fn check(doc: &SdlDocument, r: &mut Report) {
    let root = FieldPath::root();
    let mut endpoints_used = HashSet::new();
    let mut ip_ports: HashMap<String, String> = HashMap::new();
    for (name, service) in &doc.services {
        let path = root.key("services").key(name);
        if service.expose.is_none() {
            r.push(
                &path.key("expose"),
                "is missing; list the ports the service exposes, or write `expose: []` when it exposes none",
            );
        }
        check_deployment_of(doc, name, service, r);
        check_lease_ips(doc, name, service, &mut endpoints_used, &mut ip_ports, r);
    }
    for name in doc.deployment.keys() {
        if !doc.services.contains_key(name) {
            r.push(
                &root.key("deployment").key(name),
                format!("service \"{name}\" is not declared under services"),
            );
        }
    }
    if let Some(endpoints) = &doc.endpoints {
        for name in endpoints.keys() {
            if !endpoints_used.contains(name) {
                r.push(
                    &root.key("endpoints").key(name),
                    "is declared but no expose uses it (to: [{global: true, ip: ...}])",
                );
            }
        }
    }
}

fn check_deployment_of(doc: &SdlDocument, name: &str, service: &Service, r: &mut Report) {
    let root = FieldPath::root();
    let Some(placements) = doc.deployment.get(name) else {
        r.push(
            &root.key("deployment").key(name),
            format!(
                "is missing: service \"{name}\" is declared under services but not deployed; add deployment.{name}.<placement> with a profile and a count"
            ),
        );
        return;
    };
    for (placement_name, entry) in placements {
        let path = root.key("deployment").key(name).key(placement_name);
        let placement = doc.profiles.placement.get(placement_name);
        match placement {
            None => r.push(
                &path,
                format!("placement \"{placement_name}\" is not defined under profiles.placement"),
            ),
            Some(p) if !p.pricing.contains_key(&entry.profile) => r.push(
                &root
                    .key("profiles")
                    .key("placement")
                    .key(placement_name)
                    .key("pricing"),
                format!(
                    "has no price for compute profile \"{}\" (used by {path})",
                    entry.profile
                ),
            ),
            Some(_) => {}
        }
        let Some(compute) = doc.profiles.compute.get(&entry.profile) else {
            r.push(
                &path.key("profile"),
                format!(
                    "compute profile \"{}\" is not defined under profiles.compute",
                    entry.profile
                ),
            );
            continue;
        };
        let compute_path = root.key("profiles").key("compute").key(&entry.profile);
        let volumes = compute.resources.storage.volumes();
        let service_path = root.key("services").key(name);
        check_mounts(service, &entry.profile, volumes, &service_path, r);
        for (i, volume) in volumes.iter().enumerate() {
            let persistent = volume
                .attributes
                .as_ref()
                .and_then(|a| a.persistent.as_ref())
                .is_some_and(truthy);
            let key = volume.name.clone().unwrap_or_default();
            let mounted = service
                .params
                .as_ref()
                .and_then(|p| p.storage.as_ref())
                .and_then(|s| s.get(&key))
                .and_then(|m| m.as_ref())
                .and_then(|m| m.mount.as_deref())
                .is_some_and(|m| !m.is_empty());
            if persistent && !mounted {
                let shown = volume.name.as_deref().unwrap_or("default");
                let volume_path = if matches!(
                    compute.resources.storage,
                    super::model::StorageSpec::Many(_)
                ) {
                    compute_path.key("resources").key("storage").index(i)
                } else {
                    compute_path.key("resources").key("storage")
                };
                r.push(
                    &service_path.key("params").key("storage").key(shown),
                    format!(
                        "persistent volume \"{shown}\" ({volume_path}) needs a mount path here (mount: /some/dir){}",
                        if volume.name.is_none() {
                            "; give the volume a name first"
                        } else {
                            ""
                        }
                    ),
                );
            }
        }
        if let Some(gpu) = &compute.resources.gpu {
            let gpu_path = compute_path.key("resources").key("gpu");
            let has_units = !matches!(gpu.units, NumberOrString::Number(n) if n == 0.0);
            match &gpu.attributes {
                Some(_) if !has_units => r.push(
                    &gpu_path.key("attributes"),
                    "must be left out when units is 0",
                ),
                None if has_units => r.push(
                    &gpu_path.key("attributes"),
                    "is missing; a GPU request needs attributes.vendor (for example nvidia: [{model: a100}])",
                ),
                Some(a) if has_units && a.vendor.is_none() => r.push(
                    &gpu_path.key("attributes").key("vendor"),
                    "is missing; name the GPU vendor (for example nvidia)",
                ),
                _ => {}
            }
        }
    }
}

/// `stringToBoolean` of the reference SDK: any string but false/no/0/"" means true.
fn truthy(flag: &BoolOrString) -> bool {
    match flag {
        BoolOrString::Bool(b) => *b,
        BoolOrString::Text(s) => !matches!(s.to_lowercase().as_str(), "false" | "no" | "0" | ""),
    }
}

fn check_mounts(
    service: &Service,
    profile: &str,
    volumes: &[super::model::StorageVolume],
    service_path: &FieldPath,
    r: &mut Report,
) {
    let Some(storage) = service.params.as_ref().and_then(|p| p.storage.as_ref()) else {
        return;
    };
    let mut mounts: HashMap<Option<&str>, &str> = HashMap::new();
    for (volume_name, mount) in storage {
        let path = service_path.key("params").key("storage").key(volume_name);
        let Some(mount) = mount else {
            r.push(
                &path,
                "is empty; give the volume a mount path or remove this entry",
            );
            continue;
        };
        if !volumes
            .iter()
            .any(|v| v.name.as_deref() == Some(volume_name.as_str()))
        {
            r.push(
                &path,
                format!(
                    "refers to volume \"{volume_name}\", but compute profile \"{profile}\" declares no volume of that name"
                ),
            );
            continue;
        }
        let dir = mount.mount.as_deref();
        if let Some(other) = mounts.get(&dir) {
            match dir {
                None => r.push(
                    &path,
                    format!(
                        "has no mount path, like volume \"{other}\"; only one volume can be the unmounted root volume"
                    ),
                ),
                Some(dir) => r.push(
                    &path.key("mount"),
                    format!("\"{dir}\" is already the mount path of volume \"{other}\""),
                ),
            }
        }
        mounts.insert(dir, volume_name);
    }
}

fn check_lease_ips(
    doc: &SdlDocument,
    name: &str,
    service: &Service,
    used: &mut HashSet<String>,
    ports: &mut HashMap<String, String>,
    r: &mut Report,
) {
    let path = FieldPath::root().key("services").key(name).key("expose");
    for (i, expose) in service.expose.iter().flatten().enumerate() {
        let proto = expose
            .proto
            .as_deref()
            .map(str::to_uppercase)
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "TCP".into());
        for (j, to) in expose.to.iter().flatten().enumerate() {
            let Some(ip) = to.ip.as_deref().filter(|ip| !ip.is_empty()) else {
                continue;
            };
            let to_path = path.index(i).key("to").index(j);
            if to.global != Some(true) {
                r.push(
                    &to_path.key("global"),
                    "must be true when an IP endpoint is given",
                );
            }
            if !doc.endpoints.as_ref().is_some_and(|e| e.contains_key(ip)) {
                r.push(
                    &to_path.key("ip"),
                    format!("endpoint \"{ip}\" is not declared under endpoints (kind: ip)"),
                );
            }
            used.insert(ip.to_string());
            let external = expose.as_port.unwrap_or(expose.port);
            let key = format!("{ip}-{external}-{proto}");
            if let Some(other) = ports.get(&key) {
                r.push(
                    &to_path.key("ip"),
                    format!(
                        "IP endpoint \"{ip}\" port {external}/{proto} is already used by service \"{other}\""
                    ),
                );
            }
            ports.insert(key, name.to_string());
        }
    }
}
