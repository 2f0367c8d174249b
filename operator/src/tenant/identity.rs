//! The tenant's certificate: kept where the tenant's key is (a Secret beside the key's Secret for
//! the controller, files under `--home` for the CLI), published on chain when the chain lacks it,
//! by the protocol the provider shares (`crate::certificate`).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chain_client::Chain;
use chain_client::cert::{CertificateKeyPair, CertificateRole};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};

pub(crate) use crate::certificate::CertStore;
use crate::certificate::{self, KeptCertificate, NewCertificate, WhenRevoked};
use crate::gateway::client::TenantIdentity;

/// How long a new tenant certificate is valid.
const VALID_FOR: Duration = Duration::from_secs(365 * 86_400);

/// The tenant's usable identity: the kept one if the chain holds it as valid (published now if
/// the chain does not know it), else a new one, kept, then published. A revoked one is replaced:
/// nothing but this tenant's own requests depends on it.
pub(crate) async fn ensure(
    chain: &dyn Chain,
    store: &dyn CertStore,
) -> anyhow::Result<TenantIdentity> {
    let new = NewCertificate {
        role: CertificateRole::Client,
        valid_for: VALID_FOR,
    };
    let (kept, _serial) = certificate::ensure(chain, store, &new, &WhenRevoked::MakeNew).await?;
    Ok(kept.into())
}

/// The controller's store: a Secret `<key secret>-certificate` beside the key's Secret, with
/// `cert.pem` and `key.pem`.
pub(crate) struct SecretCertStore {
    pub api: Api<Secret>,
    pub name: String,
}

#[async_trait]
impl CertStore for SecretCertStore {
    async fn load(&self) -> anyhow::Result<Option<KeptCertificate>> {
        let Some(secret) = self.api.get_opt(&self.name).await? else {
            return Ok(None);
        };
        let data = secret.data.unwrap_or_default();
        let text = |k: &str| {
            data.get(k)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        };
        Ok(match (text("cert.pem"), text("key.pem")) {
            (Some(cert_pem), Some(key_pem)) => Some(KeptCertificate { cert_pem, key_pem }),
            _ => None,
        })
    }

    async fn save(&self, pair: &CertificateKeyPair) -> anyhow::Result<()> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_owned(),
                        "akash-provider-tenant".to_owned(),
                    )]
                    .into(),
                ),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(
                [
                    ("cert.pem", pair.cert_pem.as_str()),
                    ("key.pem", pair.key_pem()),
                    ("tls.crt", pair.cert_pem.as_str()),
                    ("tls.key", pair.key_pem()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), ByteString(v.as_bytes().to_vec())))
                .collect(),
            ),
            ..Default::default()
        };
        match self.api.get_opt(&self.name).await? {
            // Replacing a revoked certificate.
            Some(_) => {
                self.api
                    .replace(&self.name, &PostParams::default(), &secret)
                    .await?;
            }
            None => {
                self.api.create(&PostParams::default(), &secret).await?;
            }
        }
        Ok(())
    }
}

/// The CLI's store: `cert.pem` and `key.pem` (mode 0600) in a directory per tenant address.
pub(crate) struct FileCertStore {
    pub dir: PathBuf,
}

#[async_trait]
impl CertStore for FileCertStore {
    async fn load(&self) -> anyhow::Result<Option<KeptCertificate>> {
        let cert = self.dir.join("cert.pem");
        let key = self.dir.join("key.pem");
        if !cert.exists() || !key.exists() {
            return Ok(None);
        }
        Ok(Some(KeptCertificate {
            cert_pem: tokio::fs::read_to_string(&cert).await?,
            key_pem: tokio::fs::read_to_string(&key).await?,
        }))
    }

    async fn save(&self, pair: &CertificateKeyPair) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        write_private(&self.dir.join("key.pem"), pair.key_pem()).await?;
        tokio::fs::write(self.dir.join("cert.pem"), &pair.cert_pem).await?;
        Ok(())
    }
}

/// Writes a file only its owner can read.
pub(crate) async fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path.to_owned();
    let text = text.to_owned();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.write_all(text.as_bytes())
    })
    .await??;
    Ok(())
}
