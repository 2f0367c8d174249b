//! The gateway's REST endpoints (the Go provider's `gateway/rest/router.go`), an axum router served
//! by hyper over the TLS connections of [`super::acceptor::spawn_acceptor`]. The client's
//! certificates ride along with each request as [`Peer`] (`ConnectInfo`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http_body_util::BodyExt;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tower::Service as _;

use super::acceptor::Accepted;
use super::{Gateway, Rejection, jwt};

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub(super) struct Peer {
    pub remote: SocketAddr,
    /// The client's certificates, DER, leaf first (empty: none presented).
    pub certs: Arc<Vec<Vec<u8>>>,
}

/// Serves each handshaken connection with HTTP/1.1 until `stop`, then lets the requests in flight
/// finish. A request's head must arrive within the header timeout of the connection waiting for
/// one (new, or idle between requests), or the connection is closed.
pub(super) async fn run(
    gateway: Arc<Gateway>,
    mut incoming: mpsc::Receiver<Accepted>,
    mut stop: watch::Receiver<bool>,
) {
    let header_timeout = gateway.config.limits.header_timeout;
    let app = router(gateway);
    // Every connection's task holds a sender: when all are gone, every connection is closed.
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    loop {
        let accepted = tokio::select! {
            () = super::tls::stopped(&mut stop) => break,
            accepted = incoming.recv() => match accepted {
                Some(accepted) => accepted,
                None => break,
            },
        };
        let peer = Peer {
            remote: accepted.remote,
            certs: accepted.certs,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer.clone()));
            let mut app = app.clone();
            async move { app.call(request.map(axum::body::Body::new)).await }
        });
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        let (mut stop, open) = (stop.clone(), open.clone());
        tokio::spawn(async move {
            let _open = open;
            // Upgrades: the logs' websocket.
            let mut conn = std::pin::pin!(
                http1
                    .serve_connection(TokioIo::new(accepted.stream), service)
                    .with_upgrades()
            );
            let served = tokio::select! {
                served = conn.as_mut() => served,
                () = super::tls::stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = served {
                tracing::debug!(remote = %accepted.remote, error = %e, "gateway REST connection ended");
            }
        });
    }
    drop(open);
    let _ = all_closed.recv().await;
}

pub(super) fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/address", get(address))
        .route("/status", get(status))
        .route("/deployment/{dseq}/manifest", put(send_manifest))
        .route("/deployment/{owner}/{dseq}/manifest", get(peer_manifest))
        .route("/lease/{dseq}/{gseq}/{oseq}/status", get(lease_status))
        .route("/lease/{dseq}/{gseq}/{oseq}/manifest", get(lease_manifest))
        .route("/lease/{dseq}/{gseq}/{oseq}/logs", get(lease_logs))
        .route("/lease/{dseq}/{gseq}/{oseq}/kubeevents", get(lease_events))
        .route("/lease/{dseq}/{gseq}/{oseq}/shell", get(lease_shell))
        .route("/hostname/migrate", post(migrate_hostnames))
        .route("/endpoint/migrate", post(migrate_endpoints))
        .route(
            "/lease/{dseq}/{gseq}/{oseq}/service/{service}/status",
            get(service_status),
        )
        .layer(axum::middleware::from_fn(deadline))
        .with_state(gateway)
}

/// How long one request may take, reading its body included.
pub(super) const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn deadline(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request took longer than {}s\n",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
            .into_response(),
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, format!("{self}\n")).into_response()
    }
}

async fn version() -> Response {
    axum::Json(json!({
        "akash": {
            "name": "akash-provider",
            "server_name": "akash-provider",
            "version": env!("CARGO_PKG_VERSION"),
        }
    }))
    .into_response()
}

async fn address(State(gateway): State<Arc<Gateway>>) -> Response {
    axum::Json(json!({ "address": gateway.config.provider_address })).into_response()
}

/// The Go provider's `ProviderStatus` with `address`: leases, inventory (per node, per storage
/// class, active and pending reservations), orders in hand, manifests, the public hostname.
async fn status(State(gateway): State<Arc<Gateway>>) -> Result<Response, Rejection> {
    let (leases, deployments) = gateway.counts().await?;
    let report = gateway.status_report();
    let mut body = json!({
        "cluster": { "leases": leases, "inventory": report.inventory },
        "bidengine": { "orders": report.orders },
        "manifest": { "deployments": deployments },
        "address": gateway.config.provider_address,
    });
    if !gateway.config.cluster_public_hostname.is_empty() {
        body["cluster_public_hostname"] = json!(gateway.config.cluster_public_hostname);
    }
    Ok(axum::Json(body).into_response())
}

fn path_number<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, Rejection> {
    text.parse()
        .map_err(|_| Rejection::Malformed(format!("{what} {text:?} is not a number")))
}

async fn send_manifest(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path(dseq): Path<String>,
    request: axum::extract::Request,
) -> Result<Response, Rejection> {
    let result = async {
        let dseq: u64 = path_number("dseq", &dseq)?;
        // Who sends it, and whether it may, is known before a byte of the body is read.
        let sender = gateway
            .caller(&peer.certs, authorization(request.headers()))
            .await?;
        gateway.permit(
            &sender,
            jwt::Target::Deployment { dseq },
            Some(jwt::Scope::SendManifest),
        )?;
        let max = gateway.config.max_manifest_bytes;
        let body = read_body(request, max).await?;
        gateway.send_manifest(&sender.owner, dseq, &body, max).await
    };
    match result.await {
        Ok(_) => Ok(StatusCode::OK.into_response()),
        Err(e) => {
            tracing::info!(remote = %peer.remote, dseq = %dseq, error = %e, "manifest rejected");
            Err(e)
        }
    }
}

/// At most `max` bytes of the request's body; a body that says or turns out to be larger is
/// refused. A client that asked `Expect: 100-continue` is refused before it sends a byte; one
/// that sends its body regardless has the rest of it (up to [`DRAIN_LIMIT`]) read and dropped
/// first, so that it can read the refusal instead of a broken pipe.
async fn read_body(request: axum::extract::Request, max: usize) -> Result<Bytes, Rejection> {
    let headers = request.headers();
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let waits_for_continue = headers
        .get(axum::http::header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if declared.is_some_and(|n| n > max as u64) {
        if !waits_for_continue && declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            drain(request.into_body(), DRAIN_LIMIT).await;
        }
        return Err(Rejection::TooLarge { max });
    }
    let mut body = request.into_body();
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Rejection::Malformed(format!("reading the body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if collected.len() + data.len() > max {
            drain(
                body,
                DRAIN_LIMIT.saturating_sub((collected.len() + data.len()) as u64),
            )
            .await;
            return Err(Rejection::TooLarge { max });
        }
        collected.extend_from_slice(&data);
    }
    Ok(Bytes::from(collected))
}

/// How much of a too-large body is read and dropped so that its sender sees the 413; a body
/// larger than this is cut off (the sender may see the connection close instead).
const DRAIN_LIMIT: u64 = 16 << 20;

/// Reads and drops up to `limit` more bytes of `body` (errors end it: the answer is a refusal).
async fn drain(mut body: axum::body::Body, limit: u64) {
    let mut read = 0u64;
    while read < limit {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

/// A deployment's manifest for one of its other providers (peer-to-peer distribution).
async fn peer_manifest(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    Path((owner, dseq)): Path<(String, String)>,
) -> Result<Response, Rejection> {
    let dseq: u64 = path_number("dseq", &dseq)?;
    let served = async {
        let requester = gateway.auth.authenticate(&peer.certs).await?;
        gateway.peer_manifest(&requester, &owner, dseq).await
    };
    match served.await {
        Ok((json, permit)) => {
            // The permit goes with the body: the peer counts as served until it was sent.
            let whole = Bytes::from(json);
            let chunks: Vec<Bytes> = (0..whole.len())
                .step_by(64 << 10)
                .map(|at| whole.slice(at..whole.len().min(at + (64 << 10))))
                .collect();
            let stream = futures::stream::iter(chunks.into_iter().map(move |chunk| {
                let _held = &permit;
                Ok::<_, std::convert::Infallible>(chunk)
            }));
            Ok((
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                axum::body::Body::from_stream(stream),
            )
                .into_response())
        }
        Err(e) => {
            tracing::info!(remote = %peer.remote, %owner, dseq, error = %e, "manifest not served to peer");
            Err(e)
        }
    }
}

type LeasePath = Path<(String, String, String)>;

/// The `Authorization` header, if any (one that is not text is passed on as such, to be refused).
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// The lease of the path for the caller (certificate or token), if it owns it and its access
/// reaches it with `scope`.
async fn lease_of(
    gateway: &Gateway,
    peer: &Peer,
    headers: &HeaderMap,
    (dseq, gseq, oseq): (String, String, String),
    scope: Option<jwt::Scope>,
) -> Result<crds::resources::Lease, Rejection> {
    let dseq: u64 = path_number("dseq", &dseq)?;
    let gseq: u32 = path_number("gseq", &gseq)?;
    let oseq: u32 = path_number("oseq", &oseq)?;
    let caller = gateway.caller(&peer.certs, authorization(headers)).await?;
    gateway.lease_for(&caller, (dseq, gseq, oseq), scope).await
}

/// What every `/lease/{dseq}/{gseq}/{oseq}/…` route extracts, in the order its handlers took
/// them one by one before: the gateway, the caller's connection, the headers, the lease's path.
struct LeaseRequest {
    gateway: Arc<Gateway>,
    peer: Peer,
    headers: HeaderMap,
    path: (String, String, String),
}

impl FromRequestParts<Arc<Gateway>> for LeaseRequest {
    /// As each extractor answers on its own.
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        gateway: &Arc<Gateway>,
    ) -> Result<Self, Response> {
        let ConnectInfo(peer) = ConnectInfo::<Peer>::from_request_parts(parts, gateway)
            .await
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let Path(path) = LeasePath::from_request_parts(parts, gateway)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            gateway: gateway.clone(),
            peer,
            headers,
            path,
        })
    }
}

impl LeaseRequest {
    /// The lease of the path for the caller, if it owns it and its access reaches it with
    /// `scope`.
    async fn lease(&self, scope: Option<jwt::Scope>) -> Result<crds::resources::Lease, Rejection> {
        let path = self.path.clone();
        lease_of(&self.gateway, &self.peer, &self.headers, path, scope).await
    }

    /// What a lease's stream (logs, events, shell) needs before the upgrade: the lease for the
    /// caller with `scope`, its namespace, and the end that stops the stream.
    async fn stream(
        &self,
        scope: jwt::Scope,
    ) -> Result<(crds::resources::Lease, String, super::stream_end::StreamEnd), Rejection> {
        let lease = self.lease(Some(scope)).await?;
        let namespace = lease.spec.lease_id.namespace();
        let end = self.gateway.stream_end(&lease);
        Ok((lease, namespace, end))
    }
}

/// The source that serves a stream, if this provider has one; else `Unavailable`: "this
/// provider does not `what`".
fn served<S: ?Sized>(source: &Option<Arc<S>>, what: &str) -> Result<Arc<S>, Rejection> {
    source
        .clone()
        .ok_or_else(|| Rejection::Unavailable(format!("this provider does not {what}")))
}

async fn lease_status(request: LeaseRequest) -> Result<Response, Rejection> {
    let lease = request.lease(Some(jwt::Scope::Status)).await?;
    Ok(axum::Json(lease_status_json(
        &lease,
        &request.gateway.config.cluster_public_hostname,
    ))
    .into_response())
}

/// `GET /lease/{dseq}/{gseq}/{oseq}/service/{service}/status`: one service's status, as in
/// the lease's (the Go provider's `ServiceStatus`).
async fn service_status(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Path((dseq, gseq, oseq, service)): Path<(String, String, String, String)>,
) -> Result<Response, Rejection> {
    // As in the Go provider, the lease alone: no scope.
    let lease = lease_of(&gateway, &peer, &headers, (dseq, gseq, oseq), None).await?;
    let all = lease_status_json(&lease, &gateway.config.cluster_public_hostname);
    match all["services"].get(&service) {
        Some(status) => Ok(axum::Json(status.clone()).into_response()),
        None => Err(Rejection::NotFound(format!(
            "lease {} has no service {service:?}",
            lease.spec.lease_id
        ))),
    }
}

/// The Go provider's `LeaseStatus` JSON: `services` by name (`cluster/types/v1beta3`
/// `ServiceStatus`), `forwarded_ports` by service, `ips` by service.
pub(crate) fn lease_status_json(
    lease: &crds::resources::Lease,
    public_hostname: &str,
) -> serde_json::Value {
    let mut services = BTreeMap::new();
    let mut forwarded = BTreeMap::new();
    let mut ips = BTreeMap::new();
    let generation = lease
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or_default();
    for s in super::services_of(lease) {
        services.insert(
            s.name.clone(),
            json!({
                "name": s.name,
                "available": s.available_replicas,
                "total": s.replicas,
                "uris": s.uris,
                "observed_generation": generation,
                "replicas": s.replicas,
                "updated_replicas": s.updated_replicas,
                "ready_replicas": s.ready_replicas,
                "available_replicas": s.available_replicas,
            }),
        );
        let ports: Vec<serde_json::Value> = s
            .forwarded_ports
            .iter()
            .filter_map(|p| super::parse_forwarded(p))
            .map(|(external, port, proto)| {
                json!({
                    "host": public_hostname,
                    "port": port,
                    "externalPort": external,
                    "proto": proto,
                    "name": s.name,
                })
            })
            .collect();
        if !ports.is_empty() {
            forwarded.insert(s.name.clone(), ports);
        }
        // The Go client's `LeasedIPStatus` has no JSON tags: its field names as they are.
        let leased: Vec<serde_json::Value> = s
            .ips
            .iter()
            .map(|i| {
                json!({
                    "Port": i.port,
                    "ExternalPort": i.external_port,
                    "Protocol": i.protocol,
                    "IP": i.ip,
                })
            })
            .collect();
        if !leased.is_empty() {
            ips.insert(s.name.clone(), leased);
        }
    }
    // As the Go provider: `null` unless the manifest leases IPs.
    let leases_ips = lease.spec.manifest.as_ref().is_some_and(|m| {
        m.group
            .services
            .iter()
            .flat_map(|s| &s.expose)
            .any(crate::workload::build::leased_ip::is_leased_ip)
    });
    json!({
        "services": services,
        "forwarded_ports": forwarded,
        "ips": if leases_ips { json!(ips) } else { serde_json::Value::Null },
        // Not in the Go provider: the manifest version this lease runs, for tenants that let
        // providers pass the manifest to one another.
        "manifest_version": lease.spec.manifest.as_ref().map(|m| m.version.clone()),
    })
}

/// `GET /lease/{dseq}/{gseq}/{oseq}/logs`: the lease's owner only; the parameters and the lease
/// are checked before the upgrade, so a refusal is a plain HTTP status.
async fn lease_logs(
    request: LeaseRequest,
    Query(params): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Rejection> {
    let query = super::logs::LogQuery::parse(&params)?;
    let (lease, namespace, end) = request.stream(jwt::Scope::Logs).await?;
    let pod_logs = served(&request.gateway.pod_logs, "serve lease logs")?;
    tracing::info!(lease = %lease.spec.lease_id, ?query, "lease logs requested");
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            super::logs::stream(pod_logs.as_ref(), &namespace, &query, socket, end).await;
        }))
}

/// `GET /lease/{dseq}/{gseq}/{oseq}/kubeevents`: the lease namespace's Kubernetes events, for
/// the lease's owner; `follow` as for logs.
async fn lease_events(
    request: LeaseRequest,
    Query(params): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Rejection> {
    let query = super::logs::LogQuery::parse(&params)?;
    let (_, namespace, end) = request.stream(jwt::Scope::Events).await?;
    let events = served(&request.gateway.lease_events, "serve lease events")?;
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            super::events::stream(events.as_ref(), &namespace, query.follow, socket, end).await;
        }))
}

/// The Go provider's `POST /hostname/migrate` and `/endpoint/migrate` bodies: each route reads
/// its own list.
#[derive(Debug, serde::Deserialize)]
struct Migrate {
    #[serde(default)]
    hostnames_to_migrate: Option<Vec<String>>,
    #[serde(default)]
    endpoints_to_migrate: Option<Vec<String>>,
    destination_dseq: u64,
    #[serde(default)]
    destination_gseq: u32,
}

/// What a migration moves.
#[derive(Debug, Clone, Copy)]
enum Migrating {
    Hostnames,
    Endpoints,
}

/// `POST /hostname/migrate`: the caller's hosts move to another of its deployments here, one
/// whose manifest names them (`provider-services migrate-hostnames`).
async fn migrate_hostnames(
    gateway: State<Arc<Gateway>>,
    peer: ConnectInfo<Peer>,
    request: axum::extract::Request,
) -> Result<Response, Rejection> {
    migrate(gateway, peer, request, Migrating::Hostnames).await
}

/// `POST /endpoint/migrate`: the caller's leased-IP endpoints move, with their addresses, to
/// another of its deployments here whose manifest names them (`provider-services
/// migrate-endpoints`).
async fn migrate_endpoints(
    gateway: State<Arc<Gateway>>,
    peer: ConnectInfo<Peer>,
    request: axum::extract::Request,
) -> Result<Response, Rejection> {
    migrate(gateway, peer, request, Migrating::Endpoints).await
}

async fn migrate(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    request: axum::extract::Request,
    what: Migrating,
) -> Result<Response, Rejection> {
    let caller = gateway
        .caller(&peer.certs, authorization(request.headers()))
        .await?;
    let body = read_body(request, 64 * 1024).await?;
    let asked: Migrate = serde_json::from_slice(&body)
        .map_err(|e| Rejection::Malformed(format!("the request is not a migration: {e}")))?;
    let destination = (asked.destination_dseq, asked.destination_gseq);
    let moved = match what {
        Migrating::Hostnames => {
            let names = asked.hostnames_to_migrate.unwrap_or_default();
            gateway
                .migrate_hostnames(&caller, &names, destination)
                .await?
        }
        Migrating::Endpoints => {
            let names = asked.endpoints_to_migrate.unwrap_or_default();
            gateway
                .migrate_endpoints(&caller, &names, destination)
                .await?
        }
    };
    Ok(axum::Json(json!({ "transferred": moved })).into_response())
}

/// `GET /lease/{dseq}/{gseq}/{oseq}/shell`: a command in one of the lease's containers, for
/// the lease's owner; the parameters and the lease are checked before the upgrade.
async fn lease_shell(
    request: LeaseRequest,
    Query(params): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, Rejection> {
    let query = super::shell::ShellQuery::parse(&params)?;
    let (lease, namespace, end) = request.stream(jwt::Scope::Shell).await?;
    let exec = served(&request.gateway.pod_exec, "run commands in leases")?;
    let refusal = super::shell::refusal(&lease, &query.service);
    tracing::info!(lease = %lease.spec.lease_id, service = query.service, "lease shell requested");
    Ok(upgrade
        .max_message_size(super::shell::MAX_MESSAGE)
        .on_upgrade(move |socket| async move {
            super::shell::stream(exec.as_ref(), &namespace, &query, refusal, socket, end).await;
        }))
}

async fn lease_manifest(request: LeaseRequest) -> Result<Response, Rejection> {
    let lease = request.lease(Some(jwt::Scope::GetManifest)).await?;
    match lease.spec.manifest {
        Some(manifest) => Ok(axum::Json(vec![manifest.group]).into_response()),
        None => Err(Rejection::NotFound(format!(
            "lease {} has no manifest yet",
            lease.spec.lease_id
        ))),
    }
}
