//! Why a deploy did not succeed, one variant per cause, so the status log, the metrics and the
//! retry decision all read the same value.

use fiaas_k8s::K8sError;

/// Why a deploy failed or stopped. The `Display` text is what the ApplicationStatus log shows.
#[derive(thiserror::Error, Debug)]
pub enum DeployError {
    /// The Application's fiaas.yml or its facts are not deployable.
    #[error("Failed to create app spec from fiaas config file: {0}")]
    InvalidSpec(String),
    /// The app asks for the Datadog sidecar, and the cluster configuration has no image for it.
    #[error("Requested datadog sidecar, but datadog-container-image is undefined")]
    MissingDatadogImage,
    /// Applying or pruning the app's objects failed.
    #[error("Failed to deploy {app}: {source}")]
    Apply {
        /// The app.
        app: String,
        /// What the API server (or the connection) said (boxed: it is large, and rare).
        #[source]
        source: Box<K8sError>,
    },
    /// Applying did not finish within its deadline (a hung connection or a stalled server).
    #[error("Failed to deploy {app}: no answer within {seconds} seconds")]
    ApplyTimedOut {
        /// The app.
        app: String,
        /// The deadline.
        seconds: u64,
    },
    /// The rollout did not become ready.
    #[error("{0}")]
    Rollout(String),
    /// A newer deployment id of the app replaced this one.
    #[error("Superseded by deployment_id={0}")]
    Superseded(String),
    /// The daemon stopped the deploy (shutdown, lost lease, deleted Application).
    #[error("the deploy was cancelled")]
    Cancelled,
    /// The deploy task panicked: a defect in fiaas, reported instead of wedging the app.
    #[error("internal error while deploying (please report it): {0}")]
    Panicked(String),
}

impl DeployError {
    /// A short, fixed label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            DeployError::InvalidSpec(_) => "invalid_spec",
            DeployError::MissingDatadogImage => "missing_datadog_image",
            DeployError::Apply { .. } => "apply",
            DeployError::ApplyTimedOut { .. } => "apply_timeout",
            DeployError::Rollout(_) => "rollout",
            DeployError::Superseded(_) => "superseded",
            DeployError::Cancelled => "cancelled",
            DeployError::Panicked(_) => "panic",
        }
    }

    /// Whether trying again later may succeed: the API server was unreachable, throttling or
    /// failing, as opposed to refusing the objects or the app being invalid.
    pub fn is_transient(&self) -> bool {
        match self {
            DeployError::Apply { source, .. } => source.is_transient(),
            DeployError::ApplyTimedOut { .. } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_upstreams_and_labels_are_fixed() {
        let missing = DeployError::MissingDatadogImage;
        assert_eq!(
            missing.to_string(),
            "Requested datadog sidecar, but datadog-container-image is undefined"
        );
        assert_eq!(missing.metric_label(), "missing_datadog_image");
        assert!(!missing.is_transient());
        let timed_out = DeployError::ApplyTimedOut {
            app: "a".into(),
            seconds: 60,
        };
        assert!(timed_out.is_transient());
        assert_eq!(
            DeployError::Superseded("d3".into()).to_string(),
            "Superseded by deployment_id=d3"
        );
    }
}
