//! Shared helpers of the cross-crate tests: where the fixtures are, and how upstream's test
//! suite compared values.

pub mod applications;
pub mod e2e;
pub mod fault_proxy;
pub mod python_daemon;
pub mod upstream_crds;

use std::path::{Path, PathBuf};

use serde_json::Value;

/// `tests/fixtures/`, the upstream test data (see `fixtures/NOTICE.md`).
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Read a fixture file as text.
pub fn read_fixture(relative: &str) -> String {
    let path = fixtures_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Parse a YAML fixture the way upstream's tests did (`yaml.safe_load`).
pub fn load_yaml(relative: &str) -> Value {
    fiaas_spec::parse_document(&read_fixture(relative))
        .unwrap_or_else(|e| panic!("fixture {relative} does not parse: {e}"))
}

/// Every `*.yml` under `relative`, sorted, as paths relative to the fixtures directory.
pub fn yaml_files(relative: &str) -> Vec<String> {
    let mut out = Vec::new();
    collect(&fixtures_dir(), &fixtures_dir().join(relative), &mut out);
    out.sort();
    out
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "yml") {
            out.push(
                path.strip_prefix(root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// Bring an object into the form upstream's e2e tests compare (upstream `tests/fiaas_deploy_daemon/utils.py`, `assert_k8s_resource_matches`), so the objects fiaas
/// renders (request bodies) and the upstream's expected files (server answers read through the
/// upstream's client models) can be compared with `==`.
///
/// Applied to both sides: nulls, empty lists and empty maps are dropped (the client model emits
/// empty lists, the server drops them; `{}` and absent annotations are equal), every scalar
/// becomes a string (`targetPort: "8080"` vs `8080`), and resource quantities take the server's
/// canonical form (`1024Mi` → `1Gi`). Applied as the server does to what fiaas sends:
/// `fieldRef.apiVersion: v1` and `defaultMode: 420` on configMap/secret volumes are added,
/// `readOnly: false` is dropped. Removed as the upstream's harness removes them: top-level
/// `apiVersion`, `kind` and `status`, server-managed metadata, pod-template name, namespace and
/// owner references, Service `clusterIP` and node ports, ServiceAccount `secrets`.
pub fn normalise_object(object: &Value) -> Value {
    let mut object = object.clone();
    if let Value::Object(map) = &mut object {
        for field in ["apiVersion", "kind", "status", "secrets"] {
            map.remove(field);
        }
    }
    for meta in ["/metadata", "/spec/template/metadata"] {
        if let Some(Value::Object(m)) = object.pointer_mut(meta) {
            for field in [
                "creationTimestamp",
                "generation",
                "resourceVersion",
                "selfLink",
                "uid",
                "managedFields",
                "finalizers",
            ] {
                m.remove(field);
            }
            if let Some(Value::Object(annotations)) = m.get_mut("annotations") {
                annotations.remove("deployment.kubernetes.io/revision");
            }
        }
    }
    if let Some(Value::Object(m)) = object.pointer_mut("/spec/template/metadata") {
        for field in ["name", "namespace", "ownerReferences"] {
            m.remove(field);
        }
    }
    if let Some(Value::Object(spec)) = object.pointer_mut("/spec") {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
        if let Some(Value::Array(ports)) = spec.get_mut("ports") {
            for port in ports.iter_mut().filter_map(Value::as_object_mut) {
                port.remove("nodePort");
            }
        }
    }
    server_defaults(&mut object, "");
    prune_and_stringify(&object).unwrap_or(Value::Null)
}

fn server_defaults(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            if key == "fieldRef" && !map.contains_key("apiVersion") {
                map.insert("apiVersion".into(), Value::from("v1"));
            }
            if (key == "configMap" || key == "secret") && !map.contains_key("defaultMode") {
                map.insert("defaultMode".into(), Value::from(420));
            }
            if map.get("readOnly") == Some(&Value::Bool(false)) {
                map.remove("readOnly");
            }
            for (k, v) in map.iter_mut() {
                if k == "limits" || k == "requests" {
                    if let Value::Object(quantities) = v {
                        for q in quantities.values_mut() {
                            *q = Value::from(canonical_quantity(&scalar_text(q)));
                        }
                    }
                } else {
                    server_defaults(v, k);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| server_defaults(v, key)),
        _ => {}
    }
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `1024Mi` → `1Gi`, `1000m` → `1`, as the API server canonicalises quantities.
fn canonical_quantity(text: &str) -> String {
    const BINARY: [&str; 5] = ["Ki", "Mi", "Gi", "Ti", "Pi"];
    for (i, suffix) in BINARY.iter().enumerate() {
        if let Some(Ok(mut n)) = text.strip_suffix(suffix).map(str::parse::<u64>) {
            let mut level = i;
            while n > 0 && n % 1024 == 0 && level + 1 < BINARY.len() {
                n /= 1024;
                level += 1;
            }
            return format!("{n}{}", BINARY[level]);
        }
    }
    if let Some(Ok(n)) = text.strip_suffix('m').map(str::parse::<u64>)
        && n % 1000 == 0
    {
        return (n / 1000).to_string();
    }
    text.to_owned()
}

fn prune_and_stringify(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let out: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| prune_and_stringify(v).map(|v| (k.clone(), v)))
                .collect();
            (!out.is_empty()).then_some(Value::Object(out))
        }
        Value::Array(items) => {
            let out: Vec<Value> = items.iter().filter_map(prune_and_stringify).collect();
            (!out.is_empty()).then_some(Value::Array(out))
        }
        Value::String(s) => Some(Value::String(s.clone())),
        other => Some(Value::String(other.to_string())),
    }
}

/// The first place two normalised objects differ, as `path: expected X, got Y`.
pub fn first_difference(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let sub = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match (e.get(k), a.get(k)) {
                    (Some(x), Some(y)) => first_difference(x, y, &sub),
                    (Some(x), None) => Some(format!("{sub}: missing, expected {x}")),
                    (None, Some(y)) => Some(format!("{sub}: unexpected {y}")),
                    (None, None) => None,
                }
            })
        }
        (Value::Array(e), Value::Array(a)) => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]")))
            .or_else(|| {
                (e.len() != a.len())
                    .then(|| format!("{path}: expected {} items, got {}", e.len(), a.len()))
            }),
        _ => (expected != actual).then(|| format!("{path}: expected {expected}, got {actual}")),
    }
}

/// The first place `expected` is not contained in `actual` (maps: every expected key present
/// and matching; lists: same length, element by element; scalars: equal). For live objects,
/// whose server-defaulted fields the upstream harness projected away (upstream `tests/fiaas_deploy_daemon/utils.py`).
pub fn subset_difference(expected: &Value, actual: &Value, path: &str) -> Option<String> {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => e.iter().find_map(|(k, x)| {
            let sub = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match a.get(k) {
                Some(y) => subset_difference(x, y, &sub),
                None => Some(format!("{sub}: missing, expected {x}")),
            }
        }),
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => e
            .iter()
            .zip(a)
            .enumerate()
            .find_map(|(i, (x, y))| subset_difference(x, y, &format!("{path}[{i}]"))),
        _ => (expected != actual).then(|| format!("{path}: expected {expected}, got {actual}")),
    }
}

/// Whether a test cluster is configured (`KUBECONFIG` points at it); prints the skip line when
/// not, and fails when `FIAAS_REQUIRE_CLUSTER=1`.
pub fn test_cluster_configured() -> bool {
    let configured = std::env::var("FIAAS_TEST_CLUSTER").is_ok_and(|v| v == "1")
        && std::env::var_os("KUBECONFIG").is_some();
    let required = std::env::var("FIAAS_REQUIRE_CLUSTER").is_ok_and(|v| v == "1");
    if !configured {
        assert!(
            !required,
            "FIAAS_REQUIRE_CLUSTER=1 but no test cluster is configured (run tests/run)"
        );
        eprintln!("skipped: no test cluster (start one with tests/cluster/up, or run tests/run)");
    }
    configured
}

/// A client for the test cluster that `tests/cluster/up` started (`FIAAS_TEST_CLUSTER=1` and
/// `KUBECONFIG` set), or `None` after one line saying the test is skipped. When
/// `FIAAS_REQUIRE_CLUSTER=1` (the README's test command) a missing cluster fails the test.
pub async fn test_cluster() -> Option<kube::Client> {
    if !test_cluster_configured() {
        return None;
    }
    match kube::Client::try_default().await {
        Ok(client) => Some(client),
        Err(e) => panic!("the test cluster is configured but unreachable: {e}"),
    }
}

/// A fresh namespace `<prefix>-<pid>`, so tests in parallel never meet.
pub async fn test_namespace(client: &kube::Client, prefix: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    let name = format!("{prefix}-{}", std::process::id());
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let body: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))
        .expect("a namespace literal");
    api.create(&kube::api::PostParams::default(), &body)
        .await
        .expect("create the test namespace");
    name
}

/// Delete a test namespace (the controller-manager removes what is in it).
pub async fn drop_namespace(client: &kube::Client, name: &str) {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let _ = api.delete(name, &kube::api::DeleteParams::default()).await;
}

/// Play the kubelet once (there is none in the test cluster): every pod of `namespace` matching
/// `selector` is marked Running and Ready, so the real controllers count it available.
pub async fn make_pods_ready(client: &kube::Client, namespace: &str, selector: Option<&str>) {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{ListParams, Patch, PatchParams};
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let mut params = ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    let Ok(listed) = pods.list(&params).await else {
        return;
    };
    for pod in listed.items {
        let ready = pod.status.as_ref().is_some_and(|status| {
            status.phase.as_deref() == Some("Running")
                && status
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            continue;
        }
        let now = jiff::Timestamp::now().to_string();
        let status = serde_json::json!({"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now}]}});
        let name = pod.metadata.name.unwrap_or_default();
        let _ = pods
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await;
    }
}

/// [`make_pods_ready`] every 300 ms until the returned task is aborted.
pub fn keep_pods_ready(
    client: &kube::Client,
    namespace: &str,
    selector: Option<&str>,
) -> tokio::task::JoinHandle<()> {
    let (client, namespace) = (client.clone(), namespace.to_owned());
    let selector = selector.map(str::to_owned);
    tokio::spawn(async move {
        loop {
            make_pods_ready(&client, &namespace, selector.as_deref()).await;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_take_the_server_form() {
        assert_eq!(canonical_quantity("1024Mi"), "1Gi");
        assert_eq!(canonical_quantity("512Mi"), "512Mi");
        assert_eq!(canonical_quantity("2000m"), "2");
        assert_eq!(canonical_quantity("200m"), "200m");
    }

    #[test]
    fn normalisation_equates_what_upstream_equates() {
        let sent = json!({"kind": "X", "metadata": {"annotations": {}}, "spec": {"ports": [{"targetPort": 8080, "nodePort": 1}],
            "volumes": [{"name": "a", "configMap": {"name": "a"}}], "mounts": [{"readOnly": false, "name": "tmp"}]}});
        let answered = json!({"spec": {"ports": [{"targetPort": "8080"}],
            "volumes": [{"name": "a", "configMap": {"name": "a", "defaultMode": 420}}], "mounts": [{"name": "tmp"}]}});
        assert_eq!(normalise_object(&sent), normalise_object(&answered));
        let other = json!({"spec": {"ports": [{"targetPort": "8081"}]}});
        assert!(
            first_difference(&normalise_object(&answered), &normalise_object(&other), "").is_some()
        );
    }
}
