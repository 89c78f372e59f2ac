//! The app's PodDisruptionBudget.

use std::collections::BTreeMap;

use fiaas_spec::AppSpec;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::deployment::{int_or_string, selector};
use crate::meta::{merged, object_meta};
use fiaas_config::{IntOrStr, TransformSettings};

/// The PDB of an app that always runs more than one replica; `None` otherwise.
pub(crate) fn pod_disruption_budget(
    app: &AppSpec,
    config: &TransformSettings,
    fiaas_labels: &BTreeMap<String, String>,
) -> Option<PodDisruptionBudget> {
    if app.autoscaler.min_replicas <= 1 || app.autoscaler.max_replicas <= 1 {
        return None;
    }
    // A whole-number budget that would allow every pod down is capped at one.
    let max_unavailable = match &config.pdb_max_unavailable {
        IntOrStr::Int(n) if *n >= i64::from(app.autoscaler.min_replicas) => IntOrString::Int(1),
        other => int_or_string(other),
    };
    Some(PodDisruptionBudget {
        metadata: object_meta(
            app,
            &app.name,
            merged(&app.labels.pod_disruption_budget, &[fiaas_labels]),
            app.annotations.pod_disruption_budget.clone(),
        ),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(selector(app)),
                match_expressions: Some(Vec::new()),
            }),
            max_unavailable: Some(max_unavailable),
            unhealthy_pod_eviction_policy: Some(
                config.pdb_unhealthy_pod_eviction_policy.as_str().to_owned(),
            ),
            min_available: None,
        }),
        status: None,
    })
}
