//! The fiaas.yml schema as a CustomResourceDefinition can carry it: the structural subset of
//! OpenAPI v3 that `apiextensions.k8s.io/v1` accepts, for an Application's `spec.config`.
//!
//! It refuses only what fiaas itself refuses, so that `kubectl apply` fails early instead of
//! the deploy: a structural schema cannot depend on a value (`version`), has one type per node
//! and no `$ref`, `const` or multi-type unions, so it is laxer than [`V3_SCHEMA_JSON`]:
//!
//! - Maps and lists are not type-checked themselves, only their contents: fiaas reads a falsy
//!   value (`false`, `""`, `{}`) where a map or list belongs as its default, as upstream does
//!   (`fiaas-spec/src/lookup.rs`), and a v2 document's `replicas` is a number where v3 has a map.
//!   Unknown keys are kept (`x-kubernetes-preserve-unknown-fields`), never pruned.
//! - Where fiaas reads a value the v3 schema refuses, with a warning (`crate::warnings`), the
//!   value is not checked: truthiness-tested booleans, `extensions.tls.enabled`,
//!   `metrics.prometheus.port`, `extensions.strongbox.groups`, any port `protocol`, a probe's
//!   `0`, `cpu_threshold_percentage` below 1, a null secret parameter.
//! - Values of several types other than a port name or number (resource quantities, Datadog tag
//!   values, `extensions.tls`) are not checked.
//! - A v2 document is checked on the keys it shares with v3 (`ports`, `healthchecks`,
//!   `resources`, `admin_access`), whose values have the same types in both versions; its own
//!   keys are not checked.
//!
//! No `default` is carried over: the API server would write it into the stored document.

use serde_json::{Map, Value, json};

use crate::schema::V3_SCHEMA_JSON;
use crate::v3::{
    PROBE_ZERO_DEFAULTS, PROMETHEUS_PORT, STRONGBOX_GROUPS, TLS_ENABLED, TRUTHINESS_TESTED,
};

/// A list item or a map value in a path.
const ANY: &str = "*";

/// The structural schema of an Application's `spec.config` (see the module documentation for
/// what it checks): an object that must have a `version` of 2 or 3, or `null`.
pub fn crd_config_schema() -> Value {
    let schema: Value =
        serde_json::from_str(V3_SCHEMA_JSON).expect("the embedded schema is valid JSON");
    let mut root = Map::new();
    root.insert("type".into(), Value::from("object"));
    // An Application without a fiaas.yml reaches the daemon, which reports why it fails.
    root.insert("nullable".into(), Value::Bool(true));
    root.insert(
        "x-kubernetes-preserve-unknown-fields".into(),
        Value::Bool(true),
    );
    root.insert("required".into(), json!(["version"]));
    if let Some(description) = schema.get("description") {
        root.insert("description".into(), description.clone());
    }
    let mut properties = Map::new();
    for (key, node) in schema["properties"].as_object().into_iter().flatten() {
        let converted = if key == "version" {
            json!({"type": "integer", "enum": [2, 3], "description": node["description"]})
        } else {
            structural(node, &mut vec![key.as_str()])
        };
        properties.insert(key.clone(), converted);
    }
    root.insert("properties".into(), Value::Object(properties));
    Value::Object(root)
}

fn is_at(path: &[&str], position: &[&str]) -> bool {
    path.len() == position.len() && path.iter().zip(position).all(|(a, b)| a == b || *b == ANY)
}

/// Positions where fiaas reads any value: a warning, not a refusal.
fn takes_any_value(path: &[&str]) -> bool {
    TRUTHINESS_TESTED
        .iter()
        .chain(&[TLS_ENABLED, PROMETHEUS_PORT, STRONGBOX_GROUPS])
        .any(|position| is_at(path, position))
}

/// The lowest value fiaas accepts at `path`, where it is below the schema's `minimum`.
fn lenient_minimum(path: &[&str]) -> Option<Option<i64>> {
    if is_at(path, &["replicas", "cpu_threshold_percentage"]) {
        // Below 1 is refused only with an autoscaler, which a schema cannot tell.
        return Some(None);
    }
    let probe_zero = PROBE_ZERO_DEFAULTS
        .iter()
        .any(|(field, _)| is_at(path, &["healthchecks", ANY, field]));
    probe_zero.then_some(Some(0))
}

fn structural<'a>(node: &'a Value, path: &mut Vec<&'a str>) -> Value {
    let mut out = Map::new();
    if let Some(description) = node.get("description") {
        out.insert("description".into(), description.clone());
    }
    let mut types: Vec<&str> = match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let enum_has_null = node
        .get("enum")
        .and_then(Value::as_array)
        .is_some_and(|values| values.contains(&Value::Null));
    if types.contains(&"null") || enum_has_null {
        out.insert("nullable".into(), Value::Bool(true));
    }
    types.retain(|t| *t != "null");
    if types.is_empty()
        && let Some(values) = node.get("enum").and_then(Value::as_array)
    {
        // `ports[].protocol`, the only enum: fiaas takes any text there (with a warning).
        if values.iter().all(|v| v.is_string() || v.is_null()) {
            types.push("string");
        }
    }
    let unchecked = |mut out: Map<String, Value>| {
        out.insert(
            "x-kubernetes-preserve-unknown-fields".into(),
            Value::Bool(true),
        );
        Value::Object(out)
    };
    if takes_any_value(path) {
        return unchecked(out);
    }
    if types.contains(&"object") || types.contains(&"array") {
        if let Some(children) = node.get("properties").and_then(Value::as_object) {
            let mut converted = Map::new();
            for (key, child) in children {
                path.push(key);
                converted.insert(key.clone(), structural(child, path));
                path.pop();
            }
            out.insert("properties".into(), Value::Object(converted));
        }
        for keyword in ["additionalProperties", "items"] {
            if let Some(child) = node.get(keyword).filter(|c| c.is_object()) {
                path.push(ANY);
                let mut converted = structural(child, path);
                path.pop();
                if is_at(path, &["extensions", "secrets", ANY, "parameters"]) {
                    // A null parameter is passed on without a value (with a warning).
                    converted["nullable"] = Value::Bool(true);
                }
                out.insert(keyword.into(), converted);
            }
        }
        if let Some(required) = node.get("required") {
            out.insert("required".into(), required.clone());
        }
        return unchecked(out);
    }
    match types.as_slice() {
        [single] => {
            out.insert("type".into(), Value::from(*single));
            for keyword in ["minimum", "maximum", "minLength"] {
                if let Some(bound) = node.get(keyword) {
                    out.insert(keyword.into(), bound.clone());
                }
            }
            if let Some(minimum) = lenient_minimum(path) {
                match minimum {
                    Some(m) => out.insert("minimum".into(), Value::from(m)),
                    None => out.remove("minimum"),
                };
            }
            Value::Object(out)
        }
        ["string", "integer"] | ["integer", "string"] => {
            out.insert("x-kubernetes-int-or-string".into(), Value::Bool(true));
            Value::Object(out)
        }
        _ => unchecked(out),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::crd_config_schema;

    const KEYWORDS: &[&str] = &[
        "type",
        "nullable",
        "description",
        "properties",
        "additionalProperties",
        "items",
        "required",
        "minimum",
        "maximum",
        "minLength",
        "enum",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
    ];

    /// The rules of a structural schema that the API server checks when a CRD is written.
    fn assert_structural(node: &Value, path: &str) {
        let map = node
            .as_object()
            .unwrap_or_else(|| panic!("{path}: not a schema"));
        for key in map.keys() {
            assert!(KEYWORDS.contains(&key.as_str()), "{path}: {key}");
        }
        let typed = map.get("type").and_then(Value::as_str).is_some();
        let open = map.contains_key("x-kubernetes-preserve-unknown-fields")
            || map.contains_key("x-kubernetes-int-or-string");
        assert!(typed || open, "{path}: neither a type nor open");
        assert!(
            !(map.contains_key("properties") && map.contains_key("additionalProperties")),
            "{path}: properties and additionalProperties"
        );
        for (key, child) in map
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            assert_structural(child, &format!("{path}.{key}"));
        }
        for keyword in ["additionalProperties", "items"] {
            if let Some(child) = map.get(keyword) {
                assert_structural(child, &format!("{path}.{keyword}"));
            }
        }
    }

    fn at<'a>(schema: &'a Value, path: &[&str]) -> &'a Value {
        path.iter().fold(schema, |node, key| match *key {
            "[]" => &node["items"],
            "{}" => &node["additionalProperties"],
            key => &node["properties"][key],
        })
    }

    #[test]
    fn the_schema_is_structural_and_sets_no_defaults() {
        let schema = crd_config_schema();
        assert_structural(&schema, "config");
        assert!(!schema.to_string().contains("\"default\""));
        assert_eq!(schema["required"], json!(["version"]));
        assert_eq!(at(&schema, &["version"])["enum"], json!([2, 3]));
    }

    #[test]
    fn values_are_typed_and_containers_open_for_v2_and_falsy_values() {
        let schema = crd_config_schema();
        assert_eq!(
            at(&schema, &["replicas", "minimum"]),
            &json!({"type": "integer", "nullable": true, "minimum": 0,
                "description": "Autoscaler lower bound; set equal to maximum for no autoscaling"})
        );
        for container in [
            &["replicas"][..],
            &["ports"],
            &["ports", "[]"],
            &["labels", "pod"],
            &["extensions", "tls"],
        ] {
            let node = at(&schema, container);
            assert!(node.get("type").is_none(), "{container:?}");
            assert_eq!(node["x-kubernetes-preserve-unknown-fields"], true);
        }
        assert_eq!(
            at(&schema, &["labels", "pod", "{}"])["type"],
            "string",
            "label values are texts"
        );
        assert_eq!(
            at(&schema, &["ports", "[]", "port"])["maximum"],
            65535,
            "port numbers are bounded"
        );
        assert_eq!(
            at(&schema, &["ingress", "[]", "paths", "[]", "port"])["x-kubernetes-int-or-string"],
            true
        );
    }

    #[test]
    fn what_fiaas_takes_with_a_warning_is_not_refused() {
        let schema = crd_config_schema();
        for any in [
            &["replicas", "singleton"][..],
            &["metrics", "prometheus", "enabled"],
            &["metrics", "prometheus", "port"],
            &["extensions", "tls", "enabled"],
            &["extensions", "strongbox", "groups"],
            &["resources", "limits", "cpu"],
        ] {
            let node = at(&schema, any);
            assert!(node.get("type").is_none(), "{any:?}: {node}");
            assert!(node.get("properties").is_none() && node.get("items").is_none());
        }
        let protocol = at(&schema, &["ports", "[]", "protocol"]);
        assert_eq!(protocol["type"], "string");
        assert!(protocol.get("enum").is_none());
        assert_eq!(
            at(&schema, &["healthchecks", "liveness", "timeout_seconds"])["minimum"],
            0
        );
        assert_eq!(
            at(
                &schema,
                &["healthchecks", "readiness", "initial_delay_seconds"]
            )["minimum"],
            0
        );
        assert!(
            at(&schema, &["replicas", "cpu_threshold_percentage"])
                .get("minimum")
                .is_none()
        );
        let parameter = at(
            &schema,
            &["extensions", "secrets", "{}", "parameters", "{}"],
        );
        assert_eq!(parameter["type"], "string");
        assert_eq!(parameter["nullable"], true);
    }
}
