//! Validate: a `Manifest`'s spec checked and turned into its plan (see [`plan`]). Pure: no
//! chain, no cluster.

use crds::resources::ManifestSpec;

use crate::tenant::plan::{Plan, plan};

/// Why a spec cannot be deployed: every problem found, each naming its field
/// (`spec.sdl.services.web.image: ...`), in one line for the condition and the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InvalidSpec {
    pub message: String,
}

/// The plan of `spec`, or why there is none.
pub(super) fn validate(spec: &ManifestSpec) -> Result<Plan, InvalidSpec> {
    plan(spec).map_err(|issues| InvalidSpec {
        message: issues
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use crds::resources::{BidFilter, ManifestSpec};

    use super::validate;

    /// A valid spec: openspeedtest's SDL, the default deposit.
    pub(in crate::tenant::controller) fn spec() -> ManifestSpec {
        crate::test_support::manifest_spec()
    }

    /// Every placement asks for a compute profile the SDL does not define.
    pub(in crate::tenant::controller) fn unknown_profile(spec: &mut ManifestSpec) {
        for placements in spec.sdl.deployment.values_mut() {
            for placement in placements.values_mut() {
                placement.profile = "no-such-profile".into();
            }
        }
    }

    #[test]
    fn a_valid_spec_yields_its_plan() {
        let plan = validate(&spec()).expect("valid");
        assert_eq!(plan.wait_blocks, 3);
        assert_eq!(plan.deposit.amount, "5000000");
    }

    #[test]
    fn an_invalid_spec_yields_one_message_naming_each_bad_field() {
        // (what is wrong, what the message must say: field paths and the bad values)
        type Case = (&'static str, fn(&mut ManifestSpec), &'static [&'static str]);
        let cases: &[Case] = &[
            (
                "an unknown compute profile",
                unknown_profile,
                &["spec.sdl.deployment.openspeedtest.", "no-such-profile"],
            ),
            (
                "a service without an image",
                |spec| {
                    let service = spec.sdl.services.values_mut().next().expect("a service");
                    service.image = String::new();
                },
                &["spec.sdl.services.", ".image: "],
            ),
            (
                "a deposit in uakt",
                |spec| spec.deposit.denom = "uakt".into(),
                &["spec.deposit.denom: "],
            ),
            (
                "a fractional deposit, no wait and a bad bid filter",
                |spec| {
                    spec.deposit.amount = "1.5".into();
                    spec.wait_duration_blocks = 0;
                    spec.bid_filter = Some(BidFilter {
                        allowed_providers: vec!["cosmos1xyz".into()],
                        required_attributes: Default::default(),
                        max_price: None,
                    });
                },
                &[
                    "spec.deposit.amount: ",
                    "; spec.waitDurationBlocks: ",
                    "; spec.bidFilter.allowedProviders[0]: ",
                ],
            ),
        ];
        for (what, spoil, expected) in cases {
            let mut spec = spec();
            spoil(&mut spec);
            let invalid = validate(&spec).expect_err(what);
            for part in *expected {
                assert!(
                    invalid.message.contains(part),
                    "{what}: {part:?} not in {:?}",
                    invalid.message
                );
            }
        }
    }
}
