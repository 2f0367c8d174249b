//! The provider's own requests to the API server, counted by verb and resource with the API
//! server's names (`APPLY`, `LIST`, `WATCH`, …), so an operator (and the turn-up bench) sees what
//! a lease costs the control plane without the control plane's own traffic mixed in.

use std::task::{Context, Poll};

use axum::http::{Method, Request, header};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tower::{Layer, Service};

/// A label set of one API request: the API server's verb and the resource's plural name (with
/// `/subresource` when there is one).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KubeRequest {
    pub verb: String,
    pub resource: String,
}

/// The verb and resource of a request, as the API server's `apiserver_request_total` names them.
pub(crate) fn classify(
    method: &Method,
    path: &str,
    query: &str,
    content_type: &str,
) -> KubeRequest {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // `/api/v1/...` or `/apis/<group>/<version>/...`; then optionally `namespaces/<ns>/`.
    let rest = match parts.first() {
        Some(&"api") => parts.get(2..).unwrap_or_default(),
        Some(&"apis") => parts.get(3..).unwrap_or_default(),
        _ => &[],
    };
    let rest = match rest {
        // The namespaces themselves: `/api/v1/namespaces[/<name>]`.
        ["namespaces"] | ["namespaces", _] => rest,
        ["namespaces", _, tail @ ..] => tail,
        _ => rest,
    };
    let (resource, named) = match rest {
        [] => (String::from("(other)"), true),
        [resource] => ((*resource).to_owned(), false),
        [resource, _name] => ((*resource).to_owned(), true),
        [resource, _name, sub, ..] => (format!("{resource}/{sub}"), true),
    };
    let watching = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verb = match *method {
        Method::GET if watching => "WATCH",
        Method::GET if named => "GET",
        Method::GET => "LIST",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH if content_type.starts_with("application/apply-patch") => "APPLY",
        Method::PATCH => "PATCH",
        Method::DELETE if named => "DELETE",
        Method::DELETE => "DELETECOLLECTION",
        _ => "OTHER",
    };
    KubeRequest {
        verb: verb.to_owned(),
        resource,
    }
}

/// A tower layer counting every request that passes into `counter`.
pub(crate) struct CountRequestsLayer {
    pub counter: Family<KubeRequest, Counter>,
}

impl<S> Layer<S> for CountRequestsLayer {
    type Service = CountRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CountRequests {
            inner,
            counter: self.counter.clone(),
        }
    }
}

pub(crate) struct CountRequests<S> {
    inner: S,
    counter: Family<KubeRequest, Counter>,
}

impl<S, B> Service<Request<B>> for CountRequests<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let uri = request.uri();
        let label = classify(
            request.method(),
            uri.path(),
            uri.query().unwrap_or_default(),
            content_type,
        );
        self.counter.get_or_create(&label).inc();
        self.inner.call(request)
    }
}

/// A client for the cluster (KUBECONFIG or the in-cluster service account) whose requests are
/// counted into `counter`, with a small pool of idle connections ([`crate::kube_pool`]).
pub(crate) async fn counted_client(
    counter: Family<KubeRequest, Counter>,
) -> Result<kube::Client, kube::Error> {
    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    crate::kube_pool::client(config, &CountRequestsLayer { counter })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verb_and_resource(
        method: Method,
        path_and_query: &str,
        content_type: &str,
    ) -> (String, String) {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let r = classify(&method, path, query, content_type);
        (r.verb, r.resource)
    }

    #[test]
    fn requests_are_named_as_the_api_server_names_them() {
        let cases = [
            (
                Method::GET,
                "/api/v1/namespaces/ns/services",
                "",
                ("LIST", "services"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/ns/services/web",
                "",
                ("GET", "services"),
            ),
            (
                Method::GET,
                "/apis/akash.network/v1/leases?watch=true&resourceVersion=5",
                "",
                ("WATCH", "leases"),
            ),
            (
                Method::GET,
                "/apis/akash.network/v1/namespaces/x/leases?labelSelector=a",
                "",
                ("LIST", "leases"),
            ),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/ns/deployments/web?fieldManager=p&force=true",
                "application/apply-patch+yaml",
                ("APPLY", "deployments"),
            ),
            (
                Method::PATCH,
                "/apis/akash.network/v1/namespaces/ns/leases/l/status",
                "application/merge-patch+json",
                ("PATCH", "leases/status"),
            ),
            (
                Method::POST,
                "/api/v1/namespaces",
                "application/json",
                ("POST", "namespaces"),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/lease-ns",
                "",
                ("GET", "namespaces"),
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/lease-ns",
                "",
                ("DELETE", "namespaces"),
            ),
            (
                Method::POST,
                "/api/v1/namespaces/ns/secrets",
                "application/json",
                ("POST", "secrets"),
            ),
            (Method::GET, "/api/v1/nodes", "", ("LIST", "nodes")),
            (
                Method::DELETE,
                "/api/v1/namespaces/ns/pods",
                "",
                ("DELETECOLLECTION", "pods"),
            ),
            (Method::GET, "/version", "", ("GET", "(other)")),
        ];
        for (method, path, content_type, (verb, resource)) in cases {
            assert_eq!(
                verb_and_resource(method, path, content_type),
                (verb.to_owned(), resource.to_owned()),
                "{path}"
            );
        }
    }
}
