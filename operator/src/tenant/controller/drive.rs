//! Drive: one [`flow::step`] of the deployment, with the tenant's chain and gateway clients.

use crds::resources::ManifestStatus;

use super::Context;
use super::dereference::Counterparts;
use crate::tenant::flow::{self, Ctx, FlowError, Next, Progress};
use crate::tenant::plan::Plan;

/// What one step did: how it ended, and what happened on the way (for events).
pub(super) struct Stepped {
    pub outcome: Result<Next, FlowError>,
    pub progress: Vec<Progress>,
}

/// Advances the deployment by one step; `status` is where it resumes from and what it changed.
pub(super) async fn step(
    ctx: &Context,
    counterparts: &Counterparts,
    plan: &Plan,
    status: &mut ManifestStatus,
) -> Stepped {
    let flow_ctx = Ctx {
        chain: counterparts.chain.as_ref(),
        gateway: counterparts.gateway.as_ref(),
        dseqs: &ctx.dseqs,
        failure_threshold: ctx.args.failure_threshold,
        status_interval: ctx.args.status_interval,
        block_interval: ctx.args.block_interval,
        now: jiff::Timestamp::now(),
    };
    let mut progress = Vec::new();
    let outcome = flow::step(&flow_ctx, plan, status, &mut progress).await;
    Stepped { outcome, progress }
}
