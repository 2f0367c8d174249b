//! The tenant's calls to a provider's gateway: send the manifest, read a lease's status. Over mTLS
//! with the tenant's on-chain certificate (see [`crate::gateway::client`]); the `Gateway` trait
//! lets the flow be tested without a provider.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chain_client::Chain;
use crds::resources::ServiceEndpoints;
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::gateway::client::{TenantIdentity, error_text, gateway_url, read_capped, rest_client};

/// Why a gateway call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeliveryError {
    /// The gateway could not be reached, or TLS failed.
    #[error("gateway {uri} unreachable: {message}")]
    Unreachable { uri: String, message: String },
    /// The gateway answered with an error status.
    #[error("gateway {uri} answered {status}: {body}")]
    Refused {
        uri: String,
        status: u16,
        body: String,
    },
}

/// What a provider says about one lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseReport {
    pub(crate) services: Vec<ServiceEndpoints>,
    /// The manifest version the lease runs, when the provider says (ours does; the Go provider
    /// does not).
    pub(crate) version: Option<String>,
}

impl LeaseReport {
    /// Every service has all its replicas ready.
    pub(crate) fn all_ready(&self) -> bool {
        !self.services.is_empty()
            && self
                .services
                .iter()
                .all(|s| s.replicas > 0 && s.ready_replicas >= s.replicas)
    }
}

/// A provider's gateway as the tenant uses it.
#[async_trait]
pub trait Gateway: Send + Sync {
    async fn send_manifest(
        &self,
        provider: &str,
        host_uri: &str,
        dseq: u64,
        manifest_json: &str,
    ) -> Result<(), DeliveryError>;

    async fn lease_status(
        &self,
        provider: &str,
        host_uri: &str,
        lease: (u64, u32, u32),
    ) -> Result<LeaseReport, DeliveryError>;
}

/// How long a client made from a provider's certificates on chain is used: a certificate the
/// provider revoked (its key leaked) is trusted no longer than this.
pub(crate) const CLIENT_LIFETIME: Duration = Duration::from_secs(60);

/// The real gateway client: one HTTPS client per provider, made from the provider's certificates
/// on chain, and made again after a failure (the provider may have a new certificate) or once
/// older than [`CLIENT_LIFETIME`] (it may have revoked one).
pub struct MtlsGateway {
    chain: Arc<dyn Chain>,
    identity: TenantIdentity,
    lifetime: Duration,
    clients: Mutex<HashMap<String, (Instant, reqwest::Client)>>,
}

impl MtlsGateway {
    pub fn new(chain: Arc<dyn Chain>, identity: TenantIdentity) -> Self {
        Self::with_client_lifetime(chain, identity, CLIENT_LIFETIME)
    }

    /// With clients made again once older than `lifetime`.
    pub(crate) fn with_client_lifetime(
        chain: Arc<dyn Chain>,
        identity: TenantIdentity,
        lifetime: Duration,
    ) -> Self {
        Self {
            chain,
            identity,
            lifetime,
            clients: Mutex::new(HashMap::new()),
        }
    }

    async fn client(&self, provider: &str, uri: &str) -> Result<reqwest::Client, DeliveryError> {
        if let Some((_, client)) = self
            .clients
            .lock()
            .await
            .get(provider)
            .filter(|(made, _)| made.elapsed() < self.lifetime)
        {
            return Ok(client.clone());
        }
        let client = rest_client(self.chain.as_ref(), provider, &self.identity)
            .await
            .map_err(|e| DeliveryError::Unreachable {
                uri: uri.to_owned(),
                message: format!("{e:#}"),
            })?;
        self.clients
            .lock()
            .await
            .insert(provider.to_owned(), (Instant::now(), client.clone()));
        Ok(client)
    }

    async fn forget(&self, provider: &str) {
        self.clients.lock().await.remove(provider);
    }

    async fn call(
        &self,
        provider: &str,
        url: String,
        request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<String, DeliveryError> {
        let client = self.client(provider, &url).await?;
        let response = match request(&client, &url).send().await {
            Ok(r) => r,
            Err(e) => {
                self.forget(provider).await;
                return Err(DeliveryError::Unreachable {
                    uri: url,
                    message: error_chain(&e),
                });
            }
        };
        let status = response.status();
        if !status.is_success() {
            return Err(DeliveryError::Refused {
                uri: url,
                status: status.as_u16(),
                body: error_text(response, 500).await,
            });
        }
        let body = read_capped(response, MAX_ANSWER)
            .await
            .map_err(|e| DeliveryError::Refused {
                uri: url.clone(),
                status: status.as_u16(),
                body: e.to_string(),
            })?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

#[async_trait]
impl Gateway for MtlsGateway {
    async fn send_manifest(
        &self,
        provider: &str,
        host_uri: &str,
        dseq: u64,
        manifest_json: &str,
    ) -> Result<(), DeliveryError> {
        let url = url_of(host_uri, &format!("/deployment/{dseq}/manifest"))?;
        let body = manifest_json.to_owned();
        self.call(provider, url, |c, u| c.put(u).body(body))
            .await
            .map(drop)
    }

    async fn lease_status(
        &self,
        provider: &str,
        host_uri: &str,
        (dseq, gseq, oseq): (u64, u32, u32),
    ) -> Result<LeaseReport, DeliveryError> {
        let url = url_of(host_uri, &format!("/lease/{dseq}/{gseq}/{oseq}/status"))?;
        let body = self.call(provider, url.clone(), |c, u| c.get(u)).await?;
        parse_lease_status(
            &body,
            &crate::gateway::client::host_of(host_uri).unwrap_or_default(),
        )
        .map_err(|e| DeliveryError::Refused {
            uri: url,
            status: 200,
            body: format!("not a lease status: {e}"),
        })
    }
}

/// The largest answer read from a provider (a lease status; a manifest is only sent).
const MAX_ANSWER: usize = 1 << 20;

/// `path` at the gateway `host_uri` (from the chain), which must be https.
fn url_of(host_uri: &str, path: &str) -> Result<String, DeliveryError> {
    gateway_url(host_uri, path).map_err(|message| DeliveryError::Unreachable {
        uri: host_uri.to_owned(),
        message,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[derive(Deserialize)]
struct StatusJson {
    #[serde(default)]
    services: Option<HashMap<String, ServiceJson>>,
    #[serde(default)]
    forwarded_ports: Option<HashMap<String, Vec<PortJson>>>,
    #[serde(default)]
    ips: Option<HashMap<String, Vec<LeasedIpJson>>>,
    #[serde(default)]
    manifest_version: Option<String>,
}

/// The Go client's `LeasedIPStatus` (no JSON tags: Go's field names).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LeasedIpJson {
    #[serde(rename = "IP")]
    ip: String,
    port: u32,
    external_port: u32,
    #[serde(default)]
    protocol: String,
}

#[derive(Deserialize)]
struct ServiceJson {
    #[serde(default)]
    uris: Option<Vec<String>>,
    #[serde(default)]
    replicas: i32,
    #[serde(default)]
    ready_replicas: i32,
    #[serde(default)]
    total: i32,
    #[serde(default)]
    available: i32,
}

#[derive(Deserialize)]
struct PortJson {
    #[serde(default)]
    host: String,
    port: u32,
    #[serde(rename = "externalPort")]
    external_port: u32,
    #[serde(default)]
    proto: String,
}

/// The Go provider's lease status JSON as per-service endpoints; forwarded ports without a host
/// get the gateway's host, where the provider's node ports are reached.
pub(crate) fn parse_lease_status(
    body: &str,
    gateway_host: &str,
) -> Result<LeaseReport, serde_json::Error> {
    let mut json: StatusJson = serde_json::from_str(body)?;
    let mut ports = json.forwarded_ports.take().unwrap_or_default();
    let mut ips = json.ips.take().unwrap_or_default();
    let mut services: Vec<ServiceEndpoints> = json
        .services
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|(name, s)| {
            let forwarded = ports
                .remove(&name)
                .unwrap_or_default()
                .into_iter()
                .map(|p| {
                    let host = if p.host.is_empty() {
                        gateway_host
                    } else {
                        &p.host
                    };
                    let proto = if p.proto.is_empty() {
                        "TCP".to_owned()
                    } else {
                        p.proto.to_uppercase()
                    };
                    format!("{host}:{} -> {}/{proto}", p.external_port, p.port)
                })
                .collect();
            let leased_ips = ips
                .remove(&name)
                .unwrap_or_default()
                .into_iter()
                .map(|i| {
                    let proto = if i.protocol.is_empty() {
                        "TCP".to_owned()
                    } else {
                        i.protocol.to_uppercase()
                    };
                    format!("{}:{} -> {}/{proto}", i.ip, i.external_port, i.port)
                })
                .collect();
            ServiceEndpoints {
                replicas: s.replicas.max(s.total),
                ready_replicas: s.ready_replicas.max(s.available),
                uris: s.uris.unwrap_or_default(),
                forwarded_ports: forwarded,
                leased_ips,
                name,
            }
        })
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(LeaseReport {
        services,
        version: json.manifest_version.filter(|v| !v.is_empty()),
    })
}

#[cfg(test)]
mod hostile_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_go_lease_status_becomes_service_endpoints_with_the_gateway_host() {
        let body = r#"{
          "services": {
            "web": {"name":"web","available":1,"total":2,"uris":["abc.ingress.example.com"],
                    "replicas":2,"ready_replicas":1,"available_replicas":1},
            "db": {"name":"db","available":1,"total":1,"uris":null,"replicas":1,"ready_replicas":1}
          },
          "forwarded_ports": {
            "db": [{"host":"","port":5432,"externalPort":31234,"proto":"TCP","name":"db"}]
          },
          "ips": {
            "web": [{"Port":8080,"ExternalPort":80,"Protocol":"TCP","IP":"192.0.2.7"}]
          }
        }"#;
        let report = parse_lease_status(body, "provider.example.com").unwrap();
        assert_eq!(report.services.len(), 2);
        assert_eq!(report.services[0].name, "db");
        assert_eq!(
            report.services[0].forwarded_ports,
            ["provider.example.com:31234 -> 5432/TCP"]
        );
        assert_eq!(report.services[1].uris, ["abc.ingress.example.com"]);
        assert_eq!(report.services[1].leased_ips, ["192.0.2.7:80 -> 8080/TCP"]);
        assert!(report.services[0].leased_ips.is_empty());
        assert_eq!(
            (
                report.services[1].ready_replicas,
                report.services[1].replicas
            ),
            (1, 2)
        );
        assert!(!report.all_ready());
        assert_eq!(report.version, None, "the Go provider does not say");
    }

    #[test]
    fn our_lease_status_says_which_manifest_version_runs() {
        let body = format!(
            r#"{{"services":{{}},"forwarded_ports":{{}},"ips":null,"manifest_version":"{}"}}"#,
            "ab".repeat(32)
        );
        let report = parse_lease_status(&body, "h").unwrap();
        assert_eq!(report.version, Some("ab".repeat(32)));
        let none = parse_lease_status(r#"{"services":{},"manifest_version":null}"#, "h").unwrap();
        assert_eq!(none.version, None);
    }

    #[test]
    fn a_status_with_no_services_is_not_ready() {
        let report = parse_lease_status(r#"{"services":null}"#, "h").unwrap();
        assert!(!report.all_ready());
    }
}
