//! One deploy of one Application, start to end: INITIATED → RUNNING → apply + prune → rollout
//! → SUCCESS | FAILED, with statuses, events, usage reports, metrics and logs on the way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fiaas_k8s::{
    Applier, ClusterFacts, DeployOptions, DeployResult, ObjectHook, QuotaWatch, RolloutOutcome,
    RolloutTracker, StatusSubject, StatusWriter, rollout_timeout,
};
use fiaas_spec::AppSpec;
use fiaas_transform::{ClusterConfig, Level};
use futures::FutureExt;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder};
use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use crate::application::ApplicationView;
use crate::hook::ExtensionHook;
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

/// Everything a deploy needs; shared by all deploys.
pub struct Deployer {
    /// The cluster configuration.
    pub config: Arc<ClusterConfig>,
    /// Applies and prunes objects.
    pub applier: Applier,
    /// Follows rollouts.
    pub tracker: RolloutTracker,
    /// Knows which namespaces only admit BestEffort pods (without it, each deploy lists quotas).
    pub quotas: Option<QuotaWatch>,
    /// Writes ApplicationStatus (and the inline status).
    pub statuses: StatusWriter,
    /// Publishes Events on the Application.
    pub events: Option<Recorder>,
    /// Reports usage.
    pub usage: Option<UsageReporter>,
    /// The extension hook.
    pub hook: Option<ExtensionHook>,
    /// Bounds how many deploys talk to the API server at once.
    pub permits: Arc<Semaphore>,
}

/// The lines a deploy logs, kept for its ApplicationStatus.
struct StatusLog {
    namespace: String,
    app: String,
    lines: Vec<String>,
    errors: Vec<String>,
}

impl StatusLog {
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

struct HookAdapter<'a>(&'a ExtensionHook);

impl ObjectHook for HookAdapter<'_> {
    fn call<'b>(
        &'b self,
        kind: &'b str,
        object: &'b Value,
        app_config: &'b Value,
    ) -> BoxFuture<'b, Result<Option<Value>, String>> {
        async move {
            self.0
                .call(kind, object, app_config)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }
}

impl Deployer {
    /// Deploy one Application version, reporting every step; returns the verdict (or `None`
    /// when shut down mid-way).
    pub async fn run(
        &self,
        view: ApplicationView,
        cancel: watch::Receiver<Cancel>,
    ) -> Option<DeployResult> {
        let deployment_id = view.deployment_id.clone().unwrap_or_default();
        let span = logging::deploy_span(&view.app, &view.namespace, &deployment_id);
        self.run_in_span(view, cancel).instrument(span).await
    }

    async fn run_in_span(
        &self,
        view: ApplicationView,
        mut cancel: watch::Receiver<Cancel>,
    ) -> Option<DeployResult> {
        let started = Instant::now();
        let subject = view.subject();
        let mut log = StatusLog {
            namespace: view.namespace.clone(),
            app: view.app.clone(),
            lines: Vec::new(),
            errors: Vec::new(),
        };
        self.record(&view, &subject, DeployResult::Initiated, &mut log)
            .await;

        let app = match self.build(&view, &mut log) {
            Ok(app) => app,
            Err(()) => {
                self.record(&view, &subject, DeployResult::Failed, &mut log)
                    .await;
                return Some(DeployResult::Failed);
            }
        };
        let usage = |status| UsageEvent {
            status,
            app: view.app.clone(),
            namespace: view.namespace.clone(),
            deployment_id: subject.deployment_id.clone(),
            repository: view.repository(),
        };

        let applied = {
            let permit = tokio::select! {
                permit = self.permits.clone().acquire_owned() => permit.ok(),
                _ = cancelled(&mut cancel) => None,
            };
            let Some(_permit) = permit else {
                return self.stop_early(&view, &subject, &cancel, &mut log).await;
            };
            self.record(&view, &subject, DeployResult::Running, &mut log)
                .await;
            if let Some(reporter) = &self.usage {
                reporter.report(usage(UsageStatus::Started));
            }
            metrics::deploy_requested(&view.app);
            self.apply(&app, &mut log).await
        };

        let verdict = match applied {
            Err(reason) => {
                log.push(tracing::Level::ERROR, &reason);
                DeployResult::Failed
            }
            Ok(_) if app.name == "fiaas-deploy-daemon" => DeployResult::Success,
            Ok(generation) => {
                let timeout = rollout_timeout(&app, self.config.ready_check_timeout_multiplier);
                let certificates =
                    self.config.tls_certificate_ready && app.ingress_tls.enabled == Some(true);
                let outcome = tokio::select! {
                    outcome = self.tracker.wait(&app, generation, timeout, certificates) => outcome,
                    _ = cancelled(&mut cancel) => {
                        return self.stop_early(&view, &subject, &cancel, &mut log).await;
                    }
                };
                match outcome {
                    RolloutOutcome::Ready => DeployResult::Success,
                    RolloutOutcome::Failed(reason) => {
                        log.push(tracing::Level::ERROR, &reason);
                        DeployResult::Failed
                    }
                }
            }
        };
        match verdict {
            DeployResult::Success => metrics::deploy_succeeded(&view.app),
            _ => metrics::deploy_failed(&view.app),
        }
        if let Some(reporter) = &self.usage {
            reporter.report(usage(if verdict == DeployResult::Success {
                UsageStatus::Succeeded
            } else {
                UsageStatus::Failed
            }));
        }
        self.record(&view, &subject, verdict, &mut log).await;
        metrics::reconcile_duration(verdict.as_str(), started.elapsed().as_secs_f64());
        Some(verdict)
    }

    fn build(&self, view: &ApplicationView, log: &mut StatusLog) -> Result<AppSpec, ()> {
        let (config, facts) = view.facts().map_err(|reason| {
            log.push(
                tracing::Level::ERROR,
                &format!("Failed to create app spec from fiaas config file: {reason}"),
            );
        })?;
        metrics::yml_version_seen(&fiaas_spec::version_label(&config), &view.app);
        let app = fiaas_spec::from_document(&config, &facts).map_err(|error| {
            log.push(
                tracing::Level::ERROR,
                &format!("Failed to create app spec from fiaas config file: {error}"),
            );
        })?;
        if app.datadog.enabled && self.config.datadog_container_image.is_none() {
            log.push(
                tracing::Level::ERROR,
                "Requested datadog sidecar, but datadog-container-image is undefined",
            );
            return Err(());
        }
        Ok(app)
    }

    /// Apply and prune, retrying transient API failures with backoff; the Deployment's applied
    /// generation on success.
    async fn apply(&self, app: &AppSpec, log: &mut StatusLog) -> Result<Option<i64>, String> {
        let facts = ClusterFacts {
            live_replicas: self.tracker.live_replicas(&app.namespace, &app.name),
            besteffort_qos: self
                .quotas
                .as_ref()
                .and_then(|q| q.besteffort_required(&app.namespace)),
        };
        let hook = self.hook.as_ref().map(HookAdapter);
        let options = DeployOptions {
            facts: &facts,
            hook: hook.as_ref().map(|h| h as &dyn ObjectHook),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            match self.applier.deploy(app, &self.config, options).await {
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
                        return Err(format!("Failed to deploy {}: {error}", app.name));
                    }
                    log.push(
                        tracing::Level::WARN,
                        &format!("Retrying the deploy of {} after: {error}", app.name),
                    );
                    tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
                }
            }
        }
    }

    async fn stop_early(
        &self,
        view: &ApplicationView,
        subject: &StatusSubject,
        cancel: &watch::Receiver<Cancel>,
        log: &mut StatusLog,
    ) -> Option<DeployResult> {
        let reason = cancel.borrow().clone();
        match reason {
            Cancel::Superseded(newer) => {
                log.push(
                    tracing::Level::ERROR,
                    &format!("Superseded by deployment_id={newer}"),
                );
                metrics::deploy_failed(&view.app);
                self.record(view, subject, DeployResult::Failed, log).await;
                Some(DeployResult::Failed)
            }
            Cancel::Shutdown | Cancel::No => None,
        }
    }

    /// Write a result: ApplicationStatus (+ inline status) and an Event; failures are logged and
    /// counted, never fatal to the deploy.
    async fn record(
        &self,
        view: &ApplicationView,
        subject: &StatusSubject,
        result: DeployResult,
        log: &mut StatusLog,
    ) {
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
        if let Err(error) = self
            .statuses
            .write(subject, result, &log.lines, &log.errors)
            .await
        {
            tracing::error!("Failed to save result {}: {error}", result.as_str());
            if let fiaas_k8s::K8sError::Api { action, kind, .. } = &error {
                metrics::api_error(action, kind);
            }
        }
        if result.is_final() {
            log.lines.clear();
            log.errors.clear();
        }
        self.publish_event(view, result, log.errors.last().or(log.lines.last()))
            .await;
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
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1000).collect()),
            action: "Deploy".to_owned(),
            secondary: None,
        };
        let reference = ObjectReference {
            api_version: Some(fiaas_k8s::crd::API_VERSION.to_owned()),
            kind: Some("Application".to_owned()),
            name: Some(view.object_name.clone()),
            namespace: Some(view.namespace.clone()),
            uid: view.uid.clone(),
            ..ObjectReference::default()
        };
        if let Err(error) = recorder.publish(&event, &reference).await {
            tracing::warn!("Failed to publish event {reason} for {}: {error}", view.app);
            metrics::api_error("create", "Event");
        }
    }
}

async fn cancelled(cancel: &mut watch::Receiver<Cancel>) {
    loop {
        if *cancel.borrow_and_update() != Cancel::No {
            return;
        }
        if cancel.changed().await.is_err() {
            // The sender is gone: nobody can cancel any more.
            std::future::pending::<()>().await;
        }
    }
}
