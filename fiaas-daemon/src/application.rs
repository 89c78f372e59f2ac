//! What the daemon reads off an Application object, read leniently: a malformed Application is
//! reported on its own status and never stops the watch.

use std::collections::BTreeMap;

use fiaas_k8s::StatusSubject;
use fiaas_spec::{AdditionalLabelsOrAnnotations, AppFacts};
use kube::api::DynamicObject;
use serde_json::Value;

/// One Application, as the watch delivered it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplicationView {
    /// `metadata.name`.
    pub object_name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: Option<String>,
    /// `metadata.generation`.
    pub generation: i64,
    /// `metadata.resourceVersion`.
    pub resource_version: Option<String>,
    /// The `fiaas/deployment_id` label.
    pub deployment_id: Option<String>,
    /// Whether the object is being deleted.
    pub deleting: bool,
    /// `spec.application` (the object name when missing, so a status can still be written).
    pub app: String,
    /// `spec.image`.
    pub image: Option<String>,
    /// `spec.config`.
    pub config: Option<Value>,
    /// `spec.additional_labels`.
    pub additional_labels: Value,
    /// `spec.additional_annotations`.
    pub additional_annotations: Value,
    /// `status.observedGeneration`.
    pub status_generation: i64,
    /// `status.deployment_id`.
    pub status_deployment_id: Option<String>,
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

impl ApplicationView {
    /// Read an Application; nothing here fails, problems surface in [`Self::facts`].
    pub fn of(object: &DynamicObject) -> Self {
        let meta = &object.metadata;
        let spec = &object.data["spec"];
        let status = &object.data["status"];
        let object_name = meta.name.clone().unwrap_or_default();
        ApplicationView {
            app: text(&spec["application"]).unwrap_or_else(|| object_name.clone()),
            object_name,
            namespace: meta.namespace.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            generation: meta.generation.unwrap_or_default(),
            resource_version: meta.resource_version.clone(),
            deployment_id: meta
                .labels
                .as_ref()
                .and_then(|l| l.get("fiaas/deployment_id").cloned()),
            deleting: meta.deletion_timestamp.is_some(),
            image: text(&spec["image"]),
            config: spec.get("config").cloned(),
            additional_labels: spec["additional_labels"].clone(),
            additional_annotations: spec["additional_annotations"].clone(),
            status_generation: status["observedGeneration"].as_i64().unwrap_or_default(),
            status_deployment_id: text(&status["deployment_id"]),
        }
    }

    /// Upstream's "status echo": the Application changed only because fiaas wrote its status.
    pub fn is_status_echo(&self) -> bool {
        self.generation == self.status_generation
            && self.deployment_id.is_some()
            && self.deployment_id == self.status_deployment_id
    }

    /// The `status` entry of the additional labels/annotations, as given (no `global`).
    fn status_map(value: &Value) -> BTreeMap<String, String> {
        value["status"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whose statuses a deploy of this Application writes.
    pub fn subject(&self) -> StatusSubject {
        StatusSubject {
            object_name: self.object_name.clone(),
            app: self.app.clone(),
            namespace: self.namespace.clone(),
            deployment_id: self.deployment_id.clone().unwrap_or_default(),
            uid: self.uid.clone(),
            labels: Self::status_map(&self.additional_labels),
            annotations: Self::status_map(&self.additional_annotations),
        }
    }

    /// The fiaas.yml and the deployment facts, or why the Application cannot be deployed.
    pub fn facts(&self) -> Result<(Value, AppFacts), String> {
        let config = match &self.config {
            Some(config @ Value::Object(_)) => {
                let size = serde_json::to_string(config).map_or(0, |text| text.len());
                if size > fiaas_spec::MAX_DOCUMENT_BYTES {
                    return Err(format!(
                        "spec.config: {size} bytes, more than the limit of {} bytes",
                        fiaas_spec::MAX_DOCUMENT_BYTES
                    ));
                }
                config.clone()
            }
            Some(Value::Null) | None => {
                return Err(
                    "spec.config: the Application has no fiaas.yml (null or missing)".into(),
                );
            }
            Some(other) => return Err(format!("spec.config: must be a mapping, not {other}")),
        };
        let image = self
            .image
            .clone()
            .ok_or("spec.image: a container image is required")?;
        let extra =
            |field: &str, value: &Value| -> Result<Option<AdditionalLabelsOrAnnotations>, String> {
                if value.is_null() {
                    return Ok(None);
                }
                serde_json::from_value(value.clone())
                    .map(Some)
                    .map_err(|e| format!("spec.{field}: {e}"))
            };
        Ok((
            config,
            AppFacts {
                name: self.app.clone(),
                namespace: self.namespace.clone(),
                image,
                deployment_id: self.deployment_id.clone().unwrap_or_default(),
                uid: self.uid.clone(),
                additional_labels: extra("additional_labels", &self.additional_labels)?,
                additional_annotations: extra(
                    "additional_annotations",
                    &self.additional_annotations,
                )?,
            },
        ))
    }

    /// `fiaas/source-repository` from the config's deployment annotations (usage reporting).
    pub fn repository(&self) -> Option<String> {
        self.config
            .as_ref()
            .and_then(|c| c.pointer("/annotations/deployment/fiaas~1source-repository"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn view(data: Value) -> ApplicationView {
        let object: DynamicObject = serde_json::from_value(data).unwrap();
        ApplicationView::of(&object)
    }

    #[test]
    fn malformed_applications_are_reported_not_fatal() {
        let base = json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "n", "generation": 2, "labels": {"fiaas/deployment_id": "d"}},
            "spec": {"application": "a", "image": "i:1", "config": null}});
        assert!(
            view(base.clone())
                .facts()
                .unwrap_err()
                .starts_with("spec.config")
        );
        let mut bad_labels = base.clone();
        bad_labels["spec"]["config"] = json!({"version": 3});
        bad_labels["spec"]["additional_labels"] = json!({"global": 5});
        assert!(
            view(bad_labels)
                .facts()
                .unwrap_err()
                .starts_with("spec.additional_labels")
        );
    }

    #[test]
    fn status_echo_needs_same_generation_and_deployment_id() {
        let echo = view(
            json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "n", "generation": 2, "labels": {"fiaas/deployment_id": "d"}},
            "spec": {}, "status": {"observedGeneration": 2, "deployment_id": "d"}}),
        );
        assert!(echo.is_status_echo());
        let fresh = view(
            json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
            "metadata": {"name": "a", "namespace": "n", "generation": 3, "labels": {"fiaas/deployment_id": "d"}},
            "spec": {}, "status": {"observedGeneration": 2, "deployment_id": "d"}}),
        );
        assert!(!fresh.is_status_echo());
    }
}
