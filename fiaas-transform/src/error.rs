//! Why a transform can fail.

/// An app that cannot be turned into Kubernetes objects under this cluster configuration.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransformError {
    /// The app's configuration cannot be deployed (upstream's `InvalidConfiguration`).
    #[error("{0}")]
    InvalidConfiguration(String),
}
