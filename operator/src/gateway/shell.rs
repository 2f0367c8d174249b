//! A command in a lease's container over a websocket: `GET /lease/{dseq}/{gseq}/{oseq}/shell`,
//! with the Go provider's parameters and framing, so `provider-services lease-shell` and Akash
//! Console work unmodified:
//! - parameters (all required): `cmd0`, `cmd1`, … the command; `service`; `podIndex` (the
//!   replica, pods of the service sorted by name); `tty` and `stdin`, `1` for yes;
//! - every message is binary, its first byte a code: from the provider [`STDOUT`], [`STDERR`],
//!   then once [`RESULT`] (JSON `{"exit_code": N, "message": …}`) or [`FAILURE`] (empty: an
//!   error the tenant is not told about); from the tenant [`STDIN`] and [`TERMINAL_RESIZE`]
//!   (width, height: two big-endian `u16`).
//!
//! The command runs through the API server's exec. Output is read only as fast as the socket
//! takes it, so a slow tenant slows the command rather than growing the provider's memory.

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::{Message, WebSocket};
use futures::future::BoxFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{AttachParams, ListParams, TerminalSize};
use kube::{Api, Client, ResourceExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Rejection;
use super::stream_end::StreamEnd;
use super::ws_stream::{PING_EVERY, close};

pub const STDOUT: u8 = 100;
pub const STDERR: u8 = 101;
pub const RESULT: u8 = 102;
pub const FAILURE: u8 = 103;
pub const STDIN: u8 = 104;
pub const TERMINAL_RESIZE: u8 = 105;

/// Largest message a tenant may send (stdin, resize).
pub(crate) const MAX_MESSAGE: usize = 64 * 1024;
/// Largest piece of output sent in one message.
const CHUNK: usize = 32 * 1024;
/// Arguments of one command, and bytes of them together.
const MAX_ARGS: usize = 256;
const MAX_ARG_BYTES: usize = 64 * 1024;

/// What the tenant asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellQuery {
    pub command: Vec<String>,
    pub service: String,
    pub pod_index: usize,
    pub tty: bool,
    pub stdin: bool,
}

impl ShellQuery {
    /// From the query string; what the Go provider refuses is a 400 naming the parameter.
    pub(crate) fn parse(query: &HashMap<String, String>) -> Result<Self, Rejection> {
        let mut command = Vec::new();
        while let Some(arg) = query
            .get(&format!("cmd{}", command.len()))
            .filter(|a| !a.is_empty())
        {
            if command.len() == MAX_ARGS {
                return Err(malformed(format!(
                    "parameter \"cmd\": more than {MAX_ARGS} arguments"
                )));
            }
            command.push(arg.clone());
        }
        if command.is_empty() {
            return Err(malformed("missing parameter \"cmd0\" (the command)".into()));
        }
        if command.iter().map(String::len).sum::<usize>() > MAX_ARG_BYTES {
            return Err(malformed(format!(
                "parameter \"cmd\": the command is longer than {MAX_ARG_BYTES} bytes"
            )));
        }
        let required = |name: &str| {
            query
                .get(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| malformed(format!("missing parameter \"{name}\"")))
        };
        let tty = required("tty")? == "1";
        let stdin = required("stdin")? == "1";
        let service = required("service")?.clone();
        if !super::logs::is_service_name(&service) {
            return Err(malformed(format!(
                "parameter \"service\": {service:?} is not a service name"
            )));
        }
        let index = required("podIndex")?;
        let pod_index = parse_go_uint(index)
            .filter(|i| *i < 1 << 31)
            .ok_or_else(|| malformed(format!("parameter \"podIndex\": {index:?} is invalid")))?;
        Ok(Self {
            command,
            service,
            pod_index: pod_index as usize,
            tty,
            stdin,
        })
    }
}

fn malformed(text: String) -> Rejection {
    Rejection::Malformed(text)
}

/// Go's `strconv.ParseUint(s, 0, …)`: decimal, or `0x`/`0o`/`0b`/leading-`0` octal prefixes.
fn parse_go_uint(text: &str) -> Option<u64> {
    let t = text.replace('_', "");
    let (digits, radix) = if let Some(r) = t.strip_prefix("0x").or(t.strip_prefix("0X")) {
        (r.to_owned(), 16)
    } else if let Some(r) = t.strip_prefix("0b").or(t.strip_prefix("0B")) {
        (r.to_owned(), 2)
    } else if let Some(r) = t.strip_prefix("0o").or(t.strip_prefix("0O")) {
        (r.to_owned(), 8)
    } else if t.len() > 1 && t.starts_with('0') {
        (t[1..].to_owned(), 8)
    } else {
        (t, 10)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(&digits, radix).ok()
}

/// The result message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShellResult {
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// Why a command did not run.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// Something the tenant may know (no such service, not running, no such replica): sent
    /// as the result's message.
    #[error("{0}")]
    ForTenant(String),
    /// Anything else: logged, and the tenant gets [`FAILURE`].
    #[error("{0}")]
    Internal(String),
}

/// A command started in a container.
pub struct ExecSession {
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// `None` with a terminal (its output is all on stdout).
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    pub resize: Option<futures::channel::mpsc::Sender<TerminalSize>>,
    /// The exit code once the command ended; `Err` when it could not be learnt.
    pub exit: BoxFuture<'static, Result<i32, String>>,
    /// Dropped when the session ends (the connection to the container).
    pub keep: Box<dyn Send>,
}

/// Where commands run: the cluster, or a fake in tests.
#[async_trait]
pub trait PodExec: Send + Sync {
    /// Starts `query.command` in replica `query.pod_index` of service `query.service` of the
    /// lease in `namespace`.
    async fn exec(&self, namespace: &str, query: &ShellQuery) -> Result<ExecSession, ExecError>;
}

/// Commands through the API server's `pods/exec`.
pub(crate) struct KubePodExec {
    client: Client,
}

impl KubePodExec {
    pub(crate) fn new(client: Client) -> Self {
        Self { client }
    }
}

/// The Go provider's messages, which tenants' tools may match.
const NOT_RUNNING: &str = "remote command execute error: service with that name is not running";
pub(crate) const NO_SUCH_SERVICE: &str =
    "remote command execute error: no such service exists with that name";
pub(crate) const NOT_YET_ACTIVE: &str =
    "remote command execute error: deployment is not yet active";

/// Why `service` of `lease` cannot take a command before any pod is looked at: the lease has no
/// manifest yet, or its group has no such service.
pub(crate) fn refusal(lease: &crds::resources::Lease, service: &str) -> Option<&'static str> {
    let Some(manifest) = lease.spec.manifest.as_ref() else {
        return Some(NOT_YET_ACTIVE);
    };
    (!manifest.group.services.iter().any(|s| s.name == service)).then_some(NO_SUCH_SERVICE)
}

/// The replica `index` of the pods (sorted by name), if it can take a command.
pub(crate) fn pick_pod(mut pods: Vec<Pod>, index: usize) -> Result<Pod, ExecError> {
    if pods.is_empty() {
        return Err(ExecError::ForTenant(NOT_RUNNING.into()));
    }
    if index >= pods.len() {
        return Err(ExecError::ForTenant(format!(
            "remote command execute error: pod index out of range: valid range is [0, {}]",
            pods.len() - 1
        )));
    }
    pods.sort_by_key(ResourceExt::name_any);
    let pod = pods.swap_remove(index);
    let status = pod.status.as_ref();
    match status.and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => {
            return Err(ExecError::ForTenant(format!(
                "{NOT_RUNNING}: the service has completed"
            )));
        }
        Some("Failed") => {
            return Err(ExecError::ForTenant(format!(
                "{NOT_RUNNING}: the service has failed"
            )));
        }
        _ => {}
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    if !ready {
        return Err(ExecError::ForTenant(format!(
            "{NOT_RUNNING}: the service is not ready"
        )));
    }
    Ok(pod)
}

#[async_trait]
impl PodExec for KubePodExec {
    async fn exec(&self, namespace: &str, query: &ShellQuery) -> Result<ExecSession, ExecError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!(
            "{}={}",
            crate::workload::build::SERVICE_LABEL,
            query.service
        );
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| ExecError::Internal(format!("listing pods: {e}")))?;
        let pod = pick_pod(list.items, query.pod_index)?;
        // Kubernetes refuses a separate stderr with a terminal.
        let params = AttachParams::default()
            .container(query.service.clone())
            .stdin(query.stdin)
            .stdout(true)
            .stderr(!query.tty)
            .tty(query.tty);
        let mut process = pods
            .exec(&pod.name_any(), query.command.clone(), &params)
            .await
            .map_err(|e| ExecError::Internal(format!("exec in {}: {e}", pod.name_any())))?;
        let stdout = process
            .stdout()
            .ok_or_else(|| ExecError::Internal("exec: no stdout".into()))?;
        let stderr = process
            .stderr()
            .map(|r| Box::pin(r) as Pin<Box<dyn AsyncRead + Send>>);
        let stdin = process
            .stdin()
            .map(|w| Box::pin(w) as Pin<Box<dyn AsyncWrite + Send>>);
        let resize = process.terminal_size();
        let status = process
            .take_status()
            .ok_or_else(|| ExecError::Internal("exec: no status".into()))?;
        let exit = async move {
            let status = status
                .await
                .ok_or("the connection to the container ended without a status")?;
            exit_code(&status)
        }
        .boxed();
        Ok(ExecSession {
            stdout: Box::pin(stdout),
            stderr,
            stdin,
            resize,
            exit,
            keep: Box::new(process),
        })
    }
}

/// The exit code in the API server's final status of an exec.
pub(crate) fn exit_code(
    status: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Status,
) -> Result<i32, String> {
    if status.status.as_deref() == Some("Success") {
        return Ok(0);
    }
    let code = status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
        })
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.parse::<i32>().ok());
    code.ok_or_else(|| {
        status
            .message
            .clone()
            .unwrap_or_else(|| "the command failed".into())
    })
}

fn frame(code: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(code);
    bytes.extend_from_slice(data);
    Message::Binary(bytes.into())
}

/// Runs the tenant's session on `socket`: the command's output out, stdin and resizes in,
/// then the result; ended early by `end` (the lease closed, the provider stops) or by the
/// tenant leaving, which stops the command's connection.
pub(crate) async fn stream(
    exec: &dyn PodExec,
    namespace: &str,
    query: &ShellQuery,
    refusal: Option<&str>,
    socket: WebSocket,
    mut end: StreamEnd,
) {
    let (mut sink, mut incoming) = socket.split();
    let ended = end.wait();
    tokio::pin!(ended);
    let start = async {
        match refusal {
            Some(message) => Err(ExecError::ForTenant(message.to_owned())),
            None => exec.exec(namespace, query).await,
        }
    };
    let session = tokio::select! {
        session = start => session,
        reason = &mut ended => {
            let (code, text) = reason.close_frame();
            let _ = sink.send(close(code, text)).await;
            return;
        }
    };
    let mut session = match session {
        Ok(session) => session,
        Err(ExecError::ForTenant(message)) => {
            let _ = sink.send(result_frame(0, &message)).await;
            let _ = sink.send(close(1000, "")).await;
            return;
        }
        Err(ExecError::Internal(e)) => {
            tracing::warn!(namespace, service = query.service, error = %e, "lease shell failed");
            let _ = sink.send(frame(FAILURE, &[])).await;
            let _ = sink.send(close(1000, "")).await;
            return;
        }
    };
    tracing::info!(
        namespace,
        service = query.service,
        replica = query.pod_index,
        tty = query.tty,
        "lease shell started"
    );

    // The tenant's messages, handled on their own so a command that does not read its stdin
    // never stops the output; the task ends when the tenant leaves.
    let stdin = session.stdin.take();
    let resize = session.resize.take();
    let mut tenant = tokio::spawn(async move {
        let (mut stdin, mut resize) = (stdin, resize);
        while let Some(Ok(message)) = incoming.next().await {
            let Message::Binary(data) = message else {
                if matches!(message, Message::Close(_)) {
                    break;
                }
                continue;
            };
            let Some((&code, body)) = data.split_first() else {
                continue;
            };
            match code {
                STDIN => {
                    if let Some(w) = stdin.as_mut()
                        && (w.write_all(body).await.is_err() || w.flush().await.is_err())
                    {
                        stdin = None;
                    }
                }
                TERMINAL_RESIZE => {
                    if let (Some(tx), [w0, w1, h0, h1, ..]) = (resize.as_mut(), body) {
                        let size = TerminalSize {
                            width: u16::from_be_bytes([*w0, *w1]),
                            height: u16::from_be_bytes([*h0, *h1]),
                        };
                        let _ = tx.send(size).await;
                    }
                }
                // The Go provider stops reading at an unknown code; we ignore it instead,
                // which keeps the session's disconnect detection.
                _ => {}
            }
        }
    });

    let mut out = vec![0u8; CHUNK];
    let mut err = vec![0u8; CHUNK];
    let mut out_open = true;
    let mut stderr = session.stderr.take();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let ended_early = loop {
        if !out_open && stderr.is_none() {
            break None;
        }
        tokio::select! {
            n = session.stdout.read(&mut out), if out_open => match n {
                Ok(n) if n > 0 => {
                    if sink.send(frame(STDOUT, &out[..n])).await.is_err() {
                        break Some(None);
                    }
                }
                _ => out_open = false,
            },
            n = read_some(&mut stderr, &mut err) => match n {
                Some(n) => {
                    if sink.send(frame(STDERR, &err[..n])).await.is_err() {
                        break Some(None);
                    }
                }
                None => stderr = None,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break Some(None);
                }
            }
            _ = &mut tenant => break Some(None),
            reason = &mut ended => break Some(Some(reason)),
        }
    };
    match ended_early {
        None => {
            let exit = tokio::time::timeout(Duration::from_secs(10), session.exit).await;
            let message = match exit {
                Ok(Ok(code)) => {
                    tracing::info!(
                        namespace,
                        service = query.service,
                        code,
                        "lease shell completed"
                    );
                    result_frame(code, "")
                }
                Ok(Err(e)) => {
                    tracing::warn!(namespace, error = %e, "lease shell: no exit code");
                    frame(FAILURE, &[])
                }
                Err(_) => {
                    tracing::warn!(
                        namespace,
                        "lease shell: no exit status after the output ended"
                    );
                    frame(FAILURE, &[])
                }
            };
            let _ = sink.send(message).await;
            let _ = sink.send(close(1000, "")).await;
        }
        Some(Some(reason)) => {
            let (code, text) = reason.close_frame();
            let _ = sink.send(close(code, text)).await;
        }
        // The tenant left: nobody to tell.
        Some(None) => {}
    }
    tenant.abort();
    let _ = sink.close().await;
    // Dropping the session ends the command's connection.
    drop(session.keep);
}

/// Reads from `stream` when there is one; `None` at its end or error (pending forever without).
async fn read_some(
    stream: &mut Option<Pin<Box<dyn AsyncRead + Send>>>,
    buf: &mut [u8],
) -> Option<usize> {
    match stream {
        Some(r) => match r.read(buf).await {
            Ok(n) if n > 0 => Some(n),
            _ => None,
        },
        None => std::future::pending().await,
    }
}

fn result_frame(exit_code: i32, message: &str) -> Message {
    let mut json = serde_json::to_vec(&ShellResult {
        exit_code,
        message: message.to_owned(),
    })
    .unwrap_or_default();
    // As Go's JSON encoder writes it.
    json.push(b'\n');
    frame(RESULT, &json)
}

#[cfg(test)]
mod tests;
