//! `tenant shell DSEQ SERVICE COMMAND…`: a command in one of the deployment's containers,
//! through its provider's `/lease/…/shell` websocket (mutual TLS), as `provider-services
//! lease-shell` runs it: output to this terminal, this program's input to the command with
//! `--stdin`, a terminal with `--tty` (this one in raw mode meanwhile, its size sent at the start
//! and at every change), and the command's exit code as this program's.

use anyhow::Context as _;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::cli::session_with;
use super::cli_streams::{ActiveLease, active_leases, credentials, identity_unless_token};
use super::config::ShellArgs;
use crate::gateway::client::Credentials;
use crate::gateway::shell::{FAILURE, RESULT, STDERR, STDIN, STDOUT, ShellResult, TERMINAL_RESIZE};

/// Runs the command; exits with its exit code when that is not 0.
pub async fn shell(args: ShellArgs) -> anyhow::Result<()> {
    let code = run(&args).await?;
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

async fn run(args: &ShellArgs) -> anyhow::Result<i32> {
    let s = session_with(&args.common, args.jwt).await?;
    let identity = identity_unless_token(&s).await?;
    let credentials = credentials(&s, identity.as_ref());
    let leases = active_leases(&s, args.dseq).await?;
    let lease = pick_lease(&s, credentials, args, leases).await?;
    let mut path = format!(
        "/lease/{}/{}/{}/shell?service={}&podIndex={}&tty={}&stdin={}",
        args.dseq,
        lease.gseq,
        lease.oseq,
        args.service,
        args.replica_index,
        u8::from(args.tty),
        u8::from(args.stdin),
    );
    for (i, arg) in args.command.iter().enumerate() {
        path.push_str(&format!("&cmd{i}={}", query_escape(arg)));
    }
    let socket = crate::gateway::client::open_websocket_as(
        s.chain.as_ref(),
        &lease.provider,
        credentials,
        &lease.gateway,
        &path,
    )
    .await
    .with_context(|| format!("shell at {}", lease.provider))?;
    let (mut sink, mut incoming) = socket.split();

    // Raw mode only when this is a terminal; restored when `_raw` is dropped, before exit.
    let _raw = if args.tty { RawTerminal::enter() } else { None };
    let (to_provider, mut outgoing) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    if args.tty {
        spawn_resizes(to_provider.clone());
    }
    if args.stdin {
        let tx = to_provider.clone();
        tokio::spawn(async move {
            let mut input = tokio::io::stdin();
            let mut buf = vec![0u8; 16 * 1024];
            while let Ok(n @ 1..) = input.read(&mut buf).await {
                let mut frame = Vec::with_capacity(n + 1);
                frame.push(STDIN);
                frame.extend_from_slice(&buf[..n]);
                if tx.send(frame).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(to_provider);
    let sender = tokio::spawn(async move {
        while let Some(frame) = outgoing.recv().await {
            if sink.send(Message::Binary(frame.into())).await.is_err() {
                return;
            }
        }
    });

    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let outcome = loop {
        let Some(message) = incoming.next().await else {
            break Err(anyhow::anyhow!(
                "the provider closed the connection before the result"
            ));
        };
        let data = match message? {
            Message::Binary(data) => data,
            Message::Close(frame) => {
                let why = frame.map(|f| format!("{} {}", u16::from(f.code), f.reason));
                break Err(anyhow::anyhow!(
                    "the provider ended the session: {}",
                    why.unwrap_or_default()
                ));
            }
            _ => continue,
        };
        let Some((&code, body)) = data.split_first() else {
            continue;
        };
        match code {
            STDOUT => {
                stdout.write_all(body).await?;
                stdout.flush().await?;
            }
            STDERR => {
                stderr.write_all(body).await?;
                stderr.flush().await?;
            }
            RESULT => {
                let result: ShellResult = serde_json::from_slice(body)
                    .context("the provider's result is not the shell result")?;
                if !result.message.is_empty() {
                    break Err(anyhow::anyhow!("{}", result.message));
                }
                break Ok(result.exit_code);
            }
            FAILURE => break Err(anyhow::anyhow!("the provider could not run the command")),
            _ => {}
        }
    };
    sender.abort();
    outcome
}

/// The lease to run in: `--gseq`, the only one, or the one whose provider lists the service.
async fn pick_lease(
    s: &super::cli::Session,
    credentials: Credentials<'_>,
    args: &ShellArgs,
    leases: Vec<ActiveLease>,
) -> anyhow::Result<ActiveLease> {
    if leases.is_empty() {
        anyhow::bail!("deployment {} has no active lease", args.dseq);
    }
    if let Some(gseq) = args.gseq {
        return leases.into_iter().find(|l| l.gseq == gseq).ok_or_else(|| {
            anyhow::anyhow!(
                "deployment {} has no active lease in group {gseq}",
                args.dseq
            )
        });
    }
    if leases.len() == 1 {
        return Ok(leases.into_iter().next().expect("one lease"));
    }
    for lease in leases {
        let client =
            crate::gateway::client::rest_client_as(s.chain.as_ref(), &lease.provider, credentials)
                .await?;
        let url = format!(
            "https://{}/lease/{}/{}/{}/status",
            lease.gateway, args.dseq, lease.gseq, lease.oseq
        );
        let mut request = client.get(&url);
        if let Credentials::Token(token) = credentials {
            request = request.bearer_auth(token);
        }
        let status: serde_json::Value = match request.send().await {
            Ok(r) if r.status().is_success() => r.json().await.unwrap_or_default(),
            _ => continue,
        };
        if status["services"].get(&args.service).is_some() {
            return Ok(lease);
        }
    }
    anyhow::bail!(
        "no lease of deployment {} runs service {:?} (or its provider did not say); name the group with --gseq",
        args.dseq,
        args.service
    )
}

/// Percent-encodes everything but unreserved characters.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The size of this terminal now and at each change (SIGWINCH), as resize messages.
fn spawn_resizes(tx: tokio::sync::mpsc::Sender<Vec<u8>>) {
    tokio::spawn(async move {
        let mut changes =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
        loop {
            if let Ok(size) = rustix::termios::tcgetwinsize(std::io::stdout()) {
                let mut frame = vec![TERMINAL_RESIZE];
                frame.extend_from_slice(&size.ws_col.to_be_bytes());
                frame.extend_from_slice(&size.ws_row.to_be_bytes());
                if tx.send(frame).await.is_err() {
                    return;
                }
            }
            match changes.as_mut() {
                Some(changes) => {
                    if changes.recv().await.is_none() {
                        return;
                    }
                }
                None => return,
            }
        }
    });
}

/// This terminal in raw mode (keys go to the remote terminal as typed), restored on drop.
struct RawTerminal(rustix::termios::Termios);

impl RawTerminal {
    fn enter() -> Option<Self> {
        let stdin = std::io::stdin();
        if !rustix::termios::isatty(&stdin) {
            return None;
        }
        let saved = rustix::termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(Self(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            std::io::stdin(),
            rustix::termios::OptionalActions::Now,
            &self.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_escaped_so_no_one_can_add_parameters() {
        assert_eq!(query_escape("echo a&cmd1=b"), "echo%20a%26cmd1%3Db");
        assert_eq!(query_escape("ls -la ~/x.y"), "ls%20-la%20~%2Fx.y");
    }
}
