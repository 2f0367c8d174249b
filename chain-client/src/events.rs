//! Akash events out of CometBFT 0.38 `block_results`.
//!
//! The Cosmos SDK emits typed events (`ctx.EventManager().EmitTypedEvent(msg)`): the event type is
//! the message's full protobuf name (`akash.market.v1.EventLeaseCreated`) and there is one
//! attribute per top-level field, whose value is that field's protobuf-JSON (original field names,
//! 64-bit integers as JSON strings, enums by name, bytes as base64, `LegacyDec` as a decimal
//! string). `sdk.ParseTypedEvent` reverses it; so does [`decode_event`]. The SDK also adds
//! attributes of its own (`msg_index`, `mode`), which are ignored.
//!
//! Events come from two places of a block: `finalize_block_events` (begin/end block, e.g. leases
//! closed for insufficient funds) and each successful transaction's `events`. Failed
//! transactions change nothing, so their events are skipped.

use serde::Deserialize;
use serde_json::Value;

use crate::akash::deployment::v1 as dv1;
use crate::akash::market::v1 as mv1;
use crate::akash::provider::v1beta4 as pv1;
use crate::error::ChainError;
use cosmos_sdk_proto::cosmos::base::v1beta1::DecCoin;

/// The Akash events the provider and the tenant controller react to.
#[derive(Debug, Clone, PartialEq)]
pub enum AkashEvent {
    OrderCreated(mv1::EventOrderCreated),
    OrderClosed(mv1::EventOrderClosed),
    BidCreated(mv1::EventBidCreated),
    BidClosed(mv1::EventBidClosed),
    LeaseCreated(mv1::EventLeaseCreated),
    LeaseClosed(mv1::EventLeaseClosed),
    LeaseReclaimStarted(mv1::EventLeaseReclaimStarted),
    DeploymentCreated(dv1::EventDeploymentCreated),
    DeploymentUpdated(dv1::EventDeploymentUpdated),
    DeploymentClosed(dv1::EventDeploymentClosed),
    GroupStarted(dv1::EventGroupStarted),
    GroupPaused(dv1::EventGroupPaused),
    GroupClosed(dv1::EventGroupClosed),
    ProviderCreated(pv1::EventProviderCreated),
    ProviderUpdated(pv1::EventProviderUpdated),
    ProviderDeleted(pv1::EventProviderDeleted),
    /// `owner` published a certificate. The cert module emits no typed event; this is read from
    /// the SDK's `message` event of a `MsgCreateCertificate`, whose sender is the owner.
    CertificateCreated {
        owner: String,
    },
    /// `owner` revoked a certificate (`MsgRevokeCertificate`, signed by the owner; read from the
    /// `message` event as above, which does not say which serial).
    CertificateRevoked {
        owner: String,
    },
}

/// The Akash events of one block, in the order the chain emitted them.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockEvents {
    pub height: u64,
    pub events: Vec<AkashEvent>,
}

/// One ABCI event as CometBFT's JSON-RPC shows it (0.38: attributes are plain strings).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AbciEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub attributes: Vec<AbciAttribute>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AbciAttribute {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

/// One transaction's result inside `block_results`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AbciTxResult {
    #[serde(default)]
    pub code: u32,
    #[serde(default)]
    pub events: Vec<AbciEvent>,
}

/// The `result` of CometBFT 0.38 `block_results`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct BlockResults {
    #[serde(deserialize_with = "de_u64_string")]
    pub height: u64,
    #[serde(default, deserialize_with = "de_null_as_empty")]
    pub txs_results: Vec<AbciTxResult>,
    #[serde(default, deserialize_with = "de_null_as_empty")]
    pub finalize_block_events: Vec<AbciEvent>,
}

fn de_u64_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    json_u64(&v).map_err(serde::de::Error::custom)
}

fn de_null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Decodes every Akash event of a block: transactions first, in order, then the
/// `finalize_block_events` (CometBFT lists begin-block events there too; the SDK's own
/// `mode` attribute tells them apart, which the provider does not need).
pub fn decode_block_results(results: &BlockResults) -> Result<BlockEvents, ChainError> {
    let tx_events = results
        .txs_results
        .iter()
        .filter(|tx| tx.code == 0)
        .flat_map(|tx| tx.events.iter());
    let mut events = Vec::new();
    for ev in tx_events.chain(results.finalize_block_events.iter()) {
        if let Some(decoded) = decode_event(ev).map_err(|e| {
            ChainError::Decode(format!("{} at height {}: {e}", ev.kind, results.height))
        })? {
            events.push(decoded);
        }
    }
    Ok(BlockEvents {
        height: results.height,
        events,
    })
}

/// Whether an event's type is message `M`'s protobuf full name (typed events are named so).
fn is<M: prost::Name>(kind: &str) -> bool {
    kind.strip_prefix(M::PACKAGE)
        .and_then(|rest| rest.strip_prefix('.'))
        == Some(M::NAME)
}

/// Decodes one typed event; `Ok(None)` for event types that are not Akash events we know.
pub fn decode_event(ev: &AbciEvent) -> Result<Option<AkashEvent>, String> {
    let a = Attrs(&ev.attributes);
    if ev.kind == "message" {
        return Ok(certificate_message(&a));
    }
    let e = match ev.kind.as_str() {
        k if is::<mv1::EventOrderCreated>(k) => AkashEvent::OrderCreated(mv1::EventOrderCreated {
            id: Some(order_id(&a.json("id")?)?),
        }),
        k if is::<mv1::EventOrderClosed>(k) => AkashEvent::OrderClosed(mv1::EventOrderClosed {
            id: Some(order_id(&a.json("id")?)?),
        }),
        k if is::<mv1::EventBidCreated>(k) => AkashEvent::BidCreated(mv1::EventBidCreated {
            id: Some(bid_id(&a.json("id")?)?),
            price: a.opt("price")?.map(|v| dec_coin(&v)).transpose()?,
        }),
        k if is::<mv1::EventBidClosed>(k) => AkashEvent::BidClosed(mv1::EventBidClosed {
            id: Some(bid_id(&a.json("id")?)?),
        }),
        k if is::<mv1::EventLeaseCreated>(k) => AkashEvent::LeaseCreated(mv1::EventLeaseCreated {
            id: Some(lease_id(&a.json("id")?)?),
            price: a.opt("price")?.map(|v| dec_coin(&v)).transpose()?,
        }),
        k if is::<mv1::EventLeaseClosed>(k) => AkashEvent::LeaseClosed(mv1::EventLeaseClosed {
            id: Some(lease_id(&a.json("id")?)?),
            reason: a
                .opt("reason")?
                .map(|v| closed_reason(&v))
                .transpose()?
                .unwrap_or(0),
        }),
        k if is::<mv1::EventLeaseReclaimStarted>(k) => {
            AkashEvent::LeaseReclaimStarted(mv1::EventLeaseReclaimStarted {
                id: Some(lease_id(&a.json("id")?)?),
                reason: a
                    .opt("reason")?
                    .map(|v| closed_reason(&v))
                    .transpose()?
                    .unwrap_or(0),
                deadline: a
                    .opt("deadline")?
                    .map(|v| json_i64(&v))
                    .transpose()?
                    .unwrap_or(0),
            })
        }
        k if is::<dv1::EventDeploymentCreated>(k) => {
            AkashEvent::DeploymentCreated(dv1::EventDeploymentCreated {
                id: Some(deployment_id(&a.json("id")?)?),
                hash: a
                    .opt("hash")?
                    .map(|v| base64(&v))
                    .transpose()?
                    .unwrap_or_default(),
            })
        }
        k if is::<dv1::EventDeploymentUpdated>(k) => {
            AkashEvent::DeploymentUpdated(dv1::EventDeploymentUpdated {
                id: Some(deployment_id(&a.json("id")?)?),
                hash: a
                    .opt("hash")?
                    .map(|v| base64(&v))
                    .transpose()?
                    .unwrap_or_default(),
            })
        }
        k if is::<dv1::EventDeploymentClosed>(k) => {
            AkashEvent::DeploymentClosed(dv1::EventDeploymentClosed {
                id: Some(deployment_id(&a.json("id")?)?),
            })
        }
        k if is::<dv1::EventGroupStarted>(k) => AkashEvent::GroupStarted(dv1::EventGroupStarted {
            id: Some(group_id(&a.json("id")?)?),
        }),
        k if is::<dv1::EventGroupPaused>(k) => AkashEvent::GroupPaused(dv1::EventGroupPaused {
            id: Some(group_id(&a.json("id")?)?),
        }),
        k if is::<dv1::EventGroupClosed>(k) => AkashEvent::GroupClosed(dv1::EventGroupClosed {
            id: Some(group_id(&a.json("id")?)?),
        }),
        k if is::<pv1::EventProviderCreated>(k) => {
            AkashEvent::ProviderCreated(pv1::EventProviderCreated {
                owner: json_string(&a.json("owner")?)?,
            })
        }
        k if is::<pv1::EventProviderUpdated>(k) => {
            AkashEvent::ProviderUpdated(pv1::EventProviderUpdated {
                owner: json_string(&a.json("owner")?)?,
            })
        }
        k if is::<pv1::EventProviderDeleted>(k) => {
            AkashEvent::ProviderDeleted(pv1::EventProviderDeleted {
                owner: json_string(&a.json("owner")?)?,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(e))
}

/// The SDK's `message` event of a certificate message (its attributes are plain text: `action`
/// is the message's type URL, `sender` its first signer).
fn certificate_message(a: &Attrs<'_>) -> Option<AkashEvent> {
    let owner = a.text("sender")?.to_owned();
    match a.text("action")? {
        "/akash.cert.v1.MsgCreateCertificate" => Some(AkashEvent::CertificateCreated { owner }),
        "/akash.cert.v1.MsgRevokeCertificate" => Some(AkashEvent::CertificateRevoked { owner }),
        _ => None,
    }
}

struct Attrs<'a>(&'a [AbciAttribute]);

impl Attrs<'_> {
    /// The attribute's value as it is (the last occurrence).
    fn text(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    }

    /// The attribute's value parsed as JSON, `None` when absent (a default-valued field).
    fn opt(&self, key: &str) -> Result<Option<Value>, String> {
        // The last occurrence wins, as in the SDK's map of attributes.
        match self.0.iter().rev().find(|a| a.key == key) {
            None => Ok(None),
            Some(a) => serde_json::from_str(&a.value)
                .map(Some)
                .map_err(|e| format!("attribute {key:?} is not JSON: {e}")),
        }
    }

    fn json(&self, key: &str) -> Result<Value, String> {
        self.opt(key)?
            .ok_or_else(|| format!("attribute {key:?} is missing"))
    }
}

fn field<'v>(obj: &'v Value, name: &str) -> Option<&'v Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn json_u64(v: &Value) -> Result<u64, String> {
    match v {
        Value::String(s) => s
            .parse()
            .map_err(|_| format!("not an unsigned integer: {s:?}")),
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("not an unsigned integer: {n}")),
        other => Err(format!("not an unsigned integer: {other}")),
    }
}

fn json_i64(v: &Value) -> Result<i64, String> {
    match v {
        Value::String(s) => s.parse().map_err(|_| format!("not an integer: {s:?}")),
        Value::Number(n) => n.as_i64().ok_or_else(|| format!("not an integer: {n}")),
        other => Err(format!("not an integer: {other}")),
    }
}

fn json_string(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("not a string: {v}"))
}

fn u64_field(obj: &Value, name: &str) -> Result<u64, String> {
    field(obj, name).map_or(Ok(0), |v| json_u64(v).map_err(|e| format!("{name}: {e}")))
}

fn u32_field(obj: &Value, name: &str) -> Result<u32, String> {
    u32::try_from(u64_field(obj, name)?).map_err(|_| format!("{name}: out of range"))
}

fn string_field(obj: &Value, name: &str) -> Result<String, String> {
    field(obj, name).map_or(Ok(String::new()), |v| {
        json_string(v).map_err(|e| format!("{name}: {e}"))
    })
}

fn object(v: &Value) -> Result<&Value, String> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(format!("not an object: {v}"))
    }
}

fn order_id(v: &Value) -> Result<mv1::OrderId, String> {
    let o = object(v)?;
    Ok(mv1::OrderId {
        owner: string_field(o, "owner")?,
        dseq: u64_field(o, "dseq")?,
        gseq: u32_field(o, "gseq")?,
        oseq: u32_field(o, "oseq")?,
    })
}

fn bid_id(v: &Value) -> Result<mv1::BidId, String> {
    let o = object(v)?;
    Ok(mv1::BidId {
        owner: string_field(o, "owner")?,
        dseq: u64_field(o, "dseq")?,
        gseq: u32_field(o, "gseq")?,
        oseq: u32_field(o, "oseq")?,
        provider: string_field(o, "provider")?,
        bseq: u32_field(o, "bseq")?,
    })
}

fn lease_id(v: &Value) -> Result<mv1::LeaseId, String> {
    let b = bid_id(v)?;
    Ok(mv1::LeaseId {
        owner: b.owner,
        dseq: b.dseq,
        gseq: b.gseq,
        oseq: b.oseq,
        provider: b.provider,
        bseq: b.bseq,
    })
}

fn deployment_id(v: &Value) -> Result<dv1::DeploymentId, String> {
    let o = object(v)?;
    Ok(dv1::DeploymentId {
        owner: string_field(o, "owner")?,
        dseq: u64_field(o, "dseq")?,
    })
}

fn group_id(v: &Value) -> Result<dv1::GroupId, String> {
    let o = object(v)?;
    Ok(dv1::GroupId {
        owner: string_field(o, "owner")?,
        dseq: u64_field(o, "dseq")?,
        gseq: u32_field(o, "gseq")?,
    })
}

/// A `DecCoin` whose JSON amount is a decimal ("1.500000000000000000"); the struct carries the
/// wire form, as everywhere in this crate (see [`crate::dec`]).
fn dec_coin(v: &Value) -> Result<DecCoin, String> {
    let o = object(v)?;
    let amount = string_field(o, "amount")?;
    Ok(DecCoin {
        denom: string_field(o, "denom")?,
        amount: crate::dec::to_wire(&amount).map_err(|e| format!("price amount: {e}"))?,
    })
}

fn closed_reason(v: &Value) -> Result<i32, String> {
    match v {
        Value::String(s) => mv1::LeaseClosedReason::from_str_name(s)
            .map(|r| r as i32)
            .ok_or_else(|| format!("unknown lease closed reason {s:?}")),
        Value::Number(n) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| format!("bad lease closed reason {n}")),
        other => Err(format!("bad lease closed reason {other}")),
    }
}

fn base64(v: &Value) -> Result<Vec<u8>, String> {
    let s = v.as_str().ok_or_else(|| format!("not base64 text: {v}"))?;
    data_encoding::BASE64
        .decode(s.as_bytes())
        .map_err(|e| format!("bad base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str = "akash1provider0000000000000000000000000000";
    const TENANT: &str = "akash1tenant00000000000000000000000000000";

    fn fixture(name: &str) -> BlockResults {
        let path = format!(
            "{}/tests/fixtures/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let rpc: Value = serde_json::from_str(&text).unwrap();
        serde_json::from_value(rpc["result"].clone()).unwrap()
    }

    fn lease(dseq: u64) -> mv1::LeaseId {
        mv1::LeaseId {
            owner: TENANT.into(),
            dseq,
            gseq: 1,
            oseq: 1,
            provider: PROVIDER.into(),
            bseq: 0,
        }
    }

    #[test]
    fn a_block_with_market_events_decodes_in_order() {
        let block = decode_block_results(&fixture("block_results_market.json")).unwrap();
        assert_eq!(block.height, 1234);
        assert_eq!(
            block.events,
            vec![
                AkashEvent::DeploymentCreated(dv1::EventDeploymentCreated {
                    id: Some(dv1::DeploymentId {
                        owner: TENANT.into(),
                        dseq: 18_446_744_073_709_551_615,
                    }),
                    hash: (0u8..32).collect(),
                }),
                AkashEvent::GroupStarted(dv1::EventGroupStarted {
                    id: Some(dv1::GroupId {
                        owner: TENANT.into(),
                        dseq: 18_446_744_073_709_551_615,
                        gseq: 1,
                    }),
                }),
                AkashEvent::OrderCreated(mv1::EventOrderCreated {
                    id: Some(mv1::OrderId {
                        owner: TENANT.into(),
                        dseq: 18_446_744_073_709_551_615,
                        gseq: 1,
                        oseq: 1,
                    }),
                }),
                // The second transaction failed (code 5): its bid event is not here.
                AkashEvent::LeaseCreated(mv1::EventLeaseCreated {
                    id: Some(lease(77)),
                    price: Some(DecCoin {
                        denom: "uact".into(),
                        amount: "1500000000000000000".into(),
                    }),
                }),
                AkashEvent::BidClosed(mv1::EventBidClosed {
                    id: Some(mv1::BidId {
                        provider: "akash1other".into(),
                        ..Default::default()
                    }),
                }),
                // finalize_block_events come after the transactions.
                AkashEvent::LeaseClosed(mv1::EventLeaseClosed {
                    id: Some(lease(55)),
                    reason: mv1::LeaseClosedReason::InsufficientFunds as i32,
                }),
                AkashEvent::OrderClosed(mv1::EventOrderClosed {
                    id: Some(mv1::OrderId {
                        owner: TENANT.into(),
                        dseq: 55,
                        gseq: 1,
                        oseq: 1,
                    }),
                }),
            ]
        );
    }

    #[test]
    fn an_empty_block_has_no_events() {
        // CometBFT sends null for empty lists.
        let block = decode_block_results(&fixture("block_results_empty.json")).unwrap();
        assert_eq!(
            block,
            BlockEvents {
                height: 7,
                events: vec![]
            }
        );
    }

    fn ev(kind: &str, attrs: &[(&str, &str)]) -> AbciEvent {
        AbciEvent {
            kind: kind.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| AbciAttribute {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn certificate_messages_name_their_owner_and_other_messages_are_skipped() {
        let message = |action: &str| {
            ev(
                "message",
                &[
                    ("action", action),
                    ("sender", TENANT),
                    ("module", "cert"),
                    ("msg_index", "0"),
                ],
            )
        };
        assert_eq!(
            decode_event(&message("/akash.cert.v1.MsgRevokeCertificate")).unwrap(),
            Some(AkashEvent::CertificateRevoked {
                owner: TENANT.into()
            })
        );
        assert_eq!(
            decode_event(&message("/akash.cert.v1.MsgCreateCertificate")).unwrap(),
            Some(AkashEvent::CertificateCreated {
                owner: TENANT.into()
            })
        );
        assert_eq!(
            decode_event(&message("/cosmos.bank.v1beta1.MsgSend")).unwrap(),
            None
        );
        // The bank module's own `message` event has a sender and no action.
        assert_eq!(
            decode_event(&ev("message", &[("sender", TENANT)])).unwrap(),
            None
        );
    }

    #[test]
    fn reclaim_and_provider_events() {
        let e = decode_event(&ev(
            "akash.market.v1.EventLeaseReclaimStarted",
            &[
                (
                    "id",
                    r#"{"owner":"o","dseq":"9","gseq":2,"oseq":3,"provider":"p","bseq":0}"#,
                ),
                ("reason", r#""lease_closed_reason_decommission""#),
                ("deadline", r#""1800000000""#),
                ("msg_index", "0"),
            ],
        ))
        .unwrap()
        .unwrap();
        let AkashEvent::LeaseReclaimStarted(r) = e else {
            panic!("{e:?}")
        };
        assert_eq!(
            r.id.as_ref().map(|i| (i.dseq, i.gseq, i.oseq)),
            Some((9, 2, 3))
        );
        assert_eq!(r.reason, 10001);
        assert_eq!(r.deadline, 1_800_000_000);

        let e = decode_event(&ev(
            "akash.provider.v1beta4.EventProviderUpdated",
            &[("owner", r#""akash1p""#)],
        ))
        .unwrap();
        assert_eq!(
            e,
            Some(AkashEvent::ProviderUpdated(pv1::EventProviderUpdated {
                owner: "akash1p".into()
            }))
        );
    }

    #[test]
    fn unknown_types_are_skipped_and_bad_attributes_are_errors() {
        assert_eq!(
            decode_event(&ev("coin_spent", &[("amount", "5uakt")])),
            Ok(None)
        );
        assert_eq!(
            decode_event(&ev("akash.market.v1.EventNotYetInvented", &[])),
            Ok(None)
        );
        let missing = decode_event(&ev("akash.market.v1.EventOrderCreated", &[])).unwrap_err();
        assert!(missing.contains("\"id\" is missing"), "{missing}");
        let not_json = decode_event(&ev(
            "akash.market.v1.EventOrderCreated",
            &[("id", "{owner")],
        ))
        .unwrap_err();
        assert!(not_json.contains("not JSON"), "{not_json}");
        let bad_dseq = decode_event(&ev(
            "akash.market.v1.EventOrderClosed",
            &[("id", r#"{"owner":"o","dseq":"-1"}"#)],
        ))
        .unwrap_err();
        assert!(bad_dseq.contains("dseq"), "{bad_dseq}");
        let bad_reason = decode_event(&ev(
            "akash.market.v1.EventLeaseClosed",
            &[("id", r#"{"owner":"o"}"#), ("reason", r#""because""#)],
        ))
        .unwrap_err();
        assert!(bad_reason.contains("because"), "{bad_reason}");

        // In a block, the error names the event type and the height.
        let results = BlockResults {
            height: 3,
            txs_results: vec![AbciTxResult {
                code: 0,
                events: vec![ev("akash.market.v1.EventBidCreated", &[("id", "[]")])],
            }],
            finalize_block_events: vec![],
        };
        let err = decode_block_results(&results).unwrap_err();
        assert!(
            matches!(&err, ChainError::Decode(m) if m.contains("EventBidCreated at height 3")),
            "{err:?}"
        );
    }
}
