//! The tenant controller's scenarios: one devnet, two or more providers (their own keys,
//! namespaces, `Provider` resources with their real gateway address, their own prices and
//! attributes), and an `akash-provider tenant` process watching a tenant namespace that holds the
//! tenant's key Secret.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use crds::resources::{Distribution, Manifest, ManifestSpec, Price, ScalePricing, SecretKeyRef};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

use crate::devnet::{Devnet, TEST_MNEMONICS};
use crate::market::{ProviderResource, scale_rates};
use crate::provider::{ProviderOptions, ProviderProcess, free_port};
use crate::scenario::{COMPETITOR_KEY, PROVIDER_KEY, STRANGER_KEY, TENANT_KEY};

/// How one provider of a marketplace is set up.
#[derive(Debug, Clone)]
pub struct SiteSpec {
    /// Index of its devnet test mnemonic.
    pub key: usize,
    /// Its rates, as a multiple of [`scale_rates`].
    pub factor: f64,
    /// Its attributes on chain (placement requirements match them).
    pub attributes: Vec<(String, String)>,
    /// More flags of `akash-provider run`.
    pub extra_args: Vec<String>,
    /// A mnemonic of its own (an account funded by the test) instead of the devnet's key `key`.
    pub mnemonic: Option<String>,
}

impl SiteSpec {
    /// Provider `i` (0..3: the devnet's keys other than the tenant's) with attribute `host: akash`.
    pub fn nth(i: usize, factor: f64) -> Self {
        Self {
            key: [PROVIDER_KEY, COMPETITOR_KEY, STRANGER_KEY][i],
            factor,
            attributes: vec![("host".into(), "akash".into())],
            extra_args: Vec::new(),
            mnemonic: None,
        }
    }

    /// With one more attribute.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Self {
        self.attributes.push((key.into(), value.into()));
        self
    }

    /// Signing with devnet key `key`.
    pub fn keyed(mut self, key: usize) -> Self {
        self.key = key;
        self
    }

    /// Signing with `mnemonic` (its account must be funded).
    pub fn with_mnemonic(mut self, mnemonic: &str) -> Self {
        self.mnemonic = Some(mnemonic.to_owned());
        self
    }

    /// With more flags.
    pub fn with_args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|a| a.to_string()));
        self
    }
}

/// One provider: its namespace, resource and process.
pub struct Site {
    pub address: String,
    pub process: ProviderProcess,
    pub _resource: ProviderResource,
    pub ns: crate::TestNamespace,
}

/// The devnet, two providers, the tenant namespace and the tenant controller.
pub struct Marketplace {
    pub devnet: Devnet,
    pub sites: Vec<Site>,
    pub tenant_ns: crate::TestNamespace,
    pub tenant: chain_client::node::NodeChain,
    pub controller: TenantController,
}

/// Rates at `factor` times [`scale_rates`].
pub fn rates(factor: f64) -> ScalePricing {
    let base = scale_rates();
    ScalePricing {
        cpu: base.cpu * factor,
        memory: base.memory * factor,
        storage: base
            .storage
            .into_iter()
            .map(|(k, v)| (k, v * factor))
            .collect(),
        ..base
    }
}

impl Marketplace {
    /// Starts everything; `price_factors[i]` scales provider i's rates (provider 0 signs with the
    /// devnet's test key 1, provider 1 with key 3). `controller_args` go to `akash-provider tenant`.
    pub async fn start(
        name: &str,
        price_factors: [f64; 2],
        controller_args: &[&str],
    ) -> anyhow::Result<Self> {
        let specs: Vec<SiteSpec> = price_factors
            .into_iter()
            .enumerate()
            .map(|(i, f)| SiteSpec::nth(i, f))
            .collect();
        Self::start_sites(name, &specs, controller_args).await
    }

    /// Starts everything with one provider per spec (at most three: the devnet has four keys,
    /// one of them the tenant's).
    pub async fn start_sites(
        name: &str,
        specs: &[SiteSpec],
        controller_args: &[&str],
    ) -> anyhow::Result<Self> {
        crate::init_tracing();
        let cluster = crate::Cluster::shared().await?;
        crate::crds::install(&cluster).await?;
        let devnet = Devnet::start(&format!("e2e-{name}"), "200ms")?;
        let mut sites = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            sites.push(Self::site_with(&cluster, &devnet, &format!("{name}-p{i}"), spec).await?);
        }
        let tenant_ns = cluster.namespace(&format!("{name}-tenant")).await?;
        create_key_secret(
            &cluster.client(),
            tenant_ns.name(),
            TEST_MNEMONICS[TENANT_KEY],
        )
        .await?;
        let controller = TenantController::start(
            cluster.kubeconfig(),
            &devnet,
            tenant_ns.name(),
            controller_args,
        )?;
        Ok(Self {
            tenant: crate::tenant::client(&devnet, TEST_MNEMONICS[TENANT_KEY])?,
            devnet,
            sites,
            tenant_ns,
            controller,
        })
    }

    /// A provider: namespace, `Provider` resource pointing at its gateway, process; registered.
    pub async fn site(
        cluster: &crate::Cluster,
        devnet: &Devnet,
        name: &str,
        key: usize,
        factor: f64,
    ) -> anyhow::Result<Site> {
        Self::site_with(cluster, devnet, name, &SiteSpec::nth(0, factor).keyed(key)).await
    }

    /// A provider as `spec` says.
    pub async fn site_with(
        cluster: &crate::Cluster,
        devnet: &Devnet,
        name: &str,
        spec: &SiteSpec,
    ) -> anyhow::Result<Site> {
        let mnemonic = spec
            .mnemonic
            .clone()
            .unwrap_or_else(|| TEST_MNEMONICS[spec.key].to_owned());
        let ns = cluster.namespace(name).await?;
        let rest_port = free_port()?;
        let attributes: Vec<(&str, &str)> = spec
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let resource = ProviderResource::create_with(
            &cluster.client(),
            ns.name(),
            &format!("https://127.0.0.1:{rest_port}"),
            &attributes,
            rates(spec.factor),
        )
        .await?;
        let process = ProviderProcess::start_with_gateway(
            cluster.kubeconfig(),
            devnet,
            ProviderOptions {
                namespace: ns.name().to_owned(),
                provider_resource: resource.name.clone(),
                mnemonic: mnemonic.clone(),
                extra_args: spec.extra_args.clone(),
            },
            Some(rest_port),
        )?;
        resource.wait_registered().await?;
        let address = chain_client::keys::Key::from_mnemonic(
            &chain_client::keys::Mnemonic::from_phrase(&mnemonic)?,
        )?
        .address()
        .to_string();
        Ok(Site {
            address,
            process,
            _resource: resource,
            ns,
        })
    }

    /// Runs `test`; on failure prints the tenant controller's and every provider's log.
    pub async fn with_logs<T>(
        &self,
        test: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        let result = test.await;
        if result.is_err() {
            eprintln!("akash-provider tenant logs:\n{}", self.controller.logs());
            for site in &self.sites {
                eprintln!("provider {} logs:\n{}", site.address, site.process.logs());
            }
        }
        result
    }

    pub fn manifests(&self) -> Api<Manifest> {
        self.tenant_ns.api()
    }

    /// The site of provider `address`.
    pub fn site_index(&self, address: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.address == address)
    }

    /// The site of provider `address`.
    pub fn site_of(&self, address: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.address == address)
    }
}

/// The Secret `tenant-key` holding `mnemonic`.
pub async fn create_key_secret(
    client: &kube::Client,
    namespace: &str,
    mnemonic: &str,
) -> anyhow::Result<()> {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("tenant-key".into()),
            ..Default::default()
        },
        data: Some(
            [(
                "mnemonic".to_owned(),
                ByteString(mnemonic.as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Default::default()
    };
    Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), &secret)
        .await
        .context("creating the tenant key Secret")?;
    Ok(())
}

/// A `Manifest` named `name` for the testdata SDL `sdl_file`, deployed as `dseq`.
pub fn manifest(
    name: &str,
    sdl_file: &str,
    dseq: u64,
    wait_blocks: u32,
) -> anyhow::Result<Manifest> {
    let sdl = crate::tenant::testdata_sdl(sdl_file)?;
    Ok(manifest_of(
        name,
        &sdl,
        dseq,
        wait_blocks,
        Distribution::SendToAll,
    ))
}

/// A `Manifest` named `name` for `sdl`, deployed as `dseq`, distributed as `distribution`.
pub fn manifest_of(
    name: &str,
    sdl: &crds::sdl::Sdl,
    dseq: u64,
    wait_blocks: u32,
    distribution: Distribution,
) -> Manifest {
    Manifest::new(
        name,
        ManifestSpec {
            sdl: sdl.document().clone(),
            deposit: Price {
                denom: "uact".into(),
                amount: "5000000".into(),
            },
            wait_duration_blocks: wait_blocks,
            key_secret: SecretKeyRef {
                name: "tenant-key".into(),
                key: "mnemonic".into(),
            },
            bid_filter: None,
            distribution,
            dseq: Some(dseq),
        },
    )
}

impl Site {
    /// The provider's own certificate and key (the Secret it keeps them in), to act as it.
    pub async fn certificate(
        &self,
        client: &kube::Client,
    ) -> anyhow::Result<operator::gateway::client::TenantIdentity> {
        let secret = Api::<Secret>::namespaced(client.clone(), self.ns.name())
            .get("akash-provider-certificate")
            .await
            .context("reading the provider's certificate Secret")?;
        let data = secret.data.unwrap_or_default();
        let text = |key: &str| -> anyhow::Result<String> {
            let bytes = data.get(key).with_context(|| format!("no {key}"))?;
            Ok(String::from_utf8(bytes.0.clone())?)
        };
        Ok(operator::gateway::client::TenantIdentity {
            cert_pem: text("tls.crt")?,
            key_pem: text("tls.key")?,
        })
    }
}

/// An `akash-provider tenant` process; SIGKILLed on drop, its log printed if the test failed.
pub struct TenantController {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// Everything after the binary, the same at every start.
    args: Vec<String>,
    kubeconfig: std::path::PathBuf,
    starts: u32,
}

impl TenantController {
    pub fn start(
        kubeconfig: &Path,
        devnet: &Devnet,
        namespace: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let metrics = format!("127.0.0.1:{}", free_port()?);
        let mut args: Vec<String> = [
            "tenant",
            "--chain-id",
            &devnet.chain_id,
            "--rpc-url",
            &devnet.rpc_url,
            "--grpc-url",
            &devnet.grpc_url,
            "--watch-namespace",
            namespace,
            "--metrics-addr",
            &metrics,
            "--poll-interval",
            "100ms",
            "--tx-timeout",
            "20s",
            "--block-interval",
            "200ms",
            "--status-interval",
            "1s",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut controller = Self {
            child: None,
            dir: tempfile::tempdir()?,
            args,
            kubeconfig: kubeconfig.to_path_buf(),
            starts: 0,
        };
        controller.launch()?;
        Ok(controller)
    }

    fn launch(&mut self) -> anyhow::Result<()> {
        self.starts += 1;
        let log =
            std::fs::File::create(self.dir.path().join(format!("tenant-{}.log", self.starts)))?;
        let child = Command::new(crate::binaries::akash_provider()?)
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUST_LOG", "info,kube=warn,hyper=warn,tower=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting akash-provider tenant")?;
        self.child = Some(child);
        Ok(())
    }

    /// Every start's log so far.
    pub fn logs(&self) -> String {
        crate::provider::start_logs(self.dir.path(), "tenant", self.starts)
    }

    /// SIGKILL: the tenant's deployments stay as they are on chain, nothing reacts to them.
    pub fn kill(&mut self) {
        crate::provider::kill_child(&mut self.child);
    }

    /// SIGKILL, then start again with the same settings.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.launch()
    }

    /// Starts it again if it exited (as the kubelet would); `true` when it did.
    pub fn restart_if_exited(&mut self) -> anyhow::Result<bool> {
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait()?.is_some(),
            None => true,
        };
        if exited {
            self.launch()?;
        }
        Ok(exited)
    }
}

impl Drop for TenantController {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let logs = self.logs();
        crate::provider::keep_log("tenant-controller", &logs);
        if std::thread::panicking() || std::env::var_os("AKASH_E2E_LOGS").is_some() {
            eprintln!("akash-provider tenant logs:\n{logs}");
        }
    }
}

/// Polls often enough for 200 ms blocks.
pub const POLL: Duration = Duration::from_millis(300);
