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
