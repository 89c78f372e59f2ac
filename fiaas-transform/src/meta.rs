//! Labels, annotations and owner references shared by every kind.

use std::collections::BTreeMap;

use fiaas_spec::AppSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

/// API version of the Application CRD.
pub const APPLICATION_API_VERSION: &str = "fiaas.schibsted.io/v1";
/// Kind of the Application CRD.
pub const APPLICATION_KIND: &str = "Application";

/// The fiaas-managed labels every object of a deploy carries (merged last, so they win).
///
/// `deployed_by` is the daemon's own version (`VERSION`/`FIAAS_VERSION`, empty if unset).
pub fn fiaas_labels(app: &AppSpec, deployed_by: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("app".to_owned(), app.name.clone());
    labels.insert(
        "fiaas/version".to_owned(),
        app.version().unwrap_or_default().to_owned(),
    );
    labels.insert("fiaas/deployment_id".to_owned(), app.deployment_id.clone());
    labels.insert("fiaas/deployed_by".to_owned(), deployed_by.to_owned());
    for team in &app.teams {
        labels.insert(
            format!("teams.fiaas/{}", label_safe(team)),
            "true".to_owned(),
        );
    }
    for tag in &app.tags {
        labels.insert(format!("tags.fiaas/{}", label_safe(tag)), "true".to_owned());
    }
    labels
}

fn label_safe(value: &str) -> String {
    value
        .to_lowercase()
        .replace(' ', "-")
        .replace('ø', "oe")
        .replace('å', "aa")
        .replace('æ', "ae")
        .replace(':', "-")
}

/// `base` overlaid with each of `layers` in turn (later wins).
pub fn merged(
    base: &BTreeMap<String, String>,
    layers: &[&BTreeMap<String, String>],
) -> BTreeMap<String, String> {
    let mut out = base.clone();
    for layer in layers {
        out.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// The owner reference to the Application, when the app has a uid.
pub fn owner_references(app: &AppSpec) -> Option<Vec<OwnerReference>> {
    app.uid.as_ref().filter(|uid| !uid.is_empty()).map(|uid| {
        vec![OwnerReference {
            api_version: APPLICATION_API_VERSION.to_owned(),
            kind: APPLICATION_KIND.to_owned(),
            name: app.name.clone(),
            uid: uid.clone(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]
    })
}

/// Metadata of an object named `name` in the app's namespace, owned by the Application.
///
/// Empty label and annotation maps are left out, as upstream sends them.
pub fn object_meta(
    app: &AppSpec,
    name: &str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(app.namespace.clone()),
        labels: non_empty(labels),
        annotations: non_empty(annotations),
        owner_references: owner_references(app),
        ..ObjectMeta::default()
    }
}

/// `None` for an empty map, so it is left out of the object.
pub fn non_empty(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}
