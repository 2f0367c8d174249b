//! ABCI events in the shape CometBFT 0.38 prints them (string keys and values), and typed events
//! emitted Cosmos-style: type = the message's full protobuf name, one attribute per field whose
//! value is that field's JSON.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribute {
    pub key: String,
    pub value: String,
    pub index: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    pub attributes: Vec<Attribute>,
}

impl Event {
    pub fn new(kind: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            attributes: Vec::new(),
        }
    }

    /// Adds an indexed attribute.
    pub fn attr(mut self, key: &str, value: impl Into<String>) -> Self {
        self.attributes.push(Attribute {
            key: key.to_owned(),
            value: value.into(),
            index: true,
        });
        self
    }

    /// A typed event: `kind` is the protobuf full name (e.g. `akash.market.v1.EventOrderCreated`)
    /// and `fields` its JSON object; each field becomes an attribute holding the field's JSON.
    pub fn typed(kind: &str, fields: &serde_json::Value) -> Self {
        let mut e = Self::new(kind);
        if let Some(obj) = fields.as_object() {
            for (k, v) in obj {
                e = e.attr(k, v.to_string());
            }
        }
        e
    }

    /// A typed event of the message type `M`: its kind is `M`'s protobuf full name, as the Cosmos
    /// SDK names typed events, so the name cannot drift from the type the chain client decodes.
    pub fn typed_of<M: prost::Name>(fields: &serde_json::Value) -> Self {
        Self::typed(&M::full_name(), fields)
    }

    /// The value of the first attribute named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    }

    /// As the Cosmos gRPC `TxResponse` carries it.
    pub fn to_proto(&self) -> cosmos_sdk_proto::tendermint::abci::Event {
        cosmos_sdk_proto::tendermint::abci::Event {
            r#type: self.kind.clone(),
            attributes: self
                .attributes
                .iter()
                .map(|a| cosmos_sdk_proto::tendermint::abci::EventAttribute {
                    key: a.key.clone(),
                    value: a.value.clone(),
                    index: a.index,
                })
                .collect(),
        }
    }
}

/// The type URL of message `M` (`/akash.market.v1beta5.MsgCreateBid`), the `action` attribute of
/// the SDK's `message` event.
pub fn type_url<M: prost::Name>() -> String {
    M::type_url()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_event_attributes_are_field_json() {
        let e = Event::typed_of::<chain_client::akash::market::v1::EventOrderCreated>(
            &serde_json::json!({"id": {"owner": "akash1x", "dseq": "7", "gseq": 1, "oseq": 1}}),
        );
        assert_eq!(e.kind, "akash.market.v1.EventOrderCreated");
        let id: serde_json::Value = serde_json::from_str(e.get("id").unwrap()).unwrap();
        assert_eq!(id["dseq"], "7");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "akash.market.v1.EventOrderCreated");
        assert_eq!(json["attributes"][0]["key"], "id");
        assert!(json["attributes"][0]["value"].is_string());
    }
}
