//! SIGKILL the real daemon in the middle of a batch of 20 deploys and start it again: every app
//! ends SUCCESS, an app whose status was already SUCCESS is not deployed again, and no app is
//! reported deployed twice. The test plays the kubelet (it marks every pod Ready) so the real
//! controllers report rollouts done.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fiaas_k8s::{ApplicationStatus, status_name};
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;

const APPS: usize = 20;

fn start_daemon(ns: &str) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Command::new(env!("CARGO_BIN_EXE_fiaas-deploy-daemon"))
        .args([
            "--port",
            &port.to_string(),
            "--enable-crd-support",
            "--use-apiextensionsv1-crd",
            "--use-networkingv1-ingress",
        ])
        .args(["--max-concurrent-deploys", "4"])
        .env("NAMESPACE", ns)
        .stdout(Stdio::null())
        .spawn()
        .expect("start fiaas-deploy-daemon")
}

async fn results(client: &Client, ns: &str) -> HashMap<String, String> {
    let api: Api<ApplicationStatus> = Api::namespaced(client.clone(), ns);
    let mut out = HashMap::new();
    for i in 0..APPS {
        let app = format!("app-{i}");
        if let Ok(Some(status)) = api.get_opt(&status_name(&app, "1")).await {
            out.insert(app, status.result);
        }
    }
    out
}

/// How many times each app got an Event with `reason` (an event series counts its repeats).
async fn event_counts(client: &Client, ns: &str, reason: &str) -> HashMap<String, i32> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let mut out = HashMap::new();
    for event in api.list(&ListParams::default()).await.unwrap().items {
        if event.reason.as_deref() == Some(reason) {
            let app = event.regarding.and_then(|r| r.name).unwrap_or_default();
            *out.entry(app).or_default() += event.series.map_or(1, |s| s.count);
        }
    }
    out
}

#[tokio::test]
async fn a_killed_daemon_resumes_without_redeploying_what_succeeded() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "restart").await;

    let kubelet = keep_pods_ready(&client, &ns, None);

    let mut daemon = start_daemon(&ns);
    let applications: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &ns,
        &ApiResource::erase::<fiaas_k8s::Application>(&()),
    );
    for i in 0..APPS {
        let name = format!("app-{i}");
        let body = json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
            "metadata": {"name": name, "labels": {"fiaas/deployment_id": "1"}},
            "spec": {"application": name, "image": "example/app:1", "config": {"version": 3, "replicas": {"minimum": 1, "maximum": 1}}}});
        applications
            .patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&body),
            )
            .await
            .unwrap();
    }

    // Kill it once a few apps have succeeded and others have not.
    let deadline = Instant::now() + Duration::from_secs(90);
    let before = loop {
        let now = results(&client, &ns).await;
        let succeeded = now.values().filter(|r| *r == "SUCCESS").count();
        if succeeded >= 3 {
            break now;
        }
        assert!(Instant::now() < deadline, "no app succeeded: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    let succeeded_before: Vec<String> = before
        .iter()
        .filter(|(_, r)| *r == "SUCCESS")
        .map(|(a, _)| a.clone())
        .collect();
    let deploying_before = event_counts(&client, &ns, "Deploying").await;

    let mut daemon = start_daemon(&ns);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = results(&client, &ns).await;
        if now.len() == APPS && now.values().all(|r| r == "SUCCESS") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every app succeeded after the restart: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Give a redeploy of a finished app time to show up, had there been one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deploying_after = event_counts(&client, &ns, "Deploying").await;
    let deployed = event_counts(&client, &ns, "Deployed").await;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    kubelet.abort();

    for app in &succeeded_before {
        assert_eq!(
            deploying_after.get(app),
            deploying_before.get(app),
            "{app} had succeeded but was deployed again"
        );
    }
    for (app, count) in &deployed {
        assert!(*count <= 1, "{app} was reported deployed {count} times");
    }

    // A third start finds the whole fleet SUCCESS: it learns so from one listing of the
    // statuses, without a request per app, and deploys nothing.
    let reads_before = status_reads();
    let mut daemon = start_daemon(&ns);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let reads = status_reads() - reads_before;
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(
        reads <= 2,
        "{reads} ApplicationStatus reads at a start that finds {APPS} apps SUCCESS (one listing expected)"
    );
    assert_eq!(
        event_counts(&client, &ns, "Deploying").await,
        deploying_after,
        "an app was deployed again"
    );
    drop_namespace(&client, &ns).await;
}

/// How many ApplicationStatus reads (GET or LIST) the API server has answered, from its own
/// metrics; Kubernetes 1.20 counts a custom resource's GET as a LIST, so both are summed. This
/// test binary runs alone, and the test reads no status while it measures.
fn status_reads() -> u64 {
    let output = Command::new("kubectl")
        .args(["get", "--raw", "/metrics"])
        .output()
        .expect("run kubectl");
    assert!(output.status.success(), "kubectl get --raw /metrics failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains(r#"resource="application-statuses""#)
                && (l.contains(r#"verb="GET""#) || l.contains(r#"verb="LIST""#))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
