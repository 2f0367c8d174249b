//! Test vectors from chain-sdk's `testdata/jwt` (tokens of a known test account, made by the Go
//! and TypeScript signers), and tokens minted here.

use chain_client::fake::FakeChain;
use chain_client::keys::{Key, Mnemonic};
use chain_client::transport::AccountInfo;
use serde_json::json;

use super::*;

const MNEMONIC: &str = "addict worth drip violin note olive final pelican perfect feel goat game horror brass fence deposit dutch improve setup stuff frost spirit smart alien";
const ADDRESS: &str = "akash1qufa3xzrf34qvwyejkhvnc4psf49fftaw0asmh";
const PUBKEY_HEX: &str = "03e1fde5cc17f56501ed53d87718df76c135b9a6401dceb53d198111a1eaf85f76";

/// ES256K, full access, valid until 2034.
const GO_TOKEN: &str = "eyJhbGciOiJFUzI1NksiLCJ0eXAiOiJKV1QifQ.eyJpc3MiOiJha2FzaDFxdWZhM3h6cmYzNHF2d3llamtodm5jNHBzZjQ5ZmZ0YXcwYXNtaCIsImV4cCI6MjA0NjY2NzEwMywibmJmIjoxNzQ2NjY2MTAzLCJpYXQiOjE3NDY2NjYxMDMsInZlcnNpb24iOiJ2MSIsImxlYXNlcyI6eyJhY2Nlc3MiOiJmdWxsIn19.MZr8b9Q-hcnAUAFbdAVcZpetppP0YDFxJwkRncgE8mEM20woFB2yJuFbfv6YMAUZk8DNORoLaP8hUP8q2FnznQ";
/// ES256KADR36 (the TypeScript SDK's), scoped, expired in 2025.
const TS_TOKEN: &str = "eyJhbGciOiJFUzI1NktBRFIzNiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJha2FzaDFxdWZhM3h6cmYzNHF2d3llamtodm5jNHBzZjQ5ZmZ0YXcwYXNtaCIsImV4cCI6MTc2MDQwNjc0MCwibmJmIjoxNzYwNDA0OTQwLCJpYXQiOjE3NjA0MDQ5NDAsInZlcnNpb24iOiJ2MSIsImxlYXNlcyI6eyJhY2Nlc3MiOiJzY29wZWQiLCJzY29wZSI6WyJzdGF0dXMiLCJzaGVsbCIsImV2ZW50cyIsImxvZ3MiXX19.dl8m8L0kExz2CCXvDXY65L0F3G7T21Zk5zfK_Ld78owfZrQbtNQW-FSsLtER2PFBwkEAgXgtrxl3kfImrEGLeg";

fn pubkey() -> Vec<u8> {
    data_encoding::HEXLOWER
        .decode(PUBKEY_HEX.as_bytes())
        .unwrap()
}

fn key() -> Key {
    Key::from_mnemonic(&Mnemonic::from_phrase(MNEMONIC).unwrap()).unwrap()
}

fn chain_with(address: &str, pub_key: Option<Vec<u8>>) -> Arc<FakeChain> {
    let chain = FakeChain::new("akash1provider");
    chain.state().accounts.insert(
        address.to_owned(),
        AccountInfo {
            address: address.to_owned(),
            account_number: 1,
            sequence: 1,
            pub_key,
        },
    );
    Arc::new(chain)
}

#[test]
fn the_go_and_typescript_signers_tokens_verify() {
    let go = parse(GO_TOKEN).unwrap();
    assert_eq!(go.algorithm, Algorithm::Es256k);
    assert!(signature_valid(&go, ADDRESS, &pubkey()));
    let ts = parse(TS_TOKEN).unwrap();
    assert_eq!(ts.algorithm, Algorithm::Es256kAdr36);
    assert!(signature_valid(&ts, ADDRESS, &pubkey()));
    // ADR-36 binds the signer: the same signature for another address is not valid.
    assert!(!signature_valid(&ts, "akash1other", &pubkey()));
    // The mnemonic gives the key the chain would hold.
    assert_eq!(key().public_key().to_bytes(), pubkey());
    assert_eq!(key().address().to_string(), ADDRESS);
}

#[test]
fn a_changed_payload_a_high_s_twin_and_another_key_are_refused() {
    let parts: Vec<&str> = GO_TOKEN.split('.').collect();
    // One claim changed: the signature no longer matches.
    let mut claims: serde_json::Value =
        serde_json::from_slice(&BASE64URL_NOPAD.decode(parts[1].as_bytes()).unwrap()).unwrap();
    claims["leases"] = json!({"access": "full", "extra": 1});
    claims["iss"] = json!(ADDRESS);
    claims["exp"] = json!(2046667104);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        BASE64URL_NOPAD.encode(claims.to_string().as_bytes()),
        parts[2]
    );
    assert!(!signature_valid(
        &parse(&forged).unwrap(),
        ADDRESS,
        &pubkey()
    ));
    // The same signature with s replaced by n - s verifies mathematically but is refused.
    let sig = Signature::from_slice(&BASE64URL_NOPAD.decode(parts[2].as_bytes()).unwrap()).unwrap();
    let (r, s) = sig.split_scalars();
    let high = Signature::from_scalars(r, -*s).unwrap();
    let twin = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        BASE64URL_NOPAD.encode(&high.to_bytes())
    );
    assert!(!signature_valid(&parse(&twin).unwrap(), ADDRESS, &pubkey()));
    // Another account's key.
    let other = Key::random("akash").unwrap().public_key().to_bytes();
    assert!(!signature_valid(&parse(GO_TOKEN).unwrap(), ADDRESS, &other));
}

#[test]
fn malformed_tokens_are_401_and_bad_headers_400() {
    let parts: Vec<&str> = GO_TOKEN.split('.').collect();
    let none_alg = format!(
        "{}.{}.{}",
        BASE64URL_NOPAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        parts[1],
        parts[2]
    );
    let der = format!("{}.{}.MEQCIA", parts[0], parts[1]);
    let padded = format!("{}.{}.{}==", parts[0], parts[1], parts[2]);
    for token in [
        "",
        "a.b",
        "a.b.c.d",
        none_alg.as_str(),
        der.as_str(),
        padded.as_str(),
        &"x".repeat(MAX_TOKEN + 1),
    ] {
        assert!(
            matches!(parse(token), Err(Rejection::Unauthenticated(_))),
            "{token:.40}"
        );
    }
    assert_eq!(bearer("Bearer abc").unwrap(), "abc");
    assert_eq!(bearer("bearer  abc").unwrap(), "abc");
    for header in ["abc", "Basic abc", "Bearer a b", "Bearer"] {
        assert!(
            matches!(bearer(header), Err(Rejection::Malformed(_))),
            "{header}"
        );
    }
}

#[tokio::test]
async fn a_token_verifies_with_the_issuers_key_on_chain_and_not_without_it() {
    let verifier = TokenVerifier::new(
        chain_with(ADDRESS, Some(pubkey())),
        "akash",
        Duration::from_secs(60),
    );
    let claims = verifier.verify(GO_TOKEN).await.unwrap();
    assert_eq!(claims.issuer, ADDRESS);
    assert_eq!(claims.access, Access::Full);
    // The TypeScript token's signature is good; its time is over.
    let Err(Rejection::Unauthenticated(why)) = verifier.verify(TS_TOKEN).await else {
        panic!("an expired token was accepted");
    };
    assert!(why.contains("expired"), "{why}");
    // An account that never signed a transaction has no key: no token of it is valid.
    let keyless = TokenVerifier::new(chain_with(ADDRESS, None), "akash", Duration::from_secs(60));
    assert!(matches!(
        keyless.verify(GO_TOKEN).await,
        Err(Rejection::Unauthenticated(_))
    ));
    let unknown = TokenVerifier::new(
        Arc::new(FakeChain::new("akash1provider")),
        "akash",
        Duration::from_secs(60),
    );
    assert!(matches!(
        unknown.verify(GO_TOKEN).await,
        Err(Rejection::Unauthenticated(_))
    ));
}

#[tokio::test]
async fn a_minted_token_is_its_accounts_and_claims_another_account_in_vain() {
    let me = Key::random("akash").unwrap();
    let victim = Key::random("akash").unwrap();
    let chain = chain_with(me.address().as_ref(), Some(me.public_key().to_bytes()));
    chain.state().accounts.insert(
        victim.address().to_string(),
        AccountInfo {
            address: victim.address().to_string(),
            account_number: 2,
            sequence: 1,
            pub_key: Some(victim.public_key().to_bytes()),
        },
    );
    let verifier = TokenVerifier::new(chain, "akash", Duration::from_secs(60));
    let token = mint_full(&me, Duration::from_secs(60)).unwrap();
    assert_eq!(
        verifier.verify(&token).await.unwrap().issuer,
        me.address().to_string()
    );
    // Signed by me, naming the victim as issuer: refused.
    let now = now() as i64;
    let forged = mint(
        &me,
        &json!({"iss": victim.address().to_string(), "iat": now, "nbf": now, "exp": now + 60,
                "version": "v1", "leases": {"access": "full"}}),
    )
    .unwrap();
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(Rejection::Unauthenticated(_))
    ));
    // An issuer of another chain's prefix.
    let cosmos = mint(
        &me,
        &json!({"iss": "cosmos1qufa3xzrf34qvwyejkhvnc4psf49fftaqh8nnh", "iat": now, "nbf": now,
                "exp": now + 60, "version": "v1", "leases": {"access": "full"}}),
    )
    .unwrap();
    assert!(verifier.verify(&cosmos).await.is_err());
}
