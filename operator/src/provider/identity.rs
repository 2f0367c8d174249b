//! The provider's identity on chain: its registration (create or update from the `Provider`
//! resource), its certificate (made and kept in a Secret, published when the chain lacks it), and
//! the `Provider` resource's status. It also turns the resource into the bid engine's settings.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chain_client::Chain;
use chain_client::akash::base::attributes::v1::Attribute as ChainAttribute;
use chain_client::akash::provider::v1beta4::{Info, MsgCreateProvider, MsgUpdateProvider};
use chain_client::cert::{CertificateKeyPair, CertificateRole};
use crds::resources::{
    Condition, ConditionStatus, ConditionType, PricingStrategy, Provider, ProviderReason,
    ProviderSpec, ProviderStatus, find_condition,
};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client, ResourceExt};

use crate::bidding::eligibility::BidPolicy;
use crate::bidding::engine::BidSettings;
use crate::bidding::pricing::{Pricing, ScriptPricing};
use crate::certificate::{
    self, CertStore, CertificateError, KeptCertificate, NewCertificate, WhenRevoked,
};
use crate::controller::status::Precondition;
use crate::provider::store::FIELD_MANAGER;

/// The annotation on the certificate Secret that records the certificate's decimal serial.
pub(crate) const SERIAL_ANNOTATION: &str = "akash.network/certificate-serial";

/// What identity needs besides the chain and the cluster.
#[derive(Debug, Clone)]
pub(crate) struct IdentityConfig {
    pub namespace: String,
    pub provider_resource: String,
    pub certificate_secret: String,
    pub allow_owners: Vec<String>,
    pub deny_owners: Vec<String>,
    pub pricing_script_concurrency: usize,
}

/// Errors registering the provider; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IdentityError {
    #[error(
        "the Provider resource {0:?} does not exist; create it (see the README) to start bidding"
    )]
    NoProviderResource(String),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("chain: {0}")]
    Chain(#[from] chain_client::ChainError),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("certificate: {0}")]
    CertificateGenerate(#[source] chain_client::cert::CertError),
    #[error("spec.pricing: {0}")]
    Pricing(String),
    #[error("spec.pricing: {0}")]
    PricingScale(#[source] crate::bidding::pricing::PricingError),
}

impl IdentityError {
    /// A short CamelCase reason for conditions.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::NoProviderResource(_) => "ProviderResourceMissing",
            Self::Kube(_) => "KubernetesError",
            Self::Chain(_) => "ChainError",
            Self::Certificate(_) | Self::CertificateGenerate(_) => "CertificateError",
            Self::Pricing(_) | Self::PricingScale(_) => "PricingInvalid",
        }
    }
}

/// Registers the provider and its certificate from the `Provider` resource, writes its status,
/// and returns the bid settings it describes.
pub(crate) async fn ensure(
    client: &Client,
    chain: &Arc<dyn Chain>,
    config: &IdentityConfig,
) -> Result<Arc<BidSettings>, IdentityError> {
    let providers: Api<Provider> = Api::all(client.clone());
    let Some(resource) = providers.get_opt(&config.provider_resource).await? else {
        return Err(IdentityError::NoProviderResource(
            config.provider_resource.clone(),
        ));
    };
    let result = register(client, chain, config, &resource).await;
    let status = status_of(chain.address(), &resource, &result);
    // Not guarded by the version read: written once at start, and a skipped write would not be
    // tried again until the next start.
    if let Err(e) = crate::controller::status::write_status(
        &providers,
        &resource,
        FIELD_MANAGER,
        Precondition::LastWriteWins,
        None,
        &status,
    )
    .await
    {
        tracing::warn!(error = %e, "writing the Provider resource's status failed");
    }
    let (host_uri, serial) = result?;
    tracing::info!(provider = chain.address(), %host_uri, certificate = %serial, "provider registered on chain");
    settings_of(&resource.spec, config).map(Arc::new)
}

/// The chain's view after registration: (host URI, certificate serial).
type Registered = (String, String);

async fn register(
    client: &Client,
    chain: &Arc<dyn Chain>,
    config: &IdentityConfig,
    resource: &Provider,
) -> Result<Registered, IdentityError> {
    // Settings first: a resource we could not bid with is reported before anything is sent.
    settings_of(&resource.spec, config)?;
    let owner = chain.address().to_owned();
    let spec = &resource.spec;
    let attributes: Vec<ChainAttribute> = spec
        .attributes
        .iter()
        .map(|a| ChainAttribute {
            key: a.key.clone(),
            value: a.value.clone(),
        })
        .collect();
    let info = spec.info.as_ref().map(|i| Info {
        email: i.email.clone(),
        website: i.website.clone(),
    });
    match chain.provider(&owner).await? {
        None => {
            tracing::info!(provider = %owner, host_uri = %spec.host_uri, "registering the provider on chain");
            let msg = MsgCreateProvider {
                owner: owner.clone(),
                host_uri: spec.host_uri.clone(),
                attributes,
                info,
            };
            chain.broadcast(vec![chain_client::to_any(&msg)]).await?;
        }
        Some(current)
            if current.host_uri != spec.host_uri
                || current.attributes != attributes
                || current.info.clone().unwrap_or_default() != info.clone().unwrap_or_default() =>
        {
            tracing::info!(provider = %owner, host_uri = %spec.host_uri, "updating the provider on chain");
            let msg = MsgUpdateProvider {
                owner: owner.clone(),
                host_uri: spec.host_uri.clone(),
                attributes,
                info,
            };
            chain.broadcast(vec![chain_client::to_any(&msg)]).await?;
        }
        Some(_) => {}
    }
    let serial = ensure_certificate(client, chain, config, &spec.host_uri).await?;
    Ok((spec.host_uri.clone(), serial))
}

/// Makes sure the Secret holds a certificate and the chain holds the same one as valid, by the
/// protocol the tenant shares (`crate::certificate`). A revoked certificate is not replaced on its
/// own: the gateway serves it, so the operator decides (by deleting the Secret).
async fn ensure_certificate(
    client: &Client,
    chain: &Arc<dyn Chain>,
    config: &IdentityConfig,
    host_uri: &str,
) -> Result<String, IdentityError> {
    let store = CertificateSecret {
        api: Api::namespaced(client.clone(), &config.namespace),
        name: config.certificate_secret.clone(),
    };
    let new = NewCertificate {
        role: CertificateRole::Server {
            dns_names: crate::gateway::client::host_of(host_uri)
                .into_iter()
                .collect(),
        },
        valid_for: Duration::from_secs(365 * 24 * 3600),
    };
    let when_revoked = WhenRevoked::Refuse {
        remedy: format!(
            "delete Secret {} to make a new one",
            config.certificate_secret
        ),
    };
    let (_, serial) = certificate::ensure(chain.as_ref(), &store, &new, &when_revoked).await?;
    Ok(serial)
}

impl From<CertificateError> for IdentityError {
    fn from(e: CertificateError) -> Self {
        match e {
            CertificateError::Chain(e) => Self::Chain(e),
            CertificateError::Make(e) => Self::CertificateGenerate(e),
            CertificateError::Store(e) => match e.downcast::<kube::Error>() {
                Ok(e) => Self::Kube(e),
                Err(e) => Self::Certificate(e.to_string()),
            },
            other => Self::Certificate(other.to_string()),
        }
    }
}

/// The provider's certificate Secret: `tls.crt`, `tls.key`, `tls.pub` (the public key as the
/// chain stores it) and the serial in an annotation.
struct CertificateSecret {
    api: Api<Secret>,
    name: String,
}

#[async_trait::async_trait]
impl CertStore for CertificateSecret {
    async fn load(&self) -> anyhow::Result<Option<KeptCertificate>> {
        Ok(self
            .api
            .get_opt(&self.name)
            .await?
            .as_ref()
            .and_then(read_secret))
    }

    async fn save(&self, pair: &CertificateKeyPair) -> anyhow::Result<()> {
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                annotations: Some([(SERIAL_ANNOTATION.to_owned(), pair.serial.clone())].into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/tls".into()),
            data: Some(BTreeMap::from([
                (
                    "tls.crt".to_owned(),
                    ByteString(pair.cert_pem.clone().into_bytes()),
                ),
                (
                    "tls.key".to_owned(),
                    ByteString(pair.key_pem().as_bytes().to_vec()),
                ),
                (
                    "tls.pub".to_owned(),
                    ByteString(pair.pubkey_pem.clone().into_bytes()),
                ),
            ])),
            ..Default::default()
        };
        if self.api.get_opt(&self.name).await?.is_some() {
            self.api
                .replace(&self.name, &PostParams::default(), &secret)
                .await?;
        } else {
            self.api.create(&PostParams::default(), &secret).await?;
        }
        tracing::info!(secret = %self.name, serial = %pair.serial, "kept a new provider certificate");
        Ok(())
    }
}

/// The certificate and key of a certificate Secret this provider wrote (one missing a part it
/// writes is not ours, or half-written: a new one replaces it).
fn read_secret(secret: &Secret) -> Option<KeptCertificate> {
    secret.annotations().get(SERIAL_ANNOTATION)?;
    let data = secret.data.as_ref()?;
    let text = |key: &str| {
        data.get(key)
            .and_then(|b| String::from_utf8(b.0.clone()).ok())
    };
    text("tls.pub")?;
    Some(KeptCertificate {
        cert_pem: text("tls.crt")?,
        key_pem: text("tls.key")?,
    })
}

/// The bid settings a `Provider` resource describes.
pub(crate) fn settings_of(
    spec: &ProviderSpec,
    config: &IdentityConfig,
) -> Result<BidSettings, IdentityError> {
    let pricing = match &spec.pricing {
        None => {
            return Err(IdentityError::Pricing(
                "missing: set scale rates (cpu, memory, storage, gpu, endpoint) or a script".into(),
            ));
        }
        Some(PricingStrategy::Scale(scale)) => {
            Pricing::scale(scale.clone()).map_err(IdentityError::PricingScale)?
        }
        Some(PricingStrategy::Script {
            path,
            timeout_seconds,
        }) => Pricing::Script(ScriptPricing::new(
            path.into(),
            Duration::from_secs(u64::from(timeout_seconds.unwrap_or(10))),
            config.pricing_script_concurrency,
        )),
    };
    Ok(BidSettings {
        policy: BidPolicy {
            attributes: spec.attributes.clone(),
            allow_owners: config.allow_owners.clone(),
            deny_owners: config.deny_owners.clone(),
        },
        pricing,
    })
}

fn status_of(
    address: &str,
    resource: &Provider,
    result: &Result<Registered, IdentityError>,
) -> ProviderStatus {
    let now = jiff::Timestamp::now().to_string();
    let generation = resource.metadata.generation;
    let previous = resource.status.clone().unwrap_or_default();
    let condition = match result {
        Ok(_) => Condition {
            type_: ConditionType::Registered.to_string(),
            status: ConditionStatus::True.to_string(),
            reason: ProviderReason::OnChain.to_string(),
            message: "the chain holds this provider and its certificate".into(),
            last_transition_time: Some(now),
            observed_generation: generation,
        },
        Err(e) => Condition {
            type_: ConditionType::Registered.to_string(),
            status: ConditionStatus::False.to_string(),
            reason: e.reason().into(),
            message: e.to_string(),
            last_transition_time: Some(now),
            observed_generation: generation,
        },
    };
    // Keep the transition time when the status did not change.
    let condition = match find_condition(&previous.conditions, ConditionType::Registered) {
        Some(old) if old.status == condition.status => Condition {
            last_transition_time: old.last_transition_time.clone(),
            ..condition
        },
        _ => condition,
    };
    ProviderStatus {
        address: Some(address.to_owned()),
        registered: result.is_ok(),
        on_chain_host_uri: result
            .as_ref()
            .ok()
            .map(|(h, _)| h.clone())
            .or(previous.on_chain_host_uri),
        certificate_serial: result
            .as_ref()
            .ok()
            .map(|(_, s)| s.clone())
            .or(previous.certificate_serial),
        conditions: vec![condition],
        observed_generation: generation,
    }
}
