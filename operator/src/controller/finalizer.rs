//! A reconcile behind a finalizer: kube's [`finalizer`](kube::runtime::finalizer::finalizer)
//! with its error flattened into the controller's own error type.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Error, Event, finalizer};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A controller error that can say "the finalizer could not be added or removed".
pub(crate) trait FinalizerFailure {
    /// The error for a failed finalizer patch (mostly a stale copy: retried soon).
    fn finalizer_failure(message: String) -> Self;
}

/// Implements [`FinalizerFailure`] for an error enum with its variant that holds the message:
/// `finalizer_failure_is!(ReconcileError::Finalizer)`.
macro_rules! finalizer_failure_is {
    ($error:ident :: $variant:ident) => {
        impl $crate::controller::finalizer::FinalizerFailure for $error {
            fn finalizer_failure(message: String) -> Self {
                Self::$variant(message)
            }
        }
    };
}
pub(crate) use finalizer_failure_is;

/// Runs `reconcile` on `object` behind the finalizer `name`: the reconcile's own errors come back
/// as they are, and a failed finalizer patch as [`FinalizerFailure::finalizer_failure`].
pub(crate) async fn reconcile_with_finalizer<K, E, Fut>(
    api: &Api<K>,
    name: &str,
    object: Arc<K>,
    reconcile: impl FnOnce(Event<K>) -> Fut,
) -> Result<Action, E>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
    Fut: Future<Output = Result<Action, E>>,
    E: std::error::Error + FinalizerFailure + 'static,
{
    finalizer(api, name, object, reconcile)
        .await
        .map_err(flatten)
}

fn flatten<E: std::error::Error + FinalizerFailure + 'static>(error: Error<E>) -> E {
    match error {
        Error::ApplyFailed(e) | Error::CleanupFailed(e) => e,
        other => E::finalizer_failure(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, thiserror::Error)]
    enum TestError {
        #[error("reconcile: {0}")]
        Reconcile(String),
        #[error("finalizer: {0}")]
        Finalizer(String),
    }

    impl FinalizerFailure for TestError {
        fn finalizer_failure(message: String) -> Self {
            Self::Finalizer(message)
        }
    }

    #[test]
    fn the_reconciles_own_errors_pass_and_finalizer_failures_are_mapped() {
        let own = TestError::Reconcile("x".into());
        assert_eq!(
            flatten(Error::ApplyFailed(own)),
            TestError::Reconcile("x".into())
        );
        let own = TestError::Reconcile("y".into());
        assert_eq!(
            flatten(Error::CleanupFailed(own)),
            TestError::Reconcile("y".into())
        );
        let unnamed = Error::<TestError>::UnnamedObject;
        let message = unnamed.to_string();
        assert_eq!(flatten(unnamed), TestError::Finalizer(message));
    }
}
