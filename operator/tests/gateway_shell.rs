//! `GET /lease/…/shell` through the real gateway (TLS, authentication, the websocket framing),
//! with commands run as local processes in place of the API server's exec: output, stdin, exit
//! codes, resizes, the Go provider's messages, and who is refused.

mod gateway_world;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, SinkExt, StreamExt};
use gateway_world::*;
use kube::api::TerminalSize;
use operator::gateway::shell::{
    ExecError, ExecSession, FAILURE, PodExec, RESULT, STDERR, STDIN, STDOUT, ShellQuery,
    ShellResult, TERMINAL_RESIZE,
};
use operator::gateway::{GatewayExtras, GatewayLimits};
use tokio_tungstenite::tungstenite::Message;

/// Runs the command on this machine; records what it was asked.
#[derive(Default)]
struct LocalExec {
    asked: Mutex<Vec<(String, ShellQuery)>>,
    sizes: Arc<Mutex<Vec<(u16, u16)>>>,
}

#[async_trait]
impl PodExec for LocalExec {
    async fn exec(&self, namespace: &str, query: &ShellQuery) -> Result<ExecSession, ExecError> {
        self.asked
            .lock()
            .unwrap()
            .push((namespace.to_owned(), query.clone()));
        if query.pod_index > 0 {
            return Err(ExecError::ForTenant(
                "remote command execute error: pod index out of range: valid range is [0, 0]"
                    .into(),
            ));
        }
        if query.command[0] == "explode" {
            return Err(ExecError::Internal("secret internal detail".into()));
        }
        let mut child = tokio::process::Command::new(&query.command[0])
            .args(&query.command[1..])
            .stdin(if query.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExecError::Internal(e.to_string()))?;
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let stdin = child.stdin.take();
        let (resize, mut sizes_rx) = futures::channel::mpsc::channel::<TerminalSize>(4);
        let sizes = self.sizes.clone();
        tokio::spawn(async move {
            while let Some(size) = sizes_rx.next().await {
                sizes.lock().unwrap().push((size.width, size.height));
            }
        });
        Ok(ExecSession {
            stdout: Box::pin(stdout),
            stderr: Some(Box::pin(stderr)),
            stdin: stdin.map(|w| Box::pin(w) as _),
            resize: query.tty.then_some(resize),
            exit: async move {
                let status = child.wait().await.map_err(|e| e.to_string())?;
                status.code().ok_or_else(|| "killed".to_owned())
            }
            .boxed(),
            keep: Box::new(()),
        })
    }
}

async fn world(exec: Arc<LocalExec>) -> World {
    let world = World::start_with_extras(
        GatewayLimits::default(),
        GatewayExtras {
            pod_exec: Some(exec),
            ..Default::default()
        },
    )
    .await;
    let body = serde_json::to_vec(&sdl(2).manifest()).unwrap();
    let (status, text) = world.put(Some(&world.tenant), body).await;
    assert_eq!(status, 200, "{text}");
    world
}

fn shell_path(args: &[&str], extra: &str) -> String {
    let cmd: String = args
        .iter()
        .enumerate()
        .map(|(i, a)| format!("&cmd{i}={}", urlencode(a)))
        .collect();
    format!("/lease/{DSEQ}/1/1/shell?service=web&podIndex=0&tty=0&stdin=0{cmd}{extra}")
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Everything the provider sent: (stdout, stderr, the final code and its body).
async fn collect<S>(socket: &mut S) -> (Vec<u8>, Vec<u8>, u8, Vec<u8>)
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a message within 20 s")
            .expect("the stream did not end before the result")
            .expect("no error");
        if let Message::Binary(bytes) = message {
            let (code, body) = bytes.split_first().expect("a code");
            match *code {
                STDOUT => out.extend_from_slice(body),
                STDERR => err.extend_from_slice(body),
                RESULT | FAILURE => return (out, err, *code, body.to_vec()),
                other => panic!("unknown code {other}"),
            }
        }
    }
}

#[tokio::test]
async fn a_command_runs_and_its_output_and_exit_code_come_back() {
    let exec = Arc::new(LocalExec::default());
    let world = world(exec.clone()).await;
    let path = shell_path(&["sh", "-c", "echo out; echo err >&2; exit 3"], "");
    let mut socket = world.websocket(Some(&world.tenant), &path).await.unwrap();
    let (out, err, code, body) = collect(&mut socket).await;
    assert_eq!(out, b"out\n");
    assert_eq!(err, b"err\n");
    assert_eq!(code, RESULT);
    let result: ShellResult = serde_json::from_slice(&body).unwrap();
    assert_eq!(result.exit_code, 3);
    let asked = exec.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].0, operator_namespace(&world));
    assert_eq!(
        asked[0].1.command,
        ["sh", "-c", "echo out; echo err >&2; exit 3"]
    );
}

fn operator_namespace(world: &World) -> String {
    world
        .source
        .get(&world.lease_name())
        .unwrap()
        .spec
        .lease_id
        .namespace()
}

#[tokio::test]
async fn stdin_reaches_the_command_and_resizes_are_passed_on() {
    let exec = Arc::new(LocalExec::default());
    let world = world(exec.clone()).await;
    let path = shell_path(&["head", "-n", "2"], "")
        .replace("stdin=0", "stdin=1")
        .replace("tty=0", "tty=1");
    let mut socket = world.websocket(Some(&world.tenant), &path).await.unwrap();
    let mut resize = vec![TERMINAL_RESIZE];
    resize.extend_from_slice(&120u16.to_be_bytes());
    resize.extend_from_slice(&40u16.to_be_bytes());
    socket.send(Message::Binary(resize.into())).await.unwrap();
    for line in ["one\n", "two\n"] {
        let mut frame = vec![STDIN];
        frame.extend_from_slice(line.as_bytes());
        socket.send(Message::Binary(frame.into())).await.unwrap();
    }
    let (out, _, code, body) = collect(&mut socket).await;
    assert_eq!(String::from_utf8_lossy(&out), "one\ntwo\n");
    assert_eq!(code, RESULT);
    assert_eq!(
        serde_json::from_slice::<ShellResult>(&body)
            .unwrap()
            .exit_code,
        0
    );
    assert_eq!(*exec.sizes.lock().unwrap(), [(120, 40)]);
}

#[tokio::test]
async fn what_the_tenant_may_know_is_a_message_and_the_rest_is_a_bare_failure() {
    let exec = Arc::new(LocalExec::default());
    let world = world(exec.clone()).await;
    // A replica that does not exist: the reason, in the result.
    let path = shell_path(&["true"], "").replace("podIndex=0", "podIndex=1");
    let mut socket = world.websocket(Some(&world.tenant), &path).await.unwrap();
    let (_, _, code, body) = collect(&mut socket).await;
    assert_eq!(code, RESULT);
    let result: ShellResult = serde_json::from_slice(&body).unwrap();
    assert!(
        result.message.contains("pod index out of range"),
        "{result:?}"
    );
    // A service the lease does not have: the Go provider's message, and nothing run.
    let path = shell_path(&["true"], "").replace("service=web", "service=db");
    let mut socket = world.websocket(Some(&world.tenant), &path).await.unwrap();
    let (_, _, code, body) = collect(&mut socket).await;
    assert_eq!(code, RESULT);
    let result: ShellResult = serde_json::from_slice(&body).unwrap();
    assert!(result.message.contains("no such service"), "{result:?}");
    assert!(
        exec.asked
            .lock()
            .unwrap()
            .iter()
            .all(|(_, q)| q.service == "web")
    );
    // An internal error: FAILURE with nothing in it.
    let mut socket = world
        .websocket(Some(&world.tenant), &shell_path(&["explode"], ""))
        .await
        .unwrap();
    let (_, _, code, body) = collect(&mut socket).await;
    assert_eq!((code, body), (FAILURE, vec![]));
}

#[tokio::test]
async fn a_stranger_an_unknown_certificate_and_no_certificate_run_nothing() {
    let exec = Arc::new(LocalExec::default());
    let world = world(exec.clone()).await;
    let path = shell_path(&["touch", "/tmp/should-not-exist"], "");
    let (status, body) = world
        .websocket(Some(&world.stranger), &path)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(status == 403 || status == 404, "stranger: {status} {body}");
    for who in [Some(&world.unknown), None] {
        let refused = world.websocket(who, &path).await.map(|_| ()).unwrap_err();
        assert!(refused.0 == 401 || refused.0 == 0, "{refused:?}");
    }
    // A malformed request is refused before any upgrade, naming the parameter.
    let (status, body) = world
        .websocket(Some(&world.tenant), &path.replace("&tty=0", ""))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(status, 400);
    assert!(body.contains("tty"), "{body}");
    assert!(exec.asked.lock().unwrap().is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_shell_is_cut_when_its_lease_closes() {
    let exec = Arc::new(LocalExec::default());
    let world = world(exec.clone()).await;
    let path = shell_path(&["sleep", "600"], "");
    let mut socket = world.websocket(Some(&world.tenant), &path).await.unwrap();
    // The command is running before the lease goes.
    while exec.asked.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.source.leases.lock().unwrap().clear();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
            Ok(Some(Ok(_))) => {}
            other => panic!("no close: {other:?}"),
        }
    };
    assert_eq!(close, Some(4001));
}
