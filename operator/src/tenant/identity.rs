//! The tenant's certificate: kept where the tenant's key is (a Secret beside the key's Secret for
//! the controller, files under `--home` for the CLI), published on chain when the chain lacks it.
//! The private key is stored before the certificate is published, so a crash in between leaves a
//! certificate that is published on the next try, never one whose key is lost.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use chain_client::Chain;
use chain_client::cert::CertificateRole;
use chain_client::chain::{CertificateFilter, PageRequest};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::gateway::client::TenantIdentity;

/// How long a new tenant certificate is valid.
const VALID_FOR: Duration = Duration::from_secs(365 * 86_400);

/// Where a tenant's certificate and key are kept.
#[async_trait]
pub trait CertStore: Send + Sync {
    async fn load(&self) -> anyhow::Result<Option<TenantIdentity>>;
    async fn save(&self, identity: &TenantIdentity) -> anyhow::Result<()>;
}

/// The tenant's usable identity: the stored one if the chain holds it as valid (published now if
/// the chain does not know it), else a new one, stored, then published.
pub async fn ensure(chain: &dyn Chain, store: &dyn CertStore) -> anyhow::Result<TenantIdentity> {
    let owner = chain.address().to_owned();
    if let Some(identity) = store.load().await? {
        let serial = serial_of(&identity)?;
        match on_chain_state(chain, &owner, &serial).await? {
            Some(true) => return Ok(identity),
            // Stored but never published (a crash between the two): publish it now.
            None => {
                publish(chain, &owner, &identity).await?;
                return Ok(identity);
            }
            // Revoked: make a new one below.
            Some(false) => {}
        }
    }
    let pair = chain_client::cert::generate(&owner, &CertificateRole::Client, VALID_FOR)?;
    let identity = TenantIdentity {
        cert_pem: pair.cert_pem.clone(),
        key_pem: pair.key_pem().to_owned(),
    };
    store.save(&identity).await?;
    chain
        .broadcast(vec![chain_client::to_any(&pair.create_msg(&owner))])
        .await?;
    tracing::info!(
        owner,
        serial = pair.serial,
        "published a new tenant certificate"
    );
    Ok(identity)
}

fn serial_of(identity: &TenantIdentity) -> anyhow::Result<String> {
    let der = CertificateDer::from_pem_slice(identity.cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("the stored tenant certificate is not PEM: {e}"))?;
    Ok(chain_client::cert::claimed_identity(&der)?.serial)
}

/// `Some(valid?)` when the chain has the certificate, `None` when it does not.
async fn on_chain_state(
    chain: &dyn Chain,
    owner: &str,
    serial: &str,
) -> anyhow::Result<Option<bool>> {
    let page = chain
        .certificates(
            CertificateFilter {
                owner: owner.to_owned(),
                serial: serial.to_owned(),
                state: String::new(),
            },
            PageRequest::first(10),
        )
        .await?;
    Ok(page
        .items
        .iter()
        .map(|r| chain_client::cert::OnChainCertificate::from_response(owner, r))
        .find(|c| c.serial == serial)
        .map(|c| c.valid))
}

async fn publish(chain: &dyn Chain, owner: &str, identity: &TenantIdentity) -> anyhow::Result<()> {
    let der = CertificateDer::from_pem_slice(identity.cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("the stored tenant certificate is not PEM: {e}"))?;
    let msg = chain_client::cert::create_msg_for(owner, &identity.cert_pem, der.as_ref())?;
    chain.broadcast(vec![chain_client::to_any(&msg)]).await?;
    Ok(())
}

/// The controller's store: a Secret `<key secret>-certificate` beside the key's Secret, with
/// `cert.pem` and `key.pem`.
pub struct SecretCertStore {
    pub api: Api<Secret>,
    pub name: String,
}

#[async_trait]
impl CertStore for SecretCertStore {
    async fn load(&self) -> anyhow::Result<Option<TenantIdentity>> {
        let Some(secret) = self.api.get_opt(&self.name).await? else {
            return Ok(None);
        };
        let data = secret.data.unwrap_or_default();
        let text = |k: &str| {
            data.get(k)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
        };
        Ok(match (text("cert.pem"), text("key.pem")) {
            (Some(cert_pem), Some(key_pem)) => Some(TenantIdentity { cert_pem, key_pem }),
            _ => None,
        })
    }

    async fn save(&self, identity: &TenantIdentity) -> anyhow::Result<()> {
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
                    ("cert.pem", &identity.cert_pem),
                    ("key.pem", &identity.key_pem),
                    ("tls.crt", &identity.cert_pem),
                    ("tls.key", &identity.key_pem),
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
pub struct FileCertStore {
    pub dir: PathBuf,
}

#[async_trait]
impl CertStore for FileCertStore {
    async fn load(&self) -> anyhow::Result<Option<TenantIdentity>> {
        let cert = self.dir.join("cert.pem");
        let key = self.dir.join("key.pem");
        if !cert.exists() || !key.exists() {
            return Ok(None);
        }
        Ok(Some(TenantIdentity {
            cert_pem: tokio::fs::read_to_string(&cert).await?,
            key_pem: tokio::fs::read_to_string(&key).await?,
        }))
    }

    async fn save(&self, identity: &TenantIdentity) -> anyhow::Result<()> {
        tokio::fs::create_dir_all(&self.dir).await?;
        write_private(&self.dir.join("key.pem"), &identity.key_pem).await?;
        tokio::fs::write(self.dir.join("cert.pem"), &identity.cert_pem).await?;
        Ok(())
    }
}

/// Writes a file only its owner can read.
pub async fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
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
