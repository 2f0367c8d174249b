//! A tenant's path: `akash-provider sdl to-cr deploy.yaml | kubectl apply -f -` on the real API
//! server, with real SDL files, and the resource reads back with the same manifest version.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crds::resources::Manifest;
use crds::sdl::Sdl;
use e2e::Cluster;
use kube::core::{ApiResource, DynamicObject};

fn testdata(name: &str) -> PathBuf {
    e2e::repo_dir()
        .join("testdata/sdl/awesome-akash")
        .join(name)
}

fn to_cr(file: &PathBuf, namespace: &str, name: &str) -> anyhow::Result<String> {
    let out = Command::new(e2e::binaries::akash_provider()?)
        .args(["sdl", "to-cr", "--namespace", namespace, "--name", name])
        .arg(file)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "sdl to-cr {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

#[tokio::test]
async fn sdl_to_cr_applies_with_kubectl_and_the_stored_resource_means_the_same_deployment()
-> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace("manifest-cr").await?;
    let manifests = ns.api::<Manifest>();

    // A GPU service, persistent storage with several volumes, and a multi-service deployment.
    let files = [
        "AI-Image-App.yaml",
        "ChatGLM-6B.yaml",
        "DeepSeek-R1-Distill-Qwen-1.5B.yaml",
    ];
    for (i, file) in files.iter().enumerate() {
        let path = testdata(file);
        let parsed = Sdl::parse(&std::fs::read_to_string(&path)?)
            .map_err(|e| anyhow::anyhow!("{file} is not valid SDL: {e}"))?;
        // The API server keeps maps in key order; the resource must mean the key-ordered file.
        let key_ordered: crds::sdl::SdlDocument =
            serde_json::from_value(serde_json::to_value(parsed.document())?)?;
        let expected = Sdl::from_document(&key_ordered)
            .map_err(|e| anyhow::anyhow!("{file} in key order is not valid SDL: {e}"))?;
        let name = format!("app-{i}");
        let yaml = to_cr(&path, ns.name(), &name)?;

        let mut apply = cluster
            .kubectl()
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        apply.stdin.take().unwrap().write_all(yaml.as_bytes())?;
        let out = apply.wait_with_output()?;
        anyhow::ensure!(
            out.status.success(),
            "kubectl apply of {file} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );

        let stored = manifests.get(&name).await?;
        let reread = Sdl::from_document(&stored.spec.sdl)
            .map_err(|e| anyhow::anyhow!("{file} read back is not valid SDL: {e}"))?;
        assert_eq!(
            reread.manifest_version_hex(),
            expected.manifest_version_hex(),
            "{file}: the stored resource has a different manifest version"
        );
        assert_eq!(reread.groups(), expected.groups(), "{file}: groups changed");
    }

    let out = cluster
        .kubectl()
        .args(["get", "manifests.akash.network", "-n", ns.name()])
        .output()?;
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let header = shown.lines().next().unwrap_or_default();
    for column in ["NAME", "PHASE", "DSEQ", "READY", "AGE"] {
        assert!(header.contains(column), "no {column} column in {header:?}");
    }
    assert_eq!(shown.lines().count(), 1 + files.len(), "{shown}");

    // `kubectl explain` reads the structured SDL from the schema.
    let out = cluster
        .kubectl()
        .args(["explain", "manifests.spec.sdl.services.image"])
        .output()?;
    let explained = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && explained.contains("image"),
        "kubectl explain failed: {explained}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn a_manifest_without_its_key_secret_is_refused_by_the_schema() -> anyhow::Result<()> {
    let cluster = Cluster::shared().await?;
    e2e::crds::install(&cluster).await?;
    let ns = cluster.namespace("manifest-invalid").await?;
    let yaml = to_cr(&testdata("AI-Image-App.yaml"), ns.name(), "no-key")?;
    let mut value: serde_json::Value = serde_yaml::from_str(&yaml)?;
    value["spec"]
        .as_object_mut()
        .expect("a spec")
        .remove("keySecret");

    // The typed client cannot build a Manifest without keySecret; send the raw object.
    let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(
        cluster.client(),
        ns.name(),
        &ApiResource::erase::<Manifest>(&()),
    );
    let object: DynamicObject = serde_json::from_value(value)?;
    let err = api
        .create(&Default::default(), &object)
        .await
        .expect_err("a Manifest without keySecret was accepted");
    assert!(err.to_string().contains("spec.keySecret"), "{err}");
    assert!(api.get_opt("no-key").await?.is_none());
    Ok(())
}
