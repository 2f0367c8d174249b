//! Which tunnels this provider should run: pure, from its `Lease` resources and the chain's
//! active leases of each deployment.

use std::collections::{BTreeMap, BTreeSet};

use crds::resources::{Lease, LeaseRef};
use crds::sdl::manifest::ManifestGroup;

use crate::overlay::topology::{self, Connection, Proto, Side};
use crate::overlay::wire::TunnelRequest;

/// One end of a tunnel this provider runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DesiredTunnel {
    /// The `Tunnel` resource's name (unique in the provider namespace).
    pub name: String,
    pub side: Side,
    pub connection: Connection,
    pub request: TunnelRequest,
    /// The provider holding the other group.
    pub peer_provider: String,
    /// Our lease of our group.
    pub lease: LeaseRef,
    /// Its `Lease` resource (name, uid), which owns the `Tunnel`.
    pub lease_resource: (String, Option<String>),
    /// Our lease's namespace.
    pub lease_namespace: String,
}

impl DesiredTunnel {
    /// The service on this side.
    pub(crate) fn local_service(&self) -> &str {
        match self.side {
            Side::Client => &self.connection.caller_service,
            Side::Server => &self.connection.server_service,
        }
    }

    /// The service on the other side.
    pub(crate) fn peer_service(&self) -> &str {
        match self.side {
            Side::Client => &self.connection.server_service,
            Side::Server => &self.connection.caller_service,
        }
    }
}

/// This provider's (`me`) live leases that hold a manifest, by deployment (owner, dseq).
pub(crate) fn deployments<'a>(
    me: &str,
    leases: &'a [Lease],
) -> BTreeMap<(String, u64), Vec<&'a Lease>> {
    let mut out: BTreeMap<(String, u64), Vec<&Lease>> = BTreeMap::new();
    for lease in leases.iter().filter(|l| {
        l.spec.lease_id.provider == me
            && l.metadata.deletion_timestamp.is_none()
            && crate::gateway::source::is_live(l)
            && l.spec.manifest.is_some()
            && l.spec.deployment_manifest.is_some()
    }) {
        let id = &lease.spec.lease_id;
        out.entry((id.owner.clone(), id.dseq))
            .or_default()
            .push(lease);
    }
    out
}

/// The tunnels of one deployment: `held` are our leases of it (see [`deployments`]), `holders`
/// the chain's active leases (gseq → provider). A connection gets a tunnel only when the chain
/// shows both our lease and the peer's active; UDP connections are returned apart (tunnels
/// carry TCP).
pub(crate) fn tunnels_of(
    me: &str,
    held: &[&Lease],
    holders: &BTreeMap<u32, String>,
) -> Result<(Vec<DesiredTunnel>, Vec<Connection>), String> {
    let Some(text) = held
        .iter()
        .find_map(|l| l.spec.deployment_manifest.as_deref())
    else {
        return Ok((Vec::new(), Vec::new()));
    };
    let groups: Vec<ManifestGroup> =
        serde_json::from_str(text).map_err(|e| format!("the stored manifest is not valid: {e}"))?;
    let mine: BTreeSet<u32> = held.iter().map(|l| l.spec.lease_id.gseq).collect();
    let connections = topology::connections(&groups);
    let mut tunnels = Vec::new();
    let mut udp = Vec::new();
    for (side, c) in topology::for_groups(&connections, &mine) {
        let (my_gseq, peer_gseq) = match side {
            Side::Client => (c.caller_gseq, c.server_gseq),
            Side::Server => (c.server_gseq, c.caller_gseq),
        };
        let Some(lease) = held.iter().find(|l| l.spec.lease_id.gseq == my_gseq) else {
            continue;
        };
        if holders.get(&my_gseq).map(String::as_str) != Some(me) {
            continue;
        }
        let Some(peer) = holders.get(&peer_gseq).filter(|p| p.as_str() != me) else {
            continue;
        };
        if c.proto == Proto::Udp {
            udp.push(c);
            continue;
        }
        let id = &lease.spec.lease_id;
        tunnels.push(DesiredTunnel {
            name: topology::tunnel_name(&id.owner, id.dseq, side, &c),
            side,
            request: TunnelRequest {
                owner: id.owner.clone(),
                dseq: id.dseq,
                from_gseq: c.caller_gseq,
                from_service: c.caller_service.clone(),
                to_gseq: c.server_gseq,
                to_service: c.server_service.clone(),
                port: c.port,
                probe: false,
                wireguard: None,
            },
            connection: c,
            peer_provider: peer.clone(),
            lease: id.clone(),
            lease_resource: (
                lease.metadata.name.clone().unwrap_or_default(),
                lease.metadata.uid.clone(),
            ),
            lease_namespace: id.namespace(),
        });
    }
    Ok((tunnels, udp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::resources::{LeaseManifest, LeasePhase, LeaseSpec, LeaseStatus, Price};
    use crds::sdl::Sdl;

    const ME: &str = "akash1me";
    const PEER: &str = "akash1peer";
    const OWNER: &str = "akash1tenant";

    /// `web` in placement `a`, `db` in placement `b`; `db` lets `web` in on 5432 (TCP) and
    /// 5433 (UDP).
    const SDL: &str = r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        to:
          - global: true
  db:
    image: postgres:16
    expose:
      - port: 5432
        to:
          - service: web
      - port: 5433
        proto: udp
        to:
          - service: web
profiles:
  compute:
    small:
      resources:
        cpu:
          units: 0.1
        memory:
          size: 64Mi
        storage:
          size: 64Mi
  placement:
    a:
      pricing:
        small:
          denom: uact
          amount: 100
    b:
      pricing:
        small:
          denom: uact
          amount: 100
deployment:
  web:
    a:
      profile: small
      count: 1
  db:
    b:
      profile: small
      count: 1
"#;

    fn lease(gseq: u32, phase: Option<LeasePhase>) -> Lease {
        let sdl = Sdl::parse(SDL).expect("sdl");
        let groups = sdl.manifest().to_vec();
        let name = if gseq == 1 { "a" } else { "b" };
        let group = groups.iter().find(|g| g.name == name).cloned().unwrap();
        let mut lease = Lease::new(
            &format!("lease-{gseq}"),
            LeaseSpec {
                lease_id: LeaseRef {
                    owner: OWNER.into(),
                    dseq: 7,
                    gseq,
                    oseq: 1,
                    provider: ME.into(),
                },
                price: Price {
                    denom: "uact".into(),
                    amount: "100".into(),
                },
                created_at: None,
                manifest: Some(LeaseManifest {
                    version: sdl.manifest_version_hex(),
                    group,
                    leased: Vec::new(),
                    hostnames: None,
                    ip_endpoints: None,
                    ip_addresses: Default::default(),
                    secret_name: None,
                }),
                deployment_manifest: Some(serde_json::to_string(&groups).unwrap()),
            },
        );
        lease.metadata.uid = Some(format!("uid-{gseq}"));
        lease.status = Some(LeaseStatus {
            phase,
            ..Default::default()
        });
        lease
    }

    fn holders(list: &[(u32, &str)]) -> BTreeMap<u32, String> {
        list.iter().map(|(g, p)| (*g, (*p).to_owned())).collect()
    }

    #[test]
    fn the_caller_group_gets_a_client_end_towards_the_servers_holder() {
        let leases = [lease(1, Some(LeasePhase::Active))];
        let deps = deployments(ME, &leases);
        let held = &deps[&(OWNER.to_owned(), 7)];
        let (tunnels, udp) = tunnels_of(ME, held, &holders(&[(1, ME), (2, PEER)])).unwrap();
        assert_eq!(tunnels.len(), 1, "{tunnels:?}");
        let t = &tunnels[0];
        assert_eq!(t.side, Side::Client);
        assert_eq!(t.peer_provider, PEER);
        assert_eq!((t.local_service(), t.peer_service()), ("web", "db"));
        assert_eq!(
            (t.request.from_gseq, t.request.to_gseq, t.request.port),
            (1, 2, 5432)
        );
        assert_eq!(t.lease_resource, ("lease-1".into(), Some("uid-1".into())));
        assert!(t.name.starts_with("tun-7-c-1-web-2-db-5432-"), "{}", t.name);
        assert_eq!(udp.len(), 1, "the UDP expose is listed apart: {udp:?}");
    }

    /// Two tenants whose deployments have the same number and shape, both with this provider:
    /// each gets its own tunnel, under its own name (the sidecar keys tunnels by name, so one
    /// name for both ran one tunnel and cut the other's when either closed).
    #[test]
    fn two_owners_with_the_same_dseq_get_a_tunnel_each() {
        const OTHER: &str = "akash1othertenant";
        let mut other = lease(1, Some(LeasePhase::Active));
        other.spec.lease_id.owner = OTHER.into();
        other.metadata.name = Some("other-lease-1".into());
        let leases = [lease(1, Some(LeasePhase::Active)), other];
        let mut by_name = BTreeMap::new();
        for ((owner, _), held) in deployments(ME, &leases) {
            let (tunnels, _) = tunnels_of(ME, &held, &holders(&[(1, ME), (2, PEER)])).unwrap();
            for t in tunnels {
                assert_eq!(t.request.owner, owner);
                by_name.insert(t.name.clone(), t);
            }
        }
        assert_eq!(by_name.len(), 2, "{:?}", by_name.keys());
        let owners: BTreeSet<&str> = by_name.values().map(|t| t.lease.owner.as_str()).collect();
        assert_eq!(owners, BTreeSet::from([OWNER, OTHER]));
    }

    #[test]
    fn the_server_group_gets_a_server_end_for_the_callers_holder() {
        let leases = [lease(2, Some(LeasePhase::Active))];
        let deps = deployments(ME, &leases);
        let held = &deps[&(OWNER.to_owned(), 7)];
        let (tunnels, _) = tunnels_of(ME, held, &holders(&[(1, PEER), (2, ME)])).unwrap();
        assert_eq!(tunnels.len(), 1);
        assert_eq!(tunnels[0].side, Side::Server);
        assert_eq!(tunnels[0].peer_provider, PEER);
        assert_eq!(tunnels[0].local_service(), "db");
    }

    #[test]
    fn no_tunnel_without_both_leases_active_on_chain() {
        let leases = [lease(1, Some(LeasePhase::Active))];
        let deps = deployments(ME, &leases);
        let held = &deps[&(OWNER.to_owned(), 7)];
        for chain in [
            holders(&[(1, ME)]),
            holders(&[(2, PEER)]),
            holders(&[(1, "akash1other"), (2, PEER)]),
        ] {
            let (tunnels, _) = tunnels_of(ME, held, &chain).unwrap();
            assert!(tunnels.is_empty(), "{chain:?}: {tunnels:?}");
        }
    }

    #[test]
    fn a_provider_holding_both_groups_needs_no_tunnel() {
        let leases = [
            lease(1, Some(LeasePhase::Active)),
            lease(2, Some(LeasePhase::Active)),
        ];
        let deps = deployments(ME, &leases);
        let held = &deps[&(OWNER.to_owned(), 7)];
        let (tunnels, _) = tunnels_of(ME, held, &holders(&[(1, ME), (2, ME)])).unwrap();
        assert!(tunnels.is_empty(), "{tunnels:?}");
    }

    #[test]
    fn closing_and_foreign_leases_and_leases_without_a_manifest_are_left_out() {
        let mut no_manifest = lease(1, None);
        no_manifest.spec.manifest = None;
        let mut foreign = lease(1, Some(LeasePhase::Active));
        foreign.spec.lease_id.provider = PEER.into();
        let leases = [
            lease(1, Some(LeasePhase::Closing)),
            lease(2, Some(LeasePhase::Closed)),
            no_manifest,
            foreign,
        ];
        assert!(deployments(ME, &leases).is_empty());
    }

    #[test]
    fn an_unreadable_stored_manifest_is_an_error_not_a_silent_nothing() {
        let mut bad = lease(1, Some(LeasePhase::Active));
        bad.spec.deployment_manifest = Some("{not json".into());
        let e = tunnels_of(ME, &[&bad], &holders(&[(1, ME), (2, PEER)])).unwrap_err();
        assert!(e.contains("stored manifest"), "{e}");
    }
}
