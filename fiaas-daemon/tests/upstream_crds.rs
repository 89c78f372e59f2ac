//! A cluster cut over from the Python daemon keeps the upstream's CRDs (the Application status
//! has no `conditions`), and operators who manage CRDs themselves run with
//! `--disable-crd-creation`. Against those definitions (captured from the upstream daemon,
//! `tests/fixtures/upstream_crds/`), the real daemon binary writes every ApplicationStatus and
//! the inline status with the upstream's fields.
//!
//! A test binary of its own: it replaces the cluster's CRDs for a while
//! (`tests/upstream_crds.rs`), and cargo runs test binaries one after the other.

mod support;

use std::time::{Duration, Instant};

use fiaas_k8s::{ApplicationStatus, status_name};
use fiaas_tests::applications;
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use kube::api::Api;
use serde_json::json;
use support::Daemon;

#[tokio::test(flavor = "multi_thread")]
async fn the_upstreams_crds_get_every_status_written() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let _restore = fiaas_tests::upstream_crds::install(&client).await;
    let ns = test_namespace(&client, "upstream-crds").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let _daemon = Daemon::start(
        &ns,
        None,
        &["--disable-crd-creation", "--include-status-in-app"],
    );
    let applications = applications::api(&client, &ns);
    for (name, id) in [("first", "1"), ("second", "1"), ("first", "2")] {
        let config = json!({"version": 3, "replicas": {"minimum": 1, "maximum": 1}});
        applications::put(&client, &ns, name, id, config).await;
        let statuses: Api<ApplicationStatus> = Api::namespaced(client.clone(), &ns);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = statuses.get_opt(&status_name(name, id)).await.unwrap();
            let inline = applications.get(name).await.unwrap().data["status"].clone();
            if status.is_some_and(|s| s.result == "SUCCESS") && inline["result"] == "SUCCESS" {
                assert_eq!(inline["deployment_id"], id);
                assert!(inline.get("conditions").is_none(), "{inline}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{name} {id}: no SUCCESS written (inline status {inline})"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}
