//! Cut-over from the Python daemon, with the real daemon binary: objects the Python daemon
//! created (its field manager, operation Update) lose what the new fiaas.yml drops, and a
//! global env var named like a managed one (which the upstream's rendering repeats, and
//! server-side apply refuses as is) deploys with its last entry.

mod support;

use std::time::{Duration, Instant};

use fiaas_k8s::{ApplicationStatus, status_name};
use fiaas_spec::AppFacts;
use fiaas_tests::applications::put;
use fiaas_tests::python_daemon::{DROPPED_LABEL, assert_taken_over, create_as_python_daemon};
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use kube::api::Api;
use serde_json::json;
use support::Daemon;

const FLAGS: [&str; 4] = [
    "--datadog-container-image",
    "datadog/agent:7",
    "--global-env",
    "POD_NAME=from-global",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_takes_over_what_the_python_daemon_deployed() {
    let Some(client) = test_cluster().await else {
        return;
    };
    // The Applications exist before the daemon starts (and creates the CRDs itself).
    fiaas_k8s::ensure_crds(&client)
        .await
        .expect("install the CRDs");
    let ns = test_namespace(&client, "cut-over").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let before = json!({"version": 3, "metrics": {"datadog": {"enabled": true}},
        "resources": {"requests": {"cpu": "100m"}},
        "labels": {"horizontal_pod_autoscaler": {DROPPED_LABEL: "yes"}},
        "ports": [{"name": "http", "port": 80, "target_port": 8080}, {"name": "admin", "port": 81, "target_port": 8081}],
        "healthchecks": {"liveness": {"http": {"path": "/health", "port": "http"}}}});
    let created = put(&client, &ns, "moved", "1", before.clone())
        .await
        .expect("the stored Application");
    let facts = AppFacts {
        name: "moved".to_owned(),
        namespace: ns.clone(),
        image: "example/moved:1".to_owned(),
        deployment_id: "1".to_owned(),
        uid: created.metadata.uid.clone(),
        ..AppFacts::default()
    };
    create_as_python_daemon(&client, &before, &facts, &FLAGS).await;
    // The first deploy after the cut-over: no Datadog, one port.
    let after = json!({"version": 3, "ports": [{"name": "http", "port": 80, "target_port": 8080}],
        "resources": {"requests": {"cpu": "100m"}}});
    put(&client, &ns, "moved", "2", after).await;

    let _daemon = Daemon::start(&ns, None, &FLAGS);
    let statuses: Api<ApplicationStatus> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = statuses.get_opt(&status_name("moved", "2")).await.unwrap();
        if status.as_ref().is_some_and(|s| s.result == "SUCCESS") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no SUCCESS: {:?}",
            status.map(|s| (s.result, s.logs))
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    assert_taken_over(&client, &ns, "moved").await;
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}
