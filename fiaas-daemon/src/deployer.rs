//! One deploy of one Application, start to end: INITIATED → RUNNING → apply + prune → rollout
//! → SUCCESS | FAILED, with statuses, events, usage reports, metrics and logs on the way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fiaas_config::ClusterConfig;
use fiaas_k8s::{
    Applier, ClusterFacts, DeployOptions, DeployResult, ObjectHook, QuotaWatch, RolloutOutcome,
    RolloutTracker, StatusSubject, StatusWriter, rollout_timeout,
};
use fiaas_spec::AppSpec;
use fiaas_transform::Level;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tracing::Instrument;

use crate::application::ApplicationView;
use crate::deploy_error::DeployError;
use crate::fence::Fence;
use crate::hook::{ExtensionHook, HookError};
use crate::scheduler::{self, Finished, MAX_RETRIES, StartCheck};
use crate::usage::{UsageEvent, UsageReporter, UsageStatus};
use crate::{logging, metrics};

/// Why a running deploy should stop early.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// Keep going.
    No,
    /// A newer deployment of the same app replaces this one.
    Superseded(String),
    /// The daemon is shutting down: stop without a verdict; it is picked up after a restart.
    Shutdown,
}

/// How often a failing apply is tried before the deploy is FAILED.
const APPLY_ATTEMPTS: u32 = 5;

/// Everything a deploy needs; shared by all deploys. Built with [`Deployer::new`] and the
/// `with_*` methods.
pub struct Deployer {
    config: Arc<ClusterConfig>,
    /// Applies and prunes objects.
    pub(crate) applier: Applier,
    /// Follows rollouts.
    pub(crate) tracker: RolloutTracker,
    /// Knows which namespaces only admit BestEffort pods (without it, each deploy lists quotas).
    quotas: Option<QuotaWatch>,
    /// Writes ApplicationStatus (and the inline status).
    pub(crate) statuses: StatusWriter,
    events: Option<Recorder>,
    usage: Option<UsageReporter>,
    hook: Option<ExtensionHook>,
    /// Bounds how many deploys talk to the API server at once.
    permits: Arc<Semaphore>,
    /// With leader election or sharding: a deploy stops, and nothing more is written for its
    /// app, once the lease covering the app may have passed to another replica.
    fence: Option<Fence>,
}

impl Deployer {
    /// A deployer as the daemon and the bootstrapper run it: ApplicationStatus objects (and
    /// the inline status, with `--include-status-in-app`) written and retained as
    /// `config.deploys` says (`--status-retention`), the extension hook of
    /// `--extension-hook-url` (through `--proxy`), and at most `--max-concurrent-deploys`
    /// deploys talking to the API server at once. The rollout tracker must be running. Errors:
    /// the extension hook cannot be set up.
    pub fn new(
        client: kube::Client,
        config: Arc<ClusterConfig>,
        applier: Applier,
        tracker: RolloutTracker,
    ) -> Result<Deployer, HookError> {
        let deploys = &config.deploys;
        Ok(Deployer {
            statuses: StatusWriter::new(client, config.include_status_in_app)
                .retaining(deploys.status_retention as usize),
            hook: ExtensionHook::from_config(&config)?,
            permits: Arc::new(Semaphore::new(deploys.max_concurrent_deploys as usize)),
            config,
            applier,
            tracker,
            quotas: None,
            events: None,
            usage: None,
            fence: None,
        })
    }

    /// Ask `quotas` which namespaces only admit BestEffort pods instead of listing quotas per
    /// deploy.
    pub fn with_quotas(self, quotas: QuotaWatch) -> Self {
        Deployer {
            quotas: Some(quotas),
            ..self
        }
    }

    /// Publish an Event on the Application for each step.
    pub fn with_events(self, events: Recorder) -> Self {
        Deployer {
            events: Some(events),
            ..self
        }
    }

    /// Report each deploy's start and end.
    pub fn with_usage(self, usage: Option<UsageReporter>) -> Self {
        Deployer { usage, ..self }
    }

    /// Stop a deploy, and write nothing more for its app, once `fence` no longer covers the app.
    pub fn with_fence(self, fence: Option<Fence>) -> Self {
        Deployer { fence, ..self }
    }
}

/// What became of a status write.
enum Saved {
    Stored,
    /// Not stored, and trying again may help (no answer, throttled, server error, fenced).
    Retry,
    /// The API server refused it for good (e.g. an invalid name).
    Refused,
}

/// The lines a deploy logs, kept for its ApplicationStatus.
struct StatusLog {
    namespace: String,
    app: String,
    lines: Vec<String>,
    errors: Vec<String>,
}

impl StatusLog {
    fn of(view: &ApplicationView) -> Self {
        StatusLog {
            namespace: view.namespace.clone(),
            app: view.app.clone(),
            lines: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn push(&mut self, level: tracing::Level, message: &str) {
        match level {
            tracing::Level::ERROR => tracing::error!("{message}"),
            tracing::Level::WARN => tracing::warn!("{message}"),
            _ => tracing::info!("{message}"),
        }
        let line = logging::status_line(
            level,
            message,
            module_path!(),
            "Deployer",
            &self.namespace,
            &self.app,
        );
        if level == tracing::Level::ERROR {
            self.errors.push(line.clone());
        }
        self.lines.push(line);
    }
}

/// Deadline of one apply + prune of an app's objects, retries included: a hung connection or a
/// stalled API server fails the attempt instead of holding its permit forever.
const APPLY_DEADLINE: Duration = Duration::from_secs(120);
/// Deadline of one status write or lookup, or one Event.
const WRITE_DEADLINE: Duration = Duration::from_secs(20);
/// How often a final status write is tried before the deploy counts as not done.
const STATUS_ATTEMPTS: u32 = 3;

impl Deployer {
    /// Deploy one Application version, reporting every step, and say how it ended. `check`
    /// says whether an earlier SUCCESS of the id, still deployed, makes the deploy moot;
    /// `attempt` counts earlier attempts of the id that met a transient failure.
    pub async fn run(
        &self,
        view: ApplicationView,
        cancel: watch::Receiver<Cancel>,
        check: StartCheck,
        attempt: u32,
    ) -> Finished {
        let deployment_id = view.deployment_id.clone().unwrap_or_default();
        let span = logging::deploy_span(&view.app, &view.namespace, &deployment_id);
        let (namespace, app) = (view.namespace.clone(), view.app.clone());
        let deploy = self
            .run_in_span(view, cancel, check, attempt)
            .instrument(span);
        match &self.fence {
            None => deploy.await,
            Some(fence) => tokio::select! {
                biased;
                () = fence.closed(&namespace, &app) => Finished::Stopped,
                finished = deploy => finished,
            },
        }
    }

    /// Deploy one Application version to its end for a caller without a scheduler (the
    /// bootstrapper, tools embedding the deployer): after a transient failure it is tried again
    /// with the daemon's delays, until it has a verdict or is stopped.
    pub async fn run_until_done(
        &self,
        view: &ApplicationView,
        cancel: watch::Receiver<Cancel>,
    ) -> Finished {
        let mut attempt = 0;
        loop {
            match self
                .run(view.clone(), cancel.clone(), StartCheck::Fresh, attempt)
                .await
            {
                Finished::Transient => {
                    attempt += 1;
                    tokio::time::sleep(scheduler::retry_delay(attempt)).await;
                }
                finished => return finished,
            }
        }
    }

    async fn run_in_span(
        &self,
        view: ApplicationView,
        mut cancel: watch::Receiver<Cancel>,
        check: StartCheck,
        attempt: u32,
    ) -> Finished {
        // The permit comes before the first request, so however many Applications wait (a
        // restart that finds thousands not SUCCESS), only so many deploys talk to the API
        // server at once. Until then a deploy is small: the rest of it (a large state machine)
        // is allocated only once it runs.
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            _ = cancelled(&mut cancel) => None,
        };
        match permit {
            Some(permit) => Box::pin(self.deploy(view, cancel, check, attempt, permit)).await,
            None => {
                let mut log = StatusLog::of(&view);
                Box::pin(self.stop_early(&view, &view.subject(), &cancel, &mut log)).await
            }
        }
    }

    /// The deploy proper, holding `permit` while it talks to the API server: up to the apply,
    /// and again for the verdict. Waiting for the rollout, which may take minutes, it holds
    /// none, so the other apps deploy meanwhile (as upstream's separate ready check did).
    async fn deploy(
        &self,
        mut view: ApplicationView,
        mut cancel: watch::Receiver<Cancel>,
        check: StartCheck,
        attempt: u32,
        permit: OwnedSemaphorePermit,
    ) -> Finished {
        // Every large step is boxed and gone once done: a deploy waiting for its rollout keeps
        // only its status log and what names it, not the apply's state or the app's spec.
        let started = Instant::now();
        let subject = view.subject();
        let mut log = StatusLog::of(&view);
        if check == StartCheck::SkipIfDeployed && Box::pin(self.already_deployed(&view)).await {
            tracing::debug!("Deployment of {} already succeeded", view.app);
            return Finished::AlreadyDeployed;
        }
        if attempt == 0 {
            Box::pin(self.record(&view, &subject, DeployResult::Initiated, &mut log)).await;
        }
        let app = match self.build(&view) {
            Ok(app) => Box::new(app),
            Err(error) => {
                return Box::pin(self.conclude(&view, &subject, Err(error), &mut log)).await;
            }
        };
        let repository = view.repository();
        let usage = |status| UsageEvent {
            status,
            app: view.app.clone(),
            namespace: view.namespace.clone(),
            deployment_id: subject.deployment_id.clone(),
            repository: repository.clone(),
        };
        Box::pin(self.record(&view, &subject, DeployResult::Running, &mut log)).await;
        if attempt == 0 {
            if let Some(reporter) = &self.usage {
                reporter.report(usage(UsageStatus::Started));
            }
            metrics::deploy_requested(&view.app);
        }
        // A newer deployment id stops the apply at once; a shutdown lets it finish (within the
        // grace period), so what is applied is whole.
        let applied = tokio::select! {
            applied = Box::pin(self.apply(&app, &mut log)) => applied,
            _ = superseded(&mut cancel) => {
                return Box::pin(self.stop_early(&view, &subject, &cancel, &mut log)).await;
            }
        };
        let timeout = rollout_timeout(&app, self.config.ready_check_timeout_multiplier);
        let certificates =
            self.config.tls_certificate_ready && app.ingress_tls.enabled == Some(true);
        let is_daemon = app.name == "fiaas-deploy-daemon";
        drop(app);
        drop(permit);
        view.config = None;
        view.additional_labels = serde_json::Value::Null;
        view.additional_annotations = serde_json::Value::Null;
        let outcome = match applied {
            Err(error) if error.is_transient() && attempt < MAX_RETRIES => {
                log.push(
                    tracing::Level::WARN,
                    &format!("{error}; trying again shortly"),
                );
                return Finished::Transient;
            }
            Err(error) => Err(error),
            Ok(_) if is_daemon => Ok(()),
            Ok(generation) => {
                let wait = self.tracker.wait_for(
                    &view.namespace,
                    &view.app,
                    generation,
                    timeout,
                    certificates,
                );
                tokio::select! {
                    outcome = wait => match outcome {
                        RolloutOutcome::Ready => Ok(()),
                        RolloutOutcome::Failed(reason) => Err(DeployError::Rollout(reason)),
                    },
                    _ = cancelled(&mut cancel) => {
                        return Box::pin(self.stop_early(&view, &subject, &cancel, &mut log)).await;
                    }
                }
            }
        };
        let verdict = if outcome.is_ok() {
            DeployResult::Success
        } else {
            DeployResult::Failed
        };
        // Rollouts that end together (a kubelet marking a fleet ready) write their verdicts
        // within the same bound as deploys start.
        let _permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit.ok(),
            _ = cancelled(&mut cancel) => {
                return Box::pin(self.stop_early(&view, &subject, &cancel, &mut log)).await;
            }
        };
        if let Some(reporter) = &self.usage {
            reporter.report(usage(if verdict == DeployResult::Success {
                UsageStatus::Succeeded
            } else {
                UsageStatus::Failed
            }));
        }
        let finished = Box::pin(self.conclude(&view, &subject, outcome, &mut log)).await;
        if finished == Finished::Transient && attempt < MAX_RETRIES {
            return finished;
        }
        metrics::reconcile_duration(verdict.as_str(), started.elapsed().as_secs_f64());
        Finished::Verdict(verdict)
    }

    /// Whether the id's ApplicationStatus says SUCCESS and the cluster still runs this id (a
    /// rollback to an id that once succeeded is deployed again). When the status cannot be
    /// read, the deploy goes ahead; while the Deployment watch has not listed yet, the status
    /// alone decides.
    async fn already_deployed(&self, view: &ApplicationView) -> bool {
        let deployment_id = view.deployment_id.as_deref().unwrap_or_default();
        let lookup = self
            .statuses
            .has_succeeded(&view.namespace, &view.app, deployment_id);
        let succeeded = match tokio::time::timeout(WRITE_DEADLINE, lookup).await {
            Ok(Ok(succeeded)) => succeeded,
            Ok(Err(error)) => {
                tracing::warn!(
                    "Could not read the status of {} (deploying anyway): {error}",
                    view.app
                );
                metrics::api_error("list", "ApplicationStatus");
                false
            }
            Err(_) => {
                tracing::warn!(
                    "No answer reading the status of {} (deploying anyway)",
                    view.app
                );
                metrics::api_error("list", "ApplicationStatus");
                false
            }
        };
        succeeded
            && match self.tracker.state(&view.namespace, &view.app) {
                None => true,
                Some(live) => live.and_then(|s| s.deployment_id).as_deref() == Some(deployment_id),
            }
    }

    /// Record the verdict of `outcome`; [`Finished::Transient`] when it could not be stored, so
    /// the deploy is tried again rather than left RUNNING.
    async fn conclude(
        &self,
        view: &ApplicationView,
        subject: &StatusSubject,
        outcome: Result<(), DeployError>,
        log: &mut StatusLog,
    ) -> Finished {
        let verdict = match &outcome {
            Ok(()) => DeployResult::Success,
            Err(error) => {
                log.push(tracing::Level::ERROR, &error.to_string());
                metrics::deploy_error(error.metric_label());
                DeployResult::Failed
            }
        };
        match verdict {
            DeployResult::Success => metrics::deploy_succeeded(&view.app),
            _ => metrics::deploy_failed(&view.app),
        }
        match self.record(view, subject, verdict, log).await {
            // Refused for good (the Event and the log say why): retrying would not store it.
            Saved::Stored | Saved::Refused => Finished::Verdict(verdict),
            Saved::Retry => Finished::Transient,
        }
    }

    /// Record FAILED for a deploy that cannot proceed because of `error` (a panic in its
    /// task, or a newer deployment id that replaced it before it started).
    pub async fn record_failure(&self, view: &ApplicationView, error: DeployError) -> Finished {
        let deployment_id = view.deployment_id.clone().unwrap_or_default();
        let span = logging::deploy_span(&view.app, &view.namespace, &deployment_id);
        async {
            let mut log = StatusLog::of(view);
            self.conclude(view, &view.subject(), Err(error), &mut log)
                .await
        }
        .instrument(span)
        .await
    }

    fn build(&self, view: &ApplicationView) -> Result<AppSpec, DeployError> {
        let (config, facts) = view.facts().map_err(DeployError::InvalidSpec)?;
        metrics::yml_version_seen(&fiaas_spec::version_label(&config), &view.app);
        let app = fiaas_spec::from_document(&config, &facts)
            .map_err(|error| DeployError::InvalidSpec(error.to_string()))?;
        if app.datadog.enabled && self.config.transform.datadog_container_image.is_none() {
            return Err(DeployError::MissingDatadogImage);
        }
        Ok(app)
    }

    /// Apply and prune, retrying transient API failures with backoff, all within
    /// [`APPLY_DEADLINE`]; the Deployment's applied generation on success.
    async fn apply(&self, app: &AppSpec, log: &mut StatusLog) -> Result<Option<i64>, DeployError> {
        let facts = ClusterFacts {
            live_replicas: self.tracker.live_replicas(&app.namespace, &app.name),
            besteffort_qos: self
                .quotas
                .as_ref()
                .and_then(|q| q.besteffort_required(&app.namespace)),
        };
        let options = DeployOptions {
            facts: &facts,
            hook: self.hook.as_ref().map(|h| h as &dyn ObjectHook),
        };
        let attempts = async {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let started = Instant::now();
                match self
                    .applier
                    .deploy(app, &self.config.transform, options)
                    .await
                {
                    Ok(report) => {
                        metrics::time_to_deploy(started.elapsed().as_secs_f64());
                        for (level, note) in &report.notes.0 {
                            let level = match level {
                                Level::Info => tracing::Level::INFO,
                                Level::Warning => tracing::Level::WARN,
                                Level::Error => tracing::Level::ERROR,
                            };
                            log.push(level, note);
                        }
                        return Ok(report.deployment_generation);
                    }
                    Err(error) => {
                        if let fiaas_k8s::K8sError::Api { action, kind, .. } = &error {
                            metrics::api_error(action, kind);
                        }
                        if !error.is_transient() || attempt >= APPLY_ATTEMPTS {
                            return Err(DeployError::Apply {
                                app: app.name.clone(),
                                source: Box::new(error),
                            });
                        }
                        log.push(
                            tracing::Level::WARN,
                            &format!("Retrying the deploy of {} after: {error}", app.name),
                        );
                        tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
                    }
                }
            }
        };
        tokio::time::timeout(APPLY_DEADLINE, attempts)
            .await
            .unwrap_or_else(|_| {
                Err(DeployError::ApplyTimedOut {
                    app: app.name.clone(),
                    seconds: APPLY_DEADLINE.as_secs(),
                })
            })
    }

    async fn stop_early(
        &self,
        view: &ApplicationView,
        subject: &StatusSubject,
        cancel: &watch::Receiver<Cancel>,
        log: &mut StatusLog,
    ) -> Finished {
        let reason = cancel.borrow().clone();
        match reason {
            Cancel::Superseded(newer) => {
                self.conclude(view, subject, Err(DeployError::Superseded(newer)), log)
                    .await;
                Finished::Verdict(DeployResult::Failed)
            }
            Cancel::Shutdown | Cancel::No => Finished::Stopped,
        }
    }

    /// Write a result: ApplicationStatus (+ inline status) and an Event. A final result is
    /// tried [`STATUS_ATTEMPTS`] times; whether it was stored is returned. Failures are logged
    /// and counted.
    async fn record(
        &self,
        view: &ApplicationView,
        subject: &StatusSubject,
        result: DeployResult,
        log: &mut StatusLog,
    ) -> Saved {
        log.push(
            tracing::Level::INFO,
            &format!(
                "Saving result {} for {}/{} deployment_id={}",
                result.as_str(),
                subject.namespace,
                subject.app,
                subject.deployment_id
            ),
        );
        if self
            .fence
            .as_ref()
            .is_some_and(|fence| !fence.holds(&subject.namespace, &subject.app))
        {
            tracing::warn!(
                "Not saving result {}: the leader lease may have passed to another replica",
                result.as_str()
            );
            return Saved::Retry;
        }
        let attempts = if result.is_final() {
            STATUS_ATTEMPTS
        } else {
            1
        };
        let mut saved = Saved::Retry;
        for attempt in 1..=attempts {
            let write = self
                .statuses
                .write(subject, result, &log.lines, &log.errors);
            match tokio::time::timeout(WRITE_DEADLINE, write).await {
                Ok(Ok(())) => {
                    saved = Saved::Stored;
                    break;
                }
                Ok(Err(error)) => {
                    tracing::error!("Failed to save result {}: {error}", result.as_str());
                    if let fiaas_k8s::K8sError::Api { action, kind, .. } = &error {
                        metrics::api_error(action, kind);
                    }
                    if !error.is_transient() {
                        saved = Saved::Refused;
                        break;
                    }
                }
                Err(_) => {
                    tracing::error!(
                        "Failed to save result {}: no answer within {} seconds",
                        result.as_str(),
                        WRITE_DEADLINE.as_secs()
                    );
                    metrics::api_error("apply", "ApplicationStatus");
                }
            }
            if attempt < attempts {
                tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
            }
        }
        let last = log.errors.last().or(log.lines.last()).cloned();
        if result.is_final() {
            log.lines.clear();
            log.errors.clear();
        }
        self.publish_event(view, result, last.as_ref()).await;
        saved
    }

    async fn publish_event(
        &self,
        view: &ApplicationView,
        result: DeployResult,
        last: Option<&String>,
    ) {
        let Some(recorder) = &self.events else { return };
        if result == DeployResult::Initiated {
            return;
        }
        let (type_, reason) = match result {
            DeployResult::Running => (EventType::Normal, "Deploying"),
            DeployResult::Success => (EventType::Normal, "Deployed"),
            _ => (EventType::Warning, "DeployFailed"),
        };
        let note = format!(
            "deployment_id={} {}{}",
            view.deployment_id.clone().unwrap_or_default(),
            result.as_str(),
            last.map(|l| format!(": {l}")).unwrap_or_default()
        );
        let deployment_id = view.deployment_id.clone().unwrap_or_default();
        // The recorder folds events with the same reason and related object into one series
        // that keeps the first note; relating each to its deployment's ApplicationStatus keeps
        // one deployment id's repeats together and every other id in an event of its own.
        let status = ObjectReference {
            api_version: Some(fiaas_k8s::crd::API_VERSION.to_owned()),
            kind: Some("ApplicationStatus".to_owned()),
            name: Some(fiaas_k8s::status_name(&view.app, &deployment_id)),
            namespace: Some(view.namespace.clone()),
            ..ObjectReference::default()
        };
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: "Deploy".to_owned(),
            secondary: Some(status),
        };
        let reference = ObjectReference {
            api_version: Some(fiaas_k8s::crd::API_VERSION.to_owned()),
            kind: Some("Application".to_owned()),
            name: Some(view.object_name.clone()),
            namespace: Some(view.namespace.clone()),
            uid: view.uid.clone(),
            ..ObjectReference::default()
        };
        match tokio::time::timeout(WRITE_DEADLINE, recorder.publish(&event, &reference)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!("Failed to publish event {reason} for {}: {error}", view.app);
                metrics::api_error("create", "Event");
            }
            Err(_) => {
                tracing::warn!("No answer publishing event {reason} for {}", view.app);
                metrics::api_error("create", "Event");
            }
        }
    }
}

/// Completes once the deploy is cancelled for any reason.
async fn cancelled(cancel: &mut watch::Receiver<Cancel>) {
    if cancel.wait_for(|c| *c != Cancel::No).await.is_err() {
        // The sender is gone: nobody can cancel any more.
        std::future::pending::<()>().await;
    }
}

/// Completes once a newer deployment id replaces this one.
async fn superseded(cancel: &mut watch::Receiver<Cancel>) {
    if cancel
        .wait_for(|c| matches!(c, Cancel::Superseded(_)))
        .await
        .is_err()
    {
        std::future::pending::<()>().await;
    }
}
