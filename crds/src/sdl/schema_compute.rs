//! Structural checks of compute profiles: CPU, memory, storage volumes, GPUs.

use serde_yaml::Value;

use super::error::{FieldPath, Report};
use super::schema::{decimal, entries, get, kind, known, list, mapping, one_of, required, string};
use super::units;

/// Storage classes a provider can offer.
pub const STORAGE_CLASSES: &[&str] = &["default", "beta1", "beta2", "beta3", "ram"];

pub(super) fn check_compute_profile(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["resources"], r);
    required(m, path, &["resources"], r);
    let Some(res) = get(m, "resources") else {
        return;
    };
    let path = path.key("resources");
    let Some(res) = mapping(res, &path, r) else {
        return;
    };
    known(res, &path, &["cpu", "memory", "storage", "gpu"], r);
    required(res, &path, &["cpu", "memory", "storage"], r);
    if let Some(cpu) = get(res, "cpu") {
        check_cpu(cpu, &path.key("cpu"), r);
    }
    if let Some(memory) = get(res, "memory") {
        let path = path.key("memory");
        if let Some(memory) = mapping(memory, &path, r) {
            known(memory, &path, &["size"], r);
            required(memory, &path, &["size"], r);
            if let Some(size) = get(memory, "size") {
                check_size(size, &path.key("size"), r);
            }
        }
    }
    if let Some(storage) = get(res, "storage") {
        let path = path.key("storage");
        match storage {
            Value::Sequence(volumes) => {
                for (i, volume) in volumes.iter().enumerate() {
                    check_volume(volume, &path.index(i), r);
                }
            }
            other => check_volume(other, &path, r),
        }
    }
    if let Some(gpu) = get(res, "gpu") {
        check_gpu(gpu, &path.key("gpu"), r);
    }
}

fn check_cpu(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["units", "attributes"], r);
    required(m, path, &["units"], r);
    if let Some(a) = get(m, "attributes") {
        mapping(a, &path.key("attributes"), r);
    }
    let Some(units) = get(m, "units") else { return };
    let path = path.key("units");
    match units {
        Value::Number(n) => {
            if !n.as_f64().is_some_and(|n| n > 0.0) {
                r.push(&path, "must be more than 0");
            }
        }
        Value::String(s) => {
            if !decimal(s, true) {
                r.push(
                    &path,
                    format!(
                        "\"{s}\" is not a CPU amount; write cores (1, 0.5, \"2\") or millicores (\"100m\")"
                    ),
                );
            } else if is_zero_cpu(s) {
                r.push(&path, "must be more than 0");
            }
        }
        other => r.push(
            &path,
            format!("must be a number or a string, found {}", kind(other)),
        ),
    }
}

/// `^0+(\.0+)?m?$`: the zero amounts the schema rules out.
fn is_zero_cpu(s: &str) -> bool {
    let s = s.strip_suffix('m').unwrap_or(s);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    !int.is_empty()
        && int.chars().all(|c| c == '0')
        && (!s.contains('.') || (!frac.is_empty() && frac.chars().all(|c| c == '0')))
}

fn check_size(v: &Value, path: &FieldPath, r: &mut Report) {
    if let Some(s) = string(v, path, r)
        && units::size_bytes(s).is_none()
    {
        r.push(
            path,
            format!("\"{s}\" is not a size; write a number with a unit, such as 512Mi, 1Gi or 1G"),
        );
    }
}

fn check_volume(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["name", "size", "attributes"], r);
    required(m, path, &["size"], r);
    if let Some(name) = get(m, "name") {
        string(name, &path.key("name"), r);
    }
    if let Some(size) = get(m, "size") {
        check_size(size, &path.key("size"), r);
    }
    let Some(attrs) = get(m, "attributes") else {
        return;
    };
    let path = path.key("attributes");
    let Some(attrs) = mapping(attrs, &path, r) else {
        return;
    };
    known(attrs, &path, &["class", "persistent"], r);
    let class = get(attrs, "class").and_then(|c| string(c, &path.key("class"), r));
    if let Some(class) = class
        && !STORAGE_CLASSES.contains(&class)
    {
        r.push(
            &path.key("class"),
            format!(
                "\"{class}\" is not a storage class; use one of {}",
                STORAGE_CLASSES.join(", ")
            ),
        );
    }
    let persistent = match get(attrs, "persistent") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        Some(other) => {
            r.push(
                &path.key("persistent"),
                format!("must be true or false, found {}", kind(other)),
            );
            false
        }
    };
    if class == Some("ram") && persistent {
        r.push(
            &path.key("persistent"),
            "a volume of class \"ram\" lives in memory and cannot be persistent",
        );
    }
}

fn check_gpu(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["units", "attributes"], r);
    required(m, path, &["units"], r);
    if let Some(units) = get(m, "units")
        && !matches!(units, Value::Number(_) | Value::String(_))
    {
        r.push(
            &path.key("units"),
            format!("must be a number or a string, found {}", kind(units)),
        );
    }
    let Some(attrs) = get(m, "attributes") else {
        return;
    };
    let path = path.key("attributes");
    let Some(attrs) = mapping(attrs, &path, r) else {
        return;
    };
    known(attrs, &path, &["vendor"], r);
    let Some(vendor) = get(attrs, "vendor") else {
        return;
    };
    let path = path.key("vendor");
    let Some(vendor) = mapping(vendor, &path, r) else {
        return;
    };
    if vendor.is_empty() {
        r.push(&path, "must name at least one vendor, such as nvidia");
    }
    known(vendor, &path, &["nvidia"], r);
    for (name, models) in entries(vendor) {
        let path = path.key(name);
        if models.is_null() {
            continue;
        }
        let Some(models) = list(models, &path, r) else {
            continue;
        };
        for (i, model) in models.iter().enumerate() {
            let path = path.index(i);
            let Some(model) = mapping(model, &path, r) else {
                continue;
            };
            known(model, &path, &["model", "ram", "interface"], r);
            for field in ["model", "ram"] {
                if let Some(v) = get(model, field) {
                    string(v, &path.key(field), r);
                }
            }
            if let Some(v) = get(model, "interface") {
                one_of(v, &path.key("interface"), &["pcie", "sxm"], r);
            }
        }
    }
}
