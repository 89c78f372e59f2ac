//! Pruning an app's Ingresses: they are named per host, so stale ones are found by label, and
//! what this process knows about them saves that listing where nothing can be stale.

use std::collections::{BTreeSet, HashMap};

use fiaas_spec::AppSpec;
use fiaas_transform::{Kind, Manifests, TransformSettings};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};

use super::{Applier, DeployReport, legacy, name_of, owned_by_fiaas};
use crate::K8sError;
use crate::error::is_not_found;

/// Ingress names per `(namespace, app)`.
pub(super) type KnownIngresses = HashMap<(String, String), BTreeSet<String>>;

/// One namespace's fiaas Ingresses (names per app) and when they were listed.
pub(super) struct IngressSnapshot {
    listed: std::time::Instant,
    names: HashMap<String, BTreeSet<String>>,
}

/// How long an Ingress snapshot answers: long enough for a batch of new apps to share one
/// listing. Only fiaas writes these Ingresses, and for one app only the replica that deploys
/// it, so a snapshot misses none of an app's Ingresses unless the app changed hands
/// meanwhile; then [`Applier::forget_cached`] drops it.
const INGRESS_SNAPSHOT_TTL: std::time::Duration = std::time::Duration::from_secs(30);

impl Applier {
    /// Delete the app's fiaas-owned Ingresses that this deploy did not apply: those of earlier
    /// deployments (upstream's sweep) and, unlike upstream, also ones dropped without a new
    /// deployment id.
    pub(super) async fn prune_ingresses(
        &self,
        app: &AppSpec,
        config: &TransformSettings,
        manifests: &Manifests,
        report: &mut DeployReport,
    ) -> Result<(), K8sError> {
        let resource = if config.use_networkingv1_ingress {
            ApiResource::erase::<Ingress>(&())
        } else {
            legacy("extensions", "Ingress", "ingresses")
        };
        let wanted: BTreeSet<String> = manifests
            .objects
            .iter()
            .filter(|o| o.kind() == Kind::Ingress)
            .map(name_of)
            .collect();
        let key = (app.namespace.clone(), app.name.clone());
        let known = self
            .ingresses
            .lock()
            .ok()
            .and_then(|known| known.get(&key).cloned());
        let previous = match known {
            Some(previous) => Some(previous),
            None => self.ingresses_listed(&resource, app).await,
        };
        if previous.is_some_and(|previous| previous.is_subset(&wanted)) {
            self.remember_ingresses(key, wanted);
            return Ok(());
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &app.namespace, &resource);
        let selector = format!("app={},fiaas/deployment_id", app.name);
        let listed = match api.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => list.items,
            // An API version the cluster does not serve holds no ingresses to prune.
            Err(e) if is_not_found(&e) => Vec::new(),
            Err(source) => return Err(K8sError::api("list", "Ingress", &selector, source)),
        };
        for ingress in listed {
            let name = ingress.metadata.name.clone().unwrap_or_default();
            if wanted.contains(&name) || !owned_by_fiaas(&ingress.metadata) {
                continue;
            }
            self.delete_dynamic(&api, &resource, &name, ingress.metadata.uid.clone(), report)
                .await?;
            report.deleted.push((Kind::Ingress, name));
        }
        self.remember_ingresses(key, wanted);
        Ok(())
    }

    /// The app's fiaas Ingresses according to the namespace's snapshot (listed again when
    /// older than [`INGRESS_SNAPSHOT_TTL`]); `None` when it cannot say.
    async fn ingresses_listed(
        &self,
        resource: &ApiResource,
        app: &AppSpec,
    ) -> Option<BTreeSet<String>> {
        let mut snapshots = self.ingress_snapshots.lock().await;
        let fresh = snapshots
            .get(&app.namespace)
            .is_some_and(|s| s.listed.elapsed() < INGRESS_SNAPSHOT_TTL);
        if !fresh {
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &app.namespace, resource);
            let params = ListParams::default().labels("fiaas/deployment_id");
            let listed = std::time::Instant::now();
            let items = match api.list_metadata(&params).await {
                Ok(list) => list.items,
                Err(e) if is_not_found(&e) => Vec::new(),
                Err(error) => {
                    tracing::debug!("No snapshot of the Ingresses: {error}");
                    return None;
                }
            };
            let mut names: HashMap<String, BTreeSet<String>> = HashMap::new();
            for ingress in items {
                let owner = ingress
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|labels| labels.get("app"))
                    .cloned();
                if let Some(owner) = owner
                    && owned_by_fiaas(&ingress.metadata)
                {
                    let name = ingress.metadata.name.unwrap_or_default();
                    names.entry(owner).or_default().insert(name);
                }
            }
            snapshots.insert(app.namespace.clone(), IngressSnapshot { listed, names });
        }
        let snapshot = snapshots.get(&app.namespace)?;
        Some(snapshot.names.get(&app.name).cloned().unwrap_or_default())
    }

    fn remember_ingresses(&self, key: (String, String), names: BTreeSet<String>) {
        if self.dry_run {
            return;
        }
        if let Ok(mut known) = self.ingresses.lock() {
            known.insert(key, names);
        }
    }

    /// Forget what this process remembers of apps' Ingresses: another replica may have
    /// deployed them meanwhile (this one just took over a shard or the leader lease).
    pub async fn forget_cached(&self) {
        if let Ok(mut known) = self.ingresses.lock() {
            known.clear();
        }
        self.ingress_snapshots.lock().await.clear();
    }
}
