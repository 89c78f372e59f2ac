//! The bootstrapper on a cluster that keeps the upstream's CRDs (no `status.conditions`): it
//! never touches CRDs, so it must write every ApplicationStatus and the inline status with the
//! upstream's fields. A test binary of its own, since it swaps the cluster's CRDs for a while
//! (`tests/upstream_crds.rs`).

use fiaas_k8s::{ApplicationStatus, status_name};
use fiaas_tests::applications;
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use kube::api::Api;
use serde_json::json;

#[tokio::test]
async fn the_bootstrapper_writes_every_status_against_the_upstreams_crds() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let _restore = fiaas_tests::upstream_crds::install(&client).await;
    let ns = test_namespace(&client, "bootstrap-upstream-crds").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let applications = applications::api(&client, &ns);
    let apps = ["boot-a", "boot-b"];
    for app in apps {
        let config = json!({"version": 3, "replicas": {"minimum": 1, "maximum": 1}});
        applications::put_labelled(
            &client,
            &ns,
            app,
            "1",
            &[("fiaas/bootstrap", "true")],
            config,
        )
        .await;
    }
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fiaas-deploy-daemon-bootstrap"))
        .args(["--enable-crd-support", "--use-apiextensionsv1-crd"])
        .args(["--include-status-in-app", "--use-networkingv1-ingress"])
        .env("NAMESPACE", &ns)
        .output()
        .await
        .expect("run the bootstrapper");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let statuses: Api<ApplicationStatus> = Api::namespaced(client.clone(), &ns);
    for app in apps {
        let status = statuses.get(&status_name(app, "1")).await.unwrap();
        assert_eq!(status.result, "SUCCESS", "{app}");
        let inline = applications.get(app).await.unwrap().data["status"].clone();
        assert_eq!(inline["result"], "SUCCESS", "{app}: {inline}");
        assert!(inline.get("conditions").is_none(), "{app}: {inline}");
    }
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}
