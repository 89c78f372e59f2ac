//! The watch on Applications, and the tasks that carry out the scheduler's decisions
//! (`fiaas-daemon/src/scheduler.rs` decides; this module only performs): deploy tasks, FAILED
//! statuses for superseded deployment ids, retry timers.

use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::application::{ApplicationView, RawApplication};
use crate::deploy_error::DeployError;
use crate::deployer::{Cancel, Deployer};
use crate::health::Heartbeat;
use crate::scheduler::{AppKey, Decision, Finished, Scheduler};
use crate::shards::{Shards, shard_of};

/// How long the watch may fail before `/healthz` reports it.
const WATCH_FAILURE_ALLOWANCE: Duration = Duration::from_secs(20);
/// How often the controller proves it is responsive.
const TICK: Duration = Duration::from_secs(5);

/// How the controller is asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Keep running.
    No,
    /// Stop taking work and let in-flight deploys reach a safe point, within the grace period
    /// (SIGTERM).
    Gracefully,
    /// Stop every deploy at once, without another write: another replica may take over now
    /// (the leader lease was lost).
    Now,
}

/// What deploy tasks and timers report back.
enum Report {
    Finished(ApplicationView, Finished),
    Retry(ApplicationView),
}

struct Running {
    deployment_id: String,
    cancel: watch::Sender<Cancel>,
    task: JoinHandle<()>,
}

/// Watches Applications and runs their deploys.
pub struct Controller {
    client: Client,
    namespace: Option<String>,
    deployer: Arc<Deployer>,
    watcher_heartbeat: Heartbeat,
    deployer_heartbeat: Heartbeat,
    scheduler: Scheduler,
    running: HashMap<AppKey, Running>,
    /// With `--shards`: only apps of the shards this replica holds are deployed.
    shards: Option<Shards>,
}

impl Controller {
    /// A controller over the Applications of `namespace` (all namespaces if `None`).
    pub fn new(
        client: Client,
        namespace: Option<String>,
        deployer: Arc<Deployer>,
        watcher_heartbeat: Heartbeat,
        deployer_heartbeat: Heartbeat,
    ) -> Self {
        Controller {
            client,
            namespace,
            deployer,
            watcher_heartbeat,
            deployer_heartbeat,
            scheduler: Scheduler::new(),
            running: HashMap::new(),
            shards: None,
        }
    }

    /// Deploy only the apps of the shards this replica holds: a gained shard's apps are
    /// (re)listed and resumed, a lost one's deploys stop at once.
    pub fn sharded(mut self, shards: Shards) -> Self {
        self.shards = Some(shards);
        self
    }

    fn owns(&self, view: &ApplicationView) -> bool {
        self.shards
            .as_ref()
            .is_none_or(|shards| shards.holds(&view.namespace, &view.app))
    }

    /// Run until `stop` says otherwise. Unfinished deploys are picked up again by the next
    /// start (their status is not final).
    pub async fn run(mut self, mut stop: watch::Receiver<Stop>, grace: Duration) {
        let api: Api<RawApplication> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let watch = || {
            watcher::watcher(api.clone(), fiaas_k8s::watch_config())
                .backoff(fiaas_k8s::WatchBackoff::default())
                .boxed()
        };
        let mut stream = watch();
        let mut held_changes = self.shards.as_ref().map(Shards::held);
        let mut held: BTreeSet<u32> = BTreeSet::new();
        let (reports_tx, mut reports) = mpsc::unbounded_channel::<Report>();
        let mut tick = tokio::time::interval(TICK);
        let mut failing_since: Option<(Instant, String)> = None;
        let how = loop {
            tokio::select! {
                changed = stop.changed() => {
                    let how = *stop.borrow();
                    if changed.is_err() {
                        break Stop::Gracefully;
                    }
                    if how != Stop::No {
                        break how;
                    }
                }
                _ = tick.tick() => {
                    match self.deployer.tracker.watch_failing() {
                        Some((failing, reason)) if failing > WATCH_FAILURE_ALLOWANCE => {
                            self.deployer_heartbeat.stop(format!("watching Deployments fails: {reason}"));
                        }
                        _ => self.deployer_heartbeat.beat(),
                    }
                    match &failing_since {
                        Some((since, reason)) if since.elapsed() > WATCH_FAILURE_ALLOWANCE => {
                            self.watcher_heartbeat.stop(format!("watching Applications fails: {reason}"));
                        }
                        _ => self.watcher_heartbeat.beat(),
                    }
                }
                Some(Ok(())) = changed(&mut held_changes) => {
                    let now: BTreeSet<u32> = held_changes
                        .as_mut()
                        .map(|changes| changes.borrow_and_update().clone())
                        .unwrap_or_default();
                    let lost: BTreeSet<u32> = held.difference(&now).copied().collect();
                    let gained = now.difference(&held).next().is_some();
                    held = now;
                    if !lost.is_empty() {
                        self.hand_over(&lost);
                    }
                    if gained {
                        // The previous holder may have deployed the new shards' apps.
                        self.deployer.applier.forget_cached().await;
                        self.deployer.statuses.forget_cached().await;
                        // A fresh listing brings every app of the new shards, deployed or not.
                        stream = watch();
                    }
                }
                Some(report) = reports.recv() => {
                    let decisions = match report {
                        Report::Finished(view, finished) => {
                            let key = (view.namespace.clone(), view.app.clone());
                            if self.running.get(&key).is_some_and(|r| Some(&r.deployment_id) == view.deployment_id.as_ref()) {
                                self.running.remove(&key);
                            }
                            self.scheduler.finished(view, finished)
                        }
                        Report::Retry(view) if self.owns(&view) => self.scheduler.retry(view),
                        Report::Retry(_) => Vec::new(),
                    };
                    self.perform(decisions, &reports_tx);
                }
                event = stream.next() => {
                    match event {
                        Some(Ok(event)) => {
                            failing_since = None;
                            self.watcher_heartbeat.beat();
                            let decisions = match event {
                                Event::Apply(object) | Event::InitApply(object) if !self.owns(&ApplicationView::of(&object)) => Vec::new(),
                                Event::Apply(object) => self.scheduler.applied(ApplicationView::of(&object), false),
                                Event::InitApply(object) => self.scheduler.applied(ApplicationView::of(&object), true),
                                Event::Delete(object) => {
                                    let view = ApplicationView::of(&object);
                                    let _span = crate::logging::deploy_span(
                                        &view.app,
                                        &view.namespace,
                                        view.deployment_id.as_deref().unwrap_or_default(),
                                    )
                                    .entered();
                                    tracing::info!(
                                        "Deleting {}. No specific action, the garbage collector removes its objects",
                                        view.app
                                    );
                                    self.scheduler.deleted(&view)
                                }
                                Event::Init | Event::InitDone => Vec::new(),
                            };
                            self.perform(decisions, &reports_tx);
                        }
                        Some(Err(error)) => {
                            tracing::warn!("Error while watching Applications: {error}");
                            failing_since.get_or_insert_with(|| (Instant::now(), error.to_string()));
                        }
                        None => {
                            self.watcher_heartbeat.stop("the Application watch ended");
                            break Stop::Gracefully;
                        }
                    }
                }
            }
        };
        self.shut_down(how, grace).await;
    }

    /// The apps of `lost` shards are another replica's now: their deploys stop without another
    /// write (their fence is closed already) and the scheduler forgets them.
    fn hand_over(&mut self, lost: &BTreeSet<u32>) {
        let Some(count) = self.shards.as_ref().map(Shards::count) else {
            return;
        };
        let leaving = |(namespace, app): &AppKey| lost.contains(&shard_of(namespace, app, count));
        for key in self.scheduler.hand_over(leaving) {
            if let Some(running) = self.running.remove(&key) {
                running.task.abort();
            }
        }
        crate::metrics::deploy_queue(self.scheduler.running(), self.scheduler.queued());
    }

    fn perform(&mut self, decisions: Vec<Decision>, reports: &mpsc::UnboundedSender<Report>) {
        self.perform_each(decisions, reports);
        crate::metrics::deploy_queue(self.scheduler.running(), self.scheduler.queued());
    }

    fn perform_each(&mut self, decisions: Vec<Decision>, reports: &mpsc::UnboundedSender<Report>) {
        for decision in decisions {
            match decision {
                Decision::Start {
                    view,
                    check,
                    attempt,
                } => {
                    let key = (view.namespace.clone(), view.app.clone());
                    let deployment_id = view.deployment_id.clone().unwrap_or_default();
                    let (cancel, cancel_rx) = watch::channel(Cancel::No);
                    let deployer = self.deployer.clone();
                    let reports = reports.clone();
                    let task = tokio::spawn(async move {
                        let run = deployer.run(view.clone(), cancel_rx, check, attempt);
                        let finished = match unless_panicked(run).await {
                            Ok(finished) => finished,
                            Err(message) => {
                                tracing::error!("The deploy of {} panicked: {message}", view.app);
                                // Boxed: it would otherwise size every waiting task.
                                Box::pin(
                                    deployer.record_failure(&view, DeployError::Panicked(message)),
                                )
                                .await
                            }
                        };
                        let _ = reports.send(Report::Finished(view, finished));
                    });
                    self.running.insert(
                        key,
                        Running {
                            deployment_id,
                            cancel,
                            task,
                        },
                    );
                }
                Decision::Cancel { key, reason } => {
                    if let Some(running) = self.running.get(&key) {
                        let _ = running.cancel.send(reason);
                    }
                }
                Decision::Supersede { view, by } => {
                    let deployer = self.deployer.clone();
                    tokio::spawn(async move {
                        deployer
                            .record_failure(&view, DeployError::Superseded(by))
                            .await;
                    });
                }
                Decision::RetryLater { view, after } => {
                    let reports = reports.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(after).await;
                        let _ = reports.send(Report::Retry(view));
                    });
                }
            }
        }
    }

    async fn shut_down(&mut self, how: Stop, grace: Duration) {
        if how == Stop::Now {
            // Dropping a task's future cancels its requests; nothing is written after this.
            for (_, running) in self.running.drain() {
                running.task.abort();
            }
            return;
        }
        for running in self.running.values() {
            let _ = running.cancel.send(Cancel::Shutdown);
        }
        let tasks: Vec<JoinHandle<()>> = self.running.drain().map(|(_, r)| r.task).collect();
        let all = futures::future::join_all(tasks);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "Deploys still applying after {}s of shutdown grace; they resume after restart",
                grace.as_secs()
            );
        }
    }
}

/// The next change of the held shards; never, without sharding.
async fn changed(
    held: &mut Option<watch::Receiver<BTreeSet<u32>>>,
) -> Option<Result<(), watch::error::RecvError>> {
    match held {
        Some(held) => Some(held.changed().await),
        None => std::future::pending().await,
    }
}

/// Run `deploy`, turning a panic inside it into the panic's message: a defect met by one deploy
/// must fail that deploy, not leave its app marked as running forever.
async fn unless_panicked<T>(deploy: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(deploy)
        .catch_unwind()
        .await
        .map_err(|panic| {
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_owned())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_deploy_becomes_its_message() {
        let overflow = async {
            let delay: i32 = std::hint::black_box(i32::MAX);
            delay.checked_mul(2).expect("the rollout timeout overflows")
        };
        assert_eq!(
            unless_panicked(overflow).await,
            Err("the rollout timeout overflows".to_owned())
        );
        let formatted = async { panic!("deploy {} failed", 7) };
        assert_eq!(
            unless_panicked(formatted).await,
            Err::<(), _>("deploy 7 failed".to_owned())
        );
        assert_eq!(unless_panicked(async { 5 }).await, Ok(5));
    }
}
