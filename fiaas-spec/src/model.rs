//! The typed application model every other part of fiaas works from.
//!
//! An [`AppSpec`] is what a fiaas.yml (v2 or v3) means once defaults are applied, the version is
//! migrated and the deployment facts of the Application are attached. Field names follow the
//! upstream daemon's `AppSpec`, so its documentation applies.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A port given either by number or by name, as Kubernetes' `IntOrString`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum PortRef {
    /// A port number.
    Number(i64),
    /// A port name.
    Name(String),
}

/// What `#[serde(untagged)]` derives, for every JSON value, without its trial deserialisations
/// (each failed one formats an error, a third of the cost of reading a fiaas.yml).
impl<'de> Deserialize<'de> for PortRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(PortRefVisitor)
    }
}

struct PortRefVisitor;

impl PortRefVisitor {
    fn no_variant<E: de::Error>() -> E {
        E::custom("data did not match any variant of untagged enum PortRef")
    }
}

impl<'de> Visitor<'de> for PortRefVisitor {
    type Value = PortRef;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a port number or name")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<PortRef, E> {
        Ok(PortRef::Number(n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<PortRef, E> {
        i64::try_from(n)
            .map(PortRef::Number)
            .map_err(|_| Self::no_variant())
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<PortRef, E> {
        Ok(PortRef::Name(s.to_owned()))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<PortRef, E> {
        Ok(PortRef::Name(s))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<PortRef, E> {
        Err(Self::no_variant())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<PortRef, E> {
        Err(Self::no_variant())
    }

    fn visit_unit<E: de::Error>(self) -> Result<PortRef, E> {
        Err(Self::no_variant())
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<PortRef, A::Error> {
        Err(Self::no_variant())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<PortRef, A::Error> {
        Err(Self::no_variant())
    }
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(s) => f.write_str(s),
        }
    }
}

/// The deployment facts an Application carries next to its fiaas.yml.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AppFacts {
    /// `spec.application`.
    pub name: String,
    /// The Application's namespace.
    pub namespace: String,
    /// `spec.image`.
    pub image: String,
    /// The `fiaas/deployment_id` label.
    pub deployment_id: String,
    /// The Application's `metadata.uid`; owner references are set only when present.
    pub uid: Option<String>,
    /// `spec.additional_labels`.
    pub additional_labels: Option<AdditionalLabelsOrAnnotations>,
    /// `spec.additional_annotations`.
    pub additional_annotations: Option<AdditionalLabelsOrAnnotations>,
}

/// The Application's `additional_labels` / `additional_annotations` object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdditionalLabelsOrAnnotations {
    /// Applied to every kind except the ApplicationStatus.
    #[serde(rename = "global", skip_serializing_if = "Option::is_none")]
    pub global: Option<BTreeMap<String, String>>,
    /// Deployment metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deployment: Option<BTreeMap<String, String>>,
    /// HorizontalPodAutoscaler metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler: Option<BTreeMap<String, String>>,
    /// Ingress metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<BTreeMap<String, String>>,
    /// Service metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<BTreeMap<String, String>>,
    /// ServiceAccount metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<BTreeMap<String, String>>,
    /// Pod template metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<BTreeMap<String, String>>,
    /// ApplicationStatus metadata (the global entry does not apply here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<BTreeMap<String, String>>,
    /// PodDisruptionBudget metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<BTreeMap<String, String>>,
    /// RoleBinding metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_binding: Option<BTreeMap<String, String>>,
}

/// Everything fiaas knows about one deployment of one application.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppSpec {
    /// The Application's uid; drives owner references.
    pub uid: Option<String>,
    /// Namespace of the Application and of everything created for it.
    pub namespace: String,
    /// Application name; the name of most created objects.
    pub name: String,
    /// Container image.
    pub image: String,
    /// Replica range and HPA settings.
    pub autoscaler: AutoscalerSpec,
    /// Resource limits and requests of the main container.
    pub resources: ResourcesSpec,
    /// Whether the pod gets a service account token.
    pub admin_access: bool,
    /// Expose the app's Secret as environment variables.
    pub secrets_in_environment: bool,
    /// Prometheus scraping.
    pub prometheus: PrometheusSpec,
    /// Datadog sidecar.
    pub datadog: DatadogSpec,
    /// Ports the application listens on.
    pub ports: Vec<PortSpec>,
    /// Liveness and readiness checks.
    pub health_checks: HealthChecksSpec,
    /// Legacy team names (always empty for Applications).
    pub teams: Vec<String>,
    /// Legacy tags (always empty for Applications).
    pub tags: Vec<String>,
    /// The deployment id of this deployment.
    pub deployment_id: String,
    /// Labels per kind, fiaas.yml merged with the Application's additional labels.
    pub labels: LabelsAndAnnotations,
    /// Annotations per kind, fiaas.yml merged with the Application's additional annotations.
    pub annotations: LabelsAndAnnotations,
    /// Ingress items, with path ports resolved to service port numbers.
    pub ingresses: Vec<IngressItemSpec>,
    /// Legacy Strongbox secrets.
    pub strongbox: StrongboxSpec,
    /// Rolling-update strategy for single-replica apps.
    pub singleton: bool,
    /// TLS request of the app.
    pub ingress_tls: IngressTlsSpec,
    /// Secret init-containers requested by type.
    pub secrets: Vec<SecretsSpec>,
    /// The fiaas.yml as the extension hook receives it (v3 form).
    pub app_config: Value,
}

impl AppSpec {
    /// The text after the last `:` of the image, as upstream computes the version label.
    ///
    /// This is not a parsed tag: `registry:5000/app` yields `5000/app`. `None` when the image has
    /// no `:` at all (upstream then fails the deploy).
    pub fn version(&self) -> Option<&str> {
        self.image.rsplit_once(':').map(|(_, v)| v)
    }
}

/// Replica range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AutoscalerSpec {
    /// `minimum != maximum`.
    pub enabled: bool,
    /// Minimum replicas, never above the maximum.
    pub min_replicas: i32,
    /// Maximum replicas.
    pub max_replicas: i32,
    /// HPA target CPU utilisation.
    pub cpu_threshold_percentage: i32,
}

/// Resource limits and requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResourcesSpec {
    /// Limits.
    pub limits: ResourceRequirementSpec,
    /// Requests.
    pub requests: ResourceRequirementSpec,
}

/// One side of the resources; `None` where the app sets nothing (v2 apps without resources).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ResourceRequirementSpec {
    /// CPU quantity.
    pub cpu: Option<String>,
    /// Memory quantity.
    pub memory: Option<String>,
}

/// Prometheus scraping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrometheusSpec {
    /// Add the scrape annotations.
    pub enabled: bool,
    /// The `prometheus.io/scrape` annotation's value: `true`, unless `enabled` was given as a
    /// true non-boolean, whose Python `str()` upstream writes lower-cased (`"yes"`, `"1"`).
    pub scrape: String,
    /// Port name or number.
    pub port: PortRef,
    /// Metrics path.
    pub path: String,
}

/// Datadog sidecar.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatadogSpec {
    /// Attach the sidecar.
    pub enabled: bool,
    /// Tags, in document order, values as written (rendered like upstream when used).
    pub tags: Map<String, Value>,
}

/// Protocol of a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// HTTP: gets ingress and http health checks.
    Http,
    /// TCP.
    Tcp,
    /// Any other text (`TCP`, `udp`): upstream compares case-sensitively, so such a port is
    /// neither, and gets no ingress, no default health check and no `fiaas/tcp_port_names`.
    #[serde(untagged)]
    Other(String),
}

/// One port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    /// Protocol.
    pub protocol: Protocol,
    /// Port name.
    pub name: String,
    /// Service port.
    pub port: i32,
    /// Container port.
    pub target_port: i32,
}

/// Both health checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HealthChecksSpec {
    /// Liveness probe.
    pub liveness: CheckSpec,
    /// Readiness probe.
    pub readiness: CheckSpec,
}

/// One probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckSpec {
    /// What the probe does.
    pub action: CheckAction,
    /// Seconds before the first probe.
    pub initial_delay_seconds: i32,
    /// Seconds between probes.
    pub period_seconds: i32,
    /// Successes needed after a failure.
    pub success_threshold: i32,
    /// Failures needed after a success.
    pub failure_threshold: i32,
    /// Probe timeout.
    pub timeout_seconds: i32,
}

/// The one action of a probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckAction {
    /// Run a command; the string is split with shell quoting rules.
    Execute {
        /// The command line.
        command: String,
    },
    /// HTTP GET.
    Http {
        /// Path.
        path: String,
        /// Port name or number.
        port: PortRef,
        /// Extra request headers, in document order.
        http_headers: Vec<(String, String)>,
    },
    /// TCP connect.
    Tcp {
        /// Port name or number.
        port: PortRef,
    },
}

/// Labels or annotations per generated kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LabelsAndAnnotations {
    /// Deployment.
    pub deployment: BTreeMap<String, String>,
    /// HorizontalPodAutoscaler.
    pub horizontal_pod_autoscaler: BTreeMap<String, String>,
    /// Ingress.
    pub ingress: BTreeMap<String, String>,
    /// Service.
    pub service: BTreeMap<String, String>,
    /// ServiceAccount.
    pub service_account: BTreeMap<String, String>,
    /// Pod template.
    pub pod: BTreeMap<String, String>,
    /// ApplicationStatus (only from the Application's additional labels).
    pub status: BTreeMap<String, String>,
    /// PodDisruptionBudget.
    pub pod_disruption_budget: BTreeMap<String, String>,
    /// RoleBinding.
    pub role_binding: BTreeMap<String, String>,
}

/// One `ingress` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngressItemSpec {
    /// Explicit host, if any.
    pub host: Option<String>,
    /// Paths and the service port numbers they route to.
    pub pathmappings: Vec<IngressPathMappingSpec>,
    /// Annotations as written. Any key, even one whose value is null, puts this item in its own
    /// Ingress, as upstream tests the map for keys (fiaas_deploy_daemon/deployer/kubernetes/
    /// ingress.py); a null value removes that annotation, also the app-level one.
    pub annotations: BTreeMap<String, Option<String>>,
}

/// One path of an ingress entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct IngressPathMappingSpec {
    /// URL path.
    pub path: String,
    /// Service port number.
    pub port: i32,
}

/// Legacy Strongbox secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StrongboxSpec {
    /// Both `iam_role` and `groups` were given.
    pub enabled: bool,
    /// IAM role.
    pub iam_role: Option<String>,
    /// AWS region.
    pub aws_region: String,
    /// Secret groups.
    pub groups: Option<Vec<String>>,
}

/// TLS request of the app.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct IngressTlsSpec {
    /// Tri-state: `None` = not specified, the cluster's `--use-ingress-tls` decides.
    pub enabled: Option<bool>,
    /// Issuer name override.
    pub certificate_issuer: Option<String>,
}

/// One secret init-container request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecretsSpec {
    /// Registered init-container type.
    #[serde(rename = "type")]
    pub secret_type: String,
    /// Environment of the init container, in document order; a null parameter is a variable
    /// without a value, as upstream sends it.
    pub parameters: Vec<(String, Option<String>)>,
    /// Pod annotations.
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    mod derived {
        /// The derive [`super::PortRef`]'s own deserialisation stands in for.
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        pub(super) enum PortRef {
            Number(i64),
            Name(String),
        }
    }

    #[test]
    fn port_refs_read_as_the_untagged_derive_reads_them() {
        for value in [
            json!(80),
            json!(-1),
            json!(u64::MAX),
            json!("http"),
            json!(1.5),
            json!(true),
            json!(null),
            json!([1]),
            json!({"a": 1}),
        ] {
            let ours = PortRef::deserialize(&value).map_err(|e| e.to_string());
            let derived = derived::PortRef::deserialize(&value)
                .map(|port| match port {
                    derived::PortRef::Number(n) => PortRef::Number(n),
                    derived::PortRef::Name(name) => PortRef::Name(name),
                })
                .map_err(|e| e.to_string());
            assert_eq!(ours, derived, "{value}");
        }
    }
}
