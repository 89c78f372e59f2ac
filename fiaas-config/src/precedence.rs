//! Which source's value a flag takes: the highest layer that says something about it (the
//! command line, then `-c`, then the default file), else the built-in default; and the typed
//! reading of that value, the same whatever the source.

use std::collections::HashMap;
use std::path::PathBuf;

use fiaas_spec::python;
use indexmap::IndexMap;

use crate::ConfigError;
use crate::choices::Choice;
use crate::flags::{Flag, Values};

/// What one source says about one flag. A source that says nothing has no entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Setting {
    /// A switch flag was set.
    Set,
    /// A value flag's values in the order given.
    #[cfg_attr(
        not(feature = "cli"),
        allow(
            dead_code,
            reason = "only the command line and files, read with `cli`, give values"
        )
    )]
    Values(Vec<String>),
}

/// One source's settings.
pub(crate) type Layer = HashMap<Flag, Setting>;

/// Picks each flag's setting from the highest layer that has one; layers come highest first.
pub(crate) struct Resolver<'a> {
    pub(crate) layers: &'a [Layer],
}

impl Resolver<'_> {
    fn setting(&self, flag: Flag) -> Option<&Setting> {
        self.layers.iter().find_map(|layer| layer.get(&flag))
    }

    pub(crate) fn flag(&self, flag: Flag) -> bool {
        self.setting(flag) == Some(&Setting::Set)
    }

    pub(crate) fn values(&self, flag: Flag) -> Vec<String> {
        match self.setting(flag) {
            Some(Setting::Values(values)) => values.clone(),
            _ => flag.def().default.map(str::to_owned).into_iter().collect(),
        }
    }

    pub(crate) fn optional(&self, flag: Flag) -> Option<String> {
        self.values(flag).pop()
    }

    /// The value of a flag that has a built-in default.
    pub(crate) fn value(&self, flag: Flag) -> String {
        self.optional(flag).unwrap_or_default()
    }

    pub(crate) fn path(&self, flag: Flag) -> Option<PathBuf> {
        self.optional(flag).map(PathBuf::from)
    }

    fn invalid(&self, flag: Flag, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            flag: format!("--{}", flag.long()),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn integer(&self, flag: Flag) -> Result<i64, ConfigError> {
        let value = self.value(flag);
        python::int(&value).ok_or_else(|| self.invalid(flag, &value, "expected an integer"))
    }

    pub(crate) fn port(&self, flag: Flag) -> Result<u16, ConfigError> {
        let value = self.value(flag);
        let port =
            python::int(&value).ok_or_else(|| self.invalid(flag, &value, "expected an integer"))?;
        u16::try_from(port)
            .map_err(|_| self.invalid(flag, &value, "expected a port number from 0 to 65535"))
    }

    /// A [`Values::Number`](crate::flags::Values::Number) flag, read as clap reads it on the
    /// command line.
    pub(crate) fn number(&self, flag: Flag) -> Result<u32, ConfigError> {
        let (min, max) = match flag.def().values {
            Values::Number { min, max } => (min, max.unwrap_or(u32::MAX)),
            _ => (0, u32::MAX),
        };
        let value = self.value(flag);
        value
            .parse::<u32>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                self.invalid(
                    flag,
                    &value,
                    format!("expected a number from {min} to {max}"),
                )
            })
    }

    /// A [`Values::Seconds`](crate::flags::Values::Seconds) flag, read as clap reads it on the command
    /// line.
    pub(crate) fn seconds(&self, flag: Flag) -> Result<u64, ConfigError> {
        let value = self.value(flag);
        value
            .parse::<u64>()
            .map_err(|_| self.invalid(flag, &value, "expected a whole number of seconds"))
    }

    pub(crate) fn choice<T: Choice>(&self, flag: Flag) -> Result<T, ConfigError> {
        let value = self.value(flag);
        T::all()
            .iter()
            .copied()
            .find(|choice| choice.text() == value)
            .ok_or_else(|| {
                let names: Vec<&str> = T::all().iter().map(|c| c.text()).collect();
                self.invalid(
                    flag,
                    &value,
                    format!("expected one of {}", names.join(", ")),
                )
            })
    }

    /// Upstream `KeyValue`: exactly one `=`; a later duplicate key wins.
    pub(crate) fn key_values(&self, flag: Flag) -> Result<IndexMap<String, String>, ConfigError> {
        self.values(flag)
            .iter()
            .map(|item| {
                let mut parts = item.split('=');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(key), Some(value), None) => Ok((key.to_string(), value.to_string())),
                    _ => Err(self.invalid(flag, item, "expected KEY=VALUE with exactly one '='")),
                }
            })
            .collect()
    }

    pub(crate) fn host_pairs(&self, flag: Flag) -> Result<IndexMap<String, String>, ConfigError> {
        let mut pairs = IndexMap::new();
        for pair in self.values(flag) {
            let (first, second) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::InvalidHostPair(pair.clone()))?;
            pairs.insert(first.to_string(), second.to_string());
            pairs.insert(second.to_string(), first.to_string());
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(Flag, Setting)]) -> Layer {
        entries.iter().cloned().collect()
    }

    fn values(items: &[&str]) -> Setting {
        Setting::Values(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn the_highest_layer_with_a_setting_wins_whole() {
        let layers = [
            layer(&[(Flag::Port, values(&["1"]))]),
            layer(&[
                (Flag::Port, values(&["2"])),
                (Flag::IngressSuffix, values(&["a", "b"])),
                (Flag::Debug, Setting::Set),
            ]),
            layer(&[(Flag::IngressSuffix, values(&["c"]))]),
        ];
        let resolver = Resolver { layers: &layers };
        assert_eq!(resolver.port(Flag::Port).unwrap(), 1);
        assert_eq!(resolver.values(Flag::IngressSuffix), ["a", "b"]);
        assert!(resolver.flag(Flag::Debug));
        assert!(!resolver.flag(Flag::EnableCrdSupport));
        assert_eq!(resolver.value(Flag::Environment), "");
        assert_eq!(resolver.optional(Flag::Proxy), None);
        assert_eq!(resolver.number(Flag::MaxConcurrentDeploys).unwrap(), 20);
    }

    #[test]
    fn daemon_numbers_are_read_as_on_the_command_line() {
        let layers = [layer(&[
            (Flag::MaxConcurrentDeploys, values(&["0"])),
            (Flag::ShutdownGraceSeconds, values(&["-1"])),
            (Flag::StatusRetention, values(&["3"])),
            (Flag::Shards, values(&["1025"])),
        ])];
        let resolver = Resolver { layers: &layers };
        assert_eq!(
            resolver
                .number(Flag::MaxConcurrentDeploys)
                .unwrap_err()
                .to_string(),
            "--max-concurrent-deploys: invalid value '0': expected a number from 1 to 4294967295"
        );
        assert_eq!(
            resolver
                .seconds(Flag::ShutdownGraceSeconds)
                .unwrap_err()
                .to_string(),
            "--shutdown-grace-seconds: invalid value '-1': expected a whole number of seconds"
        );
        assert_eq!(resolver.number(Flag::StatusRetention).unwrap(), 3);
        assert_eq!(
            resolver.number(Flag::Shards).unwrap_err().to_string(),
            "--shards: invalid value '1025': expected a number from 1 to 1024"
        );
    }
}

#[cfg(all(test, feature = "cli"))]
mod cli_tests {
    use crate::test_support::*;

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
        assert_eq!(c.transform.environment, "from-c");
        assert_eq!(c.proxy.as_deref(), Some("default-proxy"));
        // Lists are replaced as a whole, never merged.
        assert_eq!(c.transform.ingress_suffixes, strings(&["c1"]));
        assert_eq!(c.transform.dns_search_domains, strings(&["cli.local"]));
        assert_eq!(c.transform.global_env, map(&[("D", "1")]));
        assert!(c.debug);

        let c = parse_with(&[], Some(default_file.path())).unwrap();
        assert_eq!(c.config_file, None);
        assert_eq!(c.port, 1001);
        assert_eq!(c.transform.ingress_suffixes, strings(&["d1", "d2"]));
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
        assert_eq!(c.transform.ingress_suffixes, strings(&["d"]));
    }

    #[test]
    fn a_repeated_single_value_flag_keeps_the_last_value() {
        let c = parse(&["--port", "1", "--port=2", "--debug", "--debug"]).unwrap();
        assert_eq!(c.port, 2);
        assert!(c.debug);
    }
}
