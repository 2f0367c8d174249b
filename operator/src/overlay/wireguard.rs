//! WireGuard mode: one WireGuard interface per sidecar, a peer per other provider. The keys and
//! addresses are exchanged over the authenticated mTLS channel (a probe carries them), so a
//! WireGuard peer is a provider whose on-chain certificate vouched for its key. Each side's
//! overlay address is derived from its provider address; inside WireGuard the connections of a
//! pair travel as plain TCP with the same preamble as the mTLS tunnels ([`super::wg_data`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use wireguard_control::{Backend, DeviceUpdate, InterfaceName, Key, PeerConfigBuilder};

use super::wire::WireGuardOffer;

/// The overlay network: a ULA /48; each provider's address is its hash inside it.
const PREFIX: [u16; 3] = [0xfd00, 0xa4a5, 0x0a4a];
/// Seconds between keepalives from the calling side (keeps NAT mappings and the handshake warm).
const KEEPALIVE: u16 = 10;

/// Which WireGuard implementation runs the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The kernel's where it can make the interface, userspace otherwise.
    Auto,
    Kernel,
    /// `wireguard-go` (or `$WG_USERSPACE_IMPLEMENTATION`, such as boringtun).
    Userspace,
}

/// The overlay address of `provider`: the /48 prefix and 80 bits of SHA-256 of its address.
pub(crate) fn overlay_address(provider: &str) -> Ipv6Addr {
    let h = Sha256::digest(provider.as_bytes());
    let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    Ipv6Addr::new(
        PREFIX[0],
        PREFIX[1],
        PREFIX[2],
        word(0),
        word(2),
        word(4),
        word(6),
        // Never the all-zero or all-one host part.
        word(8).clamp(1, 0xfffe),
    )
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum WireGuardError {
    #[error("invalid WireGuard interface name {0:?}")]
    InterfaceName(String),
    #[error("setting up WireGuard interface {interface} ({backend}): {error}")]
    Setup {
        interface: String,
        backend: &'static str,
        error: String,
    },
    #[error("the peer's WireGuard key is not valid base64 Curve25519: {0}")]
    Key(String),
    #[error("configuring the WireGuard peer {provider}: {error}")]
    Peer { provider: String, error: String },
}

/// This sidecar's WireGuard interface and its peers (by provider).
pub(crate) struct WireGuard {
    interface: InterfaceName,
    interface_text: String,
    backend: Backend,
    public: Key,
    address: Ipv6Addr,
    endpoint: SocketAddr,
    peers: Mutex<HashMap<String, (Key, Ipv6Addr)>>,
}

impl std::fmt::Debug for WireGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireGuard")
            .field("interface", &self.interface_text)
            .field("address", &self.address)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl WireGuard {
    /// Makes (or takes over) interface `interface` with a new key, listening on
    /// `endpoint`'s port and advertising `endpoint`, with `me`'s overlay address.
    pub(crate) fn start(
        interface: &str,
        choice: BackendChoice,
        endpoint: SocketAddr,
        me: &str,
    ) -> Result<Self, WireGuardError> {
        let name: InterfaceName = interface
            .parse()
            .map_err(|_| WireGuardError::InterfaceName(interface.to_owned()))?;
        let private = Key::generate_private();
        let public = private.get_public();
        let update = || {
            DeviceUpdate::new()
                .set_private_key(private.clone())
                .set_listen_port(endpoint.port())
                .replace_peers()
        };
        let setup = |backend: Backend, label: &'static str| {
            update()
                .apply(&name, backend)
                .map_err(|e| WireGuardError::Setup {
                    interface: interface.to_owned(),
                    backend: label,
                    error: e.to_string(),
                })
        };
        let backend = match choice {
            BackendChoice::Kernel => setup(Backend::Kernel, "kernel").map(|()| Backend::Kernel)?,
            BackendChoice::Userspace => {
                setup(Backend::Userspace, "userspace").map(|()| Backend::Userspace)?
            }
            BackendChoice::Auto => match setup(Backend::Kernel, "kernel") {
                Ok(()) => Backend::Kernel,
                Err(e) => {
                    tracing::info!(error = %e, "kernel WireGuard is not available; using userspace");
                    setup(Backend::Userspace, "userspace").map(|()| Backend::Userspace)?
                }
            },
        };
        let address = overlay_address(me);
        let ip = |args: &[&str]| -> Result<(), WireGuardError> {
            let out =
                Command::new("ip")
                    .args(args)
                    .output()
                    .map_err(|e| WireGuardError::Setup {
                        interface: interface.to_owned(),
                        backend: "ip",
                        error: format!("running ip (iproute2): {e}"),
                    })?;
            if out.status.success() {
                Ok(())
            } else {
                Err(WireGuardError::Setup {
                    interface: interface.to_owned(),
                    backend: "ip",
                    error: format!(
                        "ip {}: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                })
            }
        };
        let cidr = format!("{address}/48");
        // No duplicate address detection: the address is usable (bindable) at once.
        ip(&["-6", "addr", "replace", &cidr, "dev", interface, "nodad"])?;
        ip(&["link", "set", interface, "up"])?;
        tracing::info!(interface, %address, %endpoint, backend = %backend, "WireGuard interface up");
        Ok(Self {
            interface: name,
            interface_text: interface.to_owned(),
            backend,
            public,
            address,
            endpoint,
            peers: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn address(&self) -> Ipv6Addr {
        self.address
    }

    /// This side's details for a peer.
    pub(crate) fn offer(&self) -> WireGuardOffer {
        WireGuardOffer {
            public_key: self.public.to_base64(),
            address: self.address,
            endpoint: Some(self.endpoint),
        }
    }

    /// Makes `provider` (whose certificate vouched for `offer`) a peer, replacing an older key
    /// of it. The calling side keeps the handshake alive.
    pub(crate) fn add_peer(
        &self,
        provider: &str,
        offer: &WireGuardOffer,
        calling: bool,
    ) -> Result<(), WireGuardError> {
        let key =
            Key::from_base64(&offer.public_key).map_err(|e| WireGuardError::Key(e.to_string()))?;
        if offer.address != overlay_address(provider) {
            return Err(WireGuardError::Peer {
                provider: provider.to_owned(),
                error: format!(
                    "it offers address {}, but its overlay address is {}",
                    offer.address,
                    overlay_address(provider)
                ),
            });
        }
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if peers.get(provider).is_some_and(|(k, _)| k == &key) {
            return Ok(());
        }
        let mut update = DeviceUpdate::new();
        if let Some((old, _)) = peers.get(provider) {
            update = update.remove_peer_by_key(old);
        }
        let mut peer = PeerConfigBuilder::new(&key)
            .replace_allowed_ips()
            .add_allowed_ip(IpAddr::V6(offer.address), 128);
        if let Some(endpoint) = offer.endpoint {
            peer = peer.set_endpoint(endpoint);
        }
        if calling {
            peer = peer.set_persistent_keepalive_interval(KEEPALIVE);
        }
        update
            .add_peer(peer)
            .apply(&self.interface, self.backend)
            .map_err(|e| WireGuardError::Peer {
                provider: provider.to_owned(),
                error: e.to_string(),
            })?;
        tracing::info!(%provider, address = %offer.address, "WireGuard peer configured");
        peers.insert(provider.to_owned(), (key, offer.address));
        Ok(())
    }

    /// Removes `provider`'s peer (no tunnel needs it any more).
    pub(crate) fn remove_peer(&self, provider: &str) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((key, _)) = peers.remove(provider)
            && let Err(e) = DeviceUpdate::new()
                .remove_peer_by_key(&key)
                .apply(&self.interface, self.backend)
        {
            tracing::warn!(%provider, error = %e, "removing the WireGuard peer failed");
        }
    }

    /// The provider whose peer has overlay address `ip`.
    pub(crate) fn provider_at(&self, ip: IpAddr) -> Option<String> {
        let IpAddr::V6(ip) = ip else { return None };
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .iter()
            .find(|(_, (_, a))| *a == ip)
            .map(|(p, _)| p.clone())
    }

    /// The providers with a peer now.
    pub(crate) fn peer_providers(&self) -> Vec<String> {
        let peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_addresses_are_stable_distinct_and_inside_the_prefix() {
        let a = overlay_address("akash1aaaa");
        let b = overlay_address("akash1bbbb");
        assert_eq!(a, overlay_address("akash1aaaa"));
        assert_ne!(a, b);
        for addr in [a, b] {
            assert_eq!(&addr.segments()[..3], &PREFIX);
            assert!(addr.segments()[7] != 0 && addr.segments()[7] != 0xffff);
        }
    }
}
