//! Server-side apply treats some lists as maps keyed by a field (a container's `env` by `name`,
//! its `ports` by `containerPort` and `protocol`, …) and refuses a body that repeats a key. The
//! upstream's POST/PUT was accepted with such repeats (e.g. a global env var named like one
//! fiaas manages), and the kubelet then used the last entry of a name. So before applying, each
//! of these lists keeps only the last entry of every key, where that entry stood: the object
//! behaves as the Python daemon's did, and the API server takes it.

use serde_json::Value;

/// The list-maps of a pod spec's containers, with their key fields.
const CONTAINER_LISTS: &[(&str, &[&str])] = &[
    ("env", &["name"]),
    ("ports", &["containerPort", "protocol"]),
    ("volumeMounts", &["mountPath"]),
];

/// Drop every entry of a list-map whose key a later entry repeats, in every list-map of the
/// object that fiaas writes (pod template containers, init containers and volumes; Service
/// ports).
pub fn keep_last_of_each_key(object: &mut Value) {
    if let Some(pod) = object.pointer_mut("/spec/template/spec") {
        for containers in ["containers", "initContainers"] {
            if let Some(Value::Array(containers)) = pod.get_mut(containers) {
                for container in containers.iter_mut() {
                    for (list, key) in CONTAINER_LISTS {
                        if let Some(Value::Array(entries)) = container.get_mut(*list) {
                            keep_last(entries, key);
                        }
                    }
                }
                keep_last(containers, &["name"]);
            }
        }
        if let Some(Value::Array(volumes)) = pod.get_mut("volumes") {
            keep_last(volumes, &["name"]);
        }
    }
    if object.get("kind").and_then(Value::as_str) == Some("Service")
        && let Some(Value::Array(ports)) = object.pointer_mut("/spec/ports")
    {
        keep_last(ports, &["port", "protocol"]);
    }
}

/// The key of an entry; a missing `protocol` is the API server's default, TCP.
fn key_of(entry: &Value, fields: &[&str]) -> Vec<Value> {
    fields
        .iter()
        .map(|field| match (entry.get(*field), *field) {
            (None | Some(Value::Null), "protocol") => Value::from("TCP"),
            (value, _) => value.cloned().unwrap_or(Value::Null),
        })
        .collect()
}

fn keep_last(entries: &mut Vec<Value>, fields: &[&str]) {
    let keys: Vec<Vec<Value>> = entries.iter().map(|e| key_of(e, fields)).collect();
    let mut index = 0;
    entries.retain(|_| {
        let key = &keys[index];
        index += 1;
        !keys[index..].contains(key)
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_last_entry_of_a_name_wins_where_it_stands() {
        let mut deployment = json!({"kind": "Deployment", "spec": {"template": {"spec": {
            "containers": [{"name": "app",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "A", "value": "3"}],
                "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 80, "protocol": "UDP"}],
                "volumeMounts": [{"name": "x", "mountPath": "/a"}, {"name": "y", "mountPath": "/a"}]}],
            "initContainers": [{"name": "init", "env": [{"name": "C", "value": "1"}, {"name": "C", "value": "2"}]}],
            "volumes": [{"name": "v", "emptyDir": {}}, {"name": "v", "configMap": {"name": "c"}}]}}}});
        keep_last_of_each_key(&mut deployment);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"][0]["env"],
            json!([{"name": "B", "value": "2"}, {"name": "A", "value": "3"}])
        );
        assert_eq!(
            pod["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 80, "protocol": "UDP"}])
        );
        assert_eq!(
            pod["containers"][0]["volumeMounts"],
            json!([{"name": "y", "mountPath": "/a"}])
        );
        assert_eq!(
            pod["initContainers"][0]["env"],
            json!([{"name": "C", "value": "2"}])
        );
        assert_eq!(
            pod["volumes"],
            json!([{"name": "v", "configMap": {"name": "c"}}])
        );
    }

    #[test]
    fn service_ports_and_objects_without_repeats_are_left_alone() {
        let mut service = json!({"kind": "Service", "spec": {"ports": [
            {"port": 80, "name": "a"}, {"port": 80, "protocol": "UDP", "name": "b"}, {"port": 80, "protocol": "TCP", "name": "c"}]}});
        keep_last_of_each_key(&mut service);
        assert_eq!(
            service["spec"]["ports"],
            json!([{"port": 80, "protocol": "UDP", "name": "b"}, {"port": 80, "protocol": "TCP", "name": "c"}])
        );
        let plain = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "app", "env": [{"name": "A", "value": "1"}, {"name": "B"}]}]}}}});
        let mut same = plain.clone();
        keep_last_of_each_key(&mut same);
        assert_eq!(same, plain);
    }
}
