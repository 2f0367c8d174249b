//! Lease turn-up time on the real node beside kwok, in one run: from the gateway's 200 for a
//! manifest to every object of the lease accepted by the API server ("applied"), and on the real
//! node on to the first HTTP 200 from the tenant's container through the ingress controller
//! ("answered"). Leases are sent one at a time, each on a provider with nothing else to do. The
//! `real_node_turnup` bench runs it at 20 leases; a test runs it at 2 so that it cannot rot.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use kube::Api;

use crate::market::{self, certificate, leased_sdl, unique_dseq};
use crate::real_node::{self, LeaseNamespaceGuard, RealNode};
use crate::scenario::{Scenario, scenario};

/// One lease's times from the gateway's 200.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub applied: Duration,
    /// The first HTTP 200 through the ingress (the real node only).
    pub answered: Option<Duration>,
}

/// The samples of both kinds of node.
#[derive(Debug, Default)]
pub struct Report {
    pub real: Vec<Sample>,
    pub kwok: Vec<Sample>,
    /// The provider's API-server requests from before each manifest's send to a second after its
    /// Lease is Active, summed over the kwok leases, by verb and resource (`"APPLY services"`).
    pub kwok_requests: BTreeMap<String, f64>,
}

/// A one-service SDL on the test workload: HTTP on port 80 of its automatic host.
fn web_sdl(message: &str) -> anyhow::Result<crds::sdl::Sdl> {
    let image = real_node::workload_image();
    let text = format!(
        r#"
version: "2.0"
services:
  web:
    image: {image}
    env: ["MESSAGE={message}", "PORTS=8080"]
    expose:
      - port: 8080
        as: 80
        to: [{{global: true}}]
profiles:
  compute:
    web:
      resources: {{cpu: {{units: 0.05}}, memory: {{size: 32Mi}}, storage: {{size: 32Mi}}}}
  placement:
    dc:
      attributes: {{host: akash}}
      pricing:
        web: {{denom: uact, amount: 1000}}
deployment:
  web: {{dc: {{profile: web, count: 1}}}}
"#
    );
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("turn-up SDL: {e}"))
}

/// Measures `leases` turn-ups on each kind of node.
pub async fn measure(leases: usize) -> anyhow::Result<Report> {
    let cluster = crate::Cluster::shared().await?;
    let node = RealNode::get(&cluster).await?;
    let mut report = Report::default();
    for real in [true, false] {
        let args: Vec<String> = if real {
            real_node::PROVIDER_ARGS.map(String::from).to_vec()
        } else {
            vec!["--node-selector".into(), "type=kwok".into()]
        };
        let name = if real { "turnupreal" } else { "turnupkwok" };
        let s = scenario(name, &[("host", "akash")], args).await?;
        let (samples, requests) = turn_up(&s, &cluster, &node, real, leases).await?;
        if real {
            report.real = samples;
        } else {
            report.kwok = samples;
            report.kwok_requests = requests;
        }
    }
    Ok(report)
}

async fn turn_up(
    s: &Scenario,
    cluster: &crate::Cluster,
    node: &RealNode,
    real: bool,
    leases: usize,
) -> anyhow::Result<(Vec<Sample>, BTreeMap<String, f64>)> {
    let identity = certificate(&s.tenant).await?;
    let http =
        operator::gateway::client::rest_client(&s.tenant, &s.provider_address(), &identity).await?;
    let mut samples = Vec::with_capacity(leases);
    let mut guards = Vec::new();
    let mut requests = BTreeMap::new();
    for i in 0..leases {
        let dseq = unique_dseq(50 + i as u64 + if real { 0 } else { 25 });
        let sdl = web_sdl(&format!("lease {i}"))?;
        let namespace = leased_sdl(s, dseq, &sdl).await?;
        guards.push(LeaseNamespaceGuard::new(cluster, &namespace));
        let url = format!(
            "https://{}/deployment/{dseq}/manifest",
            s.provider.gateway_rest_addr
        );
        let before = provider_requests(s).await?;
        let response = http.put(&url).body(sdl.manifest_json()).send().await?;
        let started = Instant::now();
        anyhow::ensure!(
            response.status().is_success(),
            "{}: {}",
            response.status(),
            response.text().await?
        );
        let applied = wait_applied(cluster, &namespace).await?;
        if !real {
            // The whole turn-up: until the Lease is Active, and a second more for what its last
            // status write sets off.
            use chain_client::Chain;
            let name = market::object_name(s.tenant.address(), dseq);
            market::wait_lease_active(&s.leases(), &name).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = provider_requests(s).await?;
            for (verb, n) in crate::idle_cost::difference(&before, &after) {
                *requests.entry(verb).or_insert(0.0) += n;
            }
        }
        let answered = if real {
            let host = wait_host(s, dseq).await?;
            Some(wait_answer(node, &host, started).await?)
        } else {
            None
        };
        samples.push(Sample {
            applied: applied - started,
            answered,
        });
        market::close_deployment(&s.tenant, dseq).await?;
        if !real {
            // Its teardown is not counted in the next lease's turn-up.
            market::wait_namespace_gone(&cluster.client(), &namespace).await?;
        }
    }
    Ok((samples, requests))
}

/// The provider's API-server requests so far, by verb.
async fn provider_requests(s: &Scenario) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = s
        .provider
        .metrics()
        .await
        .context("the provider's metrics endpoint did not answer")?;
    Ok(crate::idle_cost::provider_requests_by_verb_and_resource(
        &text,
    ))
}

/// When the lease's Deployment, Services, Ingress and NetworkPolicies all exist.
async fn wait_applied(cluster: &crate::Cluster, namespace: &str) -> anyhow::Result<Instant> {
    let client = cluster.client();
    let limit = Instant::now() + Duration::from_secs(120);
    loop {
        let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
            .get_opt("web")
            .await?;
        let service = Api::<Service>::namespaced(client.clone(), namespace)
            .get_opt("web")
            .await?;
        let ingresses = Api::<Ingress>::namespaced(client.clone(), namespace)
            .list(&Default::default())
            .await?;
        let policies = Api::<NetworkPolicy>::namespaced(client.clone(), namespace)
            .list(&Default::default())
            .await?;
        if deployment.is_some()
            && service.is_some()
            && !ingresses.items.is_empty()
            && !policies.items.is_empty()
        {
            return Ok(Instant::now());
        }
        anyhow::ensure!(
            Instant::now() < limit,
            "the lease's objects in {namespace} were not all applied within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The automatic host the lease's status reports for `web`.
async fn wait_host(s: &Scenario, dseq: u64) -> anyhow::Result<String> {
    use chain_client::Chain;
    let name = market::object_name(s.tenant.address(), dseq);
    let limit = Instant::now() + Duration::from_secs(120);
    loop {
        let lease = s.leases().get(&name).await?;
        let host = lease
            .status
            .unwrap_or_default()
            .services
            .into_iter()
            .flat_map(|svc| svc.uris)
            .find(|u| u.ends_with(".ingress.localhost"));
        if let Some(host) = host {
            return Ok(host);
        }
        anyhow::ensure!(Instant::now() < limit, "lease {name} reports no host");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Time from `started` to the first HTTP 200 from the container through the ingress.
async fn wait_answer(node: &RealNode, host: &str, started: Instant) -> anyhow::Result<Duration> {
    let limit = started + Duration::from_secs(180);
    loop {
        if let Ok((200, _)) = node.http_via_ingress(host, "/").await {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            Instant::now() < limit,
            "{host} did not answer through the ingress within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The report as the bench prints it: p50 and p90 of each measure, in seconds.
pub fn table(report: &Report) -> String {
    let secs = |d: &Duration| d.as_secs_f64();
    let applied_real: Vec<f64> = report.real.iter().map(|s| secs(&s.applied)).collect();
    let answered: Vec<f64> = report
        .real
        .iter()
        .filter_map(|s| s.answered.as_ref().map(secs))
        .collect();
    let applied_kwok: Vec<f64> = report.kwok.iter().map(|s| secs(&s.applied)).collect();
    let row = |what: &str, v: &[f64]| {
        format!(
            "{what:<52} n={:<3} p50 {:>7.3} s  p90 {:>7.3} s  max {:>7.3} s\n",
            v.len(),
            crate::bench::percentile(v, 0.5),
            crate::bench::percentile(v, 0.9),
            v.iter().copied().fold(0.0, f64::max)
        )
    };
    let mut out = String::new();
    out.push_str(&row("kwok: 200 -> objects applied", &applied_kwok));
    out.push_str(&row("real node: 200 -> objects applied", &applied_real));
    out.push_str(&row(
        "real node: 200 -> first HTTP 200 through the ingress",
        &answered,
    ));
    if !report.kwok.is_empty() {
        let leases = report.kwok.len() as f64;
        let mut by_verb: BTreeMap<&str, f64> = BTreeMap::new();
        for (key, n) in &report.kwok_requests {
            let verb = key.split(' ').next().unwrap_or_default();
            *by_verb.entry(verb).or_insert(0.0) += n;
        }
        let per_lease = |counts: Vec<(&str, f64)>| {
            counts
                .iter()
                .map(|(what, n)| format!("{what} {:.1}", n / leases))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "kwok: the provider's API-server requests per lease, manifest sent -> Active (+1 s): {}\n",
            per_lease(by_verb.into_iter().collect())
        ));
        out.push_str(&format!(
            "  by resource: {}\n",
            per_lease(
                report
                    .kwok_requests
                    .iter()
                    .map(|(k, n)| (k.as_str(), *n))
                    .collect()
            )
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Report, Sample, table};

    #[test]
    fn the_table_shows_the_median_ninetieth_percentile_and_maximum_of_each_measure() {
        let sample = |applied_ms: u64, answered_ms: Option<u64>| Sample {
            applied: Duration::from_millis(applied_ms),
            answered: answered_ms.map(Duration::from_millis),
        };
        let report = Report {
            real: (1..=10).map(|i| sample(i * 100, Some(i * 1000))).collect(),
            kwok: (1..=10).map(|i| sample(i * 10, None)).collect(),
            kwok_requests: [
                ("APPLY deployments".to_owned(), 20.0),
                ("APPLY services".to_owned(), 40.0),
                ("POST namespaces".to_owned(), 25.0),
            ]
            .into(),
        };
        let text = table(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("n=10") && lines[0].contains("p50   0.050 s"),
            "{text}"
        );
        assert!(
            lines[0].contains("p90   0.090 s") && lines[0].contains("max   0.100 s"),
            "{text}"
        );
        assert!(
            lines[1].contains("p50   0.500 s") && lines[1].contains("max   1.000 s"),
            "{text}"
        );
        assert!(
            lines[2].contains("p50   5.000 s") && lines[2].contains("p90   9.000 s"),
            "{text}"
        );
        assert!(
            lines[3].ends_with("APPLY 6.0, POST 2.5"),
            "per lease, by verb: {text}"
        );
        assert!(
            lines[4].ends_with("APPLY deployments 2.0, APPLY services 4.0, POST namespaces 2.5"),
            "{text}"
        );
    }
}
