//! The command line: the flags of [`Flag::ALL`] as clap arguments, so every binary accepts the
//! same ones (`#[command(flatten)]` [`ClusterArgs`], or [`DaemonArgs`] in the daemon), and the
//! configuration built from the matches.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::builder::{PossibleValuesParser, ValueParser};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};

use crate::flags::{Flag, Scope, Shape, Values};
use crate::precedence::{Layer, Setting};
use crate::{ClusterConfig, ConfigError, DEFAULT_CONFIG_FILE};

/// Program name in help and usage output, as upstream's argparse derives it.
const PROGRAM: &str = "fiaas-deploy-daemon";

/// The flags every binary takes ([`Scope::Cluster`]), to `#[command(flatten)]` into a clap
/// command; build the configuration from the matches with [`ClusterConfig::from_matches`].
/// The flags carry no values here: the merged, typed configuration is [`ClusterConfig`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ClusterArgs;

/// The flags of [`Scope::Deployer`]: those of [`ClusterArgs`] and how deploys run, to
/// `#[command(flatten)]` into fiaas-deploy-daemon-bootstrap's command, as [`ClusterArgs`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DeployerArgs;

/// Every flag, the daemon's own ([`Scope::Daemon`]) too, to `#[command(flatten)]` into
/// fiaas-deploy-daemon's command, as [`ClusterArgs`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DaemonArgs;

/// The clap argument of one flag.
fn arg(flag: Flag) -> Arg {
    let def = flag.def();
    let mut arg = Arg::new(def.long).long(def.long).help(def.help());
    if let Some(short) = def.short {
        arg = arg.short(short);
    }
    if let Some(heading) = def.heading {
        arg = arg.help_heading(heading);
    }
    // A single-valued flag given twice keeps the last value, as with argparse.
    arg = match def.shape {
        Shape::Switch => arg.action(ArgAction::SetTrue).overrides_with(def.long),
        Shape::Single => arg
            .action(ArgAction::Set)
            .overrides_with(def.long)
            .value_name(def.placeholder()),
        Shape::Repeated => arg.action(ArgAction::Append).value_name(def.placeholder()),
    };
    if let Some(default) = def.default {
        arg = arg.default_value(default);
    }
    if def.negative_numbers {
        arg = arg.allow_negative_numbers(true);
    }
    match (def.shape, def.values) {
        (Shape::Switch, _) => arg,
        (_, Values::Text) => arg.value_parser(ValueParser::string()),
        (_, Values::Choice(names)) => arg.value_parser(PossibleValuesParser::new(names)),
        (_, Values::Number { min, max: None }) => {
            arg.value_parser(clap::value_parser!(u32).range(i64::from(min)..))
        }
        (
            _,
            Values::Number {
                min,
                max: Some(max),
            },
        ) => arg.value_parser(clap::value_parser!(u32).range(i64::from(min)..=i64::from(max))),
        (_, Values::Seconds) => arg.value_parser(clap::value_parser!(u64)),
    }
}

/// `command` with the flags of `scope`.
pub(crate) fn augment(command: Command, scope: Scope) -> Command {
    // argparse takes any unambiguous prefix of a long option (`--environ prod`) and so does the
    // daemon's command line; the setting is global, so every command flattening these flags
    // has it.
    command.infer_long_args(true).args(scope.flags().map(arg))
}

impl FromArgMatches for ClusterArgs {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(ClusterArgs)
    }

    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        Ok(())
    }
}

impl Args for ClusterArgs {
    fn augment_args(command: Command) -> Command {
        augment(command, Scope::Cluster)
    }

    fn augment_args_for_update(command: Command) -> Command {
        augment(command, Scope::Cluster)
    }
}

impl FromArgMatches for DeployerArgs {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(DeployerArgs)
    }

    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        Ok(())
    }
}

impl Args for DeployerArgs {
    fn augment_args(command: Command) -> Command {
        augment(command, Scope::Deployer)
    }

    fn augment_args_for_update(command: Command) -> Command {
        augment(command, Scope::Deployer)
    }
}

impl FromArgMatches for DaemonArgs {
    fn from_arg_matches(_: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(DaemonArgs)
    }

    fn update_from_arg_matches(&mut self, _: &ArgMatches) -> Result<(), clap::Error> {
        Ok(())
    }
}

impl Args for DaemonArgs {
    fn augment_args(command: Command) -> Command {
        augment(command, Scope::Daemon)
    }

    fn augment_args_for_update(command: Command) -> Command {
        augment(command, Scope::Daemon)
    }
}

/// What the command line says, for the flags of `scope` given there explicitly.
fn command_line_layer(matches: &ArgMatches, scope: Scope) -> Layer {
    scope
        .flags()
        .filter(|flag| *flag != Flag::ConfigFile)
        .filter(|flag| matches.value_source(flag.long()) == Some(ValueSource::CommandLine))
        .map(|flag| {
            let setting = match flag.def().shape {
                Shape::Switch => Setting::Set,
                Shape::Single | Shape::Repeated => Setting::Values(
                    matches
                        .get_raw(flag.long())
                        .into_iter()
                        .flatten()
                        .map(|v| v.to_string_lossy().into_owned())
                        .collect(),
                ),
            };
            (flag, setting)
        })
        .collect()
}

impl ClusterConfig {
    /// Parses a full command line (`argv[0]` first) of the flags every binary takes, with the
    /// upstream precedence: command line > `-c/--config-file` file > `default_config_file` (read
    /// only if it exists) > built-in defaults.
    pub fn from_args<I, T>(
        args: I,
        default_config_file: Option<&Path>,
    ) -> Result<ClusterConfig, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = ClusterArgs::augment_args(Command::new(PROGRAM))
            .about("deploys applications to Kubernetes")
            .after_help(format!(
                "Every option can also be set in a YAML config file ({DEFAULT_CONFIG_FILE} or \
                 -c), keyed by its long name without dashes; repeatable options take a YAML \
                 list. The command line overrides -c, which overrides the default file."
            ))
            .try_get_matches_from(args)?;
        Self::from_matches(&matches, Scope::Cluster, default_config_file)
    }

    /// Builds the configuration from matches of a command that flattens [`ClusterArgs`]
    /// (`scope` [`Scope::Cluster`]), [`DeployerArgs`] ([`Scope::Deployer`]) or [`DaemonArgs`]
    /// ([`Scope::Daemon`]), with the same
    /// precedence as [`ClusterConfig::from_args`]; only flags given explicitly on the command
    /// line count as given there, and files are read for the flags of `scope`.
    pub fn from_matches(
        matches: &ArgMatches,
        scope: Scope,
        default_config_file: Option<&Path>,
    ) -> Result<ClusterConfig, ConfigError> {
        let config_file_id = Flag::ConfigFile.long();
        let config_file = matches
            .get_one::<String>(config_file_id)
            .filter(|_| matches.value_source(config_file_id) == Some(ValueSource::CommandLine))
            .map(PathBuf::from);
        ClusterConfig::load(
            command_line_layer(matches, scope),
            config_file,
            default_config_file,
            scope,
        )
    }
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use super::*;
    use crate::test_support::*;

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
        assert_eq!(c.transform.environment, "prod");
        assert!(c.transform.use_networkingv1_ingress);
        assert_eq!(c.transform.ingress_suffixes, strings(&["a.example.com"]));
        assert_eq!(c.port, 6000);
        // A full name wins over the longer names it begins.
        let c = parse(&["--tls-certificate-issuer", "x"]).unwrap();
        assert_eq!(c.transform.tls_certificate_issuer.as_deref(), Some("x"));
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
        assert_eq!(c.transform.environment, "cli");
        assert_eq!(c.transform.ingress_suffixes, strings(&["cli.example.com"]));
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
        let c = ClusterConfig::from_matches(&matches, Scope::Cluster, None).unwrap();
        assert_eq!(c.transform.environment, "pro");
        assert_eq!(c.port, 5000);
        // The flattening command takes abbreviations too.
        let matches = Render::command()
            .try_get_matches_from(["fiaas", "--app", "x", "--environ", "pro"])
            .unwrap();
        let c = ClusterConfig::from_matches(&matches, Scope::Cluster, None).unwrap();
        assert_eq!(c.transform.environment, "pro");
    }

    #[test]
    fn each_binary_takes_the_flags_of_its_scope() {
        for args in [
            &["--leader-election"][..],
            &["--max-concurrent-deploys", "3"],
            &["--status-retention", "1"],
        ] {
            let err = parse(args).unwrap_err();
            assert!(
                matches!(err, ConfigError::CommandLine(_)),
                "{args:?}: {err}"
            );
        }
        let c = parse_daemon(
            &[
                "--leader-election",
                "--max-concurrent-deploys",
                "3",
                "--max-concurrent-deploys",
                "4",
                "--leader-election-lease-name",
                "lease",
                "--shutdown-grace",
                "5",
            ],
            None,
        )
        .unwrap();
        assert!(c.daemon.leader_election);
        assert_eq!(c.deploys.max_concurrent_deploys, 4);
        assert_eq!(c.daemon.leader_election_lease_name, "lease");
        assert_eq!(c.daemon.shutdown_grace_seconds, 5);
        // The bootstrapper takes the deploy flags, not the daemon's own.
        let c = parse_as(Scope::Deployer, &["--max-concurrent-deploys", "2"], None).unwrap();
        assert_eq!(c.deploys.max_concurrent_deploys, 2);
        let err = parse_as(Scope::Deployer, &["--leader-election"], None).unwrap_err();
        assert!(matches!(err, ConfigError::CommandLine(_)), "{err}");
        // Clap checks the command line as before: at least one deploy at a time.
        for args in [["--max-concurrent-deploys", "0"], ["--shards", "1025"]] {
            let err = parse_daemon(&args, None).unwrap_err();
            assert!(matches!(err, ConfigError::CommandLine(_)), "{err}");
            assert_eq!(err.exit_code(), 2);
        }
    }

    #[test]
    fn a_bad_host_rewrite_rule_on_the_command_line_names_the_flag() {
        let err = parse(&["--host-rewrite-rule", "a=b=c"]).unwrap_err();
        assert!(err.to_string().starts_with("--host-rewrite-rule: "));
    }
}
