//! The shared certificate protocol on the fake chain and an in-memory store: what is kept, what is
//! published, and in which order, for each state the chain can hold the kept certificate in.

use std::sync::Mutex;
use std::time::Duration;

use chain_client::akash::cert::v1::{Certificate, MsgCreateCertificate, State};
use chain_client::chain::CertificateResponse;
use chain_client::fake::FakeChain;

use super::*;

/// Keeps one certificate in memory and counts saves; `publish_seen` records how many certificates
/// the chain had been sent when each save happened (the key must be kept first).
struct MemoryStore {
    chain: FakeChain,
    kept: Mutex<Option<(String, String)>>,
    published_at_save: Mutex<Vec<usize>>,
}

impl MemoryStore {
    fn new(chain: &FakeChain) -> Self {
        Self {
            chain: chain.clone(),
            kept: Mutex::new(None),
            published_at_save: Mutex::new(Vec::new()),
        }
    }

    fn kept_cert(&self) -> Option<String> {
        self.kept.lock().unwrap().as_ref().map(|(c, _)| c.clone())
    }
}

#[async_trait]
impl CertStore for MemoryStore {
    async fn load(&self) -> anyhow::Result<Option<KeptCertificate>> {
        Ok(self
            .kept
            .lock()
            .unwrap()
            .clone()
            .map(|(cert_pem, key_pem)| KeptCertificate { cert_pem, key_pem }))
    }

    async fn save(&self, pair: &CertificateKeyPair) -> anyhow::Result<()> {
        let published = self.chain.broadcast_msgs::<MsgCreateCertificate>().len();
        self.published_at_save.lock().unwrap().push(published);
        *self.kept.lock().unwrap() = Some((pair.cert_pem.clone(), pair.key_pem().to_owned()));
        Ok(())
    }
}

fn owner() -> String {
    chain_client::keys::Key::random("akash")
        .expect("key")
        .address()
        .to_string()
}

fn client() -> NewCertificate {
    NewCertificate {
        role: CertificateRole::Client,
        valid_for: Duration::from_secs(3600),
    }
}

fn refuse() -> WhenRevoked {
    WhenRevoked::Refuse {
        remedy: "delete Secret x to make a new one".into(),
    }
}

/// The chain holds `pair` in `state`.
fn on_chain(chain: &FakeChain, pair: &CertificateKeyPair, state: State) {
    chain.state().certificates.push(CertificateResponse {
        certificate: Some(Certificate {
            state: state as i32,
            cert: pair.cert_pem.clone().into_bytes(),
            pubkey: pair.pubkey_pem.clone().into_bytes(),
        }),
        serial: pair.serial.clone(),
    });
}

fn keep(store: &MemoryStore, pair: &CertificateKeyPair) {
    *store.kept.lock().unwrap() = Some((pair.cert_pem.clone(), pair.key_pem().to_owned()));
}

#[tokio::test]
async fn with_nothing_kept_a_new_certificate_is_kept_before_it_is_published() {
    let chain = FakeChain::new(&owner());
    let store = MemoryStore::new(&chain);
    let (kept, serial) = ensure(&chain, &store, &client(), &refuse())
        .await
        .expect("made");
    let sent = chain.broadcast_msgs::<MsgCreateCertificate>();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].cert, kept.cert_pem.as_bytes());
    assert_eq!(sent[0].owner, chain.address());
    assert_eq!(store.kept_cert().as_deref(), Some(kept.cert_pem.as_str()));
    assert_eq!(
        *store.published_at_save.lock().unwrap(),
        vec![0],
        "kept first"
    );
    let der = CertificateDer::from_pem_slice(kept.cert_pem.as_bytes()).unwrap();
    assert_eq!(
        chain_client::cert::claimed_identity(&der).unwrap().serial,
        serial
    );
}

#[tokio::test]
async fn a_kept_certificate_the_chain_holds_as_valid_is_used_without_a_transaction() {
    let chain = FakeChain::new(&owner());
    let store = MemoryStore::new(&chain);
    // A provider's (server) certificate: its serial is read from it as from a tenant's.
    let server = CertificateRole::Server {
        dns_names: vec!["provider.example".into()],
    };
    let pair =
        chain_client::cert::generate(chain.address(), &server, Duration::from_secs(3600)).unwrap();
    keep(&store, &pair);
    on_chain(&chain, &pair, State::Valid);
    let (kept, serial) = ensure(&chain, &store, &client(), &refuse())
        .await
        .expect("used");
    assert_eq!(serial, pair.serial);
    assert_eq!(kept.cert_pem, pair.cert_pem);
    assert!(chain.state().broadcasts.is_empty());
    assert!(store.published_at_save.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_kept_certificate_the_chain_does_not_know_is_published_as_it_is() {
    // A crash between keeping and publishing.
    let chain = FakeChain::new(&owner());
    let store = MemoryStore::new(&chain);
    let pair = chain_client::cert::generate(
        chain.address(),
        &CertificateRole::Client,
        Duration::from_secs(3600),
    )
    .unwrap();
    keep(&store, &pair);
    let (_, serial) = ensure(&chain, &store, &client(), &refuse())
        .await
        .expect("published");
    assert_eq!(serial, pair.serial);
    let sent = chain.broadcast_msgs::<MsgCreateCertificate>();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].cert, pair.cert_pem.as_bytes());
    assert_eq!(
        sent[0].pubkey,
        pair.pubkey_pem.as_bytes(),
        "the chain's public key form"
    );
    assert!(
        store.published_at_save.lock().unwrap().is_empty(),
        "nothing new kept"
    );
}

#[tokio::test]
async fn a_revoked_certificate_is_replaced_when_asked_to() {
    let chain = FakeChain::new(&owner());
    let store = MemoryStore::new(&chain);
    let pair = chain_client::cert::generate(
        chain.address(),
        &CertificateRole::Client,
        Duration::from_secs(3600),
    )
    .unwrap();
    keep(&store, &pair);
    on_chain(&chain, &pair, State::Revoked);
    let (kept, serial) = ensure(&chain, &store, &client(), &WhenRevoked::MakeNew)
        .await
        .expect("replaced");
    assert_ne!(serial, pair.serial);
    assert_ne!(kept.cert_pem, pair.cert_pem);
    assert_eq!(store.kept_cert().as_deref(), Some(kept.cert_pem.as_str()));
    assert_eq!(chain.broadcast_msgs::<MsgCreateCertificate>().len(), 1);
}

#[tokio::test]
async fn a_revoked_certificate_is_refused_with_the_remedy_and_nothing_changes() {
    let chain = FakeChain::new(&owner());
    let store = MemoryStore::new(&chain);
    let pair = chain_client::cert::generate(
        chain.address(),
        &CertificateRole::Client,
        Duration::from_secs(3600),
    )
    .unwrap();
    keep(&store, &pair);
    on_chain(&chain, &pair, State::Revoked);
    let err = ensure(&chain, &store, &client(), &refuse())
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, CertificateError::Revoked { .. }), "{text}");
    assert!(
        text.contains(&pair.serial) && text.contains("delete Secret x"),
        "{text}"
    );
    assert_eq!(store.kept_cert().as_deref(), Some(pair.cert_pem.as_str()));
    assert!(chain.state().broadcasts.is_empty());
}

#[tokio::test]
async fn a_failed_publication_keeps_the_new_certificate_for_the_next_try() {
    let chain = FakeChain::new(&owner());
    let store = MemoryStore::new(&chain);
    chain.fail_next_broadcast(chain_client::ChainError::Transport("down".into()));
    let err = ensure(&chain, &store, &client(), &refuse())
        .await
        .expect_err("the broadcast failed");
    assert!(matches!(err, CertificateError::Chain(_)), "{err}");
    let first = store.kept_cert().expect("kept before publishing");
    let (kept, _) = ensure(&chain, &store, &client(), &refuse())
        .await
        .expect("published on the next try");
    assert_eq!(
        kept.cert_pem, first,
        "the same certificate, not a second one"
    );
    assert_eq!(
        chain.broadcast_msgs::<MsgCreateCertificate>()[0].cert,
        first.as_bytes()
    );
}

#[tokio::test]
async fn a_kept_certificate_that_is_not_pem_is_named_unusable() {
    let chain = FakeChain::new(&owner());
    let store = MemoryStore::new(&chain);
    *store.kept.lock().unwrap() = Some(("garbage".into(), "key".into()));
    let err = ensure(&chain, &store, &client(), &WhenRevoked::MakeNew)
        .await
        .expect_err("unusable");
    assert!(matches!(err, CertificateError::Unusable(_)), "{err}");
    assert!(chain.state().broadcasts.is_empty());
}
