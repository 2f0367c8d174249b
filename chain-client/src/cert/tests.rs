use std::time::{Duration, SystemTime};

use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate};

use super::*;

const TENANT: &str = "akash15yk64u7zc9g9k2yr2wmzeva5qgwxps6ytfzgqy";
const PROVIDER: &str = "akash19rl4cm2hmr8afy4kldpxz3fka4jguq0a3mq6x0";
const DAY: Duration = Duration::from_secs(86_400);

fn der_of(pair: &CertificateKeyPair) -> Vec<u8> {
    pem_decode_certificate(pair.cert_pem.as_bytes()).expect("a PEM certificate")
}

fn held(owner: &str, pair: &CertificateKeyPair) -> OnChainCertificate {
    OnChainCertificate {
        owner: owner.into(),
        serial: pair.serial.clone(),
        valid: true,
        cert_pem: pair.cert_pem.clone().into_bytes(),
    }
}

#[test]
fn a_tenant_certificate_has_the_akash_shape() {
    let pair = generate(TENANT, &CertificateRole::Client, 365 * DAY).unwrap();
    assert!(pair.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(pair.pubkey_pem.starts_with("-----BEGIN EC PUBLIC KEY-----"));
    let der = der_of(&pair);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();

    assert_eq!(common_name(cert.subject()).as_deref(), Some(TENANT));
    assert_eq!(common_name(cert.issuer()).as_deref(), Some(TENANT));
    assert_eq!(cert.tbs_certificate.serial.to_string(), pair.serial);
    let nanos: u128 = pair.serial.parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    assert!(
        nanos <= now && now - nanos < 60_000_000_000,
        "the serial is the creation time in ns"
    );
    // DER integers are minimal; Go's parser refuses padded ones.
    let raw = cert.tbs_certificate.raw_serial();
    assert!(
        raw[0] != 0 || raw.get(1).is_some_and(|b| b & 0x80 != 0),
        "{raw:02x?}"
    );

    let version = cert
        .subject()
        .iter_attributes()
        .find(|a| a.attr_type().to_id_string() == "2.23.133.2.6")
        .expect("the auth version attribute");
    assert_eq!(version.as_str().unwrap(), "v0.0.1");

    // ECDSA on P-256.
    let spki = cert.public_key();
    assert_eq!(spki.algorithm.algorithm.to_id_string(), "1.2.840.10045.2.1");
    let curve = spki
        .algorithm
        .parameters
        .as_ref()
        .unwrap()
        .as_oid()
        .unwrap();
    assert_eq!(curve.to_id_string(), "1.2.840.10045.3.1.7");
    // The published public key is the certificate's.
    let pubkey_der = data_encoding::BASE64
        .decode(
            pair.pubkey_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>()
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(pubkey_der, spki.raw);

    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    let validity = cert.validity().time_to_expiration().unwrap();
    assert!(validity > 364 * DAY && validity <= 365 * DAY);
}

#[test]
fn a_provider_certificate_also_serves_its_hosts() {
    let role = CertificateRole::Server {
        dns_names: vec!["provider.example.com".into()],
    };
    let pair = generate(PROVIDER, &role, DAY).unwrap();
    let der = der_of(&pair);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && eku.server_auth);
    let names: Vec<String> = cert
        .extensions()
        .iter()
        .filter_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => Some(san.general_names.clone()),
            _ => None,
        })
        .flatten()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["provider.example.com".to_string()]);
}

#[test]
fn a_certificate_names_its_owner_without_its_key() {
    let role = CertificateRole::Server {
        dns_names: vec!["provider.example.com".into()],
    };
    let pair = generate(PROVIDER, &role, DAY).unwrap();
    assert_eq!(owner_of_pem(&pair.cert_pem).unwrap(), PROVIDER);
    assert!(matches!(
        owner_of_pem("not a certificate"),
        Err(CertError::Parse(_))
    ));
}

#[test]
fn only_akash_addresses_get_certificates() {
    for bad in [
        "cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu",
        "akash1nope",
        "",
    ] {
        assert_eq!(
            generate(bad, &CertificateRole::Client, DAY).unwrap_err(),
            CertError::NotAnAddress(bad.into())
        );
    }
}

#[test]
fn the_publishing_message_carries_owner_cert_and_key() {
    let pair = generate(TENANT, &CertificateRole::Client, DAY).unwrap();
    let msg = pair.create_msg(TENANT);
    assert_eq!(msg.owner, TENANT);
    assert_eq!(msg.cert, pair.cert_pem.as_bytes());
    assert_eq!(msg.pubkey, pair.pubkey_pem.as_bytes());
}

#[test]
fn the_private_key_never_shows_in_debug_output() {
    let pair = generate(TENANT, &CertificateRole::Client, DAY).unwrap();
    assert!(pair.key_pem().contains("PRIVATE KEY"));
    let shown = format!("{pair:?}");
    assert!(shown.contains("[redacted]"));
    assert!(!shown.contains("PRIVATE KEY"));
}

#[test]
fn a_peer_whose_certificate_is_on_chain_is_accepted() {
    let pair = generate(TENANT, &CertificateRole::Client, DAY).unwrap();
    let other = generate(PROVIDER, &CertificateRole::Client, DAY).unwrap();
    let chain = [held(PROVIDER, &other), held(TENANT, &pair)];
    let peer = verify_peer(&[der_of(&pair)], &chain, SystemTime::now()).unwrap();
    assert_eq!(
        peer,
        VerifiedPeer {
            owner: TENANT.into(),
            serial: pair.serial.clone()
        }
    );
    assert_eq!(claimed_identity(&der_of(&pair)).unwrap(), peer);
}

#[test]
fn peers_the_chain_does_not_vouch_for_are_refused() {
    let now = SystemTime::now();
    let pair = generate(TENANT, &CertificateRole::Client, DAY).unwrap();
    let der = der_of(&pair);
    let one = std::slice::from_ref(&der);
    let owner = TENANT.to_string();
    let serial = pair.serial.clone();

    // Nothing on chain, or only someone else's.
    let stranger = generate(PROVIDER, &CertificateRole::Client, DAY).unwrap();
    let not_on_chain = CertError::NotOnChain {
        owner: owner.clone(),
        serial: serial.clone(),
    };
    assert_eq!(verify_peer(one, &[], now), Err(not_on_chain.clone()));
    assert_eq!(
        verify_peer(one, &[held(PROVIDER, &stranger)], now),
        Err(not_on_chain.clone())
    );

    // Revoked.
    let mut revoked = held(TENANT, &pair);
    revoked.valid = false;
    assert_eq!(verify_peer(one, &[revoked], now), Err(not_on_chain));

    // Same owner and serial on chain, but another certificate (another key).
    let imposter = generate(TENANT, &CertificateRole::Client, DAY).unwrap();
    let mut swapped = held(TENANT, &imposter);
    swapped.serial = serial.clone();
    assert_eq!(
        verify_peer(one, &[swapped], now),
        Err(CertError::DiffersFromChain {
            owner: owner.clone(),
            serial: serial.clone()
        })
    );

    // Outside the validity period.
    assert_eq!(
        verify_peer(one, &[held(TENANT, &pair)], now + 2 * DAY),
        Err(CertError::Expired {
            owner: owner.clone(),
            serial: serial.clone()
        })
    );

    // Not exactly one certificate.
    assert_eq!(
        verify_peer(&[], &[held(TENANT, &pair)], now),
        Err(CertError::ChainLength(0))
    );
    assert_eq!(
        verify_peer(&[der.clone(), der.clone()], &[held(TENANT, &pair)], now),
        Err(CertError::ChainLength(2))
    );

    // Not a certificate at all.
    assert!(matches!(
        verify_peer(&[b"garbage".to_vec()], &[], now),
        Err(CertError::Parse(_))
    ));
}

#[test]
fn a_query_answer_becomes_what_verify_peer_checks_and_revoking_names_it() {
    let pair = generate(TENANT, &CertificateRole::Client, DAY).unwrap();
    let peer = claimed_identity(&der_of(&pair)).unwrap();
    assert_eq!(
        (peer.owner.as_str(), peer.serial.as_str()),
        (TENANT, pair.serial.as_str())
    );
    let filter = lookup_filter(&peer);
    assert_eq!(
        (
            filter.owner.as_str(),
            filter.serial.as_str(),
            filter.state.as_str()
        ),
        (TENANT, pair.serial.as_str(), "")
    );
    let mut answer = CertificateResponse {
        certificate: Some(crate::akash::cert::v1::Certificate {
            state: State::Valid as i32,
            cert: pair.cert_pem.clone().into_bytes(),
            pubkey: pair.pubkey_pem.clone().into_bytes(),
        }),
        serial: pair.serial.clone(),
    };
    let held = OnChainCertificate::from_response(TENANT, &answer);
    assert_eq!(held, self::held(TENANT, &pair));
    assert!(verify_peer(&[der_of(&pair)], &[held], SystemTime::now()).is_ok());

    answer.certificate.as_mut().unwrap().state = State::Revoked as i32;
    let revoked = OnChainCertificate::from_response(TENANT, &answer);
    assert!(!revoked.valid);
    assert!(matches!(
        verify_peer(&[der_of(&pair)], &[revoked], SystemTime::now()),
        Err(CertError::NotOnChain { .. })
    ));

    let msg = revoke_msg(TENANT, &pair.serial);
    let id = msg.id.unwrap();
    assert_eq!(
        (id.owner.as_str(), id.serial.as_str()),
        (TENANT, pair.serial.as_str())
    );
}
