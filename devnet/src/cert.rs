//! The Akash cert module: `MsgCreateCertificate`, `MsgRevokeCertificate` and the
//! `akash.cert.v1.Query/Certificates` query.
//!
//! A certificate is published by its owner as PEM "CERTIFICATE" plus PEM "EC PUBLIC KEY"; the
//! chain keys it by (owner, serial), the serial being the certificate's serial number as a decimal
//! big integer. It is `valid` until its owner revokes it (`revoked`, for good). As on the Go chain
//! the module emits no typed event, only the `message` event.
//!
//! Errors are the cert module's (codespace `cert`, `x/cert` of the Go chain): 1 certificate not
//! found, 3 certificate exists (same owner and serial), 4 certificate already revoked, 5 invalid
//! serial number, 6 invalid certificate value (not one PEM "CERTIFICATE" block, not X.509, or a
//! subject common name that is not the owner's address), 7 invalid pubkey value (not one PEM
//! "EC PUBLIC KEY" block). An owner that is not an address is the SDK's 7 (invalid address). One
//! divergence: where X.509 parsing itself fails the Go chain returns the parser's unregistered
//! error (codespace `undefined`, code 1); the devnet answers 6.

use chain_client::akash::cert::v1 as cv1;
use cosmos_sdk_proto::cosmos::base::query::v1beta1::PageResponse;
use tonic::{Request, Response, Status};

use crate::ante::SdkError;
use crate::events::{Event, type_url};
use crate::grpc_akash::{AkashQueries, paginate};
use crate::state::{Proto, State, keys};

fn err(code: u32, reason: &str, detail: impl std::fmt::Display) -> SdkError {
    let detail = detail.to_string();
    SdkError {
        code,
        codespace: "cert",
        log: if detail.is_empty() {
            reason.to_owned()
        } else {
            format!("{detail}: {reason}")
        },
    }
}

const NOT_FOUND: (u32, &str) = (1, "certificate not found");
const EXISTS: (u32, &str) = (3, "certificate exists");
const ALREADY_REVOKED: (u32, &str) = (4, "certificate already revoked");
const INVALID_SERIAL: (u32, &str) = (5, "invalid serial number");
const INVALID_CERT: (u32, &str) = (6, "invalid certificate value");
const INVALID_PUBKEY: (u32, &str) = (7, "invalid pubkey value");

fn cert_err((code, reason): (u32, &str), detail: impl std::fmt::Display) -> SdkError {
    err(code, reason, detail)
}

/// The signer of a `MsgRevokeCertificate`: the certificate's owner.
pub fn revoke_signer(msg: &cv1::MsgRevokeCertificate) -> &str {
    msg.id.as_ref().map_or("", |id| id.owner.as_str())
}

/// One PEM block, as Go's `pem.Decode` reads it: its label and contents, and whether anything but
/// the end of the line follows it.
struct PemBlock {
    label: String,
    der: Vec<u8>,
    trailing: bool,
}

fn pem_block(bytes: &[u8]) -> Option<PemBlock> {
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.find("-----BEGIN ")?;
    let after = &text[start + "-----BEGIN ".len()..];
    let label_end = after.find("-----")?;
    let label = &after[..label_end];
    let body_and_rest = &after[label_end + "-----".len()..];
    let end_marker = format!("-----END {label}-----");
    let end = body_and_rest.find(&end_marker)?;
    let body: String = body_and_rest[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = data_encoding::BASE64.decode(body.as_bytes()).ok()?;
    let rest = &body_and_rest[end + end_marker.len()..];
    let rest = rest
        .strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
        .unwrap_or(rest);
    Some(PemBlock {
        label: label.to_owned(),
        der,
        trailing: !rest.is_empty(),
    })
}

/// A decimal big integer as Go's `big.Int.SetString(s, 10)` accepts it, in canonical form (no sign
/// for positives, no leading zeros).
pub fn canonical_serial(serial: &str) -> Option<String> {
    let (negative, digits) = match serial.as_bytes().first() {
        Some(b'-') => (true, &serial[1..]),
        Some(b'+') => (false, &serial[1..]),
        _ => (false, serial),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = digits.trim_start_matches('0');
    Some(match (trimmed.is_empty(), negative) {
        (true, _) => "0".to_owned(),
        (false, true) => format!("-{trimmed}"),
        (false, false) => trimmed.to_owned(),
    })
}

/// Executes `MsgCreateCertificate`: checks the PEM blocks and the certificate's common name, and
/// stores it `valid` under (owner, serial).
pub fn create(
    state: &mut State,
    msg: &cv1::MsgCreateCertificate,
    msg_index: usize,
) -> Result<Vec<Event>, SdkError> {
    if crate::bank::validate_address(&msg.owner, "owner").is_err() {
        return Err(SdkError::invalid_address(
            "MsgCreateCertificate: Invalid Owner Address",
        ));
    }
    let pubkey = pem_block(&msg.pubkey)
        .filter(|b| !b.trailing)
        .ok_or_else(|| cert_err(INVALID_PUBKEY, ""))?;
    if pubkey.label != "EC PUBLIC KEY" {
        return Err(cert_err(INVALID_PUBKEY, "invalid pem block type"));
    }
    let cert = pem_block(&msg.cert)
        .filter(|b| !b.trailing)
        .ok_or_else(|| cert_err(INVALID_CERT, ""))?;
    if cert.label != "CERTIFICATE" {
        return Err(cert_err(INVALID_CERT, "invalid pem block type"));
    }
    let claimed = chain_client::cert::claimed_identity(&cert.der).map_err(|e| match e {
        chain_client::cert::CertError::NoAddress => {
            cert_err(INVALID_CERT, "CommonName is not an account address")
        }
        other => cert_err(INVALID_CERT, other),
    })?;
    if claimed.owner != msg.owner {
        return Err(cert_err(INVALID_CERT, "CommonName does not match owner"));
    }
    let serial = canonical_serial(&claimed.serial)
        .ok_or_else(|| cert_err(INVALID_SERIAL, &claimed.serial))?;
    let key = keys::certificate(&msg.owner, &serial);
    if state.certificates.contains_key(&key) {
        return Err(cert_err(EXISTS, ""));
    }
    state.certificates.insert(
        key,
        Proto(cv1::CertificateResponse {
            certificate: Some(cv1::Certificate {
                state: cv1::State::Valid as i32,
                cert: msg.cert.clone(),
                pubkey: msg.pubkey.clone(),
            }),
            serial,
        }),
    );
    Ok(vec![message_event(
        &type_url::<chain_client::akash::cert::v1::MsgCreateCertificate>(),
        &msg.owner,
        msg_index,
    )])
}

/// Executes `MsgRevokeCertificate` (signed by the owner): a valid certificate becomes revoked.
pub fn revoke(
    state: &mut State,
    msg: &cv1::MsgRevokeCertificate,
    msg_index: usize,
) -> Result<Vec<Event>, SdkError> {
    let id = msg.id.clone().unwrap_or_default();
    if crate::bank::validate_address(&id.owner, "owner").is_err() {
        return Err(SdkError::invalid_address(
            "MsgRevoke: Invalid Owner Address",
        ));
    }
    let serial = canonical_serial(&id.serial).ok_or_else(|| cert_err(INVALID_SERIAL, ""))?;
    let entry = state
        .certificates
        .get_mut(&keys::certificate(&id.owner, &serial))
        .and_then(|c| c.0.certificate.as_mut())
        .ok_or_else(|| cert_err(NOT_FOUND, ""))?;
    if entry.state == cv1::State::Revoked as i32 {
        return Err(cert_err(ALREADY_REVOKED, ""));
    }
    entry.state = cv1::State::Revoked as i32;
    Ok(vec![message_event(
        &type_url::<chain_client::akash::cert::v1::MsgRevokeCertificate>(),
        &id.owner,
        msg_index,
    )])
}

fn message_event(action: &str, sender: &str, msg_index: usize) -> Event {
    Event::new("message")
        .attr("action", action)
        .attr("sender", sender)
        .attr("module", "cert")
        .attr("msg_index", msg_index.to_string())
}

/// The certificates a filter selects, as the Go chain reads them: `state` is a state name
/// (`valid`, `revoked`; empty or `invalid` for any); `serial` counts only with `owner`, and then
/// names one certificate (the answer has no pagination).
#[allow(clippy::result_large_err)] // tonic's `Status`, as every handler returns.
pub fn certificates(
    state: &State,
    request: cv1::QueryCertificatesRequest,
) -> Result<cv1::QueryCertificatesResponse, Status> {
    let filter = request.filter.unwrap_or_default();
    let wanted = if filter.state.is_empty() {
        cv1::State::Invalid
    } else {
        cv1::State::from_str_name(&filter.state)
            .ok_or_else(|| Status::invalid_argument("invalid state value"))?
    };
    let state_matches = |c: &cv1::CertificateResponse| {
        wanted == cv1::State::Invalid
            || c.certificate.as_ref().map(|c| c.state) == Some(wanted as i32)
    };
    if filter.owner.is_empty() {
        let all = state
            .certificates
            .values()
            .map(|c| c.0.clone())
            .filter(|c| state_matches(c))
            .collect();
        let (certificates, pagination) = paginate(all, request.pagination)?;
        return Ok(cv1::QueryCertificatesResponse {
            certificates,
            pagination,
        });
    }
    crate::bank::validate_address(&filter.owner, "owner")
        .map_err(|e| Status::invalid_argument(e.log))?;
    if !filter.serial.is_empty() {
        let serial = canonical_serial(&filter.serial)
            .ok_or_else(|| Status::invalid_argument("invalid serial number"))?;
        let certificates = state
            .certificates
            .get(&keys::certificate(&filter.owner, &serial))
            .map(|c| c.0.clone())
            .filter(|c| state_matches(c))
            .into_iter()
            .collect();
        return Ok(cv1::QueryCertificatesResponse {
            certificates,
            pagination: None::<PageResponse>,
        });
    }
    let prefix = format!("{}/", filter.owner);
    let owned = state
        .certificates
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(_, c)| c.0.clone())
        .filter(|c| state_matches(c))
        .collect();
    let (certificates, pagination) = paginate(owned, request.pagination)?;
    Ok(cv1::QueryCertificatesResponse {
        certificates,
        pagination,
    })
}

#[tonic::async_trait]
impl cv1::query_server::Query for AkashQueries {
    async fn certificates(
        &self,
        request: Request<cv1::QueryCertificatesRequest>,
    ) -> Result<Response<cv1::QueryCertificatesResponse>, Status> {
        let request = request.into_inner();
        #[allow(clippy::result_large_err)] // tonic's `Status`, as every handler returns.
        let answer = self.node().with_state(|s| certificates(s, request));
        answer.map(Response::new)
    }
}

#[cfg(test)]
mod tests;
