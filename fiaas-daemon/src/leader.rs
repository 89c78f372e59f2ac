//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several daemon replicas only
//! one deploys at a time.
//!
//! Every write is a create or a replace carrying the `resourceVersion` that was read, so when two
//! candidates race for the same lease the API server lets exactly one write through and answers
//! the other 409 Conflict. A lease counts as expired when `renewTime + leaseDurationSeconds` is in
//! the past; that compares timestamps written by one node's clock with another's, so it assumes
//! the cluster's clocks agree to well within the margin between [`RENEW_DEADLINE`] and
//! [`LEASE_DURATION`].

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::fence::Fence;

/// How long a lease stays valid after its last renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews its lease.
pub const RENEW_INTERVAL: Duration = Duration::from_secs(5);
/// How often a candidate retries to take the lease, and the holder a failed renewal.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// How long renewals may fail before the holder counts its lease lost. Shorter than
/// [`LEASE_DURATION`]: the holder must stop deploying before any other candidate can see the
/// lease expire, or both would deploy for a while.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// Bounds each attempt to take the lease, so a hung request cannot stall the candidate forever.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Releasing may meet a conflict with a renewal that was cut short but still reached the API
/// server; a few fresh reads settle it.
const RELEASE_ATTEMPTS: usize = 3;
/// Whom a lost race went to is unknown until the next read.
const RACE_WINNER: &str = "another candidate";

// A failed renewal gets at least one retry before the holder gives up, and the holder gives up
// before any other candidate may take over.
const _: () =
    assert!(RENEW_INTERVAL.as_secs() + RETRY_INTERVAL.as_secs() < RENEW_DEADLINE.as_secs());
const _: () = assert!(RENEW_DEADLINE.as_secs() < LEASE_DURATION.as_secs());

/// The identity this process competes under: the pod name (`HOSTNAME`), so `kubectl get lease`
/// names the leading pod, else a random one.
pub fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// A candidate for one Lease.
#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    lease_name: String,
    identity: String,
}

/// Proof that this process holds the lease. A background task renews it until the guard is
/// dropped or released; dropping it also releases the lease (best effort, in a spawned task).
pub struct LeaseGuard {
    elector: LeaderElector,
    lost: watch::Receiver<bool>,
    valid_until: watch::Receiver<Instant>,
    /// `None` once released.
    renewer: Option<JoinHandle<()>>,
}

/// What a renewal found.
enum Renewal {
    Renewed,
    /// Someone else holds the lease, or it was deleted or freed behind our back.
    Taken(String),
}

impl LeaderElector {
    /// A candidate for the Lease `lease_name` in `namespace`, competing as `identity`.
    pub fn new(client: kube::Client, namespace: &str, lease_name: &str, identity: String) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            lease_name: lease_name.to_owned(),
            identity,
        }
    }

    /// Wait until this process holds the lease (it is absent, expired, released or already
    /// ours), retrying every [`RETRY_INTERVAL`]. Transient failures (conflicts, throttling,
    /// server errors, connection trouble) are retried; other API errors, such as a missing RBAC
    /// grant, are returned since waiting would not cure them.
    pub async fn acquire(&self) -> Result<LeaseGuard, kube::Error> {
        let mut waiting_for = None;
        loop {
            let started = Instant::now();
            match tokio::time::timeout(ATTEMPT_TIMEOUT, self.try_acquire()).await {
                Ok(Ok(None)) => {
                    tracing::info!(
                        "Acquired the leader lease {} as {}",
                        self.lease_name,
                        self.identity
                    );
                    return Ok(self.guard(started));
                }
                Ok(Ok(Some(holder))) => {
                    if waiting_for.as_ref() != Some(&holder) {
                        tracing::info!(
                            "The leader lease {} is held by {holder}; waiting for it",
                            self.lease_name
                        );
                        waiting_for = Some(holder);
                    }
                }
                Ok(Err(error)) if is_transient(&error) => {
                    tracing::warn!(
                        "Could not take the leader lease {}, retrying: {error}",
                        self.lease_name
                    );
                }
                Ok(Err(error)) => return Err(error),
                Err(_) => tracing::warn!(
                    "Taking the leader lease {} timed out, retrying",
                    self.lease_name
                ),
            }
            tokio::time::sleep(RETRY_INTERVAL).await;
        }
    }

    /// One attempt: `None` if the lease is now ours, else who holds it.
    async fn try_acquire(&self) -> Result<Option<String>, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.lease_name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.lease_name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(lease_duration_seconds()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(None),
                Err(error) if is_conflict(&error) => Ok(Some(RACE_WINNER.to_owned())),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.get_or_insert_default();
        match holder(spec) {
            Some(holder) if holder == self.identity => {}
            Some(holder) if !expired(spec, now) => return Ok(Some(holder.to_owned())),
            _ => {
                spec.holder_identity = Some(self.identity.clone());
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(lease_duration_seconds());
        match self
            .api
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(None),
            Err(error) if is_conflict(&error) => Ok(Some(RACE_WINNER.to_owned())),
            Err(error) => Err(error),
        }
    }

    fn guard(&self, acquired_at: Instant) -> LeaseGuard {
        let (lost_tx, lost) = watch::channel(false);
        let (valid_tx, valid_until) = watch::channel(acquired_at + RENEW_DEADLINE);
        let renewer = tokio::spawn(self.clone().keep_renewed(acquired_at, lost_tx, valid_tx));
        LeaseGuard {
            elector: self.clone(),
            lost,
            valid_until,
            renewer: Some(renewer),
        }
    }

    /// Renew until a renewal finds the lease taken or renewals fail for [`RENEW_DEADLINE`];
    /// then report the loss and end. `renewed_at` is when the last successful write was sent,
    /// which is no later than the `renewTime` it carried.
    async fn keep_renewed(
        self,
        mut renewed_at: Instant,
        lost: watch::Sender<bool>,
        valid_until: watch::Sender<Instant>,
    ) {
        let mut wait = RENEW_INTERVAL;
        loop {
            let deadline = renewed_at + RENEW_DEADLINE;
            tokio::time::sleep_until((Instant::now() + wait).min(deadline)).await;
            let started = Instant::now();
            match tokio::time::timeout_at(deadline, self.renew()).await {
                Ok(Ok(Renewal::Renewed)) => {
                    renewed_at = started;
                    valid_until.send_replace(renewed_at + RENEW_DEADLINE);
                    wait = RENEW_INTERVAL;
                }
                Ok(Ok(Renewal::Taken(by))) => {
                    tracing::error!("Lost the leader lease {}: {by}", self.lease_name);
                    break;
                }
                Ok(Err(error)) => {
                    tracing::warn!(
                        "Could not renew the leader lease {}, retrying: {error}",
                        self.lease_name
                    );
                    wait = RETRY_INTERVAL;
                }
                Err(_) => {
                    tracing::error!(
                        "Lost the leader lease {}: not renewed for {}s",
                        self.lease_name,
                        RENEW_DEADLINE.as_secs()
                    );
                    break;
                }
            }
        }
        let _ = lost.send(true);
    }

    async fn renew(&self) -> Result<Renewal, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.lease_name).await? else {
            return Ok(Renewal::Taken("the lease was deleted".to_owned()));
        };
        let spec = lease.spec.get_or_insert_default();
        match holder(spec) {
            Some(holder) if holder == self.identity => {}
            Some(holder) => return Ok(Renewal::Taken(format!("{holder} holds it now"))),
            None => return Ok(Renewal::Taken("it was released".to_owned())),
        }
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        spec.lease_duration_seconds = Some(lease_duration_seconds());
        self.api
            .replace(&self.lease_name, &PostParams::default(), &lease)
            .await?;
        Ok(Renewal::Renewed)
    }

    /// Clear the holder if it is still us, so a waiting candidate need not wait out the lease.
    async fn release(&self) -> Result<(), kube::Error> {
        for attempt in 1..=RELEASE_ATTEMPTS {
            let Some(mut lease) = self.api.get_opt(&self.lease_name).await? else {
                return Ok(());
            };
            let spec = lease.spec.get_or_insert_default();
            if holder(spec) != Some(self.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            match self
                .api
                .replace(&self.lease_name, &PostParams::default(), &lease)
                .await
            {
                Ok(_) => {
                    tracing::info!("Released the leader lease {}", self.lease_name);
                    return Ok(());
                }
                Err(error) if is_conflict(&error) && attempt < RELEASE_ATTEMPTS => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

impl LeaseGuard {
    /// The fence for the deploys done under this lease: one for every app.
    pub fn fence(&self) -> Fence {
        Fence::single(self.valid_until.clone())
    }

    /// Resolves once the lease is lost (taken by another candidate, or not renewed in time);
    /// from then on this process must not act as the leader.
    pub async fn lost(&self) {
        let mut lost = self.lost.clone();
        // An error means the renewer is gone (it panicked): nothing renews the lease any more.
        let _ = lost.wait_for(|lost| *lost).await;
    }

    /// Stop renewing and release the lease, waiting for the release to reach the API server
    /// (unlike a drop, whose release a shutting-down runtime may cut short).
    pub async fn release(mut self) -> Result<(), kube::Error> {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
            let _ = renewer.await;
        }
        self.elector.release().await
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let Some(renewer) = self.renewer.take() else {
            return;
        };
        renewer.abort();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let elector = self.elector.clone();
        runtime.spawn(async move {
            // Waiting for the renewer keeps its last write from landing after the release.
            let _ = renewer.await;
            if let Err(error) = elector.release().await {
                tracing::warn!(
                    "Could not release the leader lease {}: {error}",
                    elector.lease_name
                );
            }
        });
    }
}

/// The current holder; an empty identity, as other tools write on release, is none.
pub(crate) fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity
        .as_deref()
        .filter(|holder| !holder.is_empty())
}

/// Whether the holder let the lease run out. A lease without a renew time or duration was not
/// written by a well-behaved holder and is treated as expired.
pub(crate) fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    match (&spec.renew_time, spec.lease_duration_seconds) {
        (Some(MicroTime(renewed)), Some(seconds)) => {
            now.duration_since(*renewed) > SignedDuration::from_secs(seconds.into())
        }
        _ => true,
    }
}

pub(crate) fn lease_duration_seconds() -> i32 {
    LEASE_DURATION.as_secs() as i32
}

pub(crate) fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

/// Errors worth waiting out: races, throttling, server trouble and anything short of an answer.
fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 408 | 409 | 429 | 500..),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, renewed_secs_ago: Option<i64>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(15),
            renew_time: renewed_secs_ago
                .map(|ago| MicroTime(Timestamp::now() - SignedDuration::from_secs(ago))),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_expires_after_its_duration() {
        let now = Timestamp::now();
        assert!(!expired(&spec(Some("a"), Some(5)), now));
        assert!(expired(&spec(Some("a"), Some(20)), now));
        assert!(expired(&spec(Some("a"), None), now));
    }

    #[test]
    fn an_empty_holder_is_no_holder() {
        assert_eq!(holder(&spec(Some(""), Some(1))), None);
        assert_eq!(holder(&spec(None, Some(1))), None);
        assert_eq!(holder(&spec(Some("a"), Some(1))), Some("a"));
    }
}
