//! Leader election through a `coordination.k8s.io/v1` Lease, so that of several replicas exactly
//! one bids and writes. Optimistic concurrency (the object's `resourceVersion`) decides races: a
//! replica takes the lease only by replacing the version it read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease as CoordinationLease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::watch;

/// One replica's view of the election.
#[derive(Clone)]
pub(crate) struct LeaderElector {
    api: Api<CoordinationLease>,
    name: String,
    identity: String,
    duration: Duration,
    /// Set by [`LeaderElector::release`] (shared by clones): renewing stops.
    released: Arc<AtomicBool>,
}

/// Who holds the election lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    Me,
    Other(String),
}

impl LeaderElector {
    pub(crate) fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
            released: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Gives the lease up if this replica holds it (the holder cleared), so that a standby takes
    /// over at its next try instead of a lease duration later; renewing stops first. `true` when
    /// it was given up.
    pub(crate) async fn release(&self) -> kube::Result<bool> {
        self.released.store(true, Ordering::SeqCst);
        // A renewal in flight may write once more after our read: then read again.
        for _ in 0..3 {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else {
                return Ok(false);
            };
            let mut spec = lease.spec.clone().unwrap_or_default();
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            lease.spec = Some(spec);
            match self
                .api
                .replace(&self.name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => return Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(false)
    }

    /// Takes the lease if it is free, expired or already ours; renews it if ours.
    pub(crate) async fn try_acquire_or_renew(&self) -> kube::Result<Holder> {
        let now = jiff::Timestamp::now();
        let existing = self.api.get_opt(&self.name).await?;
        let Some(mut lease) = existing else {
            let lease = CoordinationLease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Holder::Me),
                Err(kube::Error::Api(e)) if e.code == 409 => self.current_holder().await,
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(1) as u64))
            .unwrap_or(self.duration);
        let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
            let age = now.duration_since(renewed.0);
            age.is_positive() && age.unsigned_abs() > duration
        });
        if holder != self.identity && !holder.is_empty() && !expired {
            return Ok(Holder::Other(holder));
        }
        let (acquired, transitions) = if holder == self.identity {
            (
                spec.acquire_time.map(|t| t.0).unwrap_or(now),
                spec.lease_transitions.unwrap_or(0),
            )
        } else {
            (now, spec.lease_transitions.unwrap_or(0) + 1)
        };
        lease.spec = Some(self.spec(acquired, now, transitions));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Holder::Me),
            // Someone else wrote it since we read it: they won this round.
            Err(kube::Error::Api(e)) if e.code == 409 => self.current_holder().await,
            Err(e) => Err(e),
        }
    }

    async fn current_holder(&self) -> kube::Result<Holder> {
        let lease = self.api.get(&self.name).await?;
        let holder = lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default();
        Ok(if holder == self.identity {
            Holder::Me
        } else {
            Holder::Other(holder)
        })
    }

    fn spec(
        &self,
        acquired: jiff::Timestamp,
        renewed: jiff::Timestamp,
        transitions: i32,
    ) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration.as_secs().max(1) as i32),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// Waits until this replica leads, logging who leads meanwhile.
    pub(crate) async fn acquire(&self) {
        let mut last_holder = None;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(Holder::Me) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "leading");
                    return;
                }
                Ok(Holder::Other(holder)) => {
                    if last_holder.as_ref() != Some(&holder) {
                        tracing::info!(lease = %self.name, %holder, "standing by: another replica leads");
                        last_holder = Some(holder);
                    }
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "leader election failed; retrying")
                }
            }
            tokio::time::sleep(self.retry_period()).await;
        }
    }

    fn retry_period(&self) -> Duration {
        (self.duration / 3).max(Duration::from_millis(200))
    }

    /// Keeps renewing; the returned flag turns false (and stays false) once leadership is lost or
    /// could not be confirmed for a whole lease duration. The caller must then stop writing.
    pub(crate) fn keep_renewing(self) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(true);
        tokio::spawn(async move {
            let mut last_confirmed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(self.retry_period()).await;
                if self.released.load(Ordering::SeqCst) {
                    let _ = tx.send(false);
                    return;
                }
                match self.try_acquire_or_renew().await {
                    Ok(Holder::Me) => last_confirmed = tokio::time::Instant::now(),
                    Ok(Holder::Other(holder)) => {
                        tracing::error!(%holder, "leadership lost to another replica");
                        let _ = tx.send(false);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the leader lease failed");
                        // Stop a little before another replica may take over.
                        if last_confirmed.elapsed() > self.duration.mul_f32(0.8) {
                            tracing::error!(
                                "leadership not confirmed for a lease duration; stepping down"
                            );
                            let _ = tx.send(false);
                            return;
                        }
                    }
                }
            }
        });
        rx
    }
}
