//! Pieces several modules' unit tests share: a kube client with a scripted API server, a lease
//! and a manifest to feed it, a tenant's deployment spec.

use std::sync::{Arc, Mutex};

use axum::http::request::Parts;
use axum::http::{Request, Response};
use crds::resources::{
    Lease, LeaseManifest, LeaseRef, LeaseSpec, ManifestSpec, Price, SecretKeyRef,
};
use crds::sdl::Sdl;
use kube::Client;

/// (method, path?query, content type, body) of each request the fake API server saw.
pub(crate) type Seen = Arc<Mutex<Vec<(String, String, String, Vec<u8>)>>>;

/// A kube client in `namespace` whose API server answers each request with the (HTTP code,
/// JSON body) that `answer` gives for it, recording the requests.
pub(crate) fn recording_client<F>(namespace: &str, answer: F) -> (Client, Seen)
where
    F: Fn(&Parts) -> (u16, serde_json::Value) + Clone + Send + Sync + 'static,
{
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let service = tower::service_fn(move |request: Request<kube::client::Body>| {
        let record = record.clone();
        let answer = answer.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect_bytes().await?.to_vec();
            let content_type = parts
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let (code, answer) = answer(&parts);
            record.lock().unwrap().push((
                parts.method.to_string(),
                parts.uri.to_string(),
                content_type,
                body,
            ));
            Ok::<_, kube::Error>(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(
                        serde_json::to_vec(&answer).unwrap(),
                    ))
                    .unwrap(),
            )
        }
    });
    (Client::new(service, namespace), seen)
}

/// A lease named `name` for `lease_id` at 1uact, with nothing else set.
pub(crate) fn lease(name: &str, lease_id: LeaseRef) -> Lease {
    Lease::new(
        name,
        LeaseSpec {
            lease_id,
            price: Price {
                denom: "uact".into(),
                amount: "1".into(),
            },
            created_at: None,
            manifest: None,
            deployment_manifest: None,
        },
    )
}

/// A manifest of `version` for group `dc`, with no services and nothing leased.
pub(crate) fn empty_manifest(version: &str) -> LeaseManifest {
    LeaseManifest {
        version: version.into(),
        group: crds::sdl::ManifestGroup {
            name: "dc".into(),
            services: vec![],
        },
        leased: Vec::new(),
        hostnames: None,
        ip_endpoints: None,
        ip_addresses: Default::default(),
        secret_name: None,
    }
}

/// A valid SDL from the repository's test data (openspeedtest: one service, one group).
pub(crate) fn sdl() -> Sdl {
    Sdl::parse(include_str!(
        "../../testdata/sdl/awesome-akash/openspeedtest.yaml"
    ))
    .expect("test SDL")
}

/// A valid tenant deployment spec: [`sdl`], the default deposit.
pub(crate) fn manifest_spec() -> ManifestSpec {
    ManifestSpec {
        sdl: sdl().document().clone(),
        deposit: Price {
            denom: "uact".into(),
            amount: "5000000".into(),
        },
        wait_duration_blocks: 3,
        key_secret: SecretKeyRef {
            name: "tenant-key".into(),
            key: "mnemonic".into(),
        },
        bid_filter: None,
        distribution: Default::default(),
        dseq: None,
    }
}
