//! A manifest asking more than its lease holds is refused; the quota is the lease's.

use crds::sdl::Sdl;
use crds::sdl::groups::Attribute;
use crds::sdl::version::manifest_json;
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::market::{ProviderResource, certificate, scale_rates, unique_dseq};
use e2e::provider::{ProviderOptions, ProviderProcess};
use e2e::scenario::{DevnetUrls, PROVIDER_KEY, Scenario, TENANT_KEY};
use e2e::tenant;
use e2e::wait::{Poll, until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::Api;
use operator::gateway::client::rest_client;

use super::{WAIT, deploy, lease_namespace, nothing_written, put, set_version};

/// Like `scenario`, with a GPU rate, so that the provider bids on the kwok GPU node's A100s.
async fn gpu_scenario(name: &str) -> anyhow::Result<Scenario> {
    e2e::init_tracing();
    let cluster = e2e::Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace(name).await?;
    let devnet = Devnet::start(&format!("e2e-{name}"), "200ms")?;
    let mut rates = scale_rates();
    rates.gpu.insert("*".into(), 1.0);
    let host_uri = format!("https://{}.provider.test:8443", ns.name());
    let resource =
        ProviderResource::create_with(&cluster.client(), ns.name(), &host_uri, &[], rates).await?;
    let options = ProviderOptions {
        namespace: ns.name().to_owned(),
        provider_resource: resource.name.clone(),
        mnemonic: TEST_MNEMONICS[PROVIDER_KEY].to_owned(),
        extra_args: Vec::new(),
    };
    let provider = ProviderProcess::start(cluster.kubeconfig(), &devnet, options.clone())?;
    resource.wait_registered().await?;
    Ok(Scenario {
        chain_of_provider: tenant::client(&devnet, TEST_MNEMONICS[PROVIDER_KEY])?,
        tenant: tenant::client(&devnet, TEST_MNEMONICS[TENANT_KEY])?,
        devnet_ref: DevnetUrls {
            chain_id: devnet.chain_id.clone(),
            rpc_url: devnet.rpc_url.clone(),
            grpc_url: devnet.grpc_url.clone(),
        },
        devnet,
        provider,
        options,
        _resource: resource,
        ns,
    })
}

/// Two replicas of one A100 each, 1 CPU, 1 GiB memory, 1 GiB ephemeral storage, one shared HTTP
/// endpoint.
const A100: &str = r#"
version: "2.0"
services:
  web:
    image: vllm/vllm-openai:v0.6.0
    expose:
      - port: 80
        to: [{global: true}]
profiles:
  compute:
    web:
      resources:
        cpu: {units: 1}
        memory: {size: 1Gi}
        storage: {size: 1Gi}
        gpu:
          units: 1
          attributes:
            vendor:
              nvidia:
                - model: a100
  placement:
    dc:
      pricing:
        web: {denom: uact, amount: 100000}
deployment:
  web:
    dc: {profile: web, count: 2}
"#;

fn attribute(key: &str, value: &str) -> Attribute {
    Attribute {
        key: key.into(),
        value: value.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_taking_more_than_its_lease_is_refused_and_the_quota_is_the_lease()
-> anyhow::Result<()> {
    let s = gpu_scenario("attack-lease").await?;
    let cluster = e2e::Cluster::shared().await?;
    let me = s.provider_address();
    let http = rest_client(&s.tenant, &me, &certificate(&s.tenant).await?).await?;
    let dseq = unique_dseq(11);
    let sdl = Sdl::parse(A100).map_err(|e| anyhow::anyhow!("{e}"))?;
    let lease_name = deploy(&s, &s.tenant, &sdl, dseq).await?;

    type Change = Box<dyn Fn(&mut crds::sdl::manifest::ManifestService)>;
    let attacks: Vec<(&str, &str, Change)> = vec![
        (
            "an H100 on an A100 lease",
            "resources.gpu.attributes",
            Box::new(|s| {
                s.resources.gpu.attributes =
                    Some(vec![attribute("vendor/nvidia/model/h100", "true")])
            }),
        ),
        (
            "any NVIDIA model",
            "resources.gpu.attributes",
            Box::new(|s| {
                s.resources.gpu.attributes = Some(vec![attribute("vendor/nvidia/model/*", "true")])
            }),
        ),
        (
            "leased disk as RAM",
            "resources.storage[0].attributes",
            Box::new(|s| {
                s.resources.storage[0].attributes = Some(vec![
                    attribute("class", "ram"),
                    attribute("persistent", "false"),
                ]);
            }),
        ),
        (
            "leased disk as a persistent beta2 volume",
            "resources.storage[0].attributes",
            Box::new(|s| {
                s.resources.storage[0].attributes = Some(vec![
                    attribute("class", "beta2"),
                    attribute("persistent", "true"),
                ]);
            }),
        ),
        (
            "fifty node ports on no leased port",
            "services[web].expose",
            Box::new(|s| {
                let template = s.expose[0].clone();
                for port in 2000..2050 {
                    let mut extra = template.clone();
                    extra.port = port;
                    extra.external_port = port;
                    s.expose.push(extra);
                }
            }),
        ),
        (
            "three replicas of two",
            "services[web].count",
            Box::new(|s| s.count = 3),
        ),
    ];
    for (what, field, change) in &attacks {
        let mut groups = sdl.manifest().to_vec();
        change(&mut groups[0].services[0]);
        set_version(&s.tenant, dseq, &groups).await?;
        let (code, text) = put(&http, &s, dseq, manifest_json(&groups)).await?;
        assert_eq!(code, 422, "{what}: {text}");
        assert!(text.contains(field), "{what}: {text}");
    }
    nothing_written(&s, &lease_name).await?;

    // The lease's own shape with one replica of its two: accepted; the quota is the lease's.
    let mut groups = sdl.manifest().to_vec();
    groups[0].services[0].count = 1;
    set_version(&s.tenant, dseq, &groups).await?;
    let (code, text) = put(&http, &s, dseq, manifest_json(&groups)).await?;
    assert_eq!(code, 200, "{text}");
    let ns = lease_namespace(&s.leases().get(&lease_name).await?);
    let quota = until("the lease's quota", WAIT, || async {
        let quota = Api::<ResourceQuota>::namespaced(cluster.client(), &ns)
            .get_opt("akash-quota")
            .await?;
        Ok(match quota.and_then(|q| q.spec).and_then(|s| s.hard) {
            Some(hard) => Poll::Ready(hard),
            None => Poll::Pending("no quota yet".into()),
        })
    })
    .await?;
    let hard = |key: &str| quota.get(key).map(|q| q.0.clone()).unwrap_or_default();
    assert_eq!(hard("requests.nvidia.com/gpu"), "2");
    // As the API server writes quantities back (2000m is 2).
    assert_eq!(hard("limits.cpu"), "2");
    assert_eq!(hard("limits.memory"), (2u64 << 30).to_string());
    assert_eq!(hard("services.nodeports"), "0");
    let deployment = until("the Deployment", WAIT, || async {
        Ok(
            match Api::<Deployment>::namespaced(cluster.client(), &ns)
                .get_opt("web")
                .await?
            {
                Some(d) => Poll::Ready(d),
                None => Poll::Pending("no Deployment yet".into()),
            },
        )
    })
    .await?;
    assert_eq!(deployment.spec.replicas, Some(1));
    Ok(())
}
