//! Dereference: what a `Manifest` refers to, read from the cluster and the chain: the key Secret
//! (a chain client per key), and the tenant's certificate (the gateway client).

use std::sync::Arc;

use chain_client::Chain;
use chain_client::keys::{Key, Mnemonic};
use crds::resources::Manifest;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use tokio::sync::Mutex;

use super::{Context, ReconcileError};
use crate::tenant::delivery::MtlsGateway;
use crate::tenant::identity::{self, SecretCertStore};

/// A tenant key's chain client and gateway client, shared by every `Manifest` using that key
/// (one signer per key keeps the account sequence straight).
pub(super) struct Tenant {
    pub chain: Arc<dyn Chain>,
    /// Made on first use: it needs the certificate, which may have to be published on chain.
    gateway: Option<Arc<MtlsGateway>>,
}

/// What a `Manifest`'s steps talk to.
pub(super) struct Counterparts {
    pub chain: Arc<dyn Chain>,
    pub gateway: Arc<MtlsGateway>,
}

/// The chain client for the resource's key, read from its Secret.
pub(super) async fn tenant(
    ctx: &Context,
    manifest: &Manifest,
) -> Result<Arc<Mutex<Tenant>>, ReconcileError> {
    let ns = manifest.namespace().unwrap_or_default();
    let key_ref = &manifest.spec.key_secret;
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .get_opt(&key_ref.name)
        .await?
        .ok_or_else(|| {
            ReconcileError::Key(format!(
                "spec.keySecret: Secret {ns}/{} does not exist",
                key_ref.name
            ))
        })?;
    let phrase = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&key_ref.key))
        .and_then(|b| String::from_utf8(b.0.clone()).ok())
        .ok_or_else(|| {
            ReconcileError::Key(format!(
                "spec.keySecret: Secret {ns}/{} has no key {:?}",
                key_ref.name, key_ref.key
            ))
        })?;
    let key = Mnemonic::from_phrase(phrase.trim())
        .and_then(|m| Key::from_mnemonic(&m))
        .map_err(|source| ReconcileError::Mnemonic {
            key: key_ref.key.clone(),
            secret: format!("{ns}/{}", key_ref.name),
            source,
        })?;
    let address = key.address().to_string();
    let mut tenants = ctx.tenants.lock().await;
    if let Some(t) = tenants.get(&address) {
        return Ok(t.clone());
    }
    let chain = ctx
        .args
        .chain
        .connect(key)
        .map_err(ReconcileError::Connect)?;
    let t = Arc::new(Mutex::new(Tenant {
        chain: Arc::new(chain),
        gateway: None,
    }));
    tenants.insert(address, t.clone());
    Ok(t)
}

/// The tenant's chain client and its gateway client, which presents the tenant's certificate
/// (kept in the Secret `<keySecret>-certificate`; see [`identity::ensure`]).
pub(super) async fn counterparts(
    ctx: &Context,
    manifest: &Manifest,
    tenant: &Mutex<Tenant>,
) -> Result<Counterparts, ReconcileError> {
    let mut t = tenant.lock().await;
    let gateway = match &t.gateway {
        Some(g) => g.clone(),
        None => {
            let store = SecretCertStore {
                api: Api::namespaced(
                    ctx.client.clone(),
                    &manifest.namespace().unwrap_or_default(),
                ),
                name: format!("{}-certificate", manifest.spec.key_secret.name),
            };
            let identity = identity::ensure(t.chain.as_ref(), &store)
                .await
                .map_err(ReconcileError::Certificate)?;
            let g = Arc::new(MtlsGateway::new(t.chain.clone(), identity));
            t.gateway = Some(g.clone());
            g
        }
    };
    Ok(Counterparts {
        chain: t.chain.clone(),
        gateway,
    })
}
