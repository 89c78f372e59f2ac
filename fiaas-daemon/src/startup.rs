//! What the daemon settles before it starts: which namespace it serves, how it reaches the API
//! server, and the warning about the removed environment configuration.

use std::path::Path;

use fiaas_config::{ClusterConfig, ConfigError, DEFAULT_CONFIG_FILE, Scope};
use secrecy::SecretString;

/// Where the pod's service account namespace is mounted.
pub const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// Where the pod's service account token is mounted.
pub const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Where the cluster's CA is mounted in a pod.
pub const CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// Environment variables that configured the daemon long ago; upstream warns when they are set.
const LEGACY_ENV: &[&str] = &[
    "SECRETS_DIRECTORY",
    "LOG_FORMAT",
    "http_proxy",
    "DEBUG",
    "FIAAS_ENVIRONMENT",
    "FIAAS_SERVICE_TYPE",
    "FIAAS_INFRASTRUCTURE",
    "PORT",
    "ENABLE_CRD_SUPPORT",
    "SECRETS_INIT_CONTAINER_IMAGE",
    "SECRETS_SERVICE_ACCOUNT_NAME",
    "DATADOG_CONTAINER_IMAGE",
    "DATADOG_CONTAINER_MEMORY",
    "FIAAS_DATADOG_GLOBAL_TAGS",
    "PRE_STOP_DELAY",
    "STRONGBOX_INIT_CONTAINER_IMAGE",
    "ENABLE_DEPRECATED_MULTI_NAMESPACE_SUPPORT",
    "USE_INGRESS_TLS",
    "TLS_CERTIFICATE_ISSUER",
    "USE_IN_MEMORY_EMPTYDIRS",
    "DEPLOYMENT_MAX_SURGE",
    "DEPLOYMENT_MAX_UNAVAILABLE",
    "READY_CHECK_TIMEOUT_MULTIPLIER",
    "DISABLE_DEPRECATED_MANAGED_ENV_VARS",
    "USAGE_REPORTING_CLUSTER_NAME",
    "USAGE_REPORTING_OPERATOR",
    "USAGE_REPORTING_ENDPOINT",
    "USAGE_REPORTING_TENANT",
    "USAGE_REPORTING_TEAM",
    "API_SERVER",
    "API_TOKEN",
    "API_CERT",
    "CLIENT_CERT",
    "CLIENT_KEY",
    "INGRESS_SUFFIXES",
    "HOST_REWRITE_RULES",
    "FIAAS_GLOBAL_ENV",
    "FIAAS_SECRET_INIT_CONTAINERS",
];

/// What the binaries share before their own work: parse the command line `C` (which flattens
/// the flags of `scope`: `fiaas_config::DeployerArgs` in the bootstrapper, `DaemonArgs` in the
/// daemon) with the upstream precedence of config files, set up logging and start the runtime. On failure, the
/// message is printed and the exit code returned.
pub fn begin<C: clap::Parser>(
    program: &str,
    scope: Scope,
) -> Result<(C, ClusterConfig, tokio::runtime::Runtime), std::process::ExitCode> {
    let matches = C::command().get_matches();
    let cli = C::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let default_file = Some(Path::new(DEFAULT_CONFIG_FILE));
    let config = match ClusterConfig::from_matches(&matches, scope, default_file) {
        Ok(config) => config.with_env_identity(),
        Err(ConfigError::CommandLine(e)) => e.exit(),
        Err(e) => {
            eprintln!("{program}: {e}");
            return Err(std::process::ExitCode::from(
                u8::try_from(e.exit_code()).unwrap_or(2),
            ));
        }
    };
    if let Err(e) = crate::logging::init(config.transform.log_format, config.debug) {
        eprintln!("{program}: cannot set up logging: {e}");
        return Err(std::process::ExitCode::FAILURE);
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => Ok((cli, config, runtime)),
        Err(e) => {
            tracing::error!("General failure! cannot start the runtime: {e}");
            Err(std::process::ExitCode::FAILURE)
        }
    }
}

/// Why the daemon cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Neither the service account file nor `NAMESPACE` says where the daemon runs.
    #[error("Could not determine namespace: {0}")]
    Namespace(String),
    /// The API server settings are unusable.
    #[error("API server configuration: {0}")]
    Kubernetes(String),
}

/// The namespace the daemon serves: the service account's, else `NAMESPACE` (upstream reads the
/// variable only when the file cannot be opened; an empty file is an error).
pub fn namespace(file: &Path, env: Option<String>) -> Result<String, StartupError> {
    match std::fs::read_to_string(file) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => Err(StartupError::Namespace(format!(
            "{} is empty",
            file.display()
        ))),
        Err(e) => env.filter(|ns| !ns.is_empty()).ok_or_else(|| {
            StartupError::Namespace(format!(
                "cannot read {} ({e}) and NAMESPACE is not set",
                file.display()
            ))
        }),
    }
}

/// The legacy variables that are set, sorted, for the start-up warning.
pub fn legacy_env_set(is_set: impl Fn(&str) -> bool) -> Vec<&'static str> {
    let mut set: Vec<&'static str> = LEGACY_ENV
        .iter()
        .copied()
        .filter(|name| is_set(name))
        .collect();
    set.sort_unstable();
    set
}

/// Log upstream's warning when configuration through environment variables is attempted.
pub fn warn_if_env_variable_config() {
    let set = legacy_env_set(|name| std::env::var_os(name).is_some());
    if !set.is_empty() {
        tracing::warn!(
            "found configuration environment variables {}. The ability to configure fiaas-deploy-daemon via environment variables has been removed. If you are trying to use these environment variables to configure fiaas-deploy-daemon, that configuration will not take effect. Please switch to configuring via a config file/ConfigMap or command-line flags. See https://github.com/fiaas/fiaas-deploy-daemon/blob/master/docs/operator_guide.md#configuration for more information",
            set.join(", ")
        );
    }
}

/// Whether any of `--api-server`, `--api-token`, `--api-cert` or `--client-cert` is set.
pub fn connection_flags_given(config: &ClusterConfig) -> bool {
    config.api_token.is_some()
        || config.api_cert.is_some()
        || config.client_cert.is_some()
        || config.api_server != "https://kubernetes.default.svc.cluster.local"
}

/// How to reach the API server, as upstream does from its flags: `--api-server` with
/// `--api-token` (else the pod's token file), `--api-cert` (else the pod's CA, unless a token was
/// given), `--client-cert`/`--client-key`, and no verification with `--debug` and no CA. When no
/// connection flag is given and the pod files are missing, the usual kubeconfig applies, so the
/// daemon also runs outside a cluster.
pub async fn kube_config(
    config: &ClusterConfig,
    namespace: &str,
) -> Result<kube::Config, StartupError> {
    if !connection_flags_given(config) && !Path::new(TOKEN_FILE).exists() {
        let mut inferred = kube::Config::infer()
            .await
            .map_err(|e| StartupError::Kubernetes(e.to_string()))?;
        inferred.default_namespace = namespace.to_owned();
        return Ok(fiaas_k8s::with_deadlines(inferred));
    }
    let url = config.api_server.parse().map_err(|e| {
        StartupError::Kubernetes(format!("--api-server {}: {e}", config.api_server))
    })?;
    let mut kube_config = kube::Config::new(url);
    kube_config.default_namespace = namespace.to_owned();
    match &config.api_token {
        Some(token) => kube_config.auth_info.token = Some(SecretString::from(token.clone())),
        None if Path::new(TOKEN_FILE).exists() => {
            kube_config.auth_info.token_file = Some(TOKEN_FILE.to_owned())
        }
        None if config.client_cert.is_none() => tracing::warn!(
            "No API token and no client certificate: talking to the API server anonymously"
        ),
        None => {}
    }
    if let Some(cert) = &config.client_cert {
        kube_config.auth_info.client_certificate = Some(cert.display().to_string());
        kube_config.auth_info.client_key =
            config.client_key.as_ref().map(|k| k.display().to_string());
    }
    if let Some(ca) = &config.api_cert {
        kube_config.root_cert_file = Some(ca.clone());
    } else if config.api_token.is_none() && Path::new(CA_FILE).exists() {
        kube_config.root_cert_file = Some(CA_FILE.into());
    } else if config.debug {
        kube_config.accept_invalid_certs = true;
    }
    Ok(fiaas_k8s::with_deadlines(kube_config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_comes_from_the_file_then_the_environment() {
        let dir = std::env::temp_dir().join(format!("fiaas-ns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("namespace");
        assert_eq!(
            namespace(&file, Some("from-env".into())).unwrap(),
            "from-env"
        );
        assert!(namespace(&file, None).is_err());
        std::fs::write(&file, "from-file\n").unwrap();
        assert_eq!(
            namespace(&file, Some("from-env".into())).unwrap(),
            "from-file"
        );
        std::fs::write(&file, "").unwrap();
        assert!(
            namespace(&file, Some("from-env".into())).is_err(),
            "an empty file is an error, as upstream"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_status_retention_default_is_the_status_writers() {
        // fiaas-config cannot name fiaas-k8s' constant (fiaas-k8s depends on it).
        assert_eq!(
            ClusterConfig::default().deploys.status_retention as usize,
            fiaas_k8s::status::STATUSES_KEPT
        );
    }

    #[test]
    fn legacy_env_names_are_listed_sorted() {
        let set = legacy_env_set(|name| name == "PORT" || name == "API_TOKEN");
        assert_eq!(set, ["API_TOKEN", "PORT"]);
    }
}
