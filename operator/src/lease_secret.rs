//! Registry credentials stay out of `Lease` resources.
//!
//! Anyone who may read `Lease` resources (dashboards, backups, a support engineer with `get
//! leases`) would otherwise read every tenant's registry password. When a manifest carries
//! credentials, the gateway keeps the whole manifest as verified in a Secret and writes the Lease
//! with the credentials removed and the Secret's name beside them ([`seal`]). The workload
//! reconciler puts the group's credentials back before building ([`unseal`]); the peer endpoint
//! serves the Secret's manifest, whose hash is the one on chain.
//!
//! The Secrets live in their own namespace (`--manifest-secrets-namespace`; the chart makes one)
//! so that the provider's right to read Secrets there reaches nothing else: not its key, not a
//! tenant controller's keys beside it. Owner references cannot cross namespaces, so each Secret
//! carries its Lease's uid as a label: the Lease's finalizer deletes them ([`delete_of_lease`]),
//! and a sweep at start-up deletes those of Leases that are gone ([`sweep`]).

use std::collections::BTreeMap;

use crds::resources::{Lease, LeaseManifest};
use crds::sdl::ManifestGroup;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client, Resource, ResourceExt};

/// The Secret's key holding the whole manifest (JSON, every group, with credentials).
pub(crate) const MANIFEST_KEY: &str = "manifest.json";
/// The label naming the uid of the Lease a Secret belongs to.
pub(crate) const LEASE_UID_LABEL: &str = "akash.network/lease-uid";
const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "akash-provider");

/// What a manifest write stores.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sealed {
    /// For the Lease: the group without credentials, `secret_name` set when there were any.
    pub(crate) manifest: LeaseManifest,
    /// For the Lease's `deploymentManifest`: the whole manifest, without credentials when it had
    /// any, else exactly as received.
    pub(crate) public_manifest: String,
    /// The Secret to create first, when the manifest has credentials.
    pub(crate) secret: Option<Secret>,
}

/// A manifest that names a Secret it cannot be completed from.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading Secret {name}: {source}")]
    Read {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {name} has no readable `{MANIFEST_KEY}`: {why}")]
    Malformed { name: String, why: String },
    #[error("Secret {name} has no readable `{MANIFEST_KEY}`: {source}")]
    NotUtf8 {
        name: String,
        #[source]
        source: std::string::FromUtf8Error,
    },
    #[error("Secret {name} has no readable `{MANIFEST_KEY}`: {source}")]
    NotJson {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the manifest in Secret {name} has no group {group}")]
    NoGroup { name: String, group: String },
}

/// The Secret's name for `version` of the manifest of Lease `lease_name`: a new version, a new
/// Secret, so the one the Lease names never changes under a running reconcile.
pub fn secret_name(lease_name: &str, version: &str) -> String {
    format!(
        "{lease_name}-manifest-{}",
        &version[..10.min(version.len())]
    )
}

/// Splits what `lease` may show from what only the provider may read. `whole` is the whole
/// manifest as verified (valid JSON of every group); `manifest` the lease's group of it; the
/// Secret goes to `namespace`.
pub(crate) fn seal(
    lease: &Lease,
    manifest: &LeaseManifest,
    whole: &str,
    namespace: &str,
) -> Result<Sealed, String> {
    let mut groups: Vec<ManifestGroup> = serde_json::from_str(whole)
        .map_err(|e| format!("the verified manifest no longer parses: {e}"))?;
    let has_credentials = groups
        .iter()
        .flat_map(|g| &g.services)
        .any(|s| s.credentials.is_some());
    if !has_credentials {
        return Ok(Sealed {
            manifest: LeaseManifest {
                secret_name: None,
                ..manifest.clone()
            },
            public_manifest: whole.to_owned(),
            secret: None,
        });
    }
    for service in groups.iter_mut().flat_map(|g| g.services.iter_mut()) {
        service.credentials = None;
    }
    let mut group = manifest.group.clone();
    for service in &mut group.services {
        service.credentials = None;
    }
    let name = secret_name(&lease.name_any(), &manifest.version);
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.to_owned()),
            // Where the Lease lives too, Kubernetes' garbage collector also removes it.
            owner_references: (lease.namespace().as_deref() == Some(namespace))
                .then(|| lease.controller_owner_ref(&()).map(|o| vec![o]))
                .flatten(),
            labels: Some(BTreeMap::from([
                (MANAGED_BY.0.to_owned(), MANAGED_BY.1.to_owned()),
                (LEASE_UID_LABEL.to_owned(), lease.uid().unwrap_or_default()),
            ])),
            ..ObjectMeta::default()
        },
        immutable: Some(true),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            MANIFEST_KEY.to_owned(),
            ByteString(whole.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    };
    Ok(Sealed {
        manifest: LeaseManifest {
            group,
            secret_name: Some(name),
            ..manifest.clone()
        },
        public_manifest: crds::sdl::version::manifest_json(&groups),
        secret: Some(secret),
    })
}

/// The whole manifest a Secret holds.
pub fn whole_manifest(secret: &Secret) -> Result<String, SecretError> {
    let name = secret.name_any();
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(MANIFEST_KEY))
        .ok_or_else(|| SecretError::Malformed {
            name: name.clone(),
            why: "the key is missing".into(),
        })?;
    String::from_utf8(bytes.0.clone()).map_err(|source| SecretError::NotUtf8 { name, source })
}

/// `group` with its services' credentials taken from `whole` (the Secret's manifest).
pub(crate) fn unseal(
    group: &ManifestGroup,
    whole: &str,
    secret: &str,
) -> Result<ManifestGroup, SecretError> {
    let groups: Vec<ManifestGroup> =
        serde_json::from_str(whole).map_err(|source| SecretError::NotJson {
            name: secret.to_owned(),
            source,
        })?;
    let sealed = groups
        .iter()
        .find(|g| g.name == group.name)
        .ok_or_else(|| SecretError::NoGroup {
            name: secret.to_owned(),
            group: group.name.clone(),
        })?;
    let mut group = group.clone();
    for service in &mut group.services {
        service.credentials = sealed
            .services
            .iter()
            .find(|s| s.name == service.name)
            .and_then(|s| s.credentials.clone());
    }
    Ok(group)
}

/// Reads Secret `name` in `namespace` and returns its whole manifest.
pub(crate) async fn load(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<String, SecretError> {
    let secret = Api::<Secret>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|source| SecretError::Read {
            name: name.to_owned(),
            source,
        })?;
    whole_manifest(&secret)
}

/// The group `manifest` describes, with its credentials when it names a Secret.
pub(crate) async fn complete_group(
    client: &Client,
    namespace: &str,
    manifest: &LeaseManifest,
) -> Result<ManifestGroup, SecretError> {
    match &manifest.secret_name {
        None => Ok(manifest.group.clone()),
        Some(name) => {
            let whole = load(client, namespace, name).await?;
            unseal(&manifest.group, &whole, name)
        }
    }
}

/// Creates `secret` (a Secret of the same name is the same version's, so already right).
pub(crate) async fn create(
    client: &Client,
    namespace: &str,
    secret: &Secret,
) -> Result<(), kube::Error> {
    match Api::<Secret>::namespaced(client.clone(), namespace)
        .create(&PostParams::default(), secret)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes Secret `name` (gone already is fine).
pub(crate) async fn delete(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    match Api::<Secret>::namespaced(client.clone(), namespace)
        .delete(name, &Default::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes every Secret of the Lease with uid `uid` (its manifest versions).
pub(crate) async fn delete_of_lease(
    client: &Client,
    namespace: &str,
    uid: &str,
) -> Result<usize, kube::Error> {
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let selector = format!("{}={},{LEASE_UID_LABEL}={uid}", MANAGED_BY.0, MANAGED_BY.1);
    let listed = api.list(&ListParams::default().labels(&selector)).await?;
    for secret in &listed.items {
        delete(client, namespace, &secret.name_any()).await?;
    }
    Ok(listed.items.len())
}

/// Deletes the Secrets whose Lease no longer exists (removed while the provider was away, or
/// without its finalizer). `live_uids`: the uids of every Lease there is.
pub(crate) async fn sweep(
    client: &Client,
    namespace: &str,
    live_uids: &std::collections::HashSet<String>,
) -> Result<usize, kube::Error> {
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let selector = format!("{}={},{LEASE_UID_LABEL}", MANAGED_BY.0, MANAGED_BY.1);
    let listed = api.list(&ListParams::default().labels(&selector)).await?;
    let mut deleted = 0;
    for secret in &listed.items {
        let uid = secret
            .labels()
            .get(LEASE_UID_LABEL)
            .cloned()
            .unwrap_or_default();
        if !live_uids.contains(&uid) {
            delete(client, namespace, &secret.name_any()).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crds::resources::LeaseRef;
    use crds::sdl::manifest::ManifestCredentials;

    fn lease() -> Lease {
        let id = LeaseRef {
            owner: "akash1tenant".into(),
            dseq: 7,
            gseq: 1,
            oseq: 1,
            provider: "akash1provider".into(),
        };
        let mut lease = crate::test_support::lease(&id.order().object_name(), id);
        lease.metadata.namespace = Some("akash-provider".into());
        lease.metadata.uid = Some("0b5d-uid".into());
        lease
    }

    /// Two groups from a real SDL; `web` of the first group gets credentials when `private`.
    fn groups(private: bool) -> Vec<ManifestGroup> {
        let sdl = crds::sdl::Sdl::parse(include_str!(
            "../../testdata/sdl/awesome-akash/openspeedtest.yaml"
        ))
        .unwrap();
        let mut groups = sdl.manifest().to_vec();
        let mut second = groups[0].clone();
        second.name = "westcoast".into();
        groups.push(second);
        if private {
            for g in &mut groups {
                for s in &mut g.services {
                    s.credentials = Some(ManifestCredentials {
                        host: "registry.example.com".into(),
                        email: String::new(),
                        username: "robot".into(),
                        password: format!("hunter2-{}", g.name),
                    });
                }
            }
        }
        groups
    }

    fn lease_manifest(groups: &[ManifestGroup]) -> (LeaseManifest, String) {
        let whole = crds::sdl::version::manifest_json(groups);
        let version = crds::sdl::version::hex(&crds::sdl::version::manifest_version(groups));
        let manifest = LeaseManifest {
            version,
            group: groups[0].clone(),
            leased: Vec::new(),
            hostnames: None,
            ip_endpoints: None,
            ip_addresses: Default::default(),
            secret_name: None,
        };
        (manifest, whole)
    }

    #[test]
    fn a_manifest_without_credentials_is_stored_as_received_and_needs_no_secret() {
        let groups = groups(false);
        let (manifest, whole) = lease_manifest(&groups);
        let sealed = seal(&lease(), &manifest, &whole, "akash-provider").unwrap();
        assert_eq!(sealed.secret, None);
        assert_eq!(sealed.manifest, manifest);
        assert_eq!(sealed.public_manifest, whole);
    }

    #[test]
    fn credentials_leave_the_lease_and_come_back_from_the_secret_for_the_right_group() {
        let groups = groups(true);
        let (manifest, whole) = lease_manifest(&groups);
        let sealed = seal(&lease(), &manifest, &whole, "akash-provider").unwrap();

        // Nothing the Lease shows holds a password, of this group or another.
        let shown = serde_json::to_string(&sealed.manifest).unwrap() + &sealed.public_manifest;
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("robot"));

        let secret = sealed.secret.expect("a Secret");
        let name = secret.metadata.name.clone().unwrap();
        assert_eq!(sealed.manifest.secret_name.as_deref(), Some(&*name));
        assert_eq!(secret.metadata.namespace.as_deref(), Some("akash-provider"));
        let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Lease", "0b5d-uid")
        );
        assert_eq!(
            secret.metadata.labels.as_ref().unwrap()[LEASE_UID_LABEL],
            "0b5d-uid"
        );
        // In a namespace of its own, the Secret is found by its label, not owned.
        let apart = seal(&lease(), &manifest, &whole, "akash-manifests").unwrap();
        let secret_apart = apart.secret.unwrap();
        assert_eq!(
            secret_apart.metadata.namespace.as_deref(),
            Some("akash-manifests")
        );
        assert_eq!(secret_apart.metadata.owner_references, None);
        assert_eq!(
            secret_apart.metadata.labels.unwrap()[LEASE_UID_LABEL],
            "0b5d-uid"
        );

        // The Secret's manifest is the verified one: its hash is the version on chain.
        let kept = whole_manifest(&secret).unwrap();
        let parsed: Vec<ManifestGroup> = serde_json::from_str(&kept).unwrap();
        assert_eq!(
            crds::sdl::version::hex(&crds::sdl::version::manifest_version(&parsed)),
            manifest.version
        );

        // The reconciler's view: the lease's own group's credentials, not another group's.
        let group = unseal(&sealed.manifest.group, &kept, &name).unwrap();
        assert_eq!(group, manifest.group);
        let password = &group.services[0].credentials.as_ref().unwrap().password;
        assert_eq!(password, &format!("hunter2-{}", groups[0].name));
    }

    #[test]
    fn each_version_has_its_own_secret() {
        let (manifest, whole) = lease_manifest(&groups(true));
        let mut updated = groups(true);
        updated[0].services[0].count += 1;
        let (next, next_whole) = lease_manifest(&updated);
        let a = seal(&lease(), &manifest, &whole, "akash-provider")
            .unwrap()
            .manifest
            .secret_name;
        let b = seal(&lease(), &next, &next_whole, "akash-provider")
            .unwrap()
            .manifest
            .secret_name;
        assert_ne!(a, b);
    }

    #[test]
    fn a_secret_without_the_group_or_the_key_is_an_error_naming_the_secret() {
        let (manifest, _) = lease_manifest(&groups(true));
        let mut other = groups(true);
        for g in &mut other {
            g.name = format!("{}-not", g.name);
        }
        let e = unseal(
            &manifest.group,
            &crds::sdl::version::manifest_json(&other),
            "s1",
        )
        .unwrap_err();
        assert!(e.to_string().contains("s1"), "{e}");
        let e = whole_manifest(&Secret {
            metadata: ObjectMeta {
                name: Some("s2".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("s2") && e.to_string().contains(MANIFEST_KEY));
    }

    #[test]
    fn an_unreadable_manifest_secret_keeps_its_message_and_carries_the_parse_error() {
        use std::error::Error as _;
        let group = ManifestGroup {
            name: "dcloud".into(),
            services: Vec::new(),
        };
        let error = unseal(&group, "not json", "lease-abc").expect_err("not JSON");
        assert!(matches!(error, SecretError::NotJson { .. }), "{error:?}");
        let source = error.source().expect("the JSON error").to_string();
        assert_eq!(
            error.to_string(),
            format!("Secret lease-abc has no readable `{MANIFEST_KEY}`: {source}")
        );
    }
}
