//! AppSpec + cluster configuration → the Kubernetes objects of one deploy. Pure: no I/O.

pub mod config;
mod error;
pub mod ingress;
pub mod meta;
pub mod object;

pub use config::ClusterConfig;
pub use error::TransformError;
pub use object::{Kind, KubeObject, LegacyIngress};
