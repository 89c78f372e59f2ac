//! The JSON Schema of the v3 format and where the formats expect booleans.

use std::sync::OnceLock;

use serde_json::Value;

use crate::Version;
use crate::error::Violation;

/// The JSON Schema (draft 2020-12) of a v3 fiaas.yml, for editors and for [`crate::validate`].
pub const V3_SCHEMA_JSON: &str = include_str!("../schema/fiaas-v3.schema.json");

/// Positions of a v3 document where a boolean is expected.
const V3_BOOLEANS: &[&[&str]] = &[
    &["replicas", "singleton"],
    &["metrics", "prometheus", "enabled"],
    &["metrics", "datadog", "enabled"],
    &["secrets_in_environment"],
    &["admin_access"],
    &["extensions", "tls"],
    &["extensions", "tls", "enabled"],
];

/// Positions of a v2 document where a boolean is expected.
const V2_BOOLEANS: &[&[&str]] = &[
    &["admin_access"],
    &["has_secrets"],
    &["autoscaler", "enabled"],
    &["prometheus", "enabled"],
    &["config", "volume"],
];

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let schema: Value =
            serde_json::from_str(V3_SCHEMA_JSON).expect("the embedded schema is valid JSON");
        jsonschema::validator_for(&schema).expect("the embedded schema is a valid JSON Schema")
    })
}

/// Whether a (merged) v3 document is valid, much cheaper than collecting its violations.
pub(crate) fn is_valid(document: &Value) -> bool {
    validator().is_valid(document)
}

/// Every schema violation of a (merged) v3 document.
pub(crate) fn violations(document: &Value) -> Vec<Violation> {
    // Most documents are valid.
    if is_valid(document) {
        return Vec::new();
    }
    validator()
        .iter_errors(document)
        .map(|e| Violation::new(dotted_path(e.instance_path().as_str()), e.to_string()))
        .collect()
}

/// `/ingress/0/paths/1/port` → `ingress[0].paths[1].port`.
pub(crate) fn dotted_path(pointer: &str) -> String {
    let mut out = String::new();
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(&segment);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&segment);
        }
    }
    out
}

/// Where a document of `version` expects a boolean, so that a plain `yes` there is read as
/// PyYAML read it.
pub(crate) fn boolean_positions(version: Version) -> &'static [&'static [&'static str]] {
    match version {
        Version::V3 => V3_BOOLEANS,
        Version::V2 => V2_BOOLEANS,
    }
}

/// Integral floats (`3.0`) become integers, as Python compared and used them, except in the
/// free-form Datadog tags whose values are rendered as written.
pub(crate) fn integral_floats_to_ints(value: &mut Value, in_tags: bool) {
    match value {
        Value::Number(n) if !in_tags => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < 9e15)
            {
                *value = Value::from(f as i64);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| integral_floats_to_ints(v, in_tags)),
        Value::Object(map) => map
            .iter_mut()
            .for_each(|(k, v)| integral_floats_to_ints(v, in_tags || k == "tags")),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_dotted_paths() {
        assert_eq!(
            dotted_path("/ingress/0/paths/1/port"),
            "ingress[0].paths[1].port"
        );
        assert_eq!(dotted_path("/labels/pod/a~1b"), "labels.pod.a/b");
        assert_eq!(dotted_path(""), "");
    }
}
