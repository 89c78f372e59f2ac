//! AppSpec + the cluster's [`TransformSettings`] → the Kubernetes objects of one deploy. Pure: no
//! I/O.
//!
//! ```
//! use fiaas_spec::{AppFacts, load};
//! use fiaas_transform::{TransformSettings, RenderOptions, render};
//!
//! let facts = AppFacts {
//!     name: "hello".into(),
//!     namespace: "default".into(),
//!     image: "example/hello:1.0".into(),
//!     deployment_id: "1".into(),
//!     ..AppFacts::default()
//! };
//! let app = load("version: 3\n", &facts).unwrap();
//! let deploy = render(&app, &TransformSettings::default(), &RenderOptions::default()).unwrap();
//! let kinds: Vec<_> = deploy.objects.iter().map(|o| o.kind()).collect();
//! assert_eq!(kinds.len(), 4); // Service, Deployment, HorizontalPodAutoscaler, PodDisruptionBudget
//! ```

mod autoscaler;
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

pub use autoscaler::{AutoscalingVersion, should_have_autoscaler};
pub use error::TransformError;
/// The settings [`render`] reads, built by fiaas-config from the flags and config files.
pub use fiaas_config::TransformSettings;
pub use notes::{Level, Notes};
pub use object::{Kind, KubeObject, LegacyIngress};

/// What the cluster says that changes the objects (the applier finds these out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// The namespace forbids pods with resources (a `pods: "0"` quota scoped `NotBestEffort`):
    /// render without cpu/memory requests and limits.
    pub besteffort_qos: bool,
    /// The API version of the HorizontalPodAutoscaler (the newest the cluster serves).
    pub autoscaling: AutoscalingVersion,
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
    config: &TransformSettings,
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
    let accounts: Vec<KubeObject> = if config.enable_service_account_per_app {
        std::iter::once(KubeObject::ServiceAccount(
            service_account::service_account(app, &labels),
        ))
        .chain(
            service_account::role_bindings(app, config, &labels)
                .into_iter()
                .map(KubeObject::RoleBinding),
        )
        .collect()
    } else {
        Vec::new()
    };
    let service = service::service(app, config, &labels);
    let ingresses = ingress::ingresses(app, config, &labels)?;
    let deployment =
        deployment::deployment(app, config, &labels, options.besteffort_qos, &mut notes)?;
    let autoscaler = should_have_autoscaler(app, &mut notes)
        .then(|| autoscaler::autoscaler(app, &labels, options.autoscaling));
    let pdb = pod_disruption_budget::pod_disruption_budget(app, config, &labels);

    let mut absent = BTreeSet::new();
    for (kind, missing) in [
        (Kind::Service, service.is_none()),
        (Kind::Ingress, ingresses.is_empty()),
        (Kind::HorizontalPodAutoscaler, autoscaler.is_none()),
        (Kind::PodDisruptionBudget, pdb.is_none()),
    ] {
        if missing {
            absent.insert(kind);
        }
    }
    // Objects are large (kilobytes each): a vector grown one push at a time would copy them
    // over and over.
    let mut objects = Vec::with_capacity(accounts.len() + ingresses.len() + 4);
    objects.extend(accounts);
    objects.extend(service.map(KubeObject::Service));
    objects.extend(ingresses);
    objects.push(KubeObject::Deployment(deployment));
    objects.extend(autoscaler);
    objects.extend(pdb.map(KubeObject::PodDisruptionBudget));
    Ok(Manifests {
        objects,
        absent,
        notes,
    })
}
