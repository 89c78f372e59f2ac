//! ApplicationStatus objects: their names, their writing and their retention.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::crd::{API_VERSION, Application, ApplicationStatus};
use crate::error::is_not_found;
use crate::{FIELD_MANAGER, K8sError};

/// How many ApplicationStatus objects are kept per app unless told otherwise (the upstream's
/// fixed number).
pub const STATUSES_KEPT: usize = 10;
/// Annotation holding when a status was last written; retention sorts on it.
pub const LAST_UPDATED: &str = "fiaas/last_updated";

/// The result of a deployment, as ApplicationStatus spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeployResult {
    /// Seen, not yet started.
    Initiated,
    /// Objects being applied, rollout in progress.
    Running,
    /// Rolled out.
    Success,
    /// Invalid, failed to apply, or failed to roll out.
    Failed,
}

impl DeployResult {
    /// The upstream's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeployResult::Initiated => "INITIATED",
            DeployResult::Running => "RUNNING",
            DeployResult::Success => "SUCCESS",
            DeployResult::Failed => "FAILED",
        }
    }

    /// Whether the deployment is over.
    pub fn is_final(self) -> bool {
        matches!(self, DeployResult::Success | DeployResult::Failed)
    }
}

/// Python 2.7's `hash()` of a string, which upstream uses to name statuses; bit-exact.
pub fn python27_hash(text: &str) -> i64 {
    let chars: Vec<u32> = text.chars().map(u32::from).collect();
    let Some(first) = chars.first() else {
        return 0;
    };
    let mut x: u64 = u64::from(*first) << 7;
    for c in &chars {
        x = x.wrapping_mul(1_000_003) ^ u64::from(*c);
    }
    x ^= chars.len() as u64;
    let signed = x as i64;
    if signed == -1 { -2 } else { signed }
}

/// `<app>-<suffix>`: the suffix is the lower-case, unpadded base32 of the little-endian 8 bytes
/// of [`python27_hash`] of the deployment id, exactly as upstream names them (so a cut-over from
/// the Python daemon finds the statuses it wrote and does not redeploy).
pub fn status_name(app: &str, deployment_id: &str) -> String {
    let bytes = python27_hash(deployment_id).to_le_bytes();
    let suffix = data_encoding::BASE32_NOPAD
        .encode(&bytes)
        .to_ascii_lowercase();
    format!("{app}-{suffix}")
}

/// `fiaas/last_updated` as upstream writes it: ISO-8601 UTC with `+00:00`, microseconds left out
/// when zero.
pub fn last_updated_now() -> String {
    let now = jiff::Timestamp::now();
    let micros = now.subsec_microsecond();
    let base = now.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// Whose deployment a status is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusSubject {
    /// The Application's object name.
    pub object_name: String,
    /// `spec.application`.
    pub app: String,
    /// Namespace.
    pub namespace: String,
    /// The deployment id.
    pub deployment_id: String,
    /// The Application's uid, for the owner reference.
    pub uid: Option<String>,
    /// `spec.additional_labels.status`.
    pub labels: BTreeMap<String, String>,
    /// `spec.additional_annotations.status`.
    pub annotations: BTreeMap<String, String>,
}

/// Whether the API server refused a status because its schema lacks `conditions`.
fn refuses_conditions(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status)
        if status.message.contains("conditions") && status.message.contains("not declared"))
}

/// Writes ApplicationStatus objects (and, optionally, the Application's own status).
#[derive(Clone)]
pub struct StatusWriter {
    client: Client,
    include_status_in_app: bool,
    /// An upper bound of each app's status count since this process last listed them, so
    /// retention lists only when there may be something to delete.
    counts: Arc<Mutex<StatusCounts>>,
    /// Whether the installed Application CRD declares `status.conditions`; cleared on the first
    /// write it refuses (the upstream's CRD, on clusters cut over from the Python daemon, does
    /// not), after which the inline status carries only the upstream's fields.
    inline_conditions: Arc<AtomicBool>,
    /// Per namespace, what one listing of its ApplicationStatus objects said: which say SUCCESS
    /// and how many each app has. A daemon that starts (or relists) with a fleet already
    /// deployed learns it with a few requests instead of one per app, and a deploy needs no
    /// listing of its app's statuses to know that none is to be deleted.
    snapshots: Arc<tokio::sync::Mutex<HashMap<String, Snapshot>>>,
    /// How many statuses are kept per app.
    kept: usize,
}

/// One namespace's statuses as of one listing.
#[derive(Default)]
struct Snapshot {
    listed: Option<Instant>,
    /// The names of the statuses that say SUCCESS (kept up to date with this writer's own).
    succeeded: HashSet<String>,
    /// How many statuses each app had.
    counts: HashMap<String, usize>,
}

/// How long a listing of a namespace's statuses answers lookups: long enough for a start-up or
/// a relisting to use one listing, short enough that statuses written by others are seen soon.
const SNAPSHOT_TTL: Duration = Duration::from_secs(30);
/// Page size of that listing, bounding the memory it takes while it runs (statuses carry their
/// deploy's logs).
const SNAPSHOT_PAGE: u32 = crate::watch::LIST_PAGE_SIZE;

/// Per `(namespace, app)`: how many statuses there may be, and the deployment id written last.
type StatusCounts = HashMap<(String, String), (usize, String)>;

impl StatusWriter {
    /// A writer; `include_status_in_app` is the daemon flag of that name.
    pub fn new(client: Client, include_status_in_app: bool) -> Self {
        StatusWriter {
            client,
            include_status_in_app,
            counts: Arc::default(),
            inline_conditions: Arc::new(AtomicBool::new(true)),
            snapshots: Arc::default(),
            kept: STATUSES_KEPT,
        }
    }

    /// Keep `kept` ApplicationStatus objects per app instead of the upstream's
    /// [`STATUSES_KEPT`] (at least one: the current deployment's).
    pub fn retaining(mut self, kept: usize) -> Self {
        self.kept = kept.max(1);
        self
    }

    /// Forget what this process remembers of apps' statuses: another replica may have written
    /// some meanwhile (this one just took over a shard).
    pub async fn forget_cached(&self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.clear();
        }
        self.snapshots.lock().await.clear();
    }

    /// Whether the status of `deployment_id` of `app` says SUCCESS. Answered from a listing of
    /// the namespace's statuses taken at most 30 seconds ago (and kept up to date with
    /// this writer's own SUCCESS writes), so a fleet costs one listing, not a request per app.
    pub async fn has_succeeded(
        &self,
        namespace: &str,
        app: &str,
        deployment_id: &str,
    ) -> Result<bool, K8sError> {
        let mut snapshots = self.snapshots.lock().await;
        let snapshot = self.snapshot(&mut snapshots, namespace).await?;
        Ok(snapshot
            .succeeded
            .contains(&status_name(app, deployment_id)))
    }

    /// The namespace's snapshot, listed again when it is older than [`SNAPSHOT_TTL`].
    async fn snapshot<'a>(
        &self,
        snapshots: &'a mut HashMap<String, Snapshot>,
        namespace: &str,
    ) -> Result<&'a mut Snapshot, K8sError> {
        let snapshot = snapshots.entry(namespace.to_owned()).or_default();
        if snapshot
            .listed
            .is_none_or(|listed| listed.elapsed() >= SNAPSHOT_TTL)
        {
            *snapshot = self.list_namespace(namespace).await?;
        }
        Ok(snapshot)
    }

    async fn list_namespace(&self, namespace: &str) -> Result<Snapshot, K8sError> {
        let api: Api<ApplicationStatus> = Api::namespaced(self.client.clone(), namespace);
        let mut snapshot = Snapshot {
            listed: Some(Instant::now()),
            ..Snapshot::default()
        };
        let mut params = ListParams::default().limit(SNAPSHOT_PAGE);
        loop {
            let page = api
                .list(&params)
                .await
                .map_err(|source| K8sError::api("list", "ApplicationStatus", namespace, source))?;
            for status in page.items {
                let app = status
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get("app"));
                if let Some(app) = app {
                    *snapshot.counts.entry(app.clone()).or_default() += 1;
                }
                if status.result == DeployResult::Success.as_str()
                    && let Some(name) = status.metadata.name
                {
                    snapshot.succeeded.insert(name);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(snapshot),
            }
        }
    }

    /// Record `result` with `logs` for the subject's deployment, then drop all but the newest
    /// statuses of the app that [`Self::retaining`] allows once the deployment is over.
    pub async fn write(
        &self,
        subject: &StatusSubject,
        result: DeployResult,
        logs: &[String],
        error_logs: &[String],
    ) -> Result<(), K8sError> {
        // The ApplicationStatus first: it is what CI pipelines poll, and it must not depend on
        // the Application's CRD accepting the inline status.
        self.write_status_object(subject, result, logs).await?;
        if result == DeployResult::Success
            && let Some(known) = self.snapshots.lock().await.get_mut(&subject.namespace)
        {
            known
                .succeeded
                .insert(status_name(&subject.app, &subject.deployment_id));
        }
        if self.include_status_in_app {
            match self.write_inline(subject, result, error_logs).await {
                Err(error) if !error.is_transient() => {
                    // Refused for good (e.g. a CRD without the status subresource): trying
                    // again would not help, and the ApplicationStatus holds the result.
                    tracing::warn!("Could not write the Application's own status: {error}");
                }
                other => other?,
            }
        }
        Ok(())
    }

    async fn write_status_object(
        &self,
        subject: &StatusSubject,
        result: DeployResult,
        logs: &[String],
    ) -> Result<(), K8sError> {
        let name = status_name(&subject.app, &subject.deployment_id);
        let mut labels = subject.labels.clone();
        labels.insert("app".to_owned(), subject.app.clone());
        labels.insert(
            "fiaas/deployment_id".to_owned(),
            subject.deployment_id.clone(),
        );
        let mut annotations = subject.annotations.clone();
        annotations.insert(LAST_UPDATED.to_owned(), last_updated_now());
        let mut metadata = json!({
            "name": name,
            "namespace": subject.namespace,
            "labels": labels,
            "annotations": annotations,
        });
        if let Some(uid) = subject.uid.as_ref().filter(|u| !u.is_empty()) {
            metadata["ownerReferences"] = json!([{
                "apiVersion": API_VERSION, "kind": "Application", "name": subject.app,
                "uid": uid, "controller": true, "blockOwnerDeletion": true,
            }]);
        }
        let body = json!({
            "apiVersion": API_VERSION,
            "kind": "ApplicationStatus",
            "metadata": metadata,
            "result": result.as_str(),
            "logs": logs,
        });
        let api: Api<ApplicationStatus> = Api::namespaced(self.client.clone(), &subject.namespace);
        let written = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| K8sError::api("apply", "ApplicationStatus", &name, source))?;
        let key = (subject.namespace.clone(), subject.app.clone());
        let known = self.counts.lock().ok().and_then(|mut counts| {
            let (count, last) = counts.get_mut(&key)?;
            if *last != subject.deployment_id {
                // Another deployment id may have added a status (a repeated one only
                // overcounts).
                *count += 1;
                last.clone_from(&subject.deployment_id);
            }
            Some(*count)
        });
        let count = match known {
            Some(count) => Some(count),
            // First write for the app since this process started: the namespace's snapshot
            // says how many it had (one listing for a whole fleet of new apps), plus the one
            // just written, which a snapshot taken before may lack.
            None if result.is_final() => {
                let mut snapshots = self.snapshots.lock().await;
                match self.snapshot(&mut snapshots, &subject.namespace).await {
                    Ok(snapshot) => {
                        let count = snapshot.counts.get(&subject.app).copied().unwrap_or(0) + 1;
                        if let Ok(mut counts) = self.counts.lock() {
                            counts.insert(key.clone(), (count, subject.deployment_id.clone()));
                        }
                        Some(count)
                    }
                    Err(error) => {
                        tracing::debug!("No snapshot of the statuses: {error}");
                        None
                    }
                }
            }
            None => None,
        };
        let may_exceed = count.is_none_or(|count| count > self.kept);
        if result.is_final() && may_exceed {
            let kept = self
                .retain_newest(
                    &subject.app,
                    &subject.namespace,
                    written.metadata.resource_version.as_deref(),
                )
                .await?;
            if let Ok(mut counts) = self.counts.lock() {
                counts.insert(key, (kept, subject.deployment_id.clone()));
            }
        }
        Ok(())
    }

    /// Keep the most recently updated statuses of an app (as many as [`Self::retaining`] says),
    /// delete the rest; returns how many are kept. `seen` is the resourceVersion of a status
    /// just written, which the listing must include.
    pub async fn retain_newest(
        &self,
        app: &str,
        namespace: &str,
        seen: Option<&str>,
    ) -> Result<usize, K8sError> {
        let api: Api<ApplicationStatus> = Api::namespaced(self.client.clone(), namespace);
        let selector = format!("app={app}");
        // From the API server's watch cache, not a quorum read: a label selector is no index,
        // so a quorum read scans every ApplicationStatus of the namespace in etcd, for every
        // deploy. A resourceVersion makes the cache answer only once it holds that version.
        let params = ListParams::default().labels(&selector);
        let params = match seen {
            Some(version) => params.at(version),
            None => params.match_any(),
        };
        let mut statuses = api
            .list_metadata(&params)
            .await
            .map_err(|source| K8sError::api("list", "ApplicationStatus", &selector, source))?
            .items;
        if statuses.len() <= self.kept {
            return Ok(statuses.len());
        }
        let updated = |s: &kube::core::PartialObjectMeta<ApplicationStatus>| {
            s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LAST_UPDATED).cloned())
                .unwrap_or_default()
        };
        statuses.sort_by_key(updated);
        let excess = statuses.len() - self.kept;
        for old in statuses.into_iter().take(excess) {
            let name = old.metadata.name.unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(source) => {
                    return Err(K8sError::api("delete", "ApplicationStatus", &name, source));
                }
            }
        }
        Ok(self.kept)
    }

    /// The result on the Application's status subresource, when the Application still asks for
    /// this deployment (a stale deploy does not overwrite a newer one's result).
    async fn write_inline(
        &self,
        subject: &StatusSubject,
        result: DeployResult,
        error_logs: &[String],
    ) -> Result<(), K8sError> {
        let api: Api<Application> = Api::namespaced(self.client.clone(), &subject.namespace);
        let name = &subject.object_name;
        // Only metadata: the spec may be anything the API server accepts (even too deep to
        // parse), and is not needed here.
        let current = match api.get_metadata(name).await {
            Ok(app) => app,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(source) => return Err(K8sError::api("get", "Application", name, source)),
        };
        let current_id = current
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("fiaas/deployment_id"));
        if current_id != Some(&subject.deployment_id) {
            return Ok(());
        }
        let generation = current.metadata.generation.unwrap_or_default();
        let now = Time(jiff::Timestamp::now());
        let condition = |kind: &str, status: bool, reason: &str| Condition {
            type_: kind.to_owned(),
            status: if status { "True" } else { "False" }.to_owned(),
            reason: reason.to_owned(),
            message: format!(
                "deployment {} is {}",
                subject.deployment_id,
                result.as_str()
            ),
            last_transition_time: now.clone(),
            observed_generation: Some(generation),
        };
        let conditions = vec![
            condition("Ready", result == DeployResult::Success, result.as_str()),
            condition("Progressing", !result.is_final(), result.as_str()),
        ];
        let mut body = json!({
            "apiVersion": API_VERSION,
            "kind": "Application",
            "status": {
                "result": result.as_str(),
                "observedGeneration": generation,
                "logs": error_logs,
                "deployment_id": subject.deployment_id,
            },
        });
        let with_conditions = self.inline_conditions.load(Ordering::Relaxed);
        if with_conditions {
            body["status"]["conditions"] = json!(conditions);
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch_status(name, &params, &Patch::Apply(&body)).await {
            Ok(_) => {}
            Err(error) if with_conditions && refuses_conditions(&error) => {
                tracing::warn!(
                    "The installed Application CRD has no status.conditions (the upstream's \
                     definition); writing the inline status without them"
                );
                self.inline_conditions.store(false, Ordering::Relaxed);
                if let Some(status) = body["status"].as_object_mut() {
                    status.remove("conditions");
                }
                api.patch_status(name, &params, &Patch::Apply(&body))
                    .await
                    .map_err(|source| K8sError::api("apply status", "Application", name, source))?;
            }
            Err(source) => {
                return Err(K8sError::api("apply status", "Application", name, source));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_match_the_upstream_test_vectors() {
        for (id, suffix) in [
            ("deployment_id", "7ka6gav5mq2hc"),
            ("test_app_deployment_id", "isb5oqum36ylo"),
            ("deployment_id_1", "kaeingxg4ztjq"),
            ("deployment_id_2", "kmeingxg4ztjq"),
            ("1", "wbu5o5ibaaaaa"),
            ("1234123", "7oc3nildo4lj6"),
            ("", "aaaaaaaaaaaaa"),
        ] {
            assert_eq!(
                status_name("app", id),
                format!("app-{suffix}"),
                "deployment id {id:?}"
            );
        }
    }

    #[test]
    fn last_updated_reads_like_python_isoformat() {
        let stamp = last_updated_now();
        assert!(stamp.ends_with("+00:00"), "{stamp}");
        assert!(stamp.len() == 25 || stamp.len() == 32, "{stamp}");
    }
}
