//! Structural checks of services: image, command, env, exposes, params, credentials.

use serde_yaml::Value;

use super::error::{FieldPath, Report};
use super::manifest::{HTTP_NEXT_CASES, MAX_HTTP_BODY_SIZE, MAX_HTTP_TIMEOUT_MS};
use super::schema::{
    boolean, entries, get, known, list, mapping, non_empty_string, one_of, required, string,
    string_list, whole,
};

pub(super) fn check_service(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(
        m,
        path,
        &[
            "image",
            "command",
            "args",
            "env",
            "expose",
            "dependencies",
            "params",
            "credentials",
        ],
        r,
    );
    required(m, path, &["image"], r);
    if let Some(image) = get(m, "image") {
        non_empty_string(image, &path.key("image"), 1, r);
    }
    for field in ["command", "args", "env"] {
        if let Some(v) = get(m, field)
            && !v.is_null()
        {
            string_list(v, &path.key(field), r);
        }
    }
    if let Some(deps) = get(m, "dependencies") {
        let path = path.key("dependencies");
        if let Some(items) = list(deps, &path, r) {
            for (i, item) in items.iter().enumerate() {
                let path = path.index(i);
                if let Some(item) = mapping(item, &path, r) {
                    known(item, &path, &["service"], r);
                    if let Some(s) = get(item, "service") {
                        string(s, &path.key("service"), r);
                    }
                }
            }
        }
    }
    if let Some(credentials) = get(m, "credentials") {
        let path = path.key("credentials");
        if let Some(c) = mapping(credentials, &path, r) {
            known(c, &path, &["host", "email", "username", "password"], r);
            required(c, &path, &["host", "username", "password"], r);
            for (field, min) in [("host", 1), ("email", 5), ("username", 1), ("password", 6)] {
                if let Some(v) = get(c, field) {
                    non_empty_string(v, &path.key(field), min, r);
                }
            }
        }
    }
    if let Some(params) = get(m, "params") {
        check_params(params, &path.key("params"), r);
    }
    if let Some(expose) = get(m, "expose") {
        let path = path.key("expose");
        if let Some(items) = list(expose, &path, r) {
            for (i, item) in items.iter().enumerate() {
                check_expose(item, &path.index(i), r);
            }
        }
    }
}

fn check_params(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["storage", "permissions"], r);
    if let Some(storage) = get(m, "storage") {
        let path = path.key("storage");
        if let Some(storage) = mapping(storage, &path, r) {
            for (name, mount) in entries(storage) {
                let path = path.key(name);
                if mount.is_null() {
                    continue;
                }
                let Some(mount) = mapping(mount, &path, r) else {
                    continue;
                };
                known(mount, &path, &["mount", "readOnly"], r);
                if let Some(dir) = get(mount, "mount")
                    && let Some(dir) = string(dir, &path.key("mount"), r)
                    && !dir.starts_with('/')
                {
                    r.push(
                        &path.key("mount"),
                        format!("\"{dir}\" is not an absolute path; it must start with /"),
                    );
                }
                if let Some(ro) = get(mount, "readOnly") {
                    boolean(ro, &path.key("readOnly"), r);
                }
            }
        }
    }
    if let Some(permissions) = get(m, "permissions") {
        let path = path.key("permissions");
        if let Some(p) = mapping(permissions, &path, r) {
            known(p, &path, &["read"], r);
            if let Some(read) = get(p, "read") {
                let path = path.key("read");
                if let Some(items) = list(read, &path, r) {
                    for (i, item) in items.iter().enumerate() {
                        one_of(item, &path.index(i), &super::model::READ_PERMISSIONS, r);
                    }
                }
            }
        }
    }
}

fn check_expose(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(
        m,
        path,
        &["port", "as", "proto", "to", "accept", "http_options"],
        r,
    );
    required(m, path, &["port"], r);
    for field in ["port", "as"] {
        if let Some(port) = get(m, field) {
            whole(port, &path.key(field), 1.0, 65535.0, r);
        }
    }
    if let Some(proto) = get(m, "proto") {
        one_of(proto, &path.key("proto"), &["TCP", "UDP", "tcp", "udp"], r);
    }
    if let Some(accept) = get(m, "accept") {
        string_list(accept, &path.key("accept"), r);
    }
    if let Some(to) = get(m, "to") {
        let path = path.key("to");
        if let Some(items) = list(to, &path, r) {
            for (i, item) in items.iter().enumerate() {
                check_expose_to(item, &path.index(i), r);
            }
        }
    }
    if let Some(options) = get(m, "http_options") {
        check_http_options(options, &path.key("http_options"), r);
    }
}

fn check_expose_to(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(m, path, &["service", "global", "ip"], r);
    if let Some(s) = get(m, "service") {
        string(s, &path.key("service"), r);
    }
    if let Some(g) = get(m, "global") {
        boolean(g, &path.key("global"), r);
    }
    if let Some(ip) = get(m, "ip") {
        non_empty_string(ip, &path.key("ip"), 1, r);
    }
}

fn check_http_options(v: &Value, path: &FieldPath, r: &mut Report) {
    let Some(m) = mapping(v, path, r) else { return };
    known(
        m,
        path,
        &[
            "max_body_size",
            "read_timeout",
            "send_timeout",
            "next_tries",
            "next_timeout",
            "next_cases",
        ],
        r,
    );
    let limits = [
        ("max_body_size", MAX_HTTP_BODY_SIZE as f64),
        ("read_timeout", MAX_HTTP_TIMEOUT_MS as f64),
        ("send_timeout", MAX_HTTP_TIMEOUT_MS as f64),
        ("next_tries", f64::MAX),
        ("next_timeout", f64::MAX),
    ];
    for (field, max) in limits {
        if let Some(n) = get(m, field) {
            whole(n, &path.key(field), 0.0, max, r);
        }
    }
    if let Some(cases) = get(m, "next_cases") {
        let path = path.key("next_cases");
        if let Some(items) = list(cases, &path, r) {
            for (i, item) in items.iter().enumerate() {
                one_of(item, &path.index(i), HTTP_NEXT_CASES, r);
            }
            let has_off = items.iter().any(|i| i.as_str() == Some("off"));
            if has_off && items.len() != 1 {
                r.push(
                    &path,
                    "\"off\" turns retries off and must be the only entry",
                );
            }
        }
    }
}
