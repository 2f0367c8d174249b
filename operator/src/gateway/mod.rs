//! The provider gateway: where tenants send manifests and read lease status.
//!
//! - REST over TLS 1.3 on `rest_addr` (the Go provider's `:8443` endpoints: `/version`,
//!   `/address`, `/status`, `PUT /deployment/{dseq}/manifest`, `/lease/{dseq}/{gseq}/{oseq}/status`
//!   and `/manifest`);
//! - gRPC over TLS 1.3 on `grpc_addr` (`:8444`): `akash.provider.v1.ProviderRPC/GetStatus` and
//!   `akash.provider.lease.v1.LeaseRPC/SendManifest` and `ServiceStatus`.
//!
//! The server certificate is the provider's on-chain certificate. Tenants authenticate with theirs
//! (mTLS), checked against the chain per request ([`auth`]). A manifest is accepted only by
//! [`accept::accept`]; only then are the `Lease` resources' `spec.manifest` written ([`source`]).
//!
//! Providers of one deployment pass its manifest to one another ([`peer`]):
//! `GET /deployment/{owner}/{dseq}/manifest` serves it to the deployment's other providers, and
//! the fetcher asks them for a manifest this provider lacks.

pub mod accept;
mod acceptor;
pub(crate) mod auth;
pub mod client;
pub(crate) mod endpoints;
pub mod events;
mod grpc;
mod grpc_auth;
#[cfg(any(test, feature = "test-support"))]
pub mod hostile;
pub(crate) mod hostnames;
pub mod jwt;
mod lease_index;
pub(crate) mod limits;
pub mod logs;
pub mod peer;
mod rest;
pub mod shell;
pub(crate) mod source;
pub(crate) mod stream_end;
pub mod tls;
pub mod wire_limits;
mod ws_stream;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::cert_events::CertificateChange;
use chain_client::Chain;
use chain_client::cert::VerifiedPeer;
use chain_client::chain::{DeploymentFilters, PageRequest};
use crds::resources::Lease;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use accept::{Rejection, accept};
pub(crate) use acceptor::poll_read_counted;
pub use limits::GatewayLimits;
pub use source::{KubeLeaseSource, LeaseSource, MemoryLeaseSource};
pub use tls::ServerIdentity;

/// Manifest groups received as protobuf (gRPC `SendManifest`) in the manifest JSON shape, which
/// is what the version hash covers.
pub fn manifest_from_proto(
    groups: &[chain_client::akash::manifest::v2beta3::Group],
) -> Vec<crds::sdl::ManifestGroup> {
    groups.iter().map(grpc::group).collect()
}

/// The JSON of [`manifest_from_proto`] (byte for byte what `serde_json::to_vec` makes of it),
/// converted one group at a time and refused as soon as it outgrows `max` bytes: many small
/// protobuf entries become far more JSON, and JSON larger than a `Lease` resource can store
/// would be refused later anyway.
pub fn manifest_json_from_proto(
    groups: &[chain_client::akash::manifest::v2beta3::Group],
    max: usize,
) -> Result<Vec<u8>, Rejection> {
    use std::io::Write;
    struct Capped {
        bytes: Vec<u8>,
        max: usize,
    }
    impl Write for Capped {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if self.bytes.len() + data.len() > self.max {
                return Err(std::io::Error::other("over the limit"));
            }
            self.bytes.extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut out = Capped {
        bytes: Vec::new(),
        max,
    };
    let too_large = |_| Rejection::JsonTooLarge { max };
    out.write_all(b"[").map_err(too_large)?;
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.write_all(b",").map_err(too_large)?;
        }
        serde_json::to_writer(&mut out, &grpc::group(group)).map_err(|e| {
            if e.is_io() {
                Rejection::JsonTooLarge { max }
            } else {
                Rejection::Malformed(format!("the manifest: {e}"))
            }
        })?;
    }
    out.write_all(b"]").map_err(too_large)?;
    Ok(out.bytes)
}

/// Where and how the gateway listens.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// REST, `0.0.0.0:8443` in production.
    pub rest_addr: SocketAddr,
    /// gRPC, `0.0.0.0:8444` in production.
    pub grpc_addr: SocketAddr,
    /// The largest request body (REST) or message (gRPC) accepted, such as 4 MiB.
    pub max_manifest_bytes: usize,
    /// This provider's account address: only its leases are considered.
    pub provider_address: String,
    /// The namespace of the `Lease` resources (for messages; the [`LeaseSource`] reads there).
    pub namespace: String,
    /// At most this many peers are served the manifest of one deployment at once.
    pub peer_serve_limit: usize,
    /// Fetch missing manifests from the deployments' other providers (`None`: only from tenants).
    pub peer_fetch: Option<peer::FetchConfig>,
    /// The hosts no manifest may name.
    pub hostnames: hostnames::HostnamePolicy,
    /// Connection limits, timeouts and certificate cache lifetimes.
    pub limits: GatewayLimits,
    /// The host tenants reach forwarded ports at (`--cluster-public-hostname`): in `/status`
    /// and in each lease's forwarded ports.
    pub cluster_public_hostname: String,
}

/// An authenticated caller: its account, and what it may do there.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) owner: String,
    pub(crate) access: jwt::Access,
}

/// What the gateway serves beyond leases and manifests, when the provider has it.
#[derive(Clone, Default)]
pub struct GatewayExtras {
    /// The leases' container logs.
    pub pod_logs: Option<Arc<dyn logs::PodLogs>>,
    /// The leases' Kubernetes events.
    pub lease_events: Option<Arc<dyn events::LeaseEvents>>,
    /// Commands in the leases' containers (`/shell`).
    pub pod_exec: Option<Arc<dyn shell::PodExec>>,
    /// The bid engine's latest status report (inventory, orders).
    pub status: Option<watch::Receiver<Option<Arc<crate::provider_status::StatusReport>>>>,
}

/// The default size limit of a request: 4 MiB.
pub const DEFAULT_MAX_MANIFEST_BYTES: usize = 4 << 20;

/// The running gateway.
pub struct GatewayHandle {
    /// The REST address bound (the real port when `rest_addr` had port 0).
    pub rest_addr: SocketAddr,
    /// The gRPC address bound.
    pub grpc_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl GatewayHandle {
    /// Stops accepting connections, lets requests in flight finish, and waits for the servers.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// Resolves when either server stopped on its own (it should not): for `run` to select on.
    pub(crate) async fn stopped(&mut self) {
        if self.tasks.is_empty() {
            return;
        }
        let (_, index, _) = futures::future::select_all(self.tasks.iter_mut()).await;
        self.tasks.remove(index);
    }
}

/// Starts the REST and gRPC servers of the gateway, with `extras` (logs, status).
pub async fn serve_with(
    config: GatewayConfig,
    tls: ServerIdentity,
    chain: Arc<dyn Chain>,
    leases: Arc<dyn LeaseSource>,
    extras: GatewayExtras,
) -> anyhow::Result<GatewayHandle> {
    let rest_tls = Arc::new(tls::server_config(&tls, &[b"http/1.1"])?);
    let grpc_tls = Arc::new(tls::server_config(&tls, &[b"h2"])?);
    let rest_listener = tokio::net::TcpListener::bind(config.rest_addr)
        .await
        .map_err(|e| anyhow::anyhow!("gateway REST: cannot listen on {}: {e}", config.rest_addr))?;
    let grpc_listener = tokio::net::TcpListener::bind(config.grpc_addr)
        .await
        .map_err(|e| anyhow::anyhow!("gateway gRPC: cannot listen on {}: {e}", config.grpc_addr))?;
    let rest_addr = rest_listener.local_addr()?;
    let grpc_addr = grpc_listener.local_addr()?;

    let fetch = config.peer_fetch.clone();
    let (stop, stopped) = watch::channel(false);
    let gateway = Arc::new(Gateway {
        pod_logs: extras.pod_logs,
        lease_events: extras.lease_events,
        pod_exec: extras.pod_exec,
        status: extras.status,
        stopping: stopped.clone(),
        auth: auth::Authenticator::new(
            chain.clone(),
            config.limits.cert_cache_ttl,
            config.limits.cert_refusal_ttl,
        ),
        // A token's issuer is an account of this provider's chain (the address prefix).
        tokens: jwt::TokenVerifier::new(
            chain.clone(),
            config
                .provider_address
                .rsplit_once('1')
                .map_or("akash", |(prefix, _)| prefix),
            config.limits.cert_refusal_ttl,
        ),
        serve_limit: peer::ServeLimit::new(config.peer_serve_limit),
        reserving: tokio::sync::Mutex::new(()),
        config,
        chain,
        leases,
    });
    // From the block after this one: a revocation seen after `serve` returns is never missed.
    let from = gateway.chain.latest_height().await.ok().map(|h| h + 1);
    let limits = &gateway.config.limits;
    let rest_incoming =
        acceptor::spawn_acceptor(rest_listener, rest_tls, limits, stopped.clone(), "rest");
    let grpc_incoming =
        acceptor::spawn_acceptor(grpc_listener, grpc_tls, limits, stopped.clone(), "grpc");
    let mut tasks = Vec::new();
    if let Some(fetch) = fetch {
        // The provider's certificate is also a client certificate: peers check it on chain.
        let identity = client::TenantIdentity {
            cert_pem: tls.cert_pem.clone(),
            key_pem: tls.key_pem.clone(),
        };
        tasks.push(tokio::spawn(peer::run_fetcher(
            gateway.clone(),
            identity,
            fetch,
            stopped.clone(),
        )));
    }
    tasks.push(tokio::spawn(follow_certificates(
        gateway.clone(),
        from,
        stopped.clone(),
    )));
    tasks.extend([
        tokio::spawn(rest::run(gateway.clone(), rest_incoming, stopped.clone())),
        tokio::spawn(grpc::run(gateway, grpc_incoming, stopped)),
    ]);
    tracing::info!(%rest_addr, %grpc_addr, "provider gateway listening");
    Ok(GatewayHandle {
        rest_addr,
        grpc_addr,
        stop,
        tasks,
    })
}

/// Ends the trust the gateway's certificate cache gives, as the chain's certificate events say.
async fn follow_certificates(
    gateway: Arc<Gateway>,
    from: Option<u64>,
    stop: watch::Receiver<bool>,
) {
    let chain = gateway.chain.clone();
    crate::cert_events::follow(chain, from, stop, |change| match change {
        CertificateChange::Revoked(owner) => gateway.auth.forget_owner(owner),
        CertificateChange::Published(owner) => gateway.auth.forget_refusals(owner),
        CertificateChange::Missed => gateway.auth.forget_all(),
    })
    .await;
}

/// What both servers share.
pub(crate) struct Gateway {
    config: GatewayConfig,
    chain: Arc<dyn Chain>,
    leases: Arc<dyn LeaseSource>,
    auth: auth::Authenticator,
    /// Checks tenants' tokens (JWT).
    tokens: jwt::TokenVerifier,
    serve_limit: peer::ServeLimit,
    /// Held from reading the hosts leases hold to writing a manifest's: one at a time.
    reserving: tokio::sync::Mutex<()>,
    /// The leases' container logs (`None`: not served).
    pod_logs: Option<Arc<dyn logs::PodLogs>>,
    /// The leases' Kubernetes events (`None`: not served).
    lease_events: Option<Arc<dyn events::LeaseEvents>>,
    /// Commands in the leases' containers (`None`: not served).
    pod_exec: Option<Arc<dyn shell::PodExec>>,
    /// The bid engine's latest status report (`None`: inventory not reported).
    status: Option<watch::Receiver<Option<Arc<crate::provider_status::StatusReport>>>>,
    /// Turns true when the gateway stops: long-lived streams end then.
    stopping: watch::Receiver<bool>,
}

impl Gateway {
    /// What ends a stream of `lease`: the gateway stopping, or the lease closing.
    pub(crate) fn stream_end(&self, lease: &Lease) -> stream_end::StreamEnd {
        stream_end::StreamEnd::new(self.stopping.clone(), self.leases.clone(), lease)
    }

    /// The bid engine's latest report (empty until its first inventory refresh).
    pub(crate) fn status_report(&self) -> crate::provider_status::StatusReport {
        self.status
            .as_ref()
            .and_then(|r| r.borrow().as_deref().cloned())
            .unwrap_or_default()
    }
}

/// How long a manifest for a deployment without a known lease waits for one to appear.
const UNKNOWN_LEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

fn unavailable(e: impl std::fmt::Display) -> Rejection {
    Rejection::Unavailable(e.to_string())
}

impl Gateway {
    /// The leases of deployment `dseq` this provider holds and still runs, of any owner.
    async fn live_leases(&self, dseq: u64) -> Result<Vec<Lease>, Rejection> {
        // Listed in any case (the answer must not depend on how far the watch has got), but a
        // lease the gateway's watch does not know yet is waited for first: a tenant sending
        // its manifest again and again until its lease exists is slowed to about one LIST a
        // second, and answered as soon as the lease appears.
        self.leases.wait_for_dseq(dseq, UNKNOWN_LEASE_WAIT).await;
        Ok(self
            .leases
            .leases(None, dseq)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|l| {
                source::is_live(l) && l.spec.lease_id.provider == self.config.provider_address
            })
            .collect())
    }

    /// Deployment (`owner`, `dseq`) as the chain holds it.
    async fn deployment(
        &self,
        owner: &str,
        dseq: u64,
    ) -> Result<Option<chain_client::chain::QueryDeploymentResponse>, Rejection> {
        Ok(self
            .chain
            .deployments(
                DeploymentFilters {
                    owner: owner.to_owned(),
                    dseq,
                    state: String::new(),
                },
                PageRequest::first(1),
            )
            .await
            .map_err(|e| unavailable(format!("cannot read deployment {dseq} on chain: {e}")))?
            .items
            .into_iter()
            .find(|d| {
                d.deployment
                    .as_ref()
                    .and_then(|d| d.id.as_ref())
                    .is_some_and(|id| id.owner == owner && id.dseq == dseq)
            }))
    }

    /// Receives a manifest `body` for deployment `dseq` from its authenticated `owner`; writes it
    /// to the leases it is for when it is accepted (a body over `max` bytes is not). Returns how
    /// many leases got it.
    async fn send_manifest(
        &self,
        owner: &str,
        dseq: u64,
        body: &[u8],
        max: usize,
    ) -> Result<usize, Rejection> {
        if body.len() > max {
            return Err(Rejection::TooLarge { max });
        }
        let leases = self.live_leases(dseq).await?;
        // Deployment numbers are per owner (usually a block height), so another tenant may have
        // one of the same number here. The sender's own deployment decides; only when the sender
        // has none is a lease holder's looked up, so that a stranger is told it is not theirs.
        let mut deployment = self.deployment(owner, dseq).await?;
        if deployment.is_none()
            && let Some(other) = leases
                .iter()
                .map(|l| &l.spec.lease_id.owner)
                .find(|o| **o != owner)
        {
            deployment = self.deployment(other, dseq).await?;
        }
        let from = "the tenant";
        self.accept_and_write((owner, dseq), body, max, deployment.as_ref(), &leases, from)
            .await
    }

    /// Receives the manifest `body` of deployment (`owner`, `dseq`) that `from` (a peer) served,
    /// exactly as if its tenant had sent it.
    pub(crate) async fn receive(
        &self,
        owner: &str,
        dseq: u64,
        body: &[u8],
        deployment: Option<&chain_client::chain::QueryDeploymentResponse>,
        from: &str,
    ) -> Result<usize, Rejection> {
        let leases = self.live_leases(dseq).await?;
        let max = self.config.max_manifest_bytes;
        self.accept_and_write((owner, dseq), body, max, deployment, &leases, from)
            .await
    }

    /// [`accept`], then every accepted manifest written, with the whole manifest beside it.
    async fn accept_and_write(
        &self,
        (owner, dseq): (&str, u64),
        body: &[u8],
        max: usize,
        deployment: Option<&chain_client::chain::QueryDeploymentResponse>,
        leases: &[Lease],
        from: &str,
    ) -> Result<usize, Rejection> {
        let mut accepted = accept(owner, dseq, body, max, deployment, leases)?;
        // Valid JSON (accept parsed it), so UTF-8.
        let whole = String::from_utf8_lossy(body);
        // Reservations are decided one at a time, so that two manifests never both get a host.
        // One that names no host or endpoint, for leases that hold none, takes nothing and gives
        // nothing up: it does not wait for the others.
        let claims = accepted.iter().any(|(_, m)| {
            !hostnames::named_hosts(&m.group).is_empty()
                || !endpoints::named_endpoints(&m.group).is_empty()
        }) || leases.iter().any(|l| {
            !hostnames::held_hosts(l).is_empty() || !endpoints::held_endpoints(l).is_empty()
        });
        let _reserving = if claims {
            Some(self.reserving.lock().await)
        } else {
            None
        };
        // What every lease holds, from memory; the leases just listed are as fresh or fresher.
        let held = self.leases.holdings().await.map_err(unavailable)?;
        let all = lease_index::with_listed(held, leases);
        let releases = hostnames::reserve(&mut accepted, &all, &self.config.hostnames)?;
        endpoints::reserve(&mut accepted, &all);
        accept::check_storable(&accepted, whole.len())?;
        // The new holders first: a crash before the releases leaves a host with two leases of
        // one owner (the tenant's retry releases it), never with none or with a stranger.
        for (name, manifest) in &accepted {
            let lease = leases
                .iter()
                .find(|l| kube::ResourceExt::name_any(*l) == *name)
                .ok_or_else(|| unavailable(format!("Lease {name} is no longer listed")))?;
            self.leases
                .write_manifest(lease, manifest, &whole)
                .await
                .map_err(unavailable)?;
            tracing::info!(lease = name, version = %manifest.version, group = %manifest.group.name, from, "manifest accepted");
        }
        for (name, keep) in &releases {
            self.leases
                .write_hostnames(name, keep)
                .await
                .map_err(unavailable)?;
            tracing::info!(lease = name, keeps = ?keep, "hosts moved to another deployment of the same owner");
        }
        Ok(accepted.len())
    }

    /// The providers holding an active lease on deployment (`owner`, `dseq`), from the chain.
    async fn lease_holders(&self, owner: &str, dseq: u64) -> Result<Vec<String>, Rejection> {
        use chain_client::akash::market::v1 as mv1;
        let all = chain_client::chain::deployment_leases(self.chain.as_ref(), owner, dseq)
            .await
            .map_err(|e| {
                unavailable(format!(
                    "cannot read the leases of {owner}/{dseq} on chain: {e}"
                ))
            })?;
        let mut holders: Vec<String> = all
            .into_iter()
            .filter_map(|r| r.lease)
            .filter(|l| {
                l.state == mv1::lease::State::Active as i32
                    && l.id
                        .as_ref()
                        .is_some_and(|id| id.owner == owner && id.dseq == dseq)
            })
            .filter_map(|l| l.id.map(|id| id.provider))
            .collect();
        holders.sort();
        holders.dedup();
        Ok(holders)
    }

    /// The manifest of deployment (`owner`, `dseq`) for the authenticated `peer`, with the permit
    /// that counts it among the peers being served (hold it until the answer is sent).
    async fn peer_manifest(
        &self,
        peer: &VerifiedPeer,
        owner: &str,
        dseq: u64,
    ) -> Result<(String, tokio::sync::OwnedSemaphorePermit), Rejection> {
        let me = self.config.provider_address.as_str();
        // The tenant is refused before anything is looked up.
        let holders = if peer.owner == owner {
            Vec::new()
        } else {
            self.lease_holders(owner, dseq).await?
        };
        let participants = holders.contains(&peer.owner) && holders.iter().any(|h| h == me);
        let (deployment, local) = if participants {
            let local = self
                .leases
                .leases(Some(owner), dseq)
                .await
                .map_err(unavailable)?;
            (self.deployment(owner, dseq).await?, local)
        } else {
            (None, Vec::new())
        };
        let lease = peer::authorize(
            &peer.owner,
            me,
            owner,
            dseq,
            &holders,
            deployment.as_ref(),
            &local,
        )?;
        let json = self
            .leases
            .whole_manifest(lease)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| {
                Rejection::NotFound(format!(
                    "this provider does not have the manifest of deployment {owner}/{dseq} (yet)"
                ))
            })?;
        let permit = self.serve_limit.try_acquire(owner, dseq)?;
        tracing::info!(peer = %peer.owner, %owner, dseq, bytes = json.len(), "manifest served to peer");
        Ok((json, permit))
    }

    /// `POST /hostname/migrate`: moves `hosts` to `caller`'s live lease of deployment `dseq`,
    /// group `gseq`, from its other leases here; never from another owner's. Returns the hosts
    /// moved.
    pub(crate) async fn migrate_hostnames(
        &self,
        caller: &Caller,
        hosts: &[String],
        (dseq, gseq): (u64, u32),
    ) -> Result<Vec<String>, Rejection> {
        let (_reserving, all) = self
            .begin_migration(
                caller,
                dseq,
                jwt::Scope::HostnameMigrate,
                hosts,
                "hostnames",
            )
            .await?;
        let destination = self.migration_destination(&all, caller, (dseq, gseq))?;
        let (held, releases) = hostnames::migrate(destination, hosts, &all)?;
        // The destination first: a crash between the writes leaves a host with two leases of
        // one owner (a retry settles it), never with none.
        let name = kube::ResourceExt::name_any(destination);
        self.leases
            .write_hostnames(&name, &held)
            .await
            .map_err(unavailable)?;
        for (holder, keep) in &releases {
            self.leases
                .write_hostnames(holder, keep)
                .await
                .map_err(unavailable)?;
        }
        tracing::info!(lease = name, ?hosts, from = ?releases.iter().map(|r| &r.0).collect::<Vec<_>>(), "hostnames migrated");
        Ok(hosts.to_vec())
    }

    /// `POST /endpoint/migrate`: the caller's leased-IP `endpoints` move to its live lease
    /// `dseq/gseq` here, each with the address it had; the leases that held them give them up
    /// (their load-balancer Services go, and the address follows to the destination's).
    pub(crate) async fn migrate_endpoints(
        &self,
        caller: &Caller,
        endpoints: &[String],
        (dseq, gseq): (u64, u32),
    ) -> Result<Vec<String>, Rejection> {
        let (_reserving, all) = self
            .begin_migration(caller, dseq, jwt::Scope::IpMigrate, endpoints, "endpoints")
            .await?;
        let destination = self.migration_destination(&all, caller, (dseq, gseq))?;
        let migration = endpoints::migrate(destination, endpoints, &all)?;
        // The destination first: a crash between the writes leaves an endpoint with two leases
        // of one owner (a retry settles it), never with none.
        let name = kube::ResourceExt::name_any(destination);
        let addresses = migration
            .addresses
            .iter()
            .map(|(e, ip)| (e.clone(), Some(ip.clone())))
            .collect();
        self.leases
            .write_ip_endpoints(&name, &migration.held, &addresses)
            .await
            .map_err(unavailable)?;
        for (holder, keep) in &migration.releases {
            let dropped = all
                .iter()
                .find(|l| kube::ResourceExt::name_any(*l) == *holder)
                .and_then(|l| l.spec.manifest.as_ref())
                .map(|m| {
                    m.ip_addresses
                        .keys()
                        .filter(|e| !keep.contains(*e))
                        .map(|e| (e.clone(), None))
                        .collect()
                })
                .unwrap_or_default();
            self.leases
                .write_ip_endpoints(holder, keep, &dropped)
                .await
                .map_err(unavailable)?;
        }
        tracing::info!(lease = name, ?endpoints, addresses = ?migration.addresses, from = ?migration.releases.iter().map(|r| &r.0).collect::<Vec<_>>(), "IP endpoints migrated");
        Ok(endpoints.to_vec())
    }

    /// What both migrations check before they move anything: the caller's `scope` on deployment
    /// `dseq`, and a non-empty list of `what` (the body's `<what>_to_migrate`). Then every lease,
    /// read under the reservation lock: the guard returned holds it until the writes are done.
    async fn begin_migration(
        &self,
        caller: &Caller,
        dseq: u64,
        scope: jwt::Scope,
        moving: &[String],
        what: &str,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, Vec<Lease>), Rejection> {
        self.permit(caller, jwt::Target::Deployment { dseq }, Some(scope))?;
        if moving.is_empty() {
            return Err(Rejection::Malformed(format!(
                "{what}_to_migrate: no {what} to migrate"
            )));
        }
        let reserving = self.reserving.lock().await;
        let all = self.leases.all().await.map_err(unavailable)?;
        Ok((reserving, all))
    }

    /// The caller's live lease `dseq/gseq` on this provider, where a migration moves things.
    fn migration_destination<'a>(
        &self,
        all: &'a [Lease],
        caller: &Caller,
        (dseq, gseq): (u64, u32),
    ) -> Result<&'a Lease, Rejection> {
        all.iter()
            .find(|l| {
                let id = &l.spec.lease_id;
                id.owner == caller.owner
                    && id.dseq == dseq
                    && id.gseq == gseq
                    && id.provider == self.config.provider_address
                    && source::is_live(l)
            })
            .ok_or_else(|| {
                Rejection::Malformed(format!(
                    "destination deployment does not exist: {} holds no live lease of {dseq}/{gseq} here",
                    caller.owner
                ))
            })
    }

    /// The lease `dseq/gseq/oseq` of this provider, if the authenticated `owner` owns it.
    async fn owned_lease(
        &self,
        owner: &str,
        dseq: u64,
        gseq: u32,
        oseq: u32,
    ) -> Result<Lease, Rejection> {
        let leases = self
            .leases
            .leases(None, dseq)
            .await
            .map_err(unavailable)?
            .into_iter()
            .filter(|l| {
                let id = &l.spec.lease_id;
                id.gseq == gseq && id.oseq == oseq && id.provider == self.config.provider_address
            })
            .collect::<Vec<_>>();
        if let Some(lease) = leases.iter().find(|l| l.spec.lease_id.owner == owner) {
            return Ok(lease.clone());
        }
        if leases.is_empty() {
            Err(Rejection::NotFound(format!(
                "this provider holds no lease {dseq}/{gseq}/{oseq} of {}",
                owner
            )))
        } else {
            Err(Rejection::Forbidden(format!(
                "lease {dseq}/{gseq}/{oseq} is not {}'s; only its owner may read it",
                owner
            )))
        }
    }

    /// Who calls: the account of the token in `authorization` (what it grants), or of the
    /// client certificate (everything its account owns). Both at once are refused, as the Go
    /// provider refuses them.
    pub(crate) async fn caller(
        &self,
        certs: &[Vec<u8>],
        authorization: Option<&str>,
    ) -> Result<Caller, Rejection> {
        match authorization.filter(|h| !h.is_empty()) {
            Some(_) if !certs.is_empty() => Err(Rejection::Malformed(
                "ambiguous authentication: a client certificate and a token (JWT) at once".into(),
            )),
            Some(header) => {
                let claims = self.tokens.verify(jwt::bearer(header)?).await?;
                Ok(Caller {
                    owner: claims.issuer,
                    access: claims.access,
                })
            }
            None => {
                let peer = self.auth.authenticate(certs).await?;
                Ok(Caller {
                    owner: peer.owner,
                    access: jwt::Access::Full,
                })
            }
        }
    }

    /// Refuses (403) what `caller`'s access does not reach at this provider, before anything
    /// about `target` is looked up.
    pub(crate) fn permit(
        &self,
        caller: &Caller,
        target: jwt::Target,
        scope: Option<jwt::Scope>,
    ) -> Result<(), Rejection> {
        if caller
            .access
            .allows(&self.config.provider_address, target, scope)
        {
            return Ok(());
        }
        let what = scope.map_or("this lease".to_owned(), |s| {
            format!("scope {:?}", s.as_str())
        });
        Err(Rejection::Forbidden(format!(
            "unauthorized access: the token does not grant {what} on {target:?} at this provider"
        )))
    }

    /// The lease `dseq/gseq/oseq` for `caller`, if its access reaches it with `scope` and it
    /// owns it.
    pub(crate) async fn lease_for(
        &self,
        caller: &Caller,
        (dseq, gseq, oseq): (u64, u32, u32),
        scope: Option<jwt::Scope>,
    ) -> Result<Lease, Rejection> {
        self.permit(caller, jwt::Target::Lease { dseq, gseq, oseq }, scope)?;
        self.owned_lease(&caller.owner, dseq, gseq, oseq).await
    }

    /// (leases held and live, of which with a manifest), from memory.
    async fn counts(&self) -> Result<(usize, usize), Rejection> {
        let counts = self.leases.counts().await.map_err(unavailable)?;
        Ok((counts.live, counts.with_manifest))
    }
}

/// One service of a lease as the gateway reports it: (name, ready, total, uris, forwarded ports).
pub(crate) fn services_of(lease: &Lease) -> Vec<crds::resources::ServiceStatus> {
    let reported = lease
        .status
        .as_ref()
        .map(|s| s.services.clone())
        .unwrap_or_default();
    let Some(manifest) = &lease.spec.manifest else {
        return reported;
    };
    // Every service of the manifest, with what the reconciler reported of it (nothing yet: 0 ready).
    manifest
        .group
        .services
        .iter()
        .map(|s| {
            reported
                .iter()
                .find(|r| r.name == s.name)
                .cloned()
                .unwrap_or_else(|| crds::resources::ServiceStatus {
                    name: s.name.clone(),
                    ready_replicas: 0,
                    replicas: s.count as i32,
                    available_replicas: 0,
                    updated_replicas: 0,
                    uris: Vec::new(),
                    forwarded_ports: Vec::new(),
                    ips: Vec::new(),
                })
        })
        .collect()
}

/// A forwarded port `externalPort:port/proto` of the Lease status, parsed.
pub(crate) fn parse_forwarded(text: &str) -> Option<(u32, u32, String)> {
    let (external, rest) = text.split_once(':')?;
    let (port, proto) = rest.split_once('/').unwrap_or((rest, "TCP"));
    Some((external.parse().ok()?, port.parse().ok()?, proto.to_owned()))
}
