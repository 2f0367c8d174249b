//! Which service-to-service calls of a deployment cross groups, and so need an overlay tunnel.
//!
//! Pure: it reads the manifest groups and nothing else. An SDL `expose` entry lives on the
//! *serving* service: `db` with `expose: [{ port: 5432, to: [{ service: web }] }]` lets `web`
//! connect to `db:5432`. When `web` and `db` are in different groups (placements) of one
//! deployment, the groups may be leased to different providers, and the call has to go through
//! a tunnel from the caller's provider (the client side) to the server's provider (the server side).
//!
//! Group sequence numbers: the chain numbers a deployment's groups 1, 2, … in the order of the
//! `MsgCreateDeployment` group list, which is [`crds::sdl::Sdl::groups`]: the placements that
//! hold at least one service, sorted by name (UTF-16 code units, as the reference SDK sorts).
//! The manifest instead lists every placement in document order (including unused ones), so a
//! group's gseq is *not* its position in the manifest; [`gseqs`] computes it from the names.

use std::collections::{BTreeMap, BTreeSet};

use crds::sdl::manifest::{ManifestExpose, ManifestGroup};

/// Which end of a [`Connection`] a provider runs (the same sides as a tunnel certificate's).
pub(crate) use super::tunnel_cert::Side;

/// The transport of an exposed port, as the manifest says. The tunnels carry TCP only; a UDP
/// connection is listed so that the caller can decide what to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// Reads the manifest's `proto` (any case; empty means TCP, as the SDL default). Anything
    /// else is not a protocol the overlay knows, and gives None.
    pub(crate) fn from_manifest(text: &str) -> Option<Self> {
        if text.is_empty() || text.eq_ignore_ascii_case("tcp") {
            Some(Proto::Tcp)
        } else if text.eq_ignore_ascii_case("udp") {
            Some(Proto::Udp)
        } else {
            None
        }
    }
}

/// One call the SDL permits from a service in one group to a service in another group of the
/// same deployment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Connection {
    pub caller_gseq: u32,
    pub caller_group: String,
    pub caller_service: String,
    pub server_gseq: u32,
    pub server_group: String,
    pub server_service: String,
    /// The serving service's container port (`expose.port`).
    pub port: u16,
    pub proto: Proto,
}

/// The gseq of each manifest group that is a group on chain (one with at least one service):
/// 1-based position among those groups sorted by name in UTF-16 code-unit order, which is the
/// order of [`crds::sdl::Sdl::groups`] and so of the groups in `MsgCreateDeployment`.
pub(crate) fn gseqs(groups: &[ManifestGroup]) -> BTreeMap<&str, u32> {
    let mut names: Vec<&str> = groups
        .iter()
        .filter(|g| !g.services.is_empty())
        .map(|g| g.name.as_str())
        .collect();
    names.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    names.dedup();
    names
        .into_iter()
        .zip(1u32..)
        .collect::<BTreeMap<&str, u32>>()
}

/// Every cross-group call the manifest permits, deduplicated and sorted (by caller gseq, caller
/// service, server gseq, server service, port, proto).
///
/// For each serving service in group S and each `expose` entry naming a caller service, there is
/// one connection per group C ≠ S that runs the caller service, unless C runs the serving service
/// itself: then the caller's `<service>` host name is that local instance, and nothing crosses
/// groups. Global-only exposes (no `service`) give nothing. A caller service that no group runs
/// is ignored (SDL validation refuses those anyway), and so is an expose whose `proto` is neither
/// TCP nor UDP.
pub(crate) fn connections(groups: &[ManifestGroup]) -> Vec<Connection> {
    let gseq_of = gseqs(groups);
    // Service name -> the groups (gseq, name) that run it.
    let mut runs: BTreeMap<&str, BTreeSet<(u32, &str)>> = BTreeMap::new();
    for group in groups {
        let Some(&gseq) = gseq_of.get(group.name.as_str()) else {
            continue;
        };
        for service in &group.services {
            runs.entry(service.name.as_str())
                .or_default()
                .insert((gseq, group.name.as_str()));
        }
    }
    let mut out: BTreeSet<Connection> = BTreeSet::new();
    for server_group in groups {
        let Some(&server_gseq) = gseq_of.get(server_group.name.as_str()) else {
            continue;
        };
        for server in &server_group.services {
            for expose in &server.expose {
                let Some((caller, proto)) = caller_of(expose) else {
                    continue;
                };
                let Some(caller_groups) = runs.get(caller) else {
                    continue;
                };
                let server_groups = runs.get(server.name.as_str());
                for &(caller_gseq, caller_group) in caller_groups {
                    let local = caller_gseq == server_gseq
                        || server_groups.is_some_and(|s| s.iter().any(|&(g, _)| g == caller_gseq));
                    if local {
                        continue;
                    }
                    out.insert(Connection {
                        caller_gseq,
                        caller_group: caller_group.to_owned(),
                        caller_service: caller.to_owned(),
                        server_gseq,
                        server_group: server_group.name.clone(),
                        server_service: server.name.clone(),
                        port: expose.port,
                        proto,
                    });
                }
            }
        }
    }
    out.into_iter().collect()
}

/// The calling service an expose entry names, with its protocol; None for a global-only entry.
fn caller_of(expose: &ManifestExpose) -> Option<(&str, Proto)> {
    if expose.service.is_empty() {
        return None;
    }
    Some((
        expose.service.as_str(),
        Proto::from_manifest(&expose.proto)?,
    ))
}

/// The connections a provider holding the groups `my_gseqs` (its leases of the deployment) has
/// a part in: [`Side::Client`] where it holds the caller's group, [`Side::Server`] where it holds
/// the server's group. A provider holding *both* groups of a connection gets neither side of it:
/// the call stays inside its own cluster and needs no tunnel. Order follows `connections`.
pub(crate) fn for_groups(
    connections: &[Connection],
    my_gseqs: &BTreeSet<u32>,
) -> Vec<(Side, Connection)> {
    connections
        .iter()
        .filter_map(|c| {
            let caller = my_gseqs.contains(&c.caller_gseq);
            let server = my_gseqs.contains(&c.server_gseq);
            match (caller, server) {
                (true, false) => Some((Side::Client, c.clone())),
                (false, true) => Some((Side::Server, c.clone())),
                _ => None,
            }
        })
        .collect()
}

/// The check a serving provider runs on an incoming tunnel request: the connection that lets
/// `caller_service` of group `caller_gseq` reach `server_service` on `port`, or None. Every part
/// must match exactly; a caller service named from a group that does not run it is refused.
///
/// Where the serving service runs in several groups, connections to each exist; pass only this
/// provider's server-side connections (see [`for_groups`]), or check the returned `server_gseq`
/// against the requested one. With both a TCP and a UDP expose of one port, the TCP one is
/// returned (tunnels carry TCP).
#[cfg(test)]
pub(crate) fn allows<'a>(
    connections: &'a [Connection],
    caller_gseq: u32,
    caller_service: &str,
    server_service: &str,
    port: u16,
) -> Option<&'a Connection> {
    connections
        .iter()
        .filter(|c| {
            c.caller_gseq == caller_gseq
                && c.caller_service == caller_service
                && c.server_service == server_service
                && c.port == port
        })
        .min_by_key(|c| c.proto)
}

/// Longest Kubernetes object name (a DNS-1123 label).
const MAX_NAME: usize = 63;
/// Hex digits of the hash suffix: 64 bits, so that nobody finds another deployment's name by
/// trying owners and service names.
const HASH_HEX: usize = 16;

/// The Kubernetes object name of one end of a tunnel, which is also its key in the sidecar:
/// `tun-<dseq>-<c|s>-<caller gseq>-<caller>-<server gseq>-<server>-<port>[-udp]-<hash>`. Deployment
/// numbers are per owner, so the owner is in it too, as the hash: 16 hex digits of the SHA-256 of
/// the owner and the full plain name. It is a DNS-1123 label (lowercase alphanumerics and `-`, at
/// most 63 characters); a longer plain part, or one whose service names had to be rewritten to fit
/// the alphabet, is cut, and the hash (of the name before either) keeps names distinct.
pub(crate) fn tunnel_name(owner: &str, lease_dseq: u64, side: Side, c: &Connection) -> String {
    use sha2::{Digest, Sha256};
    let raw = format!(
        "tun-{lease_dseq}-{}-{}-{}-{}-{}-{}{}",
        side.letter(),
        c.caller_gseq,
        c.caller_service,
        c.server_gseq,
        c.server_service,
        c.port,
        match c.proto {
            Proto::Tcp => "",
            Proto::Udp => "-udp",
        }
    );
    let clean: String = raw
        .chars()
        .map(|ch| match ch {
            'a'..='z' | '0'..='9' | '-' => ch,
            'A'..='Z' => ch.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let mut h = Sha256::new();
    // Length-prefixed: no two (owner, name) pairs hash the same input.
    for field in [owner.as_bytes(), raw.as_bytes()] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    let hash = super::hex(&h.finalize()[..HASH_HEX / 2]);
    let keep = MAX_NAME - HASH_HEX - 1;
    // `clean` is ASCII, so any byte index is a char boundary.
    let head = clean[..clean.len().min(keep)].trim_end_matches('-');
    format!("{head}-{hash}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::sdl::Sdl;
    use std::fmt::Write as _;

    /// One service of a test SDL: its name, the placements it is deployed to, and its exposes
    /// as (port, proto, targets), a target being a service name or `global`.
    struct Svc {
        name: &'static str,
        at: &'static [&'static str],
        expose: &'static [(u16, &'static str, &'static [&'static str])],
    }

    /// A `Svc` on one line, so that the test tables read as tables.
    fn svc(
        name: &'static str,
        at: &'static [&'static str],
        expose: &'static [(u16, &'static str, &'static [&'static str])],
    ) -> Svc {
        Svc { name, at, expose }
    }

    /// SDL text with placements declared in `placements` order, each service with its own
    /// compute profile.
    fn sdl_text(placements: &[&str], services: &[Svc]) -> String {
        let mut t = String::from("version: \"2.0\"\nservices:\n");
        for s in services {
            writeln!(t, "  {}:\n    image: nginx", s.name).unwrap();
            t.push_str(if s.expose.is_empty() {
                "    expose: []\n"
            } else {
                "    expose:\n"
            });
            for (port, proto, to) in s.expose {
                writeln!(
                    t,
                    "      - port: {port}\n        proto: {proto}\n        to:"
                )
                .unwrap();
                for target in *to {
                    if *target == "global" {
                        t.push_str("          - global: true\n");
                    } else {
                        writeln!(t, "          - service: {target}").unwrap();
                    }
                }
            }
        }
        t.push_str("profiles:\n  compute:\n");
        for s in services {
            writeln!(
                t,
                "    {}:\n      resources:\n        cpu: {{ units: 0.5 }}\n        memory: {{ size: 512Mi }}\n        storage: {{ size: 1Gi }}",
                s.name
            )
            .unwrap();
        }
        t.push_str("  placement:\n");
        for p in placements {
            writeln!(t, "    {p}:\n      pricing:").unwrap();
            for s in services.iter().filter(|s| s.at.contains(p)) {
                writeln!(t, "        {}: {{ denom: uact, amount: 1000 }}", s.name).unwrap();
            }
        }
        t.push_str("deployment:\n");
        for s in services {
            writeln!(t, "  {}:", s.name).unwrap();
            for p in s.at {
                writeln!(t, "    {p}: {{ profile: {}, count: 1 }}", s.name).unwrap();
            }
        }
        t
    }

    fn parse(placements: &[&str], services: &[Svc]) -> Sdl {
        let text = sdl_text(placements, services);
        Sdl::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
    }

    fn manifest(placements: &[&str], services: &[Svc]) -> Vec<ManifestGroup> {
        parse(placements, services).manifest().to_vec()
    }

    /// web in `front`, db in `back`; db lets web in on 5432.
    fn web_db() -> Vec<ManifestGroup> {
        manifest(
            &["back", "front"],
            &[
                svc("db", &["back"], &[(5432, "tcp", &["web"])]),
                svc("web", &["front"], &[(80, "tcp", &["global"])]),
            ],
        )
    }

    fn conn(
        (caller_gseq, caller_group, caller_service): (u32, &str, &str),
        (server_gseq, server_group, server_service): (u32, &str, &str),
        port: u16,
        proto: Proto,
    ) -> Connection {
        Connection {
            caller_gseq,
            caller_group: caller_group.into(),
            caller_service: caller_service.into(),
            server_gseq,
            server_group: server_group.into(),
            server_service: server_service.into(),
            port,
            proto,
        }
    }

    fn set(gseqs: &[u32]) -> BTreeSet<u32> {
        gseqs.iter().copied().collect()
    }

    fn is_dns1123_label(name: &str) -> bool {
        let bytes = name.as_bytes();
        !name.is_empty()
            && name.len() <= 63
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
    }

    #[test]
    fn web_calling_db_in_another_group_gives_one_connection() {
        let want = conn((2, "front", "web"), (1, "back", "db"), 5432, Proto::Tcp);
        assert_eq!(connections(&web_db()), vec![want]);
    }

    #[test]
    fn same_group_exposes_give_none() {
        let groups = manifest(
            &["dc"],
            &[
                svc("db", &["dc"], &[(5432, "tcp", &["web"])]),
                svc("web", &["dc"], &[(80, "tcp", &["global"])]),
            ],
        );
        assert_eq!(connections(&groups), vec![]);
    }

    #[test]
    fn global_only_exposes_give_none() {
        let groups = manifest(
            &["a", "b"],
            &[
                svc(
                    "api",
                    &["a"],
                    &[(80, "tcp", &["global"]), (8080, "tcp", &["global"])],
                ),
                svc("web", &["b"], &[(80, "tcp", &["global"])]),
            ],
        );
        assert_eq!(connections(&groups), vec![]);
    }

    #[test]
    fn service_exposed_to_two_callers_in_two_other_groups_gives_two() {
        let groups = manifest(
            &["a", "b", "c"],
            &[
                svc("db", &["a"], &[(5432, "tcp", &["web", "worker"])]),
                svc("web", &["b"], &[]),
                svc("worker", &["c"], &[]),
            ],
        );
        assert_eq!(
            connections(&groups),
            vec![
                conn((2, "b", "web"), (1, "a", "db"), 5432, Proto::Tcp),
                conn((3, "c", "worker"), (1, "a", "db"), 5432, Proto::Tcp),
            ]
        );
    }

    #[test]
    fn repeated_expose_entries_are_deduplicated() {
        let groups = manifest(
            &["a", "b"],
            &[
                svc(
                    "db",
                    &["a"],
                    &[(5432, "tcp", &["web", "global"]), (5432, "tcp", &["web"])],
                ),
                svc("web", &["b"], &[]),
            ],
        );
        assert_eq!(
            connections(&groups),
            vec![conn((2, "b", "web"), (1, "a", "db"), 5432, Proto::Tcp)]
        );
    }

    #[test]
    fn udp_exposes_are_listed_as_udp() {
        let groups = manifest(
            &["a", "b"],
            &[
                svc(
                    "dns",
                    &["a"],
                    &[(53, "udp", &["web"]), (53, "tcp", &["web"])],
                ),
                svc("web", &["b"], &[]),
            ],
        );
        let all = connections(&groups);
        assert_eq!(
            all,
            vec![
                conn((2, "b", "web"), (1, "a", "dns"), 53, Proto::Tcp),
                conn((2, "b", "web"), (1, "a", "dns"), 53, Proto::Udp),
            ]
        );
        assert_eq!(
            allows(&all, 2, "web", "dns", 53).map(|c| c.proto),
            Some(Proto::Tcp)
        );
    }

    #[test]
    fn callers_no_group_runs_are_ignored() {
        let mut groups = web_db();
        let db = groups
            .iter_mut()
            .flat_map(|g| g.services.iter_mut())
            .find(|s| s.name == "db")
            .unwrap();
        let mut ghost = db.expose[0].clone();
        ghost.service = "ghost".into();
        db.expose.push(ghost);
        let want = conn((2, "front", "web"), (1, "back", "db"), 5432, Proto::Tcp);
        assert_eq!(connections(&groups), vec![want]);
    }

    #[test]
    fn gseq_is_the_chain_group_order_not_the_manifest_order() {
        // Placements declared zeta first: the manifest lists zeta first, the chain groups (sorted
        // by name) put alpha first, and the chain numbers groups in that order.
        let sdl = parse(
            &["zeta", "alpha"],
            &[
                svc("db", &["zeta"], &[(5432, "tcp", &["web"])]),
                svc("web", &["alpha"], &[]),
            ],
        );
        let manifest_names: Vec<&str> = sdl.manifest().iter().map(|g| g.name.as_str()).collect();
        assert_eq!(manifest_names, ["zeta", "alpha"]);
        let chain_names: Vec<&str> = sdl.groups().iter().map(|g| g.name.as_str()).collect();
        assert_eq!(chain_names, ["alpha", "zeta"]);
        let by_name = gseqs(sdl.manifest());
        for (i, name) in chain_names.iter().enumerate() {
            assert_eq!(by_name[name], i as u32 + 1);
        }
        let want = conn((1, "alpha", "web"), (2, "zeta", "db"), 5432, Proto::Tcp);
        assert_eq!(connections(sdl.manifest()), vec![want]);
    }

    #[test]
    fn caller_group_running_the_server_itself_calls_it_locally() {
        // db runs in a and b, web in b and c: web in b has its own db; web in c reaches both.
        let groups = manifest(
            &["a", "b", "c"],
            &[
                svc("db", &["a", "b"], &[(5432, "tcp", &["web"])]),
                svc("web", &["b", "c"], &[]),
            ],
        );
        assert_eq!(
            connections(&groups),
            vec![
                conn((3, "c", "web"), (1, "a", "db"), 5432, Proto::Tcp),
                conn((3, "c", "web"), (2, "b", "db"), 5432, Proto::Tcp),
            ]
        );
    }

    #[test]
    fn for_groups_gives_each_holder_its_side() {
        let all = connections(&web_db());
        let c = all[0].clone();
        assert_eq!(
            for_groups(&all, &set(&[2])),
            vec![(Side::Client, c.clone())]
        );
        assert_eq!(for_groups(&all, &set(&[1])), vec![(Side::Server, c)]);
        assert_eq!(for_groups(&all, &set(&[3])), vec![]);
        assert_eq!(for_groups(&all, &set(&[])), vec![]);
    }

    #[test]
    fn for_groups_gives_nothing_to_a_provider_holding_both_groups() {
        let all = connections(&web_db());
        assert_eq!(for_groups(&all, &set(&[1, 2])), vec![]);
    }

    #[test]
    fn allows_accepts_the_exact_tuple() {
        let all = connections(&web_db());
        assert_eq!(allows(&all, 2, "web", "db", 5432), Some(&all[0]));
    }

    #[test]
    fn allows_refuses_a_wrong_port() {
        let all = connections(&web_db());
        assert_eq!(allows(&all, 2, "web", "db", 5433), None);
        assert_eq!(allows(&all, 2, "web", "db", 80), None);
    }

    #[test]
    fn allows_refuses_a_wrong_caller_service() {
        let all = connections(&web_db());
        assert_eq!(allows(&all, 2, "worker", "db", 5432), None);
        assert_eq!(allows(&all, 2, "db", "db", 5432), None);
        assert_eq!(allows(&all, 2, "web", "web", 5432), None);
    }

    #[test]
    fn allows_refuses_a_caller_service_claimed_from_the_wrong_group() {
        let all = connections(&web_db());
        // web runs in group 2 only: a request claiming web from group 1 (db's) or 3 is refused.
        assert_eq!(allows(&all, 1, "web", "db", 5432), None);
        assert_eq!(allows(&all, 3, "web", "db", 5432), None);
    }

    const OWNER: &str = "akash1qqzwc5d7hynl67nsmn9jukvwqp3vzdl6j2t7lk";

    #[test]
    fn tunnel_name_is_a_dns1123_label_within_63_chars() {
        let short = conn((2, "front", "web"), (1, "back", "db"), 5432, Proto::Tcp);
        let name = tunnel_name(OWNER, 42, Side::Client, &short);
        assert!(name.starts_with("tun-42-c-2-web-1-db-5432-"), "{name}");
        assert_eq!(name.len(), "tun-42-c-2-web-1-db-5432-".len() + 16);
        let long = conn(
            (12, "front", "a-very-long-service-name-that-goes-on-and-on"),
            (3, "back", "another-rather-long-service-name-for-the-server"),
            65535,
            Proto::Udp,
        );
        let odd = conn(
            (1, "a", "Web_App"),
            (2, "b", "DB.primary"),
            5432,
            Proto::Tcp,
        );
        for c in [&short, &long, &odd] {
            for side in [Side::Client, Side::Server] {
                let name = tunnel_name(OWNER, u64::MAX, side, c);
                assert!(is_dns1123_label(&name), "{name}");
                assert!(name.len() <= 63, "{name}");
            }
        }
        assert_eq!(tunnel_name(OWNER, u64::MAX, Side::Server, &long).len(), 63);
    }

    #[test]
    fn tunnel_name_is_stable() {
        let long = conn(
            (12, "front", "a-very-long-service-name-that-goes-on-and-on"),
            (3, "back", "another-rather-long-service-name-for-the-server"),
            65535,
            Proto::Tcp,
        );
        let name = tunnel_name(OWNER, 1234567, Side::Client, &long);
        assert_eq!(
            name,
            tunnel_name(OWNER, 1234567, Side::Client, &long.clone())
        );
        // Pinned (worked out apart, with Python's hashlib): a name that changes between releases
        // restarts every tunnel on upgrade.
        assert_eq!(
            name,
            "tun-1234567-c-12-a-very-long-service-name-that-761e488818a1053e"
        );
    }

    /// Deployment numbers are per owner: two tenants' deployments of the same number and shape
    /// must not share a tunnel (one closing would cut the other's).
    #[test]
    fn tunnel_name_differs_between_owners_with_the_same_dseq() {
        let c = conn((2, "front", "web"), (1, "back", "db"), 5432, Proto::Tcp);
        let other = "akash1q7spv2cw06yszgfp4f9ed59lkka6ytn8g4tkjf";
        for side in [Side::Client, Side::Server] {
            assert_ne!(
                tunnel_name(OWNER, 7, side, &c),
                tunnel_name(other, 7, side, &c)
            );
        }
    }

    #[test]
    fn tunnel_name_is_distinct_for_distinct_connections() {
        let base = "a-very-long-service-name-that-goes-on-and-on-and-on";
        let mut names = BTreeSet::new();
        let mut count = 0;
        for (caller, server) in [
            (format!("{base}-1"), format!("{base}-x")),
            (format!("{base}-2"), format!("{base}-x")),
            (format!("{base}-1"), format!("{base}-y")),
            ("web".to_owned(), "db".to_owned()),
            ("web_a".to_owned(), "db".to_owned()),
            ("web-a".to_owned(), "db".to_owned()),
        ] {
            for (cg, sg) in [(1, 2), (2, 1), (1, 3)] {
                for port in [80, 8080] {
                    for proto in [Proto::Tcp, Proto::Udp] {
                        let c = conn((cg, "g", &caller), (sg, "h", &server), port, proto);
                        for side in [Side::Client, Side::Server] {
                            for dseq in [1, 2] {
                                for owner in [OWNER, "akash1other"] {
                                    names.insert(tunnel_name(owner, dseq, side, &c));
                                    count += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(names.len(), count);
    }
}
