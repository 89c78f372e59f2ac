//! Objects as the Python daemon left them: created with plain POSTs, so the API server records
//! their fields under the manager `python-requests`, operation Update
//! (`fixtures/upstream_crds/managed-fields.yaml`). Used by the cut-over tests.

use fiaas_config::ClusterConfig;
use fiaas_spec::AppFacts;
use fiaas_transform::{Kind, RenderOptions};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::Value;

/// The field manager the API server records for the Python daemon's writes.
pub const MANAGER: &str = "python-requests";

/// A label the cut-over tests give the HorizontalPodAutoscaler before the cut-over
/// (`labels.horizontal_pod_autoscaler`) and not after.
pub const DROPPED_LABEL: &str = "python-only";

/// Render `config` for `facts` with the cluster flags `flags` (as `fiaas render` takes them) and
/// create its Deployment, Service and HorizontalPodAutoscaler (`autoscaling/v1`) as the Python
/// daemon would have.
pub async fn create_as_python_daemon(
    client: &Client,
    config: &Value,
    facts: &AppFacts,
    flags: &[&str],
) {
    let app = fiaas_spec::from_document(config, facts).expect("a valid fiaas.yml");
    let cluster =
        ClusterConfig::from_args(std::iter::once("fiaas").chain(flags.iter().copied()), None)
            .expect("valid cluster flags")
            .transform;
    let rendered =
        fiaas_transform::render(&app, &cluster, &RenderOptions::default()).expect("a rendered app");
    let python = PostParams {
        field_manager: Some(MANAGER.to_owned()),
        ..PostParams::default()
    };
    for object in &rendered.objects {
        let resource = match object.kind() {
            Kind::Deployment => ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
            Kind::Service => ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
            Kind::HorizontalPodAutoscaler => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
            _ => continue,
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &facts.namespace, &resource);
        let body: DynamicObject =
            serde_json::from_value(object.to_json()).expect("a rendered object");
        api.create(&python, &body)
            .await
            .unwrap_or_else(|e| panic!("create the {} as the Python daemon: {e}", resource.kind));
    }
}

/// After fiaas deployed `app` without Datadog and with one port `http` over objects
/// [`create_as_python_daemon`] made with Datadog and two ports: the sidecar and the second port
/// are gone, `FIAAS_POD_NAME` is there once (also when a global env var `POD_NAME` made the
/// upstream's rendering repeat it), and the Python daemon's manager owns nothing any more. If
/// the app has a HorizontalPodAutoscaler (which the Python daemon wrote in `autoscaling/v1`,
/// and fiaas in the newest version the cluster serves), it also lost the label
/// [`DROPPED_LABEL`] and the Python daemon's manager.
pub async fn assert_taken_over(client: &Client, ns: &str, app: &str) {
    let deployment = Api::<Deployment>::namespaced(client.clone(), ns)
        .get(app)
        .await
        .unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let containers: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(containers, [app], "the Datadog sidecar is gone");
    let pod_names = pod.containers[0]
        .env
        .iter()
        .flatten()
        .filter(|e| e.name == "FIAAS_POD_NAME")
        .count();
    assert_eq!(pod_names, 1, "FIAAS_POD_NAME once, its last entry");
    let service = Api::<Service>::namespaced(client.clone(), ns)
        .get(app)
        .await
        .unwrap();
    let ports: Vec<String> = service
        .spec
        .unwrap()
        .ports
        .unwrap()
        .into_iter()
        .filter_map(|p| p.name)
        .collect();
    assert_eq!(ports, ["http"], "the dropped port is gone");
    let hpa = Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns)
        .get_opt(app)
        .await
        .unwrap();
    if let Some(hpa) = &hpa {
        let labels = hpa.metadata.labels.clone().unwrap_or_default();
        assert!(!labels.contains_key(DROPPED_LABEL), "{labels:?}");
    }
    for managers in [
        deployment.metadata.managed_fields,
        service.metadata.managed_fields,
        hpa.and_then(|h| h.metadata.managed_fields),
    ] {
        let managers: Vec<String> = managers
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect();
        assert!(!managers.iter().any(|m| m == MANAGER), "{managers:?}");
    }
}
