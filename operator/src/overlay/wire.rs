//! The tunnel's preamble, after the TLS handshake: the client sends one [`TunnelRequest`], the
//! server answers one [`TunnelResponse`], each a u32 big-endian length and that many bytes of JSON;
//! then raw bytes flow both ways.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::OverlayError;
use super::tunnel_cert::{Side, TunnelClaim};

/// The largest preamble message accepted or sent.
pub(crate) const MAX_PREAMBLE: usize = 4096;
/// The SNI domain of tunnel connections.
pub(crate) const SNI_DOMAIN: &str = "overlay.akash";

/// What a client asks for: a connection from its group and service to the server's service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelRequest {
    pub owner: String,
    pub dseq: u64,
    pub from_gseq: u32,
    pub from_service: String,
    /// The server side's group (a service placed in several datacenters is in several groups).
    pub to_gseq: u32,
    pub to_service: String,
    pub port: u16,
    /// A health check: the server authorizes the request and answers, but connects nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub probe: bool,
    /// On a probe: the caller's WireGuard peer details, to be carried over WireGuard instead;
    /// a server that runs WireGuard answers with its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<WireGuardOffer>,
}

/// One side's WireGuard peer details, exchanged over the authenticated mTLS channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireGuardOffer {
    /// Curve25519 public key, base64.
    pub public_key: String,
    /// The side's overlay address inside the WireGuard network.
    pub address: std::net::Ipv6Addr,
    /// Where its WireGuard listens (UDP), `ip:port`; the caller may leave it out (the server
    /// learns it from the handshake).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<std::net::SocketAddr>,
}

impl TunnelRequest {
    /// The claim of the client side's certificate for this connection pair.
    pub fn client_claim(&self) -> TunnelClaim {
        TunnelClaim {
            owner: self.owner.clone(),
            dseq: self.dseq,
            gseq: self.from_gseq,
            service: self.from_service.clone(),
            peer_gseq: self.to_gseq,
            peer_service: self.to_service.clone(),
            port: self.port,
            side: Side::Client,
        }
    }

    /// The claim of the server side's certificate for this connection pair.
    pub fn server_claim(&self) -> TunnelClaim {
        TunnelClaim {
            owner: self.owner.clone(),
            dseq: self.dseq,
            gseq: self.to_gseq,
            service: self.to_service.clone(),
            peer_gseq: self.from_gseq,
            peer_service: self.from_service.clone(),
            port: self.port,
            side: Side::Server,
        }
    }

    /// The request a claim (of either side) was made for.
    pub fn from_claim(claim: &TunnelClaim) -> Self {
        let (from_gseq, from_service, to_gseq, to_service) = match claim.side {
            Side::Client => (
                claim.gseq,
                &claim.service,
                claim.peer_gseq,
                &claim.peer_service,
            ),
            Side::Server => (
                claim.peer_gseq,
                &claim.peer_service,
                claim.gseq,
                &claim.service,
            ),
        };
        Self {
            owner: claim.owner.clone(),
            dseq: claim.dseq,
            from_gseq,
            from_service: from_service.clone(),
            to_gseq,
            to_service: to_service.clone(),
            port: claim.port,
            probe: false,
            wireguard: None,
        }
    }
}

/// The SNI naming a connection pair, `t-<16 hex>.overlay.akash`: the server picks its certificate
/// by it, and it reveals nothing of the deployment to an observer.
pub(crate) fn pair_sni(req: &TunnelRequest) -> String {
    let mut h = Sha256::new();
    // Length-prefixed fields: no two different pairs encode the same.
    for field in [
        req.owner.as_bytes(),
        &req.dseq.to_be_bytes(),
        &req.from_gseq.to_be_bytes(),
        req.from_service.as_bytes(),
        &req.to_gseq.to_be_bytes(),
        req.to_service.as_bytes(),
        &req.port.to_be_bytes(),
    ] {
        h.update((field.len() as u32).to_be_bytes());
        h.update(field);
    }
    format!("t-{}.{SNI_DOMAIN}", super::hex(&h.finalize()[..8]))
}

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TunnelResponse {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The server's WireGuard details, answering a caller's offer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard: Option<WireGuardOffer>,
}

impl TunnelResponse {
    pub(crate) fn ok() -> Self {
        Self {
            ok: true,
            error: None,
            wireguard: None,
        }
    }

    pub(crate) fn refused(reason: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(reason.into()),
            wireguard: None,
        }
    }
}

/// Writes one length-prefixed JSON message.
pub(crate) async fn write_frame<W, T>(w: &mut W, msg: &T) -> Result<(), OverlayError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let body = serde_json::to_vec(msg).map_err(OverlayError::PreambleJson)?;
    if body.len() > MAX_PREAMBLE {
        return Err(OverlayError::PreambleTooLarge {
            len: body.len(),
            max: MAX_PREAMBLE,
        });
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one length-prefixed JSON message, refusing more than [`MAX_PREAMBLE`] bytes before
/// reading them.
pub(crate) async fn read_frame<R, T>(r: &mut R) -> Result<T, OverlayError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.map_err(|e| {
        OverlayError::PreambleInvalid(format!("the peer closed before its preamble: {e}"))
    })?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_PREAMBLE {
        return Err(OverlayError::PreambleTooLarge {
            len,
            max: MAX_PREAMBLE,
        });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|e| {
        OverlayError::PreambleInvalid(format!(
            "the preamble ended early ({len} bytes announced): {e}"
        ))
    })?;
    serde_json::from_slice(&body).map_err(OverlayError::PreambleJson)
}
