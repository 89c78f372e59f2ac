//! Fencing: a replica writes for an app only while it holds the Lease that covers the app (the
//! leader lease, or the lease of the app's shard), and stops before another replica can take
//! that lease over.
//!
//! Validity is kept on the monotonic clock as "last renewal sent + renew deadline", which ends
//! before any other candidate can see the lease expire. A process that was frozen (SIGSTOP, a
//! stalled node) and wakes after its lease ran out thus finds the fence closed before its
//! renewer has even run again.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::shards::shard_of;

/// Whether this process may still write for an app. Cheap to clone; one per process.
#[derive(Clone, Debug)]
pub struct Fence {
    /// Per shard, until when writing is allowed; one entry without sharding.
    valid_until: Arc<[watch::Receiver<Instant>]>,
}

impl Fence {
    /// One lease covers every app (leader election).
    pub fn single(valid_until: watch::Receiver<Instant>) -> Self {
        Fence {
            valid_until: Arc::new([valid_until]),
        }
    }

    /// One lease per shard: entry `i` covers the apps of shard `i` (see [`shard_of`]).
    pub fn sharded(valid_until: Vec<watch::Receiver<Instant>>) -> Self {
        Fence {
            valid_until: valid_until.into(),
        }
    }

    fn of(&self, namespace: &str, app: &str) -> &watch::Receiver<Instant> {
        let shards = self.valid_until.len() as u32;
        &self.valid_until[shard_of(namespace, app, shards) as usize]
    }

    /// Whether writing for `app` of `namespace` is still allowed.
    pub fn holds(&self, namespace: &str, app: &str) -> bool {
        Instant::now() < *self.of(namespace, app).borrow()
    }

    /// Resolves once writing for `app` of `namespace` is no longer allowed.
    pub async fn closed(&self, namespace: &str, app: &str) {
        let mut valid_until = self.of(namespace, app).clone();
        loop {
            let until = *valid_until.borrow_and_update();
            if Instant::now() >= until {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                changed = valid_until.changed() => {
                    if changed.is_err() {
                        // The renewer is gone: the last validity stands.
                        tokio::time::sleep_until(until).await;
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_fence_closes_when_renewals_stop_extending_it() {
        let validity = Duration::from_millis(300);
        let (valid_tx, valid_until) = watch::channel(Instant::now() + validity);
        let fence = Fence::single(valid_until);
        assert!(fence.holds("ns", "app"));
        let closing = tokio::spawn({
            let fence = fence.clone();
            async move { fence.closed("ns", "app").await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let renewed = Instant::now();
        valid_tx.send_replace(renewed + validity);
        assert!(fence.holds("ns", "app"));
        closing.await.unwrap();
        assert!(
            renewed.elapsed() >= validity,
            "the renewal extended the fence"
        );
        assert!(!fence.holds("ns", "app"));
    }

    #[tokio::test]
    async fn a_sharded_fence_closes_only_for_the_apps_of_the_lost_shard() {
        let later = Instant::now() + Duration::from_secs(60);
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..4).map(|_| watch::channel(later)).unzip();
        let fence = Fence::sharded(receivers);
        let apps: Vec<String> = (0..40).map(|i| format!("app-{i}")).collect();
        let lost = shard_of("ns", &apps[0], 4);
        senders[lost as usize].send_replace(Instant::now());
        for app in &apps {
            assert_eq!(
                fence.holds("ns", app),
                shard_of("ns", app, 4) != lost,
                "{app}"
            );
        }
        fence.closed("ns", &apps[0]).await;
    }
}
