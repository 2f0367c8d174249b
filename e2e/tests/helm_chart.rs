//! The helm chart `helm/akash-provider`: `helm lint` and `helm template` (the objects, the restricted
//! security context, the key Secret only ever referenced, every `akash-provider run` setting as an
//! environment variable the real binary accepts, the schema's refusals), and its RBAC against the
//! real API server: the real provider, out of cluster with a token of the chart's ServiceAccount,
//! registers, bids, runs a lease's workloads and tears them down, and cannot do what it must not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use chain_client::Chain;
use crds::resources::{BidPhase, LeasePhase, Provider};
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::market::{self, OPENSPEEDTEST_PRICE, object_name, unique_dseq};
use e2e::provider::{ProviderOptions, ProviderProcess};
use e2e::scenario::{PROVIDER_KEY, TENANT_KEY};
use e2e::tenant;
use e2e::wait::{Poll, until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const KEY_SECRET: &str = "e2e-provider-key";
/// A bech32 address for the allow and deny lists (only its shape matters here).
const SOME_TENANT: &str = "akash1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu";

fn chart_dir() -> PathBuf {
    e2e::repo_dir().join("helm/akash-provider")
}

fn helm() -> Command {
    Command::new(e2e::tool_path("helm"))
}

/// The required values, plus the optional lists and maps so that every setting is rendered.
fn base_values() -> Value {
    json!({
        "key": { "existingSecret": KEY_SECRET },
        "chain": {
            "id": "testnet-1",
            "rpcUrl": "http://rpc.example:26657",
            "grpcUrl": "http://grpc.example:9090",
        },
        "provider": {
            "hostUri": "https://provider.example.com:8443",
            "attributes": [{ "key": "host", "value": "akash" }],
        },
        "bidding": { "allowOwners": [SOME_TENANT], "denyOwners": [SOME_TENANT] },
        "inventory": { "storageClasses": { "beta2": "2Ti" }, "nodeSelector": { "akash.network": "true" } },
        "workloads": {
            "denyEgressCidrs": ["203.0.113.0/24", "198.51.100.7/32"],
            "blockedHostnames": ["admin.example.com", "*.internal.example.com"],
        },
    })
}

/// Merges `patch` into `base` (objects key by key, anything else replaced).
fn merged(mut base: Value, patch: &Value) -> Value {
    fn merge(a: &mut Value, b: &Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b.clone(),
        }
    }
    merge(&mut base, patch);
    base
}

/// Writes `values` to a file in `dir` and returns its path.
fn values_file(dir: &Path, values: &Value) -> anyhow::Result<PathBuf> {
    let path = dir.join("values.yaml");
    std::fs::write(&path, serde_yaml::to_string(values)?)?;
    Ok(path)
}

/// `helm template` with these values: the rendered text, or helm's error output.
fn template(values: &Value, extra: &[&str]) -> anyhow::Result<Result<String, String>> {
    let dir = tempfile::tempdir()?;
    let file = values_file(dir.path(), values)?;
    let out = helm()
        .args(["template", "akp"])
        .arg(chart_dir())
        .args(["--namespace", "akash-services", "-f"])
        .arg(&file)
        .args(extra)
        .output()
        .context("running helm template (is deploy/build-k8s.sh done?)")?;
    Ok(if out.status.success() {
        Ok(String::from_utf8(out.stdout)?)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

/// The rendered objects, in order.
fn render(values: &Value) -> anyhow::Result<Vec<Value>> {
    let text = template(values, &[])?.map_err(anyhow::Error::msg)?;
    objects(&text)
}

fn objects(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for doc in format!("\n{text}").split("\n---") {
        let value: serde_yaml::Value = serde_yaml::from_str(doc)?;
        if !value.is_null() {
            out.push(serde_json::to_value(value)?);
        }
    }
    Ok(out)
}

fn kinds(objects: &[Value]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for o in objects {
        *kinds
            .entry(o["kind"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    kinds
}

fn find<'a>(objects: &'a [Value], kind: &str, name_suffix: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| {
            o["kind"] == kind
                && o["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with(name_suffix))
        })
        .unwrap_or_else(|| panic!("no {kind} named *{name_suffix}"))
}

/// Every path (`a.b[0].c`) whose string value is `needle`.
fn paths_of(value: &Value, needle: &str, at: String, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s == needle => out.push(at),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                paths_of(v, needle, format!("{at}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                paths_of(v, needle, format!("{at}.{k}"), out);
            }
        }
        _ => {}
    }
}

fn env_of(container: &Value) -> BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["name"].as_str().unwrap_or_default().to_owned(), e.clone()))
        .collect()
}

/// The restricted PodSecurity profile, and then some (read-only root).
fn assert_restricted(deployment: &Value) {
    let pod = &deployment["spec"]["template"]["spec"];
    let name = &deployment["metadata"]["name"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}");
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{name}"
    );
    for c in pod["containers"].as_array().unwrap() {
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{name}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{name}");
        assert!(sc["capabilities"]["add"].is_null(), "{name}");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
        assert!(sc["privileged"] != true, "{name}");
        for what in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(
                    c["resources"][what][r].is_string(),
                    "{name}: resources.{what}.{r}"
                );
            }
        }
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{name}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        // Each container's own metrics port (`metrics`, `overlay-metrics`).
        for probe in ["livenessProbe", "readinessProbe"] {
            let port = c[probe]["httpGet"]["port"].as_str().unwrap_or_default();
            assert!(port.ends_with("metrics"), "{name}: {probe} on {port:?}");
        }
    }
    assert!(
        pod["hostNetwork"].is_null() && pod["hostPID"].is_null(),
        "{name}"
    );
}

/// The environment variables `akash-provider <subcommand>` reads, from its own `--help`.
fn env_names(subcommand: &str) -> anyhow::Result<BTreeSet<String>> {
    let out = Command::new(e2e::binaries::akash_provider()?)
        .args([subcommand, "--help"])
        .output()?;
    ensure!(
        out.status.success(),
        "akash-provider {subcommand} --help failed"
    );
    let text = String::from_utf8(out.stdout)?;
    Ok(text
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split(['=', ']']).next())
        .map(str::to_owned)
        .collect())
}

#[test]
fn chart_lints_and_renders_the_operator_restricted_with_the_key_only_referenced()
-> anyhow::Result<()> {
    // With a leased-IP pool, so that every setting is rendered.
    let values = merged(
        base_values(),
        &json!({ "inventory": { "ipPool": "leased" } }),
    );
    let dir = tempfile::tempdir()?;
    let file = values_file(dir.path(), &values)?;
    let lint = helm()
        .args(["lint", "--strict"])
        .arg(chart_dir())
        .arg("-f")
        .arg(&file)
        .output()?;
    assert!(
        lint.status.success(),
        "helm lint: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );

    let objects = render(&values)?;
    let expected: BTreeMap<String, usize> = [
        ("ServiceAccount", 1),
        ("ClusterRole", 1),
        ("ClusterRoleBinding", 1),
        // The release namespace's, the manifests' Secrets', `default`'s (API server
        // endpoints) and the IP pool's.
        ("Role", 4),
        ("RoleBinding", 4),
        ("Namespace", 1),
        ("Service", 2),
        ("Deployment", 1),
        ("Provider", 1),
    ]
    .map(|(k, n)| (k.to_owned(), n))
    .into();
    assert_eq!(kinds(&objects), expected);
    // The pool's Role reads MetalLB's pools in their namespace, nothing else.
    let pool_role = objects
        .iter()
        .find(|o| o["kind"] == "Role" && o["metadata"]["namespace"] == "metallb-system")
        .expect("a Role in metallb-system");
    assert_eq!(
        pool_role["rules"],
        json!([{ "apiGroups": ["metallb.io"], "resources": ["ipaddresspools"], "verbs": ["list", "watch"] }])
    );

    // The key: no Secret rendered, no data anywhere, its name only in the volume that mounts it.
    for o in &objects {
        assert!(
            o.get("data").is_none() && o.get("stringData").is_none(),
            "{o}"
        );
    }
    let text = serde_json::to_string(&objects)?;
    assert!(!text.to_lowercase().contains("mnemonic\":\""), "{text}");
    assert!(TEST_MNEMONICS.iter().all(|m| !text.contains(m)));
    let mut refs = Vec::new();
    for o in &objects {
        paths_of(
            o,
            KEY_SECRET,
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            ),
            &mut refs,
        );
    }
    assert_eq!(
        refs,
        ["Deployment/akp-akash-provider.spec.template.spec.volumes[0].secret.secretName"]
    );

    let deployment = find(&objects, "Deployment", "akp-akash-provider");
    assert_restricted(deployment);
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "akp-akash-provider");
    let container = &pod["containers"][0];
    assert_eq!(container["args"], json!(["run"]));
    let key_volume = &pod["volumes"][0];
    assert_eq!(
        key_volume["secret"]["items"],
        json!([{ "key": "mnemonic", "path": "mnemonic" }])
    );
    assert_eq!(key_volume["secret"]["defaultMode"], 0o440);
    let mount = container["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == key_volume["name"])
        .expect("the key volume is mounted");
    assert_eq!(mount["readOnly"], true);
    let env = env_of(container);
    assert_eq!(
        env["AKASH_KEY_FILE"]["value"].as_str(),
        Some(format!("{}/mnemonic", mount["mountPath"].as_str().unwrap()).as_str())
    );
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert_eq!(env["AKASH_NAMESPACE"]["value"], "akash-services");
    assert_eq!(
        env["AKASH_PROVIDER_RESOURCE"]["value"],
        "akp-akash-provider"
    );
    assert_eq!(env["AKASH_CHAIN_ID"]["value"], "testnet-1");
    assert_eq!(env["AKASH_STORAGE_CLASSES"]["value"], "beta2=2Ti");
    assert_eq!(env["AKASH_NODE_SELECTOR"]["value"], "akash.network=true");
    assert_eq!(env["AKASH_MAX_MANIFEST_BYTES"]["value"], "4194304");
    assert_eq!(
        env["AKASH_DENY_EGRESS_CIDRS"]["value"],
        "203.0.113.0/24,198.51.100.7/32"
    );
    assert_eq!(
        env["AKASH_BLOCKED_HOSTNAMES"]["value"],
        "admin.example.com,*.internal.example.com"
    );
    // Every setting of `akash-provider run` is there, and nothing it does not know.
    let names: BTreeSet<String> = env
        .keys()
        .filter(|n| n.starts_with("AKASH_") || *n == "POD_NAME")
        .cloned()
        .collect();
    assert_eq!(names, env_names("run")?);
    let ports: BTreeMap<String, i64> = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            ("grpc".to_owned(), 8444),
            ("metrics".to_owned(), 8080),
            ("rest".to_owned(), 8443)
        ]
        .into()
    );

    // The real binary accepts every rendered value: it gets as far as reading the key file.
    let mut run = Command::new(e2e::binaries::akash_provider()?);
    run.arg("run").env_clear();
    for (name, e) in &env {
        if let Some(v) = e["value"].as_str() {
            run.env(name, v);
        }
    }
    let out = run.env("POD_NAME", "render-test").output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("reading the provider key"), "{stderr}");

    let gateway = find(&objects, "Service", "-gateway");
    assert_eq!(
        gateway["spec"]["ports"],
        json!([
            { "name": "rest", "port": 8443, "targetPort": "rest", "protocol": "TCP" },
            { "name": "grpc", "port": 8444, "targetPort": "grpc", "protocol": "TCP" },
        ])
    );
    let metrics = find(&objects, "Service", "-metrics");
    assert_eq!(metrics["spec"]["ports"][0]["port"], 8080);

    let provider = find(&objects, "Provider", "akp-akash-provider");
    assert_eq!(provider["apiVersion"], "akash.network/v1");
    assert_eq!(
        provider["spec"]["hostUri"],
        "https://provider.example.com:8443"
    );
    assert_eq!(
        provider["spec"]["attributes"],
        json!([{ "key": "host", "value": "akash" }])
    );
    assert!(provider["spec"]["pricing"]["scale"]["cpu"].is_number());

    // Least privilege: no wildcards; secrets readable by name in the release namespace, and
    // in the namespace of the manifests' Secrets, only.
    for kind in ["ClusterRole", "Role"] {
        for o in objects.iter().filter(|o| o["kind"] == kind) {
            let apart = o["metadata"]["namespace"]
                .as_str()
                .is_some_and(|ns| ns.ends_with("-manifests"));
            for rule in o["rules"].as_array().unwrap() {
                let all = rule.to_string();
                assert!(!all.contains("\"*\""), "{kind}: {rule}");
                let verbs = &rule["verbs"];
                if rule["resources"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("secrets"))
                    && verbs.as_array().unwrap().contains(&json!("get"))
                {
                    assert_eq!(kind, "Role", "{rule}");
                    if !apart {
                        assert_eq!(rule["resourceNames"], json!(["akash-provider-certificate"]));
                    }
                }
            }
        }
    }
    Ok(())
}

#[test]
fn tenant_enabled_adds_the_tenant_controller_with_its_own_account() -> anyhow::Result<()> {
    let objects = render(&merged(
        base_values(),
        &json!({ "tenant": { "enabled": true } }),
    ))?;
    let k = kinds(&objects);
    assert_eq!(
        (
            k["Deployment"],
            k["ServiceAccount"],
            k["ClusterRole"],
            k["ClusterRoleBinding"],
            k["RoleBinding"]
        ),
        (2, 2, 2, 1, 4),
        "the tenant controller is bound in its namespace only, never cluster-wide"
    );
    let tenant = find(&objects, "Deployment", "akp-akash-provider-tenant");
    assert_restricted(tenant);
    let pod = &tenant["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "akp-akash-provider-tenant");
    let container = &pod["containers"][0];
    assert_eq!(container["args"], json!(["tenant"]));
    let env = env_of(container);
    let values: BTreeMap<&str, &str> = env
        .iter()
        .filter_map(|(n, e)| Some((n.as_str(), e["value"].as_str()?)))
        .collect();
    for (name, value) in [
        ("AKASH_CHAIN_ID", "testnet-1"),
        ("AKASH_RPC_URL", "http://rpc.example:26657"),
        ("AKASH_GRPC_URL", "http://grpc.example:9090"),
        ("AKASH_GAS_PRICE", "0.025uakt"),
        ("AKASH_TENANT_WATCH_NAMESPACE", "akash-services"),
        ("AKASH_METRICS_ADDR", "0.0.0.0:8081"),
        ("AKASH_TENANT_FAILURE_THRESHOLD", "5m"),
    ] {
        assert_eq!(values.get(name), Some(&value), "{name}");
    }
    // Every setting of the controller, and nothing it does not know; the real binary accepts
    // them all (it gets as far as looking for a Kubernetes API).
    let names: BTreeSet<String> = env
        .keys()
        .filter(|n| n.starts_with("AKASH_"))
        .cloned()
        .collect();
    assert_eq!(names, env_names("tenant")?);
    let mut run = Command::new(e2e::binaries::akash_provider()?);
    run.arg("tenant")
        .env_clear()
        .envs(values.iter().filter(|(n, _)| n.starts_with("AKASH_")));
    let out = run.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Kubernetes API"), "{stderr}");
    assert!(
        !env.contains_key("AKASH_KEY_FILE"),
        "the tenant controller has no key of its own"
    );
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["secret"].is_null())
    );

    let role = find(&objects, "ClusterRole", "-tenant");
    let rules: BTreeSet<(String, String, String)> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            let groups = r["apiGroups"].as_array().unwrap().clone();
            let resources = r["resources"].as_array().unwrap().clone();
            let verbs = r["verbs"].as_array().unwrap().clone();
            groups.into_iter().flat_map(move |g| {
                let verbs = verbs.clone();
                resources.clone().into_iter().flat_map(move |res| {
                    let g = g.clone();
                    verbs.clone().into_iter().map(move |v| {
                        (
                            g.as_str().unwrap().to_owned(),
                            res.as_str().unwrap().to_owned(),
                            v.as_str().unwrap().to_owned(),
                        )
                    })
                })
            })
        })
        .collect();
    let mut expected = BTreeSet::new();
    let mut add = |g: &str, r: &str, verbs: &[&str]| {
        for v in verbs {
            expected.insert((g.to_owned(), r.to_owned(), (*v).to_owned()));
        }
    };
    add(
        "akash.network",
        "manifests",
        &["get", "list", "watch", "patch", "update"],
    );
    add(
        "akash.network",
        "manifests/status",
        &["get", "patch", "update"],
    );
    add("", "secrets", &["get", "create", "patch", "update"]);
    add("", "events", &["create", "patch"]);
    add("events.k8s.io", "events", &["create", "patch"]);
    assert_eq!(rules, expected);
    // No namespace given: it watches, and holds rights in, the release namespace.
    let binding = find(&objects, "RoleBinding", "-tenant");
    assert_eq!(binding["metadata"]["namespace"], "akash-services");
    assert_eq!(binding["subjects"][0]["name"], "akp-akash-provider-tenant");
    assert_eq!(binding["subjects"][0]["namespace"], "akash-services");
    let env = env_of(
        &find(&objects, "Deployment", "-tenant")["spec"]["template"]["spec"]["containers"][0],
    );
    assert_eq!(
        env["AKASH_TENANT_WATCH_NAMESPACE"]["value"],
        "akash-services"
    );

    // One namespace watched: bound there only.
    let objects = render(&merged(
        base_values(),
        &json!({ "tenant": { "enabled": true, "watchNamespace": "team-a" } }),
    ))?;
    assert_eq!(kinds(&objects)["ClusterRoleBinding"], 1);
    let binding = find(&objects, "RoleBinding", "-tenant");
    assert_eq!(binding["metadata"]["namespace"], "team-a");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    let tenant = find(&objects, "Deployment", "-tenant");
    let env = env_of(&tenant["spec"]["template"]["spec"]["containers"][0]);
    assert_eq!(env["AKASH_TENANT_WATCH_NAMESPACE"]["value"], "team-a");

    // The ServiceMonitor, off by default.
    assert!(!kinds(&objects).contains_key("ServiceMonitor"));
    let objects = render(&merged(
        base_values(),
        &json!({ "metrics": { "serviceMonitor": { "enabled": true } } }),
    ))?;
    let monitor = find(&objects, "ServiceMonitor", "akp-akash-provider");
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "metrics");
    assert_eq!(monitor["spec"]["endpoints"][0]["path"], "/metrics");
    let metrics = find(&objects, "Service", "-metrics");
    for (k, v) in monitor["spec"]["selector"]["matchLabels"]
        .as_object()
        .unwrap()
    {
        assert_eq!(
            &metrics["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the metrics Service"
        );
    }
    Ok(())
}

#[test]
fn the_values_schema_refuses_wrong_values_by_name() -> anyhow::Result<()> {
    let refused = |values: Value, extra: &[&str]| -> anyhow::Result<String> {
        match template(&values, extra)? {
            Ok(text) => bail!("accepted: {}", &text[..text.len().min(300)]),
            Err(e) => Ok(e),
        }
    };
    let e = refused(base_values(), &["--set-string", "replicaCount=two"])?;
    assert!(
        e.contains("/replicaCount") && e.contains("want integer"),
        "{e}"
    );

    let mut no_key = base_values();
    no_key.as_object_mut().unwrap().remove("key");
    let e = refused(no_key, &[])?;
    assert!(
        e.contains("/key") && e.contains("missing property 'existingSecret'"),
        "{e}"
    );

    let e = refused(
        merged(
            base_values(),
            &json!({ "provider": { "pricing": { "strategy": "auction" } } }),
        ),
        &[],
    )?;
    assert!(
        e.contains("/provider/pricing/strategy") && e.contains("'scale', 'script'"),
        "{e}"
    );

    let e = refused(
        merged(
            base_values(),
            &json!({ "key": { "mnemonic": "abandon abandon about" } }),
        ),
        &[],
    )?;
    assert!(
        e.contains("/key") && e.contains("mnemonic") && e.contains("not allowed"),
        "{e}"
    );

    let e = refused(
        merged(
            base_values(),
            &json!({ "provider": { "hostUri": "http://plain.example.com" } }),
        ),
        &[],
    )?;
    assert!(e.contains("/provider/hostUri"), "{e}");

    let e = refused(
        merged(
            base_values(),
            &json!({ "leases": { "withdrawalPeriod": "daily" } }),
        ),
        &[],
    )?;
    assert!(e.contains("/leases/withdrawalPeriod"), "{e}");
    Ok(())
}

/// The release, uninstalled when dropped (it owns cluster-scoped objects the namespace does not).
struct Release {
    name: String,
    namespace: String,
    kubeconfig: PathBuf,
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = helm()
            .args([
                "uninstall",
                &self.name,
                "--namespace",
                &self.namespace,
                "--kubeconfig",
            ])
            .arg(&self.kubeconfig)
            .output();
    }
}

/// A kubeconfig for the same API server that authenticates with `token` instead.
fn token_kubeconfig(admin: &Path, token: &str, out: &Path) -> anyhow::Result<()> {
    let mut config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(admin)?)?;
    let user = "chart-service-account";
    config["users"] =
        serde_yaml::from_str(&format!("[{{name: {user}, user: {{token: \"{token}\"}}}}]"))?;
    let contexts = config["contexts"]
        .as_sequence_mut()
        .context("no contexts")?;
    for c in contexts {
        c["context"]["user"] = user.into();
    }
    std::fs::write(out, serde_yaml::to_string(&config)?)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_rbac_is_all_the_real_provider_needs_and_no_more() -> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace("helm-rbac").await?;
    let namespace = ns.name().to_owned();
    // The chart's pods must pass the restricted PodSecurity profile, enforced by the API server.
    Api::<Namespace>::all(cluster.client())
        .patch(
            &namespace,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "pod-security.kubernetes.io/enforce": "restricted" } } })),
        )
        .await?;
    let mut key = Secret::default();
    key.metadata.name = Some(KEY_SECRET.into());
    key.string_data = Some(
        [(
            "mnemonic".to_owned(),
            TEST_MNEMONICS[PROVIDER_KEY].to_owned(),
        )]
        .into(),
    );
    ns.api::<Secret>()
        .create(&PostParams::default(), &key)
        .await?;

    let devnet = Devnet::start("e2e-helm-rbac", "200ms")?;
    let scale = market::scale_rates();
    let values = json!({
        "image": { "repository": "registry.invalid/akash-provider", "tag": "e2e" },
        "key": { "existingSecret": KEY_SECRET },
        "chain": { "id": devnet.chain_id, "rpcUrl": devnet.rpc_url, "grpcUrl": devnet.grpc_url },
        "provider": {
            "name": namespace,
            "hostUri": format!("https://{namespace}.provider.test:8443"),
            "attributes": [{ "key": "host", "value": "akash" }],
            "pricing": { "strategy": "scale", "scale": {
                "cpu": scale.cpu, "memory": scale.memory, "storage": scale.storage,
                "endpoint": 0, "ip": 0,
            } },
        },
        "tenant": { "enabled": true },
    });
    let dir = tempfile::tempdir()?;
    let file = values_file(dir.path(), &values)?;
    let out = helm()
        .args(["install", "akp"])
        .arg(chart_dir())
        .args(["--namespace", &namespace, "-f"])
        .arg(&file)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig())
        .output()?;
    let release = Release {
        name: "akp".into(),
        namespace: namespace.clone(),
        kubeconfig: cluster.kubeconfig().to_path_buf(),
    };
    ensure!(
        out.status.success(),
        "helm install: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let notes = String::from_utf8_lossy(&out.stdout);
    assert!(
        notes.contains(&format!(
            "kubectl -n {namespace} get bids.akash.network,leases.akash.network"
        )),
        "{notes}"
    );

    // The controller-manager creates the chart's pods under the restricted profile (kwok runs them).
    for (component, deployment) in [
        ("provider", "akp-akash-provider"),
        ("tenant", "akp-akash-provider-tenant"),
    ] {
        until(
            &format!("the chart's {component} pod admitted"),
            Duration::from_secs(60),
            || async {
                let selector = format!(
                    "app.kubernetes.io/instance=akp,app.kubernetes.io/component={component}"
                );
                let pods = ns
                    .api::<Pod>()
                    .list(&ListParams::default().labels(&selector))
                    .await?;
                Ok(if pods.items.is_empty() {
                    let d = ns.api::<Deployment>().get(deployment).await?;
                    Poll::Pending(format!("{:?}", d.status.and_then(|s| s.conditions)))
                } else {
                    Poll::Ready(())
                })
            },
        )
        .await?;
    }

    // The real provider, out of cluster, with nothing but the chart ServiceAccount's token.
    let token = cluster
        .kubectl()
        .args([
            "create",
            "token",
            "akp-akash-provider",
            "-n",
            &namespace,
            "--duration",
            "2h",
        ])
        .output()?;
    ensure!(
        token.status.success(),
        "{}",
        String::from_utf8_lossy(&token.stderr)
    );
    let sa_kubeconfig = dir.path().join("sa.kubeconfig");
    token_kubeconfig(
        cluster.kubeconfig(),
        String::from_utf8(token.stdout)?.trim(),
        &sa_kubeconfig,
    )?;
    let provider = ProviderProcess::start(
        &sa_kubeconfig,
        &devnet,
        ProviderOptions {
            namespace: namespace.clone(),
            provider_resource: namespace.clone(),
            mnemonic: TEST_MNEMONICS[PROVIDER_KEY].to_owned(),
            // As the chart's Deployment sets it.
            extra_args: vec![
                "--manifest-secrets-namespace".into(),
                format!("{namespace}-manifests"),
            ],
        },
    )?;

    let providers = Api::<Provider>::all(cluster.client());
    until(
        "the provider registered on chain",
        Duration::from_secs(90),
        || async {
            let p = providers.get(&namespace).await?;
            let status = p.status.unwrap_or_default();
            Ok(if status.registered {
                Poll::Ready(())
            } else {
                Poll::Pending(format!("{:?}", status.conditions))
            })
        },
    )
    .await?;
    let certificate = ns.api::<Secret>().get("akash-provider-certificate").await?;
    assert!(certificate.data.unwrap_or_default().contains_key("tls.crt"));

    // It bids, wins a lease, runs its workloads and tears them down, all under the chart's RBAC.
    let tenant_chain = tenant::client(&devnet, TEST_MNEMONICS[TENANT_KEY])?;
    let me = tenant::client(&devnet, TEST_MNEMONICS[PROVIDER_KEY])?
        .address()
        .to_owned();
    let owner = tenant_chain.address().to_owned();
    let dseq = unique_dseq(83);
    // With `params.permissions` reading logs and events: the provider writes the service's Role
    // under the chart's rights, which must hold every rule of it (it has no `escalate`).
    let sdl = {
        let path = e2e::repo_dir().join("testdata/sdl/awesome-akash/openspeedtest.yaml");
        let text = std::fs::read_to_string(&path)?.replacen(
            "    image: openspeedtest/latest\n",
            "    image: openspeedtest/latest\n    params:\n      permissions:\n        read: [logs, events]\n",
            1,
        );
        ensure!(text.contains("permissions"), "{} changed", path.display());
        crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?
    };
    tenant::create_deployment(&tenant_chain, &sdl, dseq).await?;
    let name = object_name(&owner, dseq);
    let bid = market::wait_bid_phase(&ns.api(), &name, BidPhase::Open).await?;
    assert_eq!(bid.spec.price.amount, OPENSPEEDTEST_PRICE);
    market::wait_chain_bid(&tenant_chain, &owner, dseq, &me).await?;
    market::lease(&tenant_chain, dseq, &me).await?;
    market::wait_lease(&ns.api(), &name).await?;

    let identity = market::certificate(&tenant_chain).await?;
    let http = operator::gateway::client::rest_client(&tenant_chain, &me, &identity).await?;
    let url = format!(
        "https://{}/deployment/{dseq}/manifest",
        provider.gateway_rest_addr
    );
    let response = http.put(&url).body(sdl.manifest_json()).send().await?;
    let status = response.status();
    assert!(status.is_success(), "{status}: {}", response.text().await?);
    let leases = ns.api::<crds::resources::Lease>();
    until("the lease Active", Duration::from_secs(120), || async {
        let st = leases.get(&name).await?.status.unwrap_or_default();
        Ok(if st.phase == Some(LeasePhase::Active) {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("phase {:?}, {:?}", st.phase, st.conditions))
        })
    })
    .await?;
    let lease_namespace = crds::sdl::names::lease_namespace(&crds::sdl::names::LeaseId {
        owner: owner.clone(),
        dseq,
        gseq: 1,
        oseq: 1,
        provider: me.clone(),
    });
    let role =
        Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(cluster.client(), &lease_namespace)
            .get("openspeedtest")
            .await?;
    assert_eq!(
        role.rules.unwrap_or_default().len(),
        4,
        "pods, pods/log, deployments and events"
    );
    market::close_deployment(&tenant_chain, dseq).await?;
    market::wait_namespace_gone(&cluster.client(), &lease_namespace).await?;
    let forbidden = provider
        .logs()
        .lines()
        .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert!(forbidden.is_empty(), "refused by RBAC: {forbidden:#?}");

    // And what it must not do, it cannot.
    let account = format!("system:serviceaccount:{namespace}:akp-akash-provider");
    let tenant_account = format!("{account}-tenant");
    let can_as = |account: &str, args: &[&str]| -> anyhow::Result<String> {
        let out = cluster
            .kubectl()
            .args(["auth", "can-i"])
            .args(args)
            .args(["--as", account])
            .output()?;
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        ensure!(
            answer == "yes" || answer == "no",
            "kubectl auth can-i {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(answer)
    };
    let can = |args: &[&str]| can_as(&account, args);
    for args in [
        &["delete", "nodes"][..],
        &["get", "secrets", "-n", "kube-system"],
        &["get", "secrets", "-n", "default"],
        &["get", &format!("secrets/{KEY_SECRET}"), "-n", &namespace],
        &["create", "clusterrolebindings"],
        // Roles it writes hold only rules it holds itself, and it binds only those.
        &[
            "escalate",
            "roles.rbac.authorization.k8s.io",
            "-n",
            "some-lease",
        ],
        &[
            "bind",
            "roles.rbac.authorization.k8s.io",
            "-n",
            "some-lease",
        ],
        &["bind", "clusterroles.rbac.authorization.k8s.io"],
        &[
            "create",
            "serviceaccounts",
            "--subresource",
            "token",
            "-n",
            "some-lease",
        ],
        &["get", "serviceaccounts", "-n", "kube-system"],
        &["create", "pods", "-n", &namespace],
        &["update", "providers.akash.network/someone-else"],
        &[
            "patch",
            "providers.akash.network/someone-else",
            "--subresource",
            "status",
        ],
        &["delete", "customresourcedefinitions"],
    ] {
        assert_eq!(can(args)?, "no", "can-i {args:?}");
    }
    let own_provider = format!("providers.akash.network/{namespace}");
    for args in [
        &[
            "get",
            "secrets/akash-provider-certificate",
            "-n",
            &namespace,
        ][..],
        &["patch", &own_provider, "--subresource", "status"],
        &["patch", "deployments.apps", "-n", "any-lease-namespace"],
    ] {
        assert_eq!(can(args)?, "yes", "can-i {args:?}");
    }
    // The tenant controller: Manifests and the Secrets beside them in the namespace it watches
    // (the release namespace: no `watchNamespace` given), nothing of the provider's.
    for (args, answer) in [
        (
            &["patch", "manifests.akash.network", "-n", &namespace][..],
            "yes",
        ),
        (
            &[
                "patch",
                "manifests.akash.network",
                "--subresource",
                "status",
                "-n",
                &namespace,
            ],
            "yes",
        ),
        (&["get", "secrets/tenant-key", "-n", &namespace], "yes"),
        (&["list", "secrets", "-n", &namespace], "no"),
        // Outside the namespace it watches: nothing.
        (&["patch", "manifests.akash.network", "-n", "team-x"], "no"),
        (&["get", "secrets/tenant-key", "-n", "team-x"], "no"),
        (
            &["delete", "manifests.akash.network", "-n", &namespace],
            "no",
        ),
        (&["get", "leases.akash.network", "-n", &namespace], "no"),
        (&["create", "deployments.apps", "-n", &namespace], "no"),
        (&["delete", "nodes"], "no"),
    ] {
        assert_eq!(
            can_as(&tenant_account, args)?,
            answer,
            "tenant can-i {args:?}"
        );
    }

    // Every verb on every resource, as `kubectl auth can-i --list` shows them, beyond what any
    // ServiceAccount may do (a fresh one with no binding): exactly the chart README's lists.
    let nobody = "nobody";
    let created = cluster
        .kubectl()
        .args(["create", "serviceaccount", nobody, "-n", &namespace])
        .output()?;
    ensure!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let rights = |account: &str, ns: &str| -> anyhow::Result<BTreeSet<String>> {
        let out = cluster
            .kubectl()
            .args(["auth", "can-i", "--list", "-n", ns, "--as", account])
            .output()?;
        ensure!(
            out.status.success(),
            "can-i --list: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(granted(&String::from_utf8_lossy(&out.stdout)))
    };
    let beyond = |account: &str, ns: &str| -> anyhow::Result<BTreeSet<String>> {
        let everyone = rights(&format!("system:serviceaccount:{namespace}:{nobody}"), ns)?;
        Ok(rights(account, ns)?
            .difference(&everyone)
            .cloned()
            .collect())
    };
    let some_lease = "some-lease-namespace";
    let cluster_wide = rights_of(&[
        ("nodes", "", "list watch"),
        ("pods", "", "get list watch"),
        ("pods/log", "", "get"),
        ("pods/exec", "", "get create"),
        ("events.events.k8s.io", "", "list watch"),
        ("events", "", "get list watch"),
        ("namespaces", "", "get create delete"),
        ("services", "", "list watch create patch delete"),
        ("deployments.apps", "", "get list watch create patch delete"),
        ("statefulsets.apps", "", "list watch create patch delete"),
        (
            "ingresses.networking.k8s.io",
            "",
            "list watch create patch delete",
        ),
        (
            "networkpolicies.networking.k8s.io",
            "",
            "list create patch delete",
        ),
        ("resourcequotas", "", "create patch"),
        ("serviceaccounts", "", "list create patch delete"),
        (
            "roles.rbac.authorization.k8s.io",
            "",
            "list create patch delete",
        ),
        (
            "rolebindings.rbac.authorization.k8s.io",
            "",
            "list create patch delete",
        ),
        ("secrets", "", "create"),
        ("providers.akash.network", &namespace, "get"),
        ("providers.akash.network/status", &namespace, "patch"),
    ]);
    assert_eq!(
        beyond(&account, some_lease)?,
        cluster_wide,
        "the provider's rights in a lease namespace"
    );
    let mut own = cluster_wide.clone();
    own.extend(rights_of(&[
        (
            "bids.akash.network",
            "",
            "get list watch create patch delete",
        ),
        (
            "leases.akash.network",
            "",
            "get list watch create patch delete",
        ),
        ("bids.akash.network/status", "", "patch"),
        ("leases.akash.network/status", "", "patch"),
        ("secrets", "akash-provider-certificate", "get update"),
        ("leases.coordination.k8s.io", "", "create"),
        (
            "leases.coordination.k8s.io",
            "akash-provider-leader",
            "get update",
        ),
        ("events.events.k8s.io", "", "create patch"),
    ]));
    assert_eq!(
        beyond(&account, &namespace)?,
        own,
        "the provider's rights in its own namespace"
    );
    // Secrets are read only where the manifests' registry credentials are kept.
    let mut apart = cluster_wide.clone();
    apart.extend(rights_of(&[("secrets", "", "get list create delete")]));
    assert_eq!(
        beyond(&account, &format!("{namespace}-manifests"))?,
        apart,
        "the provider's rights in the namespace of the manifests' Secrets"
    );
    // The tenant controller: in the namespace it watches (the release namespace here), and
    // nothing at all anywhere else.
    let watched = rights_of(&[
        ("manifests.akash.network", "", "get list watch patch update"),
        ("manifests.akash.network/status", "", "get patch update"),
        ("secrets", "", "get create patch update"),
        ("events", "", "create patch"),
        ("events.events.k8s.io", "", "create patch"),
    ]);
    assert_eq!(beyond(&tenant_account, &namespace)?, watched);
    assert_eq!(
        beyond(&tenant_account, "team-x")?,
        BTreeSet::new(),
        "the tenant controller holds rights outside the namespace it watches"
    );
    drop(provider);
    drop(release);
    Ok(())
}

/// `resource|resource names|verb` for every verb of every row of `kubectl auth can-i --list`
/// (`Resources  Non-Resource URLs  Resource Names  Verbs`, lists in brackets).
fn granted(table: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in table.lines().skip(1) {
        let Some(open) = line.find('[') else { continue };
        let resource = line[..open].trim();
        let lists: Vec<&str> = line[open..]
            .split(']')
            .filter_map(|part| part.trim().strip_prefix('['))
            .collect();
        let [urls, names, verbs] = lists[..] else {
            continue;
        };
        let what = if resource.is_empty() { urls } else { resource };
        for verb in verbs.split_whitespace() {
            out.insert(format!("{what}|{names}|{verb}"));
        }
    }
    out
}

/// The same form as [`granted`] from `(resource, resource name or "", "verb verb")`.
fn rights_of(rows: &[(&str, &str, &str)]) -> BTreeSet<String> {
    rows.iter()
        .flat_map(|(resource, names, verbs)| {
            verbs
                .split_whitespace()
                .map(move |v| format!("{resource}|{names}|{v}"))
        })
        .collect()
}

/// What the chart renders is what the control plane's API server accepts: a server-side dry run
/// with strict field validation against the schemas of the Kubernetes version it runs (and the
/// CRDs), with the tenant controller on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_objects_pass_the_api_servers_strict_schema_check() -> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace("helm-schema").await?;
    let values = merged(base_values(), &json!({ "tenant": { "enabled": true } }));
    let text = template(&values, &["--namespace", ns.name()])?.map_err(anyhow::Error::msg)?;
    // The namespace the chart makes for the manifests' Secrets: a dry run creates nothing, so
    // the objects in it would find no namespace.
    let apart = format!("{}-manifests", ns.name());
    let made = cluster
        .kubectl()
        .args(["create", "namespace", &apart])
        .output()?;
    ensure!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("rendered.yaml");
    std::fs::write(&file, &text)?;
    let out = cluster
        .kubectl()
        .args(["apply", "--dry-run=server", "--validate=strict", "-f"])
        .arg(&file)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Every rendered object was checked, none skipped.
    let rendered = objects(&text)?.len();
    let checked = stdout
        .lines()
        .filter(|l| l.contains("(server dry run)"))
        .count();
    assert_eq!(checked, rendered, "{stdout}");
    // And the check is real: an unknown field is refused by name.
    let broken = text.replacen("spec:\n", "spec:\n  noSuchField: 1\n", 1);
    std::fs::write(&file, broken)?;
    let out = cluster
        .kubectl()
        .args(["apply", "--dry-run=server", "--validate=strict", "-f"])
        .arg(&file)
        .output()?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("noSuchField"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = cluster
        .kubectl()
        .args(["delete", "namespace", &apart, "--wait=false"])
        .output();
    Ok(())
}

#[test]
fn overlay_enabled_adds_the_sidecar_its_service_and_only_its_rights() -> anyhow::Result<()> {
    let plain = render(&base_values())?;
    let objects = render(&merged(
        base_values(),
        &json!({ "overlay": { "enabled": true } }),
    ))?;
    let deployment = find(&objects, "Deployment", "akp-akash-provider");
    assert_restricted(deployment);
    let pod = &deployment["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 2);
    let provider_env = env_of(&containers[0]);
    assert_eq!(provider_env["AKASH_OVERLAY"]["value"], "true");
    let sidecar = &containers[1];
    assert_eq!(sidecar["args"], json!(["overlay"]));
    let env = env_of(sidecar);
    assert_eq!(
        env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"],
        "status.podIP"
    );
    let known = env_names("overlay")?;
    for name in env.keys().filter(|n| n.starts_with("AKASH_")) {
        assert!(
            known.contains(name),
            "{name} is not a setting of `akash-provider overlay`"
        );
    }
    assert_eq!(env["AKASH_OVERLAY_LISTEN"]["value"], "0.0.0.0:8445");
    assert_eq!(env["AKASH_OVERLAY_WIREGUARD"]["value"], "false");
    // The sidecar signs nothing: no wallet key, as a file or otherwise.
    assert!(
        !env.contains_key("AKASH_KEY_FILE"),
        "the sidecar is given the key file"
    );
    assert!(
        sidecar["volumeMounts"].is_null(),
        "the sidecar mounts {}",
        sidecar["volumeMounts"]
    );
    let secret_volumes: Vec<&Value> = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| !v["secret"].is_null())
        .collect();
    assert_eq!(
        secret_volumes.len(),
        1,
        "only the key volume: {secret_volumes:?}"
    );
    assert!(
        !serde_json::to_string(sidecar)?.contains("mnemonic"),
        "{sidecar}"
    );
    let service = find(&objects, "Service", "akp-akash-provider-overlay");
    assert_eq!(service["spec"]["ports"][0]["port"], 8445);

    // Rights: the Tunnels and EndpointSlices only with the overlay (beside the provider's list
    // of the API server's slices in `default`, which every release has).
    let rules = |objects: &[Value]| {
        let others: Vec<&Value> = objects
            .iter()
            .filter(|o| {
                !o["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .ends_with("-apiserver-endpoints")
            })
            .collect();
        serde_json::to_string(&others).unwrap_or_default()
    };
    for needle in ["endpointslices", "tunnels"] {
        assert!(
            !rules(&plain).contains(needle),
            "{needle} without the overlay"
        );
        assert!(
            rules(&objects).contains(needle),
            "{needle} with the overlay"
        );
    }

    // WireGuard: NET_ADMIN for the sidecar alone, and the UDP port.
    let objects = render(&merged(
        base_values(),
        &json!({ "overlay": { "enabled": true, "wireguard": { "enabled": true } } }),
    ))?;
    let deployment = find(&objects, "Deployment", "akp-akash-provider");
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert!(containers[0]["securityContext"]["capabilities"]["add"].is_null());
    assert_eq!(
        containers[1]["securityContext"]["capabilities"]["add"],
        json!(["NET_ADMIN"])
    );
    let mounts: Vec<&Value> = containers[1]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert!(
        mounts.iter().all(|m| m["name"] != "key"),
        "the WireGuard sidecar mounts the key: {mounts:?}"
    );
    let service = find(&objects, "Service", "akp-akash-provider-overlay");
    assert_eq!(service["spec"]["ports"][1]["protocol"], "UDP");
    Ok(())
}

#[test]
fn the_tenant_metrics_service_and_the_grafana_dashboard_render() -> anyhow::Result<()> {
    // The tenant controller's /metrics: a Service of its pods, labelled so that the chart's
    // ServiceMonitor scrapes it beside the provider's.
    let objects = render(&merged(
        base_values(),
        &json!({ "tenant": { "enabled": true } }),
    ))?;
    let service = find(&objects, "Service", "-tenant-metrics");
    assert_eq!(
        service["spec"]["selector"]["app.kubernetes.io/component"],
        "tenant"
    );
    assert_eq!(
        service["metadata"]["labels"]["app.kubernetes.io/component"],
        "metrics"
    );
    assert_eq!(service["spec"]["ports"][0]["port"], 8081);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
    assert!(
        !kinds(&objects).contains_key("ConfigMap"),
        "the dashboard is off by default"
    );

    // The dashboard: the chart's JSON as it is, in a ConfigMap Grafana's sidecar picks up.
    let objects = render(&merged(
        base_values(),
        &json!({ "grafana": { "dashboard": { "enabled": true, "namespace": "monitoring" } } }),
    ))?;
    let map = find(&objects, "ConfigMap", "-dashboard");
    assert_eq!(map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(map["metadata"]["namespace"], "monitoring");
    let shipped: Value = serde_json::from_str(
        map["data"]["akash-provider.json"]
            .as_str()
            .context("the dashboard's JSON")?,
    )?;
    let file: Value = serde_json::from_str(&std::fs::read_to_string(
        chart_dir().join("dashboards/provider.json"),
    )?)?;
    assert_eq!(shipped, file);
    Ok(())
}
