//! Whether the provider bids on an order at all, before inventory and price: the owner lists, the
//! group's placement attributes, and the auditors' signatures, with the Go provider's rules
//! (`bidengine` `ScreenBid`, chain-sdk `GroupSpec.MatchAttributes` / `MatchRequirements`).
//!
//! Attributes match exactly: same key, same value. The Go provider has no wildcards here, and
//! neither do we: a group asking `region=*` is matched only by a provider attribute `region=*`.

use chain_client::akash::audit::v1::AuditedProvider;
use chain_client::akash::base::attributes::v1::Attribute;
use chain_client::akash::market::v1beta5::Order;

/// The provider's own side of eligibility.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BidPolicy {
    /// The provider's attributes (its `Provider` resource's, as registered on chain).
    pub attributes: Vec<crds::resources::Attribute>,
    /// Tenants the provider bids for; empty: everyone (except the deny list).
    pub allow_owners: Vec<String>,
    /// Tenants the provider never bids for; wins over the allow list.
    pub deny_owners: Vec<String>,
}

/// Why the provider does not bid on an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ineligible {
    #[error("the order has no {0}")]
    Incomplete(&'static str),
    #[error("tenant {0} is on the deny list")]
    Denied(String),
    #[error("tenant {0} is not on the allow list")]
    NotAllowed(String),
    #[error("attribute {key}={value} not offered")]
    AttributeNotOffered { key: String, value: String },
    #[error("auditor {auditor} has not signed {}", missing(.attributes))]
    NotSignedBy {
        auditor: String,
        /// The required attributes the auditor has not signed (empty: it signed nothing for us).
        attributes: Vec<(String, String)>,
    },
    #[error("none of the auditors {} has signed {}", .auditors.join(", "), missing(.attributes))]
    NoneSigned {
        auditors: Vec<String>,
        attributes: Vec<(String, String)>,
    },
}

fn missing(attributes: &[(String, String)]) -> String {
    if attributes.is_empty() {
        return "any attributes of this provider".to_owned();
    }
    attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Ineligible {
    /// A short name for metrics: incomplete, deny_list, allow_list, attributes, auditors.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Ineligible::Incomplete(_) => "incomplete",
            Ineligible::Denied(_) => "deny_list",
            Ineligible::NotAllowed(_) => "allow_list",
            Ineligible::AttributeNotOffered { .. } => "attributes",
            Ineligible::NotSignedBy { .. } | Ineligible::NoneSigned { .. } => "auditors",
        }
    }
}

/// The required attributes `signed` lacks; `None` when the auditor signed nothing for us.
fn unsigned<'a>(
    auditor: &str,
    required: &'a [Attribute],
    audited: &[AuditedProvider],
) -> Option<Vec<&'a Attribute>> {
    let records: Vec<&AuditedProvider> = audited.iter().filter(|a| a.auditor == auditor).collect();
    if records.is_empty() {
        return None;
    }
    Some(
        required
            .iter()
            .filter(|req| {
                !records.iter().any(|r| {
                    r.attributes
                        .iter()
                        .any(|a| a.key == req.key && a.value == req.value)
                })
            })
            .collect(),
    )
}

fn pairs(attributes: &[&Attribute]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect()
}

/// Checks an order against the policy and the auditors' signatures of this provider's
/// attributes (`audited`: this provider's records from the audit module, any auditor).
///
/// 1. The deny list wins over the allow list; an empty allow list allows everyone.
/// 2. Every attribute of the group's placement requirements must be one of the provider's own
///    (same key and value).
/// 3. `signed_by.all_of`: every listed auditor must have signed attributes that include all the
///    required ones. `signed_by.any_of` (when not empty): at least one listed auditor has.
pub fn check(
    order: &Order,
    policy: &BidPolicy,
    audited: &[AuditedProvider],
) -> Result<(), Ineligible> {
    let owner = order
        .id
        .as_ref()
        .map(|id| id.owner.as_str())
        .ok_or(Ineligible::Incomplete("id"))?;
    if policy.deny_owners.iter().any(|o| o == owner) {
        return Err(Ineligible::Denied(owner.to_owned()));
    }
    if !policy.allow_owners.is_empty() && !policy.allow_owners.iter().any(|o| o == owner) {
        return Err(Ineligible::NotAllowed(owner.to_owned()));
    }
    let spec = order.spec.as_ref().ok_or(Ineligible::Incomplete("group"))?;
    let Some(requirements) = spec.requirements.as_ref() else {
        return Ok(());
    };
    let required = &requirements.attributes;
    for req in required {
        let offered = policy
            .attributes
            .iter()
            .any(|a| a.key == req.key && a.value == req.value);
        if !offered {
            return Err(Ineligible::AttributeNotOffered {
                key: req.key.clone(),
                value: req.value.clone(),
            });
        }
    }
    let Some(signed_by) = requirements.signed_by.as_ref() else {
        return Ok(());
    };
    for auditor in &signed_by.all_of {
        match unsigned(auditor, required, audited) {
            Some(lacking) if lacking.is_empty() => {}
            lacking => {
                return Err(Ineligible::NotSignedBy {
                    auditor: auditor.clone(),
                    attributes: lacking.map(|l| pairs(&l)).unwrap_or_default(),
                });
            }
        }
    }
    if signed_by.any_of.is_empty() {
        return Ok(());
    }
    let mut fewest: Option<Vec<&Attribute>> = None;
    for auditor in &signed_by.any_of {
        match unsigned(auditor, required, audited) {
            Some(lacking) if lacking.is_empty() => return Ok(()),
            Some(lacking) if fewest.as_ref().is_none_or(|f| lacking.len() < f.len()) => {
                fewest = Some(lacking);
            }
            _ => {}
        }
    }
    let attributes = match fewest {
        Some(lacking) => pairs(&lacking),
        None => pairs(&required.iter().collect::<Vec<_>>()),
    };
    Err(Ineligible::NoneSigned {
        auditors: signed_by.any_of.clone(),
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use chain_client::akash::market::v1::OrderId;

    use super::*;
    use crate::inventory::fixtures::group;

    const TENANT: &str = "akash1tenant";

    fn order(name: &str) -> Order {
        Order {
            id: Some(OrderId {
                owner: TENANT.into(),
                dseq: 7,
                gseq: 1,
                oseq: 1,
            }),
            state: 1,
            spec: Some(group(name)),
            ..Order::default()
        }
    }

    fn attr(key: &str, value: &str) -> crds::resources::Attribute {
        crds::resources::Attribute {
            key: key.into(),
            value: value.into(),
        }
    }

    fn policy() -> BidPolicy {
        BidPolicy {
            attributes: vec![
                attr("region", "us-west"),
                attr("tier", "community"),
                attr("host", "akash"),
            ],
            ..BidPolicy::default()
        }
    }

    fn signed(auditor: &str, attrs: &[(&str, &str)]) -> AuditedProvider {
        AuditedProvider {
            owner: "akash1provider".into(),
            auditor: auditor.into(),
            attributes: attrs
                .iter()
                .map(|(k, v)| Attribute {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    const BOTH: [(&str, &str); 2] = [("region", "us-west"), ("tier", "community")];

    #[test]
    fn a_plain_order_is_eligible() {
        check(&order("web.yaml"), &policy(), &[]).unwrap();
    }

    #[test]
    fn deny_list_wins_over_allow_list() {
        let mut p = policy();
        p.allow_owners = vec![TENANT.into()];
        p.deny_owners = vec![TENANT.into()];
        let err = check(&order("web.yaml"), &p, &[]).unwrap_err();
        assert_eq!(err.to_string(), "tenant akash1tenant is on the deny list");
        assert_eq!(err.label(), "deny_list");

        p.deny_owners.clear();
        check(&order("web.yaml"), &p, &[]).unwrap();
        p.allow_owners = vec!["akash1someoneelse".into()];
        let err = check(&order("web.yaml"), &p, &[]).unwrap_err();
        assert_eq!(err, Ineligible::NotAllowed(TENANT.into()));
    }

    #[test]
    fn every_required_attribute_must_be_offered() {
        let audited = [
            signed("akash1auditora", &BOTH),
            signed("akash1auditorb", &BOTH),
        ];
        check(&order("audited.yaml"), &policy(), &audited).unwrap();
        let mut p = policy();
        p.attributes[0] = attr("region", "eu-central");
        let err = check(&order("audited.yaml"), &p, &audited).unwrap_err();
        assert_eq!(err.to_string(), "attribute region=us-west not offered");
        assert_eq!(err.label(), "attributes");
    }

    #[test]
    fn all_of_needs_every_auditor_to_have_signed_everything() {
        let b = signed("akash1auditorb", &BOTH);
        let err = check(&order("audited.yaml"), &policy(), std::slice::from_ref(&b)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "auditor akash1auditora has not signed any attributes of this provider"
        );
        let partial = signed("akash1auditora", &[("region", "us-west")]);
        let err = check(&order("audited.yaml"), &policy(), &[partial, b]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "auditor akash1auditora has not signed tier=community"
        );
        assert_eq!(err.label(), "auditors");
    }

    #[test]
    fn any_of_needs_one_auditor() {
        let a = signed("akash1auditora", &BOTH);
        let err = check(&order("audited.yaml"), &policy(), std::slice::from_ref(&a)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "none of the auditors akash1auditorb, akash1auditorc has signed region=us-west, tier=community"
        );
        let c_partial = signed("akash1auditorc", &[("tier", "community")]);
        let err = check(&order("audited.yaml"), &policy(), &[a.clone(), c_partial]).unwrap_err();
        assert!(
            err.to_string().ends_with("has signed region=us-west"),
            "{err}"
        );
        // Two records of one auditor together cover both attributes.
        let c1 = signed("akash1auditorc", &[("tier", "community")]);
        let c2 = signed("akash1auditorc", &[("region", "us-west")]);
        check(&order("audited.yaml"), &policy(), &[a, c1, c2]).unwrap();
    }
}
