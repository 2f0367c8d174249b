//! The CRDs generated from `crds/` install on the real API server, validate what they should, and
//! read well through `kubectl`.

use std::process::Output;

use crds::resources::{Lease, LeaseRef, LeaseSpec, Price};
use e2e::Cluster;
use kube::api::{Patch, PatchParams, PostParams};

const OWNER: &str = "akash1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu";
const PROVIDER: &str = "akash1zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3wnhjrm";

fn lease(name: &str, dseq: u64) -> Lease {
    Lease::new(
        name,
        LeaseSpec {
            lease_id: LeaseRef {
                owner: OWNER.into(),
                dseq,
                gseq: 1,
                oseq: 1,
                provider: PROVIDER.into(),
            },
            price: Price {
                denom: "uact".into(),
                amount: "12.5".into(),
            },
            created_at: Some(42),
            manifest: None,
            deployment_manifest: None,
        },
    )
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn a_lease_reads_back_and_kubectl_shows_its_columns() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace("crd-lease").await?;
    let leases = ns.api::<Lease>();

    let created = leases
        .create(&PostParams::default(), &lease("first", 4242))
        .await?;
    let read = leases.get("first").await?;
    assert_eq!(read.spec, created.spec);
    assert_eq!(read.spec.lease_id.dseq, 4242);

    for resource in ["leases.akash.network", "aleases"] {
        let out = cluster
            .kubectl()
            .args(["get", resource, "-n", ns.name()])
            .output()?;
        let shown = text(&out);
        assert!(
            out.status.success(),
            "kubectl get {resource} failed: {shown}"
        );
        let header = shown.lines().next().unwrap_or_default();
        for column in [
            "NAME", "OWNER", "DSEQ", "PRICE", "DENOM", "PHASE", "READY", "AGE",
        ] {
            assert!(header.contains(column), "no {column} column in {header:?}");
        }
        let row = shown.lines().nth(1).unwrap_or_default();
        assert!(
            row.starts_with("first") && row.contains(OWNER) && row.contains("4242"),
            "kubectl get {resource} row: {row:?}"
        );
    }
    // The wide view adds the group and order sequences.
    let out = cluster
        .kubectl()
        .args(["get", "aleases", "-o", "wide", "-n", ns.name()])
        .output()?;
    let header = text(&out).lines().next().unwrap_or_default().to_string();
    assert!(
        header.contains("GSEQ") && header.contains("OSEQ"),
        "{header}"
    );
    Ok(())
}

#[tokio::test]
async fn an_invalid_lease_is_refused_with_the_field_and_nothing_is_created() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace("crd-invalid").await?;
    let leases = ns.api::<Lease>();

    let mut bad = lease("bad", 0);
    bad.spec.lease_id.owner = "cosmos1notakash".into();
    bad.spec.price.denom = "usd".into();
    let err = leases
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("the API server accepted an invalid lease");
    let message = err.to_string();
    for field in [
        "spec.leaseId.dseq",
        "spec.leaseId.owner",
        "spec.price.denom",
    ] {
        assert!(
            message.contains(field),
            "{field} is not named in: {message}"
        );
    }
    assert!(
        leases.get_opt("bad").await?.is_none(),
        "an invalid lease was stored"
    );
    Ok(())
}

#[tokio::test]
async fn a_lease_id_cannot_change_after_creation() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace("crd-immutable").await?;
    let leases = ns.api::<Lease>();
    leases
        .create(&PostParams::default(), &lease("fixed", 7))
        .await?;

    let patch = serde_json::json!({ "spec": { "leaseId": { "dseq": 8 } } });
    let err = leases
        .patch("fixed", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect_err("the lease id changed");
    assert!(err.to_string().contains("leaseId is immutable"), "{err}");
    assert_eq!(leases.get("fixed").await?.spec.lease_id.dseq, 7);

    // Other fields stay writable.
    let patch = serde_json::json!({ "spec": { "price": { "amount": "13" } } });
    leases
        .patch("fixed", &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    assert_eq!(leases.get("fixed").await?.spec.price.amount, "13");
    Ok(())
}
