//! `tenant logs` and `tenant events`: what each active lease of a deployment streams from its
//! provider's gateway (a websocket over mutual TLS), printed one line per message until every
//! stream ends (or, following, until interrupted).

use anyhow::Context as _;
use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use super::cli::{Session, session_with};
use super::config::{EventsArgs, LogsArgs};
use super::identity::{self, FileCertStore};
use crate::gateway::client::{Credentials, TenantIdentity};
use crate::gateway::events::LeaseEvent;
use crate::gateway::logs::LogLine;

/// `tenant logs DSEQ`: `[pod] line`.
pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    let mut query = vec![format!("follow={}", args.follow)];
    if !args.services.is_empty() {
        query.push(format!("service={}", args.services.join(",")));
    }
    if let Some(tail) = args.tail {
        query.push(format!("tail={tail}"));
    }
    let s = session_with(&args.common, args.jwt).await?;
    print_streams(
        &s,
        args.dseq,
        "logs",
        &query.join("&"),
        |text| match serde_json::from_str::<LogLine>(text) {
            Ok(line) => format!("[{}] {}", line.name, line.message),
            Err(_) => text.to_owned(),
        },
    )
    .await
}

/// `tenant events DSEQ`: `[Kind/name] Type Reason: note`.
pub async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let s = session_with(&args.common, args.jwt).await?;
    let query = format!("follow={}", args.follow);
    print_streams(
        &s,
        args.dseq,
        "kubeevents",
        &query,
        |text| match serde_json::from_str::<LeaseEvent>(text) {
            Ok(e) => format!(
                "[{}/{}] {} {}: {}",
                e.object.kind, e.object.name, e.type_, e.reason, e.note
            ),
            Err(_) => text.to_owned(),
        },
    )
    .await
}

/// Opens `/lease/{dseq}/{gseq}/{oseq}/{endpoint}?{query}` at the provider of each active lease
/// of `dseq` (found on chain) and prints every text message through `show`.
async fn print_streams(
    s: &Session,
    dseq: u64,
    endpoint: &str,
    query: &str,
    show: impl Fn(&str) -> String,
) -> anyhow::Result<()> {
    let owner = s.chain.address().to_owned();
    let identity = identity::ensure(s.chain.as_ref(), &FileCertStore { dir: s.dir.clone() })
        .await
        .context("the tenant certificate")?;
    let mut streams = Vec::new();
    for lease in active_leases(s, dseq).await? {
        let path = format!(
            "/lease/{dseq}/{}/{}/{endpoint}?{query}",
            lease.gseq, lease.oseq
        );
        let socket = crate::gateway::client::open_websocket(
            s.chain.as_ref(),
            &lease.provider,
            &identity,
            &lease.gateway,
            &path,
        )
        .await
        .with_context(|| format!("{endpoint} of group {} at {}", lease.gseq, lease.provider))?;
        streams.push(socket);
    }
    if streams.is_empty() {
        anyhow::bail!("{owner} has no active lease on deployment {dseq}");
    }
    // Each stream ends at the provider's Close: what follows is the connection going away.
    let streams = streams.into_iter().map(|socket| {
        socket
            .scan(false, |closed, message| {
                let next = (!*closed).then_some(message);
                *closed |= matches!(next, Some(Ok(Message::Close(_))));
                futures::future::ready(next)
            })
            .boxed()
    });
    let mut all = futures::stream::select_all(streams);
    while let Some(message) = all.next().await {
        match message? {
            Message::Text(text) => println!("{}", show(&text)),
            Message::Close(Some(frame)) if u16::from(frame.code) != 1000 => {
                eprintln!(
                    "closed by the provider: {} {}",
                    u16::from(frame.code),
                    frame.reason
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// An active lease of the tenant's deployment, and where its provider's gateway is.
pub(super) struct ActiveLease {
    pub(crate) gseq: u32,
    pub(crate) oseq: u32,
    pub(crate) provider: String,
    /// `host:port` of the provider's REST gateway.
    pub(crate) gateway: String,
}

/// The active leases of deployment `dseq` of the session's account, from the chain.
pub(super) async fn active_leases(s: &Session, dseq: u64) -> anyhow::Result<Vec<ActiveLease>> {
    let owner = s.chain.address().to_owned();
    let leases = chain_client::chain::collect_all(100, |page| {
        s.chain.leases(
            chain_client::akash::market::v1::LeaseFilters {
                owner: owner.clone(),
                dseq,
                state: "active".into(),
                ..Default::default()
            },
            page,
        )
    })
    .await?;
    let mut active = Vec::new();
    for id in leases
        .iter()
        .filter_map(|r| r.lease.as_ref().and_then(|l| l.id.as_ref()))
    {
        let uri = s
            .chain
            .provider(&id.provider)
            .await?
            .map(|p| p.host_uri)
            .unwrap_or_default();
        active.push(ActiveLease {
            gseq: id.gseq,
            oseq: id.oseq,
            provider: id.provider.clone(),
            gateway: crate::gateway::client::gateway_addr(&uri).map_err(anyhow::Error::msg)?,
        });
    }
    Ok(active)
}

/// The account's certificate (made and published on chain if it has none), unless the session
/// authenticates with a token.
pub(super) async fn identity_unless_token(s: &Session) -> anyhow::Result<Option<TenantIdentity>> {
    if s.token.is_some() {
        return Ok(None);
    }
    identity::ensure(s.chain.as_ref(), &FileCertStore { dir: s.dir.clone() })
        .await
        .context("the tenant certificate")
        .map(Some)
}

/// The session's token, else `identity`.
pub(super) fn credentials<'a>(
    s: &'a Session,
    identity: Option<&'a TenantIdentity>,
) -> Credentials<'a> {
    match (&s.token, identity) {
        (Some(token), _) => Credentials::Token(token),
        (None, Some(identity)) => Credentials::Certificate(identity),
        // identity_unless_token returns one or the other.
        (None, None) => Credentials::Token(""),
    }
}
