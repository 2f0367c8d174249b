//! `LeaseRPC` calls are authenticated on the client's certificate or token before their request
//! is read:
//! [`Authenticated`] wraps the generated server, reads at most the method's limit of the body
//! only for a client the chain vouches for, checks a `SendManifest` request's list sizes on its
//! protobuf bytes ([`super::wire_limits`]), and only then lets tonic decode it. The caller rides along
//! in the request's extensions.

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use tonic::Status;
use tonic::body::Body;
use tonic::codegen::{BoxFuture, Context, Poll, Service, http};
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::grpc::{SMALL_MESSAGE, status_of};
use super::{Caller, Gateway};

/// The one method whose request may be as large as `--max-manifest-bytes`.
const SEND_MANIFEST: &str = "/akash.provider.lease.v1.LeaseRPC/SendManifest";
/// A gRPC message's prefix: a compression flag and a 4-byte length.
const PREFIX: usize = 5;

/// A gRPC service whose callers must present a certificate the chain holds as valid.
#[derive(Clone)]
pub(super) struct Authenticated<S> {
    inner: S,
    gateway: Arc<Gateway>,
}

impl<S> Authenticated<S> {
    pub(super) fn new(inner: S, gateway: Arc<Gateway>) -> Self {
        Self { inner, gateway }
    }
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Authenticated<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The service that was polled ready serves this call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gateway = self.gateway.clone();
        Box::pin(async move {
            match admit(&gateway, request).await {
                Ok(request) => inner.call(request).await,
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// The request, read and checked, for an authenticated client; the refusal otherwise.
async fn admit(
    gateway: &Gateway,
    request: http::Request<Body>,
) -> Result<http::Request<Body>, Status> {
    let certs: Vec<Vec<u8>> = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.peer_certs())
        .map(|certs| certs.iter().map(|c| c.to_vec()).collect())
        .unwrap_or_default();
    let remote = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(|info| info.get_ref().remote_addr());
    // A token in the `authorization` metadata, as the Go provider's clients send it.
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let peer: Caller = match gateway.caller(&certs, authorization).await {
        Ok(peer) => peer,
        Err(e) => {
            tracing::info!(remote = ?remote, path = request.uri().path(), error = %e, "gRPC call refused");
            return Err(status_of(e));
        }
    };
    let (mut parts, body) = request.into_parts();
    let send_manifest = parts.uri.path() == SEND_MANIFEST;
    let max = if send_manifest {
        gateway.config.max_manifest_bytes
    } else {
        SMALL_MESSAGE
    };
    let bytes = match Limited::new(body, max + PREFIX).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return Err(Status::resource_exhausted(format!(
                "the request is larger than {max} bytes"
            )));
        }
        Err(e) => {
            return Err(Status::invalid_argument(format!(
                "reading the request: {e}"
            )));
        }
    };
    if send_manifest {
        super::wire_limits::check_send_manifest(single_message(&bytes)?)
            .map_err(Status::invalid_argument)?;
    }
    parts.extensions.insert(peer);
    Ok(http::Request::from_parts(
        parts,
        Body::new(Full::new(bytes)),
    ))
}

/// The one message of a unary call's body.
#[allow(clippy::result_large_err)] // tonic's `Status`, as every handler returns
fn single_message(body: &[u8]) -> Result<&[u8], Status> {
    let Some((prefix, message)) = body.split_at_checked(PREFIX) else {
        return Err(Status::invalid_argument(
            "the request holds no gRPC message",
        ));
    };
    if prefix[0] != 0 {
        return Err(Status::unimplemented(
            "compressed requests are not accepted",
        ));
    }
    let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
    if message.len() != len {
        return Err(Status::invalid_argument(format!(
            "the request's message says it has {len} bytes, the body has {}",
            message.len()
        )));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_uncompressed_message_is_taken_from_the_body() {
        let mut body = vec![0, 0, 0, 0, 3];
        body.extend_from_slice(b"abc");
        assert_eq!(single_message(&body).unwrap(), b"abc");
        body[0] = 1;
        assert_eq!(
            single_message(&body).unwrap_err().code(),
            tonic::Code::Unimplemented
        );
        assert_eq!(
            single_message(&[0, 0, 0, 0, 9, 1]).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert!(single_message(&[0, 0]).is_err());
    }
}
