//! What a process costs while nothing changes: the API server's own request counters
//! (`apiserver_request_total`), by verb, for one API group, and the process's CPU time, over a
//! window. For the benches (issue 18: no periodic LISTs while idle).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Requests the API server has served so far for API group `group`, by verb (`LIST`, `GET`,
/// `PATCH`, ...), from its `/metrics` (`kubectl get --raw`).
pub async fn request_counts(
    cluster: &crate::Cluster,
    group: &str,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut kubectl = cluster.kubectl();
    kubectl.args(["get", "--raw", "/metrics"]);
    let out = tokio::task::spawn_blocking(move || kubectl.output())
        .await?
        .context("running kubectl get --raw /metrics")?;
    anyhow::ensure!(
        out.status.success(),
        "kubectl get --raw /metrics: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(count_by_verb(&String::from_utf8_lossy(&out.stdout), group))
}

/// Sums `apiserver_request_total` samples of `group` (`*`: every group) by their `verb` label.
fn count_by_verb(metrics: &str, group: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let wanted = format!("group=\"{group}\"");
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        if group != "*" && !labels.split(',').any(|l| l == wanted) {
            continue;
        }
        let Some(verb) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("verb=\""))
            .map(|v| v.trim_end_matches('"'))
        else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        *out.entry(verb.to_owned()).or_insert(0.0) += value;
    }
    out
}

/// The provider's own API-server requests so far (`akash_provider_kube_requests_total`), by verb,
/// from its metrics text.
pub fn provider_requests_by_verb(metrics: &str) -> BTreeMap<String, f64> {
    provider_requests(metrics, false)
}

/// As [`provider_requests_by_verb`], keyed by `"<verb> <resource>"`.
pub fn provider_requests_by_verb_and_resource(metrics: &str) -> BTreeMap<String, f64> {
    provider_requests(metrics, true)
}

fn provider_requests(metrics: &str, with_resource: bool) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("akash_provider_kube_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(verb) = labels
            .split(',')
            .find_map(|l| l.strip_prefix("verb=\""))
            .map(|v| v.trim_end_matches('"'))
        else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let resource = labels
            .split(',')
            .find_map(|l| l.strip_prefix("resource=\""))
            .map(|v| v.trim_end_matches('"'))
            .unwrap_or_default();
        let key = if with_resource {
            format!("{verb} {resource}")
        } else {
            verb.to_owned()
        };
        *out.entry(key).or_insert(0.0) += value;
    }
    out
}

/// `after - before`, by key (keys only in `after` count from zero).
pub fn difference(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v != 0.0)
        .collect()
}

/// CPU seconds (user and system) process `pid` has used.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("/proc/{pid}/stat: has the process exited?"))?;
    // After the command name (in parentheses, which may hold spaces): state is field 3, utime
    // and stime are fields 14 and 15.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("a /proc stat line")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .context("a short /proc stat line")?
            .parse::<f64>()?)
    };
    // `after` starts at field 3.
    let clock_ticks = 100.0;
    Ok((ticks(14 - 3)? + ticks(15 - 3)?) / clock_ticks)
}

/// Requests per minute by verb for `group` and `pid`'s CPU use in percent of one core, over
/// `window` of waiting.
#[derive(Debug, Clone)]
pub struct IdleCost {
    pub per_minute: BTreeMap<String, f64>,
    /// Every request the API server served, from anyone (the control plane's own included).
    pub all_per_minute: f64,
    pub cpu_percent: f64,
}

impl IdleCost {
    pub async fn measure(
        cluster: &crate::Cluster,
        group: &str,
        pid: u32,
        window: Duration,
    ) -> anyhow::Result<Self> {
        let before = request_counts(cluster, group).await?;
        let all_before: f64 = request_counts(cluster, "*").await?.values().sum();
        let cpu_before = cpu_seconds(pid)?;
        let start = Instant::now();
        tokio::time::sleep(window).await;
        let after = request_counts(cluster, group).await?;
        let all_after: f64 = request_counts(cluster, "*").await?.values().sum();
        let cpu_after = cpu_seconds(pid)?;
        let minutes = start.elapsed().as_secs_f64() / 60.0;
        let per_minute = after
            .iter()
            .map(|(verb, n)| {
                let delta = n - before.get(verb).copied().unwrap_or(0.0);
                (verb.clone(), delta / minutes)
            })
            .filter(|(_, rate)| *rate > 0.0)
            .collect();
        Ok(Self {
            per_minute,
            all_per_minute: (all_after - all_before) / minutes,
            cpu_percent: (cpu_after - cpu_before) / (minutes * 60.0) * 100.0,
        })
    }

    /// `LIST 0.0/min, GET 2.0/min; CPU 0.3 %`.
    pub fn summary(&self) -> String {
        let verbs: Vec<String> = self
            .per_minute
            .iter()
            .map(|(verb, rate)| format!("{verb} {rate:.1}/min"))
            .collect();
        let list = self.per_minute.get("LIST").copied().unwrap_or(0.0);
        format!(
            "LIST {list:.1}/min (all verbs: {}); all groups, all clients {:.0}/min; CPU {:.1} %",
            if verbs.is_empty() {
                "none".to_owned()
            } else {
                verbs.join(", ")
            },
            self.all_per_minute,
            self.cpu_percent
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_providers_requests_are_summed_by_verb_over_resources() {
        let metrics = "# HELP akash_provider_kube_requests_total x
# TYPE akash_provider_kube_requests_total counter
akash_provider_kube_requests_total{verb=\"APPLY\",resource=\"deployments\"} 3
akash_provider_kube_requests_total{verb=\"APPLY\",resource=\"services\"} 2
akash_provider_kube_requests_total{verb=\"LIST\",resource=\"pods\"} 1
akash_provider_bids_sent_total 9
";
        let counts = provider_requests_by_verb(metrics);
        assert_eq!(counts.get("APPLY"), Some(&5.0));
        assert_eq!(counts.get("LIST"), Some(&1.0));
        assert_eq!(counts.len(), 2);
        let detailed = provider_requests_by_verb_and_resource(metrics);
        assert_eq!(detailed.get("APPLY services"), Some(&2.0));
        assert_eq!(detailed.len(), 3);
        let before: BTreeMap<String, f64> = [("APPLY".to_owned(), 2.0)].into();
        let diff = difference(&before, &counts);
        assert_eq!(diff.get("APPLY"), Some(&3.0));
        assert_eq!(diff.get("LIST"), Some(&1.0));
    }

    #[test]
    fn counts_sum_over_codes_and_scopes_of_one_group() {
        let metrics = r#"# HELP apiserver_request_total x
apiserver_request_total{code="200",component="apiserver",dry_run="",group="akash.network",resource="leases",scope="namespace",subresource="",verb="LIST",version="v1"} 12
apiserver_request_total{code="200",component="apiserver",dry_run="",group="akash.network",resource="leases",scope="cluster",subresource="",verb="LIST",version="v1"} 3
apiserver_request_total{code="404",component="apiserver",dry_run="",group="akash.network",resource="leases",scope="resource",subresource="",verb="GET",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="coordination.k8s.io",resource="leases",scope="resource",subresource="",verb="GET",version="v1"} 99
"#;
        let counts = count_by_verb(metrics, "akash.network");
        assert_eq!(counts.get("LIST"), Some(&15.0));
        assert_eq!(counts.get("GET"), Some(&2.0));
        assert_eq!(counts.len(), 2);
        assert_eq!(count_by_verb(metrics, "*").get("GET"), Some(&101.0));
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(cpu_seconds(std::process::id()).unwrap() > 0.0);
    }
}
