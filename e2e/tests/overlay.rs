//! The cross-provider overlay end to end: the devnet, the real control plane, two real providers
//! and their `akash-provider overlay` sidecars, each sidecar in its own network namespace with a
//! veth pair between them. The deployment puts `web` with one provider and `db` (a TCP echo
//! server standing in for a database, listening in the second namespace) with the other; `db`
//! lets `web` in on 5432. A client in the first namespace, standing in for the web pod, finds
//! `db` through the Service of that name in its lease namespace (Service → EndpointSlice, as
//! kube-proxy would) and talks to the database through the tunnel.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chain_client::Chain;
use crds::resources::{TunnelMode, TunnelRole};
use e2e::market::unique_dseq;
use e2e::netns::connect_in;
use e2e::overlay_world::*;
use e2e::wait::{Poll, until};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::ListParams;
use operator::overlay::client::ServerVerifier;
use operator::overlay::{
    OverlayError, TunnelClient, TunnelClientConfig, TunnelRequest, VerifiedTunnelPeer,
};

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
            w_ref.deploy(dseq).await?;
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

            // A source that is no pod of the lease (another lease's pod that found the port) is
            // cut off before anything is forwarded.
            let stranger_pod = until("db's endpoint", Duration::from_secs(60), || async {
                resolve(&w_ref.client, &namespace_of(&web_lease), "db", DB_PORT).await
            })
            .await?;
            let before = w_ref.db.accepted.load(Ordering::SeqCst);
            let ns = w_ref.net.a.clone();
            let cut = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
                let mut conn = e2e::netns::connect_in_from(
                    &ns,
                    SocketAddr::from(([127, 0, 0, 1], 0)),
                    stranger_pod,
                )?;
                conn.set_read_timeout(Some(Duration::from_secs(10)))?;
                let _ = std::io::Write::write_all(&mut conn, b"hello");
                let mut buf = [0u8; 8];
                Ok(conn.read(&mut buf).unwrap_or(0))
            })
            .await??;
            assert_eq!(
                cut, 0,
                "the connection from a stranger source must be closed"
            );
            assert_eq!(w_ref.db.accepted.load(Ordering::SeqCst), before);

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
            // The metrics are updated in the same pass as the status, just after it.
            until(
                "the bytes in the metrics",
                Duration::from_secs(15),
                || async {
                    let metrics = w_ref.sidecars[0].metrics().unwrap_or_default();
                    let line = metrics
                        .lines()
                        .find(|l| l.starts_with("akash_provider_overlay_tunnel_bytes_sent_total{"))
                        .unwrap_or_default()
                        .to_owned();
                    let value: f64 = line
                        .rsplit(' ')
                        .next()
                        .unwrap_or("0")
                        .parse()
                        .unwrap_or(0.0);
                    Ok(if value >= (1 << 20) as f64 {
                        Poll::Ready(())
                    } else {
                        Poll::Pending(line)
                    })
                },
            )
            .await?;

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
