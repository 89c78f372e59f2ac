//! The two custom resources of fiaas, `Application` and `ApplicationStatus`, and their CRDs.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, CustomResourceValidation, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, CustomResource, CustomResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{FIELD_MANAGER, K8sError};

/// API group of both resources.
pub const GROUP: &str = "fiaas.schibsted.io";
/// API version of both resources.
pub const API_VERSION: &str = "fiaas.schibsted.io/v1";

/// `spec` of an Application: one app's fiaas.yml and deployment facts.
#[derive(CustomResource, Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[kube(
    group = "fiaas.schibsted.io",
    version = "v1",
    kind = "Application",
    namespaced,
    status = "ApplicationResult",
    shortname = "app",
    schema = "disabled"
)]
#[kube(shortname = "fa")]
#[kube(printcolumn = r#"{"name": "Image", "type": "string", "jsonPath": ".spec.image"}"#)]
#[kube(printcolumn = r#"{"name": "Result", "type": "string", "jsonPath": ".status.result"}"#)]
#[kube(
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
pub struct ApplicationSpec {
    /// The application name (names the created objects).
    pub application: String,
    /// The container image.
    pub image: String,
    /// The fiaas.yml, as a map. Kept untyped: fiaas-spec reads and validates it.
    pub config: Value,
    /// Labels per kind, merged over the fiaas.yml's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_labels: Option<Value>,
    /// Annotations per kind, merged over the fiaas.yml's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_annotations: Option<Value>,
}

/// `status` of an Application, written with `--include-status-in-app`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ApplicationResult {
    /// INITIATED, RUNNING, SUCCESS or FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// The Application generation this result is for.
    #[serde(
        rename = "observedGeneration",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub observed_generation: Option<i64>,
    /// Error lines of the deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<String>>,
    /// The deployment id this result is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// `Ready` and `Progressing`, for tools that wait on conditions (`kubectl wait`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// The result of one deployment of one app, `<app>-<hash of deployment id>`; the upstream keeps
/// its fields at the top level, not under `spec`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct ApplicationStatus {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// INITIATED, RUNNING, SUCCESS or FAILED.
    #[serde(default)]
    pub result: String,
    /// Log lines of the deploy.
    #[serde(default)]
    pub logs: Vec<String>,
}

impl k8s_openapi::Resource for ApplicationStatus {
    const API_VERSION: &'static str = API_VERSION;
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = "ApplicationStatus";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "application-statuses";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for ApplicationStatus {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

fn preserved_object() -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// Upstream's per-kind map, plus `pod_disruption_budget` and `role_binding`, which the upstream
/// schema lacks so the API server pruned them although the transform uses them.
fn per_kind_maps() -> Value {
    let kinds = [
        "global",
        "deployment",
        "horizontal_pod_autoscaler",
        "ingress",
        "service",
        "service_account",
        "pod",
        "status",
        "pod_disruption_budget",
        "role_binding",
    ];
    json!({
        "type": "object",
        "properties": kinds.iter().map(|k| (k.to_string(), preserved_object())).collect::<serde_json::Map<_, _>>(),
    })
}

/// How the Application CRD describes `spec.config`, the fiaas.yml.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConfigValidation {
    /// Any object, as in the upstream's CRD (`deploy/crds.yaml`): fiaas validates the fiaas.yml
    /// when it deploys it.
    #[default]
    Off,
    /// The structural subset of the fiaas.yml v3 schema that a CRD can carry
    /// ([`fiaas_spec::crd_config_schema`], `--crd-validation`): the API server refuses an
    /// Application whose fiaas.yml fiaas would refuse, naming the field, at `kubectl apply`.
    Schema,
}

fn application_schema(validation: ConfigValidation) -> Value {
    // Nullable, unlike upstream's schema: an Application written without a fiaas.yml (or
    // stored before schemas existed) reaches the daemon, which reports it as FAILED with the
    // reason instead of it silently never deploying.
    let config = match validation {
        ConfigValidation::Off => {
            json!({"type": "object", "nullable": true, "x-kubernetes-preserve-unknown-fields": true})
        }
        ConfigValidation::Schema => fiaas_spec::crd_config_schema(),
    };
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "application": {"type": "string"},
                    "image": {"type": "string"},
                    "config": config,
                    "additional_labels": per_kind_maps(),
                    "additional_annotations": per_kind_maps(),
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "result": {"type": "string"},
                    "observedGeneration": {"type": "integer"},
                    "logs": {"type": "array", "items": {"type": "string"}},
                    "deployment_id": {"type": "string"},
                    "conditions": {"type": "array", "items": {
                        "type": "object",
                        "required": ["type", "status"],
                        "properties": {
                            "type": {"type": "string"},
                            "status": {"type": "string"},
                            "reason": {"type": "string"},
                            "message": {"type": "string"},
                            "lastTransitionTime": {"type": "string", "format": "date-time"},
                            "observedGeneration": {"type": "integer"},
                        },
                    }},
                },
            },
        },
    })
}

fn application_status_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "result": {"type": "string"},
            "logs": {"type": "array", "items": {"type": "string"}},
        },
    })
}

fn with_schema(mut crd: CustomResourceDefinition, schema: Value) -> CustomResourceDefinition {
    crd.spec.preserve_unknown_fields = Some(false);
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "None".to_owned(),
        webhook: None,
    });
    for version in &mut crd.spec.versions {
        // The schema is built above from literals; a failure is a defect the crd tests catch.
        let props: JSONSchemaProps =
            serde_json::from_value(schema.clone()).expect("the CRD schema is valid");
        version.schema = Some(CustomResourceValidation {
            open_api_v3_schema: Some(props),
        });
    }
    crd
}

/// The ApplicationStatus CRD (not derivable: its fields are not under `spec`).
fn application_status_crd() -> CustomResourceDefinition {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "application-statuses.fiaas.schibsted.io"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": "ApplicationStatus",
                "plural": "application-statuses",
                "singular": "applicationstatus",
                "shortNames": ["status", "appstatus", "fs"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "additionalPrinterColumns": [
                    {"name": "Result", "type": "string", "jsonPath": ".result"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
            }],
        },
    });
    serde_json::from_value(crd).expect("the ApplicationStatus CRD literal is valid")
}

/// Both CRDs, Application first, as the daemon creates them.
pub fn crds(validation: ConfigValidation) -> Vec<CustomResourceDefinition> {
    vec![
        with_schema(Application::crd(), application_schema(validation)),
        with_schema(application_status_crd(), application_status_schema()),
    ]
}

/// Both CRDs as a multi-document YAML stream (`fiaas crd`; `deploy/crds.yaml` is
/// [`ConfigValidation::Off`]'s).
pub fn crds_yaml(validation: ConfigValidation) -> String {
    crds(validation)
        .iter()
        .map(|crd| {
            let value = serde_json::to_value(crd).unwrap_or_default();
            format!("---\n{}", fiaas_spec::to_yaml(&value))
        })
        .collect()
}

/// Create or update both CRDs (server-side apply), as the daemon does at start-up unless
/// `--disable-crd-creation`.
pub async fn ensure_crds(client: &Client) -> Result<(), K8sError> {
    ensure_crds_with(client, ConfigValidation::Off).await
}

/// [`ensure_crds`] with the Application's `spec.config` described as `validation` says
/// (`--crd-validation`). Applying the other kind later replaces the schema: the fields this
/// field manager no longer applies are removed.
pub async fn ensure_crds_with(
    client: &Client,
    validation: ConfigValidation,
) -> Result<(), K8sError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    for crd in crds(validation) {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .map_err(|source| K8sError::api("apply", "CustomResourceDefinition", &name, source))?;
        tracing::info!("Created or updated CustomResourceDefinition with name {name}");
    }
    Ok(())
}
