//! Tenants without a certificate authenticate with a token (JWT, AEP-63/64), as Akash Console
//! does: signed with the account's own secp256k1 key, `ES256K` over the JWS signing input or
//! `ES256KADR36` over an ADR-36 sign document of it (what Keplr, Leap and the official SDK
//! produce), the signature 64 bytes `r‖s` in low-S form. The key is the issuer account's public
//! key on chain (an account that never signed a transaction has none, and cannot use tokens).
//!
//! A token comes as `Authorization: Bearer <token>` on REST routes and in the `authorization`
//! metadata of gRPC calls; with a client certificate as well it is refused, as the Go provider
//! refuses it (ambiguous).

pub(crate) mod claims;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chain_client::Chain;
use data_encoding::{BASE64, BASE64URL_NOPAD};
use k256::ecdsa::signature::Verifier as _;
use k256::ecdsa::{Signature, VerifyingKey};
use tokio::sync::Semaphore;

pub(crate) use claims::{Access, Claims};
pub use claims::{Scope, Target};

use super::accept::Rejection;

/// Longest token accepted (Console's are well under 2 KiB).
pub(crate) const MAX_TOKEN: usize = 8 * 1024;
/// Account keys kept, at most; a key never changes once on chain.
const CACHE_MAX: usize = 10_000;
/// Chain lookups of account keys running at once, at most.
const MAX_LOOKUPS: usize = 16;

/// How a token is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Es256k,
    Es256kAdr36,
}

/// A token taken apart, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) algorithm: Algorithm,
    /// `header.payload`, as signed.
    pub(crate) signing_input: String,
    pub(crate) claims: claims::RawClaims,
    pub(crate) signature: [u8; 64],
}

fn invalid(why: &str) -> Rejection {
    Rejection::Unauthenticated(format!("JWT is invalid: {why}"))
}

/// Splits and decodes `token` (compact JWS); what is not a well-formed token of an accepted
/// algorithm is refused (401).
pub(crate) fn parse(token: &str) -> Result<Parsed, Rejection> {
    if token.len() > MAX_TOKEN {
        return Err(invalid("longer than accepted"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not three dot-separated parts"));
    };
    let decode = |part: &str, what: &str| {
        BASE64URL_NOPAD
            .decode(part.as_bytes())
            .map_err(|_| invalid(&format!("the {what} is not base64url")))
    };
    #[derive(serde::Deserialize)]
    struct Header {
        alg: String,
    }
    let head: Header = serde_json::from_slice(&decode(header, "header")?)
        .map_err(|_| invalid("the header is not a JWT header"))?;
    let algorithm = match head.alg.as_str() {
        "ES256K" => Algorithm::Es256k,
        "ES256KADR36" => Algorithm::Es256kAdr36,
        other => return Err(invalid(&format!("algorithm {other:?} is not accepted"))),
    };
    let claims = serde_json::from_slice(&decode(payload, "payload")?)
        .map_err(|e| invalid(&format!("the claims do not decode: {e}")))?;
    let signature: [u8; 64] = decode(signature, "signature")?
        .try_into()
        .map_err(|_| invalid("the signature is not 64 bytes"))?;
    Ok(Parsed {
        algorithm,
        signing_input: format!("{header}.{payload}"),
        claims,
        signature,
    })
}

/// The ADR-36 document a wallet signs for `data` on behalf of `signer` (compact JSON, keys
/// sorted, as amino signs it).
pub(crate) fn adr36_document(signer: &str, data: &[u8]) -> Vec<u8> {
    serde_json::json!({
        "account_number": "0",
        "chain_id": "",
        "fee": {"amount": [], "gas": "0"},
        "memo": "",
        "msgs": [{
            "type": "sign/MsgSignData",
            "value": {"data": BASE64.encode(data), "signer": signer},
        }],
        "sequence": "0",
    })
    .to_string()
    .into_bytes()
}

/// Whether `signature` (r‖s, low-S) is `public_key`'s over the token, for issuer `issuer`.
pub(crate) fn signature_valid(parsed: &Parsed, issuer: &str, public_key: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_sec1_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(&parsed.signature) else {
        return false;
    };
    // High-S is refused, as the chain refuses it: one signature, one token.
    if signature.normalize_s().is_some() {
        return false;
    }
    let message = match parsed.algorithm {
        Algorithm::Es256k => parsed.signing_input.as_bytes().to_vec(),
        Algorithm::Es256kAdr36 => adr36_document(issuer, parsed.signing_input.as_bytes()),
    };
    key.verify(&message, &signature).is_ok()
}

/// Seconds since the epoch, now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// Checks tokens: their signature with the issuer's key from the chain (cached), then their
/// claims.
pub(crate) struct TokenVerifier {
    chain: Arc<dyn Chain>,
    prefix: String,
    keys: Mutex<HashMap<String, Vec<u8>>>,
    /// Issuers found without a key, and when: not asked again for `refusal_ttl`.
    missing: Mutex<HashMap<String, Instant>>,
    refusal_ttl: Duration,
    lookups: Semaphore,
}

impl TokenVerifier {
    pub(crate) fn new(chain: Arc<dyn Chain>, prefix: &str, refusal_ttl: Duration) -> Self {
        Self {
            chain,
            prefix: prefix.to_owned(),
            keys: Mutex::default(),
            missing: Mutex::default(),
            refusal_ttl,
            lookups: Semaphore::new(MAX_LOOKUPS),
        }
    }

    /// The valid claims of `token`: 401 when it is not a token signed by its issuer's key, 401
    /// when its claims are not valid now (expired, not yet valid, malformed access).
    pub(crate) async fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        let parsed = parse(token)?;
        let issuer = parsed
            .claims
            .iss
            .clone()
            .ok_or_else(|| invalid("no issuer"))?;
        let valid_address = issuer
            .parse::<cosmrs::AccountId>()
            .is_ok_and(|a| a.prefix() == self.prefix);
        if !valid_address {
            return Err(invalid("the issuer is not an account address"));
        }
        let key = self.key_of(&issuer).await?;
        if !signature_valid(&parsed, &issuer, &key) {
            return Err(invalid("the signature is not the issuer's"));
        }
        Claims::validate(parsed.claims, now())
            .map_err(|e| Rejection::Unauthenticated(format!("JWT has invalid claims: {e}")))
    }

    async fn key_of(&self, issuer: &str) -> Result<Vec<u8>, Rejection> {
        if let Some(key) = self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(issuer)
        {
            return Ok(key.clone());
        }
        {
            let mut missing = self.missing.lock().unwrap_or_else(|p| p.into_inner());
            if missing
                .get(issuer)
                .is_some_and(|at| at.elapsed() < self.refusal_ttl)
            {
                return Err(invalid("the issuer has no public key on chain"));
            }
            if missing.len() >= CACHE_MAX {
                missing.clear();
            }
        }
        let _permit = self
            .lookups
            .acquire()
            .await
            .map_err(|_| Rejection::Unavailable("the gateway is stopping".into()))?;
        let key = match self.chain.account(issuer).await {
            Ok(account) => account.pub_key,
            Err(e) if e.to_string().contains("not found") => None,
            Err(e) => {
                return Err(Rejection::Unavailable(format!(
                    "the issuer's account could not be read: {e}"
                )));
            }
        };
        let Some(key) = key else {
            self.missing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(issuer.to_owned(), Instant::now());
            return Err(invalid("the issuer has no public key on chain"));
        };
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= CACHE_MAX {
            keys.clear();
        }
        keys.insert(issuer.to_owned(), key.clone());
        Ok(key)
    }
}

/// A token for `claims` (a JSON object), signed `ES256K` with `key`: what `tenant` commands send
/// with `--jwt`, and what tests make.
pub fn mint(key: &chain_client::keys::Key, claims: &serde_json::Value) -> anyhow::Result<String> {
    let header = BASE64URL_NOPAD.encode(br#"{"alg":"ES256K","typ":"JWT"}"#);
    let payload = BASE64URL_NOPAD.encode(serde_json::to_string(claims)?.as_bytes());
    let input = format!("{header}.{payload}");
    let signature = key.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", BASE64URL_NOPAD.encode(&signature)))
}

/// A `full`-access token of `key`'s account for `lifetime` from now.
pub(crate) fn mint_full(
    key: &chain_client::keys::Key,
    lifetime: Duration,
) -> anyhow::Result<String> {
    let now = now() as i64;
    mint(
        key,
        &serde_json::json!({
            "iss": key.address().to_string(),
            "iat": now,
            "nbf": now,
            "exp": now + lifetime.as_secs() as i64,
            "version": "v1",
            "leases": {"access": "full"},
        }),
    )
}

/// The token of an `Authorization` header value: `Bearer <token>` (any case); anything else is a
/// 400, as in the Go provider.
pub(crate) fn bearer(header: &str) -> Result<&str, Rejection> {
    let mut fields = header.split_whitespace();
    match (fields.next(), fields.next(), fields.next()) {
        (Some(kind), Some(token), None) if kind.eq_ignore_ascii_case("bearer") => Ok(token),
        _ => Err(Rejection::Malformed("invalid authorization header".into())),
    }
}

#[cfg(test)]
mod tests;
