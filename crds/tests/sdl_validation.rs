//! The validation errors a user sees: each names the field by its path and says what is wrong.

use crds::sdl::{Sdl, SdlError, SdlIssue};

const BASE: &str = r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        to:
          - global: true
profiles:
  compute:
    web:
      resources:
        cpu:
          units: 0.5
        memory:
          size: 512Mi
        storage:
          - size: 1Gi
  placement:
    dc:
      pricing:
        web:
          denom: uact
          amount: 1000
deployment:
  web:
    dc:
      profile: web
      count: 1
"#;

fn issues(text: &str) -> Vec<(String, String)> {
    match Sdl::parse(text) {
        Ok(_) => panic!("expected the SDL to be rejected:\n{text}"),
        Err(SdlError::Invalid(list)) => list.into_iter().map(|i| (i.path, i.message)).collect(),
        Err(other) => panic!("expected validation issues, got {other}"),
    }
}

fn one(path: &str, message: &str) -> Vec<(String, String)> {
    vec![(path.to_string(), message.to_string())]
}

fn with(old: &str, new: &str) -> String {
    assert!(BASE.contains(old), "{old:?} is not in the base SDL");
    BASE.replacen(old, new, 1)
}

#[test]
fn the_base_document_is_valid() {
    let sdl = Sdl::parse(BASE).expect("valid");
    assert_eq!(sdl.groups().len(), 1);
    assert_eq!(sdl.manifest()[0].services[0].name, "web");
}

#[test]
fn bad_cpu_units() {
    assert_eq!(
        issues(&with("units: 0.5", "units: \"fast\"")),
        one(
            "profiles.compute.web.resources.cpu.units",
            "\"fast\" is not a CPU amount; write cores (1, 0.5, \"2\") or millicores (\"100m\")"
        )
    );
    assert_eq!(
        issues(&with("units: 0.5", "units: \"0m\"")),
        one(
            "profiles.compute.web.resources.cpu.units",
            "must be more than 0"
        )
    );
    assert_eq!(
        issues(&with("units: 0.5", "units: -1")),
        one(
            "profiles.compute.web.resources.cpu.units",
            "must be more than 0"
        )
    );
}

#[test]
fn bad_memory_size() {
    assert_eq!(
        issues(&with("size: 512Mi", "size: lots")),
        one(
            "profiles.compute.web.resources.memory.size",
            "\"lots\" is not a size; write a number with a unit, such as 512Mi, 1Gi or 1G"
        )
    );
}

#[test]
fn unknown_profile_referenced_from_deployment() {
    assert_eq!(
        issues(&with("profile: web", "profile: big")),
        vec![
            (
                "profiles.placement.dc.pricing".to_string(),
                "has no price for compute profile \"big\" (used by deployment.web.dc)".to_string()
            ),
            (
                "deployment.web.dc.profile".to_string(),
                "compute profile \"big\" is not defined under profiles.compute".to_string()
            ),
        ]
    );
}

#[test]
fn unknown_placement_referenced_from_deployment() {
    assert_eq!(
        issues(&with("    dc:\n      profile", "    east:\n      profile")),
        one(
            "deployment.web.east",
            "placement \"east\" is not defined under profiles.placement"
        )
    );
}

#[test]
fn service_in_deployment_but_not_in_services() {
    let text = format!("{BASE}  db:\n    dc:\n      profile: web\n      count: 1\n");
    assert_eq!(
        issues(&text),
        one(
            "deployment.db",
            "service \"db\" is not declared under services"
        )
    );
}

#[test]
fn service_not_deployed() {
    let text = with(
        "profiles:",
        "  worker:\n    image: busybox\n    expose: []\nprofiles:",
    );
    assert_eq!(
        issues(&text),
        one(
            "deployment.worker",
            "is missing: service \"worker\" is declared under services but not deployed; add deployment.worker.<placement> with a profile and a count"
        )
    );
}

#[test]
fn price_denom_must_be_uakt_or_uact() {
    assert_eq!(
        issues(&with("denom: uact", "denom: uusd")),
        one(
            "profiles.placement.dc.pricing.web.denom",
            "\"uusd\" is not a known denomination; use uact or uakt"
        )
    );
    assert!(Sdl::parse(&with("denom: uact", "denom: uakt")).is_ok());
}

#[test]
fn price_amount_must_be_a_decimal() {
    assert_eq!(
        issues(&with("amount: 1000", "amount: \"1,000\"")),
        one(
            "profiles.placement.dc.pricing.web.amount",
            "\"1,000\" is not a decimal number such as 100 or 0.25"
        )
    );
}

#[test]
fn port_out_of_range() {
    assert_eq!(
        issues(&with("- port: 80", "- port: 70000")),
        one(
            "services.web.expose[0].port",
            "must be between 1 and 65535, found 70000"
        )
    );
    assert_eq!(
        issues(&with("- port: 80", "- port: 80\n        as: 0")),
        one(
            "services.web.expose[0].as",
            "must be between 1 and 65535, found 0"
        )
    );
    assert_eq!(
        issues(&with("- port: 80", "- port: \"eighty\"")),
        one(
            "services.web.expose[0].port",
            "must be a whole number, found a string"
        )
    );
}

#[test]
fn bad_protocol() {
    assert_eq!(
        issues(&with("- port: 80", "- port: 80\n        proto: http")),
        one(
            "services.web.expose[0].proto",
            "\"http\" is not allowed; use one of TCP, UDP, tcp, udp"
        )
    );
}

#[test]
fn bad_storage_class() {
    assert_eq!(
        issues(&with(
            "- size: 1Gi",
            "- size: 1Gi\n            attributes:\n              class: fast"
        )),
        one(
            "profiles.compute.web.resources.storage[0].attributes.class",
            "\"fast\" is not a storage class; use one of default, beta1, beta2, beta3, ram"
        )
    );
}

#[test]
fn ram_storage_cannot_be_persistent() {
    assert_eq!(
        issues(&with(
            "- size: 1Gi",
            "- size: 1Gi\n            attributes:\n              class: ram\n              persistent: true"
        )),
        one(
            "profiles.compute.web.resources.storage[0].attributes.persistent",
            "a volume of class \"ram\" lives in memory and cannot be persistent"
        )
    );
}

#[test]
fn persistent_storage_without_a_mount() {
    let text = with(
        "- size: 1Gi",
        "- size: 1Gi\n          - name: data\n            size: 10Gi\n            attributes:\n              persistent: true\n              class: beta3",
    );
    assert_eq!(
        issues(&text),
        one(
            "services.web.params.storage.data",
            "persistent volume \"data\" (profiles.compute.web.resources.storage[1]) needs a mount path here (mount: /some/dir)"
        )
    );
    let mounted = text.replace(
        "    expose:",
        "    params:\n      storage:\n        data:\n          mount: /var/lib/data\n    expose:",
    );
    assert!(Sdl::parse(&mounted).is_ok());
}

#[test]
fn mount_of_an_undeclared_volume_and_relative_mount_paths() {
    let text = with(
        "    expose:",
        "    params:\n      storage:\n        cache:\n          mount: /cache\n    expose:",
    );
    assert_eq!(
        issues(&text),
        one(
            "services.web.params.storage.cache",
            "refers to volume \"cache\", but compute profile \"web\" declares no volume of that name"
        )
    );
    let relative = text.replace("mount: /cache", "mount: cache");
    assert_eq!(
        issues(&relative),
        one(
            "services.web.params.storage.cache.mount",
            "\"cache\" is not an absolute path; it must start with /"
        )
    );
}

#[test]
fn unknown_and_missing_fields() {
    assert_eq!(
        issues(&with(
            "    image: nginx:1.27\n",
            "    image: nginx:1.27\n    depends_on: [db]\n"
        )),
        one(
            "services.web.depends_on",
            "unknown field; the fields allowed here are image, command, args, env, expose, dependencies, params, credentials"
        )
    );
    assert_eq!(
        issues(&with("    image: nginx:1.27\n", "")),
        one("services.web.image", "is required but missing")
    );
    assert_eq!(
        issues(&with("version: \"2.0\"", "version: \"3.0\"")),
        one("version", "\"3.0\" is not allowed; use one of 2.0, 2.1")
    );
    assert_eq!(
        issues(&with("version: \"2.0\"", "version: 2.0")),
        one("version", "must be a string, found a number")
    );
}

#[test]
fn a_service_needs_an_expose_list() {
    let text = with(
        "    expose:\n      - port: 80\n        to:\n          - global: true\n",
        "",
    );
    assert_eq!(
        issues(&text),
        one(
            "services.web.expose",
            "is missing; list the ports the service exposes, or write `expose: []` when it exposes none"
        )
    );
    assert!(
        Sdl::parse(&with(
            "    expose:\n      - port: 80\n        to:\n          - global: true\n",
            "    expose: []\n"
        ))
        .is_ok()
    );
}

#[test]
fn ip_endpoints_must_be_declared_global_and_used() {
    let text = with("          - global: true", "          - ip: myip");
    assert_eq!(
        issues(&text),
        vec![
            (
                "services.web.expose[0].to[0].global".to_string(),
                "must be true when an IP endpoint is given".to_string()
            ),
            (
                "services.web.expose[0].to[0].ip".to_string(),
                "endpoint \"myip\" is not declared under endpoints (kind: ip)".to_string()
            ),
        ]
    );
    let unused = format!("{BASE}endpoints:\n  myip:\n    kind: ip\n");
    assert_eq!(
        issues(&unused),
        one(
            "endpoints.myip",
            "is declared but no expose uses it (to: [{global: true, ip: ...}])"
        )
    );
    let good = format!(
        "{}endpoints:\n  myip:\n    kind: ip\n",
        with(
            "          - global: true",
            "          - global: true\n            ip: myip"
        )
    );
    let sdl = Sdl::parse(&good).expect("valid with an IP endpoint");
    let kinds: Vec<i32> = sdl.groups()[0].resources[0]
        .resource
        .endpoints
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec![0, 2]);
}

#[test]
fn gpu_units_need_a_vendor() {
    let text = with(
        "        storage:\n          - size: 1Gi",
        "        storage:\n          - size: 1Gi\n        gpu:\n          units: 1",
    );
    assert_eq!(
        issues(&text),
        one(
            "profiles.compute.web.resources.gpu.attributes",
            "is missing; a GPU request needs attributes.vendor (for example nvidia: [{model: a100}])"
        )
    );
    let interface = text.replace(
        "units: 1",
        "units: 1\n          attributes:\n            vendor:\n              nvidia:\n                - model: h100\n                  interface: nvlink",
    );
    assert_eq!(
        issues(&interface),
        one(
            "profiles.compute.web.resources.gpu.attributes.vendor.nvidia[0].interface",
            "\"nvlink\" is not allowed; use one of pcie, sxm"
        )
    );
}

#[test]
fn two_services_on_one_profile_that_the_sdk_cannot_group() {
    // The SDK keeps a second unit when the shared profile holds the group's first unit, and fails
    // (TypeError) when it holds a later one; here `b` takes unit 1, `a2` and `c` then share `shared`.
    let text = r#"
version: "2.0"
services:
  a: { image: x, expose: [] }
  b: { image: x, expose: [] }
  c: { image: x, expose: [] }
profiles:
  compute:
    own: { resources: { cpu: { units: 1 }, memory: { size: 1Gi }, storage: { size: 1Gi } } }
    shared: { resources: { cpu: { units: 1 }, memory: { size: 1Gi }, storage: { size: 1Gi } } }
  placement:
    dc: { pricing: { own: { denom: uact, amount: 1 }, shared: { denom: uact, amount: 1 } } }
deployment:
  a: { dc: { profile: own, count: 1 } }
  b: { dc: { profile: shared, count: 1 } }
  c: { dc: { profile: shared, count: 1 } }
"#;
    assert_eq!(
        issues(text),
        one(
            "deployment.c.dc.profile",
            "services \"b\" and \"c\" both use compute profile \"shared\" in placement \"dc\"; the reference SDK cannot build this group, give each service its own compute profile"
        )
    );
}

#[test]
fn yaml_errors_and_non_mapping_documents() {
    assert!(matches!(
        Sdl::parse("services: [unclosed"),
        Err(SdlError::Yaml(_))
    ));
    assert_eq!(
        issues("just text"),
        one("(document)", "must be a mapping, found a string")
    );
}

#[test]
fn the_error_lists_every_problem_with_its_path() {
    let text = with("denom: uact", "denom: uusd").replacen("- port: 80", "- port: 0", 1);
    let err = Sdl::parse(&text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "2 problems in the SDL:\n  services.web.expose[0].port: must be between 1 and 65535, found 0\n  profiles.placement.dc.pricing.web.denom: \"uusd\" is not a known denomination; use uact or uakt"
    );
    let first: &SdlIssue = &err.issues()[0];
    assert_eq!(first.path, "services.web.expose[0].port");
}

#[test]
fn permissions_name_what_the_go_sdl_allows_and_nothing_else() {
    let params = |body: &str| {
        with(
            "    image: nginx:1.27\n",
            &format!("    image: nginx:1.27\n    params:\n      permissions:\n{body}"),
        )
    };
    // The Go SDL allows deployment, logs and events; each reaches the manifest as written.
    let sdl = Sdl::parse(&params("        read: [logs, events, deployment]\n")).expect("valid");
    let read = sdl.manifest()[0].services[0]
        .params
        .as_ref()
        .and_then(|p| p.permissions.as_ref())
        .map(|p| p.read().to_vec());
    assert_eq!(
        read,
        Some(vec!["logs".into(), "events".into(), "deployment".into()])
    );
    // A resource the provider has no rule for is refused at its index.
    assert_eq!(
        issues(&params("        read: [logs, secrets]\n")),
        one(
            "services.web.params.permissions.read[1]",
            "\"secrets\" is not allowed; use one of deployment, logs, events"
        )
    );
    // So is a permission type other than read.
    assert_eq!(
        issues(&params("        write: [logs]\n")),
        one(
            "services.web.params.permissions.write",
            "unknown field; the fields allowed here are read"
        )
    );
}
