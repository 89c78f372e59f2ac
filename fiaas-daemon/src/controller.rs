//! The watch on Applications and the scheduling of deploys: concurrent across apps (bounded by
//! the deployer's permits), never two at once for one app, a newer deployment id superseding one
//! still in progress, and the upstream's skip rules.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fiaas_k8s::{ApplicationStatus, DeployResult, status_name};
use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::application::ApplicationView;
use crate::deployer::{Cancel, Deployer};
use crate::health::Heartbeat;

type Key = (String, String);

/// How long the watch may fail before `/healthz` reports it.
const WATCH_FAILURE_ALLOWANCE: Duration = Duration::from_secs(60);
/// How often the controller proves it is responsive.
const TICK: Duration = Duration::from_secs(5);

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
    running: HashMap<Key, Running>,
    pending: HashMap<Key, ApplicationView>,
    /// Deployment ids this process has seen finish, so re-deliveries need no status lookup.
    finished: HashMap<Key, (String, DeployResult)>,
    /// The last resourceVersion handled per Application: a re-delivered version is skipped.
    seen: HashMap<Key, String>,
    /// The last deployment id seen per Application.
    ids: HashMap<Key, String>,
}

/// Whether an Application came from a (re)listing or from a live change.
enum EventKind {
    Listed,
    Live,
}

fn application_resource() -> ApiResource {
    ApiResource::erase::<fiaas_k8s::Application>(&())
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
            running: HashMap::new(),
            pending: HashMap::new(),
            finished: HashMap::new(),
            seen: HashMap::new(),
            ids: HashMap::new(),
        }
    }

    /// Run until `shutdown` becomes true; then stop taking work, let in-flight deploys reach a
    /// safe point (at most `grace`), and return. Unfinished deploys are picked up again by the
    /// next start (their status is not SUCCESS).
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>, grace: Duration) {
        let api: Api<DynamicObject> = match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &application_resource()),
            None => Api::all_with(self.client.clone(), &application_resource()),
        };
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let (done_tx, mut done_rx) =
            mpsc::unbounded_channel::<(Key, String, Option<DeployResult>)>();
        let mut tick = tokio::time::interval(TICK);
        let mut failing_since: Option<(Instant, String)> = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => {
                    if *shutdown.borrow() { break; }
                }
                _ = tick.tick() => {
                    self.deployer_heartbeat.beat();
                    match &failing_since {
                        Some((since, reason)) if since.elapsed() > WATCH_FAILURE_ALLOWANCE => {
                            self.watcher_heartbeat.stop(format!("watching Applications fails: {reason}"));
                        }
                        _ => self.watcher_heartbeat.beat(),
                    }
                }
                Some((key, deployment_id, result)) = done_rx.recv() => {
                    if self.running.get(&key).is_some_and(|r| r.deployment_id == deployment_id) {
                        self.running.remove(&key);
                    }
                    if let Some(result) = result {
                        self.finished.insert(key.clone(), (deployment_id, result));
                    }
                    if !self.running.contains_key(&key)
                        && let Some(view) = self.pending.remove(&key)
                    {
                        self.consider(view, true, &done_tx).await;
                    }
                }
                event = stream.next() => {
                    match event {
                        Some(Ok(event)) => {
                            failing_since = None;
                            self.watcher_heartbeat.beat();
                            self.handle(event, &done_tx).await;
                        }
                        Some(Err(error)) => {
                            tracing::warn!("Error while watching Applications: {error}");
                            failing_since.get_or_insert_with(|| (Instant::now(), error.to_string()));
                        }
                        None => {
                            self.watcher_heartbeat.stop("the Application watch ended");
                            break;
                        }
                    }
                }
            }
        }
        self.shut_down(grace).await;
    }

    async fn handle(
        &mut self,
        event: Event<DynamicObject>,
        done: &mpsc::UnboundedSender<(Key, String, Option<DeployResult>)>,
    ) {
        let event_kind = if matches!(event, Event::InitApply(_)) {
            EventKind::Listed
        } else {
            EventKind::Live
        };
        match event {
            Event::Apply(object) | Event::InitApply(object) => {
                let listed = matches!(event_kind, EventKind::Listed);
                let view = ApplicationView::of(&object);
                let key = (view.namespace.clone(), view.object_name.clone());
                if let Some(version) = &view.resource_version {
                    if self.seen.get(&key) == Some(version) {
                        return;
                    }
                    self.seen.insert(key, version.clone());
                }
                self.consider(view, listed, done).await;
            }
            Event::Delete(object) => {
                let view = ApplicationView::of(&object);
                let key = (view.namespace.clone(), view.object_name.clone());
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
                self.pending.remove(&key);
                self.finished.remove(&key);
                self.seen.remove(&key);
                self.ids.remove(&key);
                if let Some(running) = self.running.get(&key) {
                    let _ = running.cancel.send(Cancel::Shutdown);
                }
            }
            Event::Init | Event::InitDone => {}
        }
    }

    /// Upstream's skip rules, then start the deploy, queue it behind the app's running one, or
    /// let it supersede that one.
    async fn consider(
        &mut self,
        view: ApplicationView,
        listed: bool,
        done: &mpsc::UnboundedSender<(Key, String, Option<DeployResult>)>,
    ) {
        let key = (view.namespace.clone(), view.object_name.clone());
        let Some(deployment_id) = view.deployment_id.clone() else {
            tracing::error!(
                "Application {}/{} has no fiaas/deployment_id label; not deploying it",
                view.namespace,
                view.object_name
            );
            return;
        };
        if view.is_status_echo() {
            tracing::debug!(
                "Skipping status update of {}/{}",
                view.namespace,
                view.object_name
            );
            return;
        }
        if view.deleting {
            tracing::warn!(
                "Skipping update watch event for app {}; it is being deleted",
                view.app
            );
            return;
        }
        if let Some(running) = self.running.get(&key) {
            if running.deployment_id != deployment_id {
                let _ = running
                    .cancel
                    .send(Cancel::Superseded(deployment_id.clone()));
            }
            self.pending.insert(key, view);
            return;
        }
        // A deployment id first seen in a live event (a new Application, or a new id of a known
        // one) cannot have a status yet: only listed ones and repeats need a lookup.
        let fresh = !listed && self.ids.get(&key) != Some(&deployment_id);
        self.ids.insert(key.clone(), deployment_id.clone());
        if !fresh && self.already_succeeded(&key, &view, &deployment_id).await {
            tracing::debug!(
                "Deployment {deployment_id} of {} already succeeded",
                view.app
            );
            return;
        }
        let (cancel, cancel_rx) = watch::channel(Cancel::No);
        let deployer = self.deployer.clone();
        let done = done.clone();
        let task_key = key.clone();
        let task_id = deployment_id.clone();
        let task = tokio::spawn(async move {
            let result = deployer.run(view, cancel_rx).await;
            let _ = done.send((task_key, task_id, result));
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

    /// Whether this deployment id already has a SUCCESS status (so a restart or a re-listing does
    /// not redeploy the fleet).
    async fn already_succeeded(
        &self,
        key: &Key,
        view: &ApplicationView,
        deployment_id: &str,
    ) -> bool {
        if let Some((finished_id, result)) = self.finished.get(key)
            && finished_id == deployment_id
        {
            return *result == DeployResult::Success;
        }
        let api: Api<ApplicationStatus> = Api::namespaced(self.client.clone(), &view.namespace);
        match api.get_opt(&status_name(&view.app, deployment_id)).await {
            Ok(status) => status.is_some_and(|s| s.result == "SUCCESS"),
            Err(error) => {
                tracing::warn!(
                    "Could not read the status of {} (deploying anyway): {error}",
                    view.app
                );
                crate::metrics::api_error("get", "ApplicationStatus");
                false
            }
        }
    }

    async fn shut_down(&mut self, grace: Duration) {
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
