//! Applying the objects of one deploy (server-side apply, one field manager, deploy order) and
//! pruning what the app no longer wants; or, as a plan, asking the API server what that would do.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use fiaas_spec::AppSpec;
use fiaas_transform::{
    AutoscalingVersion, Kind, KubeObject, Manifests, Notes, RenderOptions, TransformSettings,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::api::core::v1::{ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    Preconditions,
};
use serde_json::Value;

use crate::crd::API_VERSION;
use crate::error::is_not_found;
use crate::{FIELD_MANAGER, K8sError};

mod ingresses;
mod plan;

pub use plan::PlannedObject;
use plan::to_value;

/// A hook that may rewrite each object before it is applied (the daemon's extension hook).
///
/// Called for the Deployment, the Service, each Ingress, the HPA and the PDB, as upstream does;
/// `Ok(None)` keeps the object, `Ok(Some(object))` replaces it, `Err` fails the deploy.
pub trait ObjectHook: Send + Sync {
    /// Rewrite `object` of `kind` (`Deployment`, `Service`, `Ingress`, …).
    fn call<'a>(
        &'a self,
        kind: &'a str,
        object: &'a Value,
        app_config: &'a Value,
    ) -> futures::future::BoxFuture<'a, Result<Option<Value>, String>>;
}

/// Which PodDisruptionBudget API the cluster serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PdbVersion {
    /// `policy/v1` (Kubernetes 1.21 and later).
    V1,
    /// `policy/v1beta1` (older clusters).
    V1beta1,
}

/// What the applier needs to know about the cluster beyond the objects.
#[derive(Clone, Debug, Default)]
pub struct ClusterFacts {
    /// `spec.replicas` of the app's live Deployment, if it exists (a daemon reads it from its
    /// watch cache; otherwise the applier GETs it when it matters).
    pub live_replicas: Option<Option<i32>>,
    /// Whether the namespace only admits BestEffort pods (a daemon reads its quota cache;
    /// otherwise the applier lists the quotas).
    pub besteffort_qos: Option<bool>,
}

/// Options of one deploy beyond the app and the cluster configuration.
#[derive(Clone, Copy)]
pub struct DeployOptions<'a> {
    /// What is already known about the cluster.
    pub facts: &'a ClusterFacts,
    /// The extension hook, if one is configured.
    pub hook: Option<&'a dyn ObjectHook>,
}

/// What one deploy did.
#[derive(Clone, Debug, Default)]
pub struct DeployReport {
    /// Lines for the status logs, in order.
    pub notes: Notes,
    /// `(kind, name)` of every object applied.
    pub applied: Vec<(Kind, String)>,
    /// `(kind, name)` of every object deleted.
    pub deleted: Vec<(Kind, String)>,
    /// `metadata.generation` of the applied Deployment: its rollout is done once the
    /// Deployment controller has observed this generation.
    pub deployment_generation: Option<i64>,
    /// Filled by [`Applier::plan`] only: every object the deploy would write or delete, in the
    /// order of the requests.
    pub planned: Vec<PlannedObject>,
}

impl DeployReport {
    fn info(&mut self, message: String) {
        tracing::info!("{message}");
        self.notes.0.push((fiaas_transform::Level::Info, message));
    }
}

/// Applies an app's objects to one cluster.
#[derive(Clone)]
pub struct Applier {
    client: Client,
    pdb_version: PdbVersion,
    autoscaling_version: AutoscalingVersion,
    /// The Ingresses this process last left each app with: when a deploy keeps all of them, no
    /// listing is needed to find stale ones.
    ingresses: Arc<Mutex<ingresses::KnownIngresses>>,
    /// Per namespace, the fiaas Ingresses of each app as of one listing: an app this process
    /// has not deployed yet needs no listing of its own when it had none beyond what it keeps.
    ingress_snapshots: Arc<tokio::sync::Mutex<HashMap<String, ingresses::IngressSnapshot>>>,
    /// Every write is sent with `dryRun=All` and recorded in the report ([`Applier::plan`]).
    dry_run: bool,
}

fn is_fiaas_owner(reference: &OwnerReference) -> bool {
    reference.api_version == API_VERSION && reference.kind == "Application"
}

/// Whether an object carries an owner reference to a fiaas Application.
pub fn owned_by_fiaas(metadata: &ObjectMeta) -> bool {
    metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(is_fiaas_owner))
}

fn name_of(object: &KubeObject) -> String {
    object.metadata().name.clone().unwrap_or_default()
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::ServiceAccount => "ServiceAccount",
        Kind::RoleBinding => "RoleBinding",
        Kind::Service => "Service",
        Kind::Ingress => "Ingress",
        Kind::Deployment => "Deployment",
        Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
        Kind::PodDisruptionBudget => "PodDisruptionBudget",
    }
}

impl Applier {
    /// An applier for the cluster behind `client`, asking it which PodDisruptionBudget and
    /// HorizontalPodAutoscaler APIs it serves (the newest of each).
    pub async fn new(client: Client) -> Result<Self, K8sError> {
        let pdb_version = if serves(&client, "policy/v1", "poddisruptionbudgets").await? {
            PdbVersion::V1
        } else {
            PdbVersion::V1beta1
        };
        let mut autoscaling_version = AutoscalingVersion::V1;
        for newer in [AutoscalingVersion::V2, AutoscalingVersion::V2beta2] {
            if serves(&client, newer.api_version(), "horizontalpodautoscalers").await? {
                autoscaling_version = newer;
                break;
            }
        }
        Ok(Applier {
            client,
            pdb_version,
            autoscaling_version,
            ingresses: Arc::default(),
            ingress_snapshots: Arc::default(),
            dry_run: false,
        })
    }

    /// The PodDisruptionBudget API in use.
    pub fn pdb_version(&self) -> PdbVersion {
        self.pdb_version
    }

    /// The HorizontalPodAutoscaler API in use.
    pub fn autoscaling_version(&self) -> AutoscalingVersion {
        self.autoscaling_version
    }

    /// This applier, writing HorizontalPodAutoscalers in `version` instead of the discovered
    /// one (which must be served).
    pub fn with_autoscaling_version(self, version: AutoscalingVersion) -> Self {
        Applier {
            autoscaling_version: version,
            ..self
        }
    }

    /// Whether a namespace only admits BestEffort pods: a ResourceQuota with `hard.pods: "0"`
    /// scoped `NotBestEffort`.
    pub async fn besteffort_required(&self, namespace: &str) -> Result<bool, K8sError> {
        let api: Api<ResourceQuota> = Api::namespaced(self.client.clone(), namespace);
        let quotas = api
            .list(&ListParams::default())
            .await
            .map_err(|source| K8sError::api("list", "ResourceQuota", namespace, source))?;
        Ok(quotas.items.iter().any(requires_besteffort))
    }

    /// Render and apply one deploy of `app`, then prune what it no longer wants.
    pub async fn deploy(
        &self,
        app: &AppSpec,
        config: &TransformSettings,
        options: DeployOptions<'_>,
    ) -> Result<DeployReport, K8sError> {
        let facts = options.facts;
        let besteffort_qos = match facts.besteffort_qos {
            Some(known) => known,
            None => self.besteffort_required(&app.namespace).await?,
        };
        let options_of_cluster = RenderOptions {
            besteffort_qos,
            autoscaling: self.autoscaling_version,
        };
        let manifests = fiaas_transform::render(app, config, &options_of_cluster)?;
        let mut report = DeployReport {
            notes: manifests.notes.clone(),
            ..DeployReport::default()
        };
        self.apply_all(app, config, options, &manifests, &mut report)
            .await?;
        self.prune(app, config, &manifests, &mut report).await?;
        Ok(report)
    }

    async fn apply_all(
        &self,
        app: &AppSpec,
        config: &TransformSettings,
        options: DeployOptions<'_>,
        manifests: &Manifests,
        report: &mut DeployReport,
    ) -> Result<(), K8sError> {
        let facts = options.facts;
        let wants_hpa = !manifests.absent.contains(&Kind::HorizontalPodAutoscaler);
        let mut role_bindings = Vec::new();
        for object in &manifests.objects {
            match object {
                KubeObject::ServiceAccount(account) => {
                    self.apply_service_account(app, account, report).await?;
                }
                KubeObject::RoleBinding(binding) => role_bindings.push(binding.clone()),
                KubeObject::Deployment(deployment) => {
                    if !role_bindings.is_empty() || config.enable_service_account_per_app {
                        self.apply_role_bindings(
                            app,
                            config,
                            &std::mem::take(&mut role_bindings),
                            report,
                        )
                        .await?;
                    }
                    let mut body = object.to_json();
                    if wants_hpa && let Some(replicas) = self.live_replicas(app, facts).await? {
                        report.info(format!(
                            "Configured replica size ({}) for deployment is being ignored, as current running replica size is different ({replicas}) for {}",
                            app.autoscaler.min_replicas, app.name
                        ));
                        body["spec"]["replicas"] = Value::from(replicas);
                    } else {
                        report.info(format!("Creating new deployment for {}", app.name));
                    }
                    let body = hooked(options.hook, "Deployment", body, &app.app_config).await?;
                    let applied = self
                        .apply_body(
                            &ApiResource::erase::<Deployment>(&()),
                            app,
                            &deployment.metadata.name.clone().unwrap_or_default(),
                            body,
                            report,
                        )
                        .await?;
                    report.deployment_generation = applied.metadata.generation;
                    report.applied.push((Kind::Deployment, name_of(object)));
                }
                KubeObject::PodDisruptionBudget(_) => {
                    // The hook sees policy/v1, as upstream's did, whatever is applied.
                    let mut body = hooked(
                        options.hook,
                        "PodDisruptionBudget",
                        object.to_json(),
                        &app.app_config,
                    )
                    .await?;
                    let resource = self.pdb_resource();
                    if self.pdb_version == PdbVersion::V1beta1 {
                        body["apiVersion"] = Value::from("policy/v1beta1");
                        if let Some(spec) = body.get_mut("spec").and_then(Value::as_object_mut) {
                            spec.remove("unhealthyPodEvictionPolicy");
                        }
                    }
                    self.apply_body(&resource, app, &name_of(object), body, report)
                        .await?;
                    report
                        .applied
                        .push((Kind::PodDisruptionBudget, name_of(object)));
                }
                other => {
                    let resource = resource_of(other);
                    if other.kind() == Kind::HorizontalPodAutoscaler {
                        report.info(format!("Creating/updating autoscaler for {}", app.name));
                    }
                    // Upstream calls the hook for every object it deploys except the
                    // ServiceAccount and RoleBindings (fiaas_deploy_daemon/deployer/kubernetes/
                    // service.py, ingress_*.py, autoscaler.py).
                    let body = hooked(
                        options.hook,
                        kind_name(other.kind()),
                        other.to_json(),
                        &app.app_config,
                    )
                    .await?;
                    self.apply_body(&resource, app, &name_of(other), body, report)
                        .await?;
                    report.applied.push((other.kind(), name_of(other)));
                }
            }
        }
        Ok(())
    }

    fn pdb_resource(&self) -> ApiResource {
        match self.pdb_version {
            PdbVersion::V1 => ApiResource::erase::<PodDisruptionBudget>(&()),
            PdbVersion::V1beta1 => legacy("policy", "PodDisruptionBudget", "poddisruptionbudgets"),
        }
    }

    async fn live_replicas(
        &self,
        app: &AppSpec,
        facts: &ClusterFacts,
    ) -> Result<Option<i32>, K8sError> {
        let replicas = match facts.live_replicas {
            Some(known) => known,
            None => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), &app.namespace);
                match api.get_opt(&app.name).await {
                    Ok(found) => found.and_then(|d| d.spec).and_then(|s| s.replicas),
                    Err(source) => {
                        return Err(K8sError::api("get", "Deployment", &app.name, source));
                    }
                }
            }
        };
        // The autoscaler does not scale a Deployment up from zero, so zero is not kept.
        Ok(replicas.filter(|r| *r > 0))
    }

    async fn apply_body(
        &self,
        resource: &ApiResource,
        app: &AppSpec,
        name: &str,
        mut body: Value,
        report: &mut DeployReport,
    ) -> Result<DynamicObject, K8sError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &app.namespace, resource);
        crate::list_maps::keep_last_of_each_key(&mut body);
        if self.dry_run {
            return self.plan_body(&api, resource, name, &body, report).await;
        }
        let applied = self.write_body(&api, resource, name, &body).await?;
        let Some(fields) = crate::cutover::take_over(&applied.metadata) else {
            return Ok(applied);
        };
        // Last written by the Python daemon: own its fields, then apply again so that what
        // fiaas no longer sets is removed. The resourceVersion makes the switch fail rather
        // than overwrite a concurrent change of the field ownership.
        let ownership = serde_json::json!({"metadata": {
            "resourceVersion": applied.metadata.resource_version,
            "managedFields": fields,
        }});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&ownership))
            .await
            .map_err(|source| K8sError::api("take over", &resource.kind, name, source))?;
        self.apply_patch(&api, resource, name, &body).await
    }

    async fn apply_patch(
        &self,
        api: &Api<DynamicObject>,
        resource: &ApiResource,
        name: &str,
        body: &Value,
    ) -> Result<DynamicObject, K8sError> {
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = self.dry_run;
        api.patch(name, &params, &Patch::Apply(body))
            .await
            .map_err(|source| K8sError::api("apply", &resource.kind, name, source))
    }

    /// Apply `body`, rewriting an object that server-side apply cannot read first.
    async fn write_body(
        &self,
        api: &Api<DynamicObject>,
        resource: &ApiResource,
        name: &str,
        body: &Value,
    ) -> Result<DynamicObject, K8sError> {
        match self.apply_patch(api, resource, name, body).await {
            Err(K8sError::Api {
                source: kube::Error::Api(status),
                ..
            }) if status.message.contains("existing fields")
                && status.message.contains("duplicate entries for key") =>
            {
                // The live object repeats a list-map key (the Python daemon's PUT was accepted
                // with a global env var named like a managed one): server-side apply cannot
                // read it at all. A merge patch replaces lists whole, so it writes the object
                // once without the repeats; applying works from then on.
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    dry_run: self.dry_run,
                    ..PatchParams::default()
                };
                let rewritten = api
                    .patch(name, &params, &Patch::Merge(body))
                    .await
                    .map_err(|source| K8sError::api("rewrite", &resource.kind, name, source))?;
                if self.dry_run {
                    Ok(rewritten)
                } else {
                    self.apply_patch(api, resource, name, body).await
                }
            }
            applied => applied,
        }
    }

    async fn apply_service_account(
        &self,
        app: &AppSpec,
        account: &ServiceAccount,
        report: &mut DeployReport,
    ) -> Result<(), K8sError> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &app.namespace);
        let existing = api
            .get_opt(&app.name)
            .await
            .map_err(|source| K8sError::api("get", "ServiceAccount", &app.name, source))?;
        if existing.is_some_and(|sa| !owned_by_fiaas(&sa.metadata)) {
            report.info(format!(
                "Found serviceAccount {} not managed by us.",
                app.name
            ));
            return Ok(());
        }
        let pull_secrets = api
            .get_opt("default")
            .await
            .map_err(|source| K8sError::api("get", "ServiceAccount", "default", source))?
            .and_then(|sa| sa.image_pull_secrets)
            .unwrap_or_default();
        let mut account = account.clone();
        account.image_pull_secrets = Some(pull_secrets);
        let body = KubeObject::ServiceAccount(account).to_json();
        self.apply_body(
            &ApiResource::erase::<ServiceAccount>(&()),
            app,
            &app.name,
            body,
            report,
        )
        .await?;
        report
            .applied
            .push((Kind::ServiceAccount, app.name.clone()));
        Ok(())
    }

    /// Upstream's RoleBinding rules: fiaas-owned bindings of roles no longer configured go; each
    /// configured role reuses the first listed binding of it if fiaas owns that one, is skipped
    /// if someone else does, and gets a new `<app>-…` binding otherwise.
    async fn apply_role_bindings(
        &self,
        app: &AppSpec,
        config: &TransformSettings,
        desired: &[RoleBinding],
        report: &mut DeployReport,
    ) -> Result<(), K8sError> {
        let api: Api<RoleBinding> = Api::namespaced(self.client.clone(), &app.namespace);
        let selector = format!("app={}", app.name);
        let existing = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|source| K8sError::api("list", "RoleBinding", &selector, source))?
            .items;
        let configured = |binding: &RoleBinding| match binding.role_ref.kind.as_str() {
            "Role" => config.list_of_roles.contains(&binding.role_ref.name),
            "ClusterRole" => config
                .list_of_cluster_roles
                .contains(&binding.role_ref.name),
            _ => false,
        };
        for stale in existing
            .iter()
            .filter(|b| owned_by_fiaas(&b.metadata) && !configured(b))
        {
            let name = stale.metadata.name.clone().unwrap_or_default();
            let resource = ApiResource::erase::<RoleBinding>(&());
            let bindings: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &app.namespace, &resource);
            self.delete_dynamic(
                &bindings,
                &resource,
                &name,
                stale.metadata.uid.clone(),
                report,
            )
            .await?;
            report.deleted.push((Kind::RoleBinding, name));
        }
        for binding in desired {
            let same_role = existing.iter().find(|b| {
                b.role_ref.kind == binding.role_ref.kind && b.role_ref.name == binding.role_ref.name
            });
            match same_role {
                Some(found) if owned_by_fiaas(&found.metadata) => {
                    let name = found.metadata.name.clone().unwrap_or_default();
                    let mut body = KubeObject::RoleBinding(binding.clone()).to_json();
                    body["metadata"]["name"] = Value::from(name.clone());
                    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.remove("generateName");
                    }
                    self.apply_body(
                        &ApiResource::erase::<RoleBinding>(&()),
                        app,
                        &name,
                        body,
                        report,
                    )
                    .await?;
                    report.applied.push((Kind::RoleBinding, name));
                }
                Some(found) => report.info(format!(
                    "RoleBinding {} for {} {} is not managed by us, leaving it alone",
                    found.metadata.name.clone().unwrap_or_default(),
                    binding.role_ref.kind,
                    binding.role_ref.name
                )),
                None => {
                    let created = api
                        .create(
                            &PostParams {
                                field_manager: Some(FIELD_MANAGER.to_owned()),
                                dry_run: self.dry_run,
                            },
                            binding,
                        )
                        .await
                        .map_err(|source| {
                            K8sError::api(
                                "create",
                                "RoleBinding",
                                &format!("{}-*", app.name),
                                source,
                            )
                        })?;
                    let name = created.metadata.name.clone().unwrap_or_default();
                    if self.dry_run {
                        report.planned.push(PlannedObject {
                            resource: ApiResource::erase::<RoleBinding>(&()),
                            name: name.clone(),
                            live: None,
                            planned: Some(to_value(created)),
                        });
                    }
                    report.applied.push((Kind::RoleBinding, name));
                }
            }
        }
        Ok(())
    }

    async fn prune(
        &self,
        app: &AppSpec,
        config: &TransformSettings,
        manifests: &Manifests,
        report: &mut DeployReport,
    ) -> Result<(), K8sError> {
        // One arm per kind, so a new kind does not compile until its pruning is decided.
        for kind in Kind::ALL {
            let resource = match kind {
                // Ingresses are named per host, so they are swept by label, absent or not.
                Kind::Ingress => {
                    self.prune_ingresses(app, config, manifests, report).await?;
                    continue;
                }
                // Every app has a Deployment. RoleBindings of roles no longer configured are
                // deleted where bindings are applied (`apply_role_bindings`); ServiceAccounts,
                // as upstream, are never deleted.
                Kind::Deployment | Kind::ServiceAccount | Kind::RoleBinding => continue,
                Kind::Service => ApiResource::erase::<Service>(&()),
                Kind::HorizontalPodAutoscaler => autoscaling_resource(self.autoscaling_version),
                Kind::PodDisruptionBudget => self.pdb_resource(),
            };
            if !manifests.absent.contains(&kind) {
                continue;
            }
            match kind {
                Kind::HorizontalPodAutoscaler => {
                    report.info(format!("Deleting autoscaler for {}", app.name));
                }
                Kind::PodDisruptionBudget => {
                    report.info(format!("Deleting podDisruptionBudget for {}", app.name));
                }
                _ => {}
            }
            self.delete_if_owned(&resource, kind, app, report).await?;
        }
        Ok(())
    }

    /// Delete the app's object of `resource` if fiaas owns it (a foreign one is left alone).
    async fn delete_if_owned(
        &self,
        resource: &ApiResource,
        kind: Kind,
        app: &AppSpec,
        report: &mut DeployReport,
    ) -> Result<(), K8sError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &app.namespace, resource);
        let found = api
            .get_opt(&app.name)
            .await
            .map_err(|source| K8sError::api("get", kind_name(kind), &app.name, source))?;
        if let Some(object) = found
            && owned_by_fiaas(&object.metadata)
        {
            self.delete_dynamic(&api, resource, &app.name, object.metadata.uid, report)
                .await?;
            report.deleted.push((kind, app.name.clone()));
        }
        Ok(())
    }

    async fn delete_dynamic(
        &self,
        api: &Api<DynamicObject>,
        resource: &ApiResource,
        name: &str,
        uid: Option<String>,
        report: &mut DeployReport,
    ) -> Result<(), K8sError> {
        let live = if self.dry_run {
            api.get_opt(name)
                .await
                .map_err(|source| K8sError::api("get", &resource.kind, name, source))?
        } else {
            None
        };
        let params = DeleteParams {
            dry_run: self.dry_run,
            ..delete_params(uid)
        };
        match api.delete(name, &params).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(source) => return Err(K8sError::api("delete", &resource.kind, name, source)),
        }
        if let Some(live) = live {
            report.planned.push(PlannedObject {
                resource: resource.clone(),
                name: name.to_owned(),
                live: Some(to_value(live)),
                planned: None,
            });
        }
        Ok(())
    }
}

async fn hooked(
    hook: Option<&dyn ObjectHook>,
    kind: &str,
    body: Value,
    app_config: &Value,
) -> Result<Value, K8sError> {
    let Some(hook) = hook else {
        return Ok(body);
    };
    match hook.call(kind, &body, app_config).await {
        Ok(Some(replaced)) => Ok(replaced),
        Ok(None) => Ok(body),
        Err(reason) => Err(K8sError::Hook {
            kind: kind.to_owned(),
            reason,
        }),
    }
}

/// Delete exactly the object that was checked (a replacement with another uid is left alone).
fn delete_params(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::background()
    }
}

fn legacy(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource {
        group: group.to_owned(),
        version: "v1beta1".to_owned(),
        api_version: format!("{group}/v1beta1"),
        kind: kind.to_owned(),
        plural: plural.to_owned(),
    }
}

fn autoscaling_resource(version: AutoscalingVersion) -> ApiResource {
    match version {
        AutoscalingVersion::V1 => ApiResource::erase::<v1::HorizontalPodAutoscaler>(&()),
        AutoscalingVersion::V2 => ApiResource::erase::<v2::HorizontalPodAutoscaler>(&()),
        AutoscalingVersion::V2beta2 => ApiResource {
            version: "v2beta2".to_owned(),
            api_version: version.api_version().to_owned(),
            ..ApiResource::erase::<v2::HorizontalPodAutoscaler>(&())
        },
    }
}

/// Whether the API server serves `plural` in `group_version` (a version it does not serve at
/// all answers 404).
async fn serves(client: &Client, group_version: &str, plural: &str) -> Result<bool, K8sError> {
    match client.list_api_group_resources(group_version).await {
        Ok(list) => Ok(list.resources.iter().any(|r| r.name == plural)),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(source) => Err(K8sError::api("discover", "APIGroup", group_version, source)),
    }
}

fn resource_of(object: &KubeObject) -> ApiResource {
    match object {
        KubeObject::ServiceAccount(_) => ApiResource::erase::<ServiceAccount>(&()),
        KubeObject::RoleBinding(_) => ApiResource::erase::<RoleBinding>(&()),
        KubeObject::Service(_) => ApiResource::erase::<Service>(&()),
        KubeObject::Ingress(_) => ApiResource::erase::<Ingress>(&()),
        KubeObject::LegacyIngress(_) => legacy("extensions", "Ingress", "ingresses"),
        KubeObject::Deployment(_) => ApiResource::erase::<Deployment>(&()),
        KubeObject::HorizontalPodAutoscaler(_) => autoscaling_resource(AutoscalingVersion::V1),
        KubeObject::HorizontalPodAutoscalerV2(_) => autoscaling_resource(AutoscalingVersion::V2),
        KubeObject::HorizontalPodAutoscalerV2beta2(_) => {
            autoscaling_resource(AutoscalingVersion::V2beta2)
        }
        KubeObject::PodDisruptionBudget(_) => ApiResource::erase::<PodDisruptionBudget>(&()),
    }
}

/// Upstream's BestEffort rule: `hard.pods == "0"` and the literal `NotBestEffort` scope
/// (`scopeSelector` is not consulted); a quota without `hard` does not match.
pub fn requires_besteffort(quota: &ResourceQuota) -> bool {
    let Some(spec) = &quota.spec else {
        return false;
    };
    let zero_pods = spec
        .hard
        .as_ref()
        .and_then(|hard: &BTreeMap<_, _>| hard.get("pods"))
        .is_some_and(|q| q.0 == "0");
    let not_besteffort = spec
        .scopes
        .as_ref()
        .is_some_and(|scopes| scopes.iter().any(|s| s == "NotBestEffort"));
    zero_pods && not_besteffort
}
