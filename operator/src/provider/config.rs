//! `akash-provider run` configuration: every setting is a flag with an environment variable.
//! Secrets are never flags: the key is a file (a mounted Kubernetes Secret).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Where the provider keeps its own objects: `run` and `overlay` take the same two flags.
#[derive(Debug, Clone, Args)]
pub struct ProviderObjects {
    /// Namespace of the provider's own objects (`Bid`, `Lease`, `Tunnel`, leader-election lease,
    /// Secrets).
    #[arg(long, env = "AKASH_NAMESPACE", default_value = "akash-provider")]
    pub namespace: String,
    /// Secret (in `--namespace`) holding the provider's TLS certificate and key. `run` creates it
    /// with a new certificate, which it then publishes on chain, when it does not exist; the
    /// overlay signs its tunnel certificates with it (the overlay holds no wallet key and signs
    /// no transaction).
    #[arg(
        long,
        env = "AKASH_CERTIFICATE_SECRET",
        default_value = "akash-provider-certificate"
    )]
    pub certificate_secret: String,
}

/// Settings of `akash-provider run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// File holding the provider's BIP-39 mnemonic (12 or 24 words), e.g. a mounted Secret.
    #[arg(long, env = "AKASH_KEY_FILE")]
    pub(crate) key_file: PathBuf,

    #[command(flatten)]
    pub(crate) chain: crate::chain_args::ChainArgs,

    #[command(flatten)]
    pub(crate) objects: ProviderObjects,

    /// Namespace of the Secrets that keep tenants' registry credentials out of `Lease`
    /// resources (default: `--namespace`). A namespace of their own lets the provider read
    /// Secrets there without reaching any other Secret.
    #[arg(long, env = "AKASH_MANIFEST_SECRETS_NAMESPACE")]
    pub(crate) manifest_secrets_namespace: Option<String>,
    /// Name of the cluster-scoped `Provider` resource that describes this provider.
    #[arg(long, env = "AKASH_PROVIDER_RESOURCE", default_value = "provider")]
    pub(crate) provider_resource: String,

    /// Deposit put up with every bid (refunded when the bid closes).
    #[arg(long, env = "AKASH_BID_DEPOSIT", default_value = "500000uact")]
    pub(crate) bid_deposit: String,
    /// An open bid that has not become a lease within this time is closed.
    #[arg(long, env = "AKASH_BID_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) bid_timeout: Duration,
    /// At most this many bids in one transaction.
    #[arg(long, env = "AKASH_BID_BATCH_SIZE", default_value_t = 100)]
    pub(crate) bid_batch_size: usize,
    /// Only these tenants may lease (repeat or comma-separate; empty: everyone).
    #[arg(
        long = "allow-owner",
        env = "AKASH_ALLOW_OWNERS",
        value_delimiter = ','
    )]
    pub(crate) allow_owners: Vec<String>,
    /// Never bid for these tenants (wins over the allow list).
    #[arg(long = "deny-owner", env = "AKASH_DENY_OWNERS", value_delimiter = ',')]
    pub(crate) deny_owners: Vec<String>,
    /// Pricing script processes running at once.
    #[arg(long, env = "AKASH_PRICING_SCRIPT_CONCURRENCY", default_value_t = 32)]
    pub(crate) pricing_script_concurrency: usize,

    /// Persistent storage offered per class, as CLASS=SIZE (e.g. `beta2=2Ti`); repeatable.
    #[arg(long = "storage-class", env = "AKASH_STORAGE_CLASSES", value_delimiter = ',', value_parser = parse_storage_class)]
    pub(crate) storage_classes: Vec<(String, u64)>,
    /// Only nodes with every one of these labels are offered and run lease workloads, as
    /// KEY=VALUE (e.g. `akash.network=true`, as the Go provider requires); repeatable. None: every
    /// schedulable node.
    #[arg(long = "node-selector", env = "AKASH_NODE_SELECTOR", value_delimiter = ',', value_parser = parse_node_label)]
    pub(crate) node_selector: Vec<(String, String)>,
    /// Addresses lease pods may not reach, as IPv4 CIDRs (e.g. a public range of the provider's
    /// own); repeatable. Private, link-local, carrier-grade NAT and reserved ranges are always
    /// denied, and the nodes' and the API server's addresses are added at start.
    #[arg(long = "deny-egress-cidr", env = "AKASH_DENY_EGRESS_CIDRS", value_delimiter = ',', value_parser = parse_ipv4_cidr)]
    pub(crate) deny_egress_cidrs: Vec<String>,
    /// Node ports offered to leases (global ports other than 80).
    #[arg(long, env = "AKASH_NODE_PORTS", default_value_t = 1000)]
    pub(crate) node_ports: u32,
    /// The MetalLB `IPAddressPool` that leased IPs (`kind: ip` endpoints) come from; its
    /// addresses are the IPs offered. None: no IP leases, orders asking for one get no bid.
    #[arg(long, env = "AKASH_IP_POOL")]
    pub(crate) ip_pool: Option<String>,
    /// The namespace of `--ip-pool` (where MetalLB runs).
    #[arg(
        long,
        env = "AKASH_IP_POOL_NAMESPACE",
        default_value = "metallb-system"
    )]
    pub(crate) ip_pool_namespace: String,
    /// CPU offered beyond allocatable, in percent.
    #[arg(long, env = "AKASH_OVERCOMMIT_CPU_PCT", default_value_t = 0)]
    pub(crate) overcommit_cpu_pct: u32,
    /// Memory offered beyond allocatable, in percent.
    #[arg(long, env = "AKASH_OVERCOMMIT_MEMORY_PCT", default_value_t = 0)]
    pub(crate) overcommit_memory_pct: u32,
    /// Ephemeral storage offered beyond allocatable, in percent.
    #[arg(long, env = "AKASH_OVERCOMMIT_STORAGE_PCT", default_value_t = 0)]
    pub(crate) overcommit_storage_pct: u32,

    /// How often each lease is withdrawn from (`MsgWithdrawLease`, the lease confirmation).
    #[arg(long, env = "AKASH_WITHDRAWAL_PERIOD", default_value = "24h", value_parser = humantime::parse_duration)]
    pub(crate) withdrawal_period: Duration,
    /// A lease whose manifest has not arrived within this time is closed (`manifest_timeout`).
    #[arg(long, env = "AKASH_MANIFEST_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub(crate) manifest_timeout: Duration,
    /// A lease whose services stay not ready this long is closed (`unstable`).
    #[arg(long, env = "AKASH_UNSTABLE_AFTER", default_value = "10m", value_parser = humantime::parse_duration)]
    pub(crate) unstable_after: Duration,
    /// How often the lease keeper looks at the leases.
    #[arg(long, env = "AKASH_KEEPER_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub(crate) keeper_interval: Duration,

    /// Where the gateway serves REST (manifests, lease status) over TLS.
    #[arg(long, env = "AKASH_GATEWAY_REST_ADDR", default_value = "0.0.0.0:8443")]
    pub(crate) gateway_rest_addr: SocketAddr,
    /// Where the gateway serves gRPC (`ProviderRPC`, `LeaseRPC`) over TLS.
    #[arg(long, env = "AKASH_GATEWAY_GRPC_ADDR", default_value = "0.0.0.0:8444")]
    pub(crate) gateway_grpc_addr: SocketAddr,
    /// The largest manifest (request body or gRPC message) the gateway accepts, in bytes.
    #[arg(long, env = "AKASH_MAX_MANIFEST_BYTES", default_value_t = 4 << 20)]
    pub(crate) max_manifest_bytes: usize,
    /// At most this many peers (other providers of a deployment) are served one deployment's
    /// manifest at once; more are told to ask another provider (429).
    #[arg(long, env = "AKASH_PEER_SERVE_LIMIT", default_value_t = crate::gateway::peer::DEFAULT_SERVE_LIMIT)]
    pub(crate) peer_serve_limit: usize,
    /// How often leases without a manifest (or with an older version than the chain's) are
    /// looked at, to fetch it from the deployment's other providers.
    #[arg(long, env = "AKASH_PEER_FETCH_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub(crate) peer_fetch_interval: Duration,
    /// Fetch manifests from the deployment's other providers (`false`: only tenants send them).
    #[arg(long, env = "AKASH_PEER_FETCH", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) peer_fetch: bool,
    #[command(flatten)]
    pub(crate) gateway_limits: crate::gateway::GatewayLimits,

    /// Domain of the automatic ingress hosts (`<hash>.<domain>`).
    #[arg(
        long,
        env = "AKASH_INGRESS_DOMAIN",
        default_value = "ingress.localhost"
    )]
    pub(crate) ingress_domain: String,
    /// Hosts no lease may serve (repeat or comma-separate): a name, or `*.example.com` for every
    /// host under example.com. A manifest naming one is refused (409). Hosts under
    /// `--ingress-domain` other than a lease's own automatic hosts are refused without this.
    #[arg(long = "blocked-hostnames", env = "AKASH_BLOCKED_HOSTNAMES", value_delimiter = ',', value_parser = parse_blocked_host)]
    pub(crate) blocked_hostnames: Vec<crate::gateway::hostnames::BlockedHost>,
    /// Ingress class of lease Ingresses.
    #[arg(
        long,
        env = "AKASH_INGRESS_CLASS",
        default_value = "akash-ingress-class"
    )]
    pub(crate) ingress_class: String,
    /// Namespace of the ingress controller (its pods may reach lease pods).
    #[arg(long, env = "AKASH_INGRESS_NAMESPACE", default_value = "ingress-nginx")]
    pub(crate) ingress_namespace: String,
    /// The cluster's public host name, given to workloads as AKASH_CLUSTER_PUBLIC_HOSTNAME.
    #[arg(
        long,
        env = "AKASH_CLUSTER_PUBLIC_HOSTNAME",
        default_value = "localhost"
    )]
    pub(crate) cluster_public_hostname: String,
    /// RuntimeClass of lease pods (`gvisor` in production; empty: the cluster's default).
    #[arg(long, env = "AKASH_RUNTIME_CLASS", default_value = "")]
    pub(crate) runtime_class: String,
    /// The overlay sidecar runs beside this provider (`akash-provider overlay`): lease pods may
    /// connect to this provider's namespace, where it serves the Services of services that
    /// other providers run.
    #[arg(long, env = "AKASH_OVERLAY", default_value_t = false, action = clap::ArgAction::Set)]
    pub(crate) overlay: bool,
    /// With `--overlay`: the ports of the sidecar's local listeners (`overlay --local-ports`),
    /// `START-END`. Lease pods may reach this provider's pods on these ports only.
    #[arg(long, env = "AKASH_OVERLAY_PORTS", default_value = crate::overlay::local_ports::DEFAULT_LOCAL_PORTS)]
    pub(crate) overlay_ports: crate::overlay::local_ports::PortRange,
    /// NetworkPolicies that deny what a manifest does not allow.
    #[arg(long, env = "AKASH_NETWORK_POLICIES", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) network_policies: bool,

    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "AKASH_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub(crate) metrics_addr: SocketAddr,
    /// Name of the `coordination.k8s.io` Lease that elects the one active replica.
    #[arg(
        long,
        env = "AKASH_LEADER_LEASE",
        default_value = "akash-provider-leader"
    )]
    pub(crate) leader_lease: String,
    /// This replica's name in leader election (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub(crate) identity: Option<String>,
    /// How long a leader holds the election lease without renewing it.
    #[arg(long, env = "AKASH_LEADER_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub(crate) leader_lease_duration: Duration,
}

fn parse_blocked_host(text: &str) -> Result<crate::gateway::hostnames::BlockedHost, String> {
    text.parse()
}

fn parse_storage_class(text: &str) -> Result<(String, u64), String> {
    let (class, size) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected CLASS=SIZE, such as beta2=2Ti"))?;
    let class = class.trim();
    if class.is_empty() {
        return Err(format!("{text:?}: the storage class name is empty"));
    }
    let bytes = crds::sdl::units::size_bytes(size.trim())
        .filter(|b| b.is_finite() && *b >= 0.0 && *b < u64::MAX as f64)
        .ok_or_else(|| format!("{text:?}: {size:?} is not a size such as 500Gi or 2Ti"))?;
    Ok((class.to_owned(), bytes as u64))
}

/// An IPv4 CIDR such as `203.0.113.0/24` (a bare address is a /32), in canonical form.
fn parse_ipv4_cidr(text: &str) -> Result<String, String> {
    let (addr, prefix) = text.trim().split_once('/').unwrap_or((text.trim(), "32"));
    let addr: std::net::Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{text:?}: {addr:?} is not an IPv4 address"))?;
    let prefix: u8 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= 32)
        .ok_or_else(|| format!("{text:?}: the prefix must be 0 to 32"))?;
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    let network = std::net::Ipv4Addr::from(u32::from(addr) & mask);
    Ok(format!("{network}/{prefix}"))
}

/// `KEY=VALUE` of `--node-selector`: a label key (optionally `prefix/`) and a label value.
fn parse_node_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected KEY=VALUE, such as akash.network=true"))?;
    let (key, value) = (key.trim(), value.trim());
    let name = key.rsplit('/').next().unwrap_or(key);
    let label_chars = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if name.is_empty() || name.len() > 63 || !label_chars(name) || key.len() > 253 + 1 + 63 {
        return Err(format!("{text:?}: {key:?} is not a label key"));
    }
    if value.len() > 63 || !label_chars(value) {
        return Err(format!("{text:?}: {value:?} is not a label value"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::hostnames::BlockedHost;
    use clap::Parser;

    #[derive(Parser)]
    struct Run {
        #[command(flatten)]
        args: RunArgs,
    }

    #[test]
    fn blocked_hostnames_take_names_and_wildcards_from_the_flag() {
        let base = ["run", "--key-file", "/k", "--chain-id", "c"];
        let run = Run::try_parse_from(base).unwrap();
        assert!(run.args.blocked_hostnames.is_empty(), "none by default");
        let run = Run::try_parse_from(base.into_iter().chain([
            "--blocked-hostnames",
            "Provider.Example.com,*.internal.example",
            "--blocked-hostnames",
            "admin.example.com",
        ]))
        .unwrap();
        assert_eq!(
            run.args.blocked_hostnames,
            [
                BlockedHost::Exact("provider.example.com".into()),
                BlockedHost::Under("internal.example".into()),
                BlockedHost::Exact("admin.example.com".into()),
            ]
        );
        let err = Run::try_parse_from(base.into_iter().chain(["--blocked-hostnames", "*"]))
            .err()
            .expect("refused");
        assert!(err.to_string().contains("\"*\""), "{err}");
    }

    #[test]
    fn deny_egress_cidrs_are_ipv4_networks() {
        assert_eq!(parse_ipv4_cidr("203.0.113.7").unwrap(), "203.0.113.7/32");
        assert_eq!(parse_ipv4_cidr("203.0.113.7/24").unwrap(), "203.0.113.0/24");
        assert_eq!(parse_ipv4_cidr("0.0.0.0/0").unwrap(), "0.0.0.0/0");
        assert!(parse_ipv4_cidr("2001:db8::1").unwrap_err().contains("IPv4"));
        assert!(
            parse_ipv4_cidr("10.0.0.0/33")
                .unwrap_err()
                .contains("prefix")
        );
    }

    #[test]
    fn node_selector_takes_label_equals_value() {
        assert_eq!(
            parse_node_label("akash.network=true").unwrap(),
            ("akash.network".to_owned(), "true".to_owned())
        );
        assert_eq!(parse_node_label("type=").unwrap().1, "");
        assert!(parse_node_label("type").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_node_label("=x").unwrap_err().contains("label key"));
        assert!(
            parse_node_label("a=b c")
                .unwrap_err()
                .contains("label value")
        );
    }

    #[test]
    fn storage_classes_take_class_equals_size() {
        assert_eq!(
            parse_storage_class("beta2=2Ti").unwrap(),
            ("beta2".to_owned(), 2u64 << 40)
        );
        assert!(
            parse_storage_class("beta2")
                .unwrap_err()
                .contains("CLASS=SIZE")
        );
        assert!(
            parse_storage_class("beta2=lots")
                .unwrap_err()
                .contains("lots")
        );
        assert!(parse_storage_class("=1Gi").unwrap_err().contains("empty"));
    }
}
