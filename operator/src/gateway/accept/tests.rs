use chain_client::akash::deployment::v1 as dv1;
use chain_client::akash::deployment::v1beta4 as dv4;
use crds::resources::{LeaseRef, LeaseSpec, Price};
use crds::sdl::Sdl;

use super::*;

const TENANT: &str = "akash1tenant";
const STRANGER: &str = "akash1stranger";
const PROVIDER: &str = "akash1provider";
const MAX: usize = 1 << 20;

fn sdl(count: u32) -> Sdl {
    Sdl::parse(&format!(
        r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        as: 80
        to: [{{global: true}}]
profiles:
  compute:
    web:
      resources:
        cpu: {{units: 0.5}}
        memory: {{size: 512Mi}}
        storage: {{size: 1Gi}}
  placement:
    dc:
      pricing:
        web: {{denom: uact, amount: 1000}}
deployment:
  web:
    dc:
      profile: web
      count: {count}
"#
    ))
    .expect("test SDL")
}

/// The deployment on chain for `sdl`'s groups, with `hash` as its version.
fn deployment(owner: &str, sdl: &Sdl, hash: [u8; 32]) -> QueryDeploymentResponse {
    let groups = crate::chain_groups::to_chain(sdl.groups()).expect("groups");
    QueryDeploymentResponse {
        deployment: Some(dv1::Deployment {
            id: Some(dv1::DeploymentId {
                owner: owner.into(),
                dseq: 7,
            }),
            state: dv1::deployment::State::Active as i32,
            hash: hash.to_vec(),
            created_at: 1,
            reclamation: None,
        }),
        groups: groups
            .into_iter()
            .enumerate()
            .map(|(i, spec)| dv4::Group {
                id: Some(dv1::GroupId {
                    owner: owner.into(),
                    dseq: 7,
                    gseq: i as u32 + 1,
                }),
                state: dv4::group::State::Open as i32,
                group_spec: Some(spec),
                created_at: 1,
            })
            .collect(),
        escrow_account: None,
    }
}

fn lease(owner: &str, gseq: u32) -> Lease {
    let id = LeaseRef {
        owner: owner.into(),
        dseq: 7,
        gseq,
        oseq: 1,
        provider: PROVIDER.into(),
    };
    Lease::new(
        &id.order().object_name(),
        LeaseSpec {
            lease_id: id,
            price: Price {
                denom: "uact".into(),
                amount: "1000".into(),
            },
            created_at: Some(3),
            manifest: None,
            deployment_manifest: None,
        },
    )
}

fn good() -> (Sdl, QueryDeploymentResponse, Vec<Lease>) {
    let sdl = sdl(2);
    let dep = deployment(TENANT, &sdl, sdl.manifest_version());
    (sdl, dep, vec![lease(TENANT, 1)])
}

#[test]
fn the_owners_manifest_with_the_hash_on_chain_is_accepted_for_each_lease() {
    let (sdl, dep, leases) = good();
    let body = sdl.manifest_json();
    let accepted = accept(TENANT, 7, body.as_bytes(), MAX, Some(&dep), &leases).expect("accepted");
    assert_eq!(accepted.len(), 1);
    let (name, manifest) = &accepted[0];
    assert_eq!(name, &format!("{TENANT}-7-1-1"));
    assert_eq!(manifest.version, sdl.manifest_version_hex());
    assert_eq!(&manifest.group, &sdl.manifest()[0]);
}

#[test]
fn the_version_is_the_hash_of_the_json_as_received_whatever_its_key_order_and_spacing() {
    let (sdl, dep, leases) = good();
    // Pretty-printed with keys in serde_json's order: the same canonical JSON.
    let value: serde_json::Value = serde_json::from_str(&sdl.manifest_json()).unwrap();
    let body = serde_json::to_vec_pretty(&value).unwrap();
    accept(TENANT, 7, &body, MAX, Some(&dep), &leases).expect("accepted");
}

#[test]
fn an_oversized_body_is_413() {
    let (sdl, dep, leases) = good();
    let body = sdl.manifest_json();
    let err = accept(TENANT, 7, body.as_bytes(), 10, Some(&dep), &leases).unwrap_err();
    assert_eq!(err, Rejection::TooLarge { max: 10 });
    assert_eq!(err.http_status(), 413);
    assert_eq!(err.grpc_code(), tonic::Code::ResourceExhausted);
}

#[test]
fn a_manifest_too_large_for_a_lease_resource_is_413_before_anything_is_written() {
    let (sdl, dep, leases) = good();
    let body = sdl.manifest_json();
    let accepted = accept(TENANT, 7, body.as_bytes(), MAX, Some(&dep), &leases).expect("accepted");
    assert_eq!(check_storable(&accepted, body.len()), Ok(()));
    // The same groups beside a whole manifest that leaves no room for them.
    let err = check_storable(&accepted, LEASE_MANIFEST_BUDGET).unwrap_err();
    match &err {
        Rejection::TooLargeToStore { size, max } => {
            assert!(size > max, "{err}");
            assert_eq!(*max, LEASE_MANIFEST_BUDGET);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("Lease resource"), "{err}");
    assert_eq!(err.http_status(), 413);
    assert_eq!(err.grpc_code(), tonic::Code::ResourceExhausted);
}

#[test]
fn a_body_that_is_not_json_is_400() {
    let (_, dep, leases) = good();
    let err = accept(TENANT, 7, b"[{", MAX, Some(&dep), &leases).unwrap_err();
    assert_eq!(err.http_status(), 400);
    assert!(
        err.to_string()
            .starts_with("the manifest is not valid JSON"),
        "{err}"
    );
}

#[test]
fn json_that_is_not_manifest_groups_names_the_path() {
    let (sdl, dep, leases) = good();
    let mut value: serde_json::Value = serde_json::from_str(&sdl.manifest_json()).unwrap();
    value[0]["services"][0]["count"] = serde_json::json!("two");
    let body = serde_json::to_vec(&value).unwrap();
    let err = accept(TENANT, 7, &body, MAX, Some(&dep), &leases).unwrap_err();
    assert_eq!(err.http_status(), 400);
    assert!(err.to_string().contains("[0].services[0].count"), "{err}");
    assert_eq!(err.grpc_code(), tonic::Code::InvalidArgument);
}

#[test]
fn a_deployment_the_chain_does_not_have_is_404() {
    let (sdl, _, leases) = good();
    let body = sdl.manifest_json();
    let err = accept(TENANT, 7, body.as_bytes(), MAX, None, &leases).unwrap_err();
    assert_eq!(err.http_status(), 404);
    assert!(err.to_string().contains("does not exist on chain"), "{err}");
}

#[test]
fn a_closed_deployment_is_404() {
    let (sdl, mut dep, leases) = good();
    dep.deployment.as_mut().unwrap().state = dv1::deployment::State::Closed as i32;
    let body = sdl.manifest_json();
    let err = accept(TENANT, 7, body.as_bytes(), MAX, Some(&dep), &leases).unwrap_err();
    assert_eq!(err.http_status(), 404);
    assert!(err.to_string().contains("closed"), "{err}");
}

#[test]
fn a_stranger_is_403() {
    let (sdl, dep, leases) = good();
    let body = sdl.manifest_json();
    let err = accept(STRANGER, 7, body.as_bytes(), MAX, Some(&dep), &leases).unwrap_err();
    assert_eq!(err.http_status(), 403);
    assert_eq!(err.grpc_code(), tonic::Code::PermissionDenied);
    assert!(err.to_string().contains("only its owner"), "{err}");
}

#[test]
fn a_manifest_whose_version_is_not_the_hash_on_chain_is_400() {
    let (_, dep, leases) = good();
    let other = sdl(1);
    let err = accept(
        TENANT,
        7,
        other.manifest_json().as_bytes(),
        MAX,
        Some(&dep),
        &leases,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "manifest version {} does not match the deployment's hash {}",
            other.manifest_version_hex(),
            sdl(2).manifest_version_hex()
        )
    );
    assert_eq!(err.http_status(), 400);
}

#[test]
fn no_lease_held_is_404() {
    let (sdl, dep, _) = good();
    let err = accept(
        TENANT,
        7,
        sdl.manifest_json().as_bytes(),
        MAX,
        Some(&dep),
        &[],
    )
    .unwrap_err();
    assert_eq!(err.http_status(), 404);
    assert!(err.to_string().contains("holds no lease"), "{err}");
}

#[test]
fn a_manifest_without_the_leased_group_is_422() {
    let (sdl, _, leases) = good();
    let mut groups = sdl.manifest().to_vec();
    groups[0].name = "elsewhere".into();
    let body = crds::sdl::version::manifest_json(&groups);
    let dep = deployment(TENANT, &sdl, Sha256::digest(body.as_bytes()).into());
    let err = accept(TENANT, 7, body.as_bytes(), MAX, Some(&dep), &leases).unwrap_err();
    assert_eq!(err.http_status(), 422);
    assert_eq!(err.grpc_code(), tonic::Code::FailedPrecondition);
    assert!(err.to_string().contains("no group \"dc\""), "{err}");
}

/// The hash on chain covers the manifest, but the lease was won for a smaller group: the
/// tenant's manifest may not ask for more than the lease.
#[test]
fn a_group_larger_than_the_lease_is_422() {
    let small = sdl(2);
    let big = sdl(3);
    let dep = deployment(TENANT, &small, big.manifest_version());
    let err = accept(
        TENANT,
        7,
        big.manifest_json().as_bytes(),
        MAX,
        Some(&dep),
        &[lease(TENANT, 1)],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "group dc: services[web].count: service web wants 3 replicas, the lease has 2"
    );
    assert_eq!(err.http_status(), 422);
}

#[test]
fn a_service_with_more_memory_than_the_unit_is_422() {
    let (sdl, _, leases) = good();
    let mut groups = sdl.manifest().to_vec();
    groups[0].services[0].resources.memory.size.val = "1073741824".into();
    let body = crds::sdl::version::manifest_json(&groups);
    let dep = deployment(TENANT, &sdl, Sha256::digest(body.as_bytes()).into());
    let err = accept(TENANT, 7, body.as_bytes(), MAX, Some(&dep), &leases).unwrap_err();
    assert_eq!(err.http_status(), 422);
    assert!(
        err.to_string()
            .starts_with("group dc: services[web].resources.memory.size: 1073741824 bytes of memory per replica, resource unit 1 of the lease has 536870912"),
        "{err}"
    );
}

#[test]
fn a_service_on_a_unit_the_group_lacks_is_422() {
    let (sdl, _, leases) = good();
    let mut groups = sdl.manifest().to_vec();
    groups[0].services[0].resources.id = 9;
    let body = crds::sdl::version::manifest_json(&groups);
    let dep = deployment(TENANT, &sdl, Sha256::digest(body.as_bytes()).into());
    let err = accept(TENANT, 7, body.as_bytes(), MAX, Some(&dep), &leases).unwrap_err();
    assert!(err.to_string().contains("resource unit 9"), "{err}");
}

#[test]
fn leases_of_other_owners_are_not_the_senders() {
    let (sdl, dep, _) = good();
    let err = accept(
        TENANT,
        7,
        sdl.manifest_json().as_bytes(),
        MAX,
        Some(&dep),
        &[lease(STRANGER, 1)],
    )
    .unwrap_err();
    assert_eq!(err.http_status(), 404);
}

/// A lease of one T4 GPU, a 1 GiB ephemeral volume, a 10 GiB persistent `beta2` volume and one
/// shared HTTP endpoint.
const T4: &str = r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        to: [{global: true}]
    params:
      storage:
        data: {mount: /data}
profiles:
  compute:
    web:
      resources:
        cpu: {units: 1}
        memory: {size: 1Gi}
        gpu:
          units: 1
          attributes:
            vendor:
              nvidia:
                - model: t4
        storage:
          - size: 1Gi
          - name: data
            size: 10Gi
            attributes: {persistent: true, class: beta2}
  placement:
    dc:
      pricing:
        web: {denom: uact, amount: 1000}
deployment:
  web:
    dc: {profile: web, count: 1}
"#;

/// The T4 lease's own manifest changed by `change`, its version on chain (the tenant chose
/// both): refused with 422 and nothing accepted; the message.
fn taking_more(change: impl FnOnce(&mut crds::sdl::manifest::ManifestService)) -> String {
    let sdl = Sdl::parse(T4).expect("T4 SDL");
    let mut groups = sdl.manifest().to_vec();
    change(&mut groups[0].services[0]);
    let body = crds::sdl::version::manifest_json(&groups);
    let dep = deployment(TENANT, &sdl, Sha256::digest(body.as_bytes()).into());
    let err = accept(
        TENANT,
        7,
        body.as_bytes(),
        MAX,
        Some(&dep),
        &[lease(TENANT, 1)],
    )
    .expect_err("a manifest taking more than its lease is refused");
    assert_eq!(err.http_status(), 422, "{err}");
    assert_eq!(err.grpc_code(), tonic::Code::FailedPrecondition);
    err.to_string()
}

fn attribute(key: &str, value: &str) -> crds::sdl::groups::Attribute {
    crds::sdl::groups::Attribute {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn the_t4_leases_own_manifest_with_every_attribute_is_accepted() {
    let sdl = Sdl::parse(T4).expect("T4 SDL");
    let dep = deployment(TENANT, &sdl, sdl.manifest_version());
    let accepted = accept(
        TENANT,
        7,
        sdl.manifest_json().as_bytes(),
        MAX,
        Some(&dep),
        &[lease(TENANT, 1)],
    )
    .expect("accepted");
    let leased = &accepted[0].1.leased;
    assert_eq!(leased.len(), 1);
    assert_eq!(leased[0].count, 1);
    assert_eq!(leased[0].resources, sdl.groups()[0].resources[0].resource);
}

#[test]
fn another_gpu_model_than_the_lease_holds_is_422() {
    let e = taking_more(|s| {
        for a in s.resources.gpu.attributes.iter_mut().flatten() {
            a.key = a.key.replace("t4", "a100");
        }
    });
    assert!(
        e.contains("services[web].resources.gpu.attributes") && e.contains("a100"),
        "{e}"
    );
    let e = taking_more(|s| {
        s.resources.gpu.attributes = Some(vec![attribute("vendor/nvidia/model/*", "true")]);
    });
    assert!(e.contains("resources.gpu.attributes"), "{e}");
    let e = taking_more(|s| {
        for a in s.resources.gpu.attributes.iter_mut().flatten() {
            a.key = a.key.replace("nvidia", "amd");
        }
    });
    assert!(e.contains("resources.gpu.attributes"), "{e}");
}

#[test]
fn leased_disk_turned_into_ram_or_persistent_storage_is_422() {
    let e = taking_more(|s| {
        s.resources.storage[0].attributes = Some(vec![
            attribute("class", "ram"),
            attribute("persistent", "false"),
        ]);
    });
    assert!(
        e.contains("services[web].resources.storage[0].attributes"),
        "{e}"
    );
    let e = taking_more(|s| {
        s.resources.storage[0].attributes = Some(vec![
            attribute("class", "beta2"),
            attribute("persistent", "true"),
        ]);
    });
    assert!(e.contains("resources.storage[0].attributes"), "{e}");
}

#[test]
fn another_storage_class_or_a_renamed_volume_is_422() {
    let e = taking_more(|s| {
        for a in s.resources.storage[1].attributes.iter_mut().flatten() {
            a.value = a.value.replace("beta2", "beta3");
        }
    });
    assert!(
        e.contains("resources.storage[1].attributes") && e.contains("beta3"),
        "{e}"
    );
    let e = taking_more(|s| {
        for a in s.resources.storage[1].attributes.iter_mut().flatten() {
            if a.key == "persistent" {
                a.value = "false".into();
            }
        }
    });
    assert!(e.contains("resources.storage[1].attributes"), "{e}");
    let e = taking_more(|s| s.resources.storage[1].name = "other".into());
    assert!(e.contains("resources.storage[1].name"), "{e}");
}

#[test]
fn cpu_or_memory_attributes_the_lease_lacks_are_422() {
    let e = taking_more(|s| s.resources.cpu.attributes = Some(vec![attribute("arch", "arm64")]));
    assert!(e.contains("services[web].resources.cpu.attributes"), "{e}");
    let e = taking_more(|s| {
        s.resources.memory.attributes = Some(vec![attribute("class", "hbm")]);
    });
    assert!(e.contains("resources.memory.attributes"), "{e}");
}

#[test]
fn global_exposes_beyond_the_leased_endpoints_are_422() {
    // One shared HTTP endpoint leased; a hundred node ports asked.
    let e = taking_more(|s| {
        let template = s.expose[0].clone();
        for port in 2000..2100 {
            let mut extra = template.clone();
            extra.port = port;
            extra.external_port = port;
            s.expose.push(extra);
        }
    });
    assert!(
        e.contains("services[web].expose")
            && e.contains(
                "100 other global exposes (node ports), resource unit 1 of the lease has 0"
            ),
        "{e}"
    );
    // A second HTTP expose needs a second shared HTTP endpoint.
    let e = taking_more(|s| {
        let mut extra = s.expose[0].clone();
        extra.port = 8080;
        extra.external_port = 80;
        s.expose.push(extra);
    });
    assert!(e.contains("2 global exposes on port 80"), "{e}");
    // Endpoints the lease does not list.
    let e = taking_more(|s| {
        s.resources.endpoints[0].kind = Some(crds::sdl::groups::Endpoint::RANDOM_PORT);
    });
    assert!(e.contains("resources.endpoints"), "{e}");
}

#[test]
fn an_expose_to_a_leased_ip_the_lease_lacks_is_422() {
    let e = taking_more(|s| {
        s.expose[0].ip = "myip".into();
        s.expose[0].endpoint_sequence_number = 1;
    });
    assert!(e.contains("services[web].expose[0].ip"), "{e}");
}

#[test]
fn every_real_sdl_file_is_accepted_against_its_own_groups() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/sdl");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("testdata/sdl") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    let mut checked = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).expect("SDL file");
        // Files the SDL tools refuse are not deployments; sdl_reference checks those verdicts.
        let Ok(sdl) = Sdl::parse(&text) else {
            continue;
        };
        let dep = deployment(TENANT, &sdl, sdl.manifest_version());
        let leases: Vec<Lease> = (1..=sdl.groups().len() as u32)
            .map(|gseq| lease(TENANT, gseq))
            .collect();
        let accepted = accept(
            TENANT,
            7,
            sdl.manifest_json().as_bytes(),
            MAX,
            Some(&dep),
            &leases,
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(accepted.len(), leases.len(), "{}", path.display());
        checked += 1;
    }
    assert!(checked > 150, "only {checked} real SDL files were checked");
}

/// Found by the fuzz harness (`manifest_grpc`): a manifest larger than a Lease resource can hold
/// was parsed, converted to a tree, deserialised and hashed (a 4.9 MB body peaked at about
/// 200 MB) before `check_storable` refused it. It is now refused by its size first.
#[test]
fn a_manifest_too_large_to_store_is_refused_before_it_is_parsed() {
    let (sdl, _, leases) = good();
    let mut groups = serde_json::to_value(sdl.manifest()).unwrap();
    groups[0]["services"][0]["env"] =
        serde_json::json!([format!("BIG={}", "a".repeat(LEASE_MANIFEST_BUDGET))]);
    let body = serde_json::to_vec(&groups).unwrap();
    let canonical = crds::sdl::version::canonical_json(&groups).unwrap();
    let hash: [u8; 32] = Sha256::digest(canonical.as_bytes()).into();
    let dep = deployment(TENANT, &sdl, hash);
    let Err(refused) = accept(TENANT, 7, &body, 4 << 20, Some(&dep), &leases) else {
        panic!("a manifest of {} bytes was accepted", body.len());
    };
    assert_eq!(
        refused,
        Rejection::TooLargeToStore {
            size: body.len(),
            max: LEASE_MANIFEST_BUDGET
        }
    );
    assert_eq!(refused.http_status(), 413);
}
