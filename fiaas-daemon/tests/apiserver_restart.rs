//! The real kube-apiserver of the test cluster stops in the middle of a batch and comes back on
//! the same port with the same flags (`tests/cluster/restart-apiserver`), as in a control-plane
//! upgrade: the daemon rides it out and every app ends SUCCESS, including apps created after the
//! restart. In its own test binary because the restart disturbs every test running beside it
//! (cargo runs test binaries one after another).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fiaas_tests::applications::put as put_application;
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use support::{Daemon, all_succeed, small, status};

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_api_server_loses_no_deploy() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "apiserver-restart").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let mut daemon = Daemon::start(&ns, None, &["--max-concurrent-deploys", "3"]);
    let apps: Vec<String> = (0..12).map(|i| format!("app-{i}")).collect();
    for app in &apps {
        put_application(&client, &ns, app, "1", small()).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(&client, &ns, &apps[0], "1").await.is_none() {
        assert!(
            Instant::now() < deadline,
            "nothing deployed before the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cluster/restart-apiserver");
    let restart = tokio::task::spawn_blocking(move || Command::new(script).arg("20").status());
    let restarted = restart
        .await
        .unwrap()
        .expect("run tests/cluster/restart-apiserver");
    assert!(restarted.success(), "the API server did not come back");
    daemon.assert_alive();

    let late: Vec<String> = (0..3).map(|i| format!("late-{i}")).collect();
    for app in &late {
        put_application(&client, &ns, app, "1", small()).await;
    }
    let everything: Vec<String> = apps.iter().chain(&late).cloned().collect();
    let took = all_succeed(&client, &ns, &everything, Duration::from_secs(60)).await;
    eprintln!(
        "after the API server's restart, all {} apps succeeded within {took:?}",
        everything.len()
    );
    daemon.assert_alive();
    kubelet.abort();
    drop_namespace(&client, &ns).await;
}
