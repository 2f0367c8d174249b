//! Leased IPs (`endpoints: {NAME: {kind: ip}}` and `ip: NAME` on a global expose): per port a
//! `LoadBalancer` Service `<svc>-ip-<port>-<proto>` that MetalLB gives an address of the
//! provider's pool (`--ip-pool`), and per service the NetworkPolicy `akash-<svc>-ip` that opens
//! those ports to everyone, as the Go provider builds them.
//!
//! The ports of one endpoint name share one address: their Services carry the same MetalLB
//! sharing key, made of the owner and the endpoint name (not the lease), so that the same owner's
//! next deployment naming that endpoint can take the address over (`/endpoint/migrate`).

use crds::sdl::ManifestGroup;
use crds::sdl::manifest::{ManifestExpose, ManifestService};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::network::{external_port, open_to_everyone};
use super::pod::selector;
use super::{BuildError, Ctx, WorkloadConfig};

/// MetalLB: Services with the same value may share one address.
pub(crate) const SHARED_IP_ANNOTATION: &str = "metallb.io/allow-shared-ip";
/// MetalLB: the pool a Service's address comes from.
pub(crate) const POOL_ANNOTATION: &str = "metallb.io/address-pool";
/// MetalLB: the address a Service asks for (an endpoint moved from another deployment keeps
/// its address).
pub(crate) const ADDRESS_ANNOTATION: &str = "metallb.io/loadBalancerIPs";
/// The endpoint name a leased-IP Service serves (for the lease's status and migrations).
pub(crate) const ENDPOINT_ANNOTATION: &str = "akash.network/ip-endpoint";
/// The label the Go provider puts on its load-balancer Services, with [`SERVICE_TARGET`].
pub(crate) const SERVICE_TARGET_LABEL: &str = "akash.network/service-target";
pub(crate) const SERVICE_TARGET: &str = "metal-lb";

/// An expose on a leased IP: global, with an endpoint name.
pub(crate) fn is_leased_ip(expose: &ManifestExpose) -> bool {
    expose.global && !expose.ip.is_empty()
}

/// The MetalLB sharing key of an owner's endpoint: `<owner>-ip-<name>`, the name replaced by a
/// digest (the first 15 bytes of its SHA-256 in lowercase base32hex) when it is not made of
/// lowercase letters, digits and `-` (the Go provider's `MakeIPSharingKey`).
pub(crate) fn sharing_key(owner: &str, endpoint: &str) -> String {
    let plain = !endpoint.is_empty()
        && endpoint
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if plain {
        return format!("{owner}-ip-{endpoint}");
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(endpoint.as_bytes());
    format!("{owner}-ip-{}", base32hex_lower(&digest[..15]))
}

/// RFC 4648 base32 with the extended hex alphabet, lowercase, no padding.
fn base32hex_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// `<svc>-ip-<external port>-<proto>`, lowercase.
pub(crate) fn service_name(service: &str, external_port: u16, proto: &str) -> String {
    format!("{service}-ip-{external_port}-{}", proto.to_lowercase())
}

/// Refuses leased-IP exposes a provider without a pool cannot serve, and names too long for a
/// Service.
pub(crate) fn check(group: &ManifestGroup, config: &WorkloadConfig) -> Result<(), BuildError> {
    for svc in &group.services {
        for (i, expose) in svc.expose.iter().enumerate() {
            if expose.ip.is_empty() {
                continue;
            }
            let field = format!("services[{}].expose[{i}].ip", svc.name);
            if !expose.global {
                return Err(BuildError::new(
                    field,
                    format!(
                        "endpoint {:?} is on an expose that is not global",
                        expose.ip
                    ),
                ));
            }
            if config.ip_pool.is_none() {
                return Err(BuildError::new(
                    field,
                    format!(
                        "endpoint {:?}: this provider leases no IPs (no --ip-pool)",
                        expose.ip
                    ),
                ));
            }
            let name = service_name(&svc.name, external_port(expose), &expose.proto);
            if name.len() > 63 {
                return Err(BuildError::new(
                    field,
                    format!("the Service {name:?} would be longer than 63 characters"),
                ));
            }
        }
    }
    Ok(())
}

/// The `LoadBalancer` Services of a service's leased-IP ports. They allocate no node ports:
/// traffic reaches them at the leased address only.
pub(crate) fn services(ctx: &Ctx, svc: &ManifestService) -> Vec<Service> {
    let Some(pool) = ctx.config.ip_pool.as_deref() else {
        return Vec::new();
    };
    let mut out: Vec<Service> = Vec::new();
    for (i, expose) in svc.expose.iter().enumerate() {
        if !is_leased_ip(expose) {
            continue;
        }
        // An endpoint another deployment of the owner holds gets no Service here until it is
        // moved (`/endpoint/migrate`).
        if ctx
            .ip_endpoints
            .is_some_and(|held| !held.contains(&expose.ip))
        {
            continue;
        }
        let external = external_port(expose);
        let protocol = expose.proto.to_uppercase();
        let name = service_name(&svc.name, external, &protocol);
        if out
            .iter()
            .any(|s| s.metadata.name.as_deref() == Some(&name))
        {
            continue;
        }
        let mut labels = ctx.service_labels(&svc.name);
        labels.insert(SERVICE_TARGET_LABEL.into(), SERVICE_TARGET.into());
        let mut metadata = ctx.meta(&name, labels);
        let mut annotations: std::collections::BTreeMap<String, String> = [
            (
                SHARED_IP_ANNOTATION.to_owned(),
                sharing_key(&ctx.lease.owner, &expose.ip),
            ),
            (POOL_ANNOTATION.to_owned(), pool.to_owned()),
            (ENDPOINT_ANNOTATION.to_owned(), expose.ip.clone()),
        ]
        .into();
        if let Some(address) = ctx.ip_addresses.get(&expose.ip) {
            annotations.insert(ADDRESS_ANNOTATION.to_owned(), address.clone());
        }
        metadata.annotations = Some(annotations);
        out.push(Service {
            metadata,
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                allocate_load_balancer_node_ports: Some(false),
                selector: Some(selector(&svc.name)),
                ports: Some(vec![ServicePort {
                    name: Some(format!("{i}-{external}")),
                    port: i32::from(external),
                    target_port: Some(IntOrString::Int(i32::from(expose.port))),
                    protocol: Some(protocol),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        });
    }
    out
}

/// `akash-<svc>-ip`: the service's leased-IP ports open to every address.
pub(crate) fn policy(ctx: &Ctx, svc: &ManifestService) -> Option<NetworkPolicy> {
    open_to_everyone(ctx, svc, &format!("akash-{}-ip", svc.name), is_leased_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_endpoint_name_is_kept_in_the_sharing_key() {
        assert_eq!(sharing_key("akash1x", "web-1"), "akash1x-ip-web-1");
    }

    #[test]
    fn other_endpoint_names_become_the_go_providers_digest() {
        // The Go provider's own test vector (cluster/util/ip_sharing_key_test.go).
        assert_eq!(
            sharing_key("akash1x", "meYOU"),
            "akash1x-ip-ps9pn7rkocct7m9ivtovuktb"
        );
        assert!(!sharing_key("akash1x", "me_you").contains("me_you"));
    }

    #[test]
    fn base32hex_matches_rfc_4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "co"),
            ("fo", "cpng"),
            ("foo", "cpnmu"),
            ("foob", "cpnmuog"),
            ("fooba", "cpnmuoj1"),
            ("foobar", "cpnmuoj1e8"),
        ] {
            assert_eq!(base32hex_lower(input.as_bytes()), want, "{input:?}");
        }
    }
}
