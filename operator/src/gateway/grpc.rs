//! The gateway's gRPC services (`:8444`): `akash.provider.v1.ProviderRPC/GetStatus` and
//! `akash.provider.lease.v1.LeaseRPC/SendManifest` + `ServiceStatus`, under the same rules as REST.
//! tonic reads the client's certificates from the TLS stream (`Request::peer_certs`).
//!
//! A manifest sent over gRPC arrives as protobuf; it is turned into the manifest JSON shape and
//! hashed as such. Should the conversion differ from what the tenant hashed, the version check
//! fails: the conversion can refuse a good manifest, never accept a bad one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chain_client::akash::base::resources::v1beta4 as res;
use chain_client::akash::manifest::v2beta3 as mv;
use chain_client::akash::provider::lease::v1 as lease_rpc;
use chain_client::akash::provider::lease::v1::lease_rpc_server::{LeaseRpc, LeaseRpcServer};
use chain_client::akash::provider::v1 as prov;
use chain_client::akash::provider::v1::provider_rpc_server::{ProviderRpc, ProviderRpcServer};
use crds::sdl::groups::{Attribute, ResourceValue};
use crds::sdl::manifest::{
    ManifestCpu, ManifestCredentials, ManifestEndpoint, ManifestExpose, ManifestGpu, ManifestGroup,
    ManifestHttpOptions, ManifestMemory, ManifestParams, ManifestResources, ManifestService,
    ManifestStorage, ManifestStorageParams,
};
use crds::sdl::model::Permissions;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status};

use super::acceptor::Accepted;
use super::{Caller, Gateway, Rejection, jwt, logs};

/// The largest gRPC message other than a manifest (status requests).
pub(super) const SMALL_MESSAGE: usize = 64 << 10;
/// How long a gRPC connection lives at most.
const MAX_CONNECTION_AGE: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// The largest answer.
const MAX_ENCODED: usize = 16 << 20;

pub(super) async fn run(
    gateway: Arc<Gateway>,
    incoming: mpsc::Receiver<Accepted>,
    mut stop: watch::Receiver<bool>,
) {
    let max = gateway.config.max_manifest_bytes;
    let service = Service(gateway.clone());
    let stream = futures::stream::unfold(incoming, |mut rx| async move {
        rx.recv()
            .await
            .map(|a| (Ok::<_, std::io::Error>(a.stream), rx))
    });
    let served = tonic::transport::Server::builder()
        .timeout(super::rest::REQUEST_TIMEOUT)
        .concurrency_limit_per_connection(32)
        // Closed gracefully after this age, so that a client that keeps pinging holds no slot
        // for ever; the idle timeout closes quiet ones sooner.
        .max_connection_age(MAX_CONNECTION_AGE)
        .add_service(
            ProviderRpcServer::new(service.clone())
                .max_decoding_message_size(SMALL_MESSAGE)
                .max_encoding_message_size(MAX_ENCODED),
        )
        .add_service(super::grpc_auth::Authenticated::new(
            LeaseRpcServer::new(service)
                .max_decoding_message_size(max)
                .max_encoding_message_size(MAX_ENCODED),
            gateway,
        ))
        .serve_with_incoming_shutdown(stream, async move {
            super::tls::stopped(&mut stop).await;
        })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "gateway gRPC server stopped");
    }
}

#[derive(Clone)]
struct Service(Arc<Gateway>);

pub(super) fn status_of(r: Rejection) -> Status {
    Status::new(r.grpc_code(), r.to_string())
}

/// The client [`super::grpc_auth::Authenticated`] let in.
#[allow(clippy::result_large_err)] // tonic's `Status`, as every handler returns
fn peer_of<T>(request: &Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("the call was not authenticated"))
}

type Streamed<T> = BoxStream<'static, Result<T, Status>>;

#[tonic::async_trait]
impl ProviderRpc for Service {
    async fn get_status(&self, _: Request<()>) -> Result<Response<prov::Status>, Status> {
        Ok(Response::new(provider_status(&self.0).await?))
    }

    type StreamStatusStream = Streamed<prov::Status>;

    /// `GetStatus` now and then every [`STATUS_EVERY`] (as often as the inventory is
    /// refreshed), until the client hangs up or the gateway stops.
    async fn stream_status(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStatusStream>, Status> {
        let gateway = self.0.clone();
        let mut stop = self.0.stopping.clone();
        let stream = futures::stream::unfold(
            (gateway, tokio::time::interval(STATUS_EVERY)),
            |(gateway, mut every)| async move {
                every.tick().await;
                let status = provider_status(&gateway).await;
                Some((status, (gateway, every)))
            },
        )
        .take_until(Box::pin(
            async move { super::tls::stopped(&mut stop).await },
        ));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn bid_screening(
        &self,
        _: Request<prov::BidScreeningRequest>,
    ) -> Result<Response<prov::BidScreeningResponse>, Status> {
        Err(Status::unimplemented("BidScreening is not offered"))
    }
}

#[tonic::async_trait]
impl LeaseRpc for Service {
    async fn send_manifest(
        &self,
        request: Request<lease_rpc::SendManifestRequest>,
    ) -> Result<Response<lease_rpc::SendManifestResponse>, Status> {
        let peer = peer_of(&request)?;
        let request = request.into_inner();
        let Some(id) = request.lease_id else {
            return Err(Status::invalid_argument("lease_id is required"));
        };
        self.0
            .permit(
                &peer,
                jwt::Target::Deployment { dseq: id.dseq },
                Some(jwt::Scope::SendManifest),
            )
            .map_err(status_of)?;
        if id.provider != self.0.config.provider_address {
            return Err(Status::not_found(format!(
                "lease_id.provider is {}, this provider is {}",
                id.provider, self.0.config.provider_address
            )));
        }
        // The message was limited when decoded; its JSON form, larger, is limited to what a
        // Lease resource can store.
        let body = super::manifest_json_from_proto(
            &request.manifest,
            super::accept::LEASE_MANIFEST_BUDGET,
        )
        .map_err(status_of)?;
        self.0
            .send_manifest(&peer.owner, id.dseq, &body, usize::MAX)
            .await
            .map_err(status_of)?;
        Ok(Response::new(lease_rpc::SendManifestResponse {}))
    }

    async fn service_status(
        &self,
        request: Request<lease_rpc::ServiceStatusRequest>,
    ) -> Result<Response<lease_rpc::ServiceStatusResponse>, Status> {
        let peer = peer_of(&request)?;
        let request = request.into_inner();
        Ok(Response::new(
            service_status(&self.0, &peer, &request).await?,
        ))
    }

    type StreamServiceStatusStream = Streamed<lease_rpc::ServiceStatusResponse>;

    /// `ServiceStatus` now and then every [`STATUS_EVERY`], until the client hangs up, the
    /// lease is no longer its, or the gateway stops.
    async fn stream_service_status(
        &self,
        request: Request<lease_rpc::ServiceStatusRequest>,
    ) -> Result<Response<Self::StreamServiceStatusStream>, Status> {
        let peer = peer_of(&request)?;
        let request = request.into_inner();
        // Refused at once (not in the stream) when the first answer would be.
        let first = service_status(&self.0, &peer, &request).await?;
        let gateway = self.0.clone();
        let mut stop = self.0.stopping.clone();
        let mut every = tokio::time::interval(STATUS_EVERY);
        every.tick().await;
        // A refusal (the lease closed) is the stream's last message.
        let later =
            futures::stream::unfold(Some((gateway, peer, request, every)), |state| async move {
                let (gateway, peer, request, mut every) = state?;
                every.tick().await;
                let status = service_status(&gateway, &peer, &request).await;
                let next = status.is_ok().then_some((gateway, peer, request, every));
                Some((status, next))
            });
        let stream = futures::stream::once(async { Ok(first) })
            .chain(later)
            .take_until(Box::pin(
                async move { super::tls::stopped(&mut stop).await },
            ));
        Ok(Response::new(Box::pin(stream)))
    }

    /// The end of each pod's log (at most [`logs::GRPC_TAIL`] lines, [`logs::GRPC_LOG_BYTES`]).
    async fn service_logs(
        &self,
        request: Request<lease_rpc::ServiceLogsRequest>,
    ) -> Result<Response<lease_rpc::ServiceLogsResponse>, Status> {
        let (namespace, mut query, pod_logs) = self.logs_request(request).await?;
        query.tail = Some(logs::GRPC_TAIL);
        let mut per_pod: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        if let Some(mut lines) = logs::follow_lines(pod_logs.as_ref(), &namespace, &query).await {
            while let Some(line) = lines.recv().await {
                let kept = per_pod.entry(line.name).or_default();
                kept.extend_from_slice(line.message.as_bytes());
                kept.push(b'\n');
                if kept.len() > 2 * logs::GRPC_LOG_BYTES {
                    kept.drain(..kept.len() - logs::GRPC_LOG_BYTES);
                }
            }
        }
        let services = per_pod
            .into_iter()
            .map(|(name, mut kept)| {
                kept.drain(..kept.len().saturating_sub(logs::GRPC_LOG_BYTES));
                lease_rpc::ServiceLogs { name, logs: kept }
            })
            .collect();
        Ok(Response::new(lease_rpc::ServiceLogsResponse { services }))
    }

    type StreamServiceLogsStream = Streamed<lease_rpc::ServiceLogsResponse>;

    /// Every line as the containers write it, one message per line, until the logs end, the
    /// tenant hangs up or the gateway stops.
    async fn stream_service_logs(
        &self,
        request: Request<lease_rpc::ServiceLogsRequest>,
    ) -> Result<Response<Self::StreamServiceLogsStream>, Status> {
        let (namespace, mut query, pod_logs) = self.logs_request(request).await?;
        query.follow = true;
        let Some(lines) = logs::follow_lines(pod_logs.as_ref(), &namespace, &query).await else {
            return Err(Status::not_found("no running pods"));
        };
        let mut stop = self.0.stopping.clone();
        let stream = futures::stream::unfold(lines, |mut lines| async move {
            let line = lines.recv().await?;
            let message = lease_rpc::ServiceLogsResponse {
                services: vec![lease_rpc::ServiceLogs {
                    name: line.name,
                    logs: format!("{}\n", line.message).into_bytes(),
                }],
            };
            Some((Ok(message), lines))
        })
        .take_until(Box::pin(
            async move { super::tls::stopped(&mut stop).await },
        ));
        Ok(Response::new(Box::pin(stream)))
    }
}

/// The status of the services of the lease `request` names, for its owner `peer`.
#[allow(clippy::result_large_err)] // tonic's `Status`, as every handler returns
async fn service_status(
    gateway: &Gateway,
    peer: &Caller,
    request: &lease_rpc::ServiceStatusRequest,
) -> Result<lease_rpc::ServiceStatusResponse, Status> {
    let Some(id) = request.lease_id.as_ref() else {
        return Err(Status::invalid_argument("lease_id is required"));
    };
    let lease = gateway
        .lease_for(peer, (id.dseq, id.gseq, id.oseq), Some(jwt::Scope::Status))
        .await
        .map_err(status_of)?;
    let generation = lease
        .status
        .as_ref()
        .and_then(|s| s.observed_generation)
        .unwrap_or_default();
    let services = super::services_of(&lease)
        .into_iter()
        .filter(|s| request.services.is_empty() || request.services.contains(&s.name))
        .map(|s| lease_rpc::ServiceStatus {
            status: Some(lease_rpc::LeaseServiceStatus {
                available: s.available_replicas,
                total: s.replicas,
                uris: s.uris.clone(),
                observed_generation: generation,
                replicas: s.replicas,
                updated_replicas: s.updated_replicas,
                ready_replicas: s.ready_replicas,
                available_replicas: s.available_replicas,
            }),
            ports: s
                .forwarded_ports
                .iter()
                .filter_map(|p| super::parse_forwarded(p))
                .map(|(external, port, proto)| lease_rpc::ForwarderPortStatus {
                    host: gateway.config.cluster_public_hostname.clone(),
                    port,
                    external_port: external,
                    proto,
                    name: s.name.clone(),
                })
                .collect(),
            ips: s
                .ips
                .iter()
                .map(|i| lease_rpc::LeaseIpStatus {
                    port: i.port,
                    external_port: i.external_port,
                    protocol: i.protocol.clone(),
                    ip: i.ip.clone(),
                })
                .collect(),
            name: s.name,
        })
        .collect();
    Ok(lease_rpc::ServiceStatusResponse { services })
}

/// Between two messages of `StreamStatus`.
const STATUS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The provider's status: leases and manifests counted, the bid engine's inventory and orders.
#[allow(clippy::result_large_err)] // tonic's `Status`, as every handler returns
async fn provider_status(gateway: &Gateway) -> Result<prov::Status, Status> {
    let (leases, deployments) = gateway.counts().await.map_err(status_of)?;
    let report = gateway.status_report();
    let now = std::time::SystemTime::now();
    let hostname = &gateway.config.cluster_public_hostname;
    Ok(prov::Status {
        errors: Vec::new(),
        cluster: Some(prov::ClusterStatus {
            leases: Some(prov::Leases {
                active: leases as u32,
            }),
            inventory: Some(report.inventory_proto()),
        }),
        bid_engine: Some(prov::BidEngineStatus {
            orders: report.orders,
        }),
        manifest: Some(prov::ManifestStatus {
            deployments: deployments as u32,
        }),
        public_hostnames: [hostname.clone()]
            .into_iter()
            .filter(|h| !h.is_empty())
            .collect(),
        timestamp: Some(prost_types::Timestamp::from(now)),
    })
}

impl Service {
    /// A logs request of the lease's owner: its namespace, the services asked for (checked as
    /// the REST parameter is) and where logs come from.
    async fn logs_request(
        &self,
        request: Request<lease_rpc::ServiceLogsRequest>,
    ) -> Result<(String, logs::LogQuery, Arc<dyn logs::PodLogs>), Status> {
        let peer = peer_of(&request)?;
        let request = request.into_inner();
        let Some(id) = request.lease_id else {
            return Err(Status::invalid_argument("lease_id is required"));
        };
        let query = logs::LogQuery::parse(&HashMap::from([(
            "service".to_owned(),
            request.services.join(","),
        )]))
        .map_err(status_of)?;
        let lease = self
            .0
            .lease_for(&peer, (id.dseq, id.gseq, id.oseq), Some(jwt::Scope::Logs))
            .await
            .map_err(status_of)?;
        let pod_logs = self
            .0
            .pod_logs
            .clone()
            .ok_or_else(|| Status::unavailable("this provider does not serve lease logs"))?;
        Ok((lease.spec.lease_id.namespace(), query, pod_logs))
    }
}

fn some_vec<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn value(v: Option<&res::ResourceValue>) -> ResourceValue {
    ResourceValue {
        val: v
            .map(|v| String::from_utf8_lossy(&v.val).into_owned())
            .unwrap_or_else(|| "0".into()),
    }
}

fn attributes(
    a: &[chain_client::akash::base::attributes::v1::Attribute],
) -> Option<Vec<Attribute>> {
    (!a.is_empty()).then(|| {
        a.iter()
            .map(|a| Attribute {
                key: a.key.clone(),
                value: a.value.clone(),
            })
            .collect()
    })
}

/// A protobuf manifest group in the manifest JSON shape (Go's: empty lists are `null`).
pub(crate) fn group(g: &mv::Group) -> ManifestGroup {
    ManifestGroup {
        name: g.name.clone(),
        services: g.services.iter().map(service).collect(),
    }
}

fn service(s: &mv::Service) -> ManifestService {
    let r = s.resources.clone().unwrap_or_default();
    let cpu = r.cpu.unwrap_or_default();
    let memory = r.memory.unwrap_or_default();
    let gpu = r.gpu.unwrap_or_default();
    ManifestService {
        name: s.name.clone(),
        image: s.image.clone(),
        command: some_vec(&s.command),
        args: some_vec(&s.args),
        env: some_vec(&s.env),
        resources: ManifestResources {
            id: r.id,
            cpu: ManifestCpu {
                units: value(cpu.units.as_ref()),
                attributes: attributes(&cpu.attributes),
            },
            memory: ManifestMemory {
                size: value(memory.quantity.as_ref()),
                attributes: attributes(&memory.attributes),
            },
            storage: r
                .storage
                .iter()
                .map(|st| ManifestStorage {
                    name: st.name.clone(),
                    size: value(st.quantity.as_ref()),
                    attributes: attributes(&st.attributes),
                })
                .collect(),
            gpu: ManifestGpu {
                units: value(gpu.units.as_ref()),
                attributes: attributes(&gpu.attributes),
            },
            endpoints: r
                .endpoints
                .iter()
                .map(|e| ManifestEndpoint {
                    kind: (e.kind != 0).then_some(e.kind),
                    sequence_number: e.sequence_number,
                })
                .collect(),
        },
        count: s.count,
        expose: s.expose.iter().map(expose).collect(),
        params: s.params.as_ref().map(|p| ManifestParams {
            storage: (!p.storage.is_empty()).then(|| {
                p.storage
                    .iter()
                    .map(|st| ManifestStorageParams {
                        name: st.name.clone(),
                        mount: (!st.mount.is_empty()).then(|| st.mount.clone()),
                        read_only: st.read_only,
                    })
                    .collect()
            }),
            permissions: p.permissions.as_ref().map(|x| Permissions {
                read: some_vec(&x.read),
            }),
        }),
        credentials: s.credentials.as_ref().map(|c| ManifestCredentials {
            host: c.host.clone(),
            email: c.email.clone(),
            username: c.username.clone(),
            password: c.password.clone(),
        }),
    }
}

fn expose(e: &mv::ServiceExpose) -> ManifestExpose {
    let o = e.http_options.clone().unwrap_or_default();
    ManifestExpose {
        port: u16::try_from(e.port).unwrap_or(u16::MAX),
        external_port: u16::try_from(e.external_port).unwrap_or(u16::MAX),
        proto: e.proto.clone(),
        service: e.service.clone(),
        global: e.global,
        hosts: some_vec(&e.hosts),
        http_options: ManifestHttpOptions {
            max_body_size: o.max_body_size.into(),
            read_timeout: o.read_timeout.into(),
            send_timeout: o.send_timeout.into(),
            next_tries: o.next_tries.into(),
            next_timeout: o.next_timeout.into(),
            next_cases: o.next_cases,
        },
        ip: e.ip.clone(),
        endpoint_sequence_number: e.endpoint_sequence_number,
    }
}
