//! The Akash audit module: `MsgSignProviderAttributes`, `MsgDeleteProviderAttributes` and the
//! `akash.audit.v1.Query` service. An auditor signs attributes for a provider (the attributes a
//! group's `signed_by` requirement trusts); both messages are signed by the auditor.
//!
//! As the Go keeper does: signing merges the new attributes into the auditor's earlier ones for
//! that provider (a key signed again takes the new value) and keeps them sorted by key; deleting
//! with no keys removes the auditor's entry for the provider, otherwise each key must exist and an
//! entry left without attributes is removed. Events: `akash.audit.v1.EventTrustedAuditorCreated`
//! on every signing, `EventTrustedAuditorDeleted` on every deletion, each `{owner, auditor}`.
//!
//! Errors are the audit module's (codespace `audit`): 1 invalid provider: address not found (no
//! entry of this auditor for this provider), 3 attribute not found. An owner or auditor that is
//! not an address is the SDK's 7 (invalid address).
//!
//! Queries: `AllProvidersAttributes` and `AuditorAttributes` are paginated; `ProviderAttributes`
//! (every auditor's entry for a provider) and `ProviderAuditorAttributes` answer `NOT_FOUND` when
//! there is none, without pagination, as the Go chain. One divergence: the Go chain's
//! `AuditorAttributes` ignores its auditor and lists every entry; the devnet lists that auditor's.

use std::collections::BTreeMap;

use chain_client::akash::audit::v1 as av1;
use chain_client::akash::base::attributes::v1::Attribute;
use prost::Name;
use serde_json::json;
use tonic::{Request, Response, Status};

use crate::ante::SdkError;
use crate::events::{Event, type_url};
use crate::grpc_akash::{AkashQueries, paginate};
use crate::state::{Proto, State, keys};

fn err(code: u32, reason: &str, detail: impl std::fmt::Display) -> SdkError {
    let detail = detail.to_string();
    SdkError {
        code,
        codespace: "audit",
        log: if detail.is_empty() {
            reason.to_owned()
        } else {
            format!("{detail}: {reason}")
        },
    }
}

const PROVIDER_NOT_FOUND: &str = "invalid provider: address not found";

fn validate(owner: &str, auditor: &str) -> Result<(), SdkError> {
    if crate::bank::validate_address(owner, "owner").is_err() {
        return Err(SdkError::invalid_address(
            "MsgCreate: Invalid Owner Address",
        ));
    }
    if crate::bank::validate_address(auditor, "auditor").is_err() {
        return Err(SdkError::invalid_address(
            "MsgCreate: Invalid Auditor Address",
        ));
    }
    Ok(())
}

fn events(action: &str, kind: &str, owner: &str, auditor: &str, msg_index: usize) -> Vec<Event> {
    let idx = msg_index.to_string();
    vec![
        Event::new("message")
            .attr("action", action)
            .attr("sender", auditor)
            .attr("module", "audit")
            .attr("msg_index", idx.clone()),
        Event::typed(kind, &json!({"owner": owner, "auditor": auditor})).attr("msg_index", idx),
    ]
}

fn sorted(kv: BTreeMap<String, String>) -> Vec<Attribute> {
    kv.into_iter()
        .map(|(key, value)| Attribute { key, value })
        .collect()
}

/// Executes `MsgSignProviderAttributes` (signed by the auditor).
pub fn sign(
    state: &mut State,
    msg: &av1::MsgSignProviderAttributes,
    msg_index: usize,
) -> Result<Vec<Event>, SdkError> {
    validate(&msg.owner, &msg.auditor)?;
    let key = keys::audited(&msg.owner, &msg.auditor);
    let mut kv: BTreeMap<String, String> = state
        .audited_providers
        .get(&key)
        .map(|p| {
            p.0.attributes
                .iter()
                .map(|a| (a.key.clone(), a.value.clone()))
                .collect()
        })
        .unwrap_or_default();
    for a in &msg.attributes {
        kv.insert(a.key.clone(), a.value.clone());
    }
    state.audited_providers.insert(
        key,
        Proto(av1::AuditedProvider {
            owner: msg.owner.clone(),
            auditor: msg.auditor.clone(),
            attributes: sorted(kv),
        }),
    );
    Ok(events(
        &type_url::<av1::MsgSignProviderAttributes>(),
        &av1::EventTrustedAuditorCreated::full_name(),
        &msg.owner,
        &msg.auditor,
        msg_index,
    ))
}

/// Executes `MsgDeleteProviderAttributes` (signed by the auditor): the listed keys, or every
/// attribute when none is listed.
pub fn delete(
    state: &mut State,
    msg: &av1::MsgDeleteProviderAttributes,
    msg_index: usize,
) -> Result<Vec<Event>, SdkError> {
    validate(&msg.owner, &msg.auditor)?;
    let key = keys::audited(&msg.owner, &msg.auditor);
    let existing = state
        .audited_providers
        .get(&key)
        .map(|p| p.0.clone())
        .ok_or_else(|| err(1, PROVIDER_NOT_FOUND, ""))?;
    if msg.keys.is_empty() {
        state.audited_providers.remove(&key);
    } else {
        let mut kv: BTreeMap<String, String> = existing
            .attributes
            .into_iter()
            .map(|a| (a.key, a.value))
            .collect();
        for k in &msg.keys {
            if kv.remove(k).is_none() {
                return Err(err(
                    3,
                    "attribute not found",
                    format!(
                        "trying to delete non-existing attribute {k:?} for auditor/provider \"{}/{}\"",
                        msg.auditor, msg.owner
                    ),
                ));
            }
        }
        if kv.is_empty() {
            state.audited_providers.remove(&key);
        } else if let Some(p) = state.audited_providers.get_mut(&key) {
            p.0.attributes = sorted(kv);
        }
    }
    Ok(events(
        &type_url::<av1::MsgDeleteProviderAttributes>(),
        &av1::EventTrustedAuditorDeleted::full_name(),
        &msg.owner,
        &msg.auditor,
        msg_index,
    ))
}

/// Every auditor's entry for `owner`, in auditor order.
pub fn provider_entries(state: &State, owner: &str) -> Vec<av1::AuditedProvider> {
    let prefix = format!("{owner}/");
    state
        .audited_providers
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(_, p)| p.0.clone())
        .collect()
}

#[allow(clippy::result_large_err)] // tonic's `Status`, as every handler returns.
fn address(value: &str) -> Result<(), Status> {
    crate::bank::validate_address(value, "address")
        .map_err(|_| Status::invalid_argument("invalid address"))
}

fn providers(providers: Vec<av1::AuditedProvider>) -> Response<av1::QueryProvidersResponse> {
    Response::new(av1::QueryProvidersResponse {
        providers,
        pagination: None,
    })
}

#[tonic::async_trait]
impl av1::query_server::Query for AkashQueries {
    async fn all_providers_attributes(
        &self,
        request: Request<av1::QueryAllProvidersAttributesRequest>,
    ) -> Result<Response<av1::QueryProvidersResponse>, Status> {
        let all = self.node().with_state(|s| {
            s.audited_providers
                .values()
                .map(|p| p.0.clone())
                .collect::<Vec<_>>()
        });
        let (providers, pagination) = paginate(all, request.into_inner().pagination)?;
        Ok(Response::new(av1::QueryProvidersResponse {
            providers,
            pagination,
        }))
    }

    async fn provider_attributes(
        &self,
        request: Request<av1::QueryProviderAttributesRequest>,
    ) -> Result<Response<av1::QueryProvidersResponse>, Status> {
        let owner = request.into_inner().owner;
        address(&owner)?;
        let found = self.node().with_state(|s| provider_entries(s, &owner));
        if found.is_empty() {
            return Err(Status::not_found(PROVIDER_NOT_FOUND));
        }
        Ok(providers(found))
    }

    async fn provider_auditor_attributes(
        &self,
        request: Request<av1::QueryProviderAuditorRequest>,
    ) -> Result<Response<av1::QueryProvidersResponse>, Status> {
        let req = request.into_inner();
        address(&req.owner)?;
        address(&req.auditor)?;
        let found = self
            .node()
            .with_state(|s| {
                s.audited_providers
                    .get(&keys::audited(&req.owner, &req.auditor))
                    .map(|p| p.0.clone())
            })
            .ok_or_else(|| Status::not_found(PROVIDER_NOT_FOUND))?;
        Ok(providers(vec![found]))
    }

    async fn auditor_attributes(
        &self,
        request: Request<av1::QueryAuditorAttributesRequest>,
    ) -> Result<Response<av1::QueryProvidersResponse>, Status> {
        let req = request.into_inner();
        address(&req.auditor)?;
        let all = self.node().with_state(|s| {
            s.audited_providers
                .values()
                .filter(|p| p.0.auditor == req.auditor)
                .map(|p| p.0.clone())
                .collect::<Vec<_>>()
        });
        let (providers, pagination) = paginate(all, req.pagination)?;
        Ok(Response::new(av1::QueryProvidersResponse {
            providers,
            pagination,
        }))
    }
}

#[cfg(test)]
mod tests;
