//! deploy/rbac.yaml grants what the daemon needs and nothing more: the real daemon runs as the
//! `fiaas-deploy-daemon` ServiceAccount of deploy/ (token from its token Secret), with every
//! feature that needs a right switched on, through a deploy that creates every kind of object
//! and one that prunes them. The API server's audit log (`tests/cluster/up` records the requests
//! of ServiceAccounts) then says which verbs the daemon used: none may be refused, and every verb
//! a rule grants must have been used.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fiaas_tests::applications::put as put_application;
use fiaas_tests::{drop_namespace, keep_pods_ready, test_cluster, test_namespace};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};
use support::{Daemon, audited, final_statuses, kubectl, service_account_kubeconfig};

const SERVICE_ACCOUNT: &str = "fiaas-deploy-daemon";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The YAML documents of a file under deploy/.
fn documents(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repository().join("deploy").join(file)).unwrap();
    text.split("\n---\n")
        .map(|document| fiaas_spec::parse_document(document).unwrap())
        .filter(|document| !document.is_null())
        .collect()
}

/// Every `(resource, verb)` the Role and ClusterRoles of deploy/rbac.yaml grant, with the rule's
/// API groups (a rule may name alternatives, e.g. the two Ingress groups).
fn granted() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for document in documents("rbac.yaml") {
        for rule in document["rules"].as_array().into_iter().flatten() {
            for resource in rule["resources"].as_array().unwrap() {
                for verb in rule["verbs"].as_array().unwrap() {
                    out.insert((
                        resource.as_str().unwrap().to_owned(),
                        verb.as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

/// deploy/'s ServiceAccount and RBAC in `ns`, the ClusterRoleBinding's subject set to `ns` as a
/// kustomize overlay with `namespace: <ns>` would. The optional rule of rbac.yaml for
/// `list-of-roles` (`bind` on the named Role) is added as its comment says.
fn install_rbac(ns: &str) {
    for file in ["serviceaccount.yaml", "rbac.yaml"] {
        let text = std::fs::read_to_string(repository().join("deploy").join(file)).unwrap();
        let text = text.replace("namespace: default", &format!("namespace: {ns}"));
        kubectl(&["apply", "-n", ns, "-f", "-"], Some(&text));
    }
    let optional = json!({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "app-reader"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "fiaas-deploy-daemon-bind"},
         "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"],
                    "verbs": ["bind"], "resourceNames": ["app-reader"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "fiaas-deploy-daemon-bind"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "fiaas-deploy-daemon-bind"},
         "subjects": [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT}]}]});
    kubectl(&["apply", "-n", ns, "-f", "-"], Some(&optional.to_string()));
}

async fn deploy(client: &Client, ns: &str, id: &str, config: Value) {
    put_application(client, ns, "web", id, config).await;
    let done = final_statuses(client, ns, &[("web", id)], Duration::from_secs(90)).await;
    assert_eq!(done[0].result, "SUCCESS", "deploy {id}: {:?}", done[0].logs);
}

fn web_app() -> Value {
    json!({"version": 3,
           "replicas": {"minimum": 2, "maximum": 3},
           "ports": [{"target_port": 8080}],
           "ingress": [{"host": "rbac.example.com"}]})
}

fn worker_app() -> Value {
    json!({"version": 3, "replicas": {"minimum": 1, "maximum": 1}, "ports": [],
           "healthchecks": {"liveness": {"execute": {"command": "true"}}}})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_needs_exactly_the_rights_deploy_rbac_grants() {
    let Some(client) = test_cluster().await else {
        return;
    };
    let ns = test_namespace(&client, "rbac").await;
    install_rbac(&ns);
    let kubeconfig = service_account_kubeconfig(&client, &ns, SERVICE_ACCOUNT).await;
    let kubelet = keep_pods_ready(&client, &ns, None);
    let first = Daemon::start(
        &ns,
        Some(&kubeconfig),
        &[
            "--leader-election",
            "--include-status-in-app",
            "--enable-service-account-per-app",
            "--list-of-roles",
            "app-reader",
            "--status-retention",
            "1",
        ],
    );
    // Everything created, then everything but the Deployment and ServiceAccount pruned, then a
    // third deploy so the oldest status falls out of the kept history.
    for (id, config) in [("1", web_app()), ("2", worker_app()), ("3", web_app())] {
        deploy(&client, &ns, id, config).await;
    }
    // Held long enough to be renewed at least once.
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let spec = leases
            .get("fiaas-deploy-daemon")
            .await
            .unwrap()
            .spec
            .unwrap();
        if spec.renew_time.map(|t| t.0) > spec.acquire_time.map(|t| t.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the lease was never renewed");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(first);
    // Without `list-of-roles`, the app's RoleBinding goes.
    let second = Daemon::start(
        &ns,
        Some(&kubeconfig),
        &[
            "--enable-service-account-per-app",
            "--status-retention",
            "1",
        ],
    );
    deploy(&client, &ns, "4", worker_app()).await;
    // A deployment id that fails twice: the second DeployFailed Event joins the first's series.
    let invalid = json!({"version": 3, "ports": []});
    put_application(&client, &ns, "web", "5", invalid.clone()).await;
    final_statuses(&client, &ns, &[("web", "5")], Duration::from_secs(90)).await;
    let mut changed = invalid;
    changed["annotations"] = json!({"deployment": {"attempt": "2"}});
    put_application(&client, &ns, "web", "5", changed).await;
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .any(|e| {
            e.reason.as_deref() == Some("DeployFailed")
                && e.series.as_ref().is_some_and(|s| s.count >= 2)
        })
    {
        assert!(
            Instant::now() < deadline,
            "the failed deploy was not repeated"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Watches are written to the audit log when they end.
    drop(second);
    tokio::time::sleep(Duration::from_secs(2)).await;
    kubelet.abort();

    let requests = audited(&ns, SERVICE_ACCOUNT);
    assert!(
        !requests.is_empty(),
        "no request of the daemon in the audit log"
    );
    let refused: Vec<String> = requests
        .iter()
        .filter(|r| r.code == 403)
        .map(|r| format!("{} {}", r.verb, r.uri))
        .collect();
    assert!(refused.is_empty(), "refused requests: {refused:#?}");
    let mut used: BTreeSet<(String, String)> = requests
        .iter()
        .map(|r| (r.resource.clone(), r.verb.clone()))
        .collect();
    // Server-side apply of an object that does not exist yet is a `patch` answered 201 Created,
    // for which the API server also checks the right to `create`.
    used.extend(
        requests
            .iter()
            .filter(|r| r.verb == "patch" && r.code == 201)
            .map(|r| (r.resource.clone(), "create".to_owned())),
    );
    // The CRDs exist in the test cluster before the daemon starts, so it only patches them; it
    // creates them on the first start in a fresh cluster.
    used.insert(("customresourcedefinitions".to_owned(), "create".to_owned()));
    // A Deployment's replicas are read with a GET only while the rollout watch does not know the
    // Deployment yet (the daemon's first moments, and the bootstrapper, which has no watch).
    used.insert(("deployments".to_owned(), "get".to_owned()));
    let granted = granted();
    let unused: Vec<&(String, String)> = granted.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "deploy/rbac.yaml grants rights the daemon never used: {unused:?}; used: {used:?}"
    );
    let _ = std::fs::remove_file(kubeconfig);
    drop_namespace(&client, &ns).await;
    kubectl(
        &[
            "delete",
            "clusterrolebinding",
            "fiaas-deploy-daemon-crd-manager",
        ],
        None,
    );
}
