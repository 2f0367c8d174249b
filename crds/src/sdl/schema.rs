//! Structural checks: every field has the right type, known names only, required fields present,
//! values within their ranges. These are the rules of the SDL input schema that the reference SDK
//! applies before anything else; cross-references are checked in [`super::rules`].

use serde_yaml::{Mapping, Value};

use super::error::{FieldPath, Report};

/// The IBC denomination of USDC on mainnet, which the reference SDK also accepts as a price denom.
pub const USDC_MAINNET: &str =
    "ibc/170C677610AC31DF0904FFE09CD3B5C657492170E7E52372E48756B71E56F2F1";

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

pub(super) fn get<'a>(m: &'a Mapping, name: &str) -> Option<&'a Value> {
    m.get(name)
}

pub(super) fn mapping<'a>(v: &'a Value, path: &FieldPath, r: &mut Report) -> Option<&'a Mapping> {
    match v {
        Value::Mapping(m) => Some(m),
        other => {
            r.push(path, format!("must be a mapping, found {}", kind(other)));
            None
        }
    }
}

pub(super) fn entries(m: &Mapping) -> impl Iterator<Item = (&str, &Value)> {
    m.iter().filter_map(|(k, v)| k.as_str().map(|k| (k, v)))
}

pub(super) fn known(m: &Mapping, path: &FieldPath, allowed: &[&str], r: &mut Report) {
    for (k, _) in entries(m) {
        if !allowed.contains(&k) {
            r.push(
                &path.key(k),
                format!(
                    "unknown field; the fields allowed here are {}",
                    allowed.join(", ")
                ),
            );
        }
    }
}

pub(super) fn required(m: &Mapping, path: &FieldPath, names: &[&str], r: &mut Report) {
    for name in names {
        if get(m, name).is_none() {
            r.push(&path.key(name), "is required but missing");
        }
    }
}

pub(super) fn string<'a>(v: &'a Value, path: &FieldPath, r: &mut Report) -> Option<&'a str> {
    match v {
        Value::String(s) => Some(s),
        other => {
            r.push(path, format!("must be a string, found {}", kind(other)));
            None
        }
    }
}

pub(super) fn non_empty_string(v: &Value, path: &FieldPath, min: usize, r: &mut Report) {
    if let Some(s) = string(v, path, r)
        && s.encode_utf16().count() < min
    {
        r.push(path, format!("must be at least {min} characters long"));
    }
}

pub(super) fn boolean(v: &Value, path: &FieldPath, r: &mut Report) {
    if !v.is_bool() {
        r.push(path, format!("must be true or false, found {}", kind(v)));
    }
}

pub(super) fn whole(v: &Value, path: &FieldPath, min: f64, max: f64, r: &mut Report) {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 => {
            if n < min || n > max {
                let range = if max == f64::MAX {
                    format!("at least {min}")
                } else {
                    format!("between {min} and {max}")
                };
                r.push(path, format!("must be {range}, found {n}"));
            }
        }
        Some(n) => r.push(path, format!("must be a whole number, found {n}")),
        None => r.push(path, format!("must be a whole number, found {}", kind(v))),
    }
}

pub(super) fn list<'a>(v: &'a Value, path: &FieldPath, r: &mut Report) -> Option<&'a [Value]> {
    match v {
        Value::Sequence(items) => Some(items),
        other => {
            r.push(path, format!("must be a list, found {}", kind(other)));
            None
        }
    }
}

pub(super) fn string_list(v: &Value, path: &FieldPath, r: &mut Report) {
    if let Some(items) = list(v, path, r) {
        for (i, item) in items.iter().enumerate() {
            string(item, &path.index(i), r);
        }
    }
}

pub(super) fn one_of(v: &Value, path: &FieldPath, allowed: &[&str], r: &mut Report) {
    if let Some(s) = string(v, path, r)
        && !allowed.contains(&s)
    {
        r.push(
            path,
            format!("\"{s}\" is not allowed; use one of {}", allowed.join(", ")),
        );
    }
}

pub(super) fn decimal(s: &str, allow_letters: bool) -> bool {
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if digits_end == 0 {
        return false;
    }
    let mut rest = &s[digits_end..];
    if let Some(frac) = rest.strip_prefix('.') {
        let end = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        if end == 0 {
            return false;
        }
        rest = &frac[end..];
    }
    if allow_letters {
        rest.chars().all(|c| c.is_ascii_alphabetic())
    } else {
        rest.is_empty()
    }
}

/// Checks the whole document's structure.
pub fn check_document(root: &Value, r: &mut Report) {
    let path = FieldPath::root();
    let Some(m) = mapping(root, &path, r) else {
        return;
    };
    known(
        m,
        &path,
        &[
            "version",
            "include",
            "services",
            "profiles",
            "deployment",
            "endpoints",
            "reclamation",
        ],
        r,
    );
    required(
        m,
        &path,
        &["version", "services", "profiles", "deployment"],
        r,
    );
    if let Some(v) = get(m, "version") {
        one_of(v, &path.key("version"), &["2.0", "2.1"], r);
    }
    if let Some(v) = get(m, "include") {
        string_list(v, &path.key("include"), r);
    }
    if let Some(v) = get(m, "services") {
        check_services(v, &path.key("services"), r);
    }
    if let Some(v) = get(m, "profiles") {
        check_profiles(v, &path.key("profiles"), r);
    }
    if let Some(v) = get(m, "deployment") {
        check_deployment(v, &path.key("deployment"), r);
    }
    if let Some(v) = get(m, "endpoints") {
        check_endpoints(v, &path.key("endpoints"), r);
    }
    if let Some(v) = get(m, "reclamation") {
        let path = path.key("reclamation");
        if let Some(m) = mapping(v, &path, r) {
            known(m, &path, &["min_window"], r);
            required(m, &path, &["min_window"], r);
            if let Some(w) = get(m, "min_window") {
                string(w, &path.key("min_window"), r);
            }
        }
    }
}

fn check_deployment(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    for (service, placements) in entries(m) {
        let path = path.key(service);
        let Some(placements) = mapping(placements, &path, r) else {
            continue;
        };
        for (placement, entry) in entries(placements) {
            let path = path.key(placement);
            let Some(entry) = mapping(entry, &path, r) else {
                continue;
            };
            known(entry, &path, &["profile", "count"], r);
            required(entry, &path, &["profile", "count"], r);
            if let Some(p) = get(entry, "profile") {
                string(p, &path.key("profile"), r);
            }
            if let Some(c) = get(entry, "count") {
                whole(c, &path.key("count"), 1.0, f64::from(u32::MAX), r);
            }
        }
    }
}

/// `^[a-z]+[-_0-9a-z]+$`: a lowercase letter first, at least two characters.
fn endpoint_name_ok(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_endpoints(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    for (name, decl) in entries(m) {
        let path = path.key(name);
        if !endpoint_name_ok(name) {
            r.push(
                &path,
                "endpoint names must start with a lowercase letter and use only lowercase letters, digits, '-' and '_' (at least two characters)",
            );
        }
        let Some(decl) = mapping(decl, &path, r) else {
            continue;
        };
        known(decl, &path, &["kind"], r);
        required(decl, &path, &["kind"], r);
        if let Some(k) = get(decl, "kind") {
            one_of(k, &path.key("kind"), &["ip"], r);
        }
    }
}

fn check_profiles(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["compute", "placement"], r);
    required(m, path, &["compute", "placement"], r);
    if let Some(compute) = get(m, "compute") {
        let path = path.key("compute");
        if let Some(compute) = mapping(compute, &path, r) {
            for (name, profile) in entries(compute) {
                super::schema_compute::check_compute_profile(profile, &path.key(name), r);
            }
        }
    }
    if let Some(placement) = get(m, "placement") {
        let path = path.key("placement");
        if let Some(placement) = mapping(placement, &path, r) {
            for (name, profile) in entries(placement) {
                check_placement(profile, &path.key(name), r);
            }
        }
    }
}

fn check_placement(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["attributes", "pricing", "signedBy"], r);
    required(m, path, &["pricing"], r);
    if let Some(a) = get(m, "attributes") {
        mapping(a, &path.key("attributes"), r);
    }
    if let Some(s) = get(m, "signedBy") {
        let path = path.key("signedBy");
        if let Some(s) = mapping(s, &path, r) {
            known(s, &path, &["allOf", "anyOf"], r);
            for name in ["allOf", "anyOf"] {
                if let Some(v) = get(s, name) {
                    string_list(v, &path.key(name), r);
                }
            }
        }
    }
    if let Some(p) = get(m, "pricing") {
        let path = path.key("pricing");
        if let Some(p) = mapping(p, &path, r) {
            for (profile, price) in entries(p) {
                check_price(price, &path.key(profile), r);
            }
        }
    }
}

fn check_price(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["denom", "amount"], r);
    required(m, path, &["denom", "amount"], r);
    if let Some(d) = get(m, "denom")
        && let Some(d) = string(d, &path.key("denom"), r)
        && !(d == "uakt" || d == "uact" || d == USDC_MAINNET)
    {
        r.push(
            &path.key("denom"),
            format!("\"{d}\" is not a known denomination; use uact or uakt"),
        );
    }
    if let Some(a) = get(m, "amount") {
        let path = path.key("amount");
        match a {
            Value::Number(n) if n.as_f64().is_some_and(|n| n >= 0.0) => {}
            Value::Number(_) => r.push(&path, "must not be negative"),
            Value::String(s) if decimal(s, false) => {}
            Value::String(s) => r.push(
                &path,
                format!("\"{s}\" is not a decimal number such as 100 or 0.25"),
            ),
            other => r.push(&path, format!("must be a number, found {}", kind(other))),
        }
    }
}

fn check_services(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    for (name, service) in entries(m) {
        super::schema_service::check_service(service, &path.key(name), r);
    }
}
