//! The cluster configuration shared by the daemon, bootstrap and the CLI: upstream's
//! `Configuration` (ConfigArgParse over argparse), flag for flag.
//!
//! Values come from three places, highest first: the command line, the `-c/--config-file` YAML
//! file, the default YAML file (normally [`DEFAULT_CONFIG_FILE`], read only if it exists). A flag
//! given at a higher level hides the lower levels completely (lists are not merged); flags given
//! nowhere take their built-in default. Environment variables are not a source, except `IMAGE`
//! and `VERSION` (see [`ClusterConfig::with_env_identity`]).
//!
//! Every value, whatever its origin, goes through the same string parsers, as upstream re-feeds
//! config-file values as if typed on the command line.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, Command};
use fiaas_spec::python;
use indexmap::IndexMap;
use serde_json::Value;

/// Where the daemon's Helm chart mounts `cluster_config.yaml`; binaries pass it to
/// [`ClusterConfig::from_args`] as the default config file.
pub const DEFAULT_CONFIG_FILE: &str = "/var/run/config/fiaas/cluster_config.yaml";

/// Program name in help and usage output, as upstream's argparse derives it.
const PROGRAM: &str = "fiaas-deploy-daemon";

/// Clap id of `-c/--config-file`: it chooses files rather than being a setting, so it is never
/// read from a file.
const CONFIG_FILE_ID: &str = "config_file";

/// Defines a flag whose value is one of a fixed set of strings.
macro_rules! choice_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The value as spelled on the command line, in config files and in Kubernetes objects.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $text ),+
                }
            }

            fn possible_values() -> clap::builder::PossibleValuesParser {
                clap::builder::PossibleValuesParser::new(Self::ALL.iter().map(|v| v.as_str()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Choice for $name {
            fn all() -> &'static [Self] {
                Self::ALL
            }

            fn text(self) -> &'static str {
                self.as_str()
            }
        }
    };
}

/// Lets one parser handle every [`choice_enum!`] type for config-file values (clap checks
/// command-line values itself).
trait Choice: Copy + 'static {
    fn all() -> &'static [Self];
    fn text(self) -> &'static str;
}

choice_enum! {
    /// `--log-format`: the daemon's own log format, also passed to apps as `LOG_FORMAT`.
    LogFormat {
        /// Human-readable lines.
        Plain => "plain",
        /// One JSON object per line.
        Json => "json",
    }
}

choice_enum! {
    /// `--service-type`: `spec.type` of the Services created for apps.
    ServiceType {
        /// Reachable inside the cluster only.
        ClusterIP => "ClusterIP",
        /// Also exposed on every node.
        NodePort => "NodePort",
        /// Also exposed through a cloud load balancer.
        LoadBalancer => "LoadBalancer",
    }
}

choice_enum! {
    /// `--infrastructure`: passed to apps as the deprecated `FIAAS_INFRASTRUCTURE`.
    Infrastructure {
        /// Self-managed cluster.
        Diy => "diy",
        /// Google Kubernetes Engine.
        Gke => "gke",
    }
}

choice_enum! {
    /// `--pdb-unhealthy-pod-eviction-policy`: `unhealthyPodEvictionPolicy` of PodDisruptionBudgets.
    UnhealthyPodEvictionPolicy {
        /// Evict unhealthy pods only while the budget holds.
        IfHealthyBudget => "IfHealthyBudget",
        /// Evict unhealthy pods even when the budget is not met.
        AlwaysAllow => "AlwaysAllow",
    }
}

choice_enum! {
    /// `--use-ingress-tls`: whether Ingresses get TLS.
    UseIngressTls {
        /// Never, whatever the app asks.
        Disabled => "disabled",
        /// Only for apps that ask for it.
        DefaultOff => "default_off",
        /// Unless the app turns it off.
        DefaultOn => "default_on",
    }
}

/// A value that is an integer when it parses as one and a string otherwise (upstream
/// `_int_or_unicode`), as Kubernetes' `IntOrString` fields such as `maxSurge`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IntOrStr {
    /// The value parsed as a (Python) integer.
    Int(i64),
    /// Any other value, kept as given.
    Str(String),
}

impl IntOrStr {
    /// Parses like upstream: `"0"` is `Int(0)`, `"25%"` is `Str("25%")`. Never fails.
    pub fn parse(s: &str) -> IntOrStr {
        match python::int(s) {
            Some(n) => IntOrStr::Int(n),
            None => IntOrStr::Str(s.to_string()),
        }
    }
}

impl fmt::Display for IntOrStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrStr::Int(n) => write!(f, "{n}"),
            IntOrStr::Str(s) => f.write_str(s),
        }
    }
}

/// One `--host-rewrite-rule`: rewrites an app's explicit ingress host with Python `re`
/// semantics.
#[derive(Clone, Debug)]
pub struct HostRewriteRule {
    regex: fancy_regex::Regex,
    /// The pattern as given, kept for equality.
    pattern: String,
    /// The replacement as given, kept for equality.
    template: String,
    /// The replacement in `$` syntax, for [`fancy_regex::Expander`].
    replacement: String,
}

impl PartialEq for HostRewriteRule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern && self.template == other.template
    }
}

impl Eq for HostRewriteRule {}

impl HostRewriteRule {
    /// Parses `pattern=replacement` (exactly one `=`). The pattern is a Python `re` pattern
    /// (lookaround, backreferences, inline flags; see [`python_re`](crate::python_re) for what
    /// is translated and what is refused). The replacement uses Python syntax (`\1`, `\g<1>`,
    /// `\g<name>`; `$` is literal) and is checked against the pattern now, whereas upstream
    /// would only fail when a host first matches.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::InvalidValue {
            flag: "--host-rewrite-rule".to_string(),
            value: s.to_string(),
            reason,
        };
        let mut parts = s.split('=');
        let (Some(pattern), Some(template), None) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid(
                "expected PATTERN=REPLACEMENT with exactly one '='".to_string(),
            ));
        };
        let bad_pattern = |reason: String| ConfigError::InvalidPattern {
            value: s.to_string(),
            reason,
        };
        let translated =
            crate::python_re::translate(pattern).map_err(|e| bad_pattern(e.to_string()))?;
        let regex = fancy_regex::Regex::new(&translated)
            .map_err(|e| bad_pattern(format!("invalid regular expression: {e}")))?;
        let replacement = python_template_to_regex(template, &regex)
            .map_err(|e| invalid(format!("invalid replacement: {e}")))?;
        Ok(HostRewriteRule {
            regex,
            pattern: pattern.to_string(),
            template: template.to_string(),
            replacement,
        })
    }

    /// `Some(rewritten host)` when the pattern matches at the start of `host` (Python
    /// `re.match`); the rewrite then replaces every match in `host` (Python `re.sub`). A
    /// pattern that backtracks past `fancy-regex`'s limit counts as not matching.
    pub fn apply(&self, host: &str) -> Option<String> {
        if self.regex.find(host).ok()??.start() != 0 {
            return None;
        }
        let expander = fancy_regex::Expander::default();
        let mut out = String::with_capacity(host.len());
        let mut copied = 0;
        let mut pos = 0;
        // Python lets an empty match follow a non-empty one at the same position, but not
        // another empty one; the regex crate's own iterator differs, so iterate by hand.
        let mut after_empty = false;
        while pos <= host.len() {
            let Ok(Some(caps)) = self.regex.captures_from_pos(host, pos) else {
                break;
            };
            let whole = caps.get(0).expect("group 0 always participates");
            if after_empty && whole.start() == whole.end() && whole.start() == pos {
                pos += host[pos..].chars().next().map_or(1, char::len_utf8);
                after_empty = false;
                continue;
            }
            out.push_str(&host[copied..whole.start()]);
            expander.append_expansion(&mut out, &self.replacement, &caps);
            copied = whole.end();
            pos = whole.end();
            after_empty = whole.start() == whole.end();
        }
        out.push_str(&host[copied..]);
        Some(out)
    }
}

/// Converts a Python `re.sub` replacement template into regex-crate expansion syntax,
/// rejecting what Python's `re._parser.parse_template` (3.12) rejects.
fn python_template_to_regex(template: &str, regex: &fancy_regex::Regex) -> Result<String, String> {
    let groups = regex.captures_len() - 1;
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    let is_octal = |c: &char| ('0'..='7').contains(c);
    let group_ref = |out: &mut String, index: usize| -> Result<(), String> {
        if index > groups {
            return Err(format!("invalid group reference {index}"));
        }
        out.push_str(&format!("${{{index}}}"));
        Ok(())
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_literal(&mut out, c);
            continue;
        }
        let Some(escaped) = chars.next() else {
            return Err("bad escape (end of pattern)".to_string());
        };
        match escaped {
            'g' => {
                if chars.next_if_eq(&'<').is_none() {
                    return Err("missing <".to_string());
                }
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('>') => break,
                        Some(c) => name.push(c),
                        None => return Err("missing >, unterminated name".to_string()),
                    }
                }
                if name.is_empty() {
                    return Err("missing group name".to_string());
                }
                let index = if is_python_identifier(&name) {
                    regex
                        .capture_names()
                        .position(|n| n == Some(name.as_str()))
                        .ok_or_else(|| format!("unknown group name '{name}'"))?
                } else if name.bytes().all(|b| b.is_ascii_digit()) {
                    name.parse()
                        .map_err(|_| format!("invalid group reference {name}"))?
                } else {
                    return Err(format!("bad character in group name '{name}'"));
                };
                group_ref(&mut out, index)?;
            }
            '0' => {
                let mut value = 0;
                for _ in 0..2 {
                    match chars.next_if(is_octal) {
                        Some(d) => value = value * 8 + d.to_digit(8).expect("octal digit"),
                        None => break,
                    }
                }
                push_literal(&mut out, char::from_u32(value & 0xff).expect("a byte"));
            }
            '1'..='9' => {
                let mut digits = escaped.to_string();
                if let Some(second) = chars.next_if(char::is_ascii_digit) {
                    digits.push(second);
                    // Three octal digits are an octal escape, not a group.
                    if is_octal(&escaped)
                        && is_octal(&second)
                        && let Some(third) = chars.next_if(is_octal)
                    {
                        digits.push(third);
                        let value = u32::from_str_radix(&digits, 8).expect("octal digits");
                        if value > 0o377 {
                            return Err(format!(
                                "octal escape value \\{digits} outside of range 0-0o377"
                            ));
                        }
                        push_literal(&mut out, char::from_u32(value).expect("a byte"));
                        continue;
                    }
                }
                group_ref(&mut out, digits.parse().expect("one or two digits"))?;
            }
            'a' => push_literal(&mut out, '\x07'),
            'b' => push_literal(&mut out, '\x08'),
            'f' => push_literal(&mut out, '\x0c'),
            'n' => push_literal(&mut out, '\n'),
            'r' => push_literal(&mut out, '\r'),
            't' => push_literal(&mut out, '\t'),
            'v' => push_literal(&mut out, '\x0b'),
            '\\' => push_literal(&mut out, '\\'),
            c if c.is_ascii_alphabetic() => return Err(format!("bad escape \\{c}")),
            // Python keeps an unknown non-letter escape as both characters.
            c => {
                push_literal(&mut out, '\\');
                push_literal(&mut out, c);
            }
        }
    }
    Ok(out)
}

/// Appends `c` so that [`fancy_regex::Expander`] reproduces it literally.
fn push_literal(out: &mut String, c: char) {
    if c == '$' {
        out.push('$');
    }
    out.push(c);
}

/// Python's `str.isidentifier`, close enough for regex group names.
fn is_python_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Why a configuration could not be built. The binaries print it and exit with
/// [`ConfigError::exit_code`].
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// Clap rejected the command line (unknown flag, missing value, bad choice), or `--help`
    /// was asked for: binaries should call `clap::Error::exit` on it, which prints help to
    /// stdout and errors to stderr.
    #[error(transparent)]
    CommandLine(#[from] clap::Error),
    /// `-c/--config-file` names no regular file.
    #[error("File not found: {}", .0.display())]
    FileNotFound(PathBuf),
    /// A config file exists but could not be read.
    #[error("{}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A config file is not a single YAML mapping, or one of its entries cannot become flags.
    #[error("{}: {reason}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key when there is one.
        reason: String,
    },
    /// A flag's value, from the command line or a file, does not parse as the flag's type.
    #[error("{flag}: invalid value '{value}': {reason}")]
    InvalidValue {
        /// The long flag, with its dashes.
        flag: String,
        /// The value as given.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// An `--ingress-host-pair` without `=`.
    #[error("Invalid host pair: {0}, format should be host1=host2")]
    InvalidHostPair(String),
    /// A `--host-rewrite-rule` pattern that Python's `re` refuses (upstream's `re.compile`
    /// raises past argparse: a traceback), or that fiaas cannot match as Python does.
    #[error("--host-rewrite-rule: invalid value '{value}': {reason}")]
    InvalidPattern {
        /// The rule as given.
        value: String,
        /// What is wrong, naming the construct.
        reason: String,
    },
}

impl ConfigError {
    /// The process exit status upstream ends with: 2 for what argparse reports as usage
    /// errors, 1 for what upstream only detects after parsing (a traceback there), 0 for help.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::CommandLine(e) => e.exit_code(),
            ConfigError::ReadFile { .. }
            | ConfigError::InvalidHostPair(_)
            | ConfigError::InvalidPattern { .. } => 1,
            ConfigError::FileNotFound(_)
            | ConfigError::ConfigFile { .. }
            | ConfigError::InvalidValue { .. } => 2,
        }
    }
}

// The struct doc is for rustdoc only: clap derive would make a doc comment the `about` text of
// every command that flattens these flags.
#[cfg_attr(
    doc,
    doc = "The cluster flags as a clap argument group, so every binary accepts the same command \
           line (`#[command(flatten)]` it, then build the configuration with \
           [`ClusterConfig::from_matches`]).\n\n\
           Fields hold command-line text only; the merged, typed configuration is \
           [`ClusterConfig`]. Every flag may also be set in the YAML config files under its \
           long name."
)]
#[derive(Args, Clone, Debug)]
// argparse takes any unambiguous prefix of a long option (`--environ prod`) and so does the
// daemon's command line; the setting is global, so every command flattening these flags has it.
#[command(infer_long_args = true)]
pub struct ClusterArgs {
    /// Extra YAML config file; it overrides the default config file, the command line
    /// overrides it
    #[arg(short = 'c', long, value_name = "FILE", overrides_with = "config_file")]
    pub config_file: Option<String>,

    /// Load secrets from this directory
    #[arg(
        long,
        default_value = "/var/run/secrets/fiaas/",
        overrides_with = "secrets_directory"
    )]
    pub secrets_directory: String,

    /// Set logformat
    #[arg(long, default_value = LogFormat::Plain.as_str(),
          value_parser = LogFormat::possible_values(), overrides_with = "log_format")]
    pub log_format: String,

    /// Use http proxy (currently only used for usage reporting and the extension hook)
    #[arg(long, overrides_with = "proxy")]
    pub proxy: Option<String>,

    /// Enable a number of debugging options (including disable SSL-verification)
    #[arg(long, overrides_with = "debug")]
    pub debug: bool,

    /// Environment to deploy to
    #[arg(long, default_value = "", overrides_with = "environment")]
    pub environment: String,

    /// Type of kubernetes Service to create
    #[arg(long, default_value = ServiceType::ClusterIP.as_str(),
          value_parser = ServiceType::possible_values(), overrides_with = "service_type")]
    pub service_type: String,

    /// The underlying infrastructure of the cluster to deploy to
    #[arg(long, default_value = Infrastructure::Diy.as_str(),
          value_parser = Infrastructure::possible_values(), overrides_with = "infrastructure")]
    pub infrastructure: String,

    /// Port to use for the web-interface
    #[arg(
        long,
        default_value = "5000",
        allow_negative_numbers = true,
        overrides_with = "port"
    )]
    pub port: String,

    /// Enable Custom Resource Definition support
    #[arg(long, overrides_with = "enable_crd_support")]
    pub enable_crd_support: bool,

    /// Use specified docker image as init container for secrets (experimental)
    #[arg(long, overrides_with = "secrets_init_container_image")]
    pub secrets_init_container_image: Option<String>,

    /// The service account that is passed to secrets init containers
    #[arg(long, overrides_with = "secrets_service_account_name")]
    pub secrets_service_account_name: Option<String>,

    /// Use specified docker image as datadog sidecar for apps
    #[arg(long, overrides_with = "datadog_container_image")]
    pub datadog_container_image: Option<String>,

    /// The amount of memory (request and limit) for the datadog sidecar
    #[arg(
        long,
        default_value = "2Gi",
        overrides_with = "datadog_container_memory"
    )]
    pub datadog_container_memory: String,

    /// Various non-essential global tags to send to datadog for all applications, as
    /// `<key>=<value>` (repeatable)
    #[arg(long, value_name = "KEY=VALUE", help_heading = "Datadog Global tags")]
    pub datadog_global_tags: Vec<String>,

    /// Flag to activate the sleep in datadog when a pre-stop-delay is in the main container
    #[arg(long, overrides_with = "datadog_activate_sleep")]
    pub datadog_activate_sleep: bool,

    /// Add a pre-stop hook that sleeps for this amount of seconds
    #[arg(
        long,
        default_value = "0",
        allow_negative_numbers = true,
        overrides_with = "pre_stop_delay"
    )]
    pub pre_stop_delay: String,

    /// Use specified docker image as init container for apps that are configured to use
    /// Strongbox
    #[arg(long, overrides_with = "strongbox_init_container_image")]
    pub strongbox_init_container_image: Option<String>,

    /// Watch Applications and deploy in all namespaces instead of only the daemon's own
    /// (deprecated)
    #[arg(long, overrides_with = "enable_deprecated_multi_namespace_support")]
    pub enable_deprecated_multi_namespace_support: bool,

    /// Use memory for emptydirs mounted in the deployed application
    #[arg(long, overrides_with = "use_in_memory_emptydirs")]
    pub use_in_memory_emptydirs: bool,

    /// Maximum number of extra pods that can be scheduled above the desired number of pods
    /// during an update
    #[arg(
        long,
        default_value = "25%",
        allow_negative_numbers = true,
        overrides_with = "deployment_max_surge"
    )]
    pub deployment_max_surge: String,

    /// The maximum number of pods that can be unavailable during an update
    #[arg(
        long,
        default_value = "0",
        allow_negative_numbers = true,
        overrides_with = "deployment_max_unavailable"
    )]
    pub deployment_max_unavailable: String,

    /// Also add a separate TLS entry for each host to Ingresses (deprecated)
    #[arg(long, overrides_with = "enable_deprecated_tls_entry_per_host")]
    pub enable_deprecated_tls_entry_per_host: bool,

    /// Multiply default ready check timeout (replicas * initialDelaySeconds) with this number
    /// of seconds
    #[arg(
        long,
        default_value = "10",
        allow_negative_numbers = true,
        overrides_with = "ready_check_timeout_multiplier"
    )]
    pub ready_check_timeout_multiplier: String,

    /// Disable the deprecated managed environment variables (ARTIFACT_NAME, IMAGE and VERSION)
    /// in favour of the FIAAS_ prefixed ones
    #[arg(long, overrides_with = "disable_deprecated_managed_env_vars")]
    pub disable_deprecated_managed_env_vars: bool,

    /// Base URL of an external service called at hook points of each deploy to modify the
    /// Kubernetes objects
    #[arg(long, overrides_with = "extension_hook_url")]
    pub extension_hook_url: Option<String>,

    /// Create a service account for each deployed application, using the application name
    #[arg(long, overrides_with = "enable_service_account_per_app")]
    pub enable_service_account_per_app: bool,

    /// Use ingress from apiVersion networking.k8s.io/v1 instead of extensions/v1beta1
    #[arg(long, overrides_with = "use_networkingv1_ingress")]
    pub use_networkingv1_ingress: bool,

    /// Use apiextensions.k8s.io/v1 CustomResourceDefinition instead of v1beta1
    #[arg(long, overrides_with = "use_apiextensionsv1_crd")]
    pub use_apiextensionsv1_crd: bool,

    /// Skip the CRD creation and go directly to watching Applications
    #[arg(long, overrides_with = "disable_crd_creation")]
    pub disable_crd_creation: bool,

    /// Include status subresource in application CRD
    #[arg(long, overrides_with = "include_status_in_app")]
    pub include_status_in_app: bool,

    /// Role to bind to each app's service account (repeatable)
    #[arg(long)]
    pub list_of_roles: Vec<String>,

    /// ClusterRole to bind to each app's service account (repeatable)
    #[arg(long)]
    pub list_of_cluster_roles: Vec<String>,

    /// The maximum number of pods that can be unavailable after an eviction
    #[arg(
        long,
        default_value = "1",
        allow_negative_numbers = true,
        overrides_with = "pdb_max_unavailable"
    )]
    pub pdb_max_unavailable: String,

    /// The policy for unhealthy pods in PodDisruptionBudgets
    #[arg(long, default_value = UnhealthyPodEvictionPolicy::IfHealthyBudget.as_str(),
          value_parser = UnhealthyPodEvictionPolicy::possible_values(),
          overrides_with = "pdb_unhealthy_pod_eviction_policy")]
    pub pdb_unhealthy_pod_eviction_policy: String,

    /// Disable service links in the podspec. Recommended for new installations
    #[arg(long, overrides_with = "disable_service_links")]
    pub disable_service_links: bool,

    /// Extra DNS search domain for apps' pods (repeatable)
    #[arg(long)]
    pub dns_search_domains: Vec<String>,

    /// Pair of hosts to map to each other, as `<host1>=<host2>` (repeatable)
    #[arg(long, value_name = "HOST1=HOST2")]
    pub ingress_host_pair: Vec<String>,

    /// Name of the cluster where the fiaas-deploy-daemon instance resides
    #[arg(
        long,
        help_heading = "Usage Reporting",
        overrides_with = "usage_reporting_cluster_name"
    )]
    pub usage_reporting_cluster_name: Option<String>,

    /// Identifier for the operator of the fiaas-deploy-daemon instance
    #[arg(
        long,
        help_heading = "Usage Reporting",
        overrides_with = "usage_reporting_operator"
    )]
    pub usage_reporting_operator: Option<String>,

    /// Endpoint to POST usage data to
    #[arg(
        long,
        help_heading = "Usage Reporting",
        overrides_with = "usage_reporting_endpoint"
    )]
    pub usage_reporting_endpoint: Option<String>,

    /// Name of publisher of events
    #[arg(
        long,
        help_heading = "Usage Reporting",
        overrides_with = "usage_reporting_tenant"
    )]
    pub usage_reporting_tenant: Option<String>,

    /// Name of team that is responsible for components deployed by the fiaas-deploy-daemon
    /// instance
    #[arg(
        long,
        help_heading = "Usage Reporting",
        overrides_with = "usage_reporting_team"
    )]
    pub usage_reporting_team: Option<String>,

    /// Address of the api-server to use (IP or name)
    #[arg(
        long,
        default_value = "https://kubernetes.default.svc.cluster.local",
        help_heading = "API server",
        overrides_with = "api_server"
    )]
    pub api_server: String,

    /// Token to use (default: lookup from service account)
    #[arg(long, help_heading = "API server", overrides_with = "api_token")]
    pub api_token: Option<String>,

    /// API server certificate (default: lookup from service account)
    #[arg(long, help_heading = "API server", overrides_with = "api_cert")]
    pub api_cert: Option<String>,

    /// Client certificate to use
    #[arg(
        long,
        help_heading = "Client certificate",
        overrides_with = "client_cert"
    )]
    pub client_cert: Option<String>,

    /// Client certificate key to use
    #[arg(
        long,
        help_heading = "Client certificate",
        overrides_with = "client_key"
    )]
    pub client_key: Option<String>,

    /// Suffix to use for ingress: each app gets the host `<app>.<suffix>` (repeatable)
    #[arg(long, help_heading = "Ingress suffix")]
    pub ingress_suffix: Vec<String>,

    /// Rule for rewriting an app's explicit host, as `<regex>=<replacement>` with Python
    /// regex syntax; the first rule matching at the start of the host wins (repeatable)
    #[arg(
        long,
        value_name = "PATTERN=REPLACEMENT",
        help_heading = "Host rewrite rules"
    )]
    pub host_rewrite_rule: Vec<String>,

    /// Various non-essential global variables to expose for all applications, as
    /// `<key>=<value>` (repeatable)
    #[arg(
        long,
        value_name = "KEY=VALUE",
        help_heading = "Global environment variables"
    )]
    pub global_env: Vec<String>,

    /// Images to use for secret init-containers by key, as `<type>=<image>`; type `default`
    /// is attached to apps that specify none (repeatable)
    #[arg(
        long,
        value_name = "TYPE=IMAGE",
        help_heading = "Secret init-containers"
    )]
    pub secret_init_containers: Vec<String>,

    /// Enable https on Ingresses: never, only when an app asks, or unless an app opts out
    #[arg(long, default_value = UseIngressTls::Disabled.as_str(),
          value_parser = UseIngressTls::possible_values(), help_heading = "Ingress TLS",
          overrides_with = "use_ingress_tls")]
    pub use_ingress_tls: String,

    /// Certificate issuer to use with cert-manager to provision certificates
    #[arg(
        long,
        help_heading = "Ingress TLS",
        overrides_with = "tls_certificate_issuer"
    )]
    pub tls_certificate_issuer: Option<String>,

    /// Issuer name to use for a domain suffix, as `<suffix>=<issuer>` (repeatable)
    #[arg(long, value_name = "SUFFIX=ISSUER", help_heading = "Ingress TLS")]
    pub tls_certificate_issuer_overrides: Vec<String>,

    /// The annotation to set for cert-manager to provision certificates
    #[arg(
        long,
        default_value = "certmanager.k8s.io/cluster-issuer",
        help_heading = "Ingress TLS",
        overrides_with = "tls_certificate_issuer_type_default"
    )]
    pub tls_certificate_issuer_type_default: String,

    /// Issuer annotation to use for a domain suffix, as `<suffix>=<annotation>` (repeatable)
    #[arg(long, value_name = "SUFFIX=ANNOTATION", help_heading = "Ingress TLS")]
    pub tls_certificate_issuer_type_overrides: Vec<String>,

    /// Check whether certificates are ready
    #[arg(
        long,
        help_heading = "Ingress TLS",
        overrides_with = "tls_certificate_ready"
    )]
    pub tls_certificate_ready: bool,
}

/// The typed cluster configuration. Field docs give the flag each comes from; see the
/// inventory's part a.2 for what each one does.
#[derive(Clone)]
pub struct ClusterConfig {
    /// `-c/--config-file` as given on the command line (not `~`-expanded).
    pub config_file: Option<PathBuf>,
    /// `--secrets-directory`.
    pub secrets_directory: PathBuf,
    /// `--log-format`.
    pub log_format: LogFormat,
    /// `--proxy`.
    pub proxy: Option<String>,
    /// `--debug`.
    pub debug: bool,
    /// `--environment`.
    pub environment: String,
    /// `--service-type`.
    pub service_type: ServiceType,
    /// `--infrastructure`.
    pub infrastructure: Infrastructure,
    /// `--port`.
    pub port: u16,
    /// `--enable-crd-support`.
    pub enable_crd_support: bool,
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
    /// `--enable-deprecated-multi-namespace-support`.
    pub enable_deprecated_multi_namespace_support: bool,
    /// `--use-in-memory-emptydirs`.
    pub use_in_memory_emptydirs: bool,
    /// `--deployment-max-surge`.
    pub deployment_max_surge: IntOrStr,
    /// `--deployment-max-unavailable`.
    pub deployment_max_unavailable: IntOrStr,
    /// `--enable-deprecated-tls-entry-per-host`.
    pub enable_deprecated_tls_entry_per_host: bool,
    /// `--ready-check-timeout-multiplier`.
    pub ready_check_timeout_multiplier: i64,
    /// `--disable-deprecated-managed-env-vars`.
    pub disable_deprecated_managed_env_vars: bool,
    /// `--extension-hook-url`.
    pub extension_hook_url: Option<String>,
    /// `--enable-service-account-per-app`.
    pub enable_service_account_per_app: bool,
    /// `--use-networkingv1-ingress`.
    pub use_networkingv1_ingress: bool,
    /// `--use-apiextensionsv1-crd`.
    pub use_apiextensionsv1_crd: bool,
    /// `--disable-crd-creation`.
    pub disable_crd_creation: bool,
    /// `--include-status-in-app`.
    pub include_status_in_app: bool,
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
    /// `--ingress-suffix`, in the order given.
    pub ingress_suffixes: Vec<String>,
    /// `--host-rewrite-rule`, in the order given.
    pub host_rewrite_rules: Vec<HostRewriteRule>,
    /// `--global-env`.
    pub global_env: IndexMap<String, String>,
    /// `--secret-init-containers`; see also [`ClusterConfig::secret_init_container_images`].
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
    /// `--tls-certificate-ready`.
    pub tls_certificate_ready: bool,
    /// The daemon's own image (env `IMAGE`, else `FIAAS_IMAGE`); not a flag.
    pub image: String,
    /// The daemon's own version (env `VERSION`, else `FIAAS_VERSION`); not a flag.
    pub version: String,
}

impl Default for ClusterConfig {
    /// Built-in defaults only, as if no flag and no file was given.
    fn default() -> Self {
        ClusterConfig::from_args([PROGRAM], None).expect("the built-in defaults are valid")
    }
}

impl ClusterConfig {
    /// Parses a full command line (`argv[0]` first) with the upstream precedence: command line >
    /// `-c/--config-file` file > `default_config_file` (read only if it exists) > built-in
    /// defaults.
    pub fn from_args<I, T>(
        args: I,
        default_config_file: Option<&Path>,
    ) -> Result<ClusterConfig, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = cluster_command()
            .about("deploys applications to Kubernetes")
            .after_help(format!(
                "Every option can also be set in a YAML config file ({DEFAULT_CONFIG_FILE} or \
                 -c), keyed by its long name without dashes; repeatable options take a YAML \
                 list. The command line overrides -c, which overrides the default file."
            ))
            .try_get_matches_from(args)?;
        Self::from_matches(&matches, default_config_file)
    }

    /// Builds the configuration from matches of a command that flattens [`ClusterArgs`], with
    /// the same precedence as [`ClusterConfig::from_args`]; only flags given explicitly on the
    /// command line count as given there.
    pub fn from_matches(
        matches: &ArgMatches,
        default_config_file: Option<&Path>,
    ) -> Result<ClusterConfig, ConfigError> {
        let specs = FlagSpecs::new();
        let config_file = matches
            .get_one::<String>(CONFIG_FILE_ID)
            .filter(|_| matches.value_source(CONFIG_FILE_ID) == Some(ValueSource::CommandLine))
            .map(PathBuf::from);
        let mut layers = vec![specs.command_line_layer(matches)];
        if let Some(path) = &config_file {
            let path = expand_user(path, std::env::var_os("HOME"));
            if !path.is_file() {
                return Err(ConfigError::FileNotFound(path));
            }
            layers.push(specs.file_layer(&path)?);
        }
        if let Some(path) = default_config_file.filter(|p| p.exists()) {
            layers.push(specs.file_layer(path)?);
        }
        Resolver {
            specs: &specs,
            layers: &layers,
        }
        .build(config_file)
    }

    /// Sets [`ClusterConfig::image`] and [`ClusterConfig::version`] from the environment as
    /// upstream does: `IMAGE`, else `FIAAS_IMAGE`; `VERSION`, else `FIAAS_VERSION` (empty counts
    /// as unset).
    pub fn with_env_identity(self) -> Self {
        self.with_identity_from(|name| std::env::var(name).ok())
    }

    fn with_identity_from(mut self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let first_set = |names: [&str; 2]| {
            names
                .into_iter()
                .find_map(|name| lookup(name).filter(|v| !v.is_empty()))
        };
        if let Some(image) = first_set(["IMAGE", "FIAAS_IMAGE"]) {
            self.image = image;
        }
        if let Some(version) = first_set(["VERSION", "FIAAS_VERSION"]) {
            self.version = version;
        }
        self
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
            log_format,
            proxy,
            debug,
            environment,
            service_type,
            infrastructure,
            port,
            enable_crd_support,
            secrets_init_container_image,
            secrets_service_account_name,
            datadog_container_image,
            datadog_container_memory,
            datadog_global_tags,
            datadog_activate_sleep,
            pre_stop_delay,
            strongbox_init_container_image,
            enable_deprecated_multi_namespace_support,
            use_in_memory_emptydirs,
            deployment_max_surge,
            deployment_max_unavailable,
            enable_deprecated_tls_entry_per_host,
            ready_check_timeout_multiplier,
            disable_deprecated_managed_env_vars,
            extension_hook_url,
            enable_service_account_per_app,
            use_networkingv1_ingress,
            use_apiextensionsv1_crd,
            disable_crd_creation,
            include_status_in_app,
            list_of_roles,
            list_of_cluster_roles,
            pdb_max_unavailable,
            pdb_unhealthy_pod_eviction_policy,
            enable_service_links,
            dns_search_domains,
            ingress_host_pairs,
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
            ingress_suffixes,
            host_rewrite_rules,
            global_env,
            secret_init_containers,
            use_ingress_tls,
            tls_certificate_issuer,
            tls_certificate_issuer_overrides,
            tls_certificate_issuer_type_default,
            tls_certificate_issuer_type_overrides,
            tls_certificate_ready,
            image,
            version,
        } = self;
        f.debug_struct("ClusterConfig")
            .field("config_file", config_file)
            .field("secrets_directory", secrets_directory)
            .field("log_format", log_format)
            .field("proxy", &proxy.as_deref().map(without_credentials))
            .field("debug", debug)
            .field("environment", environment)
            .field("service_type", service_type)
            .field("infrastructure", infrastructure)
            .field("port", port)
            .field("enable_crd_support", enable_crd_support)
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
            .field(
                "enable_deprecated_multi_namespace_support",
                enable_deprecated_multi_namespace_support,
            )
            .field("use_in_memory_emptydirs", use_in_memory_emptydirs)
            .field("deployment_max_surge", deployment_max_surge)
            .field("deployment_max_unavailable", deployment_max_unavailable)
            .field(
                "enable_deprecated_tls_entry_per_host",
                enable_deprecated_tls_entry_per_host,
            )
            .field(
                "ready_check_timeout_multiplier",
                ready_check_timeout_multiplier,
            )
            .field(
                "disable_deprecated_managed_env_vars",
                disable_deprecated_managed_env_vars,
            )
            .field(
                "extension_hook_url",
                &extension_hook_url.as_deref().map(without_credentials),
            )
            .field(
                "enable_service_account_per_app",
                enable_service_account_per_app,
            )
            .field("use_networkingv1_ingress", use_networkingv1_ingress)
            .field("use_apiextensionsv1_crd", use_apiextensionsv1_crd)
            .field("disable_crd_creation", disable_crd_creation)
            .field("include_status_in_app", include_status_in_app)
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
            .field("tls_certificate_ready", tls_certificate_ready)
            .field("image", image)
            .field("version", version)
            .finish()
    }
}

/// A command holding just the cluster flags.
fn cluster_command() -> Command {
    ClusterArgs::augment_args(Command::new(PROGRAM))
}

/// `os.path.expanduser` for `~` and `~/…`, as ConfigArgParse applies it to `-c`.
fn expand_user(path: &Path, home: Option<OsString>) -> PathBuf {
    let (Some(home), Ok(rest)) = (home, path.strip_prefix("~")) else {
        return path.to_path_buf();
    };
    PathBuf::from(home).join(rest)
}

/// How a flag takes values, which decides how a config-file entry becomes flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FlagKind {
    /// Present or not.
    Switch,
    /// One value; the last one given wins.
    Single,
    /// Repeatable; values accumulate.
    Repeated,
}

/// What one source says about one flag. A source that says nothing has no entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Setting {
    /// A switch flag was set.
    Set,
    /// A value flag's values in the order given.
    Values(Vec<String>),
}

/// One source's settings by clap id.
type Layer = HashMap<String, Setting>;

/// One cluster flag, as clap defines it.
struct FlagSpec {
    id: String,
    long: String,
    kind: FlagKind,
    defaults: Vec<String>,
}

/// The cluster flags, read from the clap definition so they cannot drift from it.
struct FlagSpecs(Vec<FlagSpec>);

impl FlagSpecs {
    fn new() -> Self {
        let command = cluster_command();
        let specs = command
            .get_arguments()
            .filter(|arg| arg.get_id() != CONFIG_FILE_ID)
            .map(|arg| FlagSpec {
                id: arg.get_id().to_string(),
                long: arg
                    .get_long()
                    .expect("every cluster flag has a long name")
                    .to_string(),
                kind: match arg.get_action() {
                    ArgAction::SetTrue => FlagKind::Switch,
                    ArgAction::Append => FlagKind::Repeated,
                    _ => FlagKind::Single,
                },
                defaults: arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect(),
            })
            .collect();
        FlagSpecs(specs)
    }

    fn get(&self, id: &str) -> &FlagSpec {
        self.0
            .iter()
            .find(|spec| spec.id == id)
            .unwrap_or_else(|| panic!("no cluster flag with id {id}"))
    }

    fn command_line_layer(&self, matches: &ArgMatches) -> Layer {
        self.0
            .iter()
            .filter(|spec| matches.value_source(&spec.id) == Some(ValueSource::CommandLine))
            .map(|spec| {
                let setting = match spec.kind {
                    FlagKind::Switch => Setting::Set,
                    FlagKind::Single | FlagKind::Repeated => Setting::Values(
                        matches
                            .get_raw(&spec.id)
                            .into_iter()
                            .flatten()
                            .map(|v| v.to_string_lossy().into_owned())
                            .collect(),
                    ),
                };
                (spec.id.clone(), setting)
            })
            .collect()
    }

    /// Reads a config file the way ConfigArgParse's YAML parser feeds it to argparse.
    fn file_layer(&self, path: &Path) -> Result<Layer, ConfigError> {
        let bad_file = |reason: String| ConfigError::ConfigFile {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| bad_file(format!("Couldn't parse config file: {e}")))?;
        // ConfigArgParse reads the file with PyYAML's `safe_load` (YAML 1.1: `yes` is a boolean,
        // `y` text, `1:30` is 90, `0755` octal, a repeated key keeps the last value) and passes
        // on `str()` of each value.
        let document = fiaas_spec::parse_pyyaml(&text)
            .map_err(|e| bad_file(format!("Couldn't parse config file: {e}")))?;
        let Value::Object(entries) = document else {
            return Err(bad_file(format!(
                "The config file doesn't appear to contain 'key: value' pairs (aka. a YAML \
                 mapping). yaml.load('{}') returned type '{}' instead of 'dict'.",
                path.display(),
                python::type_name(&document)
            )));
        };
        let mut layer = Layer::new();
        for (key, value) in &entries {
            let name = key.strip_prefix("--").unwrap_or(key);
            let Some(spec) = self.0.iter().find(|spec| spec.long == name) else {
                continue;
            };
            let values = match (spec.kind, value) {
                (FlagKind::Repeated, Value::Array(items)) => {
                    items.iter().map(python::str).collect()
                }
                (_, Value::Array(_)) => {
                    return Err(bad_file(format!(
                        "{key} can't be set to a list '{}': --{name} is not a repeatable option",
                        python::str(value)
                    )));
                }
                (FlagKind::Switch, _) => {
                    let text = python::str(value);
                    match text.to_lowercase().as_str() {
                        "true" | "yes" | "1" => {
                            layer.insert(spec.id.clone(), Setting::Set);
                        }
                        "false" | "no" | "0" => {}
                        _ => {
                            return Err(bad_file(format!(
                                "Unexpected value for {key}: '{text}'. Expecting 'true', \
                                 'false', 'yes', 'no', '1' or '0'"
                            )));
                        }
                    }
                    continue;
                }
                (FlagKind::Single | FlagKind::Repeated, _) => vec![python::str(value)],
            };
            // An empty list adds no flag, so it does not hide a lower source either.
            if values.is_empty() {
                continue;
            }
            // `port` and `--port` in one file both become flags, in file order.
            match layer
                .entry(spec.id.clone())
                .or_insert_with(|| Setting::Values(Vec::new()))
            {
                Setting::Values(existing) => existing.extend(values),
                Setting::Set => unreachable!("only switches are set"),
            }
        }
        Ok(layer)
    }
}

/// Picks each flag's setting from the highest source that has one.
struct Resolver<'a> {
    specs: &'a FlagSpecs,
    layers: &'a [Layer],
}

impl Resolver<'_> {
    fn setting(&self, id: &str) -> Option<&Setting> {
        self.layers.iter().find_map(|layer| layer.get(id))
    }

    fn flag(&self, id: &str) -> bool {
        // Looked up only so that a misspelt id fails loudly instead of reading as unset.
        self.specs.get(id);
        self.setting(id) == Some(&Setting::Set)
    }

    fn values(&self, id: &str) -> Vec<String> {
        match self.setting(id) {
            Some(Setting::Values(values)) => values.clone(),
            _ => self.specs.get(id).defaults.clone(),
        }
    }

    fn optional(&self, id: &str) -> Option<String> {
        self.values(id).pop()
    }

    /// The value of a flag that has a built-in default.
    fn value(&self, id: &str) -> String {
        self.optional(id).unwrap_or_default()
    }

    fn path(&self, id: &str) -> Option<PathBuf> {
        self.optional(id).map(PathBuf::from)
    }

    fn invalid(&self, id: &str, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            flag: format!("--{}", self.specs.get(id).long),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    fn integer(&self, id: &str) -> Result<i64, ConfigError> {
        let value = self.value(id);
        python::int(&value).ok_or_else(|| self.invalid(id, &value, "expected an integer"))
    }

    fn port(&self, id: &str) -> Result<u16, ConfigError> {
        let value = self.value(id);
        let port =
            python::int(&value).ok_or_else(|| self.invalid(id, &value, "expected an integer"))?;
        u16::try_from(port)
            .map_err(|_| self.invalid(id, &value, "expected a port number from 0 to 65535"))
    }

    fn choice<T: Choice>(&self, id: &str) -> Result<T, ConfigError> {
        let value = self.value(id);
        T::all()
            .iter()
            .copied()
            .find(|choice| choice.text() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = T::all().iter().map(|c| c.text()).collect();
                self.invalid(id, &value, format!("expected one of {}", names.join(", ")))
            })
    }

    /// Upstream `KeyValue`: exactly one `=`; a later duplicate key wins.
    fn key_values(&self, id: &str) -> Result<IndexMap<String, String>, ConfigError> {
        self.values(id)
            .iter()
            .map(|item| {
                let mut parts = item.split('=');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(key), Some(value), None) => Ok((key.to_string(), value.to_string())),
                    _ => Err(self.invalid(id, item, "expected KEY=VALUE with exactly one '='")),
                }
            })
            .collect()
    }

    fn host_pairs(&self, id: &str) -> Result<IndexMap<String, String>, ConfigError> {
        let mut pairs = IndexMap::new();
        for pair in self.values(id) {
            let (first, second) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::InvalidHostPair(pair.clone()))?;
            pairs.insert(first.to_string(), second.to_string());
            pairs.insert(second.to_string(), first.to_string());
        }
        Ok(pairs)
    }

    fn build(&self, config_file: Option<PathBuf>) -> Result<ClusterConfig, ConfigError> {
        Ok(ClusterConfig {
            config_file,
            secrets_directory: PathBuf::from(self.value("secrets_directory")),
            log_format: self.choice("log_format")?,
            proxy: self.optional("proxy"),
            debug: self.flag("debug"),
            environment: self.value("environment"),
            service_type: self.choice("service_type")?,
            infrastructure: self.choice("infrastructure")?,
            port: self.port("port")?,
            enable_crd_support: self.flag("enable_crd_support"),
            secrets_init_container_image: self.optional("secrets_init_container_image"),
            secrets_service_account_name: self.optional("secrets_service_account_name"),
            datadog_container_image: self.optional("datadog_container_image"),
            datadog_container_memory: self.value("datadog_container_memory"),
            datadog_global_tags: self.key_values("datadog_global_tags")?,
            datadog_activate_sleep: self.flag("datadog_activate_sleep"),
            pre_stop_delay: self.integer("pre_stop_delay")?,
            strongbox_init_container_image: self.optional("strongbox_init_container_image"),
            enable_deprecated_multi_namespace_support: self
                .flag("enable_deprecated_multi_namespace_support"),
            use_in_memory_emptydirs: self.flag("use_in_memory_emptydirs"),
            deployment_max_surge: IntOrStr::parse(&self.value("deployment_max_surge")),
            deployment_max_unavailable: IntOrStr::parse(&self.value("deployment_max_unavailable")),
            enable_deprecated_tls_entry_per_host: self.flag("enable_deprecated_tls_entry_per_host"),
            ready_check_timeout_multiplier: self.integer("ready_check_timeout_multiplier")?,
            disable_deprecated_managed_env_vars: self.flag("disable_deprecated_managed_env_vars"),
            extension_hook_url: self.optional("extension_hook_url"),
            enable_service_account_per_app: self.flag("enable_service_account_per_app"),
            use_networkingv1_ingress: self.flag("use_networkingv1_ingress"),
            use_apiextensionsv1_crd: self.flag("use_apiextensionsv1_crd"),
            disable_crd_creation: self.flag("disable_crd_creation"),
            include_status_in_app: self.flag("include_status_in_app"),
            list_of_roles: self.values("list_of_roles"),
            list_of_cluster_roles: self.values("list_of_cluster_roles"),
            pdb_max_unavailable: IntOrStr::parse(&self.value("pdb_max_unavailable")),
            pdb_unhealthy_pod_eviction_policy: self.choice("pdb_unhealthy_pod_eviction_policy")?,
            enable_service_links: !self.flag("disable_service_links"),
            dns_search_domains: self.values("dns_search_domains"),
            ingress_host_pairs: self.host_pairs("ingress_host_pair")?,
            usage_reporting_cluster_name: self.optional("usage_reporting_cluster_name"),
            usage_reporting_operator: self.optional("usage_reporting_operator"),
            usage_reporting_endpoint: self.optional("usage_reporting_endpoint"),
            usage_reporting_tenant: self.optional("usage_reporting_tenant"),
            usage_reporting_team: self.optional("usage_reporting_team"),
            api_server: self.value("api_server"),
            api_token: self.optional("api_token"),
            api_cert: self.path("api_cert"),
            client_cert: self.path("client_cert"),
            client_key: self.path("client_key"),
            ingress_suffixes: self.values("ingress_suffix"),
            host_rewrite_rules: self
                .values("host_rewrite_rule")
                .iter()
                .map(|rule| HostRewriteRule::parse(rule))
                .collect::<Result<_, _>>()?,
            global_env: self.key_values("global_env")?,
            secret_init_containers: self.key_values("secret_init_containers")?,
            use_ingress_tls: self.choice("use_ingress_tls")?,
            tls_certificate_issuer: self.optional("tls_certificate_issuer"),
            tls_certificate_issuer_overrides: self
                .key_values("tls_certificate_issuer_overrides")?,
            tls_certificate_issuer_type_default: self.value("tls_certificate_issuer_type_default"),
            tls_certificate_issuer_type_overrides: self
                .key_values("tls_certificate_issuer_type_overrides")?,
            tls_certificate_ready: self.flag("tls_certificate_ready"),
            image: String::new(),
            version: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A YAML file under the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> TempFile {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "fiaas-transform-config-test-{}-{}.yaml",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }

        fn arg(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn parse_with(
        args: &[&str],
        default_file: Option<&Path>,
    ) -> Result<ClusterConfig, ConfigError> {
        ClusterConfig::from_args(
            std::iter::once(PROGRAM).chain(args.iter().copied()),
            default_file,
        )
    }

    fn parse(args: &[&str]) -> Result<ClusterConfig, ConfigError> {
        parse_with(args, None)
    }

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

    /// Parses with `yaml` as the only config file, given with `-c`.
    fn parse_file(yaml: &str) -> Result<ClusterConfig, ConfigError> {
        let file = TempFile::new(yaml);
        parse(&["-c", &file.arg()])
    }

    /// The entries in order, as `IndexMap`'s own equality ignores order.
    fn entries(map: &IndexMap<String, String>) -> Vec<(&str, &str)> {
        map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    fn map(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn rule(s: &str) -> HostRewriteRule {
        HostRewriteRule::parse(s).unwrap()
    }

    #[test]
    fn defaults() {
        let c = ClusterConfig::default();
        assert_eq!(c.config_file, None);
        assert_eq!(
            c.secrets_directory,
            PathBuf::from("/var/run/secrets/fiaas/")
        );
        assert_eq!(c.log_format, LogFormat::Plain);
        assert_eq!(c.proxy, None);
        assert!(!c.debug);
        assert_eq!(c.environment, "");
        assert_eq!(c.service_type, ServiceType::ClusterIP);
        assert_eq!(c.infrastructure, Infrastructure::Diy);
        assert_eq!(c.port, 5000);
        assert!(!c.enable_crd_support);
        assert_eq!(c.secrets_init_container_image, None);
        assert_eq!(c.secrets_service_account_name, None);
        assert_eq!(c.datadog_container_image, None);
        assert_eq!(c.datadog_container_memory, "2Gi");
        assert!(c.datadog_global_tags.is_empty());
        assert!(!c.datadog_activate_sleep);
        assert_eq!(c.pre_stop_delay, 0);
        assert_eq!(c.strongbox_init_container_image, None);
        assert!(!c.enable_deprecated_multi_namespace_support);
        assert!(!c.use_in_memory_emptydirs);
        assert_eq!(c.deployment_max_surge, IntOrStr::Str("25%".to_string()));
        // argparse runs string defaults through the type converter.
        assert_eq!(c.deployment_max_unavailable, IntOrStr::Int(0));
        assert!(!c.enable_deprecated_tls_entry_per_host);
        assert_eq!(c.ready_check_timeout_multiplier, 10);
        assert!(!c.disable_deprecated_managed_env_vars);
        assert_eq!(c.extension_hook_url, None);
        assert!(!c.enable_service_account_per_app);
        assert!(!c.use_networkingv1_ingress);
        assert!(!c.use_apiextensionsv1_crd);
        assert!(!c.disable_crd_creation);
        assert!(!c.include_status_in_app);
        assert!(c.list_of_roles.is_empty());
        assert!(c.list_of_cluster_roles.is_empty());
        assert_eq!(c.pdb_max_unavailable, IntOrStr::Int(1));
        assert_eq!(
            c.pdb_unhealthy_pod_eviction_policy,
            UnhealthyPodEvictionPolicy::IfHealthyBudget
        );
        assert!(c.enable_service_links);
        assert!(c.dns_search_domains.is_empty());
        assert!(c.ingress_host_pairs.is_empty());
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
        assert!(c.ingress_suffixes.is_empty());
        assert!(c.host_rewrite_rules.is_empty());
        assert!(c.global_env.is_empty());
        assert!(c.secret_init_containers.is_empty());
        assert_eq!(c.use_ingress_tls, UseIngressTls::Disabled);
        assert_eq!(c.tls_certificate_issuer, None);
        assert!(c.tls_certificate_issuer_overrides.is_empty());
        assert_eq!(
            c.tls_certificate_issuer_type_default,
            "certmanager.k8s.io/cluster-issuer"
        );
        assert!(c.tls_certificate_issuer_type_overrides.is_empty());
        assert!(!c.tls_certificate_ready);
        assert_eq!(c.image, "");
        assert_eq!(c.version, "");
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
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.proxy.as_deref(), Some("http://proxy:3128"));
        assert!(c.debug);
        assert_eq!(c.environment, "dev");
        assert_eq!(c.service_type, ServiceType::LoadBalancer);
        assert_eq!(c.infrastructure, Infrastructure::Gke);
        assert_eq!(c.port, 8080);
        assert!(c.enable_crd_support);
        assert_eq!(c.secrets_init_container_image.as_deref(), Some("secrets:1"));
        assert_eq!(
            c.secrets_service_account_name.as_deref(),
            Some("secrets-sa")
        );
        assert_eq!(c.datadog_container_image.as_deref(), Some("dd:7"));
        assert_eq!(c.datadog_container_memory, "1Gi");
        assert_eq!(c.datadog_global_tags, map(&[("a", "1")]));
        assert!(c.datadog_activate_sleep);
        assert_eq!(c.pre_stop_delay, -5);
        assert_eq!(
            c.strongbox_init_container_image.as_deref(),
            Some("strongbox:2")
        );
        assert!(c.enable_deprecated_multi_namespace_support);
        assert!(c.use_in_memory_emptydirs);
        assert_eq!(c.deployment_max_surge, IntOrStr::Int(2));
        assert_eq!(
            c.deployment_max_unavailable,
            IntOrStr::Str("10%".to_string())
        );
        assert!(c.enable_deprecated_tls_entry_per_host);
        assert_eq!(c.ready_check_timeout_multiplier, 3);
        assert!(c.disable_deprecated_managed_env_vars);
        assert_eq!(c.extension_hook_url.as_deref(), Some("http://hook"));
        assert!(c.enable_service_account_per_app);
        assert!(c.use_networkingv1_ingress);
        assert!(c.use_apiextensionsv1_crd);
        assert!(c.disable_crd_creation);
        assert!(c.include_status_in_app);
        assert_eq!(c.list_of_roles, strings(&["r1", "r2"]));
        assert_eq!(c.list_of_cluster_roles, strings(&["cr"]));
        assert_eq!(c.pdb_max_unavailable, IntOrStr::Str("50%".to_string()));
        assert_eq!(
            c.pdb_unhealthy_pod_eviction_policy,
            UnhealthyPodEvictionPolicy::AlwaysAllow
        );
        assert!(!c.enable_service_links);
        assert_eq!(c.dns_search_domains, strings(&["svc.local"]));
        assert_eq!(
            c.ingress_host_pairs,
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
            c.ingress_suffixes,
            strings(&["svc.example.com", "example.net"])
        );
        assert_eq!(c.host_rewrite_rules, vec![rule(r"(.*)\.old=\1.new")]);
        assert_eq!(c.global_env, map(&[("K", "V")]));
        assert_eq!(
            c.secret_init_containers,
            map(&[("parameter-store", "ps:1")])
        );
        assert_eq!(c.use_ingress_tls, UseIngressTls::DefaultOn);
        assert_eq!(c.tls_certificate_issuer.as_deref(), Some("letsencrypt"));
        assert_eq!(
            c.tls_certificate_issuer_overrides,
            map(&[("example.com", "other")])
        );
        assert_eq!(
            c.tls_certificate_issuer_type_default,
            "cert-manager.io/issuer"
        );
        assert_eq!(
            c.tls_certificate_issuer_type_overrides,
            map(&[("example.net", "cert-manager.io/cluster-issuer")])
        );
        assert!(c.tls_certificate_ready);
    }

    #[test]
    fn a_repeated_single_value_flag_keeps_the_last_value() {
        let c = parse(&["--port", "1", "--port=2", "--debug", "--debug"]).unwrap();
        assert_eq!(c.port, 2);
        assert!(c.debug);
    }

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
        assert_eq!(entries(&c.global_env), [("A", "2"), ("B", ""), ("", "c")]);

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
    fn int_or_str_parses_like_python_int() {
        assert_eq!(IntOrStr::parse("0"), IntOrStr::Int(0));
        assert_eq!(IntOrStr::parse("-3"), IntOrStr::Int(-3));
        assert_eq!(IntOrStr::parse("+4"), IntOrStr::Int(4));
        assert_eq!(IntOrStr::parse(" 7 "), IntOrStr::Int(7));
        assert_eq!(IntOrStr::parse("1_000"), IntOrStr::Int(1000));
        for text in [
            "25%",
            "",
            "1__0",
            "_1",
            "1_",
            "1.5",
            "0x10",
            "99999999999999999999",
        ] {
            assert_eq!(
                IntOrStr::parse(text),
                IntOrStr::Str(text.to_string()),
                "{text}"
            );
        }
        assert_eq!(IntOrStr::Int(3).to_string(), "3");
        assert_eq!(IntOrStr::Str("25%".to_string()).to_string(), "25%");
    }

    #[test]
    fn command_line_beats_config_file_beats_default_file() {
        let default_file = TempFile::new(
            "port: 1001\nenvironment: from-default\nproxy: default-proxy\n\
             ingress-suffix: [d1, d2]\nglobal-env: [D=1]\ndebug: true\n",
        );
        let config_file = TempFile::new(
            "port: 1002\nenvironment: from-c\ningress-suffix: [c1]\n\
             dns-search-domains: [c.local]\n",
        );
        let c = parse_with(
            &[
                "-c",
                &config_file.arg(),
                "--port",
                "1003",
                "--dns-search-domains",
                "cli.local",
            ],
            Some(default_file.path()),
        )
        .unwrap();
        assert_eq!(c.config_file, Some(config_file.0.clone()));
        assert_eq!(c.port, 1003);
        assert_eq!(c.environment, "from-c");
        assert_eq!(c.proxy.as_deref(), Some("default-proxy"));
        // Lists are replaced as a whole, never merged.
        assert_eq!(c.ingress_suffixes, strings(&["c1"]));
        assert_eq!(c.dns_search_domains, strings(&["cli.local"]));
        assert_eq!(c.global_env, map(&[("D", "1")]));
        assert!(c.debug);

        let c = parse_with(&[], Some(default_file.path())).unwrap();
        assert_eq!(c.config_file, None);
        assert_eq!(c.port, 1001);
        assert_eq!(c.ingress_suffixes, strings(&["d1", "d2"]));
    }

    #[test]
    fn a_missing_default_file_is_skipped() {
        let missing = std::env::temp_dir().join("fiaas-transform-config-test-no-such-file.yaml");
        assert_eq!(parse_with(&[], Some(&missing)).unwrap().port, 5000);
    }

    #[test]
    fn entries_that_add_no_flag_do_not_hide_lower_levels() {
        let default_file = TempFile::new("debug: true\ningress-suffix: [d]\n");
        let config_file = TempFile::new("debug: false\ningress-suffix: []\n");
        let c = parse_with(&["-c", &config_file.arg()], Some(default_file.path())).unwrap();
        assert!(c.debug);
        assert_eq!(c.ingress_suffixes, strings(&["d"]));
    }

    #[test]
    fn file_values_are_stringified_like_python() {
        let c = parse_file(
            "proxy: null\nenvironment: true\nport: 0x1F90\ndatadog-container-memory: 1.5\n\
             usage-reporting-team: {a: [1, \"it's\"]}\nlist-of-roles: [1, true, null, 2.0e20, x]\n\
             usage-reporting-tenant: 0755\napi-server: 1e-5\n",
        )
        .unwrap();
        assert_eq!(c.proxy.as_deref(), Some("None"));
        assert_eq!(c.environment, "True");
        assert_eq!(c.port, 8080);
        assert_eq!(c.datadog_container_memory, "1.5");
        assert_eq!(
            c.usage_reporting_team.as_deref(),
            Some("{'a': [1, \"it's\"]}")
        );
        // PyYAML's floats need a dot and a signed exponent: `2.0e20` and `1e-5` are text.
        assert_eq!(
            c.list_of_roles,
            strings(&["1", "True", "None", "2.0e20", "x"])
        );
        assert_eq!(c.usage_reporting_tenant.as_deref(), Some("493"));
        assert_eq!(c.api_server, "1e-5");
    }

    #[test]
    fn file_scalars_are_read_as_pyyaml_reads_them() {
        // Expectations printed by `str()` of PyYAML's safe_load of the same text.
        let c = parse_file(
            "environment: y\ndatadog-container-memory: 1:30\nusage-reporting-tenant: 0o755\n\
             list-of-roles: [yes, on, n, .inf, 1e3, 1_000, 010, Off, \"yes\", -.inf, 1:30.5]\n\
             proxy: 1.5e+3\nusage-reporting-team: NO\n",
        )
        .unwrap();
        assert_eq!(c.environment, "y");
        assert_eq!(c.datadog_container_memory, "90");
        assert_eq!(c.usage_reporting_tenant.as_deref(), Some("0o755"));
        assert_eq!(
            c.list_of_roles,
            strings(&[
                "True", "True", "n", "inf", "1e3", "1000", "8", "False", "yes", "-inf", "90.5"
            ])
        );
        assert_eq!(c.proxy.as_deref(), Some("1500.0"));
        assert_eq!(c.usage_reporting_team.as_deref(), Some("False"));
    }

    #[test]
    fn file_keys_are_long_names_with_or_without_dashes() {
        let c = parse_file(
            "--port: 6000\nunknown-key: whatever\nconfig-file: /elsewhere.yaml\nhelp: x\n\
             ingress_suffix: [ignored]\nenvironment: a\n--environment: b\n",
        )
        .unwrap();
        assert_eq!(c.port, 6000);
        assert!(c.ingress_suffixes.is_empty());
        assert_eq!(c.environment, "b");
        assert!(
            c.config_file
                .is_some_and(|p| p != Path::new("/elsewhere.yaml"))
        );
    }

    #[test]
    fn switches_in_files_accept_yes_and_no_words() {
        for yes in ["true", "True", "'yes'", "'YES'", "1", "on"] {
            let c = parse_file(&format!("debug: {yes}\ndisable-service-links: {yes}\n")).unwrap();
            assert!(c.debug, "{yes}");
            assert!(!c.enable_service_links, "{yes}");
        }
        for no in ["false", "'No'", "0", "off"] {
            let c = parse_file(&format!("debug: {no}\ndisable-service-links: {no}\n")).unwrap();
            assert!(!c.debug, "{no}");
            assert!(c.enable_service_links, "{no}");
        }
        let err = parse_file("debug: maybe\n").unwrap_err();
        assert!(
            err.to_string().ends_with(
                "Unexpected value for debug: 'maybe'. Expecting 'true', 'false', 'yes', 'no', \
                 '1' or '0'"
            ),
            "{err}"
        );
        assert_eq!(err.exit_code(), 2);
        let err = parse_file("debug: [true]\n").unwrap_err();
        assert!(err.to_string().contains("can't be set to a list"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn file_scalars_for_repeatable_flags_are_single_items() {
        let c = parse_file("ingress-suffix: example.com\nglobal-env: A=1\n").unwrap();
        assert_eq!(c.ingress_suffixes, strings(&["example.com"]));
        assert_eq!(c.global_env, map(&[("A", "1")]));
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
    fn command_line_errors_come_from_clap() {
        let err = parse(&["--log-format", "xml"]).unwrap_err();
        assert!(matches!(err, ConfigError::CommandLine(_)));
        assert!(err.to_string().contains("--log-format"), "{err}");
        assert_eq!(err.exit_code(), 2);
        let err = parse(&["--no-such-flag"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        // An ambiguous abbreviation: --pre-stop-delay or --proxy.
        let err = parse(&["--pr", "1"]).unwrap_err();
        assert!(matches!(err, ConfigError::CommandLine(_)));
        assert_eq!(err.exit_code(), 2);
        assert_eq!(parse(&["positional"]).unwrap_err().exit_code(), 2);
        assert_eq!(parse(&["--help"]).unwrap_err().exit_code(), 0);
    }

    #[test]
    fn long_options_take_an_unambiguous_prefix_like_argparse() {
        let c = parse(&[
            "--environ",
            "prod",
            "--use-networkingv1",
            "--ingress-suff",
            "a.example.com",
            "--po=6000",
        ])
        .unwrap();
        assert_eq!(c.environment, "prod");
        assert!(c.use_networkingv1_ingress);
        assert_eq!(c.ingress_suffixes, strings(&["a.example.com"]));
        assert_eq!(c.port, 6000);
        // A full name wins over the longer names it begins.
        let c = parse(&["--tls-certificate-issuer", "x"]).unwrap();
        assert_eq!(c.tls_certificate_issuer.as_deref(), Some("x"));
        // An abbreviation is the flag given on the command line: it hides the file's value.
        let file = TempFile::new("environment: from-file\ningress-suffix: [file.example.com]\n");
        let c = parse(&[
            "--config",
            &file.arg(),
            "--environ",
            "cli",
            "--ingress-s",
            "cli.example.com",
        ])
        .unwrap();
        assert_eq!(c.config_file, Some(file.0.clone()));
        assert_eq!(c.environment, "cli");
        assert_eq!(c.ingress_suffixes, strings(&["cli.example.com"]));
    }

    #[test]
    fn malformed_files_are_rejected() {
        for (yaml, expected) in [
            ("", "returned type 'NoneType' instead of 'dict'"),
            (
                "# only a comment\n",
                "returned type 'NoneType' instead of 'dict'",
            ),
            ("- a\n- b\n", "returned type 'list' instead of 'dict'"),
            ("just text\n", "returned type 'str' instead of 'dict'"),
            ("port: 1\n---\nport: 2\n", "Couldn't parse config file"),
            ("port: [1\n", "Couldn't parse config file"),
            ("port: [1, 2]\n", "port can't be set to a list '[1, 2]'"),
        ] {
            let file = TempFile::new(yaml);
            let err = parse(&["-c", &file.arg()]).unwrap_err();
            assert!(
                matches!(err, ConfigError::ConfigFile { .. }),
                "{yaml:?}: {err}"
            );
            assert!(err.to_string().contains(expected), "{yaml:?}: {err}");
            assert!(err.to_string().starts_with(&file.arg()), "{err}");
            assert_eq!(err.exit_code(), 2);
        }
        let not_utf8 = std::env::temp_dir().join(format!(
            "fiaas-transform-config-test-{}-latin1.yaml",
            std::process::id()
        ));
        std::fs::write(&not_utf8, b"environment: caf\xe9\n").unwrap();
        let err = parse(&["-c", &not_utf8.display().to_string()]).unwrap_err();
        std::fs::remove_file(&not_utf8).unwrap();
        assert!(matches!(err, ConfigError::ConfigFile { .. }), "{err}");
        assert_eq!(err.exit_code(), 2);
        // Even the default file must not be empty.
        let empty = TempFile::new("");
        let err = parse_with(&[], Some(empty.path())).unwrap_err();
        assert!(matches!(err, ConfigError::ConfigFile { .. }), "{err}");
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
    fn host_rewrite_rules_use_python_replacement_syntax() {
        let numbered = rule(r"(.*)\.internal\.example\.com=\1.example.net");
        assert_eq!(
            numbered.apply("app.internal.example.com").as_deref(),
            Some("app.example.net")
        );
        let named =
            rule(r"(?P<app>[a-z]+)\.(?P<env>dev|pro)\.local=\g<app>-\g<env>.\g<1>.example.com");
        assert_eq!(
            named.apply("shop.dev.local").as_deref(),
            Some("shop-dev.shop.example.com")
        );
        let whole = rule(r"[a-z]+\.old=\g<0>.new$1\\");
        assert_eq!(whole.apply("app.old").as_deref(), Some(r"app.old.new$1\"));
    }

    #[test]
    fn host_rewrite_rules_need_a_match_at_the_start() {
        let rule = rule(r"internal\.=public.");
        assert_eq!(rule.apply("app.internal.example.com"), None);
        assert_eq!(
            rule.apply("internal.internal.com").as_deref(),
            Some("public.public.com")
        );
    }

    #[test]
    fn host_rewrite_rules_replace_like_python_re_sub() {
        // Python also replaces the empty match at the end after a non-empty one.
        assert_eq!(
            rule(r"(.*)=\1.x").apply("host").as_deref(),
            Some("host.x.x")
        );
        assert_eq!(rule("x*=-").apply("xabxd").as_deref(), Some("--a-b--d-"));
        assert_eq!(rule(r"a=\n\t\0\101").apply("a").as_deref(), Some("\n\t\0A"));
        assert_eq!(rule(r"a(b)?=[\1]").apply("ac").as_deref(), Some("[]c"));
    }

    #[test]
    fn bad_host_rewrite_rules_name_the_flag() {
        for (text, reason) in [
            ("nothing", "exactly one '='"),
            ("a=b=c", "exactly one '='"),
            (r"(a)=\2", "invalid group reference 2"),
            (r"(a)=\g<nope>", "unknown group name 'nope'"),
            (r"(a)=\g<1", "missing >"),
            (r"(a)=\g1", "missing <"),
            (r"a=\q", r"bad escape \q"),
            ("a=\\", "bad escape (end of pattern)"),
        ] {
            let err = HostRewriteRule::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("--host-rewrite-rule: invalid value '{text}'")),
                "{message}"
            );
            assert!(message.contains(reason), "{text}: {message}");
            assert_eq!(err.exit_code(), 2);
        }
        // Upstream's re.compile raises past argparse: a traceback, exit status 1.
        for (text, reason) in [
            ("(a=b", "invalid regular expression"),
            (
                "a(?i)b=x",
                "global flags not at the start of the expression",
            ),
            (
                r"(?a:\w)=x",
                "unsupported regular expression construct (?a:",
            ),
        ] {
            let err = HostRewriteRule::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("--host-rewrite-rule: invalid value '{text}'")),
                "{message}"
            );
            assert!(message.contains(reason), "{text}: {message}");
            assert_eq!(err.exit_code(), 1);
        }
        let err = parse(&["--host-rewrite-rule", "a=b=c"]).unwrap_err();
        assert!(err.to_string().starts_with("--host-rewrite-rule: "));
        assert_eq!(rule(r"(a)=\g<1>"), rule(r"(a)=\g<1>"));
        assert_ne!(rule(r"(a)=\g<1>"), rule(r"(a)=\1"));
    }

    #[test]
    fn host_pairs_map_both_ways() {
        let c = parse_file("ingress-host-pair: [a.example=b.example, c=d=e]\n").unwrap();
        assert_eq!(
            entries(&c.ingress_host_pairs),
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
            let (images, automount) = parse(args).unwrap().secret_init_container_images();
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
        assert_eq!((c.image.as_str(), c.version.as_str()), ("img:1", "1.2"));
        let c = ClusterConfig::default()
            .with_identity_from(env(&[("IMAGE", ""), ("FIAAS_IMAGE", "fimg")]));
        assert_eq!((c.image.as_str(), c.version.as_str()), ("fimg", ""));
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
    fn cluster_args_flatten_into_another_command() {
        #[derive(clap::Parser)]
        struct Render {
            #[command(flatten)]
            cluster: ClusterArgs,
            #[arg(long)]
            app: String,
        }
        use clap::{CommandFactory, FromArgMatches};
        let matches = Render::command()
            .try_get_matches_from(["fiaas", "--app", "x", "--environment", "pro"])
            .unwrap();
        let render = Render::from_arg_matches(&matches).unwrap();
        assert_eq!(render.app, "x");
        assert_eq!(render.cluster.environment, "pro");
        let c = ClusterConfig::from_matches(&matches, None).unwrap();
        assert_eq!(c.environment, "pro");
        assert_eq!(c.port, 5000);
        // The flattening command takes abbreviations too.
        let matches = Render::command()
            .try_get_matches_from(["fiaas", "--app", "x", "--environ", "pro"])
            .unwrap();
        let c = ClusterConfig::from_matches(&matches, None).unwrap();
        assert_eq!(c.environment, "pro");
    }

    #[test]
    fn choice_names_round_trip() {
        assert_eq!(ServiceType::NodePort.as_str(), "NodePort");
        assert_eq!(Infrastructure::Gke.as_str(), "gke");
        assert_eq!(UseIngressTls::DefaultOff.to_string(), "default_off");
        assert_eq!(
            UnhealthyPodEvictionPolicy::AlwaysAllow.as_str(),
            "AlwaysAllow"
        );
        assert_eq!(LogFormat::Json.as_str(), "json");
    }
}
