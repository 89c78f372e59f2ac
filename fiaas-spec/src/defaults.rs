//! The upstream's defaults documents, embedded as data.

use std::sync::OnceLock;

use serde_json::Value;

/// The v2 defaults file, byte for byte as upstream serves it.
pub const V2_DEFAULTS_YAML: &str = include_str!("../defaults/v2-defaults.yml");
/// The v3 defaults file, byte for byte as upstream serves it (`GET /defaults`).
pub const V3_DEFAULTS_YAML: &str = include_str!("../defaults/v3-defaults.yml");

fn load(text: &str) -> Value {
    // Embedded, known-good data: a failure here is a build defect caught by the tests below.
    crate::yaml::parse(text).expect("embedded defaults are valid YAML")
}

/// The v2 defaults as data.
pub(crate) fn v2() -> &'static Value {
    static V2: OnceLock<Value> = OnceLock::new();
    V2.get_or_init(|| load(V2_DEFAULTS_YAML))
}

/// The v3 defaults exactly as the file says.
pub(crate) fn v3_file() -> &'static Value {
    static V3: OnceLock<Value> = OnceLock::new();
    V3.get_or_init(|| load(V3_DEFAULTS_YAML))
}

/// The v3 defaults as upstream's factory applies them: `extensions.tls.enabled` is unset
/// (tri-state `None`), not the file's `false`, so the cluster's TLS mode decides.
pub(crate) fn v3_effective() -> &'static Value {
    static V3: OnceLock<Value> = OnceLock::new();
    V3.get_or_init(|| {
        let mut defaults = load(V3_DEFAULTS_YAML);
        if let Some(tls) = defaults.pointer_mut("/extensions/tls/enabled") {
            *tls = Value::Null;
        }
        defaults
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_defaults_parse() {
        assert_eq!(super::v2()["version"], 2);
        assert_eq!(super::v3_file()["version"], 3);
        assert!(super::v3_effective()["extensions"]["tls"]["enabled"].is_null());
    }
}
