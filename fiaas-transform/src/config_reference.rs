//! The operator's configuration reference (`docs/configuration.md`), generated from the one
//! definition of the cluster flags, [`ClusterArgs`], so the document cannot drift from what the
//! binaries accept.
//!
//! Regenerate the document with
//! `cargo run -p fiaas-transform --example configuration-reference > docs/configuration.md`;
//! a test fails while the checked-in copy is stale.

use std::fmt::Write as _;

use clap::{Arg, ArgAction, Args, Command};

use crate::config::{ClusterArgs, DEFAULT_CONFIG_FILE};

/// Heading of the flags clap lists under its default "Options" heading.
const GENERAL_HEADING: &str = "General";

/// The clap id of `-c/--config-file`, which picks files and is never read from one.
const CONFIG_FILE_ID: &str = "config_file";

/// The command the daemon parses, reduced to the cluster flags.
fn cluster_command() -> Command {
    ClusterArgs::augment_args(Command::new("fiaas-deploy-daemon"))
}

/// How a flag takes its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Present or absent (`--debug`).
    Switch,
    /// One value; the last one given wins.
    Single,
    /// Repeatable; every value counts.
    Repeated,
}

fn shape(arg: &Arg) -> Shape {
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::SetFalse => Shape::Switch,
        ArgAction::Append => Shape::Repeated,
        _ => Shape::Single,
    }
}

/// The placeholder clap prints for the flag's value, e.g. `<LOG_FORMAT>`.
fn value_placeholder(arg: &Arg) -> String {
    let names: Vec<String> = arg
        .get_value_names()
        .map(|names| names.iter().map(|n| n.to_string()).collect())
        .unwrap_or_default();
    if names.is_empty() {
        format!("<{}>", arg.get_id().as_str().to_uppercase())
    } else {
        names
            .iter()
            .map(|n| format!("<{n}>"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `` `value` `` for each default, or what an unset flag means.
fn default_text(arg: &Arg, shape: Shape) -> String {
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", code_literal(&v.to_string_lossy())))
        .collect();
    match shape {
        Shape::Switch => "`false` (off)".to_owned(),
        Shape::Repeated if defaults.is_empty() => "none (empty list)".to_owned(),
        Shape::Single if defaults.is_empty() => "unset".to_owned(),
        _ => defaults.join(", "),
    }
}

/// Text for inside a Markdown code span: an empty value reads as `""`.
fn code_literal(value: &str) -> String {
    if value.is_empty() {
        "\"\"".to_owned()
    } else {
        value.to_owned()
    }
}

/// The visible choices of a flag that takes a value from a fixed set.
fn possible_values(arg: &Arg, shape: Shape) -> Vec<String> {
    if shape == Shape::Switch {
        return Vec::new();
    }
    arg.get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect()
}

/// An example `cluster_config.yaml` entry for the flag.
fn file_example(key: &str, arg: &Arg, shape: Shape) -> String {
    let placeholder = value_placeholder(arg);
    match shape {
        Shape::Switch => format!("`{key}: true`"),
        Shape::Repeated => {
            format!("`{key}: [\"{placeholder}\", ...]` (a YAML list; each item is one `--{key}`)")
        }
        Shape::Single => match arg.get_default_values().first() {
            Some(value) if !value.is_empty() => {
                format!("`{key}: {}`", value.to_string_lossy())
            }
            _ => format!("`{key}: \"{placeholder}\"`"),
        },
    }
}

/// The help text clap shows for the flag, on one line.
fn help_text(arg: &Arg) -> String {
    arg.get_long_help()
        .or_else(|| arg.get_help())
        .map(|help| help.to_string())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Markdown reference of every cluster flag, grouped as in `--help`, with an introduction
/// on where configuration comes from. This is the content of `docs/configuration.md`.
pub fn configuration_markdown() -> String {
    let command = cluster_command();
    let args: Vec<&Arg> = command
        .get_arguments()
        .filter(|arg| arg.get_long().is_some() && !arg.is_hide_set())
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | "version"))
        .collect();

    let mut headings: Vec<&str> = Vec::new();
    for arg in &args {
        let heading = arg.get_help_heading().unwrap_or(GENERAL_HEADING);
        if !headings.contains(&heading) {
            headings.push(heading);
        }
    }

    let mut out = String::new();
    out.push_str(&introduction());

    out.push_str("## Index\n\n| Key | Default |\n|---|---|\n");
    for heading in &headings {
        for arg in args
            .iter()
            .filter(|a| a.get_help_heading().unwrap_or(GENERAL_HEADING) == *heading)
        {
            let key = arg.get_long().unwrap_or_default();
            let _ = writeln!(
                out,
                "| [`{key}`](#{key}) | {} |",
                default_text(arg, shape(arg))
            );
        }
    }
    out.push('\n');

    for heading in &headings {
        let _ = writeln!(out, "## {heading}\n");
        for arg in args
            .iter()
            .filter(|a| a.get_help_heading().unwrap_or(GENERAL_HEADING) == *heading)
        {
            out.push_str(&flag_section(arg));
        }
    }
    out
}

/// The section of one flag.
fn flag_section(arg: &Arg) -> String {
    let key = arg.get_long().unwrap_or_default();
    let shape = shape(arg);
    let mut out = String::new();
    let _ = writeln!(out, "### {key}\n");
    let help = help_text(arg);
    if !help.is_empty() {
        let _ = writeln!(out, "{help}\n");
    }

    let short = arg
        .get_short()
        .map(|c| format!("`-{c}`, "))
        .unwrap_or_default();
    let syntax = match shape {
        Shape::Switch => format!("{short}`--{key}`"),
        Shape::Single => format!("{short}`--{key} {}`", value_placeholder(arg)),
        Shape::Repeated => format!("{short}`--{key} {}`, repeatable", value_placeholder(arg)),
    };
    let _ = writeln!(out, "- Command line: {syntax}");
    if arg.get_id().as_str() == CONFIG_FILE_ID {
        out.push_str("- Config file: not read from config files (command line only)\n");
    } else {
        let _ = writeln!(out, "- Config file: {}", file_example(key, arg, shape));
    }
    let _ = writeln!(out, "- Default: {}", default_text(arg, shape));
    let choices = possible_values(arg, shape);
    if !choices.is_empty() {
        let _ = writeln!(out, "- Possible values: {}", choices.join(", "));
    }
    out.push('\n');
    out
}

/// What comes before the flags: where configuration is read from and how.
fn introduction() -> String {
    format!(
        "<!-- Generated from fiaas-transform's ClusterArgs by \
         `cargo run -p fiaas-transform --example configuration-reference > docs/configuration.md`. \
         Do not edit by hand. -->\n\
         \n\
         # fiaas-deploy-daemon configuration\n\
         \n\
         `fiaas-deploy-daemon`, `fiaas-deploy-daemon-bootstrap`, `fiaas render` and \
         `fiaas diff` accept the same cluster options, listed below. They are the options of the Python \
         fiaas-deploy-daemon, with the same names, values and defaults, so an existing \
         `cluster_config.yaml` keeps working.\n\
         \n\
         ## Where configuration comes from\n\
         \n\
         Highest precedence first:\n\
         \n\
         1. the command line;\n\
         2. the YAML file named by `-c`/`--config-file`;\n\
         3. the default config file `{DEFAULT_CONFIG_FILE}`, read only if it exists (in a \
         cluster, the `cluster_config.yaml` key of the `fiaas-deploy-daemon` ConfigMap mounted \
         at `/var/run/config/fiaas/`);\n\
         4. the built-in defaults.\n\
         \n\
         An option set at a higher level hides the lower levels completely: lists are not \
         merged. A switch turned on at a lower level cannot be turned off at a higher one.\n\
         \n\
         On the command line, as with the Python daemon's argparse, a long option may be \
         shortened to any prefix that no other option starts with (`--environ prod`, \
         `--use-networkingv1`); it then counts as the full option, also for the precedence \
         above. Config file keys are always full names.\n\
         \n\
         ## Config file format\n\
         \n\
         A config file is one YAML mapping whose keys are the long option names without the \
         leading dashes (`ingress-suffix`, `host-rewrite-rule`, `global-env`); `--port` style \
         keys work too, and unknown keys are ignored. Each value is used as if it had been typed \
         on the command line:\n\
         \n\
         - a scalar becomes the option's value, as the Python daemon's ConfigArgParse passes it \
         on: read as PyYAML reads YAML 1.1, then written as Python's `str()` writes it \
         (`port: 5000` is `--port 5000`; `null` is the string `None`, a plain `yes` is `True`, \
         `y` stays `y`, `1:30` is `90`, `0o755` and `1e3` stay as written, `1.5e+3` is \
         `1500.0`);\n\
         - a list expands to the option repeated once per item, and is only allowed for \
         repeatable options (`ingress-suffix: [a.example.com, b.example.com]` is \
         `--ingress-suffix a.example.com --ingress-suffix b.example.com`);\n\
         - a switch takes `true`, `yes` or `1` to turn it on and `false`, `no` or `0` to leave it \
         off (case-insensitive).\n\
         \n\
         `key=value` options (`global-env`, `host-rewrite-rule`, `secret-init-containers`, ...) \
         are lists of `key=value` strings in files too, not YAML mappings:\n\
         \n\
         ```yaml\n\
         enable-crd-support: true\n\
         ingress-suffix:\n  - apps.example.com\n\
         global-env:\n  - LOG_LEVEL=info\n\
         ```\n\
         \n\
         ## Environment variables\n\
         \n\
         Environment variables are not a configuration source. The daemon reads only `IMAGE` \
         (else `FIAAS_IMAGE`) and `VERSION` (else `FIAAS_VERSION`), its own image and version \
         (for the `fiaas/deployed_by` label and the version metric), and `NAMESPACE`, used when \
         the service account's namespace file cannot be read.\n\
         \n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_a_section_and_an_index_entry() {
        let markdown = configuration_markdown();
        let command = cluster_command();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            assert!(
                markdown.contains(&format!("\n### {long}\n")),
                "no section for --{long}"
            );
            assert!(
                markdown.contains(&format!("[`{long}`](#{long})")),
                "no index entry for --{long}"
            );
        }
    }

    #[test]
    fn shows_defaults_choices_and_shapes() {
        let markdown = configuration_markdown();
        assert!(markdown.contains("- Possible values: `plain`, `json`"));
        assert!(markdown.contains("- Config file: `port: 5000`"));
        assert!(markdown.contains("`--ingress-suffix <INGRESS_SUFFIX>`, repeatable"));
        assert!(markdown.contains("- Config file: `debug: true`"));
        assert!(markdown.contains("| [`environment`](#environment) | `\"\"` |"));
        assert!(markdown.contains("## Usage Reporting\n"));
    }
}
