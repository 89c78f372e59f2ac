//! The per-app ServiceAccount and its RoleBindings (`--enable-service-account-per-app`).

use std::collections::BTreeMap;

use fiaas_spec::AppSpec;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};

use crate::meta::{merged, non_empty, object_meta};
use fiaas_config::TransformSettings;

/// The app's ServiceAccount. `imagePullSecrets` are the namespace's `default` account's, which
/// only the applier can read.
pub(crate) fn service_account(
    app: &AppSpec,
    fiaas_labels: &BTreeMap<String, String>,
) -> ServiceAccount {
    ServiceAccount {
        metadata: object_meta(
            app,
            &app.name,
            merged(&app.labels.service_account, &[fiaas_labels]),
            app.annotations.service_account.clone(),
        ),
        ..ServiceAccount::default()
    }
}

/// One RoleBinding per `--list-of-roles` entry, then per `--list-of-cluster-roles` entry, each
/// created with `generateName: <app>-`; the applier reuses an existing fiaas-owned binding of
/// the same role instead.
pub(crate) fn role_bindings(
    app: &AppSpec,
    config: &TransformSettings,
    fiaas_labels: &BTreeMap<String, String>,
) -> Vec<RoleBinding> {
    let roles = config.list_of_roles.iter().map(|r| ("Role", r));
    let cluster_roles = config
        .list_of_cluster_roles
        .iter()
        .map(|r| ("ClusterRole", r));
    roles
        .chain(cluster_roles)
        .map(|(kind, name)| {
            let mut metadata = object_meta(
                app,
                &app.name,
                merged(&app.labels.role_binding, &[fiaas_labels]),
                app.annotations.role_binding.clone(),
            );
            metadata.name = None;
            metadata.generate_name = Some(format!("{}-", app.name));
            metadata.annotations = non_empty(app.annotations.role_binding.clone());
            RoleBinding {
                metadata,
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".to_owned(),
                    kind: kind.to_owned(),
                    name: name.clone(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".to_owned(),
                    name: app.name.clone(),
                    namespace: Some(app.namespace.clone()),
                    api_group: None,
                }]),
            }
        })
        .collect()
}
