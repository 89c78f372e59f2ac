//! Helpers of the unit tests that parse command lines and files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use indexmap::IndexMap;

use crate::{ClusterConfig, ConfigError};

/// A YAML file under the temp dir, removed on drop.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl TempFile {
    pub(crate) fn new(contents: &str) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "fiaas-config-test-{}-{}.yaml",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn arg(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub(crate) fn parse_with(
    args: &[&str],
    default_file: Option<&Path>,
) -> Result<ClusterConfig, ConfigError> {
    ClusterConfig::from_args(
        std::iter::once("fiaas-deploy-daemon").chain(args.iter().copied()),
        default_file,
    )
}

pub(crate) fn parse(args: &[&str]) -> Result<ClusterConfig, ConfigError> {
    parse_with(args, None)
}

/// Parses with `yaml` as the only config file, given with `-c`.
pub(crate) fn parse_file(yaml: &str) -> Result<ClusterConfig, ConfigError> {
    let file = TempFile::new(yaml);
    parse(&["-c", &file.arg()])
}

/// The entries in order, as `IndexMap`'s own equality ignores order.
pub(crate) fn entries(map: &IndexMap<String, String>) -> Vec<(&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

pub(crate) fn map(pairs: &[(&str, &str)]) -> IndexMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn rule(s: &str) -> crate::HostRewriteRule {
    crate::HostRewriteRule::parse(s).unwrap()
}

/// Parses a command line of a binary of `scope`.
pub(crate) fn parse_as(
    scope: crate::Scope,
    args: &[&str],
    default_file: Option<&Path>,
) -> Result<ClusterConfig, ConfigError> {
    let matches = crate::command_line::augment(clap::Command::new("fiaas-deploy-daemon"), scope)
        .try_get_matches_from(std::iter::once("fiaas-deploy-daemon").chain(args.iter().copied()))?;
    ClusterConfig::from_matches(&matches, scope, default_file)
}

/// Parses a command line of the daemon, which takes every flag.
pub(crate) fn parse_daemon(
    args: &[&str],
    default_file: Option<&Path>,
) -> Result<ClusterConfig, ConfigError> {
    parse_as(crate::Scope::Daemon, args, default_file)
}
