//! The YAML config files (`cluster_config.yaml`, `-c FILE`), read the way ConfigArgParse's YAML
//! parser feeds them to argparse upstream.

use std::path::Path;

use fiaas_spec::python;
use serde_json::Value;

use crate::ConfigError;
use crate::flags::{Flag, Scope, Shape};
use crate::precedence::{Layer, Setting};

/// One config file as a layer of settings: the entries naming a flag that a binary of `scope`
/// takes; other keys are ignored, as upstream ignores them.
pub(crate) fn file_layer(path: &Path, scope: Scope) -> Result<Layer, ConfigError> {
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
        // `-c` chooses files rather than being a setting, so it is never read from one.
        let Some(flag) =
            Flag::by_long(name).filter(|flag| *flag != Flag::ConfigFile && scope.takes(*flag))
        else {
            continue;
        };
        let shape = flag.def().shape;
        let values = match (shape, value) {
            (Shape::Repeated, Value::Array(items)) => items.iter().map(python::str).collect(),
            (_, Value::Array(_)) => {
                return Err(bad_file(format!(
                    "{key} can't be set to a list '{}': --{name} is not a repeatable option",
                    python::str(value)
                )));
            }
            (Shape::Switch, _) => {
                let text = python::str(value);
                match text.to_lowercase().as_str() {
                    "true" | "yes" | "1" => {
                        layer.insert(flag, Setting::Set);
                    }
                    "false" | "no" | "0" => {}
                    _ => {
                        return Err(bad_file(format!(
                            "Unexpected value for {key}: '{text}'. Expecting 'true', 'false', \
                             'yes', 'no', '1' or '0'"
                        )));
                    }
                }
                continue;
            }
            (Shape::Single | Shape::Repeated, _) => vec![python::str(value)],
        };
        // An empty list adds no flag, so it does not hide a lower source either.
        if values.is_empty() {
            continue;
        }
        // `port` and `--port` in one file both become flags, in file order.
        match layer
            .entry(flag)
            .or_insert_with(|| Setting::Values(Vec::new()))
        {
            Setting::Values(existing) => existing.extend(values),
            Setting::Set => unreachable!("only switches are set"),
        }
    }
    Ok(layer)
}

#[cfg(all(test, feature = "cli"))]
mod tests {
    use std::path::Path;

    use crate::ConfigError;
    use crate::test_support::*;

    #[test]
    fn file_values_are_stringified_like_python() {
        let c = parse_file(
            "proxy: null\nenvironment: true\nport: 0x1F90\ndatadog-container-memory: 1.5\n\
             usage-reporting-team: {a: [1, \"it's\"]}\nlist-of-roles: [1, true, null, 2.0e20, x]\n\
             usage-reporting-tenant: 0755\napi-server: 1e-5\n",
        )
        .unwrap();
        assert_eq!(c.proxy.as_deref(), Some("None"));
        assert_eq!(c.transform.environment, "True");
        assert_eq!(c.port, 8080);
        assert_eq!(c.transform.datadog_container_memory, "1.5");
        assert_eq!(
            c.usage_reporting_team.as_deref(),
            Some("{'a': [1, \"it's\"]}")
        );
        // PyYAML's floats need a dot and a signed exponent: `2.0e20` and `1e-5` are text.
        assert_eq!(
            c.transform.list_of_roles,
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
        assert_eq!(c.transform.environment, "y");
        assert_eq!(c.transform.datadog_container_memory, "90");
        assert_eq!(c.usage_reporting_tenant.as_deref(), Some("0o755"));
        assert_eq!(
            c.transform.list_of_roles,
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
        assert!(c.transform.ingress_suffixes.is_empty());
        assert_eq!(c.transform.environment, "b");
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
            assert!(!c.transform.enable_service_links, "{yes}");
        }
        for no in ["false", "'No'", "0", "off"] {
            let c = parse_file(&format!("debug: {no}\ndisable-service-links: {no}\n")).unwrap();
            assert!(!c.debug, "{no}");
            assert!(c.transform.enable_service_links, "{no}");
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
        assert_eq!(c.transform.ingress_suffixes, strings(&["example.com"]));
        assert_eq!(c.transform.global_env, map(&[("A", "1")]));
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
    fn the_daemon_reads_its_own_flags_from_files() {
        let file = TempFile::new("max-concurrent-deploys: 0\nleader-election: true\n");
        let err = parse_daemon(&["-c", &file.arg()], None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--max-concurrent-deploys: invalid value '0': expected a number from 1 to 4294967295"
        );
        assert_eq!(err.exit_code(), 2);
        let c = parse(&["-c", &file.arg()]).unwrap();
        assert!(!c.daemon.leader_election);
        let file = TempFile::new("--max-concurrent-deploys: 2\nleader-election: true\n");
        let c = parse_daemon(&["-c", &file.arg()], None).unwrap();
        assert_eq!(c.deploys.max_concurrent_deploys, 2);
        assert!(c.daemon.leader_election);
    }
}
