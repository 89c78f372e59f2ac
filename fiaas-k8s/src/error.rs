//! Why talking to the cluster failed, and where.

/// A failed API call, naming the call and the object.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// The API server refused or failed a request.
    #[error("{action} {kind} {name}: {source}")]
    Api {
        /// What was attempted (`apply`, `delete`, `list`, …).
        action: &'static str,
        /// Kind of the object.
        kind: String,
        /// Name of the object (or the selector, for lists).
        name: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// The app cannot be rendered.
    #[error(transparent)]
    Transform(#[from] fiaas_transform::TransformError),
    /// The extension hook failed for an object.
    #[error("extension hook for {kind}: {reason}")]
    Hook {
        /// Kind of the object.
        kind: String,
        /// What went wrong.
        reason: String,
    },
}

impl K8sError {
    pub(crate) fn api(action: &'static str, kind: &str, name: &str, source: kube::Error) -> Self {
        K8sError::Api {
            action,
            kind: kind.to_owned(),
            name: name.to_owned(),
            source,
        }
    }

    /// Whether retrying later may succeed (server errors, throttling, conflicts, timeouts).
    pub fn is_transient(&self) -> bool {
        match self {
            K8sError::Api { source, .. } => match source {
                kube::Error::Api(status) => {
                    status.code >= 500 || status.code == 429 || status.code == 409
                }
                _ => true,
            },
            _ => false,
        }
    }
}

/// Whether an error is the API server's 404.
pub(crate) fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}
