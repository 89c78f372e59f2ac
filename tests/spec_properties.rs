//! Generated and mutated fiaas.yml documents (10,000 of each kind per run): reading never
//! panics, whatever is accepted builds a consistent AppSpec, and the published JSON Schema
//! accepts every v3 document the reader accepts.

use fiaas_spec::{AppFacts, AppSpec, CheckAction, Protocol};
use fiaas_tests::{read_fixture, yaml_files};
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value};

fn seeds() -> &'static [Value] {
    static SEEDS: OnceLock<Vec<Value>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        yaml_files("specs")
            .iter()
            .filter_map(|f| fiaas_spec::parse_document(&read_fixture(f)).ok())
            .collect()
    })
}

fn facts() -> AppFacts {
    AppFacts {
        name: "prop".into(),
        namespace: "ns".into(),
        image: "img:1".into(),
        deployment_id: "d".into(),
        ..AppFacts::default()
    }
}

const KEYS: &[&str] = &[
    "version",
    "replicas",
    "minimum",
    "maximum",
    "singleton",
    "ingress",
    "host",
    "paths",
    "path",
    "port",
    "annotations",
    "healthchecks",
    "liveness",
    "readiness",
    "http",
    "tcp",
    "execute",
    "command",
    "resources",
    "limits",
    "requests",
    "cpu",
    "memory",
    "metrics",
    "prometheus",
    "datadog",
    "tags",
    "enabled",
    "ports",
    "protocol",
    "name",
    "target_port",
    "labels",
    "pod",
    "extensions",
    "tls",
    "strongbox",
    "groups",
    "secrets",
    "parameters",
    "admin_access",
    "autoscaler",
    "min_replicas",
    "http_headers",
    "initial_delay_seconds",
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..70000).prop_map(Value::from),
        (-1.0e3f64..1.0e3).prop_map(Value::from),
        prop::sample::select(vec![
            "", "http", "tcp", "a", "80", "/x", "yes", "1.5", "200m"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Replace, delete or add something at a random place of the document.
fn mutate(doc: &mut Value, path: &[usize], replacement: Value, key: &str, delete: bool) {
    let Some((step, rest)) = path.split_first() else {
        *doc = replacement;
        return;
    };
    match doc {
        Value::Object(map) if !map.is_empty() => {
            let k = map
                .keys()
                .nth(step % map.len())
                .cloned()
                .unwrap_or_default();
            if rest.is_empty() && delete {
                map.remove(&k);
            } else if let Some(child) = map.get_mut(&k) {
                mutate(child, rest, replacement, key, delete);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let i = step % items.len();
            mutate(&mut items[i], rest, replacement, key, delete);
        }
        Value::Object(map) => {
            map.insert(key.to_owned(), replacement);
        }
        other => *other = replacement,
    }
}

fn check_consistent(app: &AppSpec) {
    assert!(app.autoscaler.min_replicas <= app.autoscaler.max_replicas);
    assert_eq!(
        app.autoscaler.enabled,
        app.autoscaler.min_replicas != app.autoscaler.max_replicas
    );
    let http_ports: Vec<i32> = app
        .ports
        .iter()
        .filter(|p| p.protocol == Protocol::Http)
        .map(|p| p.port)
        .collect();
    for item in &app.ingresses {
        for mapping in &item.pathmappings {
            assert!(
                http_ports.contains(&mapping.port),
                "ingress port {} is not an http port",
                mapping.port
            );
        }
    }
    for check in [&app.health_checks.liveness, &app.health_checks.readiness] {
        if let CheckAction::Http {
            port: fiaas_spec::PortRef::Name(name),
            ..
        }
        | CheckAction::Tcp {
            port: fiaas_spec::PortRef::Name(name),
        } = &check.action
        {
            assert!(!name.is_empty() || app.ports.iter().any(|p| p.name.is_empty()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_documents_never_panic_and_accepted_ones_are_consistent(
        seed in 0usize..1000,
        path in prop::collection::vec(0usize..16, 1..5),
        replacement in value(),
        key in prop::sample::select(KEYS),
        delete in any::<bool>(),
    ) {
        let seeds = seeds();
        let mut doc = seeds[seed % seeds.len()].clone();
        // Upstream reads a falsy value where a mapping belongs as "use the defaults"; the schema
        // describes the documents people should write, so only truthy replacements are held to it.
        let upstream_compat_only = contains_falsy(&replacement) || has_yaml11_words(&replacement);
        mutate(&mut doc, &path, replacement, key, delete);
        let text = fiaas_spec::to_yaml(&doc);
        match fiaas_spec::load(&text, &facts()) {
            Ok(app) => {
                check_consistent(&app);
                if fiaas_spec::version_of(&doc) == Ok(fiaas_spec::Version::V3) {
                    let reread = fiaas_spec::parse_document(&text).expect("accepted text parses");
                    let violations = fiaas_spec::schema_violations(&reread);
                    // What upstream deploys is read as upstream reads it, with a warning.
                    let warned: Vec<String> =
                        fiaas_spec::warnings(&reread).into_iter().map(|w| w.path).collect();
                    let only_warned = violations.iter().all(|v| warned.contains(&v.path));
                    prop_assert!(violations.is_empty() || upstream_compat_only || has_yaml11_words(&reread) || only_warned,
                        "the reader accepts what the schema rejects: {violations:?}");
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(version: [23]\n)?[ -~\n\t:{}\\[\\]&*!|>'\"#-]{0,300}") {
        let _ = fiaas_spec::load(&text, &facts());
    }
}

/// Whether a falsy value other than null (`false`, `0`, `""`, `[]`, `{}`) occurs anywhere.
fn contains_falsy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => !*b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f == 0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty() || a.iter().any(contains_falsy),
        Value::Object(o) => o.is_empty() || o.values().any(contains_falsy),
    }
}

/// PyYAML's `yes`/`no`/`on`/`off` are read as booleans where booleans are expected; the schema,
/// describing YAML 1.2 documents for editors, sees strings there.
fn has_yaml11_words(doc: &Value) -> bool {
    match doc {
        Value::String(s) => matches!(s.as_str(), "yes" | "no" | "on" | "off"),
        Value::Array(a) => a.iter().any(has_yaml11_words),
        Value::Object(o) => o.values().any(has_yaml11_words),
        _ => false,
    }
}
