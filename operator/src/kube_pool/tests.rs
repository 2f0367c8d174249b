use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus_client::metrics::family::Family;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{IDLE_CONNECTIONS, client};
use crate::kube_requests::CountRequestsLayer;

/// A plain-HTTP stand-in for the API server: answers every request `{}` after `delay`, keeps
/// connections alive, and counts those open.
async fn server(delay: Duration) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let open = Arc::new(AtomicUsize::new(0));
    let counted = open.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let open = counted.clone();
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                    // GETs only: a request ends with its headers.
                    while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        request.drain(..end + 4);
                        tokio::time::sleep(delay).await;
                        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, open)
}

async fn get(client: &kube::Client) {
    let request = axum::http::Request::get("/version")
        .body(Vec::new())
        .unwrap();
    assert_eq!(client.request_text(request).await.unwrap(), "{}");
}

#[tokio::test]
async fn after_a_burst_at_most_the_idle_limit_of_connections_stays_open() {
    let (url, open) = server(Duration::from_millis(200)).await;
    let config = kube::Config::new(url.parse().unwrap());
    let client = client(
        config,
        &CountRequestsLayer {
            counter: Family::default(),
        },
    )
    .unwrap();
    // 40 requests at once: one connection each (HTTP/1.1).
    futures::future::join_all((0..40).map(|_| get(&client))).await;
    let opened = open.load(Ordering::SeqCst);
    // hyper closes what the pool does not keep once the response is read; allow it a moment.
    let mut left = opened;
    for _ in 0..50 {
        left = open.load(Ordering::SeqCst);
        if left <= IDLE_CONNECTIONS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        left <= IDLE_CONNECTIONS,
        "{left} connections open after the burst (at most {IDLE_CONNECTIONS} kept)"
    );
    // The kept ones are reused: another request opens none.
    get(&client).await;
    assert!(open.load(Ordering::SeqCst) <= IDLE_CONNECTIONS);
}

#[tokio::test]
async fn requests_are_counted_by_verb_and_resource() {
    let (url, _) = server(Duration::ZERO).await;
    let counter = Family::default();
    let client = client(
        kube::Config::new(url.parse().unwrap()),
        &CountRequestsLayer {
            counter: counter.clone(),
        },
    )
    .unwrap();
    get(&client).await;
    get(&client).await;
    let mut text = String::new();
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register("kube_requests", "", counter);
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("verb=\"GET\",resource=\"(other)\"} 2"),
        "{text}"
    );
}
