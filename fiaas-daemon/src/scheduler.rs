//! The controller's decisions, as a pure function of what it has seen: which Application
//! versions to deploy, which to skip, which deploy a newer one supersedes, and when a deploy that
//! met a transient failure is tried again. No I/O here; the controller
//! (`fiaas-daemon/src/controller.rs`) performs the decisions and feeds back what happened.
//!
//! Deploys are serialised by what they write: the namespace and `spec.application`, which name
//! every object and status of a deploy (two Application objects with one `spec.application`
//! must not deploy into one Deployment at once).

use std::collections::HashMap;
use std::time::Duration;

use fiaas_k8s::DeployResult;

use crate::application::ApplicationView;
use crate::deployer::Cancel;

/// What deploys are serialised by: namespace and `spec.application`.
pub type AppKey = (String, String);
/// An Application object: namespace and `metadata.name`.
type ObjectKey = (String, String);

/// First delay before a deploy that met a transient failure is tried again; it doubles per
/// attempt up to [`MAX_RETRY_DELAY`], so deploys resume within seconds once the API server is
/// back.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// Longest delay between two attempts of one deploy.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);
/// How many times a deploy is tried again after transient failures before its next failure is
/// final (about five minutes at [`MAX_RETRY_DELAY`]).
pub const MAX_RETRIES: u32 = 30;

/// Whether a deploy should first check that its deployment id is not deployed already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartCheck {
    /// The id was first seen in a live event: it cannot have a status yet, deploy at once.
    Fresh,
    /// Seen in a (re)listing, or seen before: skip the deploy when the id's ApplicationStatus
    /// is SUCCESS and the cluster's Deployment carries this id (so a rollback to an id that
    /// once succeeded is deployed again).
    SkipIfDeployed,
}

/// What the controller is to do.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Start a deploy of this Application version.
    Start {
        /// The Application version.
        view: ApplicationView,
        /// Whether to check for an earlier SUCCESS first.
        check: StartCheck,
        /// How many times this deployment id was tried before (0 on the first attempt).
        attempt: u32,
    },
    /// Tell the running deploy of `key` to stop.
    Cancel {
        /// The app.
        key: AppKey,
        /// Why.
        reason: Cancel,
    },
    /// Give a deployment id that will never be deployed its final FAILED status.
    Supersede {
        /// The Application version that is skipped.
        view: ApplicationView,
        /// The deployment id that replaces it.
        by: String,
    },
    /// Feed this Application version back through [`Scheduler::retry`] after `after`.
    RetryLater {
        /// The Application version.
        view: ApplicationView,
        /// How long to wait.
        after: Duration,
    },
}

/// How a deploy task ended, as the controller reports it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    /// The deploy ran to a verdict, and the verdict is stored.
    Verdict(DeployResult),
    /// The id had succeeded before and the cluster still runs it: nothing was done.
    AlreadyDeployed,
    /// Stopped without a verdict (shutdown, deletion, supersession already recorded).
    Stopped,
    /// A transient failure (the API server unreachable or throttling, or the verdict could not
    /// be stored): the deploy is to be tried again.
    Transient,
}

struct Running {
    deployment_id: String,
    object: ObjectKey,
}

/// The scheduling state: what runs, what waits, what finished, what was seen.
#[derive(Default)]
pub struct Scheduler {
    running: HashMap<AppKey, Running>,
    /// The newest version that arrived while its app was running.
    pending: HashMap<AppKey, ApplicationView>,
    /// The last deployment id per app that this process finished, with its verdict.
    finished: HashMap<AppKey, (String, DeployResult)>,
    /// The last resourceVersion handled per Application object, and the object's app: a
    /// re-delivered version is skipped.
    seen: HashMap<ObjectKey, (String, AppKey)>,
    /// The last deployment id seen per app.
    ids: HashMap<AppKey, String>,
    /// Attempts so far of the app's current deployment id, after transient failures.
    attempts: HashMap<AppKey, u32>,
}

fn app_key(view: &ApplicationView) -> AppKey {
    (view.namespace.clone(), view.app.clone())
}

fn object_key(view: &ApplicationView) -> ObjectKey {
    (view.namespace.clone(), view.object_name.clone())
}

/// The delay before attempt `attempt` (1 = the first retry).
pub fn retry_delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    FIRST_RETRY_DELAY
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_DELAY)
}

impl Scheduler {
    /// An empty state, as at start-up.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many deploys run now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// How many Application versions wait for their app's running deploy.
    pub fn queued(&self) -> usize {
        self.pending.len()
    }

    /// An Application was listed (`listed`) or changed live.
    pub fn applied(&mut self, view: ApplicationView, listed: bool) -> Vec<Decision> {
        if let Some(version) = &view.resource_version {
            let object = object_key(&view);
            if self
                .seen
                .get(&object)
                .is_some_and(|(seen, _)| seen == version)
            {
                return Vec::new();
            }
            self.seen.insert(object, (version.clone(), app_key(&view)));
        }
        self.consider(view, listed)
    }

    /// Upstream's skip rules, then start the deploy, queue it behind the app's running one, or
    /// let it supersede that one.
    fn consider(&mut self, view: ApplicationView, listed: bool) -> Vec<Decision> {
        let key = app_key(&view);
        let Some(deployment_id) = view.deployment_id.clone() else {
            tracing::error!(
                "Application {}/{} has no fiaas/deployment_id label; not deploying it",
                view.namespace,
                view.object_name
            );
            return Vec::new();
        };
        if view.is_status_echo() && !self.interrupted(&key, &view, &deployment_id) {
            tracing::debug!(
                "Skipping status update of {}/{}",
                view.namespace,
                view.object_name
            );
            return Vec::new();
        }
        if view.deleting {
            tracing::warn!(
                "Skipping update watch event for app {}; it is being deleted",
                view.app
            );
            return Vec::new();
        }
        let mut decisions = Vec::new();
        if let Some(running) = self.running.get(&key) {
            if running.deployment_id != deployment_id {
                decisions.push(Decision::Cancel {
                    key: key.clone(),
                    reason: Cancel::Superseded(deployment_id.clone()),
                });
            }
            if let Some(replaced) = self.pending.insert(key, view)
                && let Some(replaced_id) = replaced.deployment_id.clone()
                && replaced_id != deployment_id
                && replaced_id != running.deployment_id
            {
                decisions.push(Decision::Supersede {
                    view: replaced,
                    by: deployment_id,
                });
            }
            return decisions;
        }
        let fresh = !listed && self.ids.get(&key) != Some(&deployment_id);
        if self.ids.get(&key) != Some(&deployment_id) {
            self.attempts.remove(&key);
        }
        self.ids.insert(key.clone(), deployment_id.clone());
        if let Some((finished_id, result)) = self.finished.get(&key)
            && *finished_id == deployment_id
            && *result == DeployResult::Success
        {
            tracing::debug!(
                "Deployment {deployment_id} of {} already succeeded",
                view.app
            );
            return decisions;
        }
        self.start(view, key, deployment_id, fresh, &mut decisions);
        decisions
    }

    /// Whether a status echo is really the trace of a deploy that was interrupted (by a
    /// restart, a lost lease or a crash): the inline status says it is still in progress, yet
    /// this process neither runs nor finished that deployment id. Such a deploy is resumed
    /// instead of skipped.
    fn interrupted(&self, key: &AppKey, view: &ApplicationView, deployment_id: &str) -> bool {
        let in_progress = matches!(view.status_result.as_deref(), Some("INITIATED" | "RUNNING"));
        let ours = self
            .running
            .get(key)
            .is_some_and(|r| r.deployment_id == deployment_id)
            || self
                .finished
                .get(key)
                .is_some_and(|(id, _)| id == deployment_id);
        in_progress && !ours
    }

    fn start(
        &mut self,
        view: ApplicationView,
        key: AppKey,
        deployment_id: String,
        fresh: bool,
        decisions: &mut Vec<Decision>,
    ) {
        self.running.insert(
            key.clone(),
            Running {
                deployment_id,
                object: object_key(&view),
            },
        );
        decisions.push(Decision::Start {
            view,
            check: if fresh {
                StartCheck::Fresh
            } else {
                StartCheck::SkipIfDeployed
            },
            attempt: self.attempts.get(&key).copied().unwrap_or(0),
        });
    }

    /// A deploy task of `view` ended.
    pub fn finished(&mut self, view: ApplicationView, how: Finished) -> Vec<Decision> {
        let key = app_key(&view);
        let deployment_id = view.deployment_id.clone().unwrap_or_default();
        if self
            .running
            .get(&key)
            .is_some_and(|r| r.deployment_id == deployment_id)
        {
            self.running.remove(&key);
        }
        let mut decisions = Vec::new();
        match how {
            Finished::Verdict(result) => {
                self.attempts.remove(&key);
                self.finished.insert(key.clone(), (deployment_id, result));
            }
            Finished::AlreadyDeployed => {
                self.attempts.remove(&key);
                self.finished
                    .insert(key.clone(), (deployment_id, DeployResult::Success));
            }
            Finished::Stopped => {}
            Finished::Transient => {
                // Level-triggered: the version is not marked done, so a relisting would start
                // it too; the timer only makes sure it is not forgotten without one.
                self.seen.remove(&object_key(&view));
                let current = self.ids.get(&key) == Some(&deployment_id);
                if current && !self.pending.contains_key(&key) {
                    let attempt = self.attempts.entry(key.clone()).or_insert(0);
                    *attempt += 1;
                    decisions.push(Decision::RetryLater {
                        after: retry_delay(*attempt),
                        view,
                    });
                }
            }
        }
        if !self.running.contains_key(&key)
            && let Some(next) = self.pending.remove(&key)
        {
            // Queued from a live event: a deployment id not seen before needs no status lookup.
            decisions.extend(self.consider(next, false));
        }
        decisions
    }

    /// A retry timer of `view` fired: start it again unless something newer came meanwhile.
    pub fn retry(&mut self, view: ApplicationView) -> Vec<Decision> {
        let key = app_key(&view);
        let Some(deployment_id) = view.deployment_id.clone() else {
            return Vec::new();
        };
        if self.ids.get(&key) != Some(&deployment_id)
            || self.running.contains_key(&key)
            || self.pending.contains_key(&key)
        {
            return Vec::new();
        }
        let mut decisions = Vec::new();
        self.start(view, key, deployment_id, false, &mut decisions);
        decisions
    }

    /// Another replica deploys the apps for which `leaving` holds from now on (their shard was
    /// given up or lost): everything about them is forgotten, so that if they come back they are
    /// considered afresh. Returns those whose deploy was running; the controller stops them
    /// without another write.
    pub fn hand_over(&mut self, leaving: impl Fn(&AppKey) -> bool) -> Vec<AppKey> {
        let running: Vec<AppKey> = self
            .running
            .keys()
            .filter(|k| leaving(k))
            .cloned()
            .collect();
        for key in &running {
            self.running.remove(key);
        }
        self.pending.retain(|key, _| !leaving(key));
        self.finished.retain(|key, _| !leaving(key));
        self.ids.retain(|key, _| !leaving(key));
        self.attempts.retain(|key, _| !leaving(key));
        self.seen.retain(|_, (_, key)| !leaving(key));
        running
    }

    /// An Application object was deleted: forget it, and stop its running deploy.
    pub fn deleted(&mut self, view: &ApplicationView) -> Vec<Decision> {
        let key = app_key(view);
        let object = object_key(view);
        self.seen.remove(&object);
        if self
            .pending
            .get(&key)
            .is_some_and(|p| object_key(p) == object)
        {
            self.pending.remove(&key);
        }
        let mut decisions = Vec::new();
        if self.running.get(&key).is_some_and(|r| r.object == object) {
            decisions.push(Decision::Cancel {
                key: key.clone(),
                reason: Cancel::Shutdown,
            });
        }
        self.finished.remove(&key);
        self.ids.remove(&key);
        self.attempts.remove(&key);
        decisions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, id: &str, version: &str) -> ApplicationView {
        ApplicationView {
            object_name: name.to_owned(),
            namespace: "ns".to_owned(),
            uid: None,
            generation: 1,
            resource_version: Some(version.to_owned()),
            deployment_id: Some(id.to_owned()),
            deleting: false,
            app: name.to_owned(),
            image: Some("image:1".to_owned()),
            config: None,
            additional_labels: serde_json::Value::Null,
            additional_annotations: serde_json::Value::Null,
            spec_error: None,
            status_generation: 0,
            status_deployment_id: None,
            status_result: None,
        }
    }

    fn started(decisions: &[Decision]) -> Vec<(String, StartCheck, u32)> {
        decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Start {
                    view,
                    check,
                    attempt,
                } => Some((view.deployment_id.clone().unwrap(), *check, *attempt)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_live_new_id_starts_without_a_status_lookup_a_listed_one_with() {
        let mut s = Scheduler::new();
        assert_eq!(
            started(&s.applied(app("a", "d1", "1"), false)),
            [("d1".to_owned(), StartCheck::Fresh, 0)]
        );
        assert_eq!(
            started(&s.applied(app("b", "d1", "2"), true)),
            [("d1".to_owned(), StartCheck::SkipIfDeployed, 0)]
        );
    }

    #[test]
    fn apps_handed_over_are_forgotten_and_considered_afresh_when_they_come_back() {
        let mut s = Scheduler::new();
        s.applied(app("a", "d1", "1"), false);
        s.applied(app("b", "d1", "2"), false);
        s.finished(
            app("b", "d1", "2"),
            Finished::Verdict(DeployResult::Success),
        );
        s.applied(app("a", "d2", "3"), false);
        assert_eq!(s.queued(), 1);
        let stopped = s.hand_over(|(_, name)| name == "a");
        assert_eq!(stopped, [("ns".to_owned(), "a".to_owned())]);
        assert_eq!((s.running(), s.queued()), (0, 0));
        // Relisted when the shard returns: the same version is not skipped as seen, and an
        // id the other replica may have left unfinished is started (with a status lookup).
        assert_eq!(
            started(&s.applied(app("a", "d2", "3"), true)),
            [("d2".to_owned(), StartCheck::SkipIfDeployed, 0)]
        );
        // What stayed is remembered as before.
        assert!(s.applied(app("b", "d1", "2"), true).is_empty());
    }

    #[test]
    fn a_redelivered_resource_version_is_skipped() {
        let mut s = Scheduler::new();
        s.applied(app("a", "d1", "1"), false);
        s.finished(app("a", "d1", "1"), Finished::Verdict(DeployResult::Failed));
        assert!(s.applied(app("a", "d1", "1"), true).is_empty());
    }

    #[test]
    fn an_id_this_process_deployed_successfully_is_not_deployed_again() {
        let mut s = Scheduler::new();
        s.applied(app("a", "d1", "1"), false);
        s.finished(
            app("a", "d1", "1"),
            Finished::Verdict(DeployResult::Success),
        );
        assert!(s.applied(app("a", "d1", "2"), false).is_empty());
        // A failed one is tried again when the object changes.
        s.applied(app("b", "d1", "3"), false);
        s.finished(app("b", "d1", "3"), Finished::Verdict(DeployResult::Failed));
        assert_eq!(s.applied(app("b", "d1", "4"), false).len(), 1);
    }

    #[test]
    fn a_newer_id_cancels_the_running_deploy_and_waits_for_it() {
        let mut s = Scheduler::new();
        s.applied(app("a", "d1", "1"), false);
        let decisions = s.applied(app("a", "d2", "2"), false);
        assert_eq!(
            decisions,
            [Decision::Cancel {
                key: ("ns".into(), "a".into()),
                reason: Cancel::Superseded("d2".into())
            }]
        );
        let next = s.finished(app("a", "d1", "1"), Finished::Verdict(DeployResult::Failed));
        assert_eq!(started(&next), [("d2".to_owned(), StartCheck::Fresh, 0)]);
    }

    #[test]
    fn an_id_replaced_while_waiting_gets_a_final_status() {
        let mut s = Scheduler::new();
        s.applied(app("a", "d1", "1"), false);
        s.applied(app("a", "d2", "2"), false);
        let decisions = s.applied(app("a", "d3", "3"), false);
        assert!(decisions.contains(&Decision::Supersede {
            view: app("a", "d2", "2"),
            by: "d3".into()
        }));
        let next = s.finished(app("a", "d1", "1"), Finished::Verdict(DeployResult::Failed));
        assert_eq!(started(&next)[0].0, "d3");
    }

    #[test]
    fn the_same_id_arriving_again_while_running_is_not_superseded() {
        let mut s = Scheduler::new();
        s.applied(app("a", "d1", "1"), false);
        assert!(s.applied(app("a", "d1", "2"), false).is_empty());
        // Queued, then skipped once the running one succeeded.
        let next = s.finished(
            app("a", "d1", "1"),
            Finished::Verdict(DeployResult::Success),
        );
        assert!(next.is_empty());
    }

    #[test]
    fn a_rollback_seen_live_is_deployed_and_seen_listed_is_checked_against_the_cluster() {
        let mut s = Scheduler::new();
        for (id, version) in [("d1", "1"), ("d2", "2")] {
            s.applied(app("a", id, version), false);
            s.finished(
                app("a", id, version),
                Finished::Verdict(DeployResult::Success),
            );
        }
        assert_eq!(
            started(&s.applied(app("a", "d1", "3"), false)),
            [("d1".to_owned(), StartCheck::Fresh, 0)]
        );
        let mut restarted = Scheduler::new();
        assert_eq!(
            started(&restarted.applied(app("a", "d1", "3"), true)),
            [("d1".to_owned(), StartCheck::SkipIfDeployed, 0)]
        );
    }

    #[test]
    fn two_applications_with_one_app_name_deploy_one_after_the_other() {
        let mut s = Scheduler::new();
        let mut other = app("other-object", "d2", "2");
        other.app = "a".to_owned();
        s.applied(app("a", "d1", "1"), false);
        let decisions = s.applied(other.clone(), false);
        assert!(started(&decisions).is_empty());
        let next = s.finished(
            app("a", "d1", "1"),
            Finished::Verdict(DeployResult::Success),
        );
        assert_eq!(started(&next)[0].0, "d2");
    }

    #[test]
    fn status_echoes_are_skipped_unless_they_show_an_interrupted_deploy() {
        let mut echo = app("a", "d1", "5");
        echo.generation = 3;
        echo.status_generation = 3;
        echo.status_deployment_id = Some("d1".to_owned());
        echo.status_result = Some("SUCCESS".to_owned());
        let mut s = Scheduler::new();
        assert!(s.applied(echo.clone(), true).is_empty());

        // After a restart, RUNNING on the Application means nobody finishes it but us.
        echo.status_result = Some("RUNNING".to_owned());
        echo.resource_version = Some("6".to_owned());
        let mut restarted = Scheduler::new();
        assert_eq!(
            started(&restarted.applied(echo.clone(), true)),
            [("d1".to_owned(), StartCheck::SkipIfDeployed, 0)]
        );
        // Our own RUNNING echo, while we run it or after we finished it, is skipped.
        echo.resource_version = Some("7".to_owned());
        assert!(restarted.applied(echo.clone(), false).is_empty());
        restarted.finished(echo.clone(), Finished::Verdict(DeployResult::Success));
        echo.resource_version = Some("8".to_owned());
        assert!(restarted.applied(echo, false).is_empty());
    }

    #[test]
    fn transient_failures_are_retried_with_capped_backoff_until_superseded() {
        let mut s = Scheduler::new();
        let v = app("a", "d1", "1");
        s.applied(v.clone(), false);
        let mut delays = Vec::new();
        for attempt in 1..=6 {
            let decisions = s.finished(v.clone(), Finished::Transient);
            let [Decision::RetryLater { view, after }] = decisions.as_slice() else {
                panic!("expected a retry, got {decisions:?}");
            };
            delays.push(after.as_secs());
            assert_eq!(
                started(&s.retry(view.clone())),
                [("d1".to_owned(), StartCheck::SkipIfDeployed, attempt)]
            );
        }
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        // A relisting of the same version is not skipped as seen: the deploy is not done.
        s.finished(v.clone(), Finished::Transient);
        assert_eq!(started(&s.applied(v.clone(), true)).len(), 1);
        // A newer id makes the pending retry moot.
        s.finished(v.clone(), Finished::Transient);
        s.applied(app("a", "d2", "2"), false);
        assert!(s.retry(v).is_empty());
    }

    #[test]
    fn deleting_cancels_only_the_deleted_objects_deploy() {
        let mut s = Scheduler::new();
        s.applied(app("a", "d1", "1"), false);
        let mut other = app("other-object", "d1", "2");
        other.app = "a".to_owned();
        assert!(s.deleted(&other).is_empty());
        assert_eq!(
            s.deleted(&app("a", "d1", "1")),
            [Decision::Cancel {
                key: ("ns".into(), "a".into()),
                reason: Cancel::Shutdown
            }]
        );
    }

    #[test]
    fn applications_without_deployment_id_or_being_deleted_are_skipped() {
        let mut s = Scheduler::new();
        let mut no_id = app("a", "d1", "1");
        no_id.deployment_id = None;
        assert!(s.applied(no_id, false).is_empty());
        let mut deleting = app("b", "d1", "2");
        deleting.deleting = true;
        assert!(s.applied(deleting, false).is_empty());
        assert_eq!(s.running(), 0);
    }
}
