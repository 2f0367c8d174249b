use super::*;
use crate::ante::{Mode, Params, TxResult, parse_gas_prices, run_tx};
use crate::genesis::{TestAccount, genesis_state, test_accounts};
use crate::sign::{SignOpts, any_of, sign_tx};

const CHAIN: &str = "devnet-audit";
const PROVIDER: usize = 3;
const AUDITOR: usize = 1;

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

    fn sign(&mut self, auditor: usize, attrs: &[(&str, &str)]) -> TxResult {
        let msg = av1::MsgSignProviderAttributes {
            owner: self.address(PROVIDER),
            auditor: self.address(auditor),
            attributes: attributes(attrs),
        };
        self.tx(auditor, &msg)
    }

    fn delete_msg(&self, auditor: usize, keys: &[&str]) -> av1::MsgDeleteProviderAttributes {
        av1::MsgDeleteProviderAttributes {
            owner: self.address(PROVIDER),
            auditor: self.address(auditor),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    fn entries(&self) -> Vec<av1::AuditedProvider> {
        provider_entries(&self.state, &self.address(PROVIDER))
    }
}

fn attributes(kv: &[(&str, &str)]) -> Vec<Attribute> {
    kv.iter()
        .map(|(k, v)| Attribute {
            key: (*k).to_owned(),
            value: (*v).to_owned(),
        })
        .collect()
}

fn assert_audit_err(r: &TxResult, code: u32) {
    assert_eq!((r.code, r.codespace.as_str()), (code, "audit"), "{}", r.log);
}

#[test]
fn an_auditor_signs_attributes_and_signing_again_merges_them() {
    let mut w = World::new();
    let r = w.sign(AUDITOR, &[("tier", "community"), ("region", "eu")]);
    assert_eq!(r.code, 0, "{}", r.log);
    let ev = r
        .events
        .iter()
        .find(|e| e.kind == "akash.audit.v1.EventTrustedAuditorCreated")
        .expect("the typed event");
    assert_eq!(
        ev.get("owner"),
        Some(format!("\"{}\"", w.address(PROVIDER)).as_str())
    );
    assert_eq!(
        ev.get("auditor"),
        Some(format!("\"{}\"", w.address(AUDITOR)).as_str())
    );

    let entries = w.entries();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].auditor, w.address(AUDITOR));
    // Sorted by key.
    assert_eq!(
        entries[0].attributes,
        attributes(&[("region", "eu"), ("tier", "community")])
    );

    let r = w.sign(AUDITOR, &[("tier", "premium"), ("gpu", "a100")]);
    assert_eq!(r.code, 0, "{}", r.log);
    assert_eq!(
        w.entries()[0].attributes,
        attributes(&[("gpu", "a100"), ("region", "eu"), ("tier", "premium")])
    );

    // A second auditor has an entry of its own.
    let r = w.sign(2, &[("tier", "community")]);
    assert_eq!(r.code, 0, "{}", r.log);
    let entries = w.entries();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().any(|e| e.auditor == w.address(2)));
}

#[test]
fn the_auditor_deletes_keys_or_everything() {
    let mut w = World::new();
    assert_eq!(
        w.sign(AUDITOR, &[("a", "1"), ("b", "2"), ("c", "3")]).code,
        0
    );

    let r = w.tx(AUDITOR, &w.delete_msg(AUDITOR, &["b"]));
    assert_eq!(r.code, 0, "{}", r.log);
    assert!(
        r.events
            .iter()
            .any(|e| e.kind == "akash.audit.v1.EventTrustedAuditorDeleted")
    );
    assert_eq!(
        w.entries()[0].attributes,
        attributes(&[("a", "1"), ("c", "3")])
    );

    // A key that is not there: nothing is deleted.
    let r = w.tx(AUDITOR, &w.delete_msg(AUDITOR, &["a", "zzz"]));
    assert_audit_err(&r, 3);
    assert!(r.log.contains("\"zzz\""), "{}", r.log);
    assert_eq!(w.entries()[0].attributes.len(), 2);

    // Deleting the last keys removes the entry.
    let r = w.tx(AUDITOR, &w.delete_msg(AUDITOR, &["a", "c"]));
    assert_eq!(r.code, 0, "{}", r.log);
    assert!(w.entries().is_empty());

    // No keys: everything.
    assert_eq!(w.sign(AUDITOR, &[("a", "1"), ("b", "2")]).code, 0);
    let r = w.tx(AUDITOR, &w.delete_msg(AUDITOR, &[]));
    assert_eq!(r.code, 0, "{}", r.log);
    assert!(w.entries().is_empty());

    // Nothing left to delete.
    let r = w.tx(AUDITOR, &w.delete_msg(AUDITOR, &[]));
    assert_audit_err(&r, 1);
    assert!(
        r.log.contains("invalid provider: address not found"),
        "{}",
        r.log
    );
}

#[test]
fn only_the_auditor_deletes_its_attributes() {
    let mut w = World::new();
    assert_eq!(w.sign(AUDITOR, &[("tier", "community")]).code, 0);

    // Someone else signs a deletion in the auditor's name: not the auditor's signature.
    let msg = w.delete_msg(AUDITOR, &[]);
    let r = w.tx_as(0, AUDITOR, &msg);
    assert_eq!((r.code, r.codespace.as_str()), (4, "sdk"), "{}", r.log);
    // The provider itself cannot delete what the auditor signed: it has no entry as auditor.
    let msg = w.delete_msg(PROVIDER, &[]);
    let r = w.tx(PROVIDER, &msg);
    assert_audit_err(&r, 1);
    assert_eq!(w.entries().len(), 1);

    // A signature in the name of an invalid auditor never reaches the module.
    let msg = av1::MsgSignProviderAttributes {
        owner: "nobody".into(),
        auditor: w.address(AUDITOR),
        attributes: vec![],
    };
    let r = w.tx(AUDITOR, &msg);
    assert_eq!((r.code, r.codespace.as_str()), (7, "sdk"), "{}", r.log);
}
