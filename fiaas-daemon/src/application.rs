//! What the daemon reads off an Application object, read leniently: a malformed Application is
//! reported on its own status and never stops the watch.
//!
//! The watch delivers [`RawApplication`]s, whose `spec` and `status` stay unparsed JSON text until
//! [`ApplicationView::of`] reads them one by one. The API server accepts any JSON under
//! `spec.config` (the CRD preserves unknown fields), so one Application may nest deeper than
//! serde_json's recursion limit: parsed as part of the whole list, it would fail every listing
//! and so every deploy; parsed here, it fails only its own deploy.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use fiaas_k8s::StatusSubject;
use fiaas_spec::{AdditionalLabelsOrAnnotations, AppFacts};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

/// An Application as the API server sends it, with `spec` and `status` kept as JSON text.
#[derive(Clone, Debug, Deserialize)]
pub struct RawApplication {
    /// The object's metadata.
    pub metadata: ObjectMeta,
    /// `spec`, unparsed.
    #[serde(default)]
    pub spec: Option<Box<RawValue>>,
    /// `status`, unparsed.
    #[serde(default)]
    pub status: Option<Box<RawValue>>,
}

impl Resource for RawApplication {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        fiaas_k8s::Application::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        fiaas_k8s::Application::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        fiaas_k8s::Application::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        fiaas_k8s::Application::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

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
    /// Why a part of `spec` could not be read at all (too deeply nested, not JSON an object).
    pub spec_error: Option<String>,
    /// `status.observedGeneration`.
    pub status_generation: i64,
    /// `status.deployment_id`.
    pub status_deployment_id: Option<String>,
    /// `status.result`.
    pub status_result: Option<String>,
}

/// The members of a JSON object, each still unparsed; empty for anything else.
fn members(raw: Option<&RawValue>) -> HashMap<String, &RawValue> {
    raw.and_then(|raw| serde_json::from_str(raw.get()).ok())
        .unwrap_or_default()
}

/// A member that should be a string; `None` when absent or of another type.
fn text(fields: &HashMap<String, &RawValue>, name: &str) -> Option<String> {
    fields
        .get(name)
        .and_then(|raw| serde_json::from_str(raw.get()).ok())
}

/// Whether `name` is a DNS-1123 label, as the names of an app's Service and Deployment must be.
fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

impl ApplicationView {
    /// Read an Application; nothing here fails, problems surface in [`Self::facts`].
    pub fn of(object: &RawApplication) -> Self {
        let meta = &object.metadata;
        let spec = members(object.spec.as_deref());
        let status = members(object.status.as_deref());
        let mut spec_error = None;
        let mut value = |name: &str| match spec.get(name) {
            None => Value::Null,
            Some(raw) => serde_json::from_str(raw.get()).unwrap_or_else(|error| {
                spec_error.get_or_insert_with(|| format!("spec.{name}: {error}"));
                Value::Null
            }),
        };
        let config = spec.contains_key("config").then(|| value("config"));
        let additional_labels = value("additional_labels");
        let additional_annotations = value("additional_annotations");
        let object_name = meta.name.clone().unwrap_or_default();
        ApplicationView {
            app: text(&spec, "application").unwrap_or_else(|| object_name.clone()),
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
            image: text(&spec, "image"),
            config,
            additional_labels,
            additional_annotations,
            spec_error,
            status_generation: status
                .get("observedGeneration")
                .and_then(|raw| serde_json::from_str(raw.get()).ok())
                .unwrap_or_default(),
            status_deployment_id: text(&status, "deployment_id"),
            status_result: text(&status, "result"),
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

    /// An Application that exists only in this process (the bootstrapper's `--app`): the
    /// fiaas.yml document `config` deployed as `app` in `namespace`, with `image`, under
    /// `deployment_id`. With no object behind it, its ApplicationStatus has no owner and there
    /// is no inline status to write.
    pub fn unstored(
        namespace: &str,
        app: &str,
        image: &str,
        deployment_id: &str,
        config: Value,
    ) -> ApplicationView {
        ApplicationView {
            object_name: app.to_owned(),
            namespace: namespace.to_owned(),
            uid: None,
            generation: 0,
            resource_version: None,
            deployment_id: Some(deployment_id.to_owned()),
            deleting: false,
            app: app.to_owned(),
            image: Some(image.to_owned()),
            config: Some(config),
            additional_labels: Value::Null,
            additional_annotations: Value::Null,
            spec_error: None,
            status_generation: 0,
            status_deployment_id: None,
            status_result: None,
        }
    }

    /// The fiaas.yml and the deployment facts, or why the Application cannot be deployed.
    pub fn facts(&self) -> Result<(Value, AppFacts), String> {
        if let Some(error) = &self.spec_error {
            return Err(error.clone());
        }
        if !is_dns_label(&self.app) {
            return Err(format!(
                "spec.application: '{}' cannot name Kubernetes objects (lower-case letters, digits \
                 and '-', starting and ending with a letter or digit, at most 63 characters)",
                self.app
            ));
        }
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
        let object: RawApplication = serde_json::from_value(data).unwrap();
        ApplicationView::of(&object)
    }

    #[test]
    fn an_application_nested_too_deeply_fails_alone_and_keeps_its_name() {
        let depth = 200;
        let config = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let list = format!(
            r#"{{"items": [
                {{"metadata": {{"name": "deep", "namespace": "n", "labels": {{"fiaas/deployment_id": "d"}}}},
                  "spec": {{"application": "deep-app", "image": "i:1", "config": {config}}}}},
                {{"metadata": {{"name": "fine", "namespace": "n"}},
                  "spec": {{"application": "fine", "image": "i:1", "config": {{"version": 3}}}}}}
            ]}}"#
        );
        #[derive(Deserialize)]
        struct List {
            items: Vec<RawApplication>,
        }
        let list: List = serde_json::from_str(&list).expect("the listing itself parses");
        let deep = ApplicationView::of(&list.items[0]);
        assert_eq!(deep.app, "deep-app");
        assert_eq!(deep.deployment_id.as_deref(), Some("d"));
        let reason = deep.facts().unwrap_err();
        assert!(
            reason.starts_with("spec.config: recursion limit exceeded"),
            "{reason}"
        );
        assert!(ApplicationView::of(&list.items[1]).facts().is_ok());
    }

    #[test]
    fn an_application_name_that_cannot_name_objects_is_reported() {
        for bad in ["My_App", "-app", "app-", "", &"a".repeat(64)] {
            let app = view(json!({"metadata": {"name": "x", "namespace": "n"},
                "spec": {"application": bad, "image": "i:1", "config": {"version": 3}}}));
            let reason = app.facts().unwrap_err();
            assert!(reason.starts_with("spec.application: '"), "{reason}");
        }
        let good = view(json!({"metadata": {"name": "x", "namespace": "n"},
            "spec": {"application": "my-app-2", "image": "i:1", "config": {"version": 3}}}));
        assert!(good.facts().is_ok());
    }

    #[test]
    fn fields_of_the_wrong_type_are_read_as_absent() {
        let odd = view(json!({"metadata": {"name": "a", "namespace": "n"},
            "spec": {"application": ["x"], "image": 5, "config": {"version": 3}},
            "status": {"observedGeneration": "two", "result": "RUNNING"}}));
        assert_eq!(odd.app, "a");
        assert_eq!(odd.image, None);
        assert_eq!(odd.status_generation, 0);
        assert_eq!(odd.status_result.as_deref(), Some("RUNNING"));
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
