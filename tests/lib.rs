//! Shared helpers of the cross-crate tests: where the fixtures are, and how upstream's test
//! suite compared values.

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

/// Equality as upstream's tests saw it: Python `==`, where `1 == 1.0 == True`.
pub fn python_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| python_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| python_eq(v, w)))
        }
        _ => match (as_number(a), as_number(b)) {
            (Some(p), Some(q)) => p == q,
            _ => a == b,
        },
    }
}

fn as_number(value: &Value) -> Option<f64> {
    match value {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}
