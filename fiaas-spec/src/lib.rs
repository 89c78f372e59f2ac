//! fiaas.yml parsing, defaults, validation and v2→v3 migration, exactly as the Python
//! fiaas-deploy-daemon reads them.
//!
//! ```
//! use fiaas_spec::{AppFacts, load};
//!
//! let facts = AppFacts {
//!     name: "hello".into(),
//!     namespace: "default".into(),
//!     image: "example/hello:1.0".into(),
//!     deployment_id: "1".into(),
//!     ..AppFacts::default()
//! };
//! let app = load("version: 3\nreplicas: {minimum: 1, maximum: 1}\n", &facts).unwrap();
//! assert_eq!(app.autoscaler.max_replicas, 1);
//! ```
//!
//! Reading goes: YAML (size-, alias- and depth-limited, plain YAML 1.1 booleans where a boolean
//! is expected) → version dispatch (v2 is migrated first) → defaults laid under the document →
//! JSON Schema validation → the semantic rules a schema cannot say → [`AppSpec`]. Every problem
//! is reported at once, each with its path in the document.

mod block_yaml;
mod crd_schema;
mod defaults;
mod error;
mod lookup;
mod model;
pub mod python;
mod schema;
mod v2;
mod v3;
mod yaml;

use std::borrow::Cow;

use serde_json::Value;

pub use crd_schema::crd_config_schema;
pub use defaults::{V2_DEFAULTS_YAML, V3_DEFAULTS_YAML};
pub use error::{SpecError, Violation};
pub use model::*;
pub use schema::V3_SCHEMA_JSON;
pub use yaml::{MAX_DOCUMENT_BYTES, parse_pyyaml, to_string as to_yaml};

/// The fiaas.yml format versions fiaas reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// Version 2, migrated to 3 on reading.
    V2,
    /// Version 3.
    V3,
}

/// Parse fiaas.yml text into a document (a YAML mapping), within the hostile-input limits.
///
/// Where the document's version expects a boolean, a plain YAML 1.1 boolean word (`yes`, `Off`)
/// is a boolean, as PyYAML read it; quoted, or anywhere else, it stays text. The same holds for
/// the fiaas.yml in the `spec.config` of an Application resource.
pub fn parse_document(text: &str) -> Result<Value, SpecError> {
    let mut value = yaml::parse(text)?;
    // An Application resource (what `fiaas render` also reads) holds the fiaas.yml in spec.config.
    let within: &[&str] = if value.get("kind").and_then(Value::as_str) == Some("Application") {
        &["spec", "config"]
    } else {
        &[]
    };
    if let Some(version) = lookup::at(&value, within).and_then(|c| version_of(c).ok()) {
        yaml::read_plain_booleans(text, &mut value, within, schema::boolean_positions(version));
    }
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Err(SpecError::NotAMapping("an empty document".into())),
        Value::Array(_) => Err(SpecError::NotAMapping("a list".into())),
        other => Err(SpecError::NotAMapping(format!("the scalar {other}"))),
    }
}

/// The version a document declares, as upstream reads it (absent = 1, `3.0` = 3).
pub fn version_of(document: &Value) -> Result<Version, SpecError> {
    let declared = document.get("version");
    let number = declared.and_then(|v| if v.is_number() { v.as_f64() } else { None });
    match number {
        Some(3.0) => Ok(Version::V3),
        Some(2.0) => Ok(Version::V2),
        _ => Err(SpecError::UnsupportedVersion {
            found: version_label(document),
        }),
    }
}

/// The `version` as upstream prints it in messages and metrics (`1` when absent).
pub fn version_label(document: &Value) -> String {
    match document.get("version") {
        None => "1".to_owned(),
        Some(v) => python::str(v),
    }
}

/// The v3 form of a document: a v3 document as it is, a v2 document migrated.
///
/// With `strip_defaults`, a migrated document loses every value equal to its v3 default, as the
/// upstream's `POST /transform` returns it.
pub fn to_v3(document: &Value, strip_defaults: bool) -> Result<Value, SpecError> {
    match version_of(document)? {
        Version::V3 => Ok(document.clone()),
        Version::V2 => {
            let migrated = v2::migrate(document)?;
            Ok(if strip_defaults {
                v2::strip_defaults(&migrated)
            } else {
                migrated
            })
        }
    }
}

/// Build the [`AppSpec`] of a parsed document and the Application's facts.
pub fn from_document(document: &Value, facts: &AppFacts) -> Result<AppSpec, SpecError> {
    build(Cow::Borrowed(document), facts)
}

/// Parse fiaas.yml text and build its [`AppSpec`].
pub fn load(text: &str, facts: &AppFacts) -> Result<AppSpec, SpecError> {
    build(Cow::Owned(parse_document(text)?), facts)
}

/// [`from_document`], taking over the document when it is ours: the AppSpec keeps it.
fn build(document: Cow<'_, Value>, facts: &AppFacts) -> Result<AppSpec, SpecError> {
    match version_of(&document)? {
        Version::V3 => v3::build(document.into_owned(), facts, v3::Origin::V3),
        Version::V2 => v3::build(to_v3(&document, false)?, facts, v3::Origin::MigratedV2),
    }
}

/// Check fiaas.yml text; `Ok` when an [`AppSpec`] can be built from it.
pub fn validate(text: &str) -> Result<(), SpecError> {
    let facts = AppFacts {
        name: "app".into(),
        namespace: "default".into(),
        image: "app:latest".into(),
        deployment_id: "validate".into(),
        ..AppFacts::default()
    };
    load(text, &facts).map(|_| ())
}

/// Values of a v3 document that its schema refuses but the Python daemon reads and deploys, each
/// with how it is read: non-booleans where a boolean belongs (`singleton: "false"`), a port
/// `protocol: TCP`, a probe's `timeout_seconds: 0`, `cpu_threshold_percentage: 0` without an
/// autoscaler, `metrics.prometheus.port: true`, a text `extensions.strongbox.groups`, a null
/// secret parameter.
///
/// They are accepted, so that what upstream deployed still deploys, but [`schema_violations`]
/// reports them: worth a warning (`fiaas validate` prints them, `--strict` rejects them). Empty
/// for other versions.
pub fn warnings(document: &Value) -> Vec<Violation> {
    match version_of(document) {
        Ok(Version::V3) => v3::warnings(document),
        _ => Vec::new(),
    }
}

/// Check a v3 document, as written, against [`V3_SCHEMA_JSON`] alone (what an editor sees).
pub fn schema_violations(document: &Value) -> Vec<Violation> {
    schema::violations(document)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> AppFacts {
        AppFacts {
            name: "app".into(),
            namespace: "ns".into(),
            image: "repo/app:v1".into(),
            deployment_id: "d1".into(),
            ..AppFacts::default()
        }
    }

    fn app(text: &str) -> AppSpec {
        load(text, &facts()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn violations(text: &str) -> Vec<Violation> {
        load(text, &facts())
            .expect_err("must be rejected")
            .violations()
    }

    #[test]
    fn versions_are_dispatched_as_upstream_does() {
        let found = |text: &str| match load(text, &facts()) {
            Err(SpecError::UnsupportedVersion { found }) => found,
            other => panic!("expected a version error, got {other:?}"),
        };
        assert_eq!(found("replicas: {}"), "1");
        assert_eq!(found("version: null"), "None");
        assert_eq!(found("version: '3'"), "3");
        assert_eq!(found("version: true"), "True");
        assert_eq!(found("version: 1"), "1");
        assert!(load("version: 3.0", &facts()).is_ok());
        assert!(load("version: 2.0", &facts()).is_ok());
        let message = load("version: 4", &facts()).unwrap_err().to_string();
        assert_eq!(
            message,
            "Requested version 4, but the only supported versions are: [3, 2]"
        );
    }

    #[test]
    fn every_violation_is_reported_with_its_path() {
        let found = violations(
            "version: 3\nreplicas: {minimum: two}\nports: [{port: 99999}]\nlabels: {pod: {a: [1]}}\n",
        );
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert!(paths.contains(&"replicas.minimum"), "{found:?}");
        assert!(paths.contains(&"ports[0].port"), "{found:?}");
        assert!(paths.contains(&"labels.pod.a"), "{found:?}");
    }

    #[test]
    fn semantic_rules_report_every_path() {
        let found = violations(
            "version: 3\nports: [{name: a}, {name: b}]\ningress: [{paths: [{port: x}, {port: 81}]}]\n",
        );
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "healthchecks.liveness",
                "healthchecks.readiness",
                "ingress[0].paths[0].port",
                "ingress[0].paths[1].port"
            ]
        );
    }

    #[test]
    fn yaml_1_1_booleans_are_read_where_booleans_belong() {
        let spec = app(
            "version: 3\nadmin_access: yes\nreplicas: {singleton: Off}\nlabels: {pod: {x: 'yes'}}\n",
        );
        assert!(spec.admin_access);
        assert!(!spec.singleton);
        assert_eq!(spec.labels.pod["x"], "yes");
    }

    #[test]
    fn only_plain_boolean_words_are_booleans() {
        let document =
            parse_document("version: 3\nadmin_access: Off\nsecrets_in_environment: 'no'\n")
                .unwrap();
        assert_eq!(document["admin_access"], false);
        assert_eq!(document["secrets_in_environment"], "no");
        let v2 = parse_document(
            "version: 2\nautoscaler: {enabled: \"yes\"}\nprometheus: {enabled: NO}\n",
        )
        .unwrap();
        assert_eq!(v2["autoscaler"]["enabled"], "yes");
        assert_eq!(v2["prometheus"]["enabled"], false);
        let application = parse_document(
            "kind: Application\nspec: {config: {version: 3, admin_access: yes, \
             replicas: {singleton: 'off'}}}\n",
        )
        .unwrap();
        assert_eq!(application["spec"]["config"]["admin_access"], true);
        assert_eq!(
            application["spec"]["config"]["replicas"]["singleton"],
            "off"
        );
    }

    #[test]
    fn non_boolean_values_are_tested_per_field_like_upstream() {
        let spec = app(
            "version: 3\nreplicas: {minimum: 1, maximum: 1, singleton: \"false\"}\n\
             secrets_in_environment: 0\nmetrics: {datadog: {enabled: \"no\"}, \
             prometheus: {enabled: \"No\"}}\nextensions: {tls: {enabled: \"true\"}}\n",
        );
        // Python truthiness: any non-empty text is true, 0 is false.
        assert!(spec.singleton);
        assert!(!spec.secrets_in_environment);
        assert!(spec.datadog.enabled);
        assert!(spec.prometheus.enabled);
        assert_eq!(spec.prometheus.scrape, "no");
        // `is True` / `is False`: anything else leaves TLS to the cluster.
        assert_eq!(spec.ingress_tls.enabled, None);
        // The hook still gets the values as written.
        assert_eq!(spec.app_config["replicas"]["singleton"], "false");

        let warned: Vec<String> = warnings(&spec.app_config)
            .into_iter()
            .map(|w| w.to_string())
            .collect();
        assert_eq!(
            warned,
            [
                "replicas.singleton: 'false' is not a boolean; read as true (Python truthiness, \
                 as upstream tests it)",
                "metrics.prometheus.enabled: 'No' is not a boolean; read as true (Python \
                 truthiness, as upstream tests it)",
                "metrics.datadog.enabled: 'no' is not a boolean; read as true (Python \
                 truthiness, as upstream tests it)",
                "secrets_in_environment: 0 is not a boolean; read as false (Python truthiness, \
                 as upstream tests it)",
                "extensions.tls.enabled: 'true' is not a boolean; read as unset, so \
                 --use-ingress-tls decides",
            ]
        );

        let spec = app("version: 3\nmetrics: {prometheus: {enabled: 0}}\nextensions: {tls: 0}\n");
        assert!(!spec.prometheus.enabled);
        assert_eq!(spec.ingress_tls.enabled, None);
        assert_eq!(app("version: 3").prometheus.scrape, "true");
    }

    #[test]
    fn what_upstream_deploys_is_read_as_upstream_reads_it_with_a_warning() {
        let text = "version: 3\nports: [{protocol: TCP, name: db}, {protocol: udp, name: d}]\n\
                    healthchecks: {liveness: {tcp: {port: db}, timeout_seconds: 0, \
                    success_threshold: 0}}\n\
                    replicas: {minimum: 1, maximum: 1, cpu_threshold_percentage: 0}\n\
                    metrics: {prometheus: {port: 9100.9}}\n\
                    extensions: {strongbox: {iam_role: r, groups: ab}, \
                    secrets: {s: {parameters: {A: null, B: x}, annotations: {}}}}\n";
        let spec = app(text);
        assert_eq!(spec.ports[0].protocol, Protocol::Other("TCP".into()));
        assert_eq!(spec.ports[1].protocol, Protocol::Other("udp".into()));
        assert_eq!(spec.health_checks.liveness.timeout_seconds, 0);
        assert_eq!(spec.health_checks.readiness.success_threshold, 0);
        assert_eq!(spec.autoscaler.cpu_threshold_percentage, 0);
        assert_eq!(spec.prometheus.port, PortRef::Number(9100));
        assert_eq!(spec.strongbox.groups, Some(vec!["a".into(), "b".into()]));
        assert_eq!(
            spec.secrets[0].parameters,
            [("A".into(), None), ("B".into(), Some("x".into()))]
        );
        let document = parse_document(text).unwrap();
        let warned: Vec<String> = warnings(&document).into_iter().map(|w| w.path).collect();
        let refused: Vec<String> = schema_violations(&document)
            .into_iter()
            .map(|v| v.path)
            .collect();
        for path in &refused {
            assert!(warned.contains(path), "{path} refused without a warning");
        }
        assert_eq!(
            warned,
            [
                "ports[0].protocol",
                "ports[1].protocol",
                "healthchecks.liveness.timeout_seconds",
                "healthchecks.liveness.success_threshold",
                "replicas.cpu_threshold_percentage",
                "metrics.prometheus.port",
                "extensions.strongbox.groups",
                "extensions.secrets.s.parameters.A",
            ]
        );
        assert_eq!(
            app("version: 3\nmetrics: {prometheus: {port: true}}")
                .prometheus
                .port,
            PortRef::Number(1)
        );
    }

    #[test]
    fn what_upstream_fails_on_is_still_rejected() {
        // An autoscaler aiming at 0% is refused by the API server.
        let found = violations("version: 3\nreplicas: {cpu_threshold_percentage: 0}\n");
        assert_eq!(found[0].path, "replicas.cpu_threshold_percentage");
        // A lone port of another protocol gets no health check; upstream fails on it.
        let found = violations("version: 3\nports: [{protocol: TCP}]\n");
        assert_eq!(found[0].path, "healthchecks.liveness");
        let found = violations(
            "version: 3\nextensions: {secrets: {s: {parameters: {A: 1}, annotations: {}}}}\n",
        );
        assert_eq!(found[0].path, "extensions.secrets.s.parameters.A");
    }

    #[test]
    fn documents_read_from_json_keep_their_strings() {
        let document = serde_json::json!({"version": 3, "secrets_in_environment": "no"});
        let spec = from_document(&document, &facts()).unwrap();
        assert!(spec.secrets_in_environment);
        let v2 = serde_json::json!({"version": 2, "replicas": 4,
            "autoscaler": {"enabled": "false", "min_replicas": 1}});
        assert_eq!(
            from_document(&v2, &facts())
                .unwrap()
                .autoscaler
                .min_replicas,
            1
        );
    }

    #[test]
    fn admin_access_must_be_a_boolean() {
        // Upstream passes it unchanged to automountServiceAccountToken, which Kubernetes
        // accepts only as a boolean.
        for text in [
            "version: 3\nadmin_access: 'yes'\n",
            "version: 3\nadmin_access: 1\n",
        ] {
            assert_eq!(violations(text)[0].path, "admin_access", "{text}");
        }
    }

    #[test]
    fn tls_is_tri_state_and_false_shorthand_means_unset() {
        assert_eq!(app("version: 3").ingress_tls.enabled, None);
        assert_eq!(
            app("version: 3\nextensions: {tls: true}")
                .ingress_tls
                .enabled,
            Some(true)
        );
        assert_eq!(
            app("version: 3\nextensions: {tls: false}")
                .ingress_tls
                .enabled,
            None
        );
        assert_eq!(
            app("version: 3\nextensions: {tls: {enabled: false}}")
                .ingress_tls
                .enabled,
            Some(false)
        );
    }

    #[test]
    fn falsy_maps_keep_their_defaults() {
        let spec = app(
            "version: 3\nmetrics: {prometheus: false}\nports: {}\nhealthchecks: {liveness: {execute: {command: x}}}\n",
        );
        assert!(spec.prometheus.enabled);
        assert!(spec.ports.is_empty());
        assert!(spec.ingresses.is_empty());
    }

    #[test]
    fn health_checks_follow_the_first_port() {
        let spec = app("version: 3\nports: [{name: web, protocol: tcp}]\n");
        assert_eq!(
            spec.health_checks.liveness.action,
            CheckAction::Tcp {
                port: PortRef::Name("web".into())
            }
        );
        let spec = app("version: 3\nhealthchecks: {liveness: {initial_delay_seconds: 30}}\n");
        assert_eq!(spec.health_checks.readiness, spec.health_checks.liveness);
        assert!(
            matches!(&spec.health_checks.readiness.action, CheckAction::Http { path, .. } if path == "/_/health")
        );
    }

    #[test]
    fn v2_apps_get_no_default_resources_and_keep_singleton() {
        let spec = app("version: 2\nreplicas: 1\nresources: {requests: {cpu: 100m}}\n");
        assert_eq!(spec.resources.requests.cpu.as_deref(), Some("100m"));
        assert_eq!(spec.resources.limits, ResourceRequirementSpec::default());
        assert!(spec.singleton);
        assert_eq!(spec.prometheus.path, "/internal-backstage/prometheus");
    }

    #[test]
    fn strongbox_needs_role_and_groups_and_an_empty_list_counts() {
        assert!(
            !app("version: 3\nextensions: {strongbox: {iam_role: r}}")
                .strongbox
                .enabled
        );
        assert!(
            app("version: 3\nextensions: {strongbox: {iam_role: r, groups: []}}")
                .strongbox
                .enabled
        );
    }

    #[test]
    fn secrets_need_both_keys() {
        let found = violations("version: 3\nextensions: {secrets: {vault: {parameters: {}}}}\n");
        assert_eq!(found[0].path, "extensions.secrets.vault");
        let spec = app(
            "version: 3\nextensions: {secrets: {vault: {parameters: null, annotations: {a: b}}}}\n",
        );
        assert_eq!(spec.secrets[0].secret_type, "vault");
        assert!(spec.secrets[0].parameters.is_empty());
    }

    #[test]
    fn additional_labels_override_config_labels() {
        let mut with_labels = facts();
        with_labels.additional_labels = Some(AdditionalLabelsOrAnnotations {
            global: Some([("g".to_owned(), "1".to_owned())].into()),
            pod: Some([("p".to_owned(), "2".to_owned())].into()),
            ..AdditionalLabelsOrAnnotations::default()
        });
        let spec = load(
            "version: 3\nlabels: {pod: {p: config, q: config}}\n",
            &with_labels,
        )
        .unwrap();
        assert_eq!(spec.labels.pod["p"], "2");
        assert_eq!(spec.labels.pod["q"], "config");
        assert_eq!(spec.labels.pod["g"], "1");
        assert_eq!(spec.labels.status["g"], "1");
        assert_eq!(spec.labels.deployment["g"], "1");
    }

    #[test]
    fn the_image_version_is_the_text_after_the_last_colon() {
        let mut f = facts();
        f.image = "registry:5000/app".into();
        assert_eq!(load("version: 3", &f).unwrap().version(), Some("5000/app"));
        f.image = "app".into();
        assert_eq!(load("version: 3", &f).unwrap().version(), None);
    }
}
