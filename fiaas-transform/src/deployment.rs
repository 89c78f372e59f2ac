//! The app's Deployment: pod template, main container, probes, env, volumes, the Datadog
//! sidecar, Prometheus annotations and secret init-containers.

use std::collections::BTreeMap;

use fiaas_spec::{
    AppSpec, CheckAction, CheckSpec, PortRef, ResourceRequirementSpec, SecretsSpec, python,
};
use indexmap::IndexMap;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    ConfigMapEnvSource, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, ExecAction, HTTPGetAction, HTTPHeader, Lifecycle,
    LifecycleHandler, ObjectFieldSelector, PodDNSConfig, PodSpec, PodTemplateSpec, Probe,
    ResourceFieldSelector, ResourceRequirements, SecretEnvSource, SecretKeySelector,
    SecretVolumeSource, TCPSocketAction, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::meta::{merged, non_empty, object_meta};
use crate::{Notes, TransformError};
use fiaas_config::{IntOrStr, TransformSettings};

/// Grace period every pod gets before `--pre-stop-delay` is added.
const MINIMUM_GRACE_PERIOD: i64 = 30;
/// The sidecar outlives the main container's pre-stop sleep by this much.
const DATADOG_PRE_STOP_DELAY: i64 = 5;
const DATADOG_CONTAINER_NAME: &str = "fiaas-datadog-container";
/// Variables the Datadog sidecar adds to the main container.
const DATADOG_ENV: usize = 2;
const SECRETS_INIT_CONTAINER_NAME: &str = "fiaas-secrets-init-container";
const SECRETS_MOUNT_PATH: &str = "/var/run/secrets/fiaas/";
const CONFIG_MOUNT_PATH: &str = "/var/run/config/fiaas/";

/// The Deployment of an app. `replicas` is the count for a first deploy; keeping what an HPA
/// has set is the applier's job.
pub(crate) fn deployment(
    app: &AppSpec,
    config: &TransformSettings,
    fiaas_labels: &BTreeMap<String, String>,
    besteffort_qos: bool,
    notes: &mut Notes,
) -> Result<Deployment, TransformError> {
    if app.datadog.enabled && config.datadog_container_image.is_none() {
        return Err(TransformError::InvalidConfiguration(
            "Requested datadog sidecar, but datadog-container-image is undefined".to_owned(),
        ));
    }
    let mut pod = Pod::new(app, config)?;
    if app.datadog.enabled {
        pod.add_datadog(app, config, besteffort_qos);
    }
    pod.add_prometheus(app, notes);
    pod.add_secrets(app, config, notes);

    let mut pod_labels = merged(&app.labels.pod, &[fiaas_labels]);
    pod_labels.insert("fiaas/status".to_owned(), "active".to_owned());
    let strategy = if app.autoscaler.max_replicas == 1 && app.singleton {
        RollingUpdateDeployment {
            max_surge: Some(IntOrString::Int(0)),
            max_unavailable: Some(IntOrString::Int(1)),
        }
    } else {
        RollingUpdateDeployment {
            max_surge: Some(int_or_string(&config.deployment_max_surge)),
            max_unavailable: Some(int_or_string(&config.deployment_max_unavailable)),
        }
    };
    Ok(Deployment {
        metadata: object_meta(
            app,
            &app.name,
            merged(&app.labels.deployment, &[fiaas_labels]),
            app.annotations.deployment.clone(),
        ),
        spec: Some(DeploymentSpec {
            replicas: Some(app.autoscaler.min_replicas),
            selector: LabelSelector {
                match_labels: Some(selector(app)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    name: Some(app.name.clone()),
                    namespace: Some(app.namespace.clone()),
                    labels: non_empty(pod_labels),
                    annotations: non_empty(pod.annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod.spec),
            },
            revision_history_limit: Some(5),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(strategy),
            }),
            ..DeploymentSpec::default()
        }),
        status: None,
    })
}

/// `{app: <name>}`, the selector of the Deployment, Service and PodDisruptionBudget.
pub(crate) fn selector(app: &AppSpec) -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_owned(), app.name.clone())])
}

pub(crate) fn int_or_string(value: &IntOrStr) -> IntOrString {
    match value {
        IntOrStr::Int(i) => IntOrString::Int(i32::try_from(*i).unwrap_or(i32::MAX)),
        IntOrStr::Str(s) => IntOrString::String(s.clone()),
    }
}

fn pull_policy(image: &str) -> String {
    if image.contains(':') && !image.contains(":latest") {
        "IfNotPresent".to_owned()
    } else {
        "Always".to_owned()
    }
}

fn sleep_lifecycle(seconds: i64) -> Lifecycle {
    Lifecycle {
        pre_stop: Some(LifecycleHandler {
            exec: Some(ExecAction {
                command: Some(vec!["sleep".to_owned(), seconds.to_string()]),
            }),
            ..LifecycleHandler::default()
        }),
        ..Lifecycle::default()
    }
}

fn mount(name: String, read_only: bool, path: &str) -> VolumeMount {
    VolumeMount {
        name,
        read_only: Some(read_only),
        mount_path: path.to_owned(),
        ..VolumeMount::default()
    }
}

fn empty_dir(in_memory: bool) -> EmptyDirVolumeSource {
    EmptyDirVolumeSource {
        medium: in_memory.then(|| "Memory".to_owned()),
        size_limit: None,
    }
}

fn config_map_volume(name: String, config_map: &str) -> Volume {
    Volume {
        name,
        config_map: Some(ConfigMapVolumeSource {
            name: config_map.to_owned(),
            optional: Some(true),
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn env_from(name: &str, source: EnvVarSource) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(source),
    }
}

/// Volumes the secrets add to a pod, mostly: a Kubernetes Secret one, or an init-container's
/// two (see [`Pod::add_secrets`]).
const SECRET_VOLUMES: usize = 2;
/// Volume mounts the secrets add to the main container, mostly.
const SECRET_MOUNTS: usize = 1;

/// `items` in a vector with room for `more`: pod parts are large (a Volume is kilobytes), and a
/// vector outgrowing its room copies them all.
fn with_room<T, const N: usize>(items: [T; N], more: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(N + more);
    out.extend(items);
    out
}

/// The pod being assembled: its spec plus the annotations collected on the way.
struct Pod {
    spec: PodSpec,
    annotations: BTreeMap<String, String>,
}

impl Pod {
    fn new(app: &AppSpec, config: &TransformSettings) -> Result<Pod, TransformError> {
        let grace_period = MINIMUM_GRACE_PERIOD + config.pre_stop_delay.max(0);
        let main = Container {
            name: app.name.clone(),
            image: Some(app.image.clone()),
            ports: Some(
                app.ports
                    .iter()
                    .map(|p| ContainerPort {
                        name: Some(p.name.clone()),
                        container_port: p.target_port,
                        protocol: Some("TCP".to_owned()),
                        ..ContainerPort::default()
                    })
                    .collect(),
            ),
            env: Some(main_env(app, config)),
            env_from: Some(vec![EnvFromSource {
                config_map_ref: Some(ConfigMapEnvSource {
                    name: app.name.clone(),
                    optional: Some(true),
                }),
                ..EnvFromSource::default()
            }]),
            lifecycle: (config.pre_stop_delay > 0).then(|| sleep_lifecycle(config.pre_stop_delay)),
            liveness_probe: Some(probe(&app.health_checks.liveness, "liveness")?),
            readiness_probe: Some(probe(&app.health_checks.readiness, "readiness")?),
            image_pull_policy: Some(pull_policy(&app.image)),
            volume_mounts: Some(with_room(
                [
                    mount(format!("{}-config", app.name), true, CONFIG_MOUNT_PATH),
                    mount("tmp".to_owned(), false, "/tmp"),
                ],
                SECRET_MOUNTS,
            )),
            resources: Some(ResourceRequirements {
                limits: quantities(&app.resources.limits),
                requests: quantities(&app.resources.requests),
                ..ResourceRequirements::default()
            }),
            ..Container::default()
        };
        let spec = PodSpec {
            containers: with_room([main], usize::from(app.datadog.enabled)),
            init_containers: Some(Vec::new()),
            volumes: Some(with_room(
                [
                    config_map_volume(format!("{}-config", app.name), &app.name),
                    Volume {
                        name: "tmp".to_owned(),
                        empty_dir: Some(empty_dir(config.use_in_memory_emptydirs)),
                        ..Volume::default()
                    },
                ],
                SECRET_VOLUMES,
            )),
            service_account_name: Some(if config.enable_service_account_per_app {
                app.name.clone()
            } else {
                "default".to_owned()
            }),
            automount_service_account_token: Some(app.admin_access),
            termination_grace_period_seconds: Some(grace_period),
            enable_service_links: (!config.enable_service_links).then_some(false),
            dns_config: (!config.dns_search_domains.is_empty()).then(|| PodDNSConfig {
                searches: Some(config.dns_search_domains.clone()),
                ..PodDNSConfig::default()
            }),
            restart_policy: Some("Always".to_owned()),
            dns_policy: Some("ClusterFirst".to_owned()),
            image_pull_secrets: Some(Vec::new()),
            ..PodSpec::default()
        };
        Ok(Pod {
            spec,
            annotations: app.annotations.pod.clone(),
        })
    }

    fn main(&mut self) -> &mut Container {
        // `Pod::new` always puts the main container first.
        &mut self.spec.containers[0]
    }

    fn add_datadog(&mut self, app: &AppSpec, config: &TransformSettings, besteffort_qos: bool) {
        let image = config.datadog_container_image.clone().unwrap_or_default();
        let main_env = self.main().env.get_or_insert_with(Vec::new);
        main_env.push(env("STATSD_HOST", "localhost"));
        main_env.push(env("STATSD_PORT", "8125"));
        main_env.sort_by(|a, b| a.name.cmp(&b.name));

        let mut tags: BTreeMap<String, String> = config
            .datadog_global_tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        tags.extend(
            app.datadog
                .tags
                .iter()
                .map(|(k, v)| (k.clone(), python::str(v))),
        );
        tags.insert("app".to_owned(), app.name.clone());
        tags.insert("k8s_namespace".to_owned(), app.namespace.clone());
        let dd_tags = tags
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",");

        let memory = Quantity(config.datadog_container_memory.clone());
        let resources = if besteffort_qos {
            ResourceRequirements::default()
        } else {
            ResourceRequirements {
                limits: Some(BTreeMap::from([
                    ("cpu".to_owned(), Quantity("400m".to_owned())),
                    ("memory".to_owned(), memory.clone()),
                ])),
                requests: Some(BTreeMap::from([
                    ("cpu".to_owned(), Quantity("200m".to_owned())),
                    ("memory".to_owned(), memory),
                ])),
                ..ResourceRequirements::default()
            }
        };
        let pre_stop = config.pre_stop_delay + DATADOG_PRE_STOP_DELAY;
        self.spec.containers.push(Container {
            name: DATADOG_CONTAINER_NAME.to_owned(),
            image_pull_policy: Some(pull_policy(&image)),
            image: Some(image),
            env: Some(vec![
                env("DD_TAGS", dd_tags),
                env_from(
                    "DD_API_KEY",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "datadog".to_owned(),
                            key: "apikey".to_owned(),
                            optional: None,
                        }),
                        ..EnvVarSource::default()
                    },
                ),
                env("NON_LOCAL_TRAFFIC", "false"),
                env("DD_LOGS_STDOUT", "yes"),
                env("DD_EXPVAR_PORT", "42622"),
                env("DD_CMD_PORT", "42623"),
            ]),
            lifecycle: (pre_stop > 0 && config.datadog_activate_sleep)
                .then(|| sleep_lifecycle(pre_stop)),
            resources: Some(resources),
            ..Container::default()
        });
    }

    fn add_prometheus(&mut self, app: &AppSpec, notes: &mut Notes) {
        if !app.prometheus.enabled {
            return;
        }
        let port = match &app.prometheus.port {
            PortRef::Number(n) => Some(*n),
            PortRef::Name(name) => python::int(name).or_else(|| {
                app.ports
                    .iter()
                    .rev()
                    .find(|p| p.name == *name)
                    .map(|p| i64::from(p.target_port))
            }),
        };
        let Some(port) = port else {
            notes.error(format!("Invalid prometheus configuration for {}", app.name));
            return;
        };
        self.annotations.insert(
            "prometheus.io/scrape".to_owned(),
            app.prometheus.scrape.clone(),
        );
        self.annotations
            .insert("prometheus.io/port".to_owned(), port.to_string());
        self.annotations
            .insert("prometheus.io/path".to_owned(), app.prometheus.path.clone());
    }

    fn add_secrets(&mut self, app: &AppSpec, config: &TransformSettings, notes: &mut Notes) {
        let specs: Vec<SecretsSpec> = if !app.secrets.is_empty() {
            app.secrets.clone()
        } else if config.secret_init_container_image("strongbox").is_some() && app.strongbox.enabled
        {
            vec![SecretsSpec {
                secret_type: "strongbox".to_owned(),
                parameters: vec![
                    (
                        "AWS_REGION".to_owned(),
                        Some(app.strongbox.aws_region.clone()),
                    ),
                    (
                        "SECRET_GROUPS".to_owned(),
                        Some(
                            app.strongbox
                                .groups
                                .as_deref()
                                .unwrap_or_default()
                                .join(","),
                        ),
                    ),
                ],
                annotations: app
                    .strongbox
                    .iam_role
                    .iter()
                    .map(|role| ("iam.amazonaws.com/role".to_owned(), role.clone()))
                    .collect(),
            }]
        } else if config.secret_init_container_image("default").is_some() {
            vec![SecretsSpec {
                secret_type: "default".to_owned(),
                parameters: Vec::new(),
                annotations: BTreeMap::new(),
            }]
        } else {
            Vec::new()
        };
        if specs.is_empty() {
            self.add_kubernetes_secret(app);
            return;
        }
        for spec in specs {
            let Some(image) = config.secret_init_container_image(&spec.secret_type) else {
                notes.warning(format!(
                    "No init-container registered for secrets with type={}",
                    spec.secret_type
                ));
                continue;
            };
            self.add_init_container_secret(app, config, image, spec, notes);
        }
    }

    fn add_kubernetes_secret(&mut self, app: &AppSpec) {
        let secret = format!("{}-secret", app.name);
        if app.secrets_in_environment {
            self.main()
                .env_from
                .get_or_insert_with(Vec::new)
                .push(EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: app.name.clone(),
                        optional: Some(true),
                    }),
                    ..EnvFromSource::default()
                });
        }
        self.main()
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .insert(0, mount(secret.clone(), true, SECRETS_MOUNT_PATH));
        self.spec.volumes.get_or_insert_with(Vec::new).insert(
            0,
            Volume {
                name: secret,
                secret: Some(SecretVolumeSource {
                    secret_name: Some(app.name.clone()),
                    optional: Some(true),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            },
        );
    }

    fn add_init_container_secret(
        &mut self,
        app: &AppSpec,
        config: &TransformSettings,
        image: &str,
        spec: SecretsSpec,
        notes: &mut Notes,
    ) {
        let secret = format!("{}-secret", app.name);
        let init_config = format!("{SECRETS_INIT_CONTAINER_NAME}-config");
        if app.secrets_in_environment {
            notes.warning(format!(
                "{} is attempting to use 'secrets_in_environment', which is not supported.",
                app.name
            ));
        }
        self.main()
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .insert(0, mount(secret.clone(), true, SECRETS_MOUNT_PATH));

        // Parameters keep their order; an existing K8S_DEPLOYMENT is overwritten in place.
        let mut init_env: IndexMap<String, Option<String>> = spec.parameters.into_iter().collect();
        init_env.insert("K8S_DEPLOYMENT".to_owned(), Some(app.name.clone()));
        self.spec
            .init_containers
            .get_or_insert_with(Vec::new)
            .push(Container {
                name: SECRETS_INIT_CONTAINER_NAME.to_owned(),
                image: Some(image.to_owned()),
                image_pull_policy: Some("IfNotPresent".to_owned()),
                env: Some(
                    init_env
                        .into_iter()
                        .map(|(name, value)| EnvVar {
                            name,
                            value,
                            value_from: None,
                        })
                        .collect(),
                ),
                env_from: Some(vec![EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: SECRETS_INIT_CONTAINER_NAME.to_owned(),
                        optional: Some(true),
                    }),
                    ..EnvFromSource::default()
                }]),
                volume_mounts: Some(vec![
                    mount(secret.clone(), false, SECRETS_MOUNT_PATH),
                    mount(
                        init_config.clone(),
                        true,
                        &format!("/var/run/config/{SECRETS_INIT_CONTAINER_NAME}/"),
                    ),
                    mount(format!("{}-config", app.name), true, CONFIG_MOUNT_PATH),
                    mount("tmp".to_owned(), false, "/tmp"),
                ]),
                ..Container::default()
            });
        if let Some(account) = &config.secrets_service_account_name {
            self.spec.service_account_name = Some(account.clone());
        }
        if config.secret_init_containers_mount_token() {
            self.spec.automount_service_account_token = Some(true);
        }
        self.annotations.extend(spec.annotations);
        let volumes = self.spec.volumes.get_or_insert_with(Vec::new);
        volumes.insert(
            0,
            config_map_volume(init_config, SECRETS_INIT_CONTAINER_NAME),
        );
        volumes.insert(
            0,
            Volume {
                name: secret,
                empty_dir: Some(empty_dir(config.use_in_memory_emptydirs)),
                ..Volume::default()
            },
        );
    }
}

fn quantities(spec: &ResourceRequirementSpec) -> Option<BTreeMap<String, Quantity>> {
    let mut out = BTreeMap::new();
    if let Some(cpu) = &spec.cpu {
        out.insert("cpu".to_owned(), Quantity(cpu.clone()));
    }
    if let Some(memory) = &spec.memory {
        out.insert("memory".to_owned(), Quantity(memory.clone()));
    }
    (!out.is_empty()).then_some(out)
}

fn probe_port(port: &PortRef) -> IntOrString {
    match port {
        PortRef::Number(n) => IntOrString::Int(i32::try_from(*n).unwrap_or(i32::MAX)),
        PortRef::Name(name) => IntOrString::String(name.clone()),
    }
}

fn probe(check: &CheckSpec, kind: &str) -> Result<Probe, TransformError> {
    let mut probe = Probe {
        initial_delay_seconds: Some(check.initial_delay_seconds),
        timeout_seconds: Some(check.timeout_seconds),
        success_threshold: Some(check.success_threshold),
        failure_threshold: Some(check.failure_threshold),
        period_seconds: Some(check.period_seconds),
        ..Probe::default()
    };
    match &check.action {
        CheckAction::Http {
            path,
            port,
            http_headers,
        } => {
            probe.http_get = Some(HTTPGetAction {
                path: Some(path.clone()),
                port: probe_port(port),
                scheme: Some("HTTP".to_owned()),
                http_headers: Some(
                    http_headers
                        .iter()
                        .map(|(name, value)| HTTPHeader {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                ),
                host: None,
            });
        }
        CheckAction::Tcp { port } => {
            probe.tcp_socket = Some(TCPSocketAction {
                port: probe_port(port),
                host: None,
            });
        }
        CheckAction::Execute { command } => {
            // Upstream splits with Python's shlex.split, whose ValueError fails the deploy.
            let words = python::shlex_split(command).map_err(|e| {
                TransformError::InvalidConfiguration(format!(
                    "healthchecks.{kind}.execute.command cannot be split into words ({e}): {command}"
                ))
            })?;
            probe.exec = Some(ExecAction {
                command: Some(words),
            });
        }
    }
    Ok(probe)
}

/// The main container's environment, in upstream's order: a name-sorted list of the static
/// variables (legacy < global < fiaas-managed) followed by the downward-API ones, sorted stably.
fn main_env(app: &AppSpec, config: &TransformSettings) -> Vec<EnvVar> {
    // Kept in name order, a later value of a name replacing the earlier one.
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    values.insert(
        "FIAAS_INFRASTRUCTURE".to_owned(),
        config.infrastructure.as_str().to_owned(),
    );
    values.insert("LOG_STDOUT".to_owned(), "true".to_owned());
    values.insert(
        "LOG_FORMAT".to_owned(),
        config.log_format.as_str().to_owned(),
    );
    values.insert("CONSTRETTO_TAGS".to_owned(), "kubernetes".to_owned());
    if !config.environment.is_empty() {
        let environment = &config.environment;
        values.insert("FINN_ENV".to_owned(), environment.clone());
        values.insert("FIAAS_ENVIRONMENT".to_owned(), environment.clone());
        values.insert(
            "CONSTRETTO_TAGS".to_owned(),
            format!("kubernetes-{environment},kubernetes,{environment}"),
        );
    }
    for (k, v) in &config.global_env {
        values.insert(k.clone(), v.clone());
    }
    // The FIAAS_-prefixed copies come last, so they win over an explicit FIAAS_ key [match].
    for (k, v) in &config.global_env {
        values.insert(format!("FIAAS_{k}"), v.clone());
    }
    let version = app.version().unwrap_or_default().to_owned();
    values.insert("FIAAS_ARTIFACT_NAME".to_owned(), app.name.clone());
    values.insert("FIAAS_IMAGE".to_owned(), app.image.clone());
    values.insert("FIAAS_VERSION".to_owned(), version.clone());
    if !config.disable_deprecated_managed_env_vars {
        values.insert("ARTIFACT_NAME".to_owned(), app.name.clone());
        values.insert("IMAGE".to_owned(), app.image.clone());
        values.insert("VERSION".to_owned(), version);
    }
    let resource = |name: &str, resource: &str| {
        env_from(
            name,
            EnvVarSource {
                resource_field_ref: Some(ResourceFieldSelector {
                    container_name: Some(app.name.clone()),
                    resource: resource.to_owned(),
                    divisor: Some(Quantity("1".to_owned())),
                }),
                ..EnvVarSource::default()
            },
        )
    };
    let field = |name: &str, field: &str| {
        env_from(
            name,
            EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    field_path: field.to_owned(),
                    api_version: None,
                }),
                ..EnvVarSource::default()
            },
        )
    };
    // In name order, to merge with the static variables; a static one goes first on a tie.
    let mut downward = [
        resource("FIAAS_LIMITS_CPU", "limits.cpu"),
        resource("FIAAS_LIMITS_MEMORY", "limits.memory"),
        field("FIAAS_NAMESPACE", "metadata.namespace"),
        field("FIAAS_POD_NAME", "metadata.name"),
        resource("FIAAS_REQUESTS_CPU", "requests.cpu"),
        resource("FIAAS_REQUESTS_MEMORY", "requests.memory"),
    ]
    .into_iter()
    .peekable();
    let room = if app.datadog.enabled { DATADOG_ENV } else { 0 };
    let mut out = Vec::with_capacity(values.len() + downward.len() + room);
    for (name, value) in values {
        while let Some(var) = downward.next_if(|var| var.name < name) {
            out.push(var);
        }
        out.push(EnvVar {
            name,
            value: Some(value),
            value_from: None,
        });
    }
    out.extend(downward);
    out
}
