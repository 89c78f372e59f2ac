//! The cluster configuration of fiaas-deploy-daemon, its bootstrap and `fiaas render`: every
//! flag, the `cluster_config.yaml` files, their precedence, and the typed settings each part
//! reads. Upstream's `Configuration` (fiaas_deploy_daemon/config.py), flag for flag.
//!
//! - [`flags`]: the one definition of every flag ([`Flag`]); a flag is added there.
//! - [`ClusterConfig`]: one binary's whole configuration, with [`TransformSettings`] (what
//!   fiaas-transform reads), [`DeploySettings`] (how the daemon and the bootstrapper deploy) and
//!   [`DaemonSettings`] (what only the daemon reads).
//! - With the `cli` feature (on by default), reading a configuration: [`ClusterArgs`],
//!   [`DeployerArgs`] and [`DaemonArgs`] to flatten into a clap command, [`ClusterConfig::from_args`] /
//!   [`ClusterConfig::from_matches`], and the config files they name. Without it, the typed
//!   settings take their built-in defaults only; fiaas-transform uses the crate so, free of clap.
//! - [`reference`](mod@reference): `docs/configuration.md`, generated from [`flags`].
//!
//! ```
//! # #[cfg(feature = "cli")] {
//! use fiaas_config::{ClusterConfig, ServiceType};
//!
//! let config = ClusterConfig::from_args(["fiaas", "--service-type", "NodePort"], None).unwrap();
//! assert_eq!(config.transform.service_type, ServiceType::NodePort);
//! assert_eq!(config.port, 5000);
//! # }
//! ```

mod choices;
mod cluster;
#[cfg(feature = "cli")]
mod command_line;
mod error;
#[cfg(feature = "cli")]
mod file;
pub mod flags;
mod host_rewrite;
mod precedence;
pub mod python_re;
pub mod reference;
mod settings;
#[cfg(all(test, feature = "cli"))]
mod test_support;

pub use choices::{
    Infrastructure, IntOrStr, LogFormat, ServiceType, UnhealthyPodEvictionPolicy, UseIngressTls,
};
pub use cluster::{ClusterConfig, DEFAULT_CONFIG_FILE};
#[cfg(feature = "cli")]
pub use command_line::{ClusterArgs, DaemonArgs, DeployerArgs};
pub use error::ConfigError;
pub use flags::{Flag, Scope};
pub use host_rewrite::HostRewriteRule;
pub use settings::{DaemonSettings, DeploySettings, TransformSettings};
