//! The provider's connections to the API server: kube's client stack over a hyper pool that
//! keeps few idle connections.
//!
//! kube builds hyper's pool with its defaults: every idle connection kept for 90 s, with no
//! bound. Requests go over HTTP/1.1, one at a time per connection, so a turn-up of hundreds of
//! leases opens a connection per request in flight and then keeps them all. At 300 leases the
//! provider held 132 connections to the API server, each with its TLS state and buffers: 5.9 MB
//! of its 17 MB heap. Here at most [`IDLE_CONNECTIONS`] wait for reuse, for [`IDLE_TIMEOUT`].

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::retry::RetryPolicy;
use kube::client::{ClientBuilder, ConfigExt};
use kube::{Client, Config};
use tower::retry::RetryLayer;
use tower::{BoxError, ServiceBuilder};

use crate::kube_requests::CountRequestsLayer;

/// Idle connections kept for reuse: about what the provider's steady load (watches aside, which
/// hold their own) has in flight at once.
pub(crate) const IDLE_CONNECTIONS: usize = 8;
/// How long an idle connection is kept.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for `config` whose requests pass `count` first, over a pool of at most
/// [`IDLE_CONNECTIONS`] idle connections. A config this stack does not cover (a proxy,
/// credentials from an exec plugin, which kube refreshes by their expiry) gets kube's own stack,
/// with its default pool.
pub(crate) fn client(config: Config, count: &CountRequestsLayer) -> Result<Client, kube::Error> {
    if config.proxy_url.is_some() || config.auth_info.exec.is_some() {
        return Ok(ClientBuilder::try_from(config)?.with_layer(count).build());
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    connector.set_reset_reader_on_write(config.reset_reader_on_write);
    let pool = hyper_util::client::legacy::Builder::new(TokioExecutor::new())
        .pool_max_idle_per_host(IDLE_CONNECTIONS)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build(connector);
    // kube's order: base URI, retries of 5xx the API server asks to be retried, credentials,
    // extra headers; only its tracing of each request is left out (callers log their errors).
    let stack = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(
            config
                .default_retry
                .then(|| RetryLayer::new(RetryPolicy::server_retry())),
        )
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(BoxError::from)
        .service(pool);
    Ok(ClientBuilder::new(stack, config.default_namespace)
        .with_layer(count)
        .build())
}

#[cfg(test)]
mod tests;
