//! A tenant or a stranger trying to step outside its lease: another tenant's hostname, more than
//! the lease holds, fees paid from someone else's account. Each refusal writes nothing.

use std::collections::BTreeSet;
use std::time::Duration;

use chain_client::Chain;
use chain_client::akash::deployment::{v1 as dv1, v1beta4 as dv4};
use chain_client::node::NodeChain;
use crds::resources::{BidPhase, Lease, LeasePhase};
use crds::sdl::groups::Attribute;
use crds::sdl::names::{LeaseId, ingress_host};
use crds::sdl::version::{manifest_json, manifest_version};
use crds::sdl::{ManifestGroup, Sdl};
use e2e::devnet::{Devnet, TEST_MNEMONICS};
use e2e::market::{
    self, ProviderResource, certificate, object_name, scale_rates, unique_dseq, wait_bid_phase,
    wait_lease,
};
use e2e::provider::{ProviderOptions, ProviderProcess};
use e2e::scenario::{DevnetUrls, PROVIDER_KEY, STRANGER_KEY, Scenario, TENANT_KEY, scenario};
use e2e::tenant;
use e2e::wait::{Poll, until};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, ResourceQuota};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use operator::gateway::client::rest_client;

/// The provider's automatic hosts' domain (the default `--ingress-domain`).
const INGRESS_DOMAIN: &str = "ingress.localhost";
const SHOP: &str = "shop.e2e.test";
const WAIT: Duration = Duration::from_secs(120);

/// One service `web` (port 80, global) accepting `hosts`, `count` replicas of 0.5 CPU, 512 MiB
/// memory and 512 MiB storage.
fn web(count: u32, hosts: &[&str]) -> anyhow::Result<Sdl> {
    let accept = if hosts.is_empty() {
        String::new()
    } else {
        format!("        accept: [{}]\n", hosts.join(", "))
    };
    let text = format!(
        r#"
version: "2.0"
services:
  web:
    image: nginx:1.27
    expose:
      - port: 80
{accept}        to: [{{global: true}}]
profiles:
  compute:
    web:
      resources:
        cpu: {{units: 0.5}}
        memory: {{size: 512Mi}}
        storage: {{size: 512Mi}}
  placement:
    dc:
      pricing:
        web: {{denom: uact, amount: 100000}}
deployment:
  web:
    dc: {{profile: web, count: {count}}}
"#
    );
    Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `who` deploys `sdl` as `dseq` and leases this provider's bid; the Lease resource's name.
async fn deploy(s: &Scenario, who: &NodeChain, sdl: &Sdl, dseq: u64) -> anyhow::Result<String> {
    tenant::create_deployment(who, sdl, dseq).await?;
    let name = object_name(who.address(), dseq);
    wait_bid_phase(&s.bids(), &name, BidPhase::Open).await?;
    market::lease(who, dseq, &s.provider_address()).await?;
    wait_lease(&s.leases(), &name).await?;
    Ok(name)
}

/// Sets deployment `dseq`'s version on chain to `groups`' (the tenant chooses it: the chain
/// never sees a manifest), so the gateway judges `groups` on what they ask, not on the hash.
async fn set_version(who: &NodeChain, dseq: u64, groups: &[ManifestGroup]) -> anyhow::Result<()> {
    let msg = dv4::MsgUpdateDeployment {
        id: Some(dv1::DeploymentId {
            owner: who.address().to_owned(),
            dseq,
        }),
        hash: manifest_version(groups).to_vec(),
    };
    who.broadcast(vec![chain_client::to_any(&msg)]).await?;
    Ok(())
}

/// PUTs a manifest; (status, body).
async fn put(
    http: &reqwest::Client,
    s: &Scenario,
    dseq: u64,
    body: String,
) -> anyhow::Result<(u16, String)> {
    let url = format!(
        "https://{}/deployment/{dseq}/manifest",
        s.provider.gateway_rest_addr
    );
    let response = http.put(url).body(body).send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

fn lease_namespace(lease: &Lease) -> String {
    lease.spec.lease_id.namespace()
}

/// The hosts of the Ingress `web` in `namespace` (none while it does not exist).
async fn ingress_hosts(client: &kube::Client, namespace: &str) -> anyhow::Result<BTreeSet<String>> {
    Ok(Api::<Ingress>::namespaced(client.clone(), namespace)
        .get_opt("web")
        .await?
        .and_then(|i| i.spec)
        .and_then(|s| s.rules)
        .into_iter()
        .flatten()
        .filter_map(|r| r.host)
        .collect())
}

async fn wait_ingress(
    client: &kube::Client,
    namespace: &str,
    what: &str,
    wanted: impl Fn(&BTreeSet<String>) -> bool,
) -> anyhow::Result<()> {
    until(what, WAIT, || async {
        let hosts = ingress_hosts(client, namespace).await?;
        Ok(if wanted(&hosts) {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("{hosts:?}"))
        })
    })
    .await
}

async fn wait_phase(s: &Scenario, name: &str, phases: &[LeasePhase]) -> anyhow::Result<Lease> {
    until(&format!("Lease {name} in {phases:?}"), WAIT, || async {
        let lease = s.leases().get(name).await?;
        let phase = lease.status.as_ref().and_then(|st| st.phase);
        Ok(match phase {
            Some(p) if phases.contains(&p) => Poll::Ready(lease),
            other => Poll::Pending(format!("phase {other:?}")),
        })
    })
    .await
}

/// Nothing of the refused manifests was written: the lease has no manifest, its namespace
/// does not exist.
async fn nothing_written(s: &Scenario, lease_name: &str) -> anyhow::Result<()> {
    let cluster = e2e::Cluster::shared().await?;
    let lease = s.leases().get(lease_name).await?;
    assert!(
        lease.spec.manifest.is_none(),
        "{lease_name}: a manifest was recorded"
    );
    assert!(
        Api::<Namespace>::all(cluster.client())
            .get_opt(&lease_namespace(&lease))
            .await?
            .is_none(),
        "{lease_name}: a namespace was created"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_is_held_provider_wide_by_the_first_lease_until_it_closes() -> anyhow::Result<()> {
    let blocked = ["--blocked-hostnames", "*.blocked.test"].map(String::from);
    let mut s = scenario("attack-hosts", &[("host", "akash")], blocked.to_vec()).await?;
    let cluster = e2e::Cluster::shared().await?;
    let me = s.provider_address();
    let d = &s.devnet_ref;
    let bob = tenant::client_for(
        &d.chain_id,
        &d.rpc_url,
        &d.grpc_url,
        TEST_MNEMONICS[STRANGER_KEY],
    )?;
    let alice_http = rest_client(&s.tenant, &me, &certificate(&s.tenant).await?).await?;
    let bob_http = rest_client(&bob, &me, &certificate(&bob).await?).await?;
    let (a1, a2, b1) = (unique_dseq(1), unique_dseq(2), unique_dseq(3));

    // Alice's deployment serves shop.e2e.test.
    let shop = web(1, &[SHOP])?;
    let a1_lease = deploy(&s, &s.tenant, &shop, a1).await?;
    let (code, text) = put(&alice_http, &s, a1, shop.manifest_json()).await?;
    assert_eq!(code, 200, "{text}");
    let a1_ns = lease_namespace(&s.leases().get(&a1_lease).await?);
    wait_ingress(&cluster.client(), &a1_ns, "Alice's Ingress", |h| {
        h.contains(SHOP)
    })
    .await?;

    // Bob leases the same shape and names Alice's host, in capitals, Alice's automatic host,
    // another name under the ingress domain, and a blocked name: 409 naming the host, each time.
    let b1_lease = deploy(&s, &bob, &web(1, &[])?, b1).await?;
    let alices_auto = ingress_host(
        &LeaseId {
            owner: s.tenant.address().to_owned(),
            dseq: a1,
            gseq: 1,
            oseq: 1,
            provider: me.clone(),
        },
        "web",
        INGRESS_DOMAIN,
    );
    let stolen = [
        SHOP.to_owned(),
        SHOP.to_uppercase(),
        alices_auto,
        format!("admin.{INGRESS_DOMAIN}"),
        "www.blocked.test".to_owned(),
    ];
    for host in &stolen {
        let groups = web(1, &[host])?.manifest().to_vec();
        set_version(&bob, b1, &groups).await?;
        let (code, text) = put(&bob_http, &s, b1, manifest_json(&groups)).await?;
        assert_eq!(code, 409, "{host}: {text}");
        assert!(text.contains(&host.to_lowercase()), "{host}: {text}");
    }
    nothing_written(&s, &b1_lease).await?;
    assert!(
        ingress_hosts(&cluster.client(), &a1_ns)
            .await?
            .contains(SHOP)
    );

    // A crash forgets nothing: the reservation is the Lease resources.
    s.provider.restart()?;
    let take_shop = web(1, &[SHOP])?.manifest().to_vec();
    set_version(&bob, b1, &take_shop).await?;
    let (code, text) = until("the restarted gateway answering", WAIT, || async {
        Ok(
            match put(&bob_http, &s, b1, manifest_json(&take_shop)).await {
                Ok(answer) if answer.0 != 503 => Poll::Ready(answer),
                Ok(answer) => Poll::Pending(format!("{answer:?}")),
                Err(e) => Poll::Pending(e.to_string()),
            },
        )
    })
    .await?;
    assert_eq!(code, 409, "after the restart: {text}");
    nothing_written(&s, &b1_lease).await?;

    // Alice moves the host to her second deployment: it is accepted, her first lease gives the
    // host up, and its Ingress drops it.
    let a2_lease = deploy(&s, &s.tenant, &shop, a2).await?;
    let (code, text) = put(&alice_http, &s, a2, shop.manifest_json()).await?;
    assert_eq!(code, 200, "{text}");
    let held = |l: &Lease| l.spec.manifest.as_ref().and_then(|m| m.hostnames.clone());
    assert_eq!(held(&s.leases().get(&a1_lease).await?), Some(vec![]));
    assert_eq!(
        held(&s.leases().get(&a2_lease).await?),
        Some(vec![SHOP.to_owned()])
    );
    let a2_ns = lease_namespace(&s.leases().get(&a2_lease).await?);
    wait_ingress(
        &cluster.client(),
        &a2_ns,
        "the host on Alice's second Ingress",
        |h| h.contains(SHOP),
    )
    .await?;
    wait_ingress(
        &cluster.client(),
        &a1_ns,
        "the host off Alice's first Ingress",
        |h| !h.contains(SHOP) && !h.is_empty(),
    )
    .await?;

    // Until it closes: once Alice's leases are closed, Bob may have it.
    for dseq in [a1, a2] {
        market::close_deployment(&s.tenant, dseq).await?;
    }
    for name in [&a1_lease, &a2_lease] {
        wait_phase(&s, name, &[LeasePhase::Closing, LeasePhase::Closed]).await?;
    }
    let (code, text) = put(&bob_http, &s, b1, manifest_json(&take_shop)).await?;
    assert_eq!(code, 200, "once Alice's leases closed: {text}");
    Ok(())
}

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

/// A MsgSend of 1 uakt from `from` to itself whose fee names `payer`, signed by `from` alone.
fn send_paid_by(
    from: &devnet::genesis::TestAccount,
    account_number: u64,
    sequence: u64,
    chain_id: &str,
    payer: &str,
) -> anyhow::Result<Vec<u8>> {
    use cosmos_sdk_proto::Any;
    use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
    use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
    use cosmos_sdk_proto::cosmos::crypto::secp256k1::PubKey;
    use cosmos_sdk_proto::cosmos::tx::signing::v1beta1::SignMode;
    use cosmos_sdk_proto::cosmos::tx::v1beta1::{
        AuthInfo, Fee, ModeInfo, SignDoc, SignerInfo, TxBody, TxRaw, mode_info,
    };
    use cosmos_sdk_proto::prost::Message;
    let coin = |amount: &str| Coin {
        denom: "uakt".into(),
        amount: amount.into(),
    };
    let body = TxBody {
        messages: vec![Any {
            type_url: "/cosmos.bank.v1beta1.MsgSend".into(),
            value: MsgSend {
                from_address: from.address.clone(),
                to_address: from.address.clone(),
                amount: vec![coin("1")],
            }
            .encode_to_vec(),
        }],
        ..Default::default()
    };
    let auth_info = AuthInfo {
        signer_infos: vec![SignerInfo {
            public_key: Some(Any {
                type_url: "/cosmos.crypto.secp256k1.PubKey".into(),
                value: PubKey {
                    key: from.key.public_key().to_bytes(),
                }
                .encode_to_vec(),
            }),
            mode_info: Some(ModeInfo {
                sum: Some(mode_info::Sum::Single(mode_info::Single {
                    mode: SignMode::Direct as i32,
                })),
            }),
            sequence,
        }],
        fee: Some(Fee {
            amount: vec![coin("5000000")],
            gas_limit: 200_000,
            payer: payer.to_owned(),
            granter: String::new(),
        }),
        ..Default::default()
    };
    let body_bytes = body.encode_to_vec();
    let auth_info_bytes = auth_info.encode_to_vec();
    let doc = SignDoc {
        body_bytes: body_bytes.clone(),
        auth_info_bytes: auth_info_bytes.clone(),
        chain_id: chain_id.to_owned(),
        account_number,
    };
    let signature = from
        .key
        .sign(&doc.encode_to_vec())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .to_vec();
    Ok(TxRaw {
        body_bytes,
        auth_info_bytes,
        signatures: vec![signature],
    }
    .encode_to_vec())
}

/// A stranger names the provider's account as fee payer of its own transaction, signed by
/// itself only: the devnet refuses it, and the provider pays nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_make_the_provider_pay_its_fees() -> anyhow::Result<()> {
    e2e::init_tracing();
    let devnet = Devnet::start("e2e-attack-fees", "200ms")?;
    let provider = tenant::client(&devnet, TEST_MNEMONICS[PROVIDER_KEY])?;
    let stranger = tenant::client(&devnet, TEST_MNEMONICS[STRANGER_KEY])?;
    let accounts = devnet::genesis::test_accounts()?;
    let from = &accounts[STRANGER_KEY];
    assert_eq!(from.address, stranger.address());
    let before = provider.balance(provider.address(), "uakt").await?;
    let account = stranger.account(stranger.address()).await?;
    let raw = send_paid_by(
        from,
        account.account_number,
        account.sequence,
        &devnet.chain_id,
        provider.address(),
    )?;
    let rpc = chain_client::rpc::CometRpc::new(&devnet.rpc_url, Duration::from_secs(10))?;
    let result = rpc.broadcast_tx_sync(&raw).await?;
    assert_eq!(result.code, 4, "{}", result.log);
    assert!(
        result.log.contains("wrong number of signers"),
        "{}",
        result.log
    );
    // Blocks go by; the provider's balance does not move.
    let height = provider.latest_height().await?;
    until("two more blocks", WAIT, || async {
        let now = provider.latest_height().await?;
        Ok(if now >= height + 2 {
            Poll::Ready(())
        } else {
            Poll::Pending(format!("height {now}"))
        })
    })
    .await?;
    assert_eq!(provider.balance(provider.address(), "uakt").await?, before);
    Ok(())
}
