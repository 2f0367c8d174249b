//! Endpoints derived from exposes: the kinds a resource unit needs, and the sequence numbers of
//! leased IP endpoints.

use std::collections::HashMap;

use super::groups::Endpoint;
use super::js;
use super::model::{Expose, SdlDocument, Service};

/// The protocol of an expose, upper case; `TCP` when not given.
pub(super) fn proto(expose: &Expose) -> String {
    match expose.proto.as_deref() {
        Some(p) if !p.is_empty() => p.to_uppercase(),
        _ => "TCP".into(),
    }
}

/// Whether an expose to the world is served by the shared HTTP ingress: TCP with external port 80.
pub(super) fn is_ingress(expose: &Expose, global: bool) -> bool {
    let external = match expose.as_port {
        Some(p) if p != 0 => p,
        _ => expose.port,
    };
    global && proto(expose) == "TCP" && external == 80
}

/// Sequence numbers of IP endpoints, computed as the reference SDK does: within each expose, the
/// global IP destinations sorted by name are numbered from 1; a later expose naming the same endpoint
/// overrides an earlier number.
pub(super) struct EndpointIndex {
    numbers: HashMap<String, u32>,
}

impl EndpointIndex {
    pub fn new(doc: &SdlDocument) -> Self {
        let mut numbers = HashMap::new();
        for (_, service) in js::js_entries(&doc.services) {
            for expose in service.expose.iter().flatten() {
                let mut ips: Vec<&str> = expose
                    .to
                    .iter()
                    .flatten()
                    .filter(|to| to.global == Some(true))
                    .filter_map(|to| to.ip.as_deref().filter(|ip| !ip.is_empty()))
                    .collect();
                ips.sort_by(|a, b| js::utf16_cmp(a, b));
                for (i, ip) in ips.into_iter().enumerate() {
                    numbers.insert(ip.to_string(), i as u32 + 1);
                }
            }
        }
        Self { numbers }
    }

    /// The sequence number of a named IP endpoint (0 when none).
    pub fn number(&self, ip: Option<&str>) -> u32 {
        ip.and_then(|ip| self.numbers.get(ip)).copied().unwrap_or(0)
    }

    /// The endpoints a service needs, in document order: for every global destination a shared HTTP
    /// or random-port endpoint, followed by a leased-IP endpoint when it names an IP.
    pub fn resource_endpoints(&self, service: &Service) -> Vec<Endpoint> {
        let mut out = Vec::new();
        for expose in service.expose.iter().flatten() {
            for to in expose.to.iter().flatten() {
                if to.global != Some(true) {
                    continue;
                }
                let kind = if is_ingress(expose, true) {
                    Endpoint::SHARED_HTTP
                } else {
                    Endpoint::RANDOM_PORT
                };
                out.push(Endpoint {
                    kind,
                    sequence_number: 0,
                });
                if let Some(ip) = to.ip.as_deref().filter(|ip| !ip.is_empty()) {
                    out.push(Endpoint {
                        kind: Endpoint::LEASED_IP,
                        sequence_number: self.number(Some(ip)),
                    });
                }
            }
        }
        out
    }
}
