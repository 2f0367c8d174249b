//! The Akash provider module: `MsgCreateProvider` and `MsgUpdateProvider`, and the provider query.
//!
//! Errors are the provider module's (codespace `provider`): 1 invalid host uri, 2 not absolute
//! host uri, 3 address not found, 4 already exists, 6 attribute specification error.

use chain_client::akash::provider::v1beta4 as pv;
use serde_json::json;

use crate::ante::SdkError;
use crate::events::{Event, type_url};
use crate::state::{Proto, State};

fn err(code: u32, reason: &str, detail: impl std::fmt::Display) -> SdkError {
    let detail = detail.to_string();
    SdkError {
        code,
        codespace: "provider",
        log: if detail.is_empty() {
            reason.to_owned()
        } else {
            format!("{detail}: {reason}")
        },
    }
}

/// The host URI must be absolute, `https`, with a host and no path (`https://provider.example:8443`).
pub fn validate_host_uri(uri: &str) -> Result<(), SdkError> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Err(err(
            2,
            "invalid provider: not absolute host uri",
            format!("validating {uri:?} for absolute URI"),
        ));
    };
    if scheme != "https" {
        return Err(err(
            1,
            "invalid provider: invalid host uri",
            format!("scheme in {uri:?} should be https"),
        ));
    }
    let host_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if rest[..host_end].is_empty() || rest[..host_end].contains(char::is_whitespace) {
        return Err(err(
            1,
            "invalid provider: invalid host uri",
            format!("validating {uri:?} for valid host"),
        ));
    }
    if rest[host_end..].starts_with('/') {
        return Err(err(
            1,
            "invalid provider: invalid host uri",
            format!("path in {uri:?} should be empty"),
        ));
    }
    Ok(())
}

fn validate(
    owner: &str,
    host_uri: &str,
    attributes: &[chain_client::akash::base::attributes::v1::Attribute],
) -> Result<(), SdkError> {
    crate::bank::validate_address(owner, "provider owner")?;
    validate_host_uri(host_uri)?;
    for (i, a) in attributes.iter().enumerate() {
        if a.key.is_empty() {
            return Err(err(
                6,
                "attribute specification error",
                format!("attribute {i}: empty key"),
            ));
        }
        if attributes[..i].iter().any(|b| b.key == a.key) {
            return Err(err(
                6,
                "attribute specification error",
                format!("duplicate attribute key {:?}", a.key),
            ));
        }
    }
    Ok(())
}

fn message_event(action: &str, owner: &str, idx: &str) -> Event {
    Event::new("message")
        .attr("action", action)
        .attr("sender", owner)
        .attr("module", "provider")
        .attr("msg_index", idx)
}

pub fn create(
    state: &mut State,
    msg: &pv::MsgCreateProvider,
    msg_index: usize,
) -> Result<Vec<Event>, SdkError> {
    validate(&msg.owner, &msg.host_uri, &msg.attributes)?;
    if state.providers.contains_key(&msg.owner) {
        return Err(err(4, "invalid provider: already exists", ""));
    }
    state.providers.insert(
        msg.owner.clone(),
        Proto(pv::Provider {
            owner: msg.owner.clone(),
            host_uri: msg.host_uri.clone(),
            attributes: msg.attributes.clone(),
            info: msg.info.clone(),
        }),
    );
    let idx = msg_index.to_string();
    Ok(vec![
        message_event(
            &type_url::<chain_client::akash::provider::v1beta4::MsgCreateProvider>(),
            &msg.owner,
            &idx,
        ),
        Event::typed_of::<chain_client::akash::provider::v1beta4::EventProviderCreated>(
            &json!({"owner": msg.owner}),
        )
        .attr("msg_index", idx),
    ])
}

pub fn update(
    state: &mut State,
    msg: &pv::MsgUpdateProvider,
    msg_index: usize,
) -> Result<Vec<Event>, SdkError> {
    validate(&msg.owner, &msg.host_uri, &msg.attributes)?;
    let Some(p) = state.providers.get_mut(&msg.owner) else {
        return Err(err(3, "invalid provider: address not found", ""));
    };
    p.0 = pv::Provider {
        owner: msg.owner.clone(),
        host_uri: msg.host_uri.clone(),
        attributes: msg.attributes.clone(),
        info: msg.info.clone(),
    };
    let idx = msg_index.to_string();
    Ok(vec![
        message_event(
            &type_url::<chain_client::akash::provider::v1beta4::MsgUpdateProvider>(),
            &msg.owner,
            &idx,
        ),
        Event::typed_of::<chain_client::akash::provider::v1beta4::EventProviderUpdated>(
            &json!({"owner": msg.owner}),
        )
        .attr("msg_index", idx),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ante::{Mode, Params, parse_gas_prices, run_tx};
    use crate::genesis::{genesis_state, test_accounts};
    use crate::sign::{SignOpts, any_of, sign_tx};
    use chain_client::akash::base::attributes::v1::Attribute;

    const CHAIN: &str = "devnet-provider";

    #[test]
    fn host_uris_follow_the_chain_rules() {
        assert!(validate_host_uri("https://provider.example:8443").is_ok());
        assert_eq!(validate_host_uri("provider.example").unwrap_err().code, 2);
        assert_eq!(
            validate_host_uri("http://provider.example")
                .unwrap_err()
                .code,
            1
        );
        assert_eq!(validate_host_uri("https://").unwrap_err().code, 1);
        let e = validate_host_uri("https://p.example/x").unwrap_err();
        assert_eq!((e.code, e.codespace), (1, "provider"));
        assert_eq!(
            e.log,
            "path in \"https://p.example/x\" should be empty: invalid provider: invalid host uri"
        );
    }

    #[test]
    fn create_then_update_a_provider() {
        let params = Params::new(CHAIN, parse_gas_prices("0.025uakt").unwrap());
        let mut state = genesis_state(CHAIN).unwrap();
        let p = &test_accounts().unwrap()[3];
        let attrs = vec![Attribute {
            key: "region".into(),
            value: "local".into(),
        }];
        let create = pv::MsgCreateProvider {
            owner: p.address.clone(),
            host_uri: "https://127.0.0.1:8443".into(),
            attributes: attrs.clone(),
            info: None,
        };
        let raw = sign_tx(&p.key, vec![any_of(&create)], &SignOpts::new(CHAIN, 3, 0)).unwrap();
        let r = run_tx(&mut state, &raw, Mode::Deliver, &params);
        assert_eq!(r.code, 0, "{}", r.log);
        let ev = r
            .events
            .iter()
            .find(|e| e.kind == "akash.provider.v1beta4.EventProviderCreated")
            .unwrap();
        assert_eq!(ev.get("owner"), Some(format!("\"{}\"", p.address).as_str()));
        assert_eq!(state.providers[&p.address].0.attributes, attrs);

        let raw = sign_tx(&p.key, vec![any_of(&create)], &SignOpts::new(CHAIN, 3, 1)).unwrap();
        let r = run_tx(&mut state, &raw, Mode::Deliver, &params);
        assert_eq!((r.code, r.codespace.as_str()), (4, "provider"));

        let update = pv::MsgUpdateProvider {
            owner: p.address.clone(),
            host_uri: "https://provider.local:8443".into(),
            attributes: vec![],
            info: None,
        };
        let raw = sign_tx(&p.key, vec![any_of(&update)], &SignOpts::new(CHAIN, 3, 2)).unwrap();
        assert_eq!(run_tx(&mut state, &raw, Mode::Deliver, &params).code, 0);
        assert_eq!(
            state.providers[&p.address].0.host_uri,
            "https://provider.local:8443"
        );

        // Updating a provider that does not exist.
        let other = &test_accounts().unwrap()[0];
        let update = pv::MsgUpdateProvider {
            owner: other.address.clone(),
            ..update
        };
        let raw = sign_tx(
            &other.key,
            vec![any_of(&update)],
            &SignOpts::new(CHAIN, 0, 0),
        )
        .unwrap();
        assert_eq!(run_tx(&mut state, &raw, Mode::Deliver, &params).code, 3);
    }
}
