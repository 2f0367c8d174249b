//! Hostnames are held provider-wide, by the first lease, until it closes.

use std::collections::BTreeSet;

use chain_client::Chain;
use crds::resources::{Lease, LeasePhase};
use crds::sdl::Sdl;
use crds::sdl::names::{LeaseId, ingress_host};
use crds::sdl::version::manifest_json;
use e2e::devnet::TEST_MNEMONICS;
use e2e::market::{self, certificate, unique_dseq};
use e2e::scenario::{STRANGER_KEY, Scenario, scenario};
use e2e::tenant;
use e2e::wait::{Poll, until};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Api;
use operator::gateway::client::rest_client;

use super::{WAIT, deploy, lease_namespace, nothing_written, put, set_version};

/// The provider's automatic hosts' domain (the default `--ingress-domain`).
const INGRESS_DOMAIN: &str = "ingress.localhost";
const SHOP: &str = "shop.e2e.test";

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

    // Both name a new host at the same moment: one gets it, the other is refused. (The gateway
    // checks hosts against what it last wrote, not against a watch that may lag behind it.)
    const RACED: &str = "race.e2e.test";
    let raced = web(1, &[RACED])?;
    let (a3, b2) = (unique_dseq(4), unique_dseq(5));
    let a3_lease = deploy(&s, &s.tenant, &raced, a3).await?;
    let b2_lease = deploy(&s, &bob, &raced, b2).await?;
    let (alice, bob) = tokio::join!(
        put(&alice_http, &s, a3, raced.manifest_json()),
        put(&bob_http, &s, b2, raced.manifest_json()),
    );
    let (alice, bob) = (alice?, bob?);
    let mut codes = [alice.0, bob.0];
    codes.sort_unstable();
    assert_eq!(codes, [200, 409], "Alice {alice:?}, Bob {bob:?}");
    let (winner, loser) = if alice.0 == 200 {
        (&a3_lease, &b2_lease)
    } else {
        (&b2_lease, &a3_lease)
    };
    assert_eq!(
        held(&s.leases().get(winner).await?),
        Some(vec![RACED.to_owned()])
    );
    nothing_written(&s, loser).await?;
    Ok(())
}
