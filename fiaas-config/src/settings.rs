//! The typed settings each part reads: [`TransformSettings`] for fiaas-transform (what changes
//! the rendered objects), [`DeploySettings`] for the binaries that deploy and [`DaemonSettings`]
//! for fiaas-deploy-daemon's own flags.

use std::fmt;

use indexmap::IndexMap;

use crate::ConfigError;
use crate::choices::{
    Infrastructure, IntOrStr, LogFormat, ServiceType, UnhealthyPodEvictionPolicy, UseIngressTls,
};
use crate::flags::Flag;
use crate::host_rewrite::HostRewriteRule;
use crate::precedence::Resolver;

/// What fiaas-transform reads: the flags that change the objects rendered for an app. Field
/// docs give the flag each comes from.
#[derive(Clone)]
pub struct TransformSettings {
    /// `--log-format`.
    pub log_format: LogFormat,
    /// `--environment`.
    pub environment: String,
    /// `--service-type`.
    pub service_type: ServiceType,
    /// `--infrastructure`.
    pub infrastructure: Infrastructure,
    /// `--secrets-init-container-image`.
    pub secrets_init_container_image: Option<String>,
    /// `--secrets-service-account-name`.
    pub secrets_service_account_name: Option<String>,
    /// `--datadog-container-image`.
    pub datadog_container_image: Option<String>,
    /// `--datadog-container-memory`.
    pub datadog_container_memory: String,
    /// `--datadog-global-tags`.
    pub datadog_global_tags: IndexMap<String, String>,
    /// `--datadog-activate-sleep`.
    pub datadog_activate_sleep: bool,
    /// `--pre-stop-delay`.
    pub pre_stop_delay: i64,
    /// `--strongbox-init-container-image`.
    pub strongbox_init_container_image: Option<String>,
    /// `--use-in-memory-emptydirs`.
    pub use_in_memory_emptydirs: bool,
    /// `--deployment-max-surge`.
    pub deployment_max_surge: IntOrStr,
    /// `--deployment-max-unavailable`.
    pub deployment_max_unavailable: IntOrStr,
    /// `--enable-deprecated-tls-entry-per-host`.
    pub enable_deprecated_tls_entry_per_host: bool,
    /// `--disable-deprecated-managed-env-vars`.
    pub disable_deprecated_managed_env_vars: bool,
    /// `--enable-service-account-per-app`.
    pub enable_service_account_per_app: bool,
    /// `--use-networkingv1-ingress`.
    pub use_networkingv1_ingress: bool,
    /// `--list-of-roles`.
    pub list_of_roles: Vec<String>,
    /// `--list-of-cluster-roles`.
    pub list_of_cluster_roles: Vec<String>,
    /// `--pdb-max-unavailable`.
    pub pdb_max_unavailable: IntOrStr,
    /// `--pdb-unhealthy-pod-eviction-policy`.
    pub pdb_unhealthy_pod_eviction_policy: UnhealthyPodEvictionPolicy,
    /// `false` when `--disable-service-links` is given.
    pub enable_service_links: bool,
    /// `--dns-search-domains`.
    pub dns_search_domains: Vec<String>,
    /// `--ingress-host-pair`, each pair stored in both directions.
    pub ingress_host_pairs: IndexMap<String, String>,
    /// `--ingress-suffix`, in the order given.
    pub ingress_suffixes: Vec<String>,
    /// `--host-rewrite-rule`, in the order given.
    pub host_rewrite_rules: Vec<HostRewriteRule>,
    /// `--global-env`.
    pub global_env: IndexMap<String, String>,
    /// `--secret-init-containers`; see also [`TransformSettings::secret_init_container_images`].
    pub secret_init_containers: IndexMap<String, String>,
    /// `--use-ingress-tls`.
    pub use_ingress_tls: UseIngressTls,
    /// `--tls-certificate-issuer`.
    pub tls_certificate_issuer: Option<String>,
    /// `--tls-certificate-issuer-overrides`.
    pub tls_certificate_issuer_overrides: IndexMap<String, String>,
    /// `--tls-certificate-issuer-type-default`.
    pub tls_certificate_issuer_type_default: String,
    /// `--tls-certificate-issuer-type-overrides`.
    pub tls_certificate_issuer_type_overrides: IndexMap<String, String>,
    /// The daemon's own version (env `VERSION`, else `FIAAS_VERSION`); not a flag.
    pub version: String,
}

impl Default for TransformSettings {
    /// Built-in defaults only, as if no flag and no file was given.
    fn default() -> Self {
        TransformSettings::resolve(&Resolver { layers: &[] })
            .expect("the built-in defaults are valid")
    }
}

impl TransformSettings {
    pub(crate) fn resolve(r: &Resolver<'_>) -> Result<TransformSettings, ConfigError> {
        Ok(TransformSettings {
            log_format: r.choice(Flag::LogFormat)?,
            environment: r.value(Flag::Environment),
            service_type: r.choice(Flag::ServiceType)?,
            infrastructure: r.choice(Flag::Infrastructure)?,
            secrets_init_container_image: r.optional(Flag::SecretsInitContainerImage),
            secrets_service_account_name: r.optional(Flag::SecretsServiceAccountName),
            datadog_container_image: r.optional(Flag::DatadogContainerImage),
            datadog_container_memory: r.value(Flag::DatadogContainerMemory),
            datadog_global_tags: r.key_values(Flag::DatadogGlobalTags)?,
            datadog_activate_sleep: r.flag(Flag::DatadogActivateSleep),
            pre_stop_delay: r.integer(Flag::PreStopDelay)?,
            strongbox_init_container_image: r.optional(Flag::StrongboxInitContainerImage),
            use_in_memory_emptydirs: r.flag(Flag::UseInMemoryEmptydirs),
            deployment_max_surge: IntOrStr::parse(&r.value(Flag::DeploymentMaxSurge)),
            deployment_max_unavailable: IntOrStr::parse(&r.value(Flag::DeploymentMaxUnavailable)),
            enable_deprecated_tls_entry_per_host: r.flag(Flag::EnableDeprecatedTlsEntryPerHost),
            disable_deprecated_managed_env_vars: r.flag(Flag::DisableDeprecatedManagedEnvVars),
            enable_service_account_per_app: r.flag(Flag::EnableServiceAccountPerApp),
            use_networkingv1_ingress: r.flag(Flag::UseNetworkingV1Ingress),
            list_of_roles: r.values(Flag::ListOfRoles),
            list_of_cluster_roles: r.values(Flag::ListOfClusterRoles),
            pdb_max_unavailable: IntOrStr::parse(&r.value(Flag::PdbMaxUnavailable)),
            pdb_unhealthy_pod_eviction_policy: r.choice(Flag::PdbUnhealthyPodEvictionPolicy)?,
            enable_service_links: !r.flag(Flag::DisableServiceLinks),
            dns_search_domains: r.values(Flag::DnsSearchDomains),
            ingress_host_pairs: r.host_pairs(Flag::IngressHostPair)?,
            ingress_suffixes: r.values(Flag::IngressSuffix),
            host_rewrite_rules: r
                .values(Flag::HostRewriteRule)
                .iter()
                .map(|rule| HostRewriteRule::parse(rule))
                .collect::<Result<_, _>>()?,
            global_env: r.key_values(Flag::GlobalEnv)?,
            secret_init_containers: r.key_values(Flag::SecretInitContainers)?,
            use_ingress_tls: r.choice(Flag::UseIngressTls)?,
            tls_certificate_issuer: r.optional(Flag::TlsCertificateIssuer),
            tls_certificate_issuer_overrides: r.key_values(Flag::TlsCertificateIssuerOverrides)?,
            tls_certificate_issuer_type_default: r.value(Flag::TlsCertificateIssuerTypeDefault),
            tls_certificate_issuer_type_overrides: r
                .key_values(Flag::TlsCertificateIssuerTypeOverrides)?,
            // Not a flag: see `ClusterConfig::with_env_identity`.
            version: String::new(),
        })
    }

    /// The secret init-container images by type: `--secret-init-containers`, plus `strongbox`
    /// from `--strongbox-init-container-image` and `default` from
    /// `--secrets-init-container-image`, each unless its type is already given there (upstream
    /// then ignores the flag with a warning). The bool is true when `default` came from
    /// `--secrets-init-container-image`, which makes every generic init-container pod mount
    /// its service account token.
    pub fn secret_init_container_images(&self) -> (IndexMap<String, String>, bool) {
        let mut images = self.secret_init_containers.clone();
        for secret_type in ["strongbox", "default"] {
            if let Some(image) = self.secret_init_container_image(secret_type) {
                images
                    .entry(secret_type.to_owned())
                    .or_insert_with(|| image.to_owned());
            }
        }
        (images, self.secret_init_containers_mount_token())
    }

    /// The image of [`Self::secret_init_container_images`] for one type, without building the
    /// map (every deploy looks up one or two).
    pub fn secret_init_container_image(&self, secret_type: &str) -> Option<&str> {
        let flag = match secret_type {
            "strongbox" => self.strongbox_init_container_image.as_ref(),
            "default" => self.secrets_init_container_image.as_ref(),
            _ => None,
        };
        self.secret_init_containers
            .get(secret_type)
            .or(flag)
            .map(String::as_str)
    }

    /// The bool of [`Self::secret_init_container_images`]: `default` came from
    /// `--secrets-init-container-image`.
    pub fn secret_init_containers_mount_token(&self) -> bool {
        self.secrets_init_container_image.is_some()
            && !self.secret_init_containers.contains_key("default")
    }
}

impl fmt::Debug for TransformSettings {
    /// Every field, with the values of the global environment left out: the daemon logs this at
    /// startup.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let TransformSettings {
            log_format,
            environment,
            service_type,
            infrastructure,
            secrets_init_container_image,
            secrets_service_account_name,
            datadog_container_image,
            datadog_container_memory,
            datadog_global_tags,
            datadog_activate_sleep,
            pre_stop_delay,
            strongbox_init_container_image,
            use_in_memory_emptydirs,
            deployment_max_surge,
            deployment_max_unavailable,
            enable_deprecated_tls_entry_per_host,
            disable_deprecated_managed_env_vars,
            enable_service_account_per_app,
            use_networkingv1_ingress,
            list_of_roles,
            list_of_cluster_roles,
            pdb_max_unavailable,
            pdb_unhealthy_pod_eviction_policy,
            enable_service_links,
            dns_search_domains,
            ingress_host_pairs,
            ingress_suffixes,
            host_rewrite_rules,
            global_env,
            secret_init_containers,
            use_ingress_tls,
            tls_certificate_issuer,
            tls_certificate_issuer_overrides,
            tls_certificate_issuer_type_default,
            tls_certificate_issuer_type_overrides,
            version,
        } = self;
        f.debug_struct("TransformSettings")
            .field("log_format", log_format)
            .field("environment", environment)
            .field("service_type", service_type)
            .field("infrastructure", infrastructure)
            .field("secrets_init_container_image", secrets_init_container_image)
            .field("secrets_service_account_name", secrets_service_account_name)
            .field("datadog_container_image", datadog_container_image)
            .field("datadog_container_memory", datadog_container_memory)
            .field("datadog_global_tags", datadog_global_tags)
            .field("datadog_activate_sleep", datadog_activate_sleep)
            .field("pre_stop_delay", pre_stop_delay)
            .field(
                "strongbox_init_container_image",
                strongbox_init_container_image,
            )
            .field("use_in_memory_emptydirs", use_in_memory_emptydirs)
            .field("deployment_max_surge", deployment_max_surge)
            .field("deployment_max_unavailable", deployment_max_unavailable)
            .field(
                "enable_deprecated_tls_entry_per_host",
                enable_deprecated_tls_entry_per_host,
            )
            .field(
                "disable_deprecated_managed_env_vars",
                disable_deprecated_managed_env_vars,
            )
            .field(
                "enable_service_account_per_app",
                enable_service_account_per_app,
            )
            .field("use_networkingv1_ingress", use_networkingv1_ingress)
            .field("list_of_roles", list_of_roles)
            .field("list_of_cluster_roles", list_of_cluster_roles)
            .field("pdb_max_unavailable", pdb_max_unavailable)
            .field(
                "pdb_unhealthy_pod_eviction_policy",
                pdb_unhealthy_pod_eviction_policy,
            )
            .field("enable_service_links", enable_service_links)
            .field("dns_search_domains", dns_search_domains)
            .field("ingress_host_pairs", ingress_host_pairs)
            .field("ingress_suffixes", ingress_suffixes)
            .field("host_rewrite_rules", host_rewrite_rules)
            // Values may be secrets; the names say enough in a log.
            .field("global_env", &global_env.keys().collect::<Vec<_>>())
            .field("secret_init_containers", secret_init_containers)
            .field("use_ingress_tls", use_ingress_tls)
            .field("tls_certificate_issuer", tls_certificate_issuer)
            .field(
                "tls_certificate_issuer_overrides",
                tls_certificate_issuer_overrides,
            )
            .field(
                "tls_certificate_issuer_type_default",
                tls_certificate_issuer_type_default,
            )
            .field(
                "tls_certificate_issuer_type_overrides",
                tls_certificate_issuer_type_overrides,
            )
            .field("version", version)
            .finish()
    }
}

/// How deploys run, in the binaries that deploy (the daemon and the bootstrapper; the flags of
/// [`Scope::Deployer`](crate::Scope::Deployer)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeploySettings {
    /// `--max-concurrent-deploys`.
    pub max_concurrent_deploys: u32,
    /// `--status-retention`.
    pub status_retention: u32,
}

impl Default for DeploySettings {
    /// Built-in defaults only, as if no flag and no file was given.
    fn default() -> Self {
        DeploySettings::resolve(&Resolver { layers: &[] }).expect("the built-in defaults are valid")
    }
}

impl DeploySettings {
    pub(crate) fn resolve(r: &Resolver<'_>) -> Result<DeploySettings, ConfigError> {
        Ok(DeploySettings {
            max_concurrent_deploys: r.number(Flag::MaxConcurrentDeploys)?,
            status_retention: r.number(Flag::StatusRetention)?,
        })
    }
}

/// What only fiaas-deploy-daemon reads: its own flags, which the other binaries do not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSettings {
    /// `--shutdown-grace-seconds`.
    pub shutdown_grace_seconds: u64,
    /// `--leader-election`.
    pub leader_election: bool,
    /// `--leader-election-lease-name`.
    pub leader_election_lease_name: String,
    /// `--shards`.
    pub shards: u32,
    /// `--crd-validation`.
    pub crd_validation: bool,
}

impl Default for DaemonSettings {
    /// Built-in defaults only, as if no flag and no file was given.
    fn default() -> Self {
        DaemonSettings::resolve(&Resolver { layers: &[] }).expect("the built-in defaults are valid")
    }
}

impl DaemonSettings {
    pub(crate) fn resolve(r: &Resolver<'_>) -> Result<DaemonSettings, ConfigError> {
        Ok(DaemonSettings {
            shutdown_grace_seconds: r.seconds(Flag::ShutdownGraceSeconds)?,
            leader_election: r.flag(Flag::LeaderElection),
            leader_election_lease_name: r.value(Flag::LeaderElectionLeaseName),
            shards: r.number(Flag::Shards)?,
            crd_validation: r.flag(Flag::CrdValidation),
        })
    }
}

#[cfg(all(test, feature = "cli"))]
mod cli_tests {
    use crate::test_support::*;

    #[test]
    fn key_value_flags_split_on_exactly_one_equals_sign() {
        let c = parse(&[
            "--global-env",
            "A=1",
            "--global-env",
            "B=",
            "--global-env",
            "=c",
            "--global-env",
            "A=2",
        ])
        .unwrap();
        // A later duplicate replaces the value but keeps the key's first position.
        assert_eq!(
            entries(&c.transform.global_env),
            [("A", "2"), ("B", ""), ("", "c")]
        );

        let err = parse(&["--global-env", "A=1=2"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--global-env: invalid value 'A=1=2': expected KEY=VALUE with exactly one '='"
        );
        assert_eq!(err.exit_code(), 2);
        let err = parse(&["--tls-certificate-issuer-overrides", "nokey"]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--tls-certificate-issuer-overrides: invalid value 'nokey'")
        );
    }

    #[test]
    fn bad_values_name_the_flag() {
        let err = parse(&["--pre-stop-delay", "x"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--pre-stop-delay: invalid value 'x': expected an integer"
        );
        assert_eq!(err.exit_code(), 2);
        let err = parse_file("pre-stop-delay: x\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--pre-stop-delay: invalid value 'x': expected an integer"
        );
        let err = parse(&["--port", "70000"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--port: invalid value '70000': expected a port number from 0 to 65535"
        );
        let err = parse_file("ready-check-timeout-multiplier: 1.5\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--ready-check-timeout-multiplier: ")
        );
        let err = parse_file("log-format: xml\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--log-format: invalid value 'xml': expected one of plain, json"
        );
        let err = parse_file("use-ingress-tls: on\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--use-ingress-tls: invalid value 'True': expected one of disabled, default_off, \
             default_on"
        );
    }

    #[test]
    fn host_pairs_map_both_ways() {
        let c = parse_file("ingress-host-pair: [a.example=b.example, c=d=e]\n").unwrap();
        assert_eq!(
            entries(&c.transform.ingress_host_pairs),
            [
                ("a.example", "b.example"),
                ("b.example", "a.example"),
                ("c", "d=e"),
                ("d=e", "c"),
            ]
        );
        let err = parse(&["--ingress-host-pair", "lonely"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid host pair: lonely, format should be host1=host2"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn secret_init_container_registry() {
        let registry = |args: &[&str]| {
            let (images, automount) = parse(args)
                .unwrap()
                .transform
                .secret_init_container_images();
            (images.into_iter().collect::<Vec<_>>(), automount)
        };
        let owned = |items: &[(&str, &str)]| {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };

        assert_eq!(registry(&[]), (Vec::new(), false));
        assert_eq!(
            registry(&[
                "--secret-init-containers",
                "parameter-store=ps",
                "--strongbox-init-container-image",
                "sb",
                "--secrets-init-container-image",
                "generic",
            ]),
            (
                owned(&[
                    ("parameter-store", "ps"),
                    ("strongbox", "sb"),
                    ("default", "generic")
                ]),
                true
            )
        );
        assert_eq!(
            registry(&[
                "--secret-init-containers",
                "default=registered",
                "--secret-init-containers",
                "strongbox=sb-registered",
                "--strongbox-init-container-image",
                "sb",
                "--secrets-init-container-image",
                "generic",
            ]),
            (
                owned(&[("default", "registered"), ("strongbox", "sb-registered")]),
                false
            )
        );
    }
}
