//! Rollout tracking, driven by a watch on Deployments: a deploy is ready when the Deployment
//! controller reports the applied generation fully rolled out, failed when it reports the
//! progress deadline exceeded or when upstream's timeout passes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fiaas_spec::AppSpec;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::K8sError;
use crate::error::is_not_found;

/// How a rollout ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutOutcome {
    /// Every replica of the applied generation is updated, ready and available.
    Ready,
    /// The rollout will not finish; the reason is for the status logs.
    Failed(String),
}

/// What tracking needs of a Deployment; the rest of the object is not kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RolloutState {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `spec.replicas`.
    pub desired: Option<i32>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `status.replicas`.
    pub replicas: Option<i32>,
    /// `status.updatedReplicas`.
    pub updated: Option<i32>,
    /// `status.readyReplicas`.
    pub ready: Option<i32>,
    /// `status.availableReplicas`.
    pub available: Option<i32>,
    /// The message of a `Progressing=False` / `ProgressDeadlineExceeded` condition.
    pub deadline_exceeded: Option<String>,
    /// The `fiaas/deployment_id` label: which deployment id the cluster runs.
    pub deployment_id: Option<String>,
}

impl RolloutState {
    /// The state of a Deployment object.
    pub fn of(deployment: &Deployment) -> Self {
        let status = deployment.status.clone().unwrap_or_default();
        let deadline_exceeded = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| {
                c.type_ == "Progressing"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            })
            .map(|c| {
                c.message
                    .unwrap_or_else(|| "ProgressDeadlineExceeded".to_owned())
            });
        RolloutState {
            generation: deployment.metadata.generation,
            desired: deployment.spec.as_ref().and_then(|s| s.replicas),
            observed_generation: status.observed_generation,
            replicas: status.replicas,
            updated: status.updated_replicas,
            ready: status.ready_replicas,
            available: status.available_replicas,
            deadline_exceeded,
            deployment_id: deployment
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get("fiaas/deployment_id").cloned()),
        }
    }

    /// Upstream's check, plus ready replicas: the controller has seen the current generation,
    /// and updated, ready and available replicas and the total all equal the desired count
    /// (all absent when scaled to zero).
    pub fn is_rolled_out(&self) -> bool {
        let seen = match (self.observed_generation, self.generation) {
            (Some(observed), Some(generation)) => observed >= generation,
            _ => false,
        };
        let desired = self.desired.filter(|d| *d > 0);
        let count = |n: Option<i32>| n.filter(|n| *n > 0);
        seen && [self.replicas, self.updated, self.ready, self.available]
            .into_iter()
            .all(|n| count(n) == desired)
    }
}

type Key = (String, String);

#[derive(Default)]
struct Shared {
    states: HashMap<Key, RolloutState>,
    /// Set once the first full listing has been seen, so "absent" means absent.
    synced: bool,
    /// One channel per Deployment someone waits on, so an event wakes only its own waiters.
    waiters: HashMap<Key, watch::Sender<u64>>,
    /// Since when, and why, the watch fails; `None` while it works.
    failing: Option<(std::time::Instant, String)>,
}

/// Follows every fiaas Deployment in scope through one watch and lets deploys wait on theirs.
#[derive(Clone)]
pub struct RolloutTracker {
    shared: Arc<Mutex<Shared>>,
    changed: watch::Sender<u64>,
    client: Client,
}

fn key_of(deployment: &Deployment) -> Option<Key> {
    Some((
        deployment.metadata.namespace.clone()?,
        deployment.metadata.name.clone()?,
    ))
}

impl RolloutTracker {
    /// A tracker over the Deployments of `namespace` (all namespaces if `None`) that fiaas
    /// labels. The returned future runs the watch; spawn it and keep it running.
    pub fn new(
        client: Client,
        namespace: Option<&str>,
    ) -> (Self, impl std::future::Future<Output = ()> + Send + 'static) {
        let api: Api<Deployment> = match namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        };
        let (changed, _) = watch::channel(0u64);
        let tracker = RolloutTracker {
            shared: Arc::new(Mutex::new(Shared::default())),
            changed,
            client,
        };
        let runner = tracker.clone();
        let config = crate::watch_config().labels("fiaas/deployment_id");
        let task = async move {
            let mut stream = watcher::watcher(api, config)
                .backoff(crate::WatchBackoff::default())
                .boxed();
            let mut pending: HashMap<Key, RolloutState> = HashMap::new();
            while let Some(event) = stream.next().await {
                if let Ok(mut shared) = runner.shared.lock() {
                    match &event {
                        Ok(_) => shared.failing = None,
                        Err(e) => {
                            shared
                                .failing
                                .get_or_insert_with(|| (std::time::Instant::now(), e.to_string()));
                        }
                    }
                }
                match event {
                    // A (re)listing is staged and swapped in whole when complete, so objects
                    // deleted while the watch was down disappear too.
                    Ok(Event::InitApply(d)) => {
                        if let Some(key) = key_of(&d) {
                            pending.insert(key, RolloutState::of(&d));
                        }
                    }
                    Ok(Event::Apply(d)) => {
                        if let Some(key) = key_of(&d) {
                            let state = RolloutState::of(&d);
                            runner.update_one(key, Some(state));
                        }
                    }
                    Ok(Event::Delete(d)) => {
                        if let Some(key) = key_of(&d) {
                            runner.update_one(key, None);
                        }
                    }
                    Ok(Event::Init) => pending.clear(),
                    Ok(Event::InitDone) => {
                        let listed = std::mem::take(&mut pending);
                        runner.update(|s| {
                            s.states = listed;
                            s.synced = true;
                        });
                    }
                    Err(e) => tracing::warn!("Deployment watch error, retrying: {e}"),
                }
            }
        };
        (tracker, task)
    }

    /// A whole new picture (a relisting): every waiter looks again.
    fn update(&self, change: impl FnOnce(&mut Shared)) {
        if let Ok(mut shared) = self.shared.lock() {
            change(&mut shared);
        }
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// One Deployment changed: only its waiters look again.
    fn update_one(&self, key: Key, state: Option<RolloutState>) {
        let Ok(mut shared) = self.shared.lock() else {
            return;
        };
        if let Some(waiters) = shared.waiters.get(&key) {
            waiters.send_modify(|n| *n = n.wrapping_add(1));
        }
        match state {
            Some(state) => shared.states.insert(key, state),
            None => shared.states.remove(&key),
        };
    }

    fn subscribe(&self, key: &Key) -> Option<watch::Receiver<u64>> {
        let mut shared = self.shared.lock().ok()?;
        Some(
            shared
                .waiters
                .entry(key.clone())
                .or_insert_with(|| watch::channel(0).0)
                .subscribe(),
        )
    }

    fn unsubscribe(&self, key: &Key) {
        if let Ok(mut shared) = self.shared.lock()
            && shared
                .waiters
                .get(key)
                .is_some_and(|w| w.receiver_count() == 0)
        {
            shared.waiters.remove(key);
        }
    }

    /// How long, and why, the Deployment watch has been failing; `None` while it works. Deploys
    /// cannot finish while it fails, so the daemon's health reports it.
    pub fn watch_failing(&self) -> Option<(Duration, String)> {
        let shared = self.shared.lock().ok()?;
        shared
            .failing
            .as_ref()
            .map(|(since, reason)| (since.elapsed(), reason.clone()))
    }

    /// The tracked state of a Deployment; `Some(None)` when the watch has listed and it does
    /// not exist, `None` before the first listing.
    pub fn state(&self, namespace: &str, name: &str) -> Option<Option<RolloutState>> {
        let shared = self.shared.lock().ok()?;
        let key = (namespace.to_owned(), name.to_owned());
        if shared.synced {
            Some(shared.states.get(&key).cloned())
        } else {
            shared.states.get(&key).cloned().map(Some)
        }
    }

    /// `spec.replicas` of a live Deployment, when the watch knows (for keeping HPA counts).
    pub fn live_replicas(&self, namespace: &str, name: &str) -> Option<Option<i32>> {
        self.state(namespace, name)
            .map(|state| state.and_then(|s| s.desired))
    }

    /// Wait until the app's Deployment has rolled out `generation` (and, when asked, its TLS
    /// certificates are ready), or has failed, or `timeout` has passed.
    pub async fn wait(
        &self,
        app: &AppSpec,
        generation: Option<i64>,
        timeout: Duration,
        check_certificates: bool,
    ) -> RolloutOutcome {
        self.wait_for(
            &app.namespace,
            &app.name,
            generation,
            timeout,
            check_certificates,
        )
        .await
    }

    /// [`Self::wait`] for the app `name` of `namespace`, for a caller that keeps no more of
    /// the app than that while it waits.
    pub async fn wait_for(
        &self,
        namespace: &str,
        name: &str,
        generation: Option<i64>,
        timeout: Duration,
        check_certificates: bool,
    ) -> RolloutOutcome {
        let key = (namespace.to_owned(), name.to_owned());
        let outcome = self
            .wait_subscribed(&key, generation, timeout, check_certificates)
            .await;
        self.unsubscribe(&key);
        outcome
    }

    async fn wait_subscribed(
        &self,
        key: &Key,
        generation: Option<i64>,
        timeout: Duration,
        check_certificates: bool,
    ) -> RolloutOutcome {
        let deadline = Instant::now() + timeout.min(MAX_ROLLOUT_TIMEOUT);
        let mut changes = self.changed.subscribe();
        let Some(mut own_changes) = self.subscribe(key) else {
            return RolloutOutcome::Failed("the rollout tracker is broken".to_owned());
        };
        loop {
            let (namespace, name) = key;
            let state = self.state(namespace, name).flatten();
            if let Some(state) = &state {
                let current = generation.is_none_or(|g| state.generation.is_some_and(|s| s >= g));
                // A deadline condition counts only once the controller has seen this
                // generation: an earlier rollout's verdict says nothing about this one.
                let observed = state.observed_generation >= state.generation;
                if current {
                    if let Some(message) = state.deadline_exceeded.as_ref().filter(|_| observed) {
                        return RolloutOutcome::Failed(format!(
                            "Deployment {name} exceeded its progress deadline: {message}"
                        ));
                    }
                    if state.is_rolled_out() {
                        if !check_certificates {
                            return RolloutOutcome::Ready;
                        }
                        match Box::pin(certificates_ready(&self.client, namespace, name)).await {
                            Ok(true) => return RolloutOutcome::Ready,
                            Ok(false) => {}
                            Err(e) => tracing::warn!("checking certificates of {name}: {e}"),
                        }
                    }
                }
            }
            // Certificates have no watch here; while waiting for them, look again shortly.
            let wake =
                if check_certificates && state.as_ref().is_some_and(RolloutState::is_rolled_out) {
                    (Instant::now() + Duration::from_secs(2)).min(deadline)
                } else {
                    deadline
                };
            tokio::select! {
                own = own_changes.changed() => {
                    if own.is_err() {
                        return RolloutOutcome::Failed("the Deployment watch stopped".to_owned());
                    }
                }
                changed = changes.changed() => {
                    if changed.is_err() {
                        return RolloutOutcome::Failed("the Deployment watch stopped".to_owned());
                    }
                }
                _ = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= deadline {
                        return RolloutOutcome::Failed(format!(
                            "Timed out after {} seconds waiting for {} to become ready",
                            timeout.as_secs(),
                            key.1
                        ));
                    }
                }
            }
        }
    }
}

/// Upstream's timeout: multiplier × readiness initial delay × maximum replicas (× 1 when the
/// maximum is 0).
pub fn rollout_timeout(app: &AppSpec, multiplier: i64) -> Duration {
    let replicas = i64::from(app.autoscaler.max_replicas).max(1);
    let delay = i64::from(app.health_checks.readiness.initial_delay_seconds);
    let seconds = multiplier.saturating_mul(delay).saturating_mul(replicas);
    Duration::from_secs(u64::try_from(seconds).unwrap_or(0)).min(MAX_ROLLOUT_TIMEOUT)
}

/// The longest rollout wait: the upstream formula multiplies values from the fiaas.yml, which can
/// be arbitrarily large; no rollout is followed for longer than this.
pub const MAX_ROLLOUT_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether every cert-manager Certificate named by a TLS entry of the app's Ingresses is
/// Ready and not expired.
async fn certificates_ready(client: &Client, namespace: &str, app: &str) -> Result<bool, K8sError> {
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let selector = format!("app={app}");
    let listed = ingresses
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| K8sError::api("list", "Ingress", &selector, source))?;
    let resource = ApiResource {
        group: "cert-manager.io".to_owned(),
        version: "v1".to_owned(),
        api_version: "cert-manager.io/v1".to_owned(),
        kind: "Certificate".to_owned(),
        plural: "certificates".to_owned(),
    };
    let certificates: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &resource);
    let now = jiff::Timestamp::now();
    for ingress in listed.items {
        for tls in ingress.spec.and_then(|s| s.tls).unwrap_or_default() {
            let Some(secret) = tls.secret_name else {
                continue;
            };
            let certificate = match certificates.get(&secret).await {
                Ok(c) => c,
                Err(e) if is_not_found(&e) => return Ok(false),
                Err(source) => return Err(K8sError::api("get", "Certificate", &secret, source)),
            };
            let status = &certificate.data["status"];
            let expired = status["notAfter"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_some_and(|t| t < now);
            let ready = status["conditions"].as_array().is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            if expired || !ready {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(generation: i64, observed: i64, counts: [i32; 5]) -> RolloutState {
        let n = |v: i32| (v >= 0).then_some(v);
        RolloutState {
            generation: Some(generation),
            observed_generation: Some(observed),
            desired: n(counts[0]),
            replicas: n(counts[1]),
            updated: n(counts[2]),
            ready: n(counts[3]),
            available: n(counts[4]),
            deadline_exceeded: None,
            deployment_id: None,
        }
    }

    #[test]
    fn huge_user_values_give_the_capped_timeout_not_an_overflow() {
        let document = serde_json::json!({
            "version": 3,
            "replicas": {"minimum": 2, "maximum": i32::MAX},
            "healthchecks": {"readiness": {"initial_delay_seconds": i32::MAX}},
        });
        let facts = fiaas_spec::AppFacts {
            name: "huge".to_owned(),
            namespace: "default".to_owned(),
            image: "image:1".to_owned(),
            deployment_id: "d".to_owned(),
            uid: None,
            additional_labels: None,
            additional_annotations: None,
        };
        let app = fiaas_spec::from_document(&document, &facts).expect("a valid fiaas.yml");
        assert_eq!(rollout_timeout(&app, i64::MAX), MAX_ROLLOUT_TIMEOUT);
        assert_eq!(rollout_timeout(&app, -1), Duration::ZERO);
    }

    #[test]
    fn rolled_out_needs_every_count_and_the_current_generation() {
        assert!(state(2, 2, [3, 3, 3, 3, 3]).is_rolled_out());
        assert!(!state(2, 1, [3, 3, 3, 3, 3]).is_rolled_out());
        assert!(
            !state(2, 2, [3, 4, 3, 3, 3]).is_rolled_out(),
            "old pods still running"
        );
        assert!(!state(2, 2, [3, 3, 2, 3, 3]).is_rolled_out());
        assert!(!state(2, 2, [3, 3, 3, 3, 2]).is_rolled_out());
        assert!(
            state(2, 2, [0, -1, -1, -1, -1]).is_rolled_out(),
            "scaled to zero"
        );
    }
}
