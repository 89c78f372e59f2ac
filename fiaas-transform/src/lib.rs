//! AppSpec + cluster configuration → the Kubernetes objects of one deploy. Pure: no I/O.
//!
//! ```
//! use fiaas_spec::{AppFacts, load};
//! use fiaas_transform::{ClusterConfig, RenderOptions, render};
//!
//! let facts = AppFacts {
//!     name: "hello".into(),
//!     namespace: "default".into(),
//!     image: "example/hello:1.0".into(),
//!     deployment_id: "1".into(),
//!     ..AppFacts::default()
//! };
//! let app = load("version: 3\n", &facts).unwrap();
//! let deploy = render(&app, &ClusterConfig::default(), &RenderOptions::default()).unwrap();
//! let kinds: Vec<_> = deploy.objects.iter().map(|o| o.kind()).collect();
//! assert_eq!(kinds.len(), 4); // Service, Deployment, HorizontalPodAutoscaler, PodDisruptionBudget
//! ```

mod autoscaler;
pub mod config;
pub mod config_reference;
mod deployment;
mod error;
pub mod ingress;
pub mod meta;
mod notes;
pub mod object;
mod pod_disruption_budget;
mod service;
mod service_account;

use std::collections::BTreeSet;

use fiaas_spec::AppSpec;

pub use autoscaler::should_have_autoscaler;
pub use config::ClusterConfig;
pub use error::TransformError;
pub use notes::{Level, Notes};
pub use object::{Kind, KubeObject, LegacyIngress};

/// What the cluster says that changes the objects (the applier finds these out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// The namespace forbids pods with resources (a `pods: "0"` quota scoped `NotBestEffort`):
    /// render without cpu/memory requests and limits.
    pub besteffort_qos: bool,
}

/// The objects of one deploy of one app.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifests {
    /// The objects to apply, in upstream's deploy order: ServiceAccount and RoleBindings,
    /// Service, Ingresses, Deployment, HorizontalPodAutoscaler, PodDisruptionBudget.
    pub objects: Vec<KubeObject>,
    /// Kinds this app must not have: the applier deletes what it owns of these.
    pub absent: BTreeSet<Kind>,
    /// What upstream logs while building the objects, for the deploy's status logs.
    pub notes: Notes,
}

/// Build the objects of one deploy.
pub fn render(
    app: &AppSpec,
    config: &ClusterConfig,
    options: &RenderOptions,
) -> Result<Manifests, TransformError> {
    if app.version().is_none() {
        return Err(TransformError::InvalidConfiguration(
            "Version must be specified for docker image aka image:version".to_owned(),
        ));
    }
    let stripped;
    let app = if options.besteffort_qos {
        let mut copy = app.clone();
        copy.resources = fiaas_spec::ResourcesSpec::default();
        stripped = copy;
        &stripped
    } else {
        app
    };
    let labels = meta::fiaas_labels(app, &config.version);
    let mut notes = Notes::default();
    let mut objects = Vec::new();
    let mut absent = BTreeSet::new();

    if config.enable_service_account_per_app {
        objects.push(KubeObject::ServiceAccount(
            service_account::service_account(app, &labels),
        ));
        objects.extend(
            service_account::role_bindings(app, config, &labels)
                .into_iter()
                .map(KubeObject::RoleBinding),
        );
    }
    match service::service(app, config, &labels) {
        Some(service) => objects.push(KubeObject::Service(service)),
        None => {
            absent.insert(Kind::Service);
        }
    }
    let ingresses = ingress::ingresses(app, config, &labels)?;
    if ingresses.is_empty() {
        absent.insert(Kind::Ingress);
    }
    objects.extend(ingresses);
    objects.push(KubeObject::Deployment(deployment::deployment(
        app,
        config,
        &labels,
        options.besteffort_qos,
        &mut notes,
    )?));
    if should_have_autoscaler(app, &mut notes) {
        objects.push(KubeObject::HorizontalPodAutoscaler(autoscaler::autoscaler(
            app, &labels,
        )));
    } else {
        absent.insert(Kind::HorizontalPodAutoscaler);
    }
    match pod_disruption_budget::pod_disruption_budget(app, config, &labels) {
        Some(pdb) => objects.push(KubeObject::PodDisruptionBudget(pdb)),
        None => {
            absent.insert(Kind::PodDisruptionBudget);
        }
    }
    Ok(Manifests {
        objects,
        absent,
        notes,
    })
}
