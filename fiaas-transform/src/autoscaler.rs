//! The app's `autoscaling/v1` HorizontalPodAutoscaler.

use std::collections::BTreeMap;

use fiaas_spec::AppSpec;
use k8s_openapi::api::autoscaling::v1::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};

use crate::Notes;
use crate::meta::{merged, object_meta};

/// Whether the app gets an HPA: a replica range, more than one replica at most, and a CPU
/// request to scale on. Logs why not, as upstream does.
pub fn should_have_autoscaler(app: &AppSpec, notes: &mut Notes) -> bool {
    if !app.autoscaler.enabled {
        return false;
    }
    if app.autoscaler.max_replicas <= 1 {
        notes.warning(format!(
            "Can't enable autoscaler for {} with only {} max replicas",
            app.name, app.autoscaler.max_replicas
        ));
        return false;
    }
    if app.resources.requests.cpu.is_none() {
        notes.warning(format!(
            "Can't enable autoscaler for {} without CPU requests",
            app.name
        ));
        return false;
    }
    true
}

pub(crate) fn autoscaler(
    app: &AppSpec,
    fiaas_labels: &BTreeMap<String, String>,
) -> HorizontalPodAutoscaler {
    HorizontalPodAutoscaler {
        metadata: object_meta(
            app,
            &app.name,
            merged(&app.labels.horizontal_pod_autoscaler, &[fiaas_labels]),
            app.annotations.horizontal_pod_autoscaler.clone(),
        ),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: app.name.clone(),
            },
            min_replicas: Some(app.autoscaler.min_replicas),
            max_replicas: app.autoscaler.max_replicas,
            target_cpu_utilization_percentage: Some(app.autoscaler.cpu_threshold_percentage),
        }),
        status: None,
    }
}
