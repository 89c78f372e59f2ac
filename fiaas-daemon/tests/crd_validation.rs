//! `--crd-validation`: the daemon installs the Application CRD with the fiaas.yml schema
//! (`fiaas-spec/src/crd_schema.rs`), so that `kubectl apply` refuses an invalid fiaas.yml,
//! naming the field, before any deploy; a valid v3 and a v2 fiaas.yml are accepted and deploy.
//! Every fiaas.yml of the fixtures that fiaas accepts is accepted by the API server too.
//!
//! A test binary of its own: it changes the cluster-wide CRD for a while, and cargo runs test
//! binaries one after the other. The project's CRDs are put back afterwards, also on failure.

mod support;

use std::process::{Command, Stdio};

use std::io::Write;
use std::time::{Duration, Instant};

use fiaas_k8s::{ApplicationStatus, status_name};
use fiaas_spec::AppFacts;
use fiaas_tests::upstream_crds::RestoreProjectCrds;
use fiaas_tests::{
    applications, drop_namespace, keep_pods_ready, read_fixture, test_cluster, test_namespace,
    yaml_files,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};
use support::Daemon;

fn application(name: &str, config: &Value) -> Value {
    json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
        "metadata": {"name": name, "labels": {"fiaas/deployment_id": "1"}},
        "spec": {"application": name, "image": format!("example/{name}:1"), "config": config}})
}

/// `kubectl apply` of the Application `name` with fiaas.yml `config`: its exit status and
/// stderr.
fn kubectl_apply(ns: &str, name: &str, config: &Value) -> (bool, String) {
    let mut kubectl = Command::new("kubectl")
        .args(["apply", "-n", ns, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    let body = application(name, config).to_string();
    kubectl
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = kubectl.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether the API server refuses the Application (a dry-run create), and why.
async fn refusal(api: &Api<DynamicObject>, name: &str, config: &Value) -> Option<String> {
    let body: DynamicObject = serde_json::from_value(application(name, config)).unwrap();
    let params = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    match api.create(&params, &body).await {
        Ok(_) => None,
        Err(kube::Error::Api(status)) if status.code == 422 => Some(status.message),
        Err(e) => panic!("dry-run create of {name}: {e}"),
    }
}

/// Every fiaas.yml of the fixtures that parses to a map: upstream's spec examples and the
/// differential render cases, valid and invalid.
fn fixture_documents() -> Vec<(String, Value)> {
    let cases = yaml_files("render")
        .into_iter()
        .filter(|file| file.ends_with("/app.yml"));
    yaml_files("specs")
        .into_iter()
        .chain(cases)
        .filter_map(|file| {
            let document = fiaas_spec::parse_document(&read_fixture(&file)).ok()?;
            document.is_object().then_some((file, document))
        })
        .collect()
}

async fn wait_for_success(client: &Client, ns: &str, name: &str) {
    let statuses: Api<ApplicationStatus> = Api::namespaced(client.clone(), ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = statuses.get_opt(&status_name(name, "1")).await.unwrap();
        if status.as_ref().is_some_and(|s| s.result == "SUCCESS") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: no SUCCESS: {:?}",
            status.map(|s| (s.result, s.logs))
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_server_refuses_an_invalid_fiaas_yml_and_takes_v2_and_valid_v3() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let _restore = RestoreProjectCrds::new();
    let ns = test_namespace(&client, "crd-validation").await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let _daemon = Daemon::start(&ns, None, &["--crd-validation"]);

    // The daemon installs the CRD at start-up; the API server serves a new schema a moment
    // after storing it.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let apps = applications::api(&client, &ns);
    let bad = json!({"version": 3, "replicas": {"minimum": "many"}});
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let crd = crds
            .get_opt("applications.fiaas.schibsted.io")
            .await
            .unwrap();
        let installed = crd.is_some_and(|crd| {
            let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
            schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["config"]["properties"]
                ["replicas"]
                .is_object()
        });
        if installed && refusal(&apps, "probe", &bad).await.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not install the validating CRD"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let (applied, stderr) = kubectl_apply(&ns, "bad", &bad);
    assert!(!applied, "an invalid fiaas.yml is refused");
    assert!(
        stderr.contains("spec.config.replicas.minimum") && stderr.contains("integer"),
        "{stderr}"
    );
    let several = json!({"version": 3, "ports": [{"name": "http", "port": 70000}],
        "labels": {"pod": {"team": 7}}, "healthchecks": {"liveness": {"timeout_seconds": "1s"}}});
    let (applied, stderr) = kubectl_apply(&ns, "several", &several);
    assert!(!applied);
    for field in [
        "spec.config.ports.port",
        "spec.config.labels.pod.team",
        "spec.config.healthchecks.liveness.timeout_seconds",
    ] {
        assert!(stderr.contains(field), "{field} in {stderr}");
    }
    let (applied, stderr) = kubectl_apply(&ns, "unversioned", &json!({"replicas": 2}));
    assert!(!applied);
    assert!(stderr.contains("spec.config.version"), "{stderr}");
    assert!(
        apps.get_opt("bad").await.unwrap().is_none(),
        "nothing refused is stored"
    );

    let good = json!({"version": 3, "replicas": {"minimum": 1, "maximum": 1},
        "ports": [{"name": "http", "target_port": 8080}], "labels": {"pod": {"team": "a"}},
        "metrics": {"prometheus": false}, "unknown_key": {"kept": true}});
    let v2 = json!({"version": 2, "replicas": 1, "autoscaler": {"enabled": false},
        "ports": [{"protocol": "http", "target_port": 8080, "path": "/"}],
        "prometheus": {"enabled": false}, "has_secrets": false});
    for (name, config) in [("good", &good), ("old", &v2)] {
        let (applied, stderr) = kubectl_apply(&ns, name, config);
        assert!(applied, "{name}: {stderr}");
        let stored = apps.get(name).await.unwrap();
        assert_eq!(
            &stored.data["spec"]["config"], config,
            "{name}: stored as written, nothing pruned"
        );
    }
    for name in ["good", "old"] {
        wait_for_success(&client, &ns, name).await;
    }

    let facts = AppFacts {
        name: "fixture".into(),
        namespace: ns.clone(),
        image: "example/fixture:1".into(),
        deployment_id: "1".into(),
        ..AppFacts::default()
    };
    let mut accepted = 0;
    let mut refused_by_both = 0;
    let mut wrongly_refused = Vec::new();
    for (file, document) in fixture_documents() {
        let fiaas_accepts = fiaas_spec::from_document(&document, &facts).is_ok();
        match refusal(&apps, "fixture", &document).await {
            None => accepted += 1,
            Some(reason) if fiaas_accepts => wrongly_refused.push(format!("{file}: {reason}")),
            Some(_) => refused_by_both += 1,
        }
    }
    assert!(
        wrongly_refused.is_empty(),
        "refused by the API server, accepted by fiaas:\n{}",
        wrongly_refused.join("\n")
    );
    assert!(accepted > 150, "{accepted} fixtures accepted");
    assert!(refused_by_both > 0, "some invalid fixture is refused early");

    kubelet.abort();
    drop_namespace(&client, &ns).await;
}
