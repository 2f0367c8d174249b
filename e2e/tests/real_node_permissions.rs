//! `params.permissions` on the real node: a service that asks to read its lease's logs gets, as
//! with the Go provider, its own ServiceAccount, Role and RoleBinding, its pods run with that
//! account's token, and the NetworkPolicies let it (and nothing else of the lease) reach the API
//! server. Its mounted token reads its own log from the API server; the token reads nothing
//! beyond its Role; a service without permissions has no token and no way to the
//! API server; a manifest that drops the permissions takes all of it away.

use std::time::Duration;

use chain_client::Chain;
use e2e::market::{leased_sdl, send_manifest, unique_dseq};
use e2e::real_node::{
    self, LeaseNamespaceGuard, RealNode, pod_name, real_scenario, running_pod, wait_active,
};
use e2e::wait::{Poll, until};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::ListParams;

const TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// `reader` (with `read: [logs, events]` unless `permissions` is false) and `plain` (none), both
/// the test workload.
fn sdl(permissions: bool) -> anyhow::Result<crds::sdl::Sdl> {
    let image = real_node::workload_image();
    let params = if permissions {
        "\n    params:\n      permissions:\n        read: [logs, events]"
    } else {
        ""
    };
    let text = format!(
        r#"
version: "2.0"
services:
  reader:
    image: {image}
    env: ["MESSAGE=reader", "PORTS=8080", "SERVICE_NAME=reader"]{params}
    expose:
      - port: 8080
        to: [{{service: plain}}]
  plain:
    image: {image}
    env: ["MESSAGE=plain", "PORTS=8080", "SERVICE_NAME=plain"]
    expose:
      - port: 8080
        to: [{{service: reader}}]
profiles:
  compute:
    small:
      resources: {{cpu: {{units: 0.1}}, memory: {{size: 64Mi}}, storage: {{size: 64Mi}}}}
  placement:
    dc:
      attributes: {{host: akash}}
      pricing:
        small: {{denom: uact, amount: 1000}}
deployment:
  reader: {{dc: {{profile: small, count: 1}}}}
  plain: {{dc: {{profile: small, count: 1}}}}
"#
    );
    crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// A client of the API server that authenticates with `token` only (the admin kubeconfig's
/// server and CA, none of its credentials).
async fn token_client(cluster: &e2e::Cluster, token: &str) -> anyhow::Result<kube::Client> {
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(cluster.kubeconfig())?)?;
    config["users"] = serde_yaml::from_str(&format!(
        "[{{name: lease-service, user: {{token: \"{token}\"}}}}]"
    ))?;
    for c in config["contexts"]
        .as_sequence_mut()
        .ok_or_else(|| anyhow::anyhow!("no contexts"))?
    {
        c["context"]["user"] = "lease-service".into();
    }
    let kubeconfig: kube::config::Kubeconfig = serde_yaml::from_value(config)?;
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

/// The status code of a refused request (0: not refused, or no status).
fn refused<T>(result: kube::Result<T>) -> u16 {
    match result {
        Err(kube::Error::Api(e)) => e.code,
        _ => 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_with_permissions_reads_its_own_logs_and_nothing_more() -> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    let node = RealNode::get(&cluster).await?;
    let s = real_scenario("realperms", &[]).await?;

    // Lease A: reader (permissions) and plain. Lease B: another lease namespace of the same
    // tenant, with nothing asked.
    let dseq = unique_dseq(41);
    let other_dseq = unique_dseq(42);
    let with = sdl(true)?;
    let ns = leased_sdl(&s, dseq, &with).await?;
    let _cleanup = LeaseNamespaceGuard::new(&cluster, &ns);
    let other_sdl = sdl(false)?;
    let other_ns = leased_sdl(&s, other_dseq, &other_sdl).await?;
    let _cleanup_other = LeaseNamespaceGuard::new(&cluster, &other_ns);
    send_manifest(&s, dseq, &with).await?;
    send_manifest(&s, other_dseq, &other_sdl).await?;
    wait_active(&s, dseq).await?;
    wait_active(&s, other_dseq).await?;
    let reader = pod_name(&running_pod(&cluster, &ns, "reader").await?);
    let plain = pod_name(&running_pod(&cluster, &ns, "plain").await?);
    let stranger = pod_name(&running_pod(&cluster, &other_ns, "reader").await?);

    // The objects, as the Go provider names them: for reader only.
    let client = cluster.client();
    let names = |list: Vec<String>| {
        let mut list = list;
        list.retain(|n| n != "default");
        list
    };
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|a| a.metadata.name.unwrap_or_default())
        .collect();
    assert_eq!(names(accounts), ["reader"]);
    let role = Api::<Role>::namespaced(client.clone(), &ns)
        .get("reader")
        .await?;
    let rules: Vec<(String, String, String)> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r.api_groups.unwrap_or_default().join(","),
                r.resources.unwrap_or_default().join(","),
                r.verbs.join(","),
            )
        })
        .collect();
    let rule = |g: &str, r: &str, v: &str| (g.to_owned(), r.to_owned(), v.to_owned());
    assert_eq!(
        rules,
        [
            rule("", "pods", "get,list,watch"),
            rule("", "pods/log", "get"),
            rule("apps", "deployments", "get,list,watch"),
            rule("", "events", "get,list,watch"),
        ]
    );
    Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .get("reader")
        .await?;
    Api::<NetworkPolicy>::namespaced(client.clone(), &ns)
        .get("akash-apiserver-reader")
        .await?;
    let pods = Api::<Pod>::namespaced(client.clone(), &ns);
    let spec = pods.get(&reader).await?.spec.unwrap_or_default();
    assert_eq!(spec.service_account_name.as_deref(), Some("reader"));
    assert_eq!(spec.automount_service_account_token, Some(true));

    // reader's mounted token, read out of its container, reads reader's own log from the API
    // server, and what else its Role names: the lease's pods (plain's among them) and events.
    // (From the test: the workload's busybox `wget` cannot finish a TLS handshake with this API
    // server. That the container itself reaches the API server is checked below.)
    let out = node.exec(&ns, &reader, &["cat", TOKEN])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout)?;
    assert!(!token.trim().is_empty());
    let as_reader = token_client(&cluster, token.trim()).await?;
    let own = Api::<Pod>::namespaced(as_reader.clone(), &ns);
    let log = own.logs(&reader, &Default::default()).await?;
    assert!(log.contains("serving on 8080"), "{log}");
    let listed: Vec<String> = own
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .map(pod_name)
        .collect();
    assert!(listed.contains(&plain), "{listed:?}");
    Api::<k8s_openapi::api::core::v1::Event>::namespaced(as_reader.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(as_reader.clone(), &ns)
        .get("reader")
        .await?;

    // Attacks with that token: another lease's pods and logs, Secrets, ServiceAccounts and Roles
    // in its own namespace, anything cluster-wide, any write: all refused (403).
    let other = Api::<Pod>::namespaced(as_reader.clone(), &other_ns);
    let lp = ListParams::default();
    let codes = [
        ("other lease's pods", refused(other.list(&lp).await)),
        (
            "other lease's log",
            refused(other.logs(&stranger, &Default::default()).await),
        ),
        (
            "own secrets",
            refused(
                Api::<k8s_openapi::api::core::v1::Secret>::namespaced(as_reader.clone(), &ns)
                    .list(&lp)
                    .await,
            ),
        ),
        (
            "own service accounts",
            refused(
                Api::<ServiceAccount>::namespaced(as_reader.clone(), &ns)
                    .list(&lp)
                    .await,
            ),
        ),
        (
            "own roles",
            refused(
                Api::<Role>::namespaced(as_reader.clone(), &ns)
                    .list(&lp)
                    .await,
            ),
        ),
        (
            "every pod",
            refused(Api::<Pod>::all(as_reader.clone()).list(&lp).await),
        ),
        (
            "kube-system pods",
            refused(
                Api::<Pod>::namespaced(as_reader.clone(), "kube-system")
                    .list(&lp)
                    .await,
            ),
        ),
        (
            "nodes",
            refused(
                Api::<k8s_openapi::api::core::v1::Node>::all(as_reader.clone())
                    .list(&lp)
                    .await,
            ),
        ),
        (
            "deleting plain's pod",
            refused(own.delete(&plain, &Default::default()).await),
        ),
    ];
    for (what, code) in codes {
        assert_eq!(code, 403, "{what}");
    }
    let account = format!("system:serviceaccount:{ns}:reader");
    for args in [
        &["create", "pods", "-n", ns.as_str()][..],
        &["delete", "pods", "-n", ns.as_str()],
        &["create", "pods/exec", "-n", ns.as_str()],
        &["get", "secrets", "-n", ns.as_str()],
        &["get", "pods", "-n", other_ns.as_str()],
        &["patch", "roles", "-n", ns.as_str()],
    ] {
        let out = cluster
            .kubectl()
            .args(["auth", "can-i"])
            .args(args)
            .args(["--as", &account])
            .output()?;
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "no",
            "can-i {args:?}"
        );
    }

    // The network: reader reaches the API server (the Service and its endpoint), and only its
    // port on that address (not the kubelet's); plain and the other lease's pod reach neither.
    let endpoint = Api::<k8s_openapi::api::discovery::v1::EndpointSlice>::namespaced(
        client.clone(),
        "default",
    )
    .list(&ListParams::default().labels("kubernetes.io/service-name=kubernetes"))
    .await?
    .items
    .into_iter()
    .next()
    .ok_or_else(|| anyhow::anyhow!("no endpoints of the kubernetes Service"))?;
    let api_ip = endpoint.endpoints.unwrap_or_default()[0].addresses[0].clone();
    let api_port = u16::try_from(endpoint.ports.unwrap_or_default()[0].port.unwrap_or(443))?;
    assert!(node.can_connect(&ns, &reader, "kubernetes.default.svc", 443)?);
    assert!(node.can_connect(&ns, &reader, &api_ip, api_port)?);
    assert!(!node.can_connect(&ns, &reader, &node.ip.to_string(), 10250)?);
    for (namespace, pod) in [(&ns, &plain), (&other_ns, &stranger)] {
        assert!(
            !node.can_connect(namespace, pod, "kubernetes.default.svc", 443)?,
            "{pod} reached the API server"
        );
        assert!(
            !node.can_connect(namespace, pod, &api_ip, api_port)?,
            "{pod} reached the API server's endpoint"
        );
        // And has no token to use there.
        let out = node.exec(namespace, pod, &["cat", TOKEN])?;
        assert!(!out.status.success() && out.stdout.is_empty(), "{pod}");
        let spec = Api::<Pod>::namespaced(client.clone(), namespace)
            .get(pod)
            .await?
            .spec
            .unwrap_or_default();
        assert_eq!(spec.automount_service_account_token, Some(false), "{pod}");
    }

    // A new version without the permissions: the account, Role, binding and policy go, and
    // reader's new pod has no token and no way to the API server.
    let without = sdl(false)?;
    let msg = chain_client::akash::deployment::v1beta4::MsgUpdateDeployment {
        id: Some(chain_client::akash::deployment::v1::DeploymentId {
            owner: s.tenant.address().to_owned(),
            dseq,
        }),
        hash: without.manifest_version().to_vec(),
    };
    s.tenant.broadcast(vec![chain_client::to_any(&msg)]).await?;
    until(
        "the gateway takes the new version",
        Duration::from_secs(60),
        || async {
            Ok(match send_manifest(&s, dseq, &without).await {
                Ok(()) => Poll::Ready(()),
                Err(e) => Poll::Pending(format!("{e:#}")),
            })
        },
    )
    .await?;
    let roles = Api::<Role>::namespaced(client.clone(), &ns);
    let bindings = Api::<RoleBinding>::namespaced(client.clone(), &ns);
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), &ns);
    let policies = Api::<NetworkPolicy>::namespaced(client.clone(), &ns);
    until(
        "the permissions removed",
        Duration::from_secs(120),
        || async {
            let left = [
                roles.get_opt("reader").await?.is_some(),
                bindings.get_opt("reader").await?.is_some(),
                sas.get_opt("reader").await?.is_some(),
                policies.get_opt("akash-apiserver-reader").await?.is_some(),
            ];
            Ok(if left.iter().any(|l| *l) {
                Poll::Pending(format!("role, binding, account, policy: {left:?}"))
            } else {
                Poll::Ready(())
            })
        },
    )
    .await?;
    let new_reader = until(
        "reader's pod without a token",
        Duration::from_secs(120),
        || async {
            let list = pods
                .list(&ListParams::default().labels("akash.network/manifest-service=reader"))
                .await?;
            let pods: Vec<&Pod> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let ready = pods.len() == 1
                && pods[0].status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                && pods[0]
                    .spec
                    .as_ref()
                    .and_then(|s| s.automount_service_account_token)
                    == Some(false);
            Ok(if ready {
                Poll::Ready(pod_name(pods[0]))
            } else {
                Poll::Pending(format!("{} pods", pods.len()))
            })
        },
    )
    .await?;
    assert!(
        !node
            .exec(&ns, &new_reader, &["cat", TOKEN])?
            .status
            .success()
    );
    assert!(!node.can_connect(&ns, &new_reader, "kubernetes.default.svc", 443)?);
    Ok(())
}
