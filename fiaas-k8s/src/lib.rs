//! Everything fiaas does against a Kubernetes API server: the CRDs, applying and pruning an app's
//! objects, tracking rollouts through a watch, and writing ApplicationStatus.

pub mod apply;
pub mod crd;
pub mod cutover;
mod error;
pub mod list_maps;
pub mod quota;
pub mod rollout;
pub mod status;
pub mod watch;

pub use apply::{
    Applier, ClusterFacts, DeployOptions, DeployReport, ObjectHook, PdbVersion, PlannedObject,
};
pub use crd::{
    Application, ApplicationResult, ApplicationSpec, ApplicationStatus, ConfigValidation, crds,
    crds_yaml, ensure_crds, ensure_crds_with,
};
pub use error::K8sError;
pub use quota::QuotaWatch;
pub use rollout::{MAX_ROLLOUT_TIMEOUT, RolloutOutcome, RolloutTracker, rollout_timeout};
pub use status::{DeployResult, StatusSubject, StatusWriter, status_name};
pub use watch::{WatchBackoff, watch_config, with_deadlines};

/// The one field manager of every write fiaas makes.
pub const FIELD_MANAGER: &str = "fiaas-deploy-daemon";
