//! The provider gateway services as tonic servers and clients, against the official SDK's own
//! provider client (`createProviderSDK` of `@akashnetwork/chain-sdk`), over real gRPC (HTTP/2 on
//! loopback): every method of `akash.provider.v1.ProviderRPC` and `akash.provider.lease.v1.LeaseRPC`.
//! The server answers with the response fixtures when the request equals the request fixture;
//! the SDK compares what it receives with its own fixtures (`sdk-ref/wire-goldens.mjs call`).
//! A second test connects our generated client directly to our generated server.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use chain_client::akash::provider::lease::v1::lease_rpc_client::LeaseRpcClient;
use chain_client::akash::provider::lease::v1::lease_rpc_server::{LeaseRpc, LeaseRpcServer};
use chain_client::akash::provider::v1::provider_rpc_client::ProviderRpcClient;
use chain_client::akash::provider::v1::provider_rpc_server::{ProviderRpc, ProviderRpcServer};
use tonic::codegen::tokio_stream::{self, Stream, StreamExt};
use tonic::{Request, Response};

mod fixtures;
use fixtures::*;

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, tonic::Status>> + Send>>;

/// A gateway that checks each request against the request fixture and answers with the
/// response fixtures, recording which methods were called.
#[derive(Clone, Default)]
struct FixtureGateway {
    calls: Arc<Mutex<Vec<&'static str>>>,
}

impl FixtureGateway {
    // tonic::Status is the error type of every generated method; boxing it here buys nothing.
    #[allow(clippy::result_large_err)]
    fn expect<T: PartialEq + std::fmt::Debug>(
        &self,
        method: &'static str,
        got: &T,
        want: &T,
    ) -> Result<(), tonic::Status> {
        self.calls.lock().expect("calls").push(method);
        if got == want {
            Ok(())
        } else {
            Err(tonic::Status::invalid_argument(format!(
                "{method}: the request differs from the fixture: got {got:?}"
            )))
        }
    }

    fn twice<T: Clone + Send + 'static>(item: T) -> Streamed<T> {
        Box::pin(tokio_stream::iter([Ok(item.clone()), Ok(item)]))
    }
}

#[tonic::async_trait]
impl ProviderRpc for FixtureGateway {
    async fn get_status(&self, _: Request<()>) -> Result<Response<gateway::Status>, tonic::Status> {
        self.expect("GetStatus", &(), &())?;
        Ok(Response::new(status()))
    }

    type StreamStatusStream = Streamed<gateway::Status>;

    async fn stream_status(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStatusStream>, tonic::Status> {
        self.expect("StreamStatus", &(), &())?;
        Ok(Response::new(Self::twice(status())))
    }

    async fn bid_screening(
        &self,
        request: Request<gateway::BidScreeningRequest>,
    ) -> Result<Response<gateway::BidScreeningResponse>, tonic::Status> {
        self.expect("BidScreening", request.get_ref(), &bid_screening_request())?;
        Ok(Response::new(bid_screening_response()))
    }
}

#[tonic::async_trait]
impl LeaseRpc for FixtureGateway {
    async fn send_manifest(
        &self,
        request: Request<lease_rpc::SendManifestRequest>,
    ) -> Result<Response<lease_rpc::SendManifestResponse>, tonic::Status> {
        self.expect("SendManifest", request.get_ref(), &send_manifest_request())?;
        Ok(Response::new(lease_rpc::SendManifestResponse {}))
    }

    async fn service_status(
        &self,
        request: Request<lease_rpc::ServiceStatusRequest>,
    ) -> Result<Response<lease_rpc::ServiceStatusResponse>, tonic::Status> {
        self.expect(
            "ServiceStatus",
            request.get_ref(),
            &service_status_request(),
        )?;
        Ok(Response::new(service_status_response()))
    }

    type StreamServiceStatusStream = Streamed<lease_rpc::ServiceStatusResponse>;

    async fn stream_service_status(
        &self,
        request: Request<lease_rpc::ServiceStatusRequest>,
    ) -> Result<Response<Self::StreamServiceStatusStream>, tonic::Status> {
        self.expect(
            "StreamServiceStatus",
            request.get_ref(),
            &service_status_request(),
        )?;
        Ok(Response::new(Self::twice(service_status_response())))
    }

    async fn service_logs(
        &self,
        request: Request<lease_rpc::ServiceLogsRequest>,
    ) -> Result<Response<lease_rpc::ServiceLogsResponse>, tonic::Status> {
        self.expect("ServiceLogs", request.get_ref(), &service_logs_request())?;
        Ok(Response::new(service_logs_response()))
    }

    type StreamServiceLogsStream = Streamed<lease_rpc::ServiceLogsResponse>;

    async fn stream_service_logs(
        &self,
        request: Request<lease_rpc::ServiceLogsRequest>,
    ) -> Result<Response<Self::StreamServiceLogsStream>, tonic::Status> {
        self.expect(
            "StreamServiceLogs",
            request.get_ref(),
            &service_logs_request(),
        )?;
        Ok(Response::new(Self::twice(service_logs_response())))
    }
}

const ALL_METHODS: [&str; 8] = [
    "GetStatus",
    "StreamStatus",
    "BidScreening",
    "SendManifest",
    "ServiceStatus",
    "StreamServiceStatus",
    "ServiceLogs",
    "StreamServiceLogs",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_provider_client_talks_to_our_gateway_services() {
    let gateway = FixtureGateway::default();
    let incoming =
        tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind a loopback port");
    let addr = incoming.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ProviderRpcServer::new(gateway.clone()))
            .add_service(LeaseRpcServer::new(gateway.clone()))
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            }),
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let report_path = dir.path().join("call-report.json");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let out = tokio::process::Command::new("node")
        .arg("sdk-ref/wire-goldens.mjs")
        .arg("call")
        .arg(format!("http://{addr}"))
        .arg(&report_path)
        .current_dir(root)
        .output()
        .await
        .expect("run node (Node 20+ must be on PATH, with sdk-ref/node_modules installed)");
    let _ = stop.send(());
    server.await.expect("server task").expect("server");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap_or_else(|e| {
            panic!(
                "no report from wire-goldens.mjs call ({e}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        }))
        .expect("report JSON");
    let entries = report["report"].as_array().expect("entries");
    let failures: Vec<String> = entries
        .iter()
        .filter(|e| e["ok"] != serde_json::Value::Bool(true))
        .map(|e| e.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "the SDK's provider client failed against our gateway:\n{}",
        failures.join("\n")
    );
    let methods: Vec<&str> = entries
        .iter()
        .map(|e| e["method"].as_str().expect("method"))
        .collect();
    assert_eq!(methods, ALL_METHODS, "the SDK called every method");
    assert_eq!(
        *gateway.calls.lock().expect("calls"),
        ALL_METHODS,
        "our server saw every call, with the fixture requests"
    );
    assert!(out.status.success(), "call exited with {}", out.status);
}

/// Our generated clients against our generated servers, without a network: the server is the
/// client's transport.
#[tokio::test]
async fn our_clients_talk_to_our_servers() {
    let gateway = FixtureGateway::default();
    let mut provider = ProviderRpcClient::new(ProviderRpcServer::new(gateway.clone()));
    let mut leases = LeaseRpcClient::new(LeaseRpcServer::new(gateway.clone()));

    assert_eq!(
        provider.get_status(()).await.expect("status").into_inner(),
        status()
    );
    let streamed: Vec<_> = provider
        .stream_status(())
        .await
        .expect("stream")
        .into_inner()
        .collect()
        .await;
    assert_eq!(streamed.len(), 2);
    assert!(streamed.iter().all(|s| s.as_ref().ok() == Some(&status())));
    assert_eq!(
        provider
            .bid_screening(bid_screening_request())
            .await
            .expect("screening")
            .into_inner(),
        bid_screening_response()
    );
    leases
        .send_manifest(send_manifest_request())
        .await
        .expect("manifest accepted");
    let rejected = leases
        .send_manifest(lease_rpc::SendManifestRequest {
            lease_id: None,
            ..send_manifest_request()
        })
        .await
        .expect_err("a request unlike the fixture is rejected");
    assert_eq!(rejected.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        leases
            .service_logs(service_logs_request())
            .await
            .expect("logs")
            .into_inner(),
        service_logs_response()
    );
    assert_eq!(
        *gateway.calls.lock().expect("calls"),
        [
            "GetStatus",
            "StreamStatus",
            "BidScreening",
            "SendManifest",
            "SendManifest",
            "ServiceLogs"
        ]
    );
}
