pub mod applied;
pub mod apply;
pub mod build;
pub mod reconcile;
pub mod status;
