//! [`ClusterConfig`]: the whole configuration of one binary, merged from the command line, the
//! config files and the built-in defaults (upstream's `Configuration`, ConfigArgParse over
//! argparse, flag for flag).
//!
//! Values come from three places, highest first: the command line, the `-c/--config-file` YAML
//! file, the default YAML file (normally [`DEFAULT_CONFIG_FILE`], read only if it exists). A flag
//! given at a higher level hides the lower levels completely (lists are not merged); flags given
//! nowhere take their built-in default. Environment variables are not a source, except `IMAGE`
//! and `VERSION` (see [`ClusterConfig::with_env_identity`]).
//!
//! Every value, whatever its origin, goes through the same string parsers, as upstream re-feeds
//! config-file values as if typed on the command line.

#[cfg(feature = "cli")]
use std::ffi::OsString;
use std::fmt;
#[cfg(feature = "cli")]
use std::path::Path;
use std::path::PathBuf;

use crate::ConfigError;
#[cfg(feature = "cli")]
use crate::file::file_layer;
use crate::flags::Flag;
#[cfg(feature = "cli")]
use crate::flags::Scope;
use crate::precedence::{Layer, Resolver};
use crate::settings::{DaemonSettings, DeploySettings, TransformSettings};

/// Where the daemon's Helm chart mounts `cluster_config.yaml`; binaries pass it as the default
/// config file.
pub const DEFAULT_CONFIG_FILE: &str = "/var/run/config/fiaas/cluster_config.yaml";

/// The typed configuration of one binary. Field docs give the flag each comes from; what
/// fiaas-transform reads is in [`ClusterConfig::transform`], how deploys run in
/// [`ClusterConfig::deploys`], the daemon's own flags in [`ClusterConfig::daemon`].
#[derive(Clone)]
pub struct ClusterConfig {
    /// `-c/--config-file` as given on the command line (not `~`-expanded).
    pub config_file: Option<PathBuf>,
    /// `--secrets-directory`.
    pub secrets_directory: PathBuf,
    /// `--proxy`.
    pub proxy: Option<String>,
    /// `--debug`.
    pub debug: bool,
    /// `--port`.
    pub port: u16,
    /// `--enable-crd-support`.
    pub enable_crd_support: bool,
    /// `--enable-deprecated-multi-namespace-support`.
    pub enable_deprecated_multi_namespace_support: bool,
    /// `--ready-check-timeout-multiplier`.
    pub ready_check_timeout_multiplier: i64,
    /// `--extension-hook-url`.
    pub extension_hook_url: Option<String>,
    /// `--use-apiextensionsv1-crd`.
    pub use_apiextensionsv1_crd: bool,
    /// `--disable-crd-creation`.
    pub disable_crd_creation: bool,
    /// `--include-status-in-app`.
    pub include_status_in_app: bool,
    /// `--usage-reporting-cluster-name`.
    pub usage_reporting_cluster_name: Option<String>,
    /// `--usage-reporting-operator`.
    pub usage_reporting_operator: Option<String>,
    /// `--usage-reporting-endpoint`.
    pub usage_reporting_endpoint: Option<String>,
    /// `--usage-reporting-tenant`.
    pub usage_reporting_tenant: Option<String>,
    /// `--usage-reporting-team`.
    pub usage_reporting_team: Option<String>,
    /// `--api-server`.
    pub api_server: String,
    /// `--api-token`; left out of the `Debug` output, as upstream keeps it out of its log.
    pub api_token: Option<String>,
    /// `--api-cert`.
    pub api_cert: Option<PathBuf>,
    /// `--client-cert`.
    pub client_cert: Option<PathBuf>,
    /// `--client-key`.
    pub client_key: Option<PathBuf>,
    /// `--tls-certificate-ready`.
    pub tls_certificate_ready: bool,
    /// The daemon's own image (env `IMAGE`, else `FIAAS_IMAGE`); not a flag.
    pub image: String,
    /// What fiaas-transform reads.
    pub transform: TransformSettings,
    /// How deploys run; the built-in defaults in the binaries that do not deploy.
    pub deploys: DeploySettings,
    /// fiaas-deploy-daemon's own flags; the built-in defaults in the other binaries, which do
    /// not take them.
    pub daemon: DaemonSettings,
}

impl Default for ClusterConfig {
    /// Built-in defaults only, as if no flag and no file was given.
    fn default() -> Self {
        ClusterConfig::resolve(&[], None).expect("the built-in defaults are valid")
    }
}

impl ClusterConfig {
    /// Merges the command line's settings with the config files, highest first: the command
    /// line, `config_file` (the `-c` given there), `default_config_file` (read only if it
    /// exists), the built-in defaults. Files are read for the flags a binary of `scope` takes.
    #[cfg(feature = "cli")]
    pub(crate) fn load(
        command_line: Layer,
        config_file: Option<PathBuf>,
        default_config_file: Option<&Path>,
        scope: Scope,
    ) -> Result<ClusterConfig, ConfigError> {
        let mut layers = vec![command_line];
        if let Some(path) = &config_file {
            let path = expand_user(path, std::env::var_os("HOME"));
            if !path.is_file() {
                return Err(ConfigError::FileNotFound(path));
            }
            layers.push(file_layer(&path, scope)?);
        }
        if let Some(path) = default_config_file.filter(|p| p.exists()) {
            layers.push(file_layer(path, scope)?);
        }
        ClusterConfig::resolve(&layers, config_file)
    }

    fn resolve(
        layers: &[Layer],
        config_file: Option<PathBuf>,
    ) -> Result<ClusterConfig, ConfigError> {
        let r = &Resolver { layers };
        Ok(ClusterConfig {
            config_file,
            secrets_directory: PathBuf::from(r.value(Flag::SecretsDirectory)),
            proxy: r.optional(Flag::Proxy),
            debug: r.flag(Flag::Debug),
            port: r.port(Flag::Port)?,
            enable_crd_support: r.flag(Flag::EnableCrdSupport),
            enable_deprecated_multi_namespace_support: r
                .flag(Flag::EnableDeprecatedMultiNamespaceSupport),
            ready_check_timeout_multiplier: r.integer(Flag::ReadyCheckTimeoutMultiplier)?,
            extension_hook_url: r.optional(Flag::ExtensionHookUrl),
            use_apiextensionsv1_crd: r.flag(Flag::UseApiextensionsV1Crd),
            disable_crd_creation: r.flag(Flag::DisableCrdCreation),
            include_status_in_app: r.flag(Flag::IncludeStatusInApp),
            usage_reporting_cluster_name: r.optional(Flag::UsageReportingClusterName),
            usage_reporting_operator: r.optional(Flag::UsageReportingOperator),
            usage_reporting_endpoint: r.optional(Flag::UsageReportingEndpoint),
            usage_reporting_tenant: r.optional(Flag::UsageReportingTenant),
            usage_reporting_team: r.optional(Flag::UsageReportingTeam),
            api_server: r.value(Flag::ApiServer),
            api_token: r.optional(Flag::ApiToken),
            api_cert: r.path(Flag::ApiCert),
            client_cert: r.path(Flag::ClientCert),
            client_key: r.path(Flag::ClientKey),
            tls_certificate_ready: r.flag(Flag::TlsCertificateReady),
            // Not a flag: see `ClusterConfig::with_env_identity`.
            image: String::new(),
            transform: TransformSettings::resolve(r)?,
            deploys: DeploySettings::resolve(r)?,
            daemon: DaemonSettings::resolve(r)?,
        })
    }

    /// Sets [`ClusterConfig::image`] and [`TransformSettings::version`] from the environment as
    /// upstream does: `IMAGE`, else `FIAAS_IMAGE`; `VERSION`, else `FIAAS_VERSION` (empty counts
    /// as unset).
    pub fn with_env_identity(self) -> Self {
        self.with_identity_from(|name| std::env::var(name).ok())
    }

    pub(crate) fn with_identity_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let first_set = |names: [&str; 2]| {
            names
                .into_iter()
                .find_map(|name| lookup(name).filter(|v| !v.is_empty()))
        };
        if let Some(image) = first_set(["IMAGE", "FIAAS_IMAGE"]) {
            self.image = image;
        }
        if let Some(version) = first_set(["VERSION", "FIAAS_VERSION"]) {
            self.transform.version = version;
        }
        self
    }
}

/// `os.path.expanduser` for `~` and `~/…`, as ConfigArgParse applies it to `-c`.
#[cfg(feature = "cli")]
fn expand_user(path: &Path, home: Option<OsString>) -> PathBuf {
    let (Some(home), Ok(rest)) = (home, path.strip_prefix("~")) else {
        return path.to_path_buf();
    };
    PathBuf::from(home).join(rest)
}

/// A URL with any `user:password@` replaced by `***@`, for logs.
fn without_credentials(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

impl fmt::Debug for ClusterConfig {
    /// Every field except `api_token`, with credentials in URLs and the values of the global
    /// environment left out: the daemon logs this at startup.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let ClusterConfig {
            config_file,
            secrets_directory,
            proxy,
            debug,
            port,
            enable_crd_support,
            enable_deprecated_multi_namespace_support,
            ready_check_timeout_multiplier,
            extension_hook_url,
            use_apiextensionsv1_crd,
            disable_crd_creation,
            include_status_in_app,
            usage_reporting_cluster_name,
            usage_reporting_operator,
            usage_reporting_endpoint,
            usage_reporting_tenant,
            usage_reporting_team,
            api_server,
            api_token: _,
            api_cert,
            client_cert,
            client_key,
            tls_certificate_ready,
            image,
            transform,
            deploys,
            daemon,
        } = self;
        f.debug_struct("ClusterConfig")
            .field("config_file", config_file)
            .field("secrets_directory", secrets_directory)
            .field("proxy", &proxy.as_deref().map(without_credentials))
            .field("debug", debug)
            .field("port", port)
            .field("enable_crd_support", enable_crd_support)
            .field(
                "enable_deprecated_multi_namespace_support",
                enable_deprecated_multi_namespace_support,
            )
            .field(
                "ready_check_timeout_multiplier",
                ready_check_timeout_multiplier,
            )
            .field(
                "extension_hook_url",
                &extension_hook_url.as_deref().map(without_credentials),
            )
            .field("use_apiextensionsv1_crd", use_apiextensionsv1_crd)
            .field("disable_crd_creation", disable_crd_creation)
            .field("include_status_in_app", include_status_in_app)
            .field("usage_reporting_cluster_name", usage_reporting_cluster_name)
            .field("usage_reporting_operator", usage_reporting_operator)
            .field(
                "usage_reporting_endpoint",
                &usage_reporting_endpoint.as_deref().map(without_credentials),
            )
            .field("usage_reporting_tenant", usage_reporting_tenant)
            .field("usage_reporting_team", usage_reporting_team)
            .field("api_server", &without_credentials(api_server))
            .field("api_cert", api_cert)
            .field("client_cert", client_cert)
            .field("client_key", client_key)
            .field("tls_certificate_ready", tls_certificate_ready)
            .field("image", image)
            .field("transform", transform)
            .field("deploys", deploys)
            .field("daemon", daemon)
            .finish()
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::{
        Infrastructure, IntOrStr, LogFormat, ServiceType, UnhealthyPodEvictionPolicy, UseIngressTls,
    };

    #[test]
    fn the_logged_configuration_shows_no_credentials() {
        let config = parse(&[
            "--proxy",
            "http://user:s3cret@proxy.example.com:3128",
            "--extension-hook-url",
            "https://hook:pw1@hook.example.com/path@x",
            "--usage-reporting-endpoint",
            "https://usage.example.com/x",
            "--global-env",
            "DB_PASSWORD=hunter2",
            "--api-token",
            "tok3n",
        ])
        .unwrap();
        let logged = format!("{config:?}");
        for secret in ["s3cret", "pw1", "hunter2", "tok3n"] {
            assert!(!logged.contains(secret), "{secret} in {logged}");
        }
        assert!(
            logged.contains("http://***@proxy.example.com:3128"),
            "{logged}"
        );
        assert!(
            logged.contains("https://***@hook.example.com/path@x"),
            "{logged}"
        );
        assert!(logged.contains("https://usage.example.com/x"));
        assert!(logged.contains("DB_PASSWORD"));
    }

    #[test]
    fn defaults() {
        let c = ClusterConfig::default();
        assert_eq!(c.config_file, None);
        assert_eq!(
            c.secrets_directory,
            PathBuf::from("/var/run/secrets/fiaas/")
        );
        assert_eq!(c.transform.log_format, LogFormat::Plain);
        assert_eq!(c.proxy, None);
        assert!(!c.debug);
        assert_eq!(c.transform.environment, "");
        assert_eq!(c.transform.service_type, ServiceType::ClusterIP);
        assert_eq!(c.transform.infrastructure, Infrastructure::Diy);
        assert_eq!(c.port, 5000);
        assert!(!c.enable_crd_support);
        assert_eq!(c.transform.secrets_init_container_image, None);
        assert_eq!(c.transform.secrets_service_account_name, None);
        assert_eq!(c.transform.datadog_container_image, None);
        assert_eq!(c.transform.datadog_container_memory, "2Gi");
        assert!(c.transform.datadog_global_tags.is_empty());
        assert!(!c.transform.datadog_activate_sleep);
        assert_eq!(c.transform.pre_stop_delay, 0);
        assert_eq!(c.transform.strongbox_init_container_image, None);
        assert!(!c.enable_deprecated_multi_namespace_support);
        assert!(!c.transform.use_in_memory_emptydirs);
        assert_eq!(
            c.transform.deployment_max_surge,
            IntOrStr::Str("25%".to_string())
        );
        // argparse runs string defaults through the type converter.
        assert_eq!(c.transform.deployment_max_unavailable, IntOrStr::Int(0));
        assert!(!c.transform.enable_deprecated_tls_entry_per_host);
        assert_eq!(c.ready_check_timeout_multiplier, 10);
        assert!(!c.transform.disable_deprecated_managed_env_vars);
        assert_eq!(c.extension_hook_url, None);
        assert!(!c.transform.enable_service_account_per_app);
        assert!(!c.transform.use_networkingv1_ingress);
        assert!(!c.use_apiextensionsv1_crd);
        assert!(!c.disable_crd_creation);
        assert!(!c.include_status_in_app);
        assert!(c.transform.list_of_roles.is_empty());
        assert!(c.transform.list_of_cluster_roles.is_empty());
        assert_eq!(c.transform.pdb_max_unavailable, IntOrStr::Int(1));
        assert_eq!(
            c.transform.pdb_unhealthy_pod_eviction_policy,
            UnhealthyPodEvictionPolicy::IfHealthyBudget
        );
        assert!(c.transform.enable_service_links);
        assert!(c.transform.dns_search_domains.is_empty());
        assert!(c.transform.ingress_host_pairs.is_empty());
        assert_eq!(c.usage_reporting_cluster_name, None);
        assert_eq!(c.usage_reporting_operator, None);
        assert_eq!(c.usage_reporting_endpoint, None);
        assert_eq!(c.usage_reporting_tenant, None);
        assert_eq!(c.usage_reporting_team, None);
        assert_eq!(c.api_server, "https://kubernetes.default.svc.cluster.local");
        assert_eq!(c.api_token, None);
        assert_eq!(c.api_cert, None);
        assert_eq!(c.client_cert, None);
        assert_eq!(c.client_key, None);
        assert!(c.transform.ingress_suffixes.is_empty());
        assert!(c.transform.host_rewrite_rules.is_empty());
        assert!(c.transform.global_env.is_empty());
        assert!(c.transform.secret_init_containers.is_empty());
        assert_eq!(c.transform.use_ingress_tls, UseIngressTls::Disabled);
        assert_eq!(c.transform.tls_certificate_issuer, None);
        assert!(c.transform.tls_certificate_issuer_overrides.is_empty());
        assert_eq!(
            c.transform.tls_certificate_issuer_type_default,
            "certmanager.k8s.io/cluster-issuer"
        );
        assert!(c.transform.tls_certificate_issuer_type_overrides.is_empty());
        assert!(!c.tls_certificate_ready);
        assert_eq!(c.image, "");
        assert_eq!(c.transform.version, "");
    }

    #[test]
    fn every_flag_on_the_command_line() {
        let c = parse(&[
            "--secrets-directory=/s",
            "--log-format",
            "json",
            "--proxy",
            "http://proxy:3128",
            "--debug",
            "--environment",
            "dev",
            "--service-type",
            "LoadBalancer",
            "--infrastructure",
            "gke",
            "--port",
            "8080",
            "--enable-crd-support",
            "--secrets-init-container-image",
            "secrets:1",
            "--secrets-service-account-name",
            "secrets-sa",
            "--datadog-container-image",
            "dd:7",
            "--datadog-container-memory",
            "1Gi",
            "--datadog-global-tags",
            "a=1",
            "--datadog-activate-sleep",
            "--pre-stop-delay",
            "-5",
            "--strongbox-init-container-image",
            "strongbox:2",
            "--enable-deprecated-multi-namespace-support",
            "--use-in-memory-emptydirs",
            "--deployment-max-surge",
            "2",
            "--deployment-max-unavailable",
            "10%",
            "--enable-deprecated-tls-entry-per-host",
            "--ready-check-timeout-multiplier",
            "3",
            "--disable-deprecated-managed-env-vars",
            "--extension-hook-url",
            "http://hook",
            "--enable-service-account-per-app",
            "--use-networkingv1-ingress",
            "--use-apiextensionsv1-crd",
            "--disable-crd-creation",
            "--include-status-in-app",
            "--list-of-roles",
            "r1",
            "--list-of-roles",
            "r2",
            "--list-of-cluster-roles",
            "cr",
            "--pdb-max-unavailable",
            "50%",
            "--pdb-unhealthy-pod-eviction-policy",
            "AlwaysAllow",
            "--disable-service-links",
            "--dns-search-domains",
            "svc.local",
            "--ingress-host-pair",
            "a.example=b.example",
            "--usage-reporting-cluster-name",
            "cluster",
            "--usage-reporting-operator",
            "operator",
            "--usage-reporting-endpoint",
            "http://usage",
            "--usage-reporting-tenant",
            "tenant",
            "--usage-reporting-team",
            "team",
            "--api-server",
            "https://api:6443",
            "--api-token",
            "secret-token",
            "--api-cert",
            "/ca.crt",
            "--client-cert",
            "/client.crt",
            "--client-key",
            "/client.key",
            "--ingress-suffix",
            "svc.example.com",
            "--ingress-suffix",
            "example.net",
            "--host-rewrite-rule",
            r"(.*)\.old=\1.new",
            "--global-env",
            "K=V",
            "--secret-init-containers",
            "parameter-store=ps:1",
            "--use-ingress-tls",
            "default_on",
            "--tls-certificate-issuer",
            "letsencrypt",
            "--tls-certificate-issuer-overrides",
            "example.com=other",
            "--tls-certificate-issuer-type-default",
            "cert-manager.io/issuer",
            "--tls-certificate-issuer-type-overrides",
            "example.net=cert-manager.io/cluster-issuer",
            "--tls-certificate-ready",
        ])
        .unwrap();
        assert_eq!(c.config_file, None);
        assert_eq!(c.secrets_directory, PathBuf::from("/s"));
        assert_eq!(c.transform.log_format, LogFormat::Json);
        assert_eq!(c.proxy.as_deref(), Some("http://proxy:3128"));
        assert!(c.debug);
        assert_eq!(c.transform.environment, "dev");
        assert_eq!(c.transform.service_type, ServiceType::LoadBalancer);
        assert_eq!(c.transform.infrastructure, Infrastructure::Gke);
        assert_eq!(c.port, 8080);
        assert!(c.enable_crd_support);
        assert_eq!(
            c.transform.secrets_init_container_image.as_deref(),
            Some("secrets:1")
        );
        assert_eq!(
            c.transform.secrets_service_account_name.as_deref(),
            Some("secrets-sa")
        );
        assert_eq!(c.transform.datadog_container_image.as_deref(), Some("dd:7"));
        assert_eq!(c.transform.datadog_container_memory, "1Gi");
        assert_eq!(c.transform.datadog_global_tags, map(&[("a", "1")]));
        assert!(c.transform.datadog_activate_sleep);
        assert_eq!(c.transform.pre_stop_delay, -5);
        assert_eq!(
            c.transform.strongbox_init_container_image.as_deref(),
            Some("strongbox:2")
        );
        assert!(c.enable_deprecated_multi_namespace_support);
        assert!(c.transform.use_in_memory_emptydirs);
        assert_eq!(c.transform.deployment_max_surge, IntOrStr::Int(2));
        assert_eq!(
            c.transform.deployment_max_unavailable,
            IntOrStr::Str("10%".to_string())
        );
        assert!(c.transform.enable_deprecated_tls_entry_per_host);
        assert_eq!(c.ready_check_timeout_multiplier, 3);
        assert!(c.transform.disable_deprecated_managed_env_vars);
        assert_eq!(c.extension_hook_url.as_deref(), Some("http://hook"));
        assert!(c.transform.enable_service_account_per_app);
        assert!(c.transform.use_networkingv1_ingress);
        assert!(c.use_apiextensionsv1_crd);
        assert!(c.disable_crd_creation);
        assert!(c.include_status_in_app);
        assert_eq!(c.transform.list_of_roles, strings(&["r1", "r2"]));
        assert_eq!(c.transform.list_of_cluster_roles, strings(&["cr"]));
        assert_eq!(
            c.transform.pdb_max_unavailable,
            IntOrStr::Str("50%".to_string())
        );
        assert_eq!(
            c.transform.pdb_unhealthy_pod_eviction_policy,
            UnhealthyPodEvictionPolicy::AlwaysAllow
        );
        assert!(!c.transform.enable_service_links);
        assert_eq!(c.transform.dns_search_domains, strings(&["svc.local"]));
        assert_eq!(
            c.transform.ingress_host_pairs,
            map(&[("a.example", "b.example"), ("b.example", "a.example")])
        );
        assert_eq!(c.usage_reporting_cluster_name.as_deref(), Some("cluster"));
        assert_eq!(c.usage_reporting_operator.as_deref(), Some("operator"));
        assert_eq!(c.usage_reporting_endpoint.as_deref(), Some("http://usage"));
        assert_eq!(c.usage_reporting_tenant.as_deref(), Some("tenant"));
        assert_eq!(c.usage_reporting_team.as_deref(), Some("team"));
        assert_eq!(c.api_server, "https://api:6443");
        assert_eq!(c.api_token.as_deref(), Some("secret-token"));
        assert_eq!(c.api_cert, Some(PathBuf::from("/ca.crt")));
        assert_eq!(c.client_cert, Some(PathBuf::from("/client.crt")));
        assert_eq!(c.client_key, Some(PathBuf::from("/client.key")));
        assert_eq!(
            c.transform.ingress_suffixes,
            strings(&["svc.example.com", "example.net"])
        );
        assert_eq!(
            c.transform.host_rewrite_rules,
            vec![rule(r"(.*)\.old=\1.new")]
        );
        assert_eq!(c.transform.global_env, map(&[("K", "V")]));
        assert_eq!(
            c.transform.secret_init_containers,
            map(&[("parameter-store", "ps:1")])
        );
        assert_eq!(c.transform.use_ingress_tls, UseIngressTls::DefaultOn);
        assert_eq!(
            c.transform.tls_certificate_issuer.as_deref(),
            Some("letsencrypt")
        );
        assert_eq!(
            c.transform.tls_certificate_issuer_overrides,
            map(&[("example.com", "other")])
        );
        assert_eq!(
            c.transform.tls_certificate_issuer_type_default,
            "cert-manager.io/issuer"
        );
        assert_eq!(
            c.transform.tls_certificate_issuer_type_overrides,
            map(&[("example.net", "cert-manager.io/cluster-issuer")])
        );
        assert!(c.tls_certificate_ready);
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        let missing = std::env::temp_dir().join("fiaas-transform-config-test-missing.yaml");
        let err = parse(&["--config-file", &missing.display().to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("File not found: {}", missing.display())
        );
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn config_file_paths_expand_the_home_directory() {
        let home = Some(OsString::from("/home/fiaas"));
        assert_eq!(
            expand_user(Path::new("~/c.yaml"), home.clone()),
            PathBuf::from("/home/fiaas/c.yaml")
        );
        assert_eq!(
            expand_user(Path::new("~"), home.clone()),
            PathBuf::from("/home/fiaas")
        );
        assert_eq!(
            expand_user(Path::new("/a/~/b"), home),
            PathBuf::from("/a/~/b")
        );
        assert_eq!(
            expand_user(Path::new("~/c.yaml"), None),
            PathBuf::from("~/c.yaml")
        );
    }

    #[test]
    fn identity_comes_from_image_and_version_variables() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = ClusterConfig::default().with_identity_from(env(&[
            ("IMAGE", "img:1"),
            ("FIAAS_IMAGE", "x"),
            ("FIAAS_VERSION", "1.2"),
        ]));
        assert_eq!(
            (c.image.as_str(), c.transform.version.as_str()),
            ("img:1", "1.2")
        );
        let c = ClusterConfig::default()
            .with_identity_from(env(&[("IMAGE", ""), ("FIAAS_IMAGE", "fimg")]));
        assert_eq!(
            (c.image.as_str(), c.transform.version.as_str()),
            ("fimg", "")
        );
    }

    #[test]
    fn debug_output_leaves_out_the_api_token() {
        let c = parse(&["--api-token", "s3cr3t", "--environment", "dev"]).unwrap();
        let text = format!("{c:?}");
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!text.contains("api_token"), "{text}");
        assert!(text.contains("environment: \"dev\""), "{text}");
    }

    #[test]
    fn the_deploy_and_daemon_flags_take_their_defaults_files_and_command_line() {
        let defaults = ClusterConfig::default();
        assert_eq!(
            defaults.deploys,
            DeploySettings {
                max_concurrent_deploys: 20,
                status_retention: 10,
            }
        );
        assert_eq!(
            defaults.daemon,
            DaemonSettings {
                shutdown_grace_seconds: 20,
                leader_election: false,
                leader_election_lease_name: "fiaas-deploy-daemon".to_owned(),
                shards: 1,
                crd_validation: false,
            }
        );
        let default_file = TempFile::new(
            "max-concurrent-deploys: 5\nstatus-retention: 3\nleader-election: yes\n\
             leader-election-lease-name: from-default\nshards: 12\ncrd-validation: true\n",
        );
        let config_file = TempFile::new("max-concurrent-deploys: 7\nshutdown-grace-seconds: 1\n");
        let args = ["-c", &config_file.arg(), "--status-retention", "4"];
        let c = parse_daemon(&args, Some(default_file.path())).unwrap();
        let deploys = DeploySettings {
            max_concurrent_deploys: 7,
            status_retention: 4,
        };
        assert_eq!(c.deploys, deploys);
        assert_eq!(
            c.daemon,
            DaemonSettings {
                shutdown_grace_seconds: 1,
                leader_election: true,
                leader_election_lease_name: "from-default".to_owned(),
                shards: 12,
                crd_validation: true,
            }
        );
        // The bootstrapper takes the deploy flags, not the daemon's own: their entries in its
        // files are ignored like any unknown key.
        let c = parse_as(Scope::Deployer, &args, Some(default_file.path())).unwrap();
        assert_eq!(c.deploys, deploys);
        assert_eq!(c.daemon, defaults.daemon);
        let c = parse_with(&[], Some(default_file.path())).unwrap();
        assert_eq!(c.deploys, defaults.deploys);
        assert_eq!(c.daemon, defaults.daemon);
    }
}
