//! Cut-over from the Python daemon, with the real bootstrapper: objects the Python daemon
//! created lose what the new fiaas.yml drops, and a global env var named like a managed one
//! deploys with its last entry (see fiaas-daemon/tests/cut_over.rs for the daemon).

use fiaas_k8s::{ApplicationStatus, status_name};
use fiaas_spec::AppFacts;
use fiaas_tests::applications::put_labelled;
use fiaas_tests::python_daemon::{assert_taken_over, create_as_python_daemon};
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use kube::api::Api;
use serde_json::json;

const FLAGS: [&str; 4] = [
    "--datadog-container-image",
    "datadog/agent:7",
    "--global-env",
    "POD_NAME=from-global",
];

#[tokio::test]
async fn the_bootstrapper_takes_over_what_the_python_daemon_deployed() {
    let Some(client) = test_cluster().await else {
        return;
    };
    fiaas_k8s::ensure_crds(&client)
        .await
        .expect("install the CRDs");
    let ns = test_namespace(&client, "bootstrap-cut-over").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let bootstrap = [("fiaas/bootstrap", "true")];
    let before = json!({"version": 3, "metrics": {"datadog": {"enabled": true}},
        "ports": [{"name": "http", "port": 80, "target_port": 8080}, {"name": "admin", "port": 81, "target_port": 8081}],
        "healthchecks": {"liveness": {"http": {"path": "/health", "port": "http"}}}});
    let created = put_labelled(&client, &ns, "moved", "1", &bootstrap, before.clone())
        .await
        .expect("the stored Application");
    let facts = AppFacts {
        name: "moved".to_owned(),
        namespace: ns.clone(),
        image: "example/moved:1".to_owned(),
        deployment_id: "1".to_owned(),
        uid: created.metadata.uid,
        ..AppFacts::default()
    };
    create_as_python_daemon(&client, &before, &facts, &FLAGS).await;
    let after = json!({"version": 3, "ports": [{"name": "http", "port": 80, "target_port": 8080}]});
    put_labelled(&client, &ns, "moved", "2", &bootstrap, after).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fiaas-deploy-daemon-bootstrap"))
        .args(["--enable-crd-support", "--use-apiextensionsv1-crd"])
        .args(["--use-networkingv1-ingress"])
        .args(FLAGS)
        .env("NAMESPACE", &ns)
        .output()
        .await
        .expect("run the bootstrapper");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let status = Api::<ApplicationStatus>::namespaced(client.clone(), &ns)
        .get(&status_name("moved", "2"))
        .await
        .unwrap();
    assert_eq!(status.result, "SUCCESS");
    assert_taken_over(&client, &ns, "moved").await;
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}
