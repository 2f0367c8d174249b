//! `akash-provider overlay` configuration: every setting is a flag with an environment variable.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Args;

/// Settings of `akash-provider overlay`, the sidecar that runs the cross-provider tunnels.
#[derive(Debug, Clone, Args)]
pub struct OverlayArgs {
    #[command(flatten)]
    pub chain: crate::chain_args::ChainArgs,

    #[command(flatten)]
    pub objects: crate::provider::config::ProviderObjects,

    /// Where other providers' overlays connect (publish it as the provider attribute
    /// `overlay-endpoint`, `host:port`, when it is not the host URI's host on port 8445).
    #[arg(long, env = "AKASH_OVERLAY_LISTEN", default_value = "0.0.0.0:8445")]
    pub listen: SocketAddr,
    /// This pod's IP: the calling side's Services point their endpoints here.
    #[arg(long, env = "POD_IP")]
    pub pod_ip: IpAddr,
    /// The ports the calling side's local listeners bind in, `START-END` on `--pod-ip`: lease
    /// pods may reach the provider's pods on these ports only (give `run --overlay-ports` the
    /// same range). One port per tunnel this provider calls through.
    #[arg(long, env = "AKASH_OVERLAY_LOCAL_PORTS", default_value = crate::overlay::local_ports::DEFAULT_LOCAL_PORTS)]
    pub local_ports: crate::overlay::local_ports::PortRange,
    /// Where the serving side connects a tunnel: `{service}`, `{namespace}` (the lease's) and
    /// `{port}` are filled in.
    #[arg(
        long,
        env = "AKASH_OVERLAY_TARGET",
        default_value = "{service}.{namespace}.svc.cluster.local:{port}"
    )]
    pub target: String,
    /// Sources allowed to use the calling side's Services besides the lease's own pods (such as
    /// a node address when kube-proxy masquerades), as IP addresses; repeatable.
    #[arg(
        long = "allow-source",
        env = "AKASH_OVERLAY_ALLOW_SOURCES",
        value_delimiter = ','
    )]
    pub allow_sources: Vec<IpAddr>,
    /// The overlay port of a provider that publishes no `overlay-endpoint` attribute.
    #[arg(long, env = "AKASH_OVERLAY_DEFAULT_PORT", default_value_t = crate::overlay::peers::DEFAULT_PORT)]
    pub default_port: u16,
    /// How often leases, the chain and the tunnels are looked at.
    #[arg(long, env = "AKASH_OVERLAY_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Lifetime of the tunnel certificates (renewed at half of it).
    #[arg(long, env = "AKASH_OVERLAY_CERT_LIFETIME", default_value = "1h", value_parser = humantime::parse_duration)]
    pub cert_lifetime: Duration,
    /// Carry the pairs over WireGuard where the peer's sidecar runs it too (the keys are
    /// exchanged over the mTLS channel; pairs whose peer does not stay on mTLS).
    #[arg(long, env = "AKASH_OVERLAY_WIREGUARD", default_value_t = false, action = clap::ArgAction::Set)]
    pub wireguard: bool,
    /// The WireGuard interface (one per sidecar; distinct per sidecar on one host).
    #[arg(
        long,
        env = "AKASH_OVERLAY_WIREGUARD_INTERFACE",
        default_value = "akash-wg0"
    )]
    pub wireguard_interface: String,
    /// Kernel WireGuard, userspace (`wireguard-go`, or `$WG_USERSPACE_IMPLEMENTATION`), or the
    /// kernel's where available.
    #[arg(
        long,
        env = "AKASH_OVERLAY_WIREGUARD_BACKEND",
        value_enum,
        default_value = "auto"
    )]
    pub wireguard_backend: crate::overlay::wireguard::BackendChoice,
    /// WireGuard's UDP port.
    #[arg(long, env = "AKASH_OVERLAY_WIREGUARD_PORT", default_value_t = 51820)]
    pub wireguard_port: u16,
    /// Where peers send WireGuard packets, `ip:port` (default: the pod IP and the port).
    #[arg(long, env = "AKASH_OVERLAY_WIREGUARD_ENDPOINT")]
    pub wireguard_endpoint: Option<SocketAddr>,
    /// Address of `/metrics`, `/healthz` and `/readyz`.
    #[arg(
        long,
        env = "AKASH_OVERLAY_METRICS_ADDR",
        default_value = "0.0.0.0:8081"
    )]
    pub metrics_addr: SocketAddr,
}

/// The serving side's target for `service` of the lease namespace `namespace` on `port`.
pub(crate) fn target_of(template: &str, service: &str, namespace: &str, port: u16) -> String {
    template
        .replace("{service}", service)
        .replace("{namespace}", namespace)
        .replace("{port}", &port.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_template_fills_service_namespace_and_port() {
        assert_eq!(
            target_of(
                "{service}.{namespace}.svc.cluster.local:{port}",
                "db",
                "abc",
                5432
            ),
            "db.abc.svc.cluster.local:5432"
        );
        assert_eq!(
            target_of("127.0.0.1:{port}", "db", "abc", 80),
            "127.0.0.1:80"
        );
    }
}
