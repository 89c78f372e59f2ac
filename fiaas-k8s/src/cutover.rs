//! Taking over the fields of objects last written by the Python daemon.
//!
//! The Python daemon wrote with plain creates and updates, so the API server records its fields
//! under the manager `python-requests` (its HTTP library's user agent), operation `Update`
//! (`tests/fixtures/upstream_crds/managed-fields.yaml`). Server-side apply under fiaas' own
//! manager then shares those fields instead of owning them, and a field that fiaas stops
//! applying (the Datadog sidecar after `datadog: false`, a removed port or annotation) stays,
//! still owned by the old manager. As kubectl does when it moves an object from client-side to
//! server-side apply, the old manager's field set is folded into fiaas' apply entry once; the
//! next apply then removes what fiaas no longer sets.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use serde_json::Value;

use crate::FIELD_MANAGER;

/// The field manager the API server records for the Python daemon's writes.
pub const UPSTREAM_MANAGER: &str = "python-requests";

/// An entry to fold into fiaas' apply entry: an update by the Python daemon, or one by fiaas
/// itself (the merge patch that rewrites an object the Python daemon wrote with repeated
/// list-map keys, which server-side apply cannot read; see `fiaas-k8s/src/apply.rs`).
fn is_upstream(entry: &ManagedFieldsEntry) -> bool {
    matches!(
        entry.manager.as_deref(),
        Some(UPSTREAM_MANAGER | FIELD_MANAGER)
    ) && entry.operation.as_deref() == Some("Update")
        && entry.subresource.as_deref().unwrap_or_default().is_empty()
}

fn is_ours(entry: &ManagedFieldsEntry) -> bool {
    entry.manager.as_deref() == Some(FIELD_MANAGER)
        && entry.operation.as_deref() == Some("Apply")
        && entry.subresource.as_deref().unwrap_or_default().is_empty()
}

/// Union of two field sets (`fieldsV1` trees: nested maps of `f:`/`k:`/`v:` keys).
fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match into.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (into, from) => {
            if into.is_null() {
                *into = from.clone();
            }
        }
    }
}

/// `fields` of an entry written in `from`, as the same fields in `to`; `None` when they cannot
/// be carried over. The Python daemon wrote HorizontalPodAutoscalers in `autoscaling/v1`, which
/// fiaas may apply in `autoscaling/v2` or `v2beta2`: there v1's `targetCPUUtilizationPercentage`
/// is the `metrics` list (atomic), every other field keeps its path.
fn carried_over(from: &Option<String>, to: &Option<String>, fields: &Value) -> Option<Value> {
    if from == to {
        return Some(fields.clone());
    }
    match (from.as_deref()?, to.as_deref()?) {
        ("autoscaling/v1", "autoscaling/v2" | "autoscaling/v2beta2") => {
            let mut fields = fields.clone();
            if let Some(spec) = fields.get_mut("f:spec").and_then(Value::as_object_mut)
                && spec.remove("f:targetCPUUtilizationPercentage").is_some()
            {
                spec.insert("f:metrics".to_owned(), Value::Object(Default::default()));
            }
            Some(fields)
        }
        _ => None,
    }
}

/// The object's managedFields with the Python daemon's entries of fiaas' API version (or of
/// `autoscaling/v1` for an autoscaler fiaas applies in v2 or v2beta2) folded into fiaas' apply
/// entry; `None` when there is nothing to take over (the usual case, which costs no request).
pub fn take_over(meta: &ObjectMeta) -> Option<Vec<ManagedFieldsEntry>> {
    let entries = meta.managed_fields.as_ref()?;
    let ours = entries.iter().position(is_ours)?;
    let version = &entries[ours].api_version;
    let upstream: Vec<(usize, Value)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| is_upstream(e))
        .filter_map(|(i, e)| {
            let theirs = e.fields_v1.as_ref().map_or(Value::Null, |f| f.0.clone());
            carried_over(&e.api_version, version, &theirs).map(|fields| (i, fields))
        })
        .collect();
    if upstream.is_empty() {
        return None;
    }
    let mut fields = entries[ours]
        .fields_v1
        .as_ref()
        .map_or(Value::Object(Default::default()), |f| f.0.clone());
    for (_, theirs) in &upstream {
        merge(&mut fields, theirs);
    }
    let mut upgraded: Vec<ManagedFieldsEntry> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| !upstream.iter().any(|(taken, _)| taken == i))
        .map(|(_, e)| e.clone())
        .collect();
    if let Some(entry) = upgraded.iter_mut().find(|e| is_ours(e)) {
        entry.fields_v1 = Some(FieldsV1(fields));
    }
    Some(upgraded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, operation: &str, version: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.to_owned()),
            operation: Some(operation.to_owned()),
            api_version: Some(version.to_owned()),
            fields_type: Some("FieldsV1".to_owned()),
            fields_v1: Some(FieldsV1(fields)),
            ..ManagedFieldsEntry::default()
        }
    }

    #[test]
    fn the_upstream_fields_move_into_the_apply_entry() {
        let meta = ObjectMeta {
            managed_fields: Some(vec![
                entry(
                    UPSTREAM_MANAGER,
                    "Update",
                    "apps/v1",
                    json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"app\"}": {".": {}, "f:image": {}},
                        "k:{\"name\":\"fiaas-datadog-container\"}": {".": {}, "f:image": {}}}}}}}),
                ),
                entry(
                    "kube-controller-manager",
                    "Update",
                    "apps/v1",
                    json!({"f:status": {}}),
                ),
                entry(
                    FIELD_MANAGER,
                    "Apply",
                    "apps/v1",
                    json!({"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:env": {}}}}}}}),
                ),
            ]),
            ..ObjectMeta::default()
        };
        let mut meta = meta;
        if let Some(entries) = meta.managed_fields.as_mut() {
            entries.push(entry(
                FIELD_MANAGER,
                "Update",
                "apps/v1",
                json!({"f:spec": {"f:paused": {}}}),
            ));
        }
        let upgraded = take_over(&meta).expect("something to take over");
        let managers: Vec<_> = upgraded
            .iter()
            .map(|e| e.manager.clone().unwrap())
            .collect();
        assert_eq!(managers, ["kube-controller-manager", FIELD_MANAGER]);
        let ours = &upgraded[1].fields_v1.as_ref().unwrap().0;
        let containers = &ours["f:spec"]["f:template"]["f:spec"]["f:containers"];
        assert!(containers["k:{\"name\":\"fiaas-datadog-container\"}"].is_object());
        assert!(containers["k:{\"name\":\"app\"}"]["f:env"].is_object());
        assert!(ours["f:spec"]["f:replicas"].is_object());
        assert!(
            ours["f:spec"]["f:paused"].is_object(),
            "fiaas' own update folded in too"
        );
        // Done once: afterwards there is nothing left to take over.
        let after = ObjectMeta {
            managed_fields: Some(upgraded),
            ..ObjectMeta::default()
        };
        assert!(take_over(&after).is_none());
    }

    #[test]
    fn other_versions_subresources_and_objects_without_our_entry_are_left_alone() {
        let status_write = ManagedFieldsEntry {
            subresource: Some("status".to_owned()),
            ..entry(UPSTREAM_MANAGER, "Update", "v1", json!({"f:status": {}}))
        };
        let meta = ObjectMeta {
            managed_fields: Some(vec![
                entry(
                    UPSTREAM_MANAGER,
                    "Update",
                    "extensions/v1beta1",
                    json!({"f:spec": {}}),
                ),
                status_write,
                entry(FIELD_MANAGER, "Apply", "v1", json!({"f:spec": {}})),
            ]),
            ..ObjectMeta::default()
        };
        assert!(take_over(&meta).is_none());
        let foreign = ObjectMeta {
            managed_fields: Some(vec![entry(UPSTREAM_MANAGER, "Update", "v1", json!({}))]),
            ..ObjectMeta::default()
        };
        assert!(take_over(&foreign).is_none());
    }

    #[test]
    fn a_v1_autoscaler_is_taken_over_by_an_apply_in_v2beta2_or_v2() {
        let python = json!({"f:metadata": {"f:labels": {"f:team": {}}},
            "f:spec": {"f:maxReplicas": {}, "f:targetCPUUtilizationPercentage": {}}});
        for version in ["autoscaling/v2beta2", "autoscaling/v2"] {
            let meta = ObjectMeta {
                managed_fields: Some(vec![
                    entry(UPSTREAM_MANAGER, "Update", "autoscaling/v1", python.clone()),
                    entry(
                        FIELD_MANAGER,
                        "Apply",
                        version,
                        json!({"f:spec": {"f:metrics": {}}}),
                    ),
                ]),
                ..ObjectMeta::default()
            };
            let upgraded = take_over(&meta).expect("the v1 entry to take over");
            assert_eq!(upgraded.len(), 1, "{version}");
            assert_eq!(upgraded[0].api_version.as_deref(), Some(version));
            assert_eq!(
                upgraded[0].fields_v1.as_ref().unwrap().0,
                json!({"f:metadata": {"f:labels": {"f:team": {}}},
                    "f:spec": {"f:maxReplicas": {}, "f:metrics": {}}}),
                "{version}"
            );
        }
    }
}
