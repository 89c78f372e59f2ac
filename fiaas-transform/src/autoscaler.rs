//! The app's HorizontalPodAutoscaler: upstream's `autoscaling/v1` object, or the same autoscaler
//! (CPU utilisation target, replica range, target Deployment) under `autoscaling/v2` or
//! `autoscaling/v2beta2` where the cluster serves those.

use std::collections::BTreeMap;

use fiaas_spec::AppSpec;
use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::meta::{merged, object_meta};
use crate::{KubeObject, Notes};

/// The API version the HorizontalPodAutoscaler is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AutoscalingVersion {
    /// `autoscaling/v1`, the upstream's (`targetCPUUtilizationPercentage`).
    #[default]
    V1,
    /// `autoscaling/v2beta2` (Kubernetes 1.12 to 1.25): `metrics`, as v2.
    V2beta2,
    /// `autoscaling/v2` (Kubernetes 1.23 and later).
    V2,
}

impl AutoscalingVersion {
    /// The version's `apiVersion`.
    pub fn api_version(self) -> &'static str {
        match self {
            AutoscalingVersion::V1 => "autoscaling/v1",
            AutoscalingVersion::V2beta2 => "autoscaling/v2beta2",
            AutoscalingVersion::V2 => "autoscaling/v2",
        }
    }
}

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
    version: AutoscalingVersion,
) -> KubeObject {
    let metadata = object_meta(
        app,
        &app.name,
        merged(&app.labels.horizontal_pod_autoscaler, &[fiaas_labels]),
        app.annotations.horizontal_pod_autoscaler.clone(),
    );
    match version {
        AutoscalingVersion::V1 => KubeObject::HorizontalPodAutoscaler(v1_autoscaler(app, metadata)),
        AutoscalingVersion::V2beta2 => {
            KubeObject::HorizontalPodAutoscalerV2beta2(v2_autoscaler(app, metadata))
        }
        AutoscalingVersion::V2 => {
            KubeObject::HorizontalPodAutoscalerV2(v2_autoscaler(app, metadata))
        }
    }
}

fn v1_autoscaler(app: &AppSpec, metadata: ObjectMeta) -> v1::HorizontalPodAutoscaler {
    v1::HorizontalPodAutoscaler {
        metadata,
        spec: Some(v1::HorizontalPodAutoscalerSpec {
            scale_target_ref: v1::CrossVersionObjectReference {
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

/// v1's `targetCPUUtilizationPercentage` is, in v2, one Resource metric on `cpu` with a
/// Utilization target: the API server converts between the two this way.
fn v2_autoscaler(app: &AppSpec, metadata: ObjectMeta) -> v2::HorizontalPodAutoscaler {
    v2::HorizontalPodAutoscaler {
        metadata,
        spec: Some(v2::HorizontalPodAutoscalerSpec {
            scale_target_ref: v2::CrossVersionObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: "Deployment".to_owned(),
                name: app.name.clone(),
            },
            min_replicas: Some(app.autoscaler.min_replicas),
            max_replicas: app.autoscaler.max_replicas,
            metrics: Some(vec![v2::MetricSpec {
                type_: "Resource".to_owned(),
                resource: Some(v2::ResourceMetricSource {
                    name: "cpu".to_owned(),
                    target: v2::MetricTarget {
                        type_: "Utilization".to_owned(),
                        average_utilization: Some(app.autoscaler.cpu_threshold_percentage),
                        ..v2::MetricTarget::default()
                    },
                }),
                ..v2::MetricSpec::default()
            }]),
            behavior: None,
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use fiaas_spec::AppFacts;
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};

    use super::AutoscalingVersion;
    use crate::{Kind, RenderOptions, TransformSettings, render};

    const FIAAS_YML: &str = "version: 3
replicas: {minimum: 3, maximum: 7, cpu_threshold_percentage: 65}
resources: {requests: {cpu: 200m}}
labels: {horizontal_pod_autoscaler: {team: a}}
annotations: {horizontal_pod_autoscaler: {note: b}}
";

    fn hpa(version: AutoscalingVersion) -> Value {
        let facts = AppFacts {
            name: "scaled".into(),
            namespace: "ns".into(),
            image: "example/scaled:1".into(),
            deployment_id: "d1".into(),
            uid: Some("u1".into()),
            ..AppFacts::default()
        };
        let app = fiaas_spec::load(FIAAS_YML, &facts).unwrap();
        let options = RenderOptions {
            autoscaling: version,
            ..RenderOptions::default()
        };
        let manifests = render(&app, &TransformSettings::default(), &options).unwrap();
        let hpa = manifests
            .objects
            .iter()
            .find(|o| o.kind() == Kind::HorizontalPodAutoscaler)
            .unwrap();
        serde_json::to_value(hpa).unwrap()
    }

    #[test]
    fn v2_and_v2beta2_carry_v1s_cpu_target_as_a_resource_metric() {
        let v1 = hpa(AutoscalingVersion::V1);
        assert_eq!(v1["apiVersion"], "autoscaling/v1");
        assert_eq!(
            v1["spec"],
            json!({
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                "minReplicas": 3,
                "maxReplicas": 7,
                "targetCPUUtilizationPercentage": 65,
            })
        );
        for (version, api_version) in [
            (AutoscalingVersion::V2, "autoscaling/v2"),
            (AutoscalingVersion::V2beta2, "autoscaling/v2beta2"),
        ] {
            let hpa = hpa(version);
            assert_eq!(hpa["apiVersion"], api_version);
            assert_eq!(hpa["kind"], "HorizontalPodAutoscaler");
            assert_eq!(hpa["metadata"], v1["metadata"], "{api_version}");
            assert_eq!(
                hpa["spec"],
                json!({
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                    "minReplicas": 3,
                    "maxReplicas": 7,
                    "metrics": [{
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 65},
                        },
                    }],
                }),
                "{api_version}"
            );
        }
        assert_eq!(v1["metadata"]["labels"]["team"], "a");
        assert_eq!(v1["metadata"]["annotations"]["note"], "b");
        assert_eq!(v1["metadata"]["ownerReferences"][0]["uid"], "u1");
    }
}
