//! The cross-provider overlay end to end: the devnet, the real control plane, two real providers
//! and their `akash-provider overlay` sidecars, each sidecar in its own network namespace with a
//! veth pair between them. The deployment puts `web` with one provider and `db` (a TCP echo
//! server standing in for a database, listening in the second namespace) with the other; `db`
//! lets `web` in on 5432. A client in the first namespace, standing in for the web pod, finds
//! `db` through the Service of that name in its lease namespace (Service → EndpointSlice, as
//! kube-proxy would) and talks to the database through the tunnel.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::Duration;

use chain_client::Chain;
use crds::resources::{Distribution, Lease, ManifestPhase, Tunnel, TunnelMode, TunnelRole};
use crds::sdl::names::{LeaseId, lease_namespace};
use e2e::market::unique_dseq;
use e2e::marketplace::{Marketplace, SiteSpec, manifest_of};
use e2e::netns::{EchoServer, NetPair, bind_in, connect_in};
use e2e::overlay::{OverlayOptions, OverlayProcess, apiserver_port, url_port};
use e2e::wait::{Poll, until};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, PostParams};
use operator::overlay::client::ServerVerifier;
use operator::overlay::{
    OverlayError, TunnelClient, TunnelClientConfig, TunnelRequest, VerifiedTunnelPeer,
};

const DB_PORT: u16 = 5432;
const OVERLAY_PORT: u16 = 8445;

/// `web` in placement `dc0` (site p0), `db` in `dc1` (site p1); `db` lets `web` in on 5432.
const SDL: &str = r#"
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
struct World {
    m: Marketplace,
    net: NetPair,
    sidecars: Vec<OverlayProcess>,
    db: EchoServer,
    client: kube::Client,
    /// The WireGuard interfaces of sides a and b (WireGuard mode).
    wireguard: Vec<String>,
}

impl World {
    async fn start(name: &str, wireguard: bool) -> anyhow::Result<Self> {
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
        let cluster = e2e::Cluster::shared().await?;
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
                        e2e::binaries::wireguard_go()?.display().to_string(),
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
            let (extra_args, env) = modes[site].clone();
            sidecars.push(OverlayProcess::start(
                cluster.kubeconfig(),
                &m.devnet,
                OverlayOptions {
                    netns: Some(ns.clone()),
                    namespace: m.sites[site].ns.name().to_owned(),
                    mnemonic: e2e::devnet::TEST_MNEMONICS[m_key(site)].to_owned(),
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
    async fn with_logs<T>(
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

    fn tunnels(&self, site: usize) -> Api<Tunnel> {
        self.m.sites[site].ns.api()
    }

    /// Site `site`'s lease of deployment `dseq`.
    async fn lease(&self, site: usize, dseq: u64) -> anyhow::Result<Lease> {
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
fn m_key(site: usize) -> usize {
    SiteSpec::nth(site, 1.0).key
}

fn namespace_of(lease: &Lease) -> String {
    let id = &lease.spec.lease_id;
    lease_namespace(&LeaseId {
        owner: id.owner.clone(),
        dseq: id.dseq,
        gseq: id.gseq,
        oseq: id.oseq,
        provider: id.provider.clone(),
    })
}

/// Where Service `service` port `port` in `ns` leads: its EndpointSlice's address and the
/// matching port, as kube-proxy would pick it.
async fn resolve(
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

fn pattern(len: usize, seed: u64) -> Vec<u8> {
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
fn echo(mut conn: TcpStream, payload: &[u8]) -> anyhow::Result<()> {
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
async fn web_reaches_db(w: &World, web_ns: &str, len: usize, seed: u64) -> anyhow::Result<()> {
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

async fn established(
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

/// A verifier that takes any server: the third party wants to be refused by the server, not
/// to refuse it.
struct AnyServer(TunnelRequest);

#[async_trait::async_trait]
impl ServerVerifier for AnyServer {
    async fn verify(&self, _: &[Vec<u8>]) -> Result<VerifiedTunnelPeer, OverlayError> {
        Ok(VerifiedTunnelPeer {
            provider: String::new(),
            provider_cert_serial: String::new(),
            claim: self.0.server_claim(),
            leaf_sha256_hex: String::new(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_mtls_mode_web_reaches_db_strangers_are_refused_restarts_recover_and_a_closed_lease_takes_it_down()
-> anyhow::Result<()> {
    scenario(
        World::start("ovl", false).await?,
        unique_dseq(62),
        TunnelMode::Mtls,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_wireguard_mode_web_reaches_db_strangers_are_refused_restarts_recover_and_a_closed_lease_takes_it_down()
-> anyhow::Result<()> {
    scenario(
        World::start("ovw", true).await?,
        unique_dseq(63),
        TunnelMode::WireGuard,
    )
    .await
}

/// The whole story in one mode: up, byte for byte, a stranger refused, both sidecars restarted,
/// the db lease closed.
async fn scenario(mut w: World, dseq: u64, mode: TunnelMode) -> anyhow::Result<()> {
    let w_ref = &w;
    let (web_ns, request) = w_ref
        .with_logs(async {
            let sdl = crds::sdl::Sdl::parse(SDL)?;
            w_ref
                .m
                .manifests()
                .create(
                    &PostParams::default(),
                    &manifest_of("overlay", &sdl, dseq, 3, Distribution::SendToAll),
                )
                .await?;
            until("Manifest Running", Duration::from_secs(150), || async {
                let st = w_ref
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
            let web_lease = w_ref.lease(0, dseq).await?;
            let db_lease = w_ref.lease(1, dseq).await?;
            assert_eq!(
                (web_lease.spec.lease_id.gseq, db_lease.spec.lease_id.gseq),
                (1, 2),
                "groups are numbered in placement-name order"
            );

            // Both ends up, each naming the other.
            let client = established(w_ref, 0, TunnelRole::Client, mode).await?;
            let server = established(w_ref, 1, TunnelRole::Server, mode).await?;
            assert_eq!(client.spec.peer_provider, w_ref.m.sites[1].address);
            assert_eq!(server.spec.peer_provider, w_ref.m.sites[0].address);
            assert_eq!(
                (
                    client.spec.local_service.as_str(),
                    client.spec.peer_service.as_str()
                ),
                ("web", "db")
            );
            assert_eq!(
                client.spec.peer_endpoint.as_deref(),
                Some(&*format!("{}:{OVERLAY_PORT}", w_ref.net.b_ip))
            );
            let (cs, ss) = (client.status.unwrap(), server.status.unwrap());
            assert!(cs.since.is_some() && ss.since.is_some());
            let (cfp, sfp) = (
                cs.peer_certificate_sha256.unwrap_or_default(),
                ss.peer_certificate_sha256.unwrap_or_default(),
            );
            assert_eq!((cfp.len(), sfp.len()), (64, 64), "peer fingerprints");
            assert_ne!(
                cfp, sfp,
                "each side sees the other's own tunnel certificate"
            );

            // The web pod's view: `db:5432` in its own namespace, 1 MiB byte for byte.
            let web_ns = namespace_of(&web_lease);
            let before = w_ref.db.accepted.load(Ordering::SeqCst);
            web_reaches_db(w_ref, &web_ns, 1 << 20, 1).await?;
            assert!(w_ref.db.accepted.load(Ordering::SeqCst) > before);
            if mode == TunnelMode::WireGuard {
                // The MiB went through the WireGuard interface, both ways.
                let (rx, tx) = e2e::overlay::wireguard_transfer(&w_ref.wireguard[0])?;
                assert!(
                    rx >= 1 << 20 && tx >= 1 << 20,
                    "WireGuard carried {rx} / {tx} bytes"
                );
            }
            let carried = until(
                "the bytes in the Tunnel status",
                Duration::from_secs(30),
                || async {
                    let t = w_ref
                        .tunnels(0)
                        .get(client.metadata.name.as_deref().unwrap())
                        .await?;
                    let st = t.status.unwrap_or_default();
                    Ok(
                        if st.bytes_sent >= 1 << 20 && st.bytes_received >= 1 << 20 {
                            Poll::Ready(st)
                        } else {
                            Poll::Pending(format!("{} / {}", st.bytes_sent, st.bytes_received))
                        },
                    )
                },
            )
            .await?;
            assert!(carried.established);
            let metrics = w_ref.sidecars[0].metrics().unwrap_or_default();
            let line = metrics
                .lines()
                .find(|l| l.starts_with("akash_provider_overlay_tunnel_bytes_sent_total{"))
                .unwrap_or_default();
            let value: f64 = line
                .rsplit(' ')
                .next()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0.0);
            assert!(value >= (1 << 20) as f64, "metrics: {line:?}");

            let id = &web_lease.spec.lease_id;
            let request = TunnelRequest {
                owner: id.owner.clone(),
                dseq,
                from_gseq: 1,
                from_service: "web".into(),
                to_gseq: 2,
                to_service: "db".into(),
                port: DB_PORT,
                probe: false,
                wireguard: None,
            };
            Ok((web_ns, request))
        })
        .await?;

    // A stranger: a registered provider with a valid on-chain certificate, and no lease in the
    // deployment, claims the web side of the pair. Refused; nothing reaches the database.
    let b_ns = w.net.b.clone();
    let exposed = w
        .net
        .expose(&b_ns, SocketAddr::new(w.net.b_ip.into(), OVERLAY_PORT))?;
    let w_ref = &w;
    w_ref
        .with_logs(async {
            let stranger = w_ref.m.sites[2].certificate(&w_ref.client).await?;
            let cert = operator::overlay::tunnel_cert::issue(
                &stranger.cert_pem,
                &stranger.key_pem,
                &request.client_claim(),
                Duration::from_secs(600),
            )?;
            let before = w_ref.db.accepted.load(Ordering::SeqCst);
            let intruder = TunnelClient::new(TunnelClientConfig {
                peer: exposed.to_string(),
                request: request.clone(),
                cert,
                verifier: std::sync::Arc::new(AnyServer(request.clone())),
                tunnel_key: "stranger".into(),
                counters: operator::overlay::Counters::new(),
            })?;
            for attempt in [
                intruder.probe(None).await.err(),
                intruder.open().await.err(),
            ] {
                let e = attempt.expect("the stranger must be refused");
                assert!(
                    matches!(&e, OverlayError::Refused(r) if r.contains("does not hold the lease")),
                    "{e}"
                );
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert_eq!(
                w_ref.db.accepted.load(Ordering::SeqCst),
                before,
                "nothing reached the database"
            );
            let metrics = w_ref.sidecars[1].metrics().unwrap_or_default();
            assert!(
                metrics.contains(
                    r#"akash_provider_overlay_tunnel_refusals_total{reason="not_lease_holder"}"#
                ),
                "{metrics}"
            );
            Ok(())
        })
        .await?;

    // Restarting either sidecar: the web pod keeps using `db:5432`.
    for site in [0, 1] {
        w.sidecars[site].restart()?;
        let w_ref = &w;
        w_ref
            .with_logs(async {
                web_reaches_db(w_ref, &web_ns, 64 << 10, 10 + site as u64).await?;
                established(w_ref, 0, TunnelRole::Client, mode).await?;
                established(w_ref, 1, TunnelRole::Server, mode).await?;
                Ok(())
            })
            .await?;
    }

    // Closing the db lease takes the tunnel down on both sides, open connections included. The
    // tenant controller is stopped first, so that it does not lease the group again.
    w.m.controller.kill();
    let w_ref = &w;
    w_ref
        .with_logs(async {
            let addr = match resolve(&w_ref.client, &web_ns, "db", DB_PORT).await? {
                Poll::Ready(a) => a,
                Poll::Pending(why) => anyhow::bail!("{why}"),
            };
            let ns = w_ref.net.a.clone();
            let mut open = tokio::task::spawn_blocking(move || connect_in(&ns, addr)).await??;
            echo(open.try_clone()?, b"still here")?;
            let db_lease = w_ref.lease(1, dseq).await?;
            let id = &db_lease.spec.lease_id;
            let close = chain_client::akash::market::v1beta5::MsgCloseLease {
                id: Some(chain_client::akash::market::v1::LeaseId {
                    owner: id.owner.clone(),
                    dseq: id.dseq,
                    gseq: id.gseq,
                    oseq: id.oseq,
                    provider: id.provider.clone(),
                    bseq: 0,
                }),
                reason: 0,
            };
            w_ref
                .m
                .tenant
                .broadcast(vec![chain_client::to_any(&close)])
                .await?;
            for site in [0, 1] {
                until(&format!("site {site}'s Tunnels gone"), Duration::from_secs(60), || async {
                    let list = w_ref.tunnels(site).list(&ListParams::default()).await?.items;
                    Ok(if list.is_empty() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending(format!("{} left", list.len()))
                    })
                })
                .await?;
            }
            until("the db Service gone from the web namespace", Duration::from_secs(30), || async {
                Ok(
                    match Api::<Service>::namespaced(w_ref.client.clone(), &web_ns)
                        .get_opt("db")
                        .await?
                    {
                        None => Poll::Ready(()),
                        Some(_) => Poll::Pending("still there".into()),
                    },
                )
            })
            .await?;
            let ended = tokio::task::spawn_blocking(move || {
                open.set_read_timeout(Some(Duration::from_secs(20)))?;
                let mut buf = [0u8; 16];
                Ok::<_, std::io::Error>(open.read(&mut buf))
            })
            .await??;
            let timed_out = matches!(&ended, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
            assert!(
                matches!(ended, Ok(0)) || (ended.is_err() && !timed_out),
                "the open connection must end: {ended:?}"
            );
            Ok(())
        })
        .await?;
    Ok(())
}
