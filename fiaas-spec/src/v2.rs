//! Migration of a v2 fiaas.yml to v3, as upstream's v2 transformer does it.

use serde_json::{Map, Value, json};

use crate::defaults;
use crate::error::{SpecError, Violation};
use crate::lookup::{ListLookup, LookupError, MapLookup, Node};
use crate::python::{self, truthy, truthy_opt};

const CHECK_KINDS: [&str; 3] = ["execute", "http", "tcp"];

fn failed(e: LookupError) -> SpecError {
    SpecError::Invalid(vec![Violation::new(
        "",
        format!("Failed to parse configuration: {}", e.0),
    )])
}

fn invalid(path: &str, reason: &str) -> SpecError {
    SpecError::Invalid(vec![Violation::new(path, reason)])
}

fn map<'a>(node: Node<'a>) -> Result<MapLookup<'a>, LookupError> {
    match node {
        Node::Map(m) => Ok(m),
        _ => Err(LookupError("expected a mapping".to_owned())),
    }
}

fn list<'a>(node: Node<'a>) -> Result<ListLookup<'a>, LookupError> {
    match node {
        Node::List(l) => Ok(l),
        _ => Err(LookupError("expected a list".to_owned())),
    }
}

fn scalar(node: Node<'_>) -> Result<Value, LookupError> {
    node.materialise()
}

/// The v3 document upstream's transformer makes of a v2 one.
///
/// Resource values the v2 file leaves unset come out as `null`: they mean "no value" (not the
/// v3 default) to [`crate::AppSpec`] building.
pub fn migrate(config: &Value) -> Result<Value, SpecError> {
    let defaults = defaults::v2();
    let top = MapLookup::new(Some(config), defaults).map_err(failed)?;
    let healthchecks = top.get("healthchecks").and_then(map).map_err(failed)?;
    let ports = top.get("ports").and_then(list).map_err(failed)?;

    let liveness = health_check(
        healthchecks.get("liveness").and_then(map).map_err(failed)?,
        &ports,
    )?;
    let readiness = if !truthy_opt(healthchecks.config_value("readiness"))
        && truthy_opt(healthchecks.config_value("liveness"))
    {
        liveness.clone()
    } else {
        health_check(
            healthchecks
                .get("readiness")
                .and_then(map)
                .map_err(failed)?,
            &ports,
        )?
    };

    let autoscaler = top.get("autoscaler").and_then(map).map_err(failed)?;
    let replicas = top.get("replicas").and_then(scalar).map_err(failed)?;
    let mut minimum = replicas.clone();
    if truthy(&autoscaler.get("enabled").and_then(scalar).map_err(failed)?) {
        minimum = autoscaler
            .get("min_replicas")
            .and_then(scalar)
            .map_err(failed)?;
    }
    let cpu_threshold = autoscaler
        .get("cpu_threshold_percentage")
        .and_then(scalar)
        .map_err(failed)?;

    let mut out = Map::new();
    out.insert("version".into(), json!(3));
    out.insert(
        "replicas".into(),
        json!({"minimum": minimum, "maximum": replicas, "cpu_threshold_percentage": cpu_threshold}),
    );
    out.insert(
        "healthchecks".into(),
        json!({"liveness": liveness, "readiness": readiness}),
    );
    let prometheus = top
        .get("prometheus")
        .map_err(failed)?
        .materialise()
        .map_err(failed)?;
    out.insert("metrics".into(), json!({ "prometheus": prometheus }));
    out.insert(
        "admin_access".into(),
        top.get("admin_access").and_then(scalar).map_err(failed)?,
    );
    let resources = top.get("resources").and_then(map).map_err(failed)?;
    let mut resources_out = Map::new();
    for requirement in ["limits", "requests"] {
        let side = resources.get(requirement).and_then(map).map_err(failed)?;
        let mut side_out = Map::new();
        for resource in ["cpu", "memory"] {
            side_out.insert(
                resource.into(),
                side.config_value(resource).cloned().unwrap_or(Value::Null),
            );
        }
        resources_out.insert(requirement.into(), Value::Object(side_out));
    }
    out.insert("resources".into(), Value::Object(resources_out));

    let host = top.get("host").and_then(scalar).map_err(failed)?;
    let mut paths = Vec::new();
    let mut ports_out = Vec::new();
    for i in 0..ports.len().map_err(failed)? {
        let port = ports.get(i).and_then(map).map_err(failed)?;
        let field = |k: &str| port.get(k).and_then(scalar).map_err(failed);
        if field("protocol")? == "http" {
            paths.push(json!({"path": field("path")?, "port": field("name")?}));
        }
        ports_out.push(json!({
            "protocol": field("protocol")?,
            "name": field("name")?,
            "port": field("port")?,
            "target_port": field("target_port")?,
        }));
    }
    let ingress = if paths.is_empty() {
        json!([])
    } else {
        json!([{"host": host, "paths": paths}])
    };
    out.insert("ingress".into(), ingress);
    out.insert("ports".into(), Value::Array(ports_out));
    Ok(Value::Object(out))
}

fn health_check(check: MapLookup<'_>, ports: &ListLookup<'_>) -> Result<Value, SpecError> {
    let mut out = Map::new();
    for key in check.keys().map_err(failed)? {
        if !CHECK_KINDS.contains(&key.as_str()) {
            let value = check
                .get(&key)
                .map_err(failed)?
                .materialise()
                .map_err(failed)?;
            out.insert(key, value);
        }
    }
    for kind in CHECK_KINDS {
        if truthy_opt(check.config_value(kind)) {
            let value = check
                .get(kind)
                .map_err(failed)?
                .materialise()
                .map_err(failed)?;
            out.insert(kind.into(), value);
            return Ok(Value::Object(out));
        }
    }
    if ports.len().map_err(failed)? > 1 {
        return Err(invalid(
            "healthchecks",
            "Must specify health check when more than one ports defined",
        ));
    }
    let first = ports.get(0).and_then(map).map_err(failed)?;
    let field = |k: &str| first.get(k).and_then(scalar).map_err(failed);
    let protocol = field("protocol")?;
    if protocol == "http" {
        out.insert(
            "http".into(),
            json!({"path": field("path")?, "port": field("name")?}),
        );
    } else if protocol == "tcp" {
        out.insert("tcp".into(), json!({"port": field("name")?}));
    }
    Ok(Value::Object(out))
}

/// The migrated document with everything equal to a v3 default removed, as `POST /transform`
/// returns it.
pub fn strip_defaults(migrated: &Value) -> Value {
    let Value::Object(mut doc) = migrated.clone() else {
        return migrated.clone();
    };
    if let Some(Value::Object(resources)) = doc.get_mut("resources") {
        for side in resources.values_mut() {
            if let Value::Object(side) = side {
                side.retain(|_, v| !v.is_null());
            }
        }
    }
    let version = doc.get("version").cloned().unwrap_or(json!(3));
    let Value::Object(defaults) = defaults::v3_file().clone() else {
        return Value::Object(doc);
    };
    remove_intersect(&mut doc, &defaults);
    let mut out = Map::new();
    out.insert("version".into(), version);
    out.extend(doc);
    Value::Object(out)
}

fn single_map_list(value: &Value) -> bool {
    matches!(value, Value::Array(a) if a.len() == 1 && a[0].is_object())
}

fn remove_intersect(doc: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    doc.retain(|k, v| !defaults.get(k).is_some_and(|d| python::eq(d, v)));
    for (key, default) in defaults {
        let Some(value) = doc.get_mut(key) else {
            continue;
        };
        match (value, default) {
            (Value::Object(inner), Value::Object(d)) => remove_intersect(inner, d),
            (value @ Value::Array(_), Value::Array(d))
                if single_map_list(value) && single_map_list(default) =>
            {
                let mut kept = Vec::new();
                if let (Value::Array(items), Some(Value::Object(d0))) = (&*value, d.first()) {
                    for item in items {
                        if let Value::Object(item) = item {
                            let mut item = item.clone();
                            remove_intersect(&mut item, d0);
                            if !item.is_empty() {
                                kept.push(Value::Object(item));
                            }
                        }
                    }
                }
                *value = Value::Array(kept);
            }
            _ => {}
        }
    }
    doc.retain(|_, v| truthy(v));
}
