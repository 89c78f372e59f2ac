//! Why a configuration could not be read.

use std::path::PathBuf;

/// Why a configuration could not be built. The binaries print it and exit with
/// [`ConfigError::exit_code`].
#[derive(thiserror::Error, Debug)]
pub enum ConfigError {
    /// Clap rejected the command line (unknown flag, missing value, bad choice), or `--help`
    /// was asked for: binaries should call `clap::Error::exit` on it, which prints help to
    /// stdout and errors to stderr.
    #[cfg(feature = "cli")]
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
            #[cfg(feature = "cli")]
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
