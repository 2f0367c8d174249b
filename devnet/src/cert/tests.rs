use std::time::Duration;

use chain_client::cert::{CertificateKeyPair, CertificateRole, generate};

use super::*;
use crate::ante::{Mode, Params, TxResult, parse_gas_prices, run_tx};
use crate::genesis::{TestAccount, genesis_state, test_accounts};
use crate::sign::{SignOpts, any_of, sign_tx};

const CHAIN: &str = "devnet-cert";
const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn params() -> Params {
    Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap())
}

struct World {
    state: State,
    accounts: Vec<TestAccount>,
}

impl World {
    fn new() -> Self {
        Self {
            state: genesis_state(CHAIN).unwrap(),
            accounts: test_accounts().unwrap(),
        }
    }

    fn address(&self, i: usize) -> String {
        self.accounts[i].address.clone()
    }

    /// Signs `msg` with account `key_of`'s key, as account `account_of` (number and sequence).
    fn tx_as<M: prost::Name>(&mut self, key_of: usize, account_of: usize, msg: &M) -> TxResult {
        let acc = self.state.accounts[&self.accounts[account_of].address].clone();
        let raw = sign_tx(
            &self.accounts[key_of].key,
            vec![any_of(msg)],
            &SignOpts::new(CHAIN, acc.number, acc.sequence),
        )
        .unwrap();
        run_tx(&mut self.state, &raw, Mode::Deliver, &params())
    }

    fn tx<M: prost::Name>(&mut self, signer: usize, msg: &M) -> TxResult {
        self.tx_as(signer, signer, msg)
    }

    fn publish(&mut self, i: usize) -> CertificateKeyPair {
        let owner = self.address(i);
        let pair = generate(&owner, &CertificateRole::Client, YEAR).unwrap();
        let r = self.tx(i, &pair.create_msg(&owner));
        assert_eq!(r.code, 0, "{}", r.log);
        pair
    }

    fn query(&self, owner: &str, serial: &str, state: &str) -> Vec<cv1::CertificateResponse> {
        certificates(
            &self.state,
            cv1::QueryCertificatesRequest {
                filter: Some(cv1::CertificateFilter {
                    owner: owner.into(),
                    serial: serial.into(),
                    state: state.into(),
                }),
                pagination: None,
            },
        )
        .unwrap()
        .certificates
    }
}

fn revoke_msg(owner: &str, serial: &str) -> cv1::MsgRevokeCertificate {
    cv1::MsgRevokeCertificate {
        id: Some(cv1::Id {
            owner: owner.into(),
            serial: serial.into(),
        }),
    }
}

fn assert_cert_err(r: &TxResult, code: u32) {
    assert_eq!((r.code, r.codespace.as_str()), (code, "cert"), "{}", r.log);
}

#[test]
fn a_published_certificate_is_valid_until_its_owner_revokes_it() {
    let mut w = World::new();
    let owner = w.address(2);
    let pair = w.publish(2);

    let found = w.query(&owner, &pair.serial, "");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].serial, pair.serial);
    let cert = found[0].certificate.clone().unwrap();
    assert_eq!(cert.state, cv1::State::Valid as i32);
    assert_eq!(cert.cert, pair.cert_pem.as_bytes());
    assert_eq!(cert.pubkey, pair.pubkey_pem.as_bytes());
    assert_eq!(w.query(&owner, "", "valid").len(), 1);
    assert!(w.query(&owner, "", "revoked").is_empty());
    assert!(w.query(&w.address(3), "", "").is_empty());

    let r = w.tx(2, &revoke_msg(&owner, &pair.serial));
    assert_eq!(r.code, 0, "{}", r.log);
    let ev = r
        .events
        .iter()
        .find(|e| e.kind == "message" && e.get("module") == Some("cert"));
    assert_eq!(
        ev.and_then(|e| e.get("action")),
        Some("/akash.cert.v1.MsgRevokeCertificate")
    );
    let found = w.query(&owner, &pair.serial, "");
    assert_eq!(
        found[0].certificate.as_ref().unwrap().state,
        cv1::State::Revoked as i32
    );
    assert!(w.query(&owner, "", "valid").is_empty());
    assert_eq!(w.query("", "", "revoked").len(), 1);

    // Revoking twice: already revoked.
    let r = w.tx(2, &revoke_msg(&owner, &pair.serial));
    assert_cert_err(&r, 4);
}

#[test]
fn a_certificate_whose_common_name_is_not_the_owner_is_refused() {
    let mut w = World::new();
    let other = w.address(3);
    let pair = generate(&other, &CertificateRole::Client, YEAR).unwrap();
    let owner = w.address(2);
    let r = w.tx(2, &pair.create_msg(&owner));
    assert_cert_err(&r, 6);
    assert!(
        r.log.contains("CommonName does not match owner"),
        "{}",
        r.log
    );
    assert!(w.state.certificates.is_empty());
}

#[test]
fn the_same_serial_twice_for_one_owner_is_refused() {
    let mut w = World::new();
    let owner = w.address(2);
    let pair = w.publish(2);
    let r = w.tx(2, &pair.create_msg(&owner));
    assert_cert_err(&r, 3);
    assert_eq!(w.state.certificates.len(), 1);
}

#[test]
fn certificate_and_pubkey_must_be_single_pem_blocks_of_their_kind() {
    let mut w = World::new();
    let owner = w.address(2);
    let pair = generate(&owner, &CertificateRole::Client, YEAR).unwrap();
    let good = pair.create_msg(&owner);

    let mut m = good.clone();
    m.cert = b"not a certificate".to_vec();
    assert_cert_err(&w.tx(2, &m), 6);

    let mut m = good.clone();
    m.cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_vec();
    assert_cert_err(&w.tx(2, &m), 6);

    let mut m = good.clone();
    m.cert = format!("{}junk", pair.cert_pem).into_bytes();
    assert_cert_err(&w.tx(2, &m), 6);

    let mut m = good.clone();
    m.cert = pair
        .pubkey_pem
        .replace("EC PUBLIC KEY", "PUBLIC KEY")
        .into_bytes();
    assert_cert_err(&w.tx(2, &m), 6);

    let mut m = good.clone();
    m.pubkey = pair
        .pubkey_pem
        .replace("EC PUBLIC KEY", "PUBLIC KEY")
        .into_bytes();
    let r = w.tx(2, &m);
    assert_cert_err(&r, 7);
    assert!(r.log.contains("invalid pem block type"), "{}", r.log);

    let mut m = good.clone();
    m.pubkey = Vec::new();
    assert_cert_err(&w.tx(2, &m), 7);

    let mut m = good;
    m.owner = "akash1notanaddress".into();
    let r = w.tx(2, &m);
    assert_eq!((r.code, r.codespace.as_str()), (7, "sdk"), "{}", r.log);
    assert!(w.state.certificates.is_empty());
}

#[test]
fn only_the_owner_revokes_and_only_what_exists() {
    let mut w = World::new();
    let owner = w.address(2);
    let pair = w.publish(2);

    // A stranger signs a revocation of the owner's certificate: the signature is not the owner's.
    let r = w.tx_as(0, 2, &revoke_msg(&owner, &pair.serial));
    assert_eq!((r.code, r.codespace.as_str()), (4, "sdk"), "{}", r.log);
    assert!(r.log.contains("unauthorized"), "{}", r.log);
    // A stranger naming themselves as owner finds no such certificate.
    let stranger = w.address(0);
    let r = w.tx(0, &revoke_msg(&stranger, &pair.serial));
    assert_cert_err(&r, 1);
    assert_eq!(
        w.query(&owner, &pair.serial, "valid").len(),
        1,
        "still valid"
    );

    // Unknown serial, and one that is not a decimal number.
    assert_cert_err(&w.tx(2, &revoke_msg(&owner, "12345")), 1);
    assert_cert_err(&w.tx(2, &revoke_msg(&owner, "12a")), 5);
    assert_cert_err(&w.tx(2, &revoke_msg(&owner, "")), 5);
    // The serial is read as a number: leading zeros name the same certificate.
    let r = w.tx(2, &revoke_msg(&owner, &format!("00{}", pair.serial)));
    assert_eq!(r.code, 0, "{}", r.log);
}

#[test]
fn queries_filter_by_owner_serial_and_state_and_page() {
    let mut w = World::new();
    let a = w.address(2);
    let first = w.publish(2);
    let second = w.publish(2);
    let other = w.publish(3);

    let mine = w.query(&a, "", "");
    let serials: Vec<&str> = mine.iter().map(|c| c.serial.as_str()).collect();
    assert_eq!(serials, vec![first.serial.as_str(), second.serial.as_str()]);
    assert_eq!(w.query("", "", "").len(), 3);
    assert_eq!(w.query(&a, &other.serial, "").len(), 0);
    // As on the Go chain, a serial without an owner filters nothing.
    assert_eq!(w.query("", &first.serial, "").len(), 3);
    // "invalid" (the zero state) means any state.
    assert_eq!(w.query(&a, "", "invalid").len(), 2);

    let page = certificates(
        &w.state,
        cv1::QueryCertificatesRequest {
            filter: None,
            pagination: Some(
                cosmos_sdk_proto::cosmos::base::query::v1beta1::PageRequest {
                    limit: 2,
                    ..Default::default()
                },
            ),
        },
    )
    .unwrap();
    assert_eq!(page.certificates.len(), 2);
    assert!(!page.pagination.unwrap().next_key.is_empty());

    let bad = |filter: cv1::CertificateFilter| {
        certificates(
            &w.state,
            cv1::QueryCertificatesRequest {
                filter: Some(filter),
                pagination: None,
            },
        )
        .unwrap_err()
        .code()
    };
    assert_eq!(
        bad(cv1::CertificateFilter {
            state: "bogus".into(),
            ..Default::default()
        }),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        bad(cv1::CertificateFilter {
            owner: a.clone(),
            serial: "x1".into(),
            ..Default::default()
        }),
        tonic::Code::InvalidArgument
    );
    assert_eq!(
        bad(cv1::CertificateFilter {
            owner: "nobody".into(),
            ..Default::default()
        }),
        tonic::Code::InvalidArgument
    );
}

#[test]
fn serials_are_canonical_decimal_integers() {
    assert_eq!(canonical_serial("0042").as_deref(), Some("42"));
    assert_eq!(canonical_serial("+7").as_deref(), Some("7"));
    assert_eq!(canonical_serial("000").as_deref(), Some("0"));
    assert_eq!(canonical_serial("-05").as_deref(), Some("-5"));
    assert_eq!(canonical_serial(""), None);
    assert_eq!(canonical_serial("-"), None);
    assert_eq!(canonical_serial("1e3"), None);
    // Keys sort by length first, so an owner's certificates list in numeric order.
    assert!(keys::certificate("o", "99") < keys::certificate("o", "100"));
}
