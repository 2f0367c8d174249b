//! What a tenant does with its running lease on the real node, through the provider's gateway
//! and `akash-provider tenant`: read its containers' logs and events, run commands in them; and
//! what no one else can do.

use std::time::Duration;

use chain_client::Chain;

use e2e::market::{leased_sdl, send_manifest, unique_dseq};
use e2e::real_node::{
    self, LeaseNamespaceGuard, RealNode, pod_name, real_scenario, running_pod, wait_active,
};
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

/// Lease logs over the gateway's websocket, as `provider-services lease-logs` reads them: the
/// tenant follows one service's container as it writes, reads another's whole log to its end,
/// and a stranger with a valid certificate, a bad parameter and a service with no pod are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reads_its_containers_logs_and_no_one_else_can() -> anyhow::Result<()> {
    use futures::StreamExt;
    use operator::gateway::client::open_websocket;
    use operator::gateway::logs::LogLine;
    use tokio_tungstenite::tungstenite::Message;

    let cluster = e2e::Cluster::shared().await?;
    RealNode::get(&cluster).await?;
    let s = real_scenario("reallogs", &[]).await?;
    let dseq = unique_dseq(6);
    let image = real_node::workload_image();
    let text = format!(
        r#"
version: "2.0"
services:
  web:
    image: {image}
    expose:
      - port: 8080
        as: 80
        to: [{{global: true}}]
  ticker:
    image: {image}
    args: ["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 1; done"]
    expose: []
profiles:
  compute:
    small:
      resources: {{cpu: {{units: 0.1}}, memory: {{size: 64Mi}}, storage: {{size: 64Mi}}}}
  placement:
    dc:
      attributes: {{host: akash}}
      pricing:
        small: {{denom: uact, amount: 1000}}
deployment:
  web: {{dc: {{profile: small, count: 1}}}}
  ticker: {{dc: {{profile: small, count: 1}}}}
"#
    );
    let sdl = crds::sdl::Sdl::parse(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let namespace = leased_sdl(&s, dseq, &sdl).await?;
    let _cleanup_namespace = LeaseNamespaceGuard::new(&cluster, &namespace);
    send_manifest(&s, dseq, &sdl).await?;
    wait_active(&s, dseq).await?;
    let ticker_pod = pod_name(&running_pod(&cluster, &namespace, "ticker").await?);

    let me = s.provider_address();
    let addr = s.provider.gateway_rest_addr.clone();
    let tenant = e2e::market::certificate(&s.tenant).await?;
    let logs = |query: &str| format!("/lease/{dseq}/1/1/logs{query}");

    // Following the ticker: its lines as it writes them, each named by its pod.
    let mut socket = open_websocket(
        &s.tenant,
        &me,
        &tenant,
        &addr,
        &logs("?follow=true&service=ticker&tail=2"),
    )
    .await?;
    let mut ticks = Vec::new();
    while ticks.len() < 4 {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("the stream ended after {ticks:?}"))??;
        if let Message::Text(text) = message {
            let line: LogLine = serde_json::from_str(&text)?;
            assert_eq!(line.name, ticker_pod);
            let n: u64 = line
                .message
                .strip_prefix("tick ")
                .ok_or_else(|| anyhow::anyhow!("not a tick: {line:?}"))?
                .parse()?;
            ticks.push(n);
        }
    }
    assert!(
        ticks.windows(2).all(|w| w[1] == w[0] + 1),
        "one line after another: {ticks:?}"
    );
    drop(socket);

    // Without `follow`: web's whole log, then a normal close.
    let mut socket = open_websocket(&s.tenant, &me, &tenant, &addr, &logs("?service=web")).await?;
    let mut lines = Vec::new();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await? {
            Some(Ok(Message::Text(text))) => lines.push(serde_json::from_str::<LogLine>(&text)?),
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => break None,
        }
    };
    assert!(
        lines.iter().any(|l| l.message == "serving on 8080"),
        "{lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.name.starts_with("web-")),
        "{lines:?}"
    );
    assert_eq!(close, Some(1000));

    // The same through `akash-provider tenant logs`, which finds the lease on chain (its own
    // certificate made and published under --home on the way).
    let home = tempfile::tempdir()?;
    let key = home.path().join("mnemonic");
    std::fs::write(&key, e2e::devnet::TEST_MNEMONICS[e2e::scenario::TENANT_KEY])?;
    let out = std::process::Command::new(e2e::binaries::akash_provider()?)
        .args(["tenant", "logs", &dseq.to_string(), "--service", "web"])
        .args(["--chain-id", &s.devnet.chain_id])
        .args([
            "--rpc-url",
            &s.devnet.rpc_url,
            "--grpc-url",
            &s.devnet.grpc_url,
        ])
        .args(["--poll-interval", "100ms", "--block-interval", "200ms"])
        .arg("--key-file")
        .arg(&key)
        .arg("--home")
        .arg(home.path())
        .output()?;
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let web_pod = pod_name(&running_pod(&cluster, &namespace, "web").await?);
    assert!(
        printed.contains(&format!("[{web_pod}] serving on 8080")),
        "{printed}"
    );
    let out = std::process::Command::new(e2e::binaries::akash_provider()?)
        .args(["tenant", "events", &dseq.to_string()])
        .args(["--chain-id", &s.devnet.chain_id])
        .args([
            "--rpc-url",
            &s.devnet.rpc_url,
            "--grpc-url",
            &s.devnet.grpc_url,
        ])
        .args(["--poll-interval", "100ms", "--block-interval", "200ms"])
        .arg("--key-file")
        .arg(&key)
        .arg("--home")
        .arg(home.path())
        .output()?;
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains(&format!("[Pod/{web_pod}] Normal Started:")),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // gRPC `LeaseRPC`: the end of web's log in one answer, and ticker's lines as a stream.
    {
        use chain_client::akash::market::v1::LeaseId;
        use chain_client::akash::provider::lease::v1::ServiceLogsRequest;
        use chain_client::akash::provider::lease::v1::lease_rpc_client::LeaseRpcClient;
        let grpc_addr: std::net::SocketAddr = s.provider.gateway_grpc_addr.parse()?;
        let mut grpc =
            LeaseRpcClient::new(e2e::attack::grpc_channel(grpc_addr, Some(&tenant)).await?);
        let request = |service: &str| ServiceLogsRequest {
            lease_id: Some(LeaseId {
                owner: s.tenant.address().to_owned(),
                dseq,
                gseq: 1,
                oseq: 1,
                provider: me.clone(),
                bseq: 0,
            }),
            services: vec![service.to_owned()],
        };
        let answer = grpc.service_logs(request("web")).await?.into_inner();
        assert_eq!(answer.services.len(), 1, "{answer:?}");
        assert!(answer.services[0].name.starts_with("web-"));
        assert!(String::from_utf8_lossy(&answer.services[0].logs).contains("serving on 8080\n"));
        let mut stream = grpc
            .stream_service_logs(request("ticker"))
            .await?
            .into_inner();
        let mut streamed = Vec::new();
        while streamed.len() < 3 {
            let message = tokio::time::timeout(Duration::from_secs(30), stream.message())
                .await??
                .ok_or_else(|| anyhow::anyhow!("the stream ended after {streamed:?}"))?;
            for service in message.services {
                assert_eq!(service.name, ticker_pod);
                streamed.push(String::from_utf8_lossy(&service.logs).into_owned());
            }
        }
        assert!(
            streamed
                .iter()
                .all(|l| l.starts_with("tick ") && l.ends_with('\n')),
            "{streamed:?}"
        );
        // A bad service name is refused by name, as the REST parameter is.
        let refused = grpc.service_logs(request("web) or (x")).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }

    // The lease namespace's Kubernetes events (`lease-events`): the kubelet's and the
    // scheduler's about the lease's pods, then a normal close; with `follow`, the same first.
    let mut socket = open_websocket(
        &s.tenant,
        &me,
        &tenant,
        &addr,
        &format!("/lease/{dseq}/1/1/kubeevents"),
    )
    .await?;
    let mut events = Vec::new();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(30), socket.next()).await? {
            Some(Ok(Message::Text(text))) => {
                events.push(serde_json::from_str::<operator::gateway::events::LeaseEvent>(&text)?)
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => break None,
        }
    };
    assert_eq!(close, Some(1000));
    assert!(
        events.iter().any(|e| e.object.kind == "Pod"
            && e.object.name == ticker_pod
            && e.object.namespace == namespace
            && e.reason == "Started"),
        "{events:?}"
    );
    let mut socket = open_websocket(
        &s.tenant,
        &me,
        &tenant,
        &addr,
        &format!("/lease/{dseq}/1/1/kubeevents?follow=true"),
    )
    .await?;
    match tokio::time::timeout(Duration::from_secs(30), socket.next()).await? {
        Some(Ok(Message::Text(text))) => {
            serde_json::from_str::<operator::gateway::events::LeaseEvent>(&text)?;
        }
        other => anyhow::bail!("expected an event, got {other:?}"),
    }
    drop(socket);

    // A service with no pod: the Go provider's close code 4000.
    let mut socket =
        open_websocket(&s.tenant, &me, &tenant, &addr, &logs("?service=nothing")).await?;
    match tokio::time::timeout(Duration::from_secs(30), socket.next()).await? {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4000);
            assert_eq!(frame.reason.as_str(), "no running pods");
        }
        other => anyhow::bail!("expected close 4000, got {other:?}"),
    }

    // Refused before any upgrade: a bad parameter (400), and another account's valid
    // certificate, which learns nothing about the lease.
    let Err(e) = open_websocket(&s.tenant, &me, &tenant, &addr, &logs("?tail=-2")).await else {
        anyhow::bail!("tail=-2 was not refused");
    };
    assert!(e.to_string().starts_with("400"), "{e}");
    let stranger_chain = e2e::tenant::client(&s.devnet, e2e::devnet::TEST_MNEMONICS[0])?;
    let stranger = e2e::market::certificate(&stranger_chain).await?;
    let Err(e) = open_websocket(
        &stranger_chain,
        &me,
        &stranger,
        &addr,
        &logs("?follow=true"),
    )
    .await
    else {
        anyhow::bail!("a stranger was let in");
    };
    let status: u16 = e.to_string()[..3].parse()?;
    assert!(matches!(status, 403 | 404), "{e}");
    Ok(())
}

/// `akash-provider tenant shell` with the tenant's key and chain, then `args`.
fn tenant_shell(
    s: &e2e::scenario::Scenario,
    home: &std::path::Path,
    args: &[&str],
) -> anyhow::Result<std::process::Output> {
    let key = home.join("mnemonic");
    std::fs::write(&key, e2e::devnet::TEST_MNEMONICS[e2e::scenario::TENANT_KEY])?;
    Ok(std::process::Command::new(e2e::binaries::akash_provider()?)
        .args(["tenant", "shell"])
        .args(["--chain-id", &s.devnet.chain_id])
        .args([
            "--rpc-url",
            &s.devnet.rpc_url,
            "--grpc-url",
            &s.devnet.grpc_url,
        ])
        .args(["--poll-interval", "100ms", "--block-interval", "200ms"])
        .arg("--key-file")
        .arg(&key)
        .arg("--home")
        .arg(home)
        .args(args)
        .output()?)
}

/// The shell's binary messages until the result: (output, result code, result body).
async fn shell_output<S>(socket: &mut S) -> anyhow::Result<(Vec<u8>, u8, Vec<u8>)>
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    use operator::gateway::shell::{FAILURE, RESULT, STDERR, STDOUT};
    let mut output = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("ended before the result: {output:?}"))??;
        if let Message::Binary(bytes) = message
            && let Some((&code, body)) = bytes.split_first()
        {
            match code {
                STDOUT | STDERR => output.extend_from_slice(body),
                RESULT | FAILURE => return Ok((output, code, body.to_vec())),
                _ => anyhow::bail!("unknown code {code}"),
            }
        }
    }
}

/// `lease-shell` on the real node: a command's output and exit code through the CLI and the
/// websocket, a terminal that takes the tenant's size, a stranger refused, and a shell cut
/// when the lease closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_runs_commands_in_its_container_and_no_one_else_can() -> anyhow::Result<()> {
    use futures::{SinkExt, StreamExt};
    use operator::gateway::client::open_websocket;
    use operator::gateway::shell::{RESULT, STDIN, ShellResult, TERMINAL_RESIZE};
    use tokio_tungstenite::tungstenite::Message;

    let cluster = e2e::Cluster::shared().await?;
    RealNode::get(&cluster).await?;
    let s = real_scenario("realshell", &[]).await?;
    let dseq = unique_dseq(7);
    let sdl = real_node::web_and_api_sdl("shell", &format!("shell-{dseq}.tenant.test"))?;
    let namespace = leased_sdl(&s, dseq, &sdl).await?;
    let _cleanup_namespace = LeaseNamespaceGuard::new(&cluster, &namespace);
    send_manifest(&s, dseq, &sdl).await?;
    wait_active(&s, dseq).await?;
    let web_pod = pod_name(&running_pod(&cluster, &namespace, "web").await?);

    // The CLI: output on stdout, the command's exit code as its own.
    let home = tempfile::tempdir()?;
    let dseq_text = dseq.to_string();
    let out = tenant_shell(
        &s,
        home.path(),
        &[
            &dseq_text,
            "web",
            "--",
            "sh",
            "-c",
            "echo I am $(hostname); exit 4",
        ],
    )?;
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(printed, format!("I am {web_pod}\n"));
    // With a token (`--jwt`) instead of a certificate: a fresh home, so none is made.
    let token_home = tempfile::tempdir()?;
    let out = tenant_shell(
        &s,
        token_home.path(),
        &["--jwt", &dseq_text, "web", "--", "echo", "by token"],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "by token\n");
    assert!(
        !token_home.path().join(s.tenant.address()).exists(),
        "no certificate was made for --jwt"
    );
    // A replica that does not exist: the provider's reason, and a failure.
    let out = tenant_shell(
        &s,
        home.path(),
        &["--replica-index", "5", &dseq_text, "web", "true"],
    )?;
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("pod index out of range"), "{said}");

    // A terminal over the websocket: the tenant's size reaches it.
    let me = s.provider_address();
    let addr = s.provider.gateway_rest_addr.clone();
    let tenant = e2e::market::certificate(&s.tenant).await?;
    let shell = |service: &str, tty: u8, stdin: u8, command: &str| {
        format!(
            "/lease/{dseq}/1/1/shell?service={service}&podIndex=0&tty={tty}&stdin={stdin}&cmd0=sh&cmd1=-c&cmd2={command}"
        )
    };
    let mut socket = open_websocket(
        &s.tenant,
        &me,
        &tenant,
        &addr,
        &shell(
            "web",
            1,
            1,
            "while%20read%20x%3B%20do%20stty%20size%3B%20done",
        ),
    )
    .await?;
    let mut resize = vec![TERMINAL_RESIZE];
    resize.extend_from_slice(&100u16.to_be_bytes());
    resize.extend_from_slice(&33u16.to_be_bytes());
    socket.send(Message::Binary(resize.into())).await?;
    // Each line asks for the size again, until the resize has been applied.
    let mut seen = Vec::new();
    let mut applied = false;
    for _ in 0..20 {
        socket
            .send(Message::Binary(vec![STDIN, b'\n'].into()))
            .await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, socket.next()).await {
            if let Message::Binary(bytes) = message? {
                seen.extend_from_slice(&bytes[1..]);
            }
            if String::from_utf8_lossy(&seen).contains("33 100") {
                applied = true;
                break;
            }
        }
        if applied {
            break;
        }
    }
    assert!(
        applied,
        "no `33 100` in {:?}",
        String::from_utf8_lossy(&seen)
    );
    // End of input (Ctrl-D on the terminal) ends the loop, and the shell with 0.
    socket.send(Message::Binary(vec![STDIN, 4].into())).await?;
    let (_, code, body) = shell_output(&mut socket).await?;
    assert_eq!(code, RESULT);
    assert_eq!(serde_json::from_slice::<ShellResult>(&body)?.exit_code, 0);

    // Another account's valid certificate runs nothing and learns nothing.
    let stranger_chain = e2e::tenant::client(&s.devnet, e2e::devnet::TEST_MNEMONICS[0])?;
    let stranger = e2e::market::certificate(&stranger_chain).await?;
    let Err(e) = open_websocket(
        &stranger_chain,
        &me,
        &stranger,
        &addr,
        &shell("web", 0, 0, "touch%20/tmp/stranger"),
    )
    .await
    else {
        anyhow::bail!("a stranger was let in");
    };
    let status: u16 = e.to_string()[..3].parse()?;
    assert!(matches!(status, 403 | 404), "{e}");
    let node = RealNode::get(&cluster).await?;
    let probe = node.exec(&namespace, &web_pod, &["ls", "/tmp/stranger"])?;
    assert!(!probe.status.success(), "the stranger's command ran");

    // A long command is cut when the lease closes (the tenant closes its deployment).
    let mut socket = open_websocket(
        &s.tenant,
        &me,
        &tenant,
        &addr,
        &shell("web", 0, 0, "sleep%20600"),
    )
    .await?;
    e2e::market::close_deployment(&s.tenant, dseq).await?;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(90), socket.next()).await? {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => anyhow::bail!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(close, Some(4001), "the lease closed");
    Ok(())
}
