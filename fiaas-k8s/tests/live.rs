//! fiaas-k8s against the real test cluster (kube-apiserver + etcd + kube-controller-manager,
//! v1.20.2, started by `tests/cluster/up`). There is no scheduler or kubelet: where pods must
//! become ready, the test plays the kubelet by setting their status, and the real Deployment and
//! ReplicaSet controllers compute the Deployment's status from that.

use std::collections::BTreeMap;
use std::time::Duration;

use fiaas_config::ClusterConfig;
use fiaas_k8s::{
    Application, ApplicationStatus, Applier, ClusterFacts, DeployOptions, DeployResult,
    RolloutOutcome, RolloutTracker, StatusSubject, StatusWriter, crds_yaml, ensure_crds,
    status_name,
};
use fiaas_spec::{AdditionalLabelsOrAnnotations, AppFacts, AppSpec};
use fiaas_tests::e2e::{
    Case, Cluster, Deploy, expected_object, flags, input_document, main_cases,
    service_account_cases,
};
use fiaas_tests::python_daemon::DROPPED_LABEL;
use fiaas_tests::{
    drop_namespace, keep_pods_ready, normalise_object, read_fixture, subset_difference,
    test_cluster, test_namespace,
};
use fiaas_transform::{AutoscalingVersion, Kind};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

/// Create (or update) the Application, so owned objects have a real owner and survive the
/// garbage collector; returns the facts a daemon would read off it.
async fn application(
    client: &Client,
    ns: &str,
    name: &str,
    deploy: &Deploy,
    config: &Value,
    labels: Option<&Value>,
) -> AppFacts {
    let api: Api<Application> = Api::namespaced(client.clone(), ns);
    let mut spec = json!({"application": name, "image": deploy.image, "config": config});
    if let Some(labels) = labels {
        spec["additional_labels"] = labels.clone();
    }
    let body = json!({
        "apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
        "metadata": {"name": name, "namespace": ns, "labels": {"fiaas/deployment_id": deploy.deployment_id}},
        "spec": spec,
    });
    let app = api
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply the Application");
    AppFacts {
        name: name.to_owned(),
        namespace: ns.to_owned(),
        image: deploy.image.to_owned(),
        deployment_id: deploy.deployment_id.to_owned(),
        uid: app.metadata.uid,
        additional_labels: labels
            .map(|l| serde_json::from_value::<AdditionalLabelsOrAnnotations>(l.clone()).unwrap()),
        additional_annotations: None,
    }
}

fn resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Service => ApiResource::erase::<Service>(&()),
        Kind::Deployment => ApiResource::erase::<Deployment>(&()),
        Kind::Ingress => ApiResource::erase::<Ingress>(&()),
        Kind::HorizontalPodAutoscaler => ApiResource::erase::<HorizontalPodAutoscaler>(&()),
        Kind::ServiceAccount => ApiResource::erase::<ServiceAccount>(&()),
        Kind::RoleBinding => ApiResource::erase::<k8s_openapi::api::rbac::v1::RoleBinding>(&()),
        Kind::PodDisruptionBudget => ApiResource {
            group: "policy".into(),
            version: "v1beta1".into(),
            api_version: "policy/v1beta1".into(),
            kind: "PodDisruptionBudget".into(),
            plural: "poddisruptionbudgets".into(),
        },
    }
}

async fn live(client: &Client, ns: &str, kind: Kind, name: &str) -> Option<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource(kind));
    api.get_opt(name)
        .await
        .expect("read a live object")
        .map(|o| serde_json::to_value(o).unwrap())
}

async fn deploy_case(
    client: &Client,
    applier: &Applier,
    ns: &str,
    case: &Case,
    cluster: Cluster,
    deploy: &Deploy,
) -> Vec<String> {
    let config = ClusterConfig::from_args(flags(cluster, true), None)
        .unwrap()
        .transform;
    let document = input_document(case, deploy);
    let facts = application(
        client,
        ns,
        case.name,
        deploy,
        &document,
        case.labels.as_ref(),
    )
    .await;
    let app = fiaas_spec::from_document(&document, &facts).unwrap();
    applier
        .deploy(
            &app,
            &config,
            DeployOptions {
                facts: &ClusterFacts::default(),
                hook: None,
            },
        )
        .await
        .expect("deploy");
    let uid = facts.uid.clone().unwrap_or_default();
    let mut failures = Vec::new();
    for (kind, file, _) in &case.expected {
        let mut expected = expected_object(file, cluster, deploy, case.name, &uid);
        expected["metadata"]["namespace"] = Value::from(ns);
        let name = expected["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        match live(client, ns, *kind, &name).await {
            None => failures.push(format!(
                "{}: {file}: {kind:?} {name} does not exist",
                case.name
            )),
            Some(actual) => {
                if let Some(diff) =
                    subset_difference(&normalise_object(&expected), &normalise_object(&actual), "")
                {
                    failures.push(format!("{}: {file}: {diff}", case.name));
                }
            }
        }
    }
    for kind in &case.absent {
        if live(client, ns, *kind, case.name).await.is_some() {
            failures.push(format!(
                "{}: {kind:?} exists, but upstream asserts it does not",
                case.name
            ));
        }
    }
    failures
}

#[tokio::test]
async fn every_e2e_pairing_deploys_to_the_expected_live_objects() {
    let Some(client) = test_cluster().await else {
        return;
    };
    ensure_crds(&client)
        .await
        .expect("CRDs apply (and re-apply) cleanly");
    let applier = Applier::new(client.clone()).await.unwrap();
    // The expected files hash the namespace `default` into TLS hosts and Datadog tags.
    let ns = "default";
    let mut failures = Vec::new();
    for case in main_cases() {
        failures.extend(
            deploy_case(
                &client,
                &applier,
                ns,
                &case,
                Cluster::Main("ClusterIP"),
                &Deploy::first(),
            )
            .await,
        );
        failures.extend(
            deploy_case(
                &client,
                &applier,
                ns,
                &case,
                Cluster::Main("ClusterIP"),
                &Deploy::second(&case),
            )
            .await,
        );
        let apps: Api<Application> = Api::namespaced(client.clone(), ns);
        apps.delete(case.name, &DeleteParams::default())
            .await
            .expect("delete the Application");
    }
    let ns = test_namespace(&client, "e2e-sa").await;
    for case in service_account_cases() {
        failures.extend(
            deploy_case(
                &client,
                &applier,
                &ns,
                &case,
                Cluster::ServiceAccount,
                &Deploy::first(),
            )
            .await,
        );
    }
    drop_namespace(&client, &ns).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

async fn deploy_doc(
    client: &Client,
    applier: &Applier,
    ns: &str,
    name: &str,
    deploy: &Deploy,
    doc: Value,
    args: &[&str],
) -> AppSpec {
    let facts = application(client, ns, name, deploy, &doc, None).await;
    let app = fiaas_spec::from_document(&doc, &facts).unwrap();
    let mut argv = vec![
        "fiaas",
        "--use-networkingv1-ingress",
        "--ingress-suffix",
        "svc.test.example.com",
    ];
    argv.extend(args);
    let config = ClusterConfig::from_args(argv, None).unwrap().transform;
    applier
        .deploy(
            &app,
            &config,
            DeployOptions {
                facts: &ClusterFacts::default(),
                hook: None,
            },
        )
        .await
        .expect("deploy");
    app
}

#[tokio::test]
async fn a_second_deployment_updates_in_place_prunes_and_keeps_hpa_replicas() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let applier = Applier::new(client.clone()).await.unwrap();
    let ns = test_namespace(&client, "redeploy").await;
    let name = "multi";
    let doc =
        fiaas_spec::parse_document(&read_fixture("specs/v3/data/examples/multiple_ingress.yml"))
            .unwrap();
    deploy_doc(
        &client,
        &applier,
        &ns,
        name,
        &Deploy::first(),
        doc.clone(),
        &[],
    )
    .await;
    assert!(live(&client, &ns, Kind::Ingress, "multi-1").await.is_some());
    assert!(
        live(&client, &ns, Kind::PodDisruptionBudget, name)
            .await
            .is_some(),
        "PDB via the policy/v1beta1 fallback"
    );

    // The HPA controller scales the Deployment (through the scale subresource).
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .patch_scale(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();

    let mut fewer = doc.clone();
    fewer["ingress"].as_array_mut().unwrap().pop();
    deploy_doc(
        &client,
        &applier,
        &ns,
        name,
        &Deploy::second(&Case {
            input: "",
            name,
            labels: None,
            expected: vec![],
            absent: vec![],
        }),
        fewer,
        &[],
    )
    .await;
    assert!(
        live(&client, &ns, Kind::Ingress, "multi-1").await.is_none(),
        "the stale Ingress is pruned"
    );
    let ingress = live(&client, &ns, Kind::Ingress, name)
        .await
        .expect("the default Ingress stays");
    assert_eq!(
        ingress["metadata"]["labels"]["fiaas/deployment_id"],
        "deployment_id_2"
    );
    let deployment = deployments.get(name).await.unwrap();
    assert_eq!(
        deployment.spec.as_ref().unwrap().replicas,
        Some(4),
        "HPA-set replicas are kept"
    );
    let image = &deployment.spec.unwrap().template.spec.unwrap().containers[0].image;
    assert_eq!(
        image.as_deref(),
        Some("finntech/application-name:321"),
        "updated in place"
    );

    // Autoscaling off, no ports, a single replica: HPA, Service, Ingress and PDB go.
    let gone = json!({"version": 3, "replicas": {"minimum": 1, "maximum": 1}, "ports": [],
        "healthchecks": {"liveness": {"execute": {"command": "true"}}}});
    deploy_doc(
        &client,
        &applier,
        &ns,
        name,
        &Deploy {
            deployment_id: "deployment_id_3",
            ..Deploy::first()
        },
        gone,
        &[],
    )
    .await;
    for kind in [
        Kind::HorizontalPodAutoscaler,
        Kind::Service,
        Kind::Ingress,
        Kind::PodDisruptionBudget,
    ] {
        assert!(
            live(&client, &ns, kind, name).await.is_none(),
            "{kind:?} is pruned"
        );
    }
    assert!(
        live(&client, &ns, Kind::Deployment, name).await.is_some(),
        "the Deployment is never pruned"
    );
    drop_namespace(&client, &ns).await;
}

/// The HPA as read in `api_version`.
async fn hpa_as(client: &Client, ns: &str, name: &str, api_version: &str) -> Option<Value> {
    let (group, version) = api_version.split_once('/').unwrap();
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: "HorizontalPodAutoscaler".into(),
        plural: "horizontalpodautoscalers".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    api.get_opt(name)
        .await
        .expect("read the HPA")
        .map(|o| serde_json::to_value(o).unwrap())
}

#[tokio::test]
async fn the_hpa_is_applied_in_the_newest_served_version_and_reads_the_same_in_v1() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let applier = Applier::new(client.clone()).await.unwrap();
    assert_eq!(
        applier.autoscaling_version(),
        AutoscalingVersion::V2beta2,
        "Kubernetes 1.20 serves autoscaling/v2beta2, not v2"
    );
    let ns = test_namespace(&client, "hpa-version").await;
    let name = "scaled";
    let doc = |threshold: i32| {
        json!({"version": 3, "resources": {"requests": {"cpu": "100m"}},
            "replicas": {"minimum": 2, "maximum": 4, "cpu_threshold_percentage": threshold}})
    };
    // As an earlier fiaas left it: applied in autoscaling/v1.
    let earlier = applier
        .clone()
        .with_autoscaling_version(AutoscalingVersion::V1);
    deploy_doc(&client, &earlier, &ns, name, &Deploy::first(), doc(60), &[]).await;
    let v1 = hpa_as(&client, &ns, name, "autoscaling/v1").await.unwrap();
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 60);

    deploy_doc(&client, &applier, &ns, name, &Deploy::first(), doc(75), &[]).await;
    let v1 = hpa_as(&client, &ns, name, "autoscaling/v1").await.unwrap();
    assert_eq!(
        v1["spec"],
        json!({"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 75})
    );
    let beta = hpa_as(&client, &ns, name, "autoscaling/v2beta2")
        .await
        .unwrap();
    assert_eq!(
        beta["spec"]["metrics"],
        json!([{"type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 75}}}])
    );
    let ours: Vec<&Value> = v1["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["manager"] == fiaas_k8s::FIELD_MANAGER)
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0]["apiVersion"], "autoscaling/v2beta2");
    assert_eq!(
        v1["metadata"]["ownerReferences"][0]["kind"], "Application",
        "owned as before"
    );

    // Autoscaling off: the HPA is pruned through autoscaling/v2beta2.
    let single = json!({"version": 3, "replicas": {"minimum": 2, "maximum": 2}});
    deploy_doc(&client, &applier, &ns, name, &Deploy::first(), single, &[]).await;
    assert!(hpa_as(&client, &ns, name, "autoscaling/v1").await.is_none());
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn foreign_objects_are_neither_overwritten_nor_deleted() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let applier = Applier::new(client.clone()).await.unwrap();
    let ns = test_namespace(&client, "foreign").await;
    let name = "owned-elsewhere";
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"owner": "someone"}}}))
            .unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": name, "apiVersion": "apps/v1"}}})).unwrap();
    hpas.create(&PostParams::default(), &hpa).await.unwrap();

    let doc = json!({"version": 3, "replicas": {"minimum": 2, "maximum": 2}});
    deploy_doc(
        &client,
        &applier,
        &ns,
        name,
        &Deploy::first(),
        doc,
        &["--enable-service-account-per-app"],
    )
    .await;
    let account = accounts.get(name).await.unwrap();
    let labels = account.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("owner").map(String::as_str), Some("someone"));
    assert!(
        !labels.contains_key("fiaas/deployment_id"),
        "the foreign ServiceAccount is not overwritten"
    );
    assert!(
        hpas.get_opt(name).await.unwrap().is_some(),
        "the foreign HPA is not deleted"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn besteffort_quota_renders_without_resources() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let applier = Applier::new(client.clone()).await.unwrap();
    let ns = test_namespace(&client, "besteffort").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns);
    let quota: ResourceQuota =
        serde_json::from_value(json!({"metadata": {"name": "besteffort-only"},
        "spec": {"hard": {"pods": "0"}, "scopes": ["NotBestEffort"]}}))
        .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    assert!(applier.besteffort_required(&ns).await.unwrap());
    deploy_doc(
        &client,
        &applier,
        &ns,
        "lean",
        &Deploy::first(),
        json!({"version": 3}),
        &[],
    )
    .await;
    let deployment = live(&client, &ns, Kind::Deployment, "lean").await.unwrap();
    let resources = &deployment["spec"]["template"]["spec"]["containers"][0]["resources"];
    assert!(
        resources.get("limits").is_none() && resources.get("requests").is_none(),
        "{resources}"
    );
    assert!(
        live(&client, &ns, Kind::HorizontalPodAutoscaler, "lean")
            .await
            .is_none(),
        "no CPU request, no HPA"
    );
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn repeated_env_names_deploy_with_the_last_entry_as_the_kubelet_would_use() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let applier = Applier::new(client.clone()).await.unwrap();
    let ns = test_namespace(&client, "dup-env").await;
    // A global env var named like a managed one: the upstream sends FIAAS_POD_NAME twice (the
    // global value, then the downward-API reference), which server-side apply refuses as is.
    let app = deploy_doc(
        &client,
        &applier,
        &ns,
        "dup",
        &Deploy::first(),
        json!({"version": 3}),
        &["--global-env", "POD_NAME=from-global"],
    )
    .await;
    let config = ClusterConfig::from_args(
        [
            "fiaas",
            "--use-networkingv1-ingress",
            "--global-env",
            "POD_NAME=from-global",
        ],
        None,
    )
    .unwrap()
    .transform;
    let rendered =
        fiaas_transform::render(&app, &config, &fiaas_transform::RenderOptions::default()).unwrap();
    let deployment = live(&client, &ns, Kind::Deployment, "dup").await.unwrap();
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .clone();
    let pod_names: Vec<&Value> = env
        .iter()
        .filter(|e| e["name"] == "FIAAS_POD_NAME")
        .collect();
    assert_eq!(pod_names.len(), 1, "{env:?}");
    assert_eq!(
        pod_names[0]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name",
        "the last entry of the name wins"
    );
    let sent = rendered
        .objects
        .iter()
        .find(|o| o.kind() == Kind::Deployment)
        .unwrap()
        .to_json();
    let sent_env = sent["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    assert_eq!(
        sent_env
            .iter()
            .filter(|e| e["name"] == "FIAAS_POD_NAME")
            .count(),
        2,
        "the rendered object repeats the name as the upstream's does"
    );
    assert_eq!(env.len(), sent_env.len() - 1);
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn objects_the_python_daemon_wrote_lose_what_the_new_fiaas_yml_drops() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let applier = Applier::new(client.clone()).await.unwrap();
    let ns = test_namespace(&client, "cutover").await;
    let flags = [
        "--use-networkingv1-ingress",
        "--datadog-container-image",
        "datadog/agent:7",
    ];
    // As the Python daemon left them: created with plain POSTs, so the API server records its
    // fields under `python-requests`, operation Update (see
    // tests/fixtures/upstream_crds/managed-fields.yaml).
    let before = json!({"version": 3, "metrics": {"datadog": {"enabled": true}},
        "resources": {"requests": {"cpu": "100m"}},
        "labels": {"horizontal_pod_autoscaler": {DROPPED_LABEL: "yes"}},
        "ports": [{"name": "http", "port": 80, "target_port": 8080}, {"name": "admin", "port": 81, "target_port": 8081}],
        "healthchecks": {"liveness": {"http": {"path": "/health", "port": "http"}}}});
    let facts = application(&client, &ns, "moved", &Deploy::first(), &before, None).await;
    fiaas_tests::python_daemon::create_as_python_daemon(&client, &before, &facts, &flags).await;
    let live_hpa = live(&client, &ns, Kind::HorizontalPodAutoscaler, "moved")
        .await
        .unwrap();
    assert_eq!(live_hpa["metadata"]["labels"][DROPPED_LABEL], "yes");
    let live_deployment = live(&client, &ns, Kind::Deployment, "moved").await.unwrap();
    assert_eq!(
        live_deployment["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "app and Datadog sidecar"
    );

    // Cut over: the new daemon deploys a fiaas.yml without Datadog, with one port, and without
    // the HPA's label (the HPA now written in autoscaling/v2beta2).
    let after = json!({"version": 3, "ports": [{"name": "http", "port": 80, "target_port": 8080}],
        "resources": {"requests": {"cpu": "100m"}}});
    let next = Deploy {
        image: "finntech/application-name:124",
        deployment_id: "deployment_id_2",
        strongbox_groups: None,
    };
    deploy_doc(&client, &applier, &ns, "moved", &next, after, &flags[..1]).await;
    fiaas_tests::python_daemon::assert_taken_over(&client, &ns, "moved").await;
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn rollout_tracking_reports_success_deadline_and_timeout() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let applier = Applier::new(client.clone()).await.unwrap();
    let ns = test_namespace(&client, "rollout").await;
    let (tracker, watch) = RolloutTracker::new(client.clone(), Some(&ns));
    tokio::spawn(watch);

    // Success: the controllers see ready pods and report the Deployment available.
    let ready = deploy_doc(
        &client,
        &applier,
        &ns,
        "ready",
        &Deploy::first(),
        json!({"version": 3, "replicas": {"minimum": 2, "maximum": 2}}),
        &[],
    )
    .await;
    let waiting = {
        let (tracker, app) = (tracker.clone(), ready.clone());
        tokio::spawn(async move {
            tracker
                .wait(&app, None, Duration::from_secs(90), false)
                .await
        })
    };
    let kubelet = keep_pods_ready(&client, &ns, Some("app=ready"));
    assert_eq!(waiting.await.unwrap(), RolloutOutcome::Ready);
    kubelet.abort();

    // Timeout: nobody makes the pods ready.
    let stuck = deploy_doc(
        &client,
        &applier,
        &ns,
        "stuck",
        &Deploy::first(),
        json!({"version": 3}),
        &[],
    )
    .await;
    let outcome = tracker
        .wait(&stuck, None, Duration::from_secs(2), false)
        .await;
    assert_eq!(
        outcome,
        RolloutOutcome::Failed(
            "Timed out after 2 seconds waiting for stuck to become ready".into()
        )
    );

    // Progress deadline: the Deployment controller gives up after one second.
    let slow = deploy_doc(
        &client,
        &applier,
        &ns,
        "slow",
        &Deploy::first(),
        json!({"version": 3}),
        &[],
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deployments
        .patch(
            "slow",
            &PatchParams::apply("test-operator"),
            &Patch::Apply(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "slow"},
            "spec": {"progressDeadlineSeconds": 1}})),
        )
        .await
        .unwrap();
    match tracker
        .wait(&slow, None, Duration::from_secs(90), false)
        .await
    {
        RolloutOutcome::Failed(reason) => assert!(
            reason.contains("exceeded its progress deadline"),
            "{reason}"
        ),
        other => panic!("expected a progress deadline failure, got {other:?}"),
    }
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn application_statuses_are_named_sequenced_and_retained() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "status").await;
    let facts = application(
        &client,
        &ns,
        "statusapp",
        &Deploy::first(),
        &json!({"version": 3}),
        None,
    )
    .await;
    let writer = StatusWriter::new(client.clone(), true);
    let subject = |id: &str| StatusSubject {
        object_name: "statusapp".into(),
        app: "statusapp".into(),
        namespace: ns.clone(),
        deployment_id: id.into(),
        uid: facts.uid.clone(),
        labels: BTreeMap::from([("team".to_owned(), "core".to_owned())]),
        annotations: BTreeMap::new(),
    };
    let statuses: Api<ApplicationStatus> = Api::namespaced(client.clone(), &ns);
    let name = status_name("statusapp", "deployment_id_1");
    assert_eq!(name, "statusapp-kaeingxg4ztjq");
    for (result, lines) in [
        (DeployResult::Initiated, 1),
        (DeployResult::Running, 2),
        (DeployResult::Success, 3),
    ] {
        let logs: Vec<String> = (0..lines).map(|i| format!("line {i}")).collect();
        writer
            .write(&subject("deployment_id_1"), result, &logs, &[])
            .await
            .unwrap();
        let written = statuses.get(&name).await.unwrap();
        assert_eq!(written.result, result.as_str());
        assert_eq!(written.logs.len(), lines);
        let labels = written.metadata.labels.unwrap_or_default();
        assert_eq!(labels["app"], "statusapp");
        assert_eq!(labels["team"], "core");
        assert!(
            written
                .metadata
                .annotations
                .unwrap_or_default()
                .contains_key("fiaas/last_updated")
        );
        assert_eq!(
            written.metadata.owner_references.unwrap()[0].uid,
            facts.uid.clone().unwrap()
        );
    }
    let apps: Api<Application> = Api::namespaced(client.clone(), &ns);
    let inline = apps
        .get("statusapp")
        .await
        .unwrap()
        .status
        .expect("the inline status");
    assert_eq!(inline.result.as_deref(), Some("SUCCESS"));
    assert_eq!(inline.deployment_id.as_deref(), Some("deployment_id_1"));
    let ready = inline
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");

    for i in 2..=12 {
        writer
            .write(
                &subject(&format!("deployment_id_{i}")),
                DeployResult::Failed,
                &[],
                &[],
            )
            .await
            .unwrap();
    }
    let left = statuses
        .list(&ListParams::default().labels("app=statusapp"))
        .await
        .unwrap()
        .items;
    assert_eq!(left.len(), 10);
    let names: Vec<String> = left
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    assert!(
        !names.contains(&name) && !names.contains(&status_name("statusapp", "deployment_id_2")),
        "the two oldest go"
    );
    assert!(names.contains(&status_name("statusapp", "deployment_id_12")));

    // Other retentions (`--status-retention`): the newest N stay.
    for kept in [2, 15] {
        let app = format!("kept{kept}");
        let writer = StatusWriter::new(client.clone(), false).retaining(kept);
        for i in 1..=17 {
            // No owner: there is no Application of this name, and the garbage collector
            // deletes a status whose owner reference names one that does not exist.
            let subject = StatusSubject {
                object_name: app.clone(),
                app: app.clone(),
                deployment_id: format!("d{i}"),
                uid: None,
                ..subject("unused")
            };
            writer
                .write(&subject, DeployResult::Failed, &[], &[])
                .await
                .unwrap();
        }
        let left: Vec<String> = statuses
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|s| s.metadata.name)
            .collect();
        assert_eq!(left.len(), kept, "{app}: {left:?}");
        assert!(left.contains(&status_name(&app, "d17")));
        assert!(!left.contains(&status_name(&app, &format!("d{}", 17 - kept))));
    }
    drop_namespace(&client, &ns).await;
}

#[test]
fn the_committed_crds_are_the_generated_ones() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crds.yaml"))
            .unwrap();
    assert_eq!(
        committed,
        crds_yaml(fiaas_k8s::ConfigValidation::Off),
        "deploy/crds.yaml is stale: regenerate it with `fiaas crd > deploy/crds.yaml`"
    );
}
