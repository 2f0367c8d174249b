//! A hostile provider gateway for tests of the clients that read from providers and peers: it
//! presents a provider's on-chain certificate, and answers every request as told: a huge body, a
//! redirect, an error with a huge body. It records which paths were asked and how many body bytes
//! each answer got out. Built for this crate's tests and, with the feature `test-support`, for
//! the end-to-end tests; never part of the provider.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::tls::{ServerIdentity, server_config};

/// How the hostile gateway answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `status` with a body of `bytes` bytes, sent in 64 KiB chunks without a length.
    Flood { status: u16, bytes: usize },
    /// `307` to `location`.
    Redirect { location: String },
    /// `200` with `body`.
    Body(String),
}

/// One request: its path, and the body bytes its answer handed to the connection so far.
type Asked = (String, Arc<AtomicUsize>);

/// A running hostile gateway.
pub struct Hostile {
    pub(crate) addr: SocketAddr,
    asked: Arc<Mutex<Vec<Asked>>>,
}

impl Hostile {
    /// Serves `answer(path)` to every request, over TLS with `identity`.
    pub async fn start(
        identity: &ServerIdentity,
        answer: impl Fn(&str) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let tls = tokio_rustls::TlsAcceptor::from(Arc::new(
            server_config(identity, &[b"http/1.1"]).expect("TLS"),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let asked: Arc<Mutex<Vec<Asked>>> = Arc::default();
        let answer = Arc::new(answer);
        let recorded = asked.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (tls, answer, asked) = (tls.clone(), answer.clone(), recorded.clone());
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let path = request.uri().path().to_owned();
                        let sent = Arc::new(AtomicUsize::new(0));
                        asked.lock().unwrap().push((path.clone(), sent.clone()));
                        let response = respond(answer(&path), sent);
                        async move { Ok::<_, std::convert::Infallible>(response) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, asked }
    }

    /// `https://127.0.0.1:port`.
    pub fn uri(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The paths asked, in order.
    pub fn asked(&self) -> Vec<String> {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Body bytes handed to the connections so far, per answer, in order.
    pub fn sent_per_answer(&self) -> Vec<usize> {
        let asked = self.asked.lock().unwrap();
        asked
            .iter()
            .map(|(_, s)| s.load(Ordering::SeqCst))
            .collect()
    }

    /// Body bytes handed to the connections so far, in all.
    #[cfg(test)]
    pub(crate) fn sent(&self) -> usize {
        self.sent_per_answer().iter().sum()
    }
}

type Body = http_body_util::combinators::BoxBody<prost::bytes::Bytes, std::convert::Infallible>;

fn respond(answer: Answer, sent: Arc<AtomicUsize>) -> Response<Body> {
    use http_body_util::BodyExt;
    match answer {
        Answer::Flood { status, bytes } => {
            const CHUNK: usize = 64 << 10;
            let chunk = prost::bytes::Bytes::from(vec![b' '; CHUNK]);
            let chunks = bytes.div_ceil(CHUNK);
            let stream = futures::stream::iter(0..chunks).map(move |i| {
                let len = CHUNK.min(bytes - i * CHUNK);
                sent.fetch_add(len, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(Frame::data(chunk.slice(..len)))
            });
            Response::builder()
                .status(status)
                .body(BodyExt::boxed(http_body_util::StreamBody::new(stream)))
                .expect("response")
        }
        Answer::Redirect { location } => Response::builder()
            .status(307)
            .header("location", location)
            .body(http_body_util::Empty::new().boxed())
            .expect("response"),
        Answer::Body(text) => Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(prost::bytes::Bytes::from(text)).boxed())
            .expect("response"),
    }
}

/// A loopback listener that speaks no TLS and counts nothing: whether anyone connected is read
/// with [`PlainListener::connected`]. Only this crate's own tests use it.
#[cfg(test)]
pub(crate) struct PlainListener {
    listener: std::net::TcpListener,
}

#[cfg(test)]
impl PlainListener {
    pub(crate) fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        Self { listener }
    }

    /// `http://127.0.0.1:port`.
    pub(crate) fn http_uri(&self) -> String {
        format!("http://{}", self.listener.local_addr().expect("address"))
    }

    /// Whether a connection has arrived (the kernel completes it before anyone accepts).
    pub(crate) fn connected(&self) -> bool {
        self.listener.accept().is_ok()
    }
}
