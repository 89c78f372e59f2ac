//! The Kubernetes objects a deploy consists of, in one enum so they travel together.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize, Serializer};

/// One object fiaas creates for an app.
// A deploy holds a handful of these, built once and moved a few times: boxing the big variants
// would cost more allocations than the size difference costs copies.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum KubeObject {
    /// The per-app ServiceAccount (`--enable-service-account-per-app`).
    ServiceAccount(ServiceAccount),
    /// A RoleBinding of the per-app ServiceAccount. Without a name it is created with
    /// `generateName: <app>-`.
    RoleBinding(RoleBinding),
    /// The app's Service.
    Service(Service),
    /// A `networking.k8s.io/v1` Ingress.
    Ingress(Ingress),
    /// An `extensions/v1beta1` Ingress (without `--use-networkingv1-ingress`).
    LegacyIngress(LegacyIngress),
    /// The app's Deployment.
    Deployment(Deployment),
    /// The app's `autoscaling/v1` HorizontalPodAutoscaler.
    HorizontalPodAutoscaler(v1::HorizontalPodAutoscaler),
    /// The app's `autoscaling/v2` HorizontalPodAutoscaler.
    HorizontalPodAutoscalerV2(v2::HorizontalPodAutoscaler),
    /// The app's `autoscaling/v2beta2` HorizontalPodAutoscaler: k8s-openapi no longer models
    /// it, and it has v2's shape for every field fiaas sets, so it is a v2 object written under
    /// the older `apiVersion`.
    HorizontalPodAutoscalerV2beta2(v2::HorizontalPodAutoscaler),
    /// The app's PodDisruptionBudget.
    PodDisruptionBudget(PodDisruptionBudget),
}

impl KubeObject {
    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            KubeObject::ServiceAccount(_) => Kind::ServiceAccount,
            KubeObject::RoleBinding(_) => Kind::RoleBinding,
            KubeObject::Service(_) => Kind::Service,
            KubeObject::Ingress(_) | KubeObject::LegacyIngress(_) => Kind::Ingress,
            KubeObject::Deployment(_) => Kind::Deployment,
            KubeObject::HorizontalPodAutoscaler(_)
            | KubeObject::HorizontalPodAutoscalerV2(_)
            | KubeObject::HorizontalPodAutoscalerV2beta2(_) => Kind::HorizontalPodAutoscaler,
            KubeObject::PodDisruptionBudget(_) => Kind::PodDisruptionBudget,
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            KubeObject::ServiceAccount(o) => &o.metadata,
            KubeObject::RoleBinding(o) => &o.metadata,
            KubeObject::Service(o) => &o.metadata,
            KubeObject::Ingress(o) => &o.metadata,
            KubeObject::LegacyIngress(o) => &o.metadata,
            KubeObject::Deployment(o) => &o.metadata,
            KubeObject::HorizontalPodAutoscaler(o) => &o.metadata,
            KubeObject::HorizontalPodAutoscalerV2(o) => &o.metadata,
            KubeObject::HorizontalPodAutoscalerV2beta2(o) => &o.metadata,
            KubeObject::PodDisruptionBudget(o) => &o.metadata,
        }
    }

    /// The object as JSON, with `apiVersion` and `kind`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            KubeObject::ServiceAccount(o) => typed_json(o),
            KubeObject::RoleBinding(o) => typed_json(o),
            KubeObject::Service(o) => typed_json(o),
            KubeObject::Ingress(o) => typed_json(o),
            KubeObject::LegacyIngress(o) => {
                serde_json::to_value(o).expect("a LegacyIngress always serialises")
            }
            KubeObject::Deployment(o) => typed_json(o),
            KubeObject::HorizontalPodAutoscaler(o) => typed_json(o),
            KubeObject::HorizontalPodAutoscalerV2(o) => typed_json(o),
            KubeObject::HorizontalPodAutoscalerV2beta2(o) => {
                let mut json = typed_json(o);
                json["apiVersion"] =
                    serde_json::Value::from(crate::AutoscalingVersion::V2beta2.api_version());
                json
            }
            KubeObject::PodDisruptionBudget(o) => typed_json(o),
        }
    }
}

/// Serialised as [`KubeObject::to_json`]: the object with its own `apiVersion` and `kind`.
impl Serialize for KubeObject {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

fn typed_json<T: Serialize>(object: &T) -> serde_json::Value {
    // k8s-openapi's Serialize impls write apiVersion and kind themselves and cannot fail.
    serde_json::to_value(object).expect("a k8s-openapi object always serialises")
}

/// Declares [`Kind`] and [`Kind::ALL`] from one list, so a new kind cannot be left out of
/// `ALL` (which pruning walks).
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident,)*) => {
        /// The kinds of objects fiaas manages for an app.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum Kind {
            $($(#[$doc])* $variant,)*
        }

        impl Kind {
            /// Every kind, in the upstream's deploy order (the order declared).
            pub const ALL: [Kind; [$(Kind::$variant),*].len()] = [$(Kind::$variant),*];
        }
    };
}

kinds! {
    /// ServiceAccount.
    ServiceAccount,
    /// RoleBinding.
    RoleBinding,
    /// Service.
    Service,
    /// Ingress (either API version).
    Ingress,
    /// Deployment.
    Deployment,
    /// HorizontalPodAutoscaler.
    HorizontalPodAutoscaler,
    /// PodDisruptionBudget.
    PodDisruptionBudget,
}

/// An `extensions/v1beta1` Ingress: k8s-openapi no longer models it, and old clusters need it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyIngress {
    /// Always `extensions/v1beta1`.
    pub api_version: String,
    /// Always `Ingress`.
    pub kind: String,
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: LegacyIngressSpec,
}

/// `extensions/v1beta1` IngressSpec, the fields fiaas uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LegacyIngressSpec {
    /// Host rules.
    pub rules: Vec<LegacyIngressRule>,
    /// TLS entries.
    pub tls: Vec<LegacyIngressTls>,
}

/// `extensions/v1beta1` IngressRule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LegacyIngressRule {
    /// Host.
    pub host: String,
    /// Paths; absent for a host without paths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<LegacyHttpIngressRuleValue>,
}

/// `extensions/v1beta1` HTTPIngressRuleValue.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LegacyHttpIngressRuleValue {
    /// Paths.
    pub paths: Vec<LegacyHttpIngressPath>,
}

/// `extensions/v1beta1` HTTPIngressPath.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegacyHttpIngressPath {
    /// Path.
    pub path: String,
    /// Backend.
    pub backend: LegacyIngressBackend,
}

/// `extensions/v1beta1` IngressBackend.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyIngressBackend {
    /// Service name.
    pub service_name: String,
    /// Service port.
    pub service_port: IntOrString,
}

/// `extensions/v1beta1` IngressTLS.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyIngressTls {
    /// Hosts.
    pub hosts: Vec<String>,
    /// Secret name.
    pub secret_name: String,
}
