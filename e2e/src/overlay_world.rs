//! The overlay scenario's world, shared by the e2e tests and the `overlay_modes` bench: the
//! devnet, two providers and a third party, each of the two with an `akash-provider overlay`
//! sidecar in its own network namespace (a veth pair between them), and a TCP echo server
//! standing in for the database in the second namespace. The deployment puts `web` with the
//! first provider and `db` with the second; `db` lets `web` in on 5432.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crds::resources::{Distribution, Lease, ManifestPhase, Tunnel, TunnelMode, TunnelRole};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, PostParams};

use crate::marketplace::{Marketplace, SiteSpec, manifest_of};
use crate::netns::{EchoServer, NetPair, bind_in, connect_in};
use crate::overlay::{OverlayOptions, OverlayProcess, apiserver_port, url_port};
use crate::wait::{Poll, until};

pub const DB_PORT: u16 = 5432;
pub const OVERLAY_PORT: u16 = 8445;

/// `web` in placement `dc0` (site p0), `db` in `dc1` (site p1); `db` lets `web` in on 5432.
pub const SDL: &str = r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
        as: 80
        to:
          - global: true
  db:
    image: postgres:16
    expose:
      - port: 5432
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
    dc0:
      attributes:
        site: p0
      pricing:
        small:
          denom: uact
          amount: 10000
    dc1:
      attributes:
        site: p1
      pricing:
        small:
          denom: uact
          amount: 10000
deployment:
  web:
    dc0:
      profile: small
      count: 1
  db:
    dc1:
      profile: small
      count: 1
"#;

/// Everything a scenario needs: the marketplace, the namespaces, the sidecars, the database.
pub struct World {
    pub m: Marketplace,
    pub net: NetPair,
    pub sidecars: Vec<OverlayProcess>,
    pub db: EchoServer,
    pub client: kube::Client,
    /// The WireGuard interfaces of sides a and b (WireGuard mode).
    pub wireguard: Vec<String>,
}

impl World {
    pub async fn start(name: &str, wireguard: bool) -> anyhow::Result<Self> {
        let mut net = NetPair::create(name)?;
        let specs = [
            SiteSpec::nth(0, 1.0)
                .with_attribute("site", "p0")
                .with_attribute("overlay-endpoint", &format!("{}:{OVERLAY_PORT}", net.a_ip))
                .with_args(&["--overlay", "true"]),
            SiteSpec::nth(1, 1.0)
                .with_attribute("site", "p1")
                .with_attribute("overlay-endpoint", &format!("{}:{OVERLAY_PORT}", net.b_ip))
                .with_args(&["--overlay", "true"]),
            // The third party: registered, with a valid certificate, and no part in the deployment.
            SiteSpec::nth(2, 1.0).with_attribute("site", "p2"),
        ];
        let m = Marketplace::start_sites(name, &specs, &[]).await?;
        let cluster = crate::Cluster::shared().await?;
        for port in [
            apiserver_port(cluster.kubeconfig())?,
            url_port(&m.devnet.rpc_url).expect("rpc port"),
            url_port(&m.devnet.grpc_url).expect("grpc port"),
        ] {
            net.forward_host_port(port)?;
        }
        let db = EchoServer::start(bind_in(
            &net.b,
            SocketAddr::from(([127, 0, 0, 1], DB_PORT)),
        )?)?;
        let mut modes = Vec::new();
        let mut interfaces = Vec::new();
        for side in ['a', 'b'] {
            modes.push(if wireguard {
                let iface = net.wireguard_interface(side);
                interfaces.push(iface.clone());
                (
                    vec![
                        "--wireguard".to_owned(),
                        "true".to_owned(),
                        "--wireguard-interface".to_owned(),
                        iface,
                        "--wireguard-backend".to_owned(),
                        "userspace".to_owned(),
                    ],
                    vec![(
                        "WG_USERSPACE_IMPLEMENTATION".to_owned(),
                        crate::binaries::wireguard_go()?.display().to_string(),
                    )],
                )
            } else {
                (Vec::new(), Vec::new())
            });
        }
        let mut sidecars = Vec::new();
        for (site, (ns, ip)) in [(&net.a, net.a_ip), (&net.b, net.b_ip)]
            .into_iter()
            .enumerate()
        {
            let (mut extra_args, env) = modes[site].clone();
            // The client standing in for the web pod connects from the namespace's address.
            extra_args.extend(["--allow-source".to_owned(), ip.to_string()]);
            sidecars.push(OverlayProcess::start(
                cluster.kubeconfig(),
                &m.devnet,
                OverlayOptions {
                    netns: Some(ns.clone()),
                    namespace: m.sites[site].ns.name().to_owned(),
                    pod_ip: ip.to_string(),
                    listen: format!("{ip}:{OVERLAY_PORT}"),
                    // No cluster DNS under kwok: the database listens on the namespace's
                    // loopback, on the service's port.
                    target: "127.0.0.1:{port}".into(),
                    extra_args,
                    env,
                },
            )?);
        }
        Ok(Self {
            m,
            net,
            sidecars,
            db,
            client: cluster.client(),
            wireguard: interfaces,
        })
    }

    /// Runs `test`, printing every process's log when it fails.
    pub async fn with_logs<T>(
        &self,
        test: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let result = self.m.with_logs(test).await;
        if result.is_err() {
            for (i, s) in self.sidecars.iter().enumerate() {
                eprintln!("overlay sidecar {i} logs:\n{}", s.logs());
            }
        }
        result
    }

    pub fn tunnels(&self, site: usize) -> Api<Tunnel> {
        self.m.sites[site].ns.api()
    }

    /// Site `site`'s lease of deployment `dseq`.
    pub async fn lease(&self, site: usize, dseq: u64) -> anyhow::Result<Lease> {
        let api: Api<Lease> = self.m.sites[site].ns.api();
        until(
            "the provider's Lease resource",
            Duration::from_secs(60),
            || async {
                let found = api
                    .list(&ListParams::default())
                    .await?
                    .items
                    .into_iter()
                    .find(|l| l.spec.lease_id.dseq == dseq);
                Ok(match found {
                    Some(l) => Poll::Ready(l),
                    None => Poll::Pending("no Lease yet".into()),
                })
            },
        )
        .await
    }
}

/// The devnet key each site signs with (as `SiteSpec::nth` picks it).
pub fn m_key(site: usize) -> usize {
    SiteSpec::nth(site, 1.0).key
}

pub fn namespace_of(lease: &Lease) -> String {
    lease.spec.lease_id.namespace()
}

/// Where Service `service` port `port` in `ns` leads: its EndpointSlice's address and the
/// matching port, as kube-proxy would pick it.
pub async fn resolve(
    client: &kube::Client,
    ns: &str,
    service: &str,
    port: u16,
) -> anyhow::Result<Poll<SocketAddr>> {
    let Some(svc) = Api::<Service>::namespaced(client.clone(), ns)
        .get_opt(service)
        .await?
    else {
        return Ok(Poll::Pending(format!("no Service {service} in {ns}")));
    };
    let Some(port_name) = svc
        .spec
        .and_then(|s| s.ports)
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.port == i32::from(port))
        .and_then(|p| p.name)
    else {
        return Ok(Poll::Pending(format!(
            "Service {service} has no port {port}"
        )));
    };
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await?;
    for slice in slices.items {
        let target = slice
            .ports
            .unwrap_or_default()
            .into_iter()
            .find(|p| p.name.as_deref() == Some(&port_name))
            .and_then(|p| p.port);
        let address = slice
            .endpoints
            .unwrap_or_default()
            .into_iter()
            .flat_map(|e| e.addresses)
            .next();
        if let (Some(target), Some(address)) = (target, address) {
            return Ok(Poll::Ready(SocketAddr::new(
                address.parse()?,
                u16::try_from(target)?,
            )));
        }
    }
    Ok(Poll::Pending(format!("no endpoint for Service {service}")))
}

pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Sends `payload` through a connection to the echoing database and checks every byte comes back.
pub fn echo(mut conn: TcpStream, payload: &[u8]) -> anyhow::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut writer = conn.try_clone()?;
    let sent = payload.to_vec();
    let write = std::thread::spawn(move || writer.write_all(&sent));
    let mut back = vec![0u8; payload.len()];
    conn.read_exact(&mut back)?;
    write
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;
    anyhow::ensure!(back == payload, "the bytes that came back differ");
    Ok(())
}

/// Connects from the web side (namespace `a`) to `db:5432` as the Service says, and echoes
/// `len` bytes; retried until it works.
pub async fn web_reaches_db(w: &World, web_ns: &str, len: usize, seed: u64) -> anyhow::Result<()> {
    let payload = pattern(len, seed);
    until(
        "web reaches db through the Service",
        Duration::from_secs(90),
        || async {
            let addr = match resolve(&w.client, web_ns, "db", DB_PORT).await? {
                Poll::Ready(a) => a,
                Poll::Pending(why) => return Ok(Poll::Pending(why)),
            };
            let ns = w.net.a.clone();
            let payload = payload.clone();
            let result = tokio::task::spawn_blocking(move || {
                let conn = connect_in(&ns, addr)?;
                echo(conn, &payload)
            })
            .await?;
            Ok(match result {
                Ok(()) => Poll::Ready(()),
                Err(e) => Poll::Pending(format!("{addr}: {e:#}")),
            })
        },
    )
    .await
}

pub async fn established(
    w: &World,
    site: usize,
    role: TunnelRole,
    mode: TunnelMode,
) -> anyhow::Result<Tunnel> {
    until(
        &format!("site {site}'s {role:?} Tunnel established in {mode:?} mode"),
        Duration::from_secs(90),
        || async {
            let list = w.tunnels(site).list(&ListParams::default()).await?.items;
            let found = list.iter().find(|t| {
                t.spec.role == role
                    && t.spec.mode == mode
                    && t.status.as_ref().is_some_and(|s| s.established)
            });
            Ok(match found {
                Some(t) => Poll::Ready(t.clone()),
                None => Poll::Pending(format!(
                    "{:?}",
                    list.iter()
                        .map(|t| (&t.metadata.name, &t.status))
                        .collect::<Vec<_>>()
                )),
            })
        },
    )
    .await
}

impl World {
    /// Creates the manifest as deployment `dseq` and waits until it runs; returns the web
    /// lease's namespace.
    pub async fn deploy(&self, dseq: u64) -> anyhow::Result<String> {
        let sdl = crds::sdl::Sdl::parse(SDL)?;
        self.m
            .manifests()
            .create(
                &PostParams::default(),
                &manifest_of("overlay", &sdl, dseq, 3, Distribution::SendToAll),
            )
            .await?;
        until("Manifest Running", Duration::from_secs(150), || async {
            let st = self
                .m
                .manifests()
                .get("overlay")
                .await?
                .status
                .unwrap_or_default();
            Ok(if st.phase == Some(ManifestPhase::Running) {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{:?} {:?}", st.phase, st.groups))
            })
        })
        .await?;
        Ok(namespace_of(&self.lease(0, dseq).await?))
    }
}
