//! A `Manifest`'s spec checked and turned into what goes on chain: the groups, the manifest
//! version, the deposit and the bid filter. Pure: no chain, no cluster. Every problem names the
//! field of the resource (`spec.sdl.services.web.image`, `spec.deposit.amount`, ...).

use chain_client::akash::base::deposit::v1::{Deposit, Source};
use chain_client::akash::deployment::v1beta4 as dv4;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use crds::resources::{BidFilter, ManifestSpec, Price};
use crds::sdl::Sdl;

/// One problem in a `Manifest`'s spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub(crate) struct SpecIssue {
    pub path: String,
    pub message: String,
}

/// What a valid spec deploys.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub sdl: Sdl,
    /// The on-chain groups, in the order of their gseq (1, 2, ...).
    pub groups: Vec<dv4::GroupSpec>,
    pub version: [u8; 32],
    pub deposit: Coin,
    pub wait_blocks: u64,
    pub filter: Filter,
    /// The dseq the spec pins, if any.
    pub dseq: Option<u64>,
    /// To every provider, or to one that passes it on to the others.
    pub distribution: crds::resources::Distribution,
}

impl Plan {
    pub(crate) fn version_hex(&self) -> String {
        self.sdl.manifest_version_hex()
    }

    /// The deposit as `MsgCreateDeployment` carries it (from the tenant's balance).
    pub(crate) fn deposit_msg(&self) -> Deposit {
        Deposit {
            amount: Some(self.deposit.clone()),
            sources: vec![Source::Balance as i32],
        }
    }
}

/// The bid filter of the spec, checked; amounts in `LegacyDec` wire form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub allowed_providers: Vec<String>,
    pub required_attributes: Vec<(String, String)>,
    /// (denom, amount per block in 10^-18 units)
    pub max_price: Option<(String, u128)>,
}

/// Checks `spec` and builds its plan; every problem found is listed.
pub(crate) fn plan(spec: &ManifestSpec) -> Result<Plan, Vec<SpecIssue>> {
    let mut issues = Vec::new();
    let sdl = match Sdl::from_document(&spec.sdl) {
        Ok(sdl) => Some(sdl),
        Err(e) => {
            issues.extend(e.issues().into_iter().map(|i| SpecIssue {
                path: if i.path.is_empty() {
                    "spec.sdl".into()
                } else {
                    format!("spec.sdl.{}", i.path)
                },
                message: i.message,
            }));
            None
        }
    };
    let deposit = coin(&spec.deposit, "spec.deposit", &mut issues);
    if let Some(c) = &deposit
        && c.denom != "uact"
    {
        issues.push(issue(
            "spec.deposit.denom",
            format!(
                "deployments are paid in uact, not {:?} (uakt only tops up an escrow account)",
                c.denom
            ),
        ));
    }
    if spec.wait_duration_blocks == 0 {
        issues.push(issue(
            "spec.waitDurationBlocks",
            "must be at least 1".into(),
        ));
    }
    let filter = filter(spec.bid_filter.as_ref(), &mut issues);
    if spec.key_secret.name.is_empty() {
        issues.push(issue("spec.keySecret.name", "must name a Secret".into()));
    }
    let groups = match &sdl {
        Some(sdl) => match crate::chain_groups::to_chain(sdl.groups()) {
            Ok(groups) => groups,
            Err(e) => {
                issues.push(issue("spec.sdl.profiles.placement", e.to_string()));
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    match (sdl, deposit) {
        (Some(sdl), Some(deposit)) if issues.is_empty() => Ok(Plan {
            version: sdl.manifest_version(),
            sdl,
            groups,
            deposit,
            wait_blocks: u64::from(spec.wait_duration_blocks),
            filter,
            dseq: spec.dseq,
            distribution: spec.distribution,
        }),
        _ => Err(issues),
    }
}

fn issue(path: &str, message: String) -> SpecIssue {
    SpecIssue {
        path: path.into(),
        message,
    }
}

/// A whole-number coin (a deposit).
fn coin(price: &Price, path: &str, issues: &mut Vec<SpecIssue>) -> Option<Coin> {
    if !matches!(price.denom.as_str(), "uakt" | "uact") {
        issues.push(issue(
            &format!("{path}.denom"),
            format!("{:?} is not uakt or uact", price.denom),
        ));
        return None;
    }
    match price.amount.parse::<u128>() {
        Ok(0) => {
            issues.push(issue(
                &format!("{path}.amount"),
                "must be more than 0".into(),
            ));
            None
        }
        Ok(amount) => Some(Coin {
            denom: price.denom.clone(),
            amount: amount.to_string(),
        }),
        Err(_) => {
            issues.push(issue(
                &format!("{path}.amount"),
                format!(
                    "{:?} is not a whole number of {}",
                    price.amount, price.denom
                ),
            ));
            None
        }
    }
}

fn filter(spec: Option<&BidFilter>, issues: &mut Vec<SpecIssue>) -> Filter {
    let Some(spec) = spec else {
        return Filter::default();
    };
    for (i, p) in spec.allowed_providers.iter().enumerate() {
        if !is_akash_address(p) {
            issues.push(issue(
                &format!("spec.bidFilter.allowedProviders[{i}]"),
                format!("{p:?} is not an akash1… address"),
            ));
        }
    }
    let max_price = spec.max_price.as_ref().and_then(|p| {
        let path = "spec.bidFilter.maxPrice.amount";
        match chain_client::dec::to_wire(&p.amount)
            .ok()
            .and_then(|w| w.parse::<u128>().ok())
        {
            Some(amount) => Some((p.denom.clone(), amount)),
            None => {
                issues.push(issue(
                    path,
                    format!("{:?} is not a decimal amount", p.amount),
                ));
                None
            }
        }
    });
    Filter {
        allowed_providers: spec.allowed_providers.clone(),
        required_attributes: spec
            .required_attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        max_price,
    }
}

fn is_akash_address(text: &str) -> bool {
    text.parse::<cosmrs::AccountId>()
        .is_ok_and(|id| id.prefix() == "akash")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::manifest_spec as spec;

    const SDL: &str = include_str!("../../../testdata/sdl/awesome-akash/openspeedtest.yaml");

    #[test]
    fn a_valid_spec_plans_the_sdl_groups_and_version() {
        let plan = plan(&spec()).unwrap();
        let sdl = Sdl::parse(SDL).unwrap();
        assert_eq!(plan.version, sdl.manifest_version());
        assert_eq!(plan.groups.len(), sdl.groups().len());
        assert_eq!(plan.deposit.amount, "5000000");
        assert_eq!(plan.wait_blocks, 3);
    }

    #[test]
    fn sdl_problems_are_reported_under_spec_sdl_with_their_field_path() {
        let mut spec = spec();
        let service = spec.sdl.services.values_mut().next().unwrap();
        service.image = String::new();
        let issues = plan(&spec).unwrap_err();
        assert!(
            issues
                .iter()
                .any(|i| i.path.starts_with("spec.sdl.services.") && i.path.ends_with(".image")),
            "{issues:?}"
        );
    }

    #[test]
    fn deposit_filter_and_wait_problems_name_their_fields() {
        let mut spec = spec();
        spec.deposit.amount = "1.5".into();
        spec.wait_duration_blocks = 0;
        spec.bid_filter = Some(BidFilter {
            allowed_providers: vec!["cosmos1xyz".into()],
            required_attributes: Default::default(),
            max_price: Some(Price {
                denom: "uact".into(),
                amount: "cheap".into(),
            }),
        });
        let paths: Vec<String> = plan(&spec)
            .unwrap_err()
            .into_iter()
            .map(|i| i.path)
            .collect();
        assert_eq!(
            paths,
            [
                "spec.deposit.amount",
                "spec.waitDurationBlocks",
                "spec.bidFilter.allowedProviders[0]",
                "spec.bidFilter.maxPrice.amount"
            ]
        );
    }

    #[test]
    fn a_deposit_in_uakt_is_refused() {
        let mut spec = spec();
        spec.deposit.denom = "uakt".into();
        let issues = plan(&spec).unwrap_err();
        assert_eq!(issues[0].path, "spec.deposit.denom", "{issues:?}");
    }
}
