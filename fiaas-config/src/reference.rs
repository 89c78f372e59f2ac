//! The operator's configuration reference (`docs/configuration.md`), generated from the one
//! definition of the flags, [`Flag`], so the document cannot drift from what the binaries
//! accept.
//!
//! Regenerate the document with
//! `cargo run -p fiaas-config --example configuration-reference > docs/configuration.md`;
//! a test fails while the checked-in copy is stale.

use std::fmt::Write as _;

use crate::DEFAULT_CONFIG_FILE;
use crate::flags::{Flag, FlagDef, Scope, Shape, Values};

/// Heading of the flags `--help` lists under clap's default "Options" heading.
const GENERAL_HEADING: &str = "General";

/// Heading of the flags of the binaries that deploy.
const DEPLOYER_HEADING: &str = "fiaas-deploy-daemon and its bootstrap";

/// Heading of the flags only fiaas-deploy-daemon takes.
const DAEMON_HEADING: &str = "fiaas-deploy-daemon only";

/// The section a flag is documented in.
fn section(def: &FlagDef) -> &'static str {
    match (def.scope, def.heading) {
        (Scope::Daemon, _) => DAEMON_HEADING,
        (Scope::Deployer, _) => DEPLOYER_HEADING,
        (Scope::Cluster, Some(heading)) => heading,
        (Scope::Cluster, None) => GENERAL_HEADING,
    }
}

/// `` `value` `` for the default, or what an unset flag means.
fn default_text(def: &FlagDef) -> String {
    match (def.shape, def.default) {
        (Shape::Switch, _) => "`false` (off)".to_owned(),
        (Shape::Repeated, None) => "none (empty list)".to_owned(),
        (Shape::Single, None) => "unset".to_owned(),
        (_, Some(default)) => format!("`{}`", code_literal(default)),
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

/// An example `cluster_config.yaml` entry for the flag.
fn file_example(def: &FlagDef) -> String {
    let key = def.long;
    let placeholder = format!("<{}>", def.placeholder());
    match def.shape {
        Shape::Switch => format!("`{key}: true`"),
        Shape::Repeated => {
            format!("`{key}: [\"{placeholder}\", ...]` (a YAML list; each item is one `--{key}`)")
        }
        Shape::Single => match def.default {
            Some(value) if !value.is_empty() => format!("`{key}: {value}`"),
            _ => format!("`{key}: \"{placeholder}\"`"),
        },
    }
}

/// The Markdown reference of every flag, grouped as in `--help` (the daemon's own flags last),
/// with an introduction on where configuration comes from. This is the content of
/// `docs/configuration.md`.
pub fn configuration_markdown() -> String {
    let mut headings: Vec<&str> = Vec::new();
    for flag in Flag::ALL {
        let heading = section(flag.def());
        if !headings.contains(&heading) {
            headings.push(heading);
        }
    }
    let mut out = String::new();
    out.push_str(&introduction());

    out.push_str("## Index\n\n| Key | Default |\n|---|---|\n");
    for heading in &headings {
        for def in in_section(heading) {
            let key = def.long;
            let _ = writeln!(out, "| [`{key}`](#{key}) | {} |", default_text(def));
        }
    }
    out.push('\n');

    for heading in &headings {
        let _ = writeln!(out, "## {heading}\n");
        for def in in_section(heading) {
            out.push_str(&flag_section(def));
        }
    }
    out
}

/// The flags documented under `heading`, in `--help` order.
fn in_section(heading: &str) -> impl Iterator<Item = &'static FlagDef> + '_ {
    Flag::ALL
        .iter()
        .map(|flag| flag.def())
        .filter(move |def| section(def) == heading)
}

/// The section of one flag.
fn flag_section(def: &FlagDef) -> String {
    let key = def.long;
    let mut out = String::new();
    let _ = writeln!(out, "### {key}\n");
    let _ = writeln!(out, "{}\n", def.help());

    let short = def.short.map(|c| format!("`-{c}`, ")).unwrap_or_default();
    let placeholder = def.placeholder();
    let syntax = match def.shape {
        Shape::Switch => format!("{short}`--{key}`"),
        Shape::Single => format!("{short}`--{key} <{placeholder}>`"),
        Shape::Repeated => format!("{short}`--{key} <{placeholder}>`, repeatable"),
    };
    let _ = writeln!(out, "- Command line: {syntax}");
    if key == Flag::ConfigFile.long() {
        out.push_str("- Config file: not read from config files (command line only)\n");
    } else {
        let _ = writeln!(out, "- Config file: {}", file_example(def));
    }
    let _ = writeln!(out, "- Default: {}", default_text(def));
    if let (Shape::Single | Shape::Repeated, Values::Choice(names)) = (def.shape, def.values) {
        let choices: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
        let _ = writeln!(out, "- Possible values: {}", choices.join(", "));
    }
    out.push('\n');
    out
}

/// What comes before the flags: where configuration is read from and how.
fn introduction() -> String {
    format!(
        "<!-- Generated from fiaas-config's flag table (fiaas-config/src/flags.rs) by \
         `cargo run -p fiaas-config --example configuration-reference > docs/configuration.md`. \
         Do not edit by hand. -->\n\
         \n\
         # fiaas-deploy-daemon configuration\n\
         \n\
         `fiaas-deploy-daemon`, `fiaas-deploy-daemon-bootstrap`, `fiaas render` and \
         `fiaas diff` accept the same cluster options, listed below. They are the options of the \
         Python fiaas-deploy-daemon, with the same names, values and defaults, so an existing \
         `cluster_config.yaml` keeps working. The options under \
         [{DEPLOYER_HEADING}](#fiaas-deploy-daemon-and-its-bootstrap) and \
         [{DAEMON_HEADING}](#fiaas-deploy-daemon-only) are fiaas' own: only those binaries take \
         them, on their command line or in their config files.\n\
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
         \n\
         ## Found out from the cluster\n\
         \n\
         Some choices are not configured: the daemon asks the API server at start-up. The \
         PodDisruptionBudget is written in `policy/v1`, else `policy/v1beta1`; the \
         HorizontalPodAutoscaler in `autoscaling/v2`, else `autoscaling/v2beta2`, else \
         `autoscaling/v1` (the same autoscaler in each: one CPU utilisation target). \
         `fiaas render`, which does not talk to a cluster, writes `policy/v1` and \
         `autoscaling/v1` (the upstream's), or the autoscaling version given with \
         `--autoscaling-version`.\n\
         \n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_has_a_section_and_an_index_entry() {
        let markdown = configuration_markdown();
        for flag in Flag::ALL {
            let long = flag.long();
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

    #[test]
    fn the_deploy_and_daemon_flags_have_their_own_sections_last() {
        let markdown = configuration_markdown();
        let (rest, daemon) = markdown
            .split_once("\n## fiaas-deploy-daemon only\n")
            .expect("a section for the daemon's flags");
        assert!(!daemon.contains("\n## "), "it is the last section");
        assert!(daemon.contains("- Config file: `leader-election: true`"));
        assert!(!daemon.contains("### max-concurrent-deploys\n"));
        let deployers = rest
            .split_once("\n## fiaas-deploy-daemon and its bootstrap\n")
            .expect("a section for the deploy flags")
            .1;
        assert!(!deployers.contains("\n## "), "it comes just before");
        assert!(deployers.contains("- Config file: `max-concurrent-deploys: 20`"));
        assert!(!deployers.contains("### port\n"));
    }
}
