//! Certificates from peers and from the chain: a client's DER at the gateway's TLS handshake and
//! per request (`claimed_identity`, `verify_peer`), PEM as the chain stores it (the provider's
//! reading, and the devnet's `MsgCreateCertificate` checks), and an overlay tunnel chain
//! (`[leaf, on-chain certificate]`). Seeds are real certificates made as the provider, the tenant
//! and the overlay make them.
//!
//! Input: `D` + DER, `P` + PEM, or `T` + the leaf's length (4 bytes, big-endian), leaf DER, root DER.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chain_client::akash::cert::v1::MsgCreateCertificate;
use chain_client::cert::{OnChainCertificate, claimed_identity, create_msg_for, verify_peer};
use operator::gateway::tls::{SelfSignedClients, crypto};
use operator::overlay::tunnel_cert::{self, Side, TunnelClaim};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use crate::engine::Target;
use crate::mutate::{self, Rng};
use crate::targets::chain_proto::pem_der;
use crate::targets::outcome;
use crate::world::World;

pub struct Cert {
    world: Arc<World>,
    verifier: SelfSignedClients,
    provider_der: Vec<u8>,
    tunnel_chains: Vec<Vec<Vec<u8>>>,
}

fn pem(der: &[u8]) -> Vec<u8> {
    let body = data_encoding::BASE64.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out.into_bytes()
}

impl Cert {
    pub fn new(world: Arc<World>) -> Self {
        let provider_der = pem_der(&world.provider_cert.cert_pem);
        let claim = TunnelClaim {
            owner: world.tenant().into(),
            dseq: 7,
            gseq: 1,
            service: "web".into(),
            peer_gseq: 2,
            peer_service: "db".into(),
            port: 5432,
            side: Side::Client,
        };
        let tunnel = tunnel_cert::issue(
            &world.provider_cert.cert_pem,
            world.provider_cert.key_pem(),
            &claim,
            Duration::from_secs(3600),
        )
        .expect("a tunnel certificate");
        Self {
            verifier: SelfSignedClients::new(&crypto()),
            provider_der,
            tunnel_chains: vec![tunnel.chain_der],
            world,
        }
    }

    fn held(&self, owner: &str, serial: &str, cert_pem: Vec<u8>) -> OnChainCertificate {
        OnChainCertificate {
            owner: owner.into(),
            serial: serial.into(),
            valid: true,
            cert_pem,
        }
    }

    fn devnet_create(&self, owner: &str, cert: Vec<u8>, pubkey: Vec<u8>) -> String {
        let mut state = self.world.genesis.clone();
        let msg = MsgCreateCertificate {
            owner: owner.into(),
            cert,
            pubkey,
        };
        let r = devnet::cert::create(&mut state, &msg, 0).map_err(|e| e.log);
        outcome(" devnet", &r)
    }

    fn der(&self, der: &[u8]) -> String {
        let now = SystemTime::now();
        let handshake =
            self.verifier
                .verify_client_cert(&CertificateDer::from(der), &[], UnixTime::now());
        let mut out = outcome("handshake", &handshake.map_err(|e| e.to_string()));
        let claimed = claimed_identity(der);
        out.push_str(&outcome(" claimed", &claimed));
        let pubkey = self.world.provider_cert.pubkey_pem.clone().into_bytes();
        if let Ok(peer) = claimed {
            let held = self.held(&peer.owner, &peer.serial, pem(der));
            out.push_str(&outcome(
                " verify",
                &verify_peer(&[der.to_vec()], &[held], now),
            ));
            out.push_str(&outcome(
                " publish",
                &create_msg_for(&peer.owner, &String::from_utf8_lossy(&pem(der)), der),
            ));
            out.push_str(&self.devnet_create(&peer.owner, pem(der), pubkey));
        } else {
            out.push_str(&self.devnet_create(self.world.provider(), pem(der), pubkey));
        }
        out
    }

    fn pem(&self, text: &[u8]) -> String {
        let provider = self.world.provider();
        let held = self.held(provider, &self.world.provider_cert.serial, text.to_vec());
        let mut out = outcome(
            "verify",
            &verify_peer(
                std::slice::from_ref(&self.provider_der),
                &[held],
                SystemTime::now(),
            ),
        );
        let pubkey = self.world.provider_cert.pubkey_pem.clone().into_bytes();
        out.push_str(&self.devnet_create(provider, text.to_vec(), pubkey));
        out.push_str(&self.devnet_create(
            provider,
            self.world.provider_cert.cert_pem.clone().into_bytes(),
            text.to_vec(),
        ));
        out
    }

    fn tunnel(&self, body: &[u8]) -> String {
        let Some((len, rest)) = body.split_first_chunk::<4>() else {
            return "tunnel:short".into();
        };
        let len = (u32::from_be_bytes(*len) as usize).min(rest.len());
        let chain = vec![rest[..len].to_vec(), rest[len..].to_vec()];
        let held = self.held(
            self.world.provider(),
            &self.world.provider_cert.serial,
            self.world.provider_cert.cert_pem.clone().into_bytes(),
        );
        let mut out = outcome("claimed", &tunnel_cert::claimed_provider(&chain));
        out.push_str(&outcome(
            " verify",
            &tunnel_cert::verify(&chain, &[held], SystemTime::now()),
        ));
        out
    }
}

impl Target for Cert {
    fn name(&self) -> &'static str {
        "cert"
    }

    fn weight(&self) -> u64 {
        4
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let w = &self.world;
        let mut seeds = Vec::new();
        for c in [&w.provider_cert, &w.tenant_cert] {
            let mut d = b"D".to_vec();
            d.extend(pem_der(&c.cert_pem));
            seeds.push(d);
            let mut p = b"P".to_vec();
            p.extend(c.cert_pem.as_bytes());
            seeds.push(p);
        }
        for chain in &self.tunnel_chains {
            let mut t = b"T".to_vec();
            t.extend((chain[0].len() as u32).to_be_bytes());
            t.extend(&chain[0]);
            t.extend(&chain[1]);
            seeds.push(t);
        }
        seeds
    }

    fn mutate(&self, rng: &mut Rng, base: &[u8], donor: &[u8]) -> Vec<u8> {
        let (kind, body) = base.split_first().unwrap_or((&b'D', &[]));
        let mut body = body.to_vec();
        // DER is tag-length-value, close enough to protobuf's shape that byte mutations do well;
        // a few at a time keep most of the structure.
        mutate::bytes(rng, &mut body, donor.get(1..).unwrap_or_default());
        let mut out = vec![*kind];
        out.extend(body);
        out
    }

    fn run(&mut self, input: &[u8]) -> String {
        match input.split_first() {
            Some((b'D', der)) => self.der(der),
            Some((b'P', text)) => self.pem(text),
            Some((b'T', body)) => self.tunnel(body),
            _ => "unknown kind".into(),
        }
    }
}
