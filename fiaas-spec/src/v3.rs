//! Building an [`AppSpec`] from a v3 document, as upstream's v3 factory does.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{SpecError, Violation};
use crate::model::*;
use crate::python::{self, truthy, truthy_opt};
use crate::{defaults, lookup, schema};

/// The v3 document after defaults, in the shape the schema guarantees.
#[derive(Deserialize)]
struct Document {
    replicas: Replicas,
    ingress: Vec<Ingress>,
    healthchecks: HealthChecks,
    resources: Resources,
    metrics: Metrics,
    ports: Vec<Port>,
    annotations: PerKind,
    labels: PerKind,
    secrets_in_environment: bool,
    admin_access: bool,
    extensions: Extensions,
}

#[derive(Deserialize)]
struct Replicas {
    minimum: i32,
    maximum: i32,
    cpu_threshold_percentage: i32,
    singleton: bool,
}

#[derive(Deserialize)]
struct Ingress {
    host: Option<String>,
    paths: Vec<IngressPath>,
    annotations: StringMap,
}

#[derive(Deserialize)]
struct IngressPath {
    path: String,
    port: PortRef,
}

#[derive(Deserialize)]
struct HealthChecks {
    liveness: Check,
    readiness: Check,
}

#[derive(Deserialize)]
struct Check {
    execute: Execute,
    http: Http,
    tcp: Tcp,
    initial_delay_seconds: i32,
    period_seconds: i32,
    success_threshold: i32,
    failure_threshold: i32,
    timeout_seconds: i32,
}

#[derive(Deserialize)]
struct Execute {
    command: Option<String>,
}

#[derive(Deserialize)]
struct Http {
    path: String,
    port: Option<PortRef>,
    http_headers: Map<String, Value>,
}

#[derive(Deserialize)]
struct Tcp {
    port: Option<PortRef>,
}

#[derive(Deserialize)]
struct Resources {
    limits: Requirement,
    requests: Requirement,
}

#[derive(Deserialize)]
struct Requirement {
    cpu: Option<Value>,
    memory: Option<Value>,
}

#[derive(Deserialize)]
struct Metrics {
    prometheus: Prometheus,
    datadog: Datadog,
}

#[derive(Deserialize)]
struct Prometheus {
    enabled: bool,
    port: PortRef,
    path: String,
}

#[derive(Deserialize)]
struct Datadog {
    enabled: bool,
    tags: Map<String, Value>,
}

#[derive(Deserialize)]
struct Port {
    protocol: String,
    name: String,
    port: i32,
    target_port: i32,
}

/// A map whose null entries upstream drops when it sends the object.
#[derive(Deserialize, Default)]
#[serde(transparent)]
struct StringMap(BTreeMap<String, Option<String>>);

impl StringMap {
    fn into_map(self) -> BTreeMap<String, String> {
        self.0
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }
}

#[derive(Deserialize)]
struct PerKind {
    deployment: StringMap,
    horizontal_pod_autoscaler: StringMap,
    service_account: StringMap,
    ingress: StringMap,
    service: StringMap,
    pod: StringMap,
    pod_disruption_budget: StringMap,
    role_binding: StringMap,
}

#[derive(Deserialize)]
struct Extensions {
    strongbox: Strongbox,
    tls: Tls,
    secrets: Map<String, Value>,
}

#[derive(Deserialize)]
struct Strongbox {
    aws_region: String,
}

#[derive(Deserialize)]
struct Tls {
    enabled: Option<bool>,
    certificate_issuer: Option<String>,
}

/// Where the v3 document came from; a migrated v2 document leaves unset resources empty.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    V3,
    MigratedV2,
}

/// Build the AppSpec of a v3 document (native or migrated), reporting every violation.
pub(crate) fn build(config: Value, facts: &AppFacts, origin: Origin) -> Result<AppSpec, SpecError> {
    let mut config = config;
    rewrite_tls_shorthand(&mut config);
    let prometheus_scrape = prometheus_scrape(&config);
    // Validated and read as upstream reads the values (booleans as it tests them, say); the hook
    // gets them as given.
    let tested = as_read(&config);
    let config_as_tested = tested.as_ref().unwrap_or(&config);
    // The document is validated and read as merged over the defaults, without building the
    // merged document (that copied the defaults for every deploy). Validation sees what the
    // user gave of it, which is enough: the defaults are valid, and each schema rule looks at a
    // node and its children, but for the required `version`, which every document here has.
    // Mostly, what the user gave is the document as it is.
    let defaults = defaults::v3_effective();
    let given;
    let document =
        if lookup::is_given(config_as_tested, defaults) && schema::is_valid(config_as_tested) {
            Some(config_as_tested)
        } else {
            given = lookup::given(Some(config_as_tested), defaults).map(|mut given| {
                schema::integral_floats_to_ints(&mut given, false);
                given
            });
            if let Some(given) = &given {
                // What upstream deploys is accepted; `warnings` tells the user.
                let accepted = warnings(&config);
                let violations: Vec<Violation> = schema::violations(given)
                    .into_iter()
                    .filter(|v| !accepted.iter().any(|w| w.path == v.path))
                    .collect();
                if !violations.is_empty() {
                    return Err(SpecError::Invalid(violations));
                }
            }
            given.as_ref()
        };
    let doc = Document::deserialize(lookup::Merged::over(document, defaults))
        .map_err(|e| SpecError::Invalid(vec![Violation::new("", e.to_string())]))?;
    let mut violations = Vec::new();

    let ports: Vec<PortSpec> = doc
        .ports
        .into_iter()
        .map(|p| PortSpec {
            protocol: match p.protocol.as_str() {
                "http" => Protocol::Http,
                "tcp" => Protocol::Tcp,
                _ => Protocol::Other(p.protocol),
            },
            name: p.name,
            port: p.port,
            target_port: p.target_port,
        })
        .collect();

    let raw_checks = config.get("healthchecks").filter(|c| truthy(c));
    let raw_check = |kind: &str| raw_checks.and_then(|c| c.get(kind)).filter(|c| truthy(c));
    let liveness = check(
        doc.healthchecks.liveness,
        raw_check("liveness"),
        &ports,
        "liveness",
        &mut violations,
    );
    let readiness = if raw_check("readiness").is_none() && raw_check("liveness").is_some() {
        liveness.clone()
    } else {
        check(
            doc.healthchecks.readiness,
            raw_check("readiness"),
            &ports,
            "readiness",
            &mut violations,
        )
    };

    let ingresses = ingress_items(doc.ingress, &ports, &mut violations);
    let secrets = secrets(&doc.extensions.secrets, &mut violations);
    let (Some(liveness), Some(readiness)) = (liveness, readiness) else {
        return Err(SpecError::Invalid(violations));
    };
    if !violations.is_empty() {
        return Err(SpecError::Invalid(violations));
    }

    let maximum = doc.replicas.maximum;
    let minimum = doc.replicas.minimum.min(maximum);
    let raw_strongbox =
        lookup::at(config_as_tested, &["extensions", "strongbox"]).filter(|s| truthy(s));
    let iam_role = raw_strongbox
        .and_then(|s| s.get("iam_role"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let groups = raw_strongbox
        .and_then(|s| s.get("groups"))
        .and_then(Value::as_array)
        .map(|g| g.iter().map(python::str).collect::<Vec<_>>());

    // A migrated v2 document marks resources its v2 file left unset with null: no value, not
    // the v3 default.
    let resource = |kind: &str, name: &str, merged: Option<Value>| -> Option<String> {
        let unset_in_v2 = origin == Origin::MigratedV2
            && lookup::at(&config, &["resources", kind, name]).is_none_or(Value::is_null);
        match merged {
            _ if unset_in_v2 => None,
            Some(Value::String(s)) => Some(s),
            Some(value) if !value.is_null() => Some(python::str(&value)),
            _ => None,
        }
    };

    Ok(AppSpec {
        uid: facts.uid.clone(),
        namespace: facts.namespace.clone(),
        name: facts.name.clone(),
        image: facts.image.clone(),
        autoscaler: AutoscalerSpec {
            enabled: minimum != maximum,
            min_replicas: minimum,
            max_replicas: maximum,
            cpu_threshold_percentage: doc.replicas.cpu_threshold_percentage,
        },
        resources: ResourcesSpec {
            limits: ResourceRequirementSpec {
                cpu: resource("limits", "cpu", doc.resources.limits.cpu),
                memory: resource("limits", "memory", doc.resources.limits.memory),
            },
            requests: ResourceRequirementSpec {
                cpu: resource("requests", "cpu", doc.resources.requests.cpu),
                memory: resource("requests", "memory", doc.resources.requests.memory),
            },
        },
        admin_access: doc.admin_access,
        secrets_in_environment: doc.secrets_in_environment,
        prometheus: PrometheusSpec {
            enabled: doc.metrics.prometheus.enabled,
            scrape: prometheus_scrape,
            port: doc.metrics.prometheus.port,
            path: doc.metrics.prometheus.path,
        },
        datadog: DatadogSpec {
            enabled: doc.metrics.datadog.enabled,
            tags: doc.metrics.datadog.tags,
        },
        ports,
        health_checks: HealthChecksSpec {
            liveness,
            readiness,
        },
        teams: Vec::new(),
        tags: Vec::new(),
        deployment_id: facts.deployment_id.clone(),
        labels: labels_and_annotations(doc.labels, facts.additional_labels.as_ref()),
        annotations: labels_and_annotations(doc.annotations, facts.additional_annotations.as_ref()),
        ingresses,
        strongbox: StrongboxSpec {
            enabled: iam_role.is_some() && groups.is_some(),
            iam_role,
            aws_region: doc.extensions.strongbox.aws_region,
            groups,
        },
        singleton: doc.replicas.singleton,
        ingress_tls: IngressTlsSpec {
            enabled: doc.extensions.tls.enabled,
            certificate_issuer: doc.extensions.tls.certificate_issuer,
        },
        secrets,
        app_config: config,
    })
}

/// `extensions.tls: true` is short for `{enabled: true}`; `false` means "unset" upstream.
fn rewrite_tls_shorthand(config: &mut Value) {
    if let Some(tls) = lookup::at_mut(config, &["extensions", "tls"])
        && let Value::Bool(b) = tls
    {
        *tls = if *b {
            serde_json::json!({"enabled": true})
        } else {
            Value::Null
        };
    }
}

/// The `prometheus.io/scrape` annotation: upstream writes `str(enabled).lower()`
/// (fiaas_deploy_daemon/deployer/kubernetes/deployment/prometheus.py), so an `enabled: "no"`,
/// which is true, scrapes with the text `no`.
fn prometheus_scrape(config: &Value) -> String {
    match lookup::at(config, &["metrics", "prometheus", "enabled"]) {
        Some(value) if !value.is_null() => python::str(value).to_lowercase(),
        _ => "true".to_owned(),
    }
}

/// Fields upstream tests for truthiness (`if app_spec.singleton:`), whatever their type, so a
/// quoted `"false"` or a `1` there is `True` and a `0` is `False`
/// (fiaas_deploy_daemon/deployer/kubernetes/deployment/{deployer,datadog,prometheus,secrets}.py).
pub(crate) const TRUTHINESS_TESTED: &[&[&str]] = &[
    &["replicas", "singleton"],
    &["metrics", "prometheus", "enabled"],
    &["metrics", "datadog", "enabled"],
    &["secrets_in_environment"],
];

const TLS: &[&str] = &["extensions", "tls"];
pub(crate) const TLS_ENABLED: &[&str] = &["extensions", "tls", "enabled"];
pub(crate) const PROMETHEUS_PORT: &[&str] = &["metrics", "prometheus", "port"];
pub(crate) const STRONGBOX_GROUPS: &[&str] = &["extensions", "strongbox", "groups"];

/// Probe fields Kubernetes defaults when they are 0 (its `SetDefaults_Probe`), so that the
/// zero upstream passes on is accepted by the API server; with the value it becomes.
pub(crate) const PROBE_ZERO_DEFAULTS: &[(&str, i32)] = &[
    ("timeout_seconds", 1),
    ("period_seconds", 10),
    ("success_threshold", 1),
    ("failure_threshold", 3),
];

/// The document with the values the schema refuses but upstream reads in its own way rewritten
/// to that reading, or `None` when there are none. See [`warnings`] for the whole list.
///
/// Truthiness for [`TRUTHINESS_TESTED`]; `extensions.tls.enabled` is compared with
/// `is True`/`is False` (fiaas_deploy_daemon/deployer/kubernetes/ingress.py), so any other value
/// leaves TLS to the cluster default; a falsy `extensions.tls` is skipped like any falsy map
/// (fiaas_deploy_daemon/specs/lookup.py). `metrics.prometheus.port` goes through `int()`
/// (fiaas_deploy_daemon/deployer/kubernetes/deployment/prometheus.py), and a text
/// `extensions.strongbox.groups` is iterated, one group per character
/// (fiaas_deploy_daemon/deployer/kubernetes/deployment/secrets.py). Other values, such as a
/// string for `admin_access` (passed unchanged to `automountServiceAccountToken`, which
/// Kubernetes accepts only as a boolean), are left for validation to report.
fn as_read(config: &Value) -> Option<Value> {
    let mut positions = TRUTHINESS_TESTED.iter().copied().chain([TLS, TLS_ENABLED]);
    let booleans = positions.any(|path| lookup::at(config, path).is_some_and(is_scalar));
    let port = lookup::at(config, PROMETHEUS_PORT).and_then(prometheus_port_as_read);
    let groups = lookup::at(config, STRONGBOX_GROUPS).and_then(groups_as_read);
    if !booleans && port.is_none() && groups.is_none() {
        return None;
    }
    let mut tested = config.clone();
    for path in TRUTHINESS_TESTED {
        if let Some(value) = lookup::at_mut(&mut tested, path)
            && is_scalar(value)
        {
            *value = Value::Bool(truthy(value));
        }
    }
    if let Some(value) = lookup::at_mut(&mut tested, TLS_ENABLED)
        && is_scalar(value)
    {
        *value = Value::Null;
    }
    if let Some(value) = lookup::at_mut(&mut tested, TLS)
        && is_scalar(value)
        && !truthy(value)
    {
        *value = Value::Null;
    }
    for (path, read) in [(PROMETHEUS_PORT, port), (STRONGBOX_GROUPS, groups)] {
        if let (Some(value), Some(read)) = (lookup::at_mut(&mut tested, path), read) {
            *value = read;
        }
    }
    Some(tested)
}

/// A text or number, where a boolean belongs.
fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_))
}

/// `int(port)` of a boolean or a finite fractional number; `None` for anything the schema takes
/// as it is, or that `int()` fails on.
fn prometheus_port_as_read(port: &Value) -> Option<Value> {
    match port {
        Value::Bool(b) => Some(Value::from(i64::from(*b))),
        Value::Number(n) if n.is_f64() => n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 9e15)
            .map(|f| Value::from(f.trunc() as i64)),
        _ => None,
    }
}

/// The groups a text iterates into: one per character.
fn groups_as_read(groups: &Value) -> Option<Value> {
    groups
        .as_str()
        .map(|text| text.chars().map(|c| Value::from(c.to_string())).collect())
}

/// Where the document asks for an autoscaler (`minimum` below `maximum`, after defaults).
fn has_autoscaler(config: &Value) -> bool {
    let bound = |key: &str, default: f64| {
        lookup::at(config, &["replicas", key])
            .and_then(Value::as_f64)
            .unwrap_or(default)
    };
    bound("minimum", 2.0) < bound("maximum", 5.0)
}

/// The values of a v3 document that the schema refuses but upstream reads and deploys, each
/// with how it is read: accepted, so that what the Python daemon deployed still deploys, but
/// worth a warning ([`schema_violations`](crate::schema_violations) reports them).
pub(crate) fn warnings(config: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    for path in TRUTHINESS_TESTED {
        if let Some(value) = lookup::at(config, path).filter(|v| is_scalar(v)) {
            out.push(Violation::new(
                path.join("."),
                format!(
                    "{} is not a boolean; read as {} (Python truthiness, as upstream tests it)",
                    python::repr(value),
                    truthy(value)
                ),
            ));
        }
    }
    if let Some(value) = lookup::at(config, TLS_ENABLED).filter(|v| is_scalar(v)) {
        out.push(Violation::new(
            TLS_ENABLED.join("."),
            format!(
                "{} is not a boolean; read as unset, so --use-ingress-tls decides",
                python::repr(value)
            ),
        ));
    }
    if let Some(value) = lookup::at(config, TLS).filter(|v| is_scalar(v) && !truthy(v)) {
        out.push(Violation::new(
            TLS.join("."),
            format!("{} is not a boolean; read as unset", python::repr(value)),
        ));
    }
    if let Some(Value::Array(ports)) = config.get("ports") {
        for (i, port) in ports.iter().enumerate() {
            if let Some(Value::String(protocol)) = port.get("protocol")
                && protocol != "http"
                && protocol != "tcp"
            {
                out.push(Violation::new(
                    format!("ports[{i}].protocol"),
                    format!(
                        "{} is neither 'http' nor 'tcp' (compared case-sensitively, as upstream \
                         does): the port gets no ingress, no default health check and no \
                         fiaas/tcp_port_names entry",
                        python::repr(&Value::from(protocol.as_str()))
                    ),
                ));
            }
        }
    }
    for kind in ["liveness", "readiness"] {
        for (field, default) in PROBE_ZERO_DEFAULTS {
            if let Some(value) = lookup::at(config, &["healthchecks", kind, field])
                && value.as_f64() == Some(0.0)
            {
                out.push(Violation::new(
                    format!("healthchecks.{kind}.{field}"),
                    format!("0 is passed on; Kubernetes reads it as its default {default}"),
                ));
            }
        }
    }
    if let Some(value) = lookup::at(config, &["replicas", "cpu_threshold_percentage"])
        && value.as_f64().is_some_and(|v| v < 1.0)
        && !has_autoscaler(config)
    {
        out.push(Violation::new(
            "replicas.cpu_threshold_percentage",
            format!(
                "{} is less than 1; unused, as minimum and maximum make no autoscaler",
                python::repr(value)
            ),
        ));
    }
    if let Some(value) = lookup::at(config, PROMETHEUS_PORT)
        && let Some(read) = prometheus_port_as_read(value)
    {
        out.push(Violation::new(
            PROMETHEUS_PORT.join("."),
            format!(
                "{} is not a port name or number; read as {read} (int(), as upstream reads it)",
                python::repr(value)
            ),
        ));
    }
    if let Some(value) = lookup::at(config, STRONGBOX_GROUPS)
        && let Some(read) = groups_as_read(value)
    {
        out.push(Violation::new(
            STRONGBOX_GROUPS.join("."),
            format!(
                "{} is not a list; read as the groups {} (upstream iterates the text)",
                python::repr(value),
                python::repr(&read)
            ),
        ));
    }
    if let Some(Value::Object(secrets)) = lookup::at(config, &["extensions", "secrets"]) {
        for (secret_type, entry) in secrets {
            let Some(Value::Object(parameters)) = entry.get("parameters") else {
                continue;
            };
            for (name, _) in parameters.iter().filter(|(_, v)| v.is_null()) {
                out.push(Violation::new(
                    format!("extensions.secrets.{secret_type}.parameters.{name}"),
                    format!("null: the init container gets {name} without a value"),
                ));
            }
        }
    }
    out
}

fn check(
    merged: Check,
    raw: Option<&Value>,
    ports: &[PortSpec],
    kind: &str,
    violations: &mut Vec<Violation>,
) -> Option<CheckSpec> {
    let configured = |action: &str| truthy_opt(raw.and_then(|r| r.get(action)));
    let explicit_port =
        |action: &str| truthy_opt(raw.and_then(|r| r.get(action)).and_then(|a| a.get("port")));
    let first_port = ports.first();
    let port_for = |action: &str, given: Option<PortRef>, violations: &mut Vec<Violation>| match (
        explicit_port(action),
        given,
        first_port,
    ) {
        (true, Some(port), _) => Some(port),
        (_, _, Some(first)) => Some(PortRef::Name(first.name.clone())),
        _ => {
            violations.push(Violation::new(
                format!("healthchecks.{kind}.{action}.port"),
                format!("Unable to determine port to use for {action} {kind} check"),
            ));
            None
        }
    };
    let Check {
        execute,
        http,
        tcp,
        initial_delay_seconds,
        period_seconds,
        success_threshold,
        failure_threshold,
        timeout_seconds,
    } = merged;
    let http = |violations: &mut Vec<Violation>| {
        port_for("http", http.port, violations).map(|port| CheckAction::Http {
            path: http.path,
            port,
            http_headers: http
                .http_headers
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, python::str(&v)))
                .collect(),
        })
    };
    let tcp = |violations: &mut Vec<Violation>| {
        port_for("tcp", tcp.port, violations).map(|port| CheckAction::Tcp { port })
    };
    let action = if configured("execute") {
        match execute.command {
            Some(command) => Some(CheckAction::Execute { command }),
            None => {
                violations.push(Violation::new(
                    format!("healthchecks.{kind}.execute.command"),
                    "a command is required for an execute check",
                ));
                None
            }
        }
    } else if configured("http") {
        http(violations)
    } else if configured("tcp") {
        tcp(violations)
    } else if ports.len() != 1 {
        violations.push(Violation::new(
            format!("healthchecks.{kind}"),
            format!("Must specify {kind} check or exactly one port"),
        ));
        None
    } else {
        match &ports[0].protocol {
            Protocol::Http => http(violations),
            Protocol::Tcp => tcp(violations),
            Protocol::Other(protocol) => {
                // Upstream makes no check at all, and fails building the AppSpec
                // (fiaas_deploy_daemon/specs/models.py).
                violations.push(Violation::new(
                    format!("healthchecks.{kind}"),
                    format!(
                        "AppSpec must have exactly one health check, none was defined: the \
                         only port's protocol {} is neither 'http' nor 'tcp'",
                        python::repr(&Value::from(protocol.as_str()))
                    ),
                ));
                None
            }
        }
    };
    action.map(|action| CheckSpec {
        action,
        initial_delay_seconds,
        period_seconds,
        success_threshold,
        failure_threshold,
        timeout_seconds,
    })
}

fn ingress_items(
    items: Vec<Ingress>,
    ports: &[PortSpec],
    violations: &mut Vec<Violation>,
) -> Vec<IngressItemSpec> {
    // Upstream builds a name → port dict, so a repeated name keeps the last port.
    let mut http_ports: Vec<(&str, i32)> = Vec::new();
    for port in ports.iter().filter(|p| p.protocol == Protocol::Http) {
        match http_ports.iter_mut().find(|(name, _)| *name == port.name) {
            Some(entry) => entry.1 = port.port,
            None => http_ports.push((&port.name, port.port)),
        }
    }
    if http_ports.is_empty() {
        return Vec::new();
    }
    let resolve = |port: &PortRef| -> Option<i32> {
        match port {
            PortRef::Name(name) => http_ports.iter().find(|(n, _)| n == name).map(|(_, p)| *p),
            PortRef::Number(n) => http_ports
                .iter()
                .find(|(_, p)| i64::from(*p) == *n)
                .map(|(_, p)| *p),
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let mut pathmappings = Vec::with_capacity(item.paths.len());
        for (j, path) in item.paths.into_iter().enumerate() {
            match resolve(&path.port) {
                Some(port) => pathmappings.push(IngressPathMappingSpec {
                    path: path.path,
                    port,
                }),
                None => violations.push(Violation::new(
                    format!("ingress[{i}].paths[{j}].port"),
                    format!("{} is not a valid port name or port number", path.port),
                )),
            }
        }
        out.push(IngressItemSpec {
            host: item.host,
            pathmappings,
            annotations: item.annotations.0,
        });
    }
    out
}

fn secrets(entries: &Map<String, Value>, violations: &mut Vec<Violation>) -> Vec<SecretsSpec> {
    let mut out = Vec::new();
    for (secret_type, entry) in entries {
        let parameters = entry
            .get("parameters")
            .and_then(Value::as_object)
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.clone(), (!v.is_null()).then(|| python::str(v))))
                    .collect()
            })
            .unwrap_or_default();
        let annotations = match entry.get("annotations") {
            Some(Value::Object(a)) => a
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), python::str(v)))
                .collect(),
            _ => {
                violations.push(Violation::new(
                    format!("extensions.secrets.{secret_type}.annotations"),
                    "must be a mapping",
                ));
                continue;
            }
        };
        out.push(SecretsSpec {
            secret_type: secret_type.clone(),
            parameters,
            annotations,
        });
    }
    out
}

fn labels_and_annotations(
    from_config: PerKind,
    additional: Option<&AdditionalLabelsOrAnnotations>,
) -> LabelsAndAnnotations {
    let mut out = LabelsAndAnnotations {
        deployment: from_config.deployment.into_map(),
        horizontal_pod_autoscaler: from_config.horizontal_pod_autoscaler.into_map(),
        ingress: from_config.ingress.into_map(),
        service: from_config.service.into_map(),
        service_account: from_config.service_account.into_map(),
        pod: from_config.pod.into_map(),
        status: BTreeMap::new(),
        pod_disruption_budget: from_config.pod_disruption_budget.into_map(),
        role_binding: from_config.role_binding.into_map(),
    };
    if let Some(add) = additional {
        let global = add.global.clone().unwrap_or_default();
        let layer = |target: &mut BTreeMap<String, String>,
                     own: &Option<BTreeMap<String, String>>| {
            target.extend(global.clone());
            if let Some(own) = own {
                target.extend(own.clone());
            }
        };
        layer(&mut out.deployment, &add.deployment);
        layer(
            &mut out.horizontal_pod_autoscaler,
            &add.horizontal_pod_autoscaler,
        );
        layer(&mut out.ingress, &add.ingress);
        layer(&mut out.service, &add.service);
        layer(&mut out.service_account, &add.service_account);
        layer(&mut out.pod, &add.pod);
        layer(&mut out.status, &add.status);
        layer(&mut out.pod_disruption_budget, &add.pod_disruption_budget);
        layer(&mut out.role_binding, &add.role_binding);
    }
    out
}
