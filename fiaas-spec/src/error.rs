//! What can be wrong with a fiaas.yml.

use std::fmt;

/// One problem found in a fiaas.yml, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Location in the document, e.g. `ingress[0].paths[1].port`; empty for the whole document.
    pub path: String,
    /// Why the value is rejected.
    pub reason: String,
}

impl Violation {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Violation {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// Why a fiaas.yml could not be turned into an [`AppSpec`](crate::AppSpec).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The text is larger than [`MAX_DOCUMENT_BYTES`](crate::MAX_DOCUMENT_BYTES).
    #[error("fiaas.yml is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Size of the input.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The text is not YAML fiaas accepts (syntax, alias bombs, nesting, several documents).
    #[error("fiaas.yml is not valid YAML: {0}")]
    Yaml(String),
    /// The document is not a mapping.
    #[error("fiaas.yml must be a mapping of keys to values, not {0}")]
    NotAMapping(String),
    /// A missing, unknown or wrongly typed `version`.
    #[error("Requested version {found}, but the only supported versions are: [3, 2]")]
    UnsupportedVersion {
        /// The version as upstream prints it (`None` for null, `1` when absent).
        found: String,
    },
    /// The document breaks one or more rules; all of them are listed.
    #[error("{}", format_violations(.0))]
    Invalid(Vec<Violation>),
}

impl SpecError {
    /// Every violation, for errors that have them; a one-element list otherwise.
    pub fn violations(&self) -> Vec<Violation> {
        match self {
            SpecError::Invalid(v) => v.clone(),
            SpecError::UnsupportedVersion { .. } => {
                vec![Violation::new("version", self.to_string())]
            }
            other => vec![Violation::new("", other.to_string())],
        }
    }
}

fn format_violations(violations: &[Violation]) -> String {
    let mut out = String::from("invalid fiaas.yml:");
    for v in violations {
        out.push_str("\n  ");
        out.push_str(&v.to_string());
    }
    out
}
