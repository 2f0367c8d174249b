pub(crate) mod applied;
pub(crate) mod apply;
pub mod build;
pub(crate) mod reconcile;
pub(crate) mod status;
