//! A lease's container logs over a websocket: `GET /lease/{dseq}/{gseq}/{oseq}/logs`, with the
//! Go provider's query parameters (`service`, comma-separated; `follow`; `tail`, lines from the
//! end, -1 or absent for all) and messages (one JSON text frame per line,
//! `{"name": <pod>, "message": <line>}`; close code 4000 "no running pods" when nothing matches),
//! so `provider-services lease-logs` and Akash Console read them unmodified.
//!
//! Lines are read from each pod's log through the API server and handed to the socket through a
//! small bounded channel: a slow reader slows the reads, it never makes the provider buffer. A
//! line longer than [`MAX_LINE`] is cut into pieces. The stream ends when every pod's log ends
//! (without `follow`, or when the lease's pods go), when the tenant disconnects, or when the
//! gateway stops.

use std::pin::Pin;

use async_trait::async_trait;
use axum::extract::ws::WebSocket;
use futures::io::AsyncBufRead;
use futures::stream::BoxStream;
use futures::{AsyncBufReadExt, SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, LogParams};
use kube::{Api, Client, ResourceExt};
use tokio::sync::mpsc;

use super::Rejection;
use super::ws_stream::{self, close};

/// At most this much of the end of each pod's log in one gRPC `ServiceLogs` answer, and at
/// most [`GRPC_TAIL`] lines: the answer stays under a client's usual 4 MiB message limit.
pub(crate) const GRPC_LOG_BYTES: usize = 256 * 1024;
pub(crate) const GRPC_TAIL: i64 = 1000;

/// Longest piece of a line sent in one message.
pub(crate) const MAX_LINE: usize = 16 * 1024;
/// Lines waiting for the socket, across all pods of one stream.
const QUEUE: usize = 64;
/// The Go provider's close codes.
pub(crate) const CLOSE_NO_PODS: u16 = 4000;

/// What the tenant asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogQuery {
    pub(crate) services: Vec<String>,
    pub(crate) follow: bool,
    /// Lines from the end of each log; `None`: all.
    pub(crate) tail: Option<i64>,
}

impl LogQuery {
    /// From the query string, refusing what the Go provider refuses (400 naming the parameter).
    pub(crate) fn parse(
        query: &std::collections::HashMap<String, String>,
    ) -> Result<Self, Rejection> {
        let services = query.get("service").map(String::as_str).unwrap_or_default();
        if services.ends_with(',') {
            return Err(Rejection::Malformed(
                "parameter \"service\" must not contain trailing comma".into(),
            ));
        }
        let services: Vec<String> = services
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if let Some(bad) = services.iter().find(|s| !is_service_name(s)) {
            return Err(Rejection::Malformed(format!(
                "parameter \"service\": {bad:?} is not a service name"
            )));
        }
        let follow = match query.get("follow").map(String::as_str) {
            None | Some("") => false,
            Some(v) => parse_bool(v).ok_or_else(|| {
                Rejection::Malformed(format!("parameter \"follow\": {v:?} is not a boolean"))
            })?,
        };
        let tail = match query.get("tail").map(String::as_str) {
            None | Some("") => None,
            Some(v) => {
                let n: i32 = v.parse().map_err(|_| {
                    Rejection::Malformed(format!("parameter \"tail\": {v:?} is not a number"))
                })?;
                if n < -1 {
                    return Err(Rejection::Malformed(
                        "parameter \"tail\" contains invalid value".into(),
                    ));
                }
                (n >= 0).then_some(i64::from(n))
            }
        };
        Ok(Self {
            services,
            follow,
            tail,
        })
    }
}

/// An SDL service name (a DNS label): nothing that could change the label selector it goes in.
pub(crate) fn is_service_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Go's `strconv.ParseBool`.
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// One message of the stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    pub name: String,
    pub message: String,
}

/// A failed read of pods or their logs.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LogError(pub String);

/// Where logs come from: the cluster, or a fake in tests.
#[async_trait]
pub trait PodLogs: Send + Sync {
    /// The pods of `namespace` running one of `services` (every pod when empty), by name.
    async fn pods(&self, namespace: &str, services: &[String]) -> Result<Vec<String>, LogError>;
    /// The lines of pod `pod`'s log, each at most [`MAX_LINE`] bytes.
    async fn lines(
        &self,
        namespace: &str,
        pod: &str,
        query: &LogQuery,
    ) -> Result<BoxStream<'static, Result<String, LogError>>, LogError>;
}

/// Pods and logs through the API server.
pub(crate) struct KubePodLogs {
    client: Client,
}

impl KubePodLogs {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl PodLogs for KubePodLogs {
    async fn pods(&self, namespace: &str, services: &[String]) -> Result<Vec<String>, LogError> {
        let mut params = ListParams::default();
        let selector;
        if !services.is_empty() {
            selector = format!(
                "{} in ({})",
                crate::workload::build::SERVICE_LABEL,
                services.join(",")
            );
            params = params.labels(&selector);
        }
        let pods = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .list(&params)
            .await
            .map_err(|e| LogError(format!("listing the lease's pods: {e}")))?;
        Ok(pods.items.iter().map(ResourceExt::name_any).collect())
    }

    async fn lines(
        &self,
        namespace: &str,
        pod: &str,
        query: &LogQuery,
    ) -> Result<BoxStream<'static, Result<String, LogError>>, LogError> {
        let params = LogParams {
            follow: query.follow,
            tail_lines: query.tail,
            ..LogParams::default()
        };
        let reader = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .log_stream(pod, &params)
            .await
            .map_err(|e| LogError(format!("reading the log of pod {pod}: {e}")))?;
        Ok(bounded_lines(Box::pin(reader)))
    }
}

/// Lines of `reader`, a line longer than [`MAX_LINE`] cut into pieces of that size.
pub(crate) fn bounded_lines(
    reader: Pin<Box<dyn AsyncBufRead + Send>>,
) -> BoxStream<'static, Result<String, LogError>> {
    futures::stream::unfold(reader, |mut reader| async move {
        let mut line = Vec::new();
        loop {
            let buf = match reader.fill_buf().await {
                Ok(buf) => buf,
                Err(e) => return Some((Err(LogError(e.to_string())), reader)),
            };
            if buf.is_empty() {
                if line.is_empty() {
                    return None;
                }
                break;
            }
            let room = MAX_LINE - line.len();
            let window = &buf[..buf.len().min(room)];
            if let Some(end) = window.iter().position(|b| *b == b'\n') {
                line.extend_from_slice(&window[..end]);
                reader.as_mut().consume(end + 1);
                break;
            }
            let taken = window.len();
            line.extend_from_slice(window);
            reader.as_mut().consume(taken);
            if line.len() == MAX_LINE {
                break;
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Some((Ok(String::from_utf8_lossy(&line).into_owned()), reader))
    })
    .boxed()
}

/// Pods and their lines, read as the query asks: `None` when no pod matches (or none could be
/// read); otherwise a bounded channel of every pod's lines, closed when every log has ended. The
/// readers stop when the receiver is dropped.
pub(crate) async fn follow_lines(
    logs: &dyn PodLogs,
    namespace: &str,
    query: &LogQuery,
) -> Option<mpsc::Receiver<LogLine>> {
    let pods = match logs.pods(namespace, &query.services).await {
        Ok(pods) => pods,
        Err(e) => {
            tracing::warn!(namespace, error = %e, "lease logs: listing pods failed");
            return None;
        }
    };
    let (lines_tx, lines) = mpsc::channel::<LogLine>(QUEUE);
    let mut opened = 0;
    for pod in pods {
        let mut source = match logs.lines(namespace, &pod, query).await {
            Ok(source) => source,
            Err(e) => {
                tracing::warn!(namespace, pod, error = %e, "lease logs: opening a pod's log failed");
                continue;
            }
        };
        opened += 1;
        let tx = lines_tx.clone();
        tokio::spawn(async move {
            loop {
                // The receiver gone (the tenant left): stop reading, even from an idle log.
                let next = tokio::select! {
                    () = tx.closed() => return,
                    next = source.next() => next,
                };
                let Some(Ok(message)) = next else { return };
                let line = LogLine {
                    name: pod.clone(),
                    message,
                };
                if tx.send(line).await.is_err() {
                    return;
                }
            }
        });
    }
    (opened > 0).then_some(lines)
}

/// Streams the logs of `namespace`'s pods to `socket` as the query asks, until done (see the
/// module's documentation).
pub(crate) async fn stream(
    logs: &dyn PodLogs,
    namespace: &str,
    query: &LogQuery,
    socket: WebSocket,
    end: super::stream_end::StreamEnd,
) {
    let (mut sink, incoming) = socket.split();
    let Some(lines) = follow_lines(logs, namespace, query).await else {
        let _ = sink.send(close(CLOSE_NO_PODS, "no running pods")).await;
        return ws_stream::finish(sink, incoming).await;
    };
    // Dropping the receiver (when the stream ends) stops the readers.
    let texts = futures::stream::unfold(lines, |mut lines| async move {
        let line = lines.recv().await?;
        Some((serde_json::to_string(&line).unwrap_or_default(), lines))
    })
    .boxed();
    ws_stream::send_texts(sink, incoming, texts, end).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn query(pairs: &[(&str, &str)]) -> Result<LogQuery, Rejection> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        LogQuery::parse(&map)
    }

    #[test]
    fn parameters_read_as_the_go_provider_reads_them() {
        assert_eq!(query(&[]).unwrap(), LogQuery::default());
        assert_eq!(
            query(&[("service", "web,db"), ("follow", "true"), ("tail", "10")]).unwrap(),
            LogQuery {
                services: vec!["web".into(), "db".into()],
                follow: true,
                tail: Some(10),
            }
        );
        assert_eq!(
            query(&[("tail", "-1"), ("follow", "0")]).unwrap().tail,
            None
        );
    }

    #[test]
    fn bad_parameters_are_refused_naming_the_parameter() {
        for (pairs, named) in [
            (&[("service", "web,")][..], "service"),
            (&[("service", "web) or (x")], "service"),
            (&[("follow", "yes")], "follow"),
            (&[("tail", "-2")], "tail"),
            (&[("tail", "ten")], "tail"),
            (&[("tail", "99999999999")], "tail"),
        ] {
            let e = query(pairs).unwrap_err();
            assert_eq!(e.http_status(), 400, "{pairs:?}");
            assert!(e.to_string().contains(named), "{pairs:?}: {e}");
        }
    }

    #[tokio::test]
    async fn lines_are_split_and_an_endless_line_is_cut_into_bounded_pieces() {
        let mut text = b"first\r\nsecond\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE * 2 + 5));
        text.extend_from_slice(b"\nlast");
        let reader = futures::io::BufReader::with_capacity(1000, futures::io::Cursor::new(text));
        let lines: Vec<String> = bounded_lines(Box::pin(reader))
            .map(Result::unwrap)
            .collect()
            .await;
        let lengths: Vec<usize> = lines.iter().map(String::len).collect();
        assert_eq!(lines[0], "first");
        assert_eq!(lines[1], "second");
        assert_eq!(lengths[2..5], [MAX_LINE, MAX_LINE, 5]);
        assert_eq!(lines[5], "last");
        assert_eq!(lines.len(), 6);
    }
}
