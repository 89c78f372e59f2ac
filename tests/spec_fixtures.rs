//! One test per upstream spec fixture (`tests/fixtures/specs/**.yml`), each checking what the
//! upstream's own tests assert for that file.

use std::collections::BTreeMap;

use fiaas_spec::python;
use fiaas_spec::{AdditionalLabelsOrAnnotations, AppFacts, AppSpec, CheckAction, CheckSpec};
use fiaas_tests::{load_yaml, read_fixture, yaml_files};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Value, json};

/// Inputs upstream never reads, or keeps only as negative examples, and why they must fail.
const REJECTED: &[(&str, &str, &str)] = &[
    ("specs/data/invalid.yml", "", "not valid YAML"),
    (
        "specs/v2/data/examples/no_health_check_defined.yml",
        "healthchecks",
        "Must specify health check when more than one ports defined",
    ),
    (
        "specs/v2/data/examples/ports_empty_list.yml",
        "",
        "Index 0 out of bounds",
    ),
    (
        "specs/v3/data/examples/invalid_ingress_port_name.yml",
        "ingress[0].paths[0].port",
        "gopher is not a valid port name or port number",
    ),
    (
        "specs/v3/data/examples/invalid_ingress_port_number.yml",
        "ingress[0].paths[0].port",
        "1337 is not a valid port name or port number",
    ),
    (
        "specs/v3/data/examples/invalid_no_health_check_defined_http.yml",
        "healthchecks.liveness",
        "Must specify liveness check or exactly one port",
    ),
    (
        "specs/v3/data/examples/invalid_no_health_check_defined_tcp.yml",
        "healthchecks.liveness",
        "Must specify liveness check or exactly one port",
    ),
];

/// Where upstream's loader finds the input of a transformation fixture (upstream `tests/fiaas_deploy_daemon/conftest.py`).
fn v2_input_of(name: &str) -> String {
    if name == "v2minimal" {
        "specs/data/v2minimal.yml".to_owned()
    } else {
        format!("specs/v2/data/examples/{name}.yml")
    }
}

fn stem(path: &str) -> &str {
    path.rsplit('/')
        .next()
        .unwrap_or(path)
        .trim_end_matches(".yml")
}

fn factory_facts() -> AppFacts {
    AppFacts {
        name: "application-name".into(),
        namespace: "namespace-value".into(),
        image: "finntech/docker-image:some-version".into(),
        deployment_id: "deployment_id".into(),
        uid: Some("23840085-8ab6-11ea-b4f9-02a852666faa".into()),
        ..AppFacts::default()
    }
}

fn check_transformation(fixture: &str, strip: bool) -> Result<(), Failed> {
    let input = load_yaml(&v2_input_of(stem(fixture)));
    let expected = load_yaml(fixture);
    let actual = fiaas_spec::to_v3(&input, strip).map_err(|e| format!("migration failed: {e}"))?;
    if python::eq(&actual, &expected) {
        Ok(())
    } else {
        Err(format!(
            "migrated document differs\nexpected: {}\nactual:   {}",
            serde_json::to_string_pretty(&expected).unwrap_or_default(),
            serde_json::to_string_pretty(&actual).unwrap_or_default()
        )
        .into())
    }
}

fn check_rejected(fixture: &str, path: &str, reason: &str) -> Result<(), Failed> {
    let error = match fiaas_spec::load(&read_fixture(fixture), &factory_facts()) {
        Ok(_) => return Err("accepted, but upstream rejects it".into()),
        Err(e) => e,
    };
    let hit = error
        .violations()
        .iter()
        .any(|v| v.path == path && v.reason.contains(reason));
    if hit {
        Ok(())
    } else {
        Err(format!("rejected, but not at `{path}` for `{reason}`: {error}").into())
    }
}

fn check_builds(fixture: &str) -> Result<AppSpec, Failed> {
    fiaas_spec::load(&read_fixture(fixture), &factory_facts())
        .map_err(|e| format!("rejected: {e}").into())
}

/// The AppSpec in the shape of upstream's namedtuples, so upstream's attribute paths apply.
fn upstream_view(app: &AppSpec) -> Value {
    fn check(c: &CheckSpec) -> Value {
        let (execute, http, tcp) = match &c.action {
            CheckAction::Execute { command } => {
                (json!({"command": command}), Value::Null, Value::Null)
            }
            CheckAction::Http {
                path,
                port,
                http_headers,
            } => (
                Value::Null,
                json!({"path": path, "port": port, "http_headers": http_headers.iter().cloned().collect::<BTreeMap<_, _>>()}),
                Value::Null,
            ),
            CheckAction::Tcp { port } => (Value::Null, Value::Null, json!({"port": port})),
        };
        json!({
            "execute": execute, "http": http, "tcp": tcp,
            "initial_delay_seconds": c.initial_delay_seconds, "period_seconds": c.period_seconds,
            "success_threshold": c.success_threshold, "failure_threshold": c.failure_threshold,
            "timeout_seconds": c.timeout_seconds,
        })
    }
    let mut view = serde_json::to_value(app).unwrap_or_default();
    view["health_checks"] = json!({
        "liveness": check(&app.health_checks.liveness),
        "readiness": check(&app.health_checks.readiness),
    });
    view["secrets"] = Value::Array(
        app.secrets
            .iter()
            .map(|s| {
                json!({
                    "type": s.secret_type,
                    "parameters": s.parameters.iter().cloned().collect::<BTreeMap<_, _>>(),
                    "annotations": s.annotations,
                })
            })
            .collect(),
    );
    view
}

/// Follow an upstream attribute path such as `ingresses[0].pathmappings[1].port`.
fn attribute<'a>(view: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = view;
    for part in path.split('.') {
        let (name, indices) = part
            .split_once('[')
            .map_or((part, ""), |(n, rest)| (n, rest));
        current = current.get(name)?;
        for index in indices.split('[').filter(|s| !s.is_empty()) {
            current = current.get(index.trim_end_matches(']').parse::<usize>().ok()?)?;
        }
    }
    Some(current)
}

/// Upstream compared scalars with Python `==`; a quantity written `2` is our `"2"`.
fn same(expected: &Value, actual: &Value) -> bool {
    python::eq(expected, actual)
        || matches!((expected, actual), (Value::Number(n), Value::String(s)) if n.to_string() == *s)
}

fn check_attributes(
    app: &AppSpec,
    attributes: &serde_json::Map<String, Value>,
) -> Result<(), Failed> {
    let view = upstream_view(app);
    let mut wrong = Vec::new();
    for (path, expected) in attributes {
        let actual = attribute(&view, path).cloned().unwrap_or(Value::Null);
        if !same(expected, &actual) {
            wrong.push(format!("{path}: expected {expected}, got {actual}"));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n").into())
    }
}

fn additional(value: &Value) -> AdditionalLabelsOrAnnotations {
    serde_json::from_value(value.clone()).unwrap_or_default()
}

fn check_v3_example(fixture: &str, expectations: &Value) -> Result<(), Failed> {
    let name = stem(fixture);
    let app = check_builds(fixture)?;
    if let Some(attributes) = expectations["attributes"][name].as_object() {
        check_attributes(&app, attributes)?;
    }
    let extra = &expectations["additional"];
    for case in extra["expectations"].as_array().into_iter().flatten() {
        if case[0] != name {
            continue;
        }
        let facts = AppFacts {
            additional_labels: Some(additional(&extra["labels"])),
            additional_annotations: Some(additional(&extra["annotations"])),
            ..factory_facts()
        };
        let app = fiaas_spec::load(&read_fixture(fixture), &facts).map_err(|e| e.to_string())?;
        let mut attributes = serde_json::Map::new();
        attributes.insert(
            case[1].as_str().unwrap_or_default().to_owned(),
            case[2].clone(),
        );
        check_attributes(&app, &attributes)?;
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let expectations: Value =
        serde_json::from_str(&read_fixture("specs/v3/factory_expectations.json"))
            .unwrap_or_default();
    let mut trials = Vec::new();
    for fixture in yaml_files("specs") {
        let f = fixture.clone();
        let test: Box<dyn FnOnce() -> Result<(), Failed> + Send> =
            if let Some((_, path, reason)) = REJECTED.iter().find(|(p, _, _)| *p == fixture) {
                Box::new(move || check_rejected(&f, path, reason))
            } else if fixture.contains("/transformations/strip_defaults/") {
                Box::new(move || check_transformation(&f, true))
            } else if fixture.contains("/transformations/") {
                Box::new(move || check_transformation(&f, false))
            } else if fixture.starts_with("specs/v3/") {
                let e = expectations.clone();
                Box::new(move || check_v3_example(&f, &e))
            } else {
                Box::new(move || check_builds(&f).map(|_| ()))
            };
        trials.push(Trial::test(fixture, test));
    }
    libtest_mimic::run(&args, trials).exit();
}
