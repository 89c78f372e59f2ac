//! The real `fiaas-deploy-daemon-bootstrap` against the real test cluster: upstream's
//! bootstrap cases (upstream `tests/fiaas_deploy_daemon/test_bootstrap_e2e.py`), a failed rollout, the overall timeout, an invalid app, and `--app` (with
//! the extension hook and the ApplicationStatus of the daemon's deployer).
//! There is no kubelet: where apps must become ready, the test plays it by marking pods Ready,
//! and the real controllers report the rollouts done.

use std::process::Output;

use fiaas_k8s::{ApplicationStatus, status_name};
use fiaas_tests::e2e::{Cluster, Deploy, expected_object};
use fiaas_tests::{
    drop_namespace, fixtures_dir, keep_pods_ready, normalise_object, read_fixture,
    subset_difference, test_cluster, test_namespace,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn application(
    client: &Client,
    ns: &str,
    name: &str,
    config: Value,
    labels: Value,
) -> String {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<fiaas_k8s::Application>(&()),
    );
    let body = json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"application": name, "image": "nginx:1.13.9-alpine", "config": config}});
    let created = api
        .patch(
            name,
            &PatchParams::apply("test").force(),
            &Patch::Apply(&body),
        )
        .await
        .expect("apply the Application");
    created.metadata.uid.unwrap_or_default()
}

async fn bootstrap(ns: &str, args: &[&str]) -> Output {
    let mut command =
        tokio::process::Command::new(env!("CARGO_BIN_EXE_fiaas-deploy-daemon-bootstrap"));
    command
        .args([
            "--enable-crd-support",
            "--use-apiextensionsv1-crd",
            "--include-status-in-app",
            "--use-networkingv1-ingress",
        ])
        .args(args)
        .env("NAMESPACE", ns);
    command.output().await.expect("run the bootstrapper")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn the_upstream_bootstrap_cases_deploy_only_the_labelled_apps_of_the_namespace() {
    let Some(client) = test_cluster().await else {
        return;
    };
    // The bootstrapper never creates CRDs; like upstream's bootstrap test, the test does.
    fiaas_k8s::ensure_crds(&client)
        .await
        .expect("install the CRDs");
    let ns = test_namespace(&client, "bootstrap").await;
    let other = test_namespace(&client, "bootstrap-other").await;
    let yaml = |path: &str| fiaas_spec::parse_document(&read_fixture(path)).unwrap();
    let v2 = yaml("specs/v2/data/examples/v2bootstrap.yml");
    let v3 = yaml("specs/v3/data/examples/v3bootstrap.yml");
    let uid = application(
        &client,
        &ns,
        "specs-v2-data-examples-v2bootstrap",
        v2.clone(),
        json!({"fiaas/deployment_id": "1", "fiaas/bootstrap": "true"}),
    )
    .await;
    application(
        &client,
        &other,
        "specs-v2-data-examples-v2bootstrap",
        v2,
        json!({"fiaas/deployment_id": "1", "fiaas/bootstrap": "false"}),
    )
    .await;
    application(
        &client,
        &ns,
        "specs-v3-data-examples-v3bootstrap",
        v3,
        json!({"fiaas/deployment_id": "1", "fiaas/bootstrap": "true"}),
    )
    .await;
    application(
        &client,
        &ns,
        "specs-v3-data-examples-full",
        yaml("specs/v3/data/examples/full.yml"),
        json!({"fiaas/deployment_id": "1"}),
    )
    .await;
    application(
        &client,
        &other,
        "specs-v3-data-examples-v3minimal",
        yaml("specs/v3/data/examples/v3minimal.yml"),
        json!({"fiaas/deployment_id": "1", "fiaas/bootstrap": "true"}),
    )
    .await;

    let kubelet = keep_pods_ready(&client, &ns, None);
    let output = bootstrap(&ns, &[]).await;
    kubelet.abort();
    assert!(output.status.success(), "{}", stderr(&output));

    let case = fiaas_tests::e2e::bootstrap_case();
    for (_, file, _) in &case.expected {
        let mut expected = expected_object(
            file,
            Cluster::Bootstrap,
            &Deploy::bootstrap(),
            case.name,
            &uid,
        );
        expected["metadata"]["namespace"] = json!(ns);
        let resource = if file.contains("ingress") {
            ApiResource::erase::<Ingress>(&())
        } else if file.contains("service") {
            ApiResource::erase::<Service>(&())
        } else {
            ApiResource::erase::<Deployment>(&())
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
        let actual = serde_json::to_value(api.get(case.name).await.expect(file)).unwrap();
        if let Some(diff) =
            subset_difference(&normalise_object(&expected), &normalise_object(&actual), "")
        {
            panic!("{file}: {diff}");
        }
    }
    let deployments = |ns: &str| Api::<Deployment>::namespaced(client.clone(), ns);
    assert!(
        deployments(&ns)
            .get_opt("specs-v3-data-examples-v3bootstrap")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        deployments(&ns)
            .get_opt("specs-v3-data-examples-full")
            .await
            .unwrap()
            .is_none(),
        "no bootstrap label"
    );
    assert!(
        deployments(&other)
            .get_opt("specs-v2-data-examples-v2bootstrap")
            .await
            .unwrap()
            .is_none(),
        "bootstrap=false"
    );
    assert!(
        deployments(&other)
            .get_opt("specs-v3-data-examples-v3minimal")
            .await
            .unwrap()
            .is_none(),
        "another namespace"
    );
    drop_namespace(&client, &ns).await;
    drop_namespace(&client, &other).await;
}

#[tokio::test]
async fn a_failed_rollout_and_an_invalid_app_exit_1_naming_each_app() {
    let Some(client) = test_cluster().await else {
        return;
    };
    // The bootstrapper never creates CRDs; like upstream's bootstrap test, the test does.
    fiaas_k8s::ensure_crds(&client)
        .await
        .expect("install the CRDs");
    let ns = test_namespace(&client, "bootstrap-fail").await;
    let bootstrap_labels = json!({"fiaas/deployment_id": "1", "fiaas/bootstrap": "true"});
    let quick = json!({"version": 3, "replicas": {"minimum": 1, "maximum": 1},
        "healthchecks": {"readiness": {"initial_delay_seconds": 1}}});
    application(&client, &ns, "never-ready", quick, bootstrap_labels.clone()).await;
    let invalid = fiaas_spec::parse_document(&read_fixture(
        "specs/v3/data/examples/invalid_ingress_port_name.yml",
    ))
    .unwrap();
    application(&client, &ns, "invalid", invalid, bootstrap_labels).await;
    // Rollout timeout = multiplier × readiness delay × max replicas = 2 × 1 × 1 s; nobody makes the pods ready.
    let output = bootstrap(&ns, &["--ready-check-timeout-multiplier", "2"]).await;
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("never-ready in namespace") && text.contains("invalid in namespace"),
        "{text}"
    );
    assert!(text.matches(": FAILED").count() >= 2, "{text}");
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn the_overall_timeout_exits_1_with_the_apps_still_rolling_out() {
    let Some(client) = test_cluster().await else {
        return;
    };
    // The bootstrapper never creates CRDs; like upstream's bootstrap test, the test does.
    fiaas_k8s::ensure_crds(&client)
        .await
        .expect("install the CRDs");
    let ns = test_namespace(&client, "bootstrap-timeout").await;
    application(
        &client,
        &ns,
        "slowpoke",
        json!({"version": 3}),
        json!({"fiaas/deployment_id": "1", "fiaas/bootstrap": "true"}),
    )
    .await;
    let output = bootstrap(&ns, &["--timeout-seconds", "3"]).await;
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("slowpoke in namespace") && text.contains("RUNNING"),
        "{text}"
    );
    drop_namespace(&client, &ns).await;
}

/// A bare HTTP/1.1 extension hook on 127.0.0.1: it labels every object it is called for
/// `hooked: "yes"`, except ServiceAccounts and RoleBindings, which it leaves alone (404; upstream
/// never sends them). Returns its URL.
async fn labelling_hook() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer_hook_call(stream));
        }
    });
    url
}

async fn answer_hook_call(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).await.unwrap();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.unwrap();
    let hooked = [
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
    ]
    .iter()
    .any(|kind| request_line.contains(&format!("/fiaas/deploy/{kind} ")));
    let (status, answer) = if hooked {
        let payload: Value = serde_json::from_slice(&body).unwrap();
        let mut object = payload["object"].clone();
        object["metadata"]["labels"]["hooked"] = json!("yes");
        ("200 OK", object.to_string())
    } else {
        ("404 Not Found", String::new())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{answer}",
        answer.len()
    );
    reader
        .into_inner()
        .write_all(response.as_bytes())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_fiaas_yml_deploys_straight_from_a_file_through_the_daemons_deployer() {
    let Some(client) = test_cluster().await else {
        return;
    };
    // The bootstrapper never creates CRDs; like upstream's bootstrap test, the test does.
    fiaas_k8s::ensure_crds(&client)
        .await
        .expect("install the CRDs");
    let ns = test_namespace(&client, "bootstrap-file").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let hook = labelling_hook().await;
    let file = fixtures_dir().join("specs/v3/data/examples/v3minimal.yml");
    let output = bootstrap(
        &ns,
        &[
            "--app",
            &file.display().to_string(),
            "--name",
            "from-file",
            "--image",
            "nginx:1.13.9-alpine",
            "--extension-hook-url",
            &hook,
            "--max-concurrent-deploys",
            "1",
        ],
    )
    .await;
    kubelet.abort();
    assert!(output.status.success(), "{}", stderr(&output));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let deployment = deployments.get("from-file").await.unwrap();
    // The daemon's deployer: the extension hook rewrote the Deployment...
    assert_eq!(
        deployment
            .metadata
            .labels
            .unwrap()
            .get("hooked")
            .map(String::as_str),
        Some("yes")
    );
    // ...and, as upstream's, every other object it deploys but the ServiceAccount...
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let autoscalers: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let labels = [
        services.get("from-file").await.unwrap().metadata.labels,
        autoscalers.get("from-file").await.unwrap().metadata.labels,
    ];
    for labels in labels {
        assert_eq!(
            labels.unwrap().get("hooked").map(String::as_str),
            Some("yes")
        );
    }
    // ...and the deploy has its ApplicationStatus, as every deploy of the daemon has.
    let statuses: Api<ApplicationStatus> = Api::namespaced(client.clone(), &ns);
    let status = statuses.get(&status_name("from-file", "1")).await.unwrap();
    assert_eq!(status.result, "SUCCESS");
    drop_namespace(&client, &ns).await;
}

#[tokio::test]
async fn the_deploy_concurrency_is_a_flag() {
    // Refused before anything talks to a cluster: a bootstrap that can never deploy.
    let output = bootstrap("default", &["--max-concurrent-deploys", "0"]).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--max-concurrent-deploys"),
        "{}",
        stderr(&output)
    );
}
