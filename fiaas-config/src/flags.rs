//! The one definition of every flag: [`Flag`] names one, [`Flag::def`] says how it is spelt,
//! what it takes, its default and its help; the command line (`cli` feature), the config files,
//! the typed settings and `docs/configuration.md` all read this table.
//!
//! Flags are addressed by [`Flag`], never by name, so a misspelt flag is a compile error.

use crate::choices::{
    Infrastructure, LogFormat, ServiceType, UnhealthyPodEvictionPolicy, UseIngressTls,
};

/// How a flag takes values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Present or absent (`--debug`).
    Switch,
    /// One value; the last one given wins.
    Single,
    /// Repeatable; every value counts.
    Repeated,
}

/// What a value must look like. The command line checks it as it is parsed (clap's messages);
/// values from files are checked when the typed settings are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Values {
    /// Any text; the typed settings parse it further (integers, `key=value`, ...).
    Text,
    /// One of these names.
    Choice(&'static [&'static str]),
    /// A whole number from `min` to `max` (no bound: `u32::MAX`).
    Number {
        /// The smallest value.
        min: u32,
        /// The largest value, if below `u32::MAX`.
        max: Option<u32>,
    },
    /// A whole number of seconds, 0 or more.
    Seconds,
}

/// Which binaries take a flag; as a binary's scope, which flags it takes: those of its scope
/// and of the scopes before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// `fiaas-deploy-daemon`, `fiaas-deploy-daemon-bootstrap`, `fiaas render` and `fiaas diff`.
    Cluster,
    /// The binaries that deploy: `fiaas-deploy-daemon` and `fiaas-deploy-daemon-bootstrap`.
    Deployer,
    /// `fiaas-deploy-daemon` only, which takes every flag.
    Daemon,
}

impl Scope {
    /// Whether a binary of this scope takes `flag`.
    pub fn takes(self, flag: Flag) -> bool {
        flag.def().scope <= self
    }

    /// The flags a binary of this scope takes, in `--help` order.
    pub fn flags(self) -> impl Iterator<Item = Flag> {
        Flag::ALL
            .iter()
            .copied()
            .filter(move |flag| self.takes(*flag))
    }
}

/// How one flag is spelt and what it takes. Built in [`Flag::def`] only.
#[derive(Clone, Copy, Debug)]
pub struct FlagDef {
    /// The long name, without dashes; also the key in config files.
    pub long: &'static str,
    /// The short name, if any.
    pub short: Option<char>,
    /// How it takes values.
    pub shape: Shape,
    /// What a value must look like.
    pub values: Values,
    /// The built-in default, as text.
    pub default: Option<&'static str>,
    /// The placeholder for the value in help, without brackets; else the long name in capitals.
    pub value_name: Option<&'static str>,
    /// The `--help` section; `None` is clap's general "Options".
    pub heading: Option<&'static str>,
    /// Whether a value may start with `-` (`--pre-stop-delay -5`).
    pub negative_numbers: bool,
    /// Which binaries take it.
    pub scope: Scope,
    /// The help text: the doc comment of the [`Flag`] variant.
    doc: &'static str,
}

const fn flag(long: &'static str, shape: Shape) -> FlagDef {
    FlagDef {
        long,
        short: None,
        shape,
        values: Values::Text,
        default: None,
        value_name: None,
        heading: None,
        negative_numbers: false,
        scope: Scope::Cluster,
        doc: "",
    }
}

const fn switch(long: &'static str) -> FlagDef {
    flag(long, Shape::Switch)
}

const fn single(long: &'static str) -> FlagDef {
    flag(long, Shape::Single)
}

const fn repeated(long: &'static str) -> FlagDef {
    flag(long, Shape::Repeated)
}

impl FlagDef {
    const fn short(mut self, short: char) -> Self {
        self.short = Some(short);
        self
    }

    const fn default(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }

    const fn choices(self, names: &'static [&'static str]) -> Self {
        self.values(Values::Choice(names))
    }

    const fn values(mut self, values: Values) -> Self {
        self.values = values;
        self
    }

    const fn value_name(mut self, name: &'static str) -> Self {
        self.value_name = Some(name);
        self
    }

    const fn heading(mut self, heading: &'static str) -> Self {
        self.heading = Some(heading);
        self
    }

    const fn negative_numbers(mut self) -> Self {
        self.negative_numbers = true;
        self
    }

    const fn deployers_only(mut self) -> Self {
        self.scope = Scope::Deployer;
        self
    }

    const fn daemon_only(mut self) -> Self {
        self.scope = Scope::Daemon;
        self
    }

    const fn doc(mut self, doc: &'static str) -> Self {
        self.doc = doc;
        self
    }

    /// The help text on one line, as clap's derive made it from a doc comment: lines joined,
    /// one final period dropped.
    pub fn help(&self) -> String {
        let help = self.doc.split_whitespace().collect::<Vec<_>>().join(" ");
        match help.strip_suffix('.') {
            Some(stripped) if !stripped.ends_with('.') => stripped.to_owned(),
            _ => help,
        }
    }

    /// The placeholder for the value, e.g. `LOG_FORMAT` or `KEY=VALUE`.
    pub fn placeholder(&self) -> String {
        match self.value_name {
            Some(name) => name.to_owned(),
            None => self.long.replace('-', "_").to_uppercase(),
        }
    }
}

/// Defines [`Flag`] from the table: each row is the flag's help (its doc comment), its variant
/// and its definition, so a flag is added in one place.
macro_rules! flags {
    ($( $(#[doc = $doc:literal])+ $variant:ident => $def:expr, )+) => {
        /// Every flag of the daemon, the bootstrap, `fiaas render` and `fiaas diff`, in `--help`
        /// order. The documentation of each variant is the flag's help text.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Flag {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Flag {
            /// Every flag, in `--help` order.
            pub const ALL: &'static [Flag] = &[$(Flag::$variant),+];

            /// How the flag is spelt, what it takes, its default and help.
            pub fn def(self) -> &'static FlagDef {
                match self {
                    $(Flag::$variant => {
                        const DEF: FlagDef = $def.doc(concat!($($doc, "\n"),+));
                        &DEF
                    })+
                }
            }
        }
    };
}

flags! {
    /// Extra YAML config file; it overrides the default config file, the command line
    /// overrides it
    ConfigFile => single("config-file").short('c').value_name("FILE"),
    /// Load secrets from this directory
    SecretsDirectory => single("secrets-directory").default("/var/run/secrets/fiaas/"),
    /// Set logformat
    LogFormat => single("log-format").default("plain").choices(LogFormat::NAMES),
    /// Use http proxy (currently only used for usage reporting and the extension hook)
    Proxy => single("proxy"),
    /// Enable a number of debugging options (including disable SSL-verification)
    Debug => switch("debug"),
    /// Environment to deploy to
    Environment => single("environment").default(""),
    /// Type of kubernetes Service to create
    ServiceType => single("service-type").default("ClusterIP").choices(ServiceType::NAMES),
    /// The underlying infrastructure of the cluster to deploy to
    Infrastructure => single("infrastructure").default("diy").choices(Infrastructure::NAMES),
    /// Port to use for the web-interface
    Port => single("port").default("5000").negative_numbers(),
    /// Enable Custom Resource Definition support
    EnableCrdSupport => switch("enable-crd-support"),
    /// Use specified docker image as init container for secrets (experimental)
    SecretsInitContainerImage => single("secrets-init-container-image"),
    /// The service account that is passed to secrets init containers
    SecretsServiceAccountName => single("secrets-service-account-name"),
    /// Use specified docker image as datadog sidecar for apps
    DatadogContainerImage => single("datadog-container-image"),
    /// The amount of memory (request and limit) for the datadog sidecar
    DatadogContainerMemory => single("datadog-container-memory").default("2Gi"),
    /// Various non-essential global tags to send to datadog for all applications, as
    /// `<key>=<value>` (repeatable)
    DatadogGlobalTags => repeated("datadog-global-tags")
        .value_name("KEY=VALUE")
        .heading("Datadog Global tags"),
    /// Flag to activate the sleep in datadog when a pre-stop-delay is in the main container
    DatadogActivateSleep => switch("datadog-activate-sleep"),
    /// Add a pre-stop hook that sleeps for this amount of seconds
    PreStopDelay => single("pre-stop-delay").default("0").negative_numbers(),
    /// Use specified docker image as init container for apps that are configured to use
    /// Strongbox
    StrongboxInitContainerImage => single("strongbox-init-container-image"),
    /// Watch Applications and deploy in all namespaces instead of only the daemon's own
    /// (deprecated)
    EnableDeprecatedMultiNamespaceSupport => switch("enable-deprecated-multi-namespace-support"),
    /// Use memory for emptydirs mounted in the deployed application
    UseInMemoryEmptydirs => switch("use-in-memory-emptydirs"),
    /// Maximum number of extra pods that can be scheduled above the desired number of pods
    /// during an update
    DeploymentMaxSurge => single("deployment-max-surge").default("25%").negative_numbers(),
    /// The maximum number of pods that can be unavailable during an update
    DeploymentMaxUnavailable => single("deployment-max-unavailable")
        .default("0")
        .negative_numbers(),
    /// Also add a separate TLS entry for each host to Ingresses (deprecated)
    EnableDeprecatedTlsEntryPerHost => switch("enable-deprecated-tls-entry-per-host"),
    /// Multiply default ready check timeout (replicas * initialDelaySeconds) with this number
    /// of seconds
    ReadyCheckTimeoutMultiplier => single("ready-check-timeout-multiplier")
        .default("10")
        .negative_numbers(),
    /// Disable the deprecated managed environment variables (ARTIFACT_NAME, IMAGE and VERSION)
    /// in favour of the FIAAS_ prefixed ones
    DisableDeprecatedManagedEnvVars => switch("disable-deprecated-managed-env-vars"),
    /// Base URL of an external service called at hook points of each deploy to modify the
    /// Kubernetes objects
    ExtensionHookUrl => single("extension-hook-url"),
    /// Create a service account for each deployed application, using the application name
    EnableServiceAccountPerApp => switch("enable-service-account-per-app"),
    /// Use ingress from apiVersion networking.k8s.io/v1 instead of extensions/v1beta1
    UseNetworkingV1Ingress => switch("use-networkingv1-ingress"),
    /// Use apiextensions.k8s.io/v1 CustomResourceDefinition instead of v1beta1
    UseApiextensionsV1Crd => switch("use-apiextensionsv1-crd"),
    /// Skip the CRD creation and go directly to watching Applications
    DisableCrdCreation => switch("disable-crd-creation"),
    /// Include status subresource in application CRD
    IncludeStatusInApp => switch("include-status-in-app"),
    /// Role to bind to each app's service account (repeatable)
    ListOfRoles => repeated("list-of-roles"),
    /// ClusterRole to bind to each app's service account (repeatable)
    ListOfClusterRoles => repeated("list-of-cluster-roles"),
    /// The maximum number of pods that can be unavailable after an eviction
    PdbMaxUnavailable => single("pdb-max-unavailable").default("1").negative_numbers(),
    /// The policy for unhealthy pods in PodDisruptionBudgets
    PdbUnhealthyPodEvictionPolicy => single("pdb-unhealthy-pod-eviction-policy")
        .default("IfHealthyBudget")
        .choices(UnhealthyPodEvictionPolicy::NAMES),
    /// Disable service links in the podspec. Recommended for new installations
    DisableServiceLinks => switch("disable-service-links"),
    /// Extra DNS search domain for apps' pods (repeatable)
    DnsSearchDomains => repeated("dns-search-domains"),
    /// Pair of hosts to map to each other, as `<host1>=<host2>` (repeatable)
    IngressHostPair => repeated("ingress-host-pair").value_name("HOST1=HOST2"),
    /// Name of the cluster where the fiaas-deploy-daemon instance resides
    UsageReportingClusterName => single("usage-reporting-cluster-name").heading("Usage Reporting"),
    /// Identifier for the operator of the fiaas-deploy-daemon instance
    UsageReportingOperator => single("usage-reporting-operator").heading("Usage Reporting"),
    /// Endpoint to POST usage data to
    UsageReportingEndpoint => single("usage-reporting-endpoint").heading("Usage Reporting"),
    /// Name of publisher of events
    UsageReportingTenant => single("usage-reporting-tenant").heading("Usage Reporting"),
    /// Name of team that is responsible for components deployed by the fiaas-deploy-daemon
    /// instance
    UsageReportingTeam => single("usage-reporting-team").heading("Usage Reporting"),
    /// Address of the api-server to use (IP or name)
    ApiServer => single("api-server")
        .default("https://kubernetes.default.svc.cluster.local")
        .heading("API server"),
    /// Token to use (default: lookup from service account)
    ApiToken => single("api-token").heading("API server"),
    /// API server certificate (default: lookup from service account)
    ApiCert => single("api-cert").heading("API server"),
    /// Client certificate to use
    ClientCert => single("client-cert").heading("Client certificate"),
    /// Client certificate key to use
    ClientKey => single("client-key").heading("Client certificate"),
    /// Suffix to use for ingress: each app gets the host `<app>.<suffix>` (repeatable)
    IngressSuffix => repeated("ingress-suffix").heading("Ingress suffix"),
    /// Rule for rewriting an app's explicit host, as `<regex>=<replacement>` with Python
    /// regex syntax; the first rule matching at the start of the host wins (repeatable)
    HostRewriteRule => repeated("host-rewrite-rule")
        .value_name("PATTERN=REPLACEMENT")
        .heading("Host rewrite rules"),
    /// Various non-essential global variables to expose for all applications, as
    /// `<key>=<value>` (repeatable)
    GlobalEnv => repeated("global-env")
        .value_name("KEY=VALUE")
        .heading("Global environment variables"),
    /// Images to use for secret init-containers by key, as `<type>=<image>`; type `default`
    /// is attached to apps that specify none (repeatable)
    SecretInitContainers => repeated("secret-init-containers")
        .value_name("TYPE=IMAGE")
        .heading("Secret init-containers"),
    /// Enable https on Ingresses: never, only when an app asks, or unless an app opts out
    UseIngressTls => single("use-ingress-tls")
        .default("disabled")
        .choices(UseIngressTls::NAMES)
        .heading("Ingress TLS"),
    /// Certificate issuer to use with cert-manager to provision certificates
    TlsCertificateIssuer => single("tls-certificate-issuer").heading("Ingress TLS"),
    /// Issuer name to use for a domain suffix, as `<suffix>=<issuer>` (repeatable)
    TlsCertificateIssuerOverrides => repeated("tls-certificate-issuer-overrides")
        .value_name("SUFFIX=ISSUER")
        .heading("Ingress TLS"),
    /// The annotation to set for cert-manager to provision certificates
    TlsCertificateIssuerTypeDefault => single("tls-certificate-issuer-type-default")
        .default("certmanager.k8s.io/cluster-issuer")
        .heading("Ingress TLS"),
    /// Issuer annotation to use for a domain suffix, as `<suffix>=<annotation>` (repeatable)
    TlsCertificateIssuerTypeOverrides => repeated("tls-certificate-issuer-type-overrides")
        .value_name("SUFFIX=ANNOTATION")
        .heading("Ingress TLS"),
    /// Check whether certificates are ready
    TlsCertificateReady => switch("tls-certificate-ready").heading("Ingress TLS"),
    /// How many deploys may talk to the API server at once.
    MaxConcurrentDeploys => single("max-concurrent-deploys")
        .default("20")
        .values(Values::Number { min: 1, max: None })
        .deployers_only(),
    /// How many ApplicationStatus objects to keep per app (the newest).
    StatusRetention => single("status-retention")
        .default("10")
        .values(Values::Number { min: 1, max: None })
        .deployers_only(),
    /// Seconds to let in-flight applies finish after SIGTERM.
    ShutdownGraceSeconds => single("shutdown-grace-seconds")
        .default("20")
        .values(Values::Seconds)
        .daemon_only(),
    /// Deploy only while holding a Lease in the daemon's namespace, so several replicas can run
    /// with one active. A replica that loses the lease stops deploying and exits non-zero, to
    /// wait for the lease again after its restart.
    LeaderElection => switch("leader-election").daemon_only(),
    /// The name of that Lease; with `--shards`, the prefix of the shard and membership Leases.
    LeaderElectionLeaseName => single("leader-election-lease-name")
        .default("fiaas-deploy-daemon")
        .daemon_only(),
    /// Split the Applications into this many shards (by namespace and `spec.application`), each
    /// deployed by the replica holding its Lease (`<lease name>-shard-<i>`); each replica holds
    /// at most its share. 1: one replica deploys everything (then `--leader-election` decides
    /// which).
    Shards => single("shards")
        .default("1")
        .values(Values::Number { min: 1, max: Some(1024) })
        .daemon_only(),
    /// Create the Application CRD with the fiaas.yml schema, so that `kubectl apply` refuses an
    /// invalid fiaas.yml, naming the field; v2 documents still pass (what is checked: README,
    /// "Refusing an invalid fiaas.yml"). Without it, the CRD is the upstream's.
    CrdValidation => switch("crd-validation").daemon_only(),
}

impl Flag {
    /// The long name, without dashes.
    pub fn long(self) -> &'static str {
        self.def().long
    }

    /// The flag with this long name.
    pub fn by_long(long: &str) -> Option<Flag> {
        Flag::ALL.iter().copied().find(|flag| flag.long() == long)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_unique_and_spelt_like_upstream() {
        for (i, flag) in Flag::ALL.iter().enumerate() {
            let long = flag.long();
            assert!(
                long.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{long}"
            );
            assert_eq!(Flag::by_long(long), Some(*flag));
            assert!(
                !Flag::ALL[..i].iter().any(|other| other.long() == long),
                "--{long} twice"
            );
            assert!(!flag.def().help().is_empty(), "--{long} has no help");
        }
    }

    #[test]
    fn defaults_fit_their_flags() {
        for flag in Flag::ALL {
            let def = flag.def();
            match (def.shape, def.values, def.default) {
                (Shape::Switch | Shape::Repeated, _, default) => {
                    assert_eq!(default, None, "--{}", def.long)
                }
                (Shape::Single, Values::Choice(names), Some(default)) => {
                    assert!(names.contains(&default), "--{}", def.long)
                }
                (Shape::Single, Values::Number { min, max }, Some(default)) => {
                    let max = max.unwrap_or(u32::MAX);
                    assert!(
                        default
                            .parse::<u32>()
                            .is_ok_and(|n| (min..=max).contains(&n)),
                        "--{}",
                        def.long
                    )
                }
                (Shape::Single, Values::Seconds, Some(default)) => {
                    assert!(default.parse::<u64>().is_ok(), "--{}", def.long)
                }
                (Shape::Single, Values::Text, _) => {}
                (Shape::Single, _, None) => panic!("--{} needs a default", def.long),
            }
        }
    }

    #[test]
    fn help_is_the_doc_comment_on_one_line_without_its_final_period() {
        assert_eq!(
            Flag::MaxConcurrentDeploys.def().help(),
            "How many deploys may talk to the API server at once"
        );
        assert_eq!(
            Flag::ConfigFile.def().help(),
            "Extra YAML config file; it overrides the default config file, the command line \
             overrides it"
        );
        assert_eq!(Flag::Port.def().placeholder(), "PORT");
        assert_eq!(Flag::GlobalEnv.def().placeholder(), "KEY=VALUE");
    }

    #[test]
    fn the_daemon_takes_every_flag_the_bootstrap_the_deploy_flags_too() {
        assert_eq!(Scope::Daemon.flags().count(), Flag::ALL.len());
        assert!(Scope::Cluster.takes(Flag::Port));
        assert!(!Scope::Cluster.takes(Flag::MaxConcurrentDeploys));
        assert!(!Scope::Cluster.takes(Flag::LeaderElection));
        assert!(Scope::Deployer.takes(Flag::Port));
        assert!(Scope::Deployer.takes(Flag::StatusRetention));
        assert!(!Scope::Deployer.takes(Flag::LeaderElection));
        assert!(Scope::Daemon.takes(Flag::LeaderElection));
    }
}
