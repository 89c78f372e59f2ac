//! The real `fiaas-deploy-daemon` binary against the real test cluster: Applications of the
//! upstream's e2e cases (upstream `tests/fiaas_deploy_daemon/test_e2e.py`) are created, their objects and statuses checked; the test plays
//! the kubelet (it marks pods Ready) so the real controllers report the rollouts done.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fiaas_k8s::{Application, ApplicationStatus, status_name};
use fiaas_tests::e2e::{Cluster, Deploy, expected_object, input_document, main_cases};
use fiaas_tests::{
    keep_pods_ready, normalise_object, read_fixture, subset_difference, test_cluster,
};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

const NS: &str = "default";

struct Daemon {
    child: Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_daemon() -> Daemon {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_fiaas-deploy-daemon"))
        .args(["--port", &port.to_string()])
        .args([
            "--enable-crd-support",
            "--include-status-in-app",
            "--use-networkingv1-ingress",
            "--use-apiextensionsv1-crd",
        ])
        .args([
            "--ingress-suffix",
            "svc.test.example.com",
            "--environment",
            "test",
        ])
        .args([
            "--datadog-container-image",
            "DATADOG_IMAGE:tag",
            "--strongbox-init-container-image",
            "STRONGBOX_IMAGE",
        ])
        .args([
            "--secret-init-containers",
            "parameter-store=PARAM_STORE_IMAGE",
        ])
        .args([
            "--tls-certificate-issuer-type-overrides",
            "use-issuer.example.com=certmanager.k8s.io/issuer",
        ])
        .args([
            "--use-ingress-tls",
            "default_off",
            "--ready-check-timeout-multiplier",
            "10",
        ])
        .env("NAMESPACE", NS)
        .stdout(Stdio::null())
        .spawn()
        .expect("start fiaas-deploy-daemon");
    Daemon { child, port }
}

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let code = answer.split(' ').nth(1)?.parse().ok()?;
    Some((code, answer))
}

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn create_application(
    client: &Client,
    name: &str,
    deploy: &Deploy,
    config: &Value,
    labels: Option<&Value>,
) {
    let api: Api<Application> = Api::namespaced(client.clone(), NS);
    let mut spec = json!({"application": name, "image": deploy.image, "config": config});
    if let Some(labels) = labels {
        spec["additional_labels"] = labels.clone();
    }
    let body = json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
        "metadata": {"name": name, "namespace": NS, "labels": {"fiaas/deployment_id": deploy.deployment_id}}, "spec": spec});
    api.patch(
        name,
        &PatchParams::apply("e2e-test").force(),
        &Patch::Apply(&body),
    )
    .await
    .expect("apply the Application");
}

async fn status_of(client: &Client, app: &str, deployment_id: &str) -> Option<ApplicationStatus> {
    let api: Api<ApplicationStatus> = Api::namespaced(client.clone(), NS);
    api.get_opt(&status_name(app, deployment_id))
        .await
        .ok()
        .flatten()
}

async fn wait_result(
    client: &Client,
    app: &str,
    deployment_id: &str,
    results: &[&str],
) -> ApplicationStatus {
    eventually(&format!("{app} {deployment_id} in {results:?}"), || async {
        status_of(client, app, deployment_id)
            .await
            .filter(|s| results.contains(&s.result.as_str()))
    })
    .await
}

async fn live(client: &Client, resource: &ApiResource, name: &str) -> Option<Value> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NS, resource);
    api.get_opt(name)
        .await
        .ok()
        .flatten()
        .map(|o| serde_json::to_value(o).unwrap())
}

fn resource_for(file: &str) -> ApiResource {
    use k8s_openapi::api::{
        autoscaling::v1::HorizontalPodAutoscaler, core::v1::Service, networking::v1::Ingress,
    };
    if file.contains("ingress") || file.contains("override") {
        ApiResource::erase::<Ingress>(&())
    } else if file.contains("hpa") {
        ApiResource::erase::<HorizontalPodAutoscaler>(&())
    } else if file.contains("service") {
        ApiResource::erase::<Service>(&())
    } else {
        ApiResource::erase::<Deployment>(&())
    }
}

const APPS: &[&str] = &[
    "v3-data-examples-v3minimal",
    "data-v2minimal",
    "v3-data-examples-full",
    "v3-data-examples-multiple-ingress",
    "bad-config",
    "null-config",
    "huge-config",
    "after-bad",
    "superseded",
];

/// Leftovers of an earlier run would be skipped as already deployed: start from nothing.
async fn clean(client: &Client) {
    let apps: Api<Application> = Api::namespaced(client.clone(), NS);
    let statuses: Api<ApplicationStatus> = Api::namespaced(client.clone(), NS);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    for app in APPS {
        let _ = apps.delete(app, &DeleteParams::default()).await;
        let _ = statuses
            .delete_collection(
                &DeleteParams::default(),
                &ListParams::default().labels(&format!("app={app}")),
            )
            .await;
    }
    for app in APPS {
        eventually(&format!("{app} to be gone"), || async {
            deployments.get_opt(app).await.ok().filter(|d| d.is_none())
        })
        .await;
    }
}

#[tokio::test]
async fn the_daemon_deploys_updates_fails_and_cleans_up_like_upstream() {
    let Some(client) = test_cluster().await else {
        return;
    };
    clean(&client).await;
    let daemon = start_daemon();
    eventually("the daemon to be healthy", || async {
        http_get(daemon.port, "/healthz").filter(|(c, _)| *c == 200)
    })
    .await;

    let cases: Vec<_> = main_cases()
        .into_iter()
        .filter(|c| {
            [
                "v3-data-examples-v3minimal",
                "data-v2minimal",
                "v3-data-examples-full",
                "v3-data-examples-multiple-ingress",
            ]
            .contains(&c.name)
        })
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let deploy = Deploy::first();
        create_application(
            &client,
            case.name,
            &deploy,
            &input_document(case, &deploy),
            case.labels.as_ref(),
        )
        .await;
    }
    for case in &cases {
        // RUNNING, with the upstream's last log line, on both the ApplicationStatus and the Application.
        let status = wait_result(
            &client,
            case.name,
            "deployment_id_1",
            &["RUNNING", "SUCCESS", "FAILED"],
        )
        .await;
        assert_ne!(status.result, "FAILED", "{}: {:?}", case.name, status.logs);
        assert!(
            status
                .logs
                .iter()
                .any(|l| l.contains(&format!("Saving result RUNNING for default/{}", case.name))),
            "{:?}",
            status.logs
        );
        let apps: Api<Application> = Api::namespaced(client.clone(), NS);
        // The inline status follows the ApplicationStatus, so it may still say INITIATED.
        eventually("the inline status RUNNING or SUCCESS", || async {
            apps.get(case.name)
                .await
                .ok()
                .and_then(|a| a.status)
                .and_then(|s| s.result)
                .filter(|result| ["RUNNING", "SUCCESS"].contains(&result.as_str()))
        })
        .await;
        let uid = apps
            .get(case.name)
            .await
            .unwrap()
            .metadata
            .uid
            .unwrap_or_default();
        for (_, file, _) in &case.expected {
            let mut expected = expected_object(
                file,
                Cluster::Main("ClusterIP"),
                &Deploy::first(),
                case.name,
                &uid,
            );
            expected["metadata"]["namespace"] = json!(NS);
            let name = expected["metadata"]["name"].as_str().unwrap().to_owned();
            let actual = eventually(file, || async {
                live(&client, &resource_for(file), &name).await
            })
            .await;
            if let Some(diff) =
                subset_difference(&normalise_object(&expected), &normalise_object(&actual), "")
            {
                failures.push(format!("{}: {file}: {diff}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The rollout finishes once the pods are ready: SUCCESS, watch-driven.
    let kubelet = keep_pods_ready(&client, NS, Some("app=v3-data-examples-v3minimal"));
    wait_result(
        &client,
        "v3-data-examples-v3minimal",
        "deployment_id_1",
        &["SUCCESS"],
    )
    .await;

    // A new image and deployment id: the Deployment is updated in place, a new status appears.
    let second = Deploy::second(&cases[0]);
    let v3minimal = cases
        .iter()
        .find(|c| c.name == "v3-data-examples-v3minimal")
        .unwrap();
    create_application(
        &client,
        v3minimal.name,
        &second,
        &input_document(v3minimal, &second),
        v3minimal.labels.as_ref(),
    )
    .await;
    wait_result(&client, v3minimal.name, "deployment_id_2", &["SUCCESS"]).await;
    kubelet.abort();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let image = deployments
        .get(v3minimal.name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("finntech/application-name:321"));

    // Bad input: each fails with a reason; the daemon stays healthy and others still deploy.
    let invalid = fiaas_spec::parse_document(&read_fixture(
        "specs/v3/data/examples/invalid_ingress_port_name.yml",
    ))
    .unwrap();
    create_application(&client, "bad-config", &Deploy::first(), &invalid, None).await;
    create_application(&client, "null-config", &Deploy::first(), &Value::Null, None).await;
    let huge = json!({"version": 3, "annotations": {"deployment": {"big": "x".repeat(1_100_000)}}});
    create_application(&client, "huge-config", &Deploy::first(), &huge, None).await;
    create_application(
        &client,
        "after-bad",
        &Deploy::first(),
        &json!({"version": 3}),
        None,
    )
    .await;
    for (app, reason) in [
        ("bad-config", "gopher is not a valid port name"),
        ("null-config", "spec.config"),
        ("huge-config", "bytes, more than the limit"),
    ] {
        let status = wait_result(&client, app, "deployment_id_1", &["FAILED"]).await;
        assert!(
            status.logs.iter().any(|l| l.contains(reason)),
            "{app}: {:?}",
            status.logs
        );
    }
    wait_result(
        &client,
        "after-bad",
        "deployment_id_1",
        &["RUNNING", "SUCCESS"],
    )
    .await;
    assert_eq!(http_get(daemon.port, "/healthz").map(|(c, _)| c), Some(200));
    // After real deploys, the families the monitoring kit (deploy/monitoring/) relies on carry
    // samples on the running daemon's metrics page.
    let (code, page) = http_get(daemon.port, "/metrics").expect("the metrics page");
    assert_eq!(code, 200);
    for sample in [
        "deployer_success_total{",
        "deployer_errors_total{",
        "fiaas_deploy_errors_total{reason=\"invalid_spec\"}",
        "fiaas_reconcile_duration_seconds_bucket{",
        "deployer_time_to_deploy_bucket{",
        "fiaas_deploys_in_progress ",
        "fiaas_deploys_queued ",
        "fiaas_healthy{part=\"CrdWatcher\"} 1",
        "process_resident_memory_bytes ",
    ] {
        assert!(
            page.lines().any(|line| line.starts_with(sample)),
            "no {sample} sample on /metrics"
        );
    }

    // A new deployment id supersedes one still rolling out (nobody makes its pods ready).
    create_application(
        &client,
        "superseded",
        &Deploy::first(),
        &json!({"version": 3}),
        None,
    )
    .await;
    wait_result(&client, "superseded", "deployment_id_1", &["RUNNING"]).await;
    create_application(
        &client,
        "superseded",
        &Deploy {
            deployment_id: "deployment_id_2",
            ..Deploy::first()
        },
        &json!({"version": 3}),
        None,
    )
    .await;
    let old = wait_result(&client, "superseded", "deployment_id_1", &["FAILED"]).await;
    assert!(
        old.logs
            .iter()
            .any(|l| l.contains("Superseded by deployment_id=deployment_id_2")),
        "{:?}",
        old.logs
    );
    wait_result(&client, "superseded", "deployment_id_2", &["RUNNING"]).await;

    // Deleting an Application leaves every other app's objects alone.
    let apps: Api<Application> = Api::namespaced(client.clone(), NS);
    apps.delete("data-v2minimal", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the deleted app's Deployment to be collected", || async {
        deployments
            .get_opt("data-v2minimal")
            .await
            .ok()
            .filter(|d| d.is_none())
    })
    .await;
    assert!(deployments.get_opt(v3minimal.name).await.unwrap().is_some());

    // SIGTERM: a clean exit.
    let mut daemon = daemon;
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = daemon.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status {status}");
    clean(&client).await;
}
