//! Writing Application resources from tests, as users (or their CI) do: server-side apply under
//! the manager `test`, `spec.application` equal to the object's name, image
//! `example/<name>:<deployment id>`.

use std::time::Duration;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

/// The Applications of `namespace`, read and written as plain objects.
pub fn api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "fiaas.schibsted.io".to_owned(),
        version: "v1".to_owned(),
        api_version: "fiaas.schibsted.io/v1".to_owned(),
        kind: "Application".to_owned(),
        plural: "applications".to_owned(),
    };
    Api::namespaced_with(client.clone(), namespace, &resource)
}

/// Create or update the Application `name` with deployment id `id` and fiaas.yml `config`.
pub async fn put(
    client: &Client,
    namespace: &str,
    name: &str,
    id: &str,
    config: Value,
) -> Option<DynamicObject> {
    put_labelled(client, namespace, name, id, &[], config).await
}

/// [`put`] with more labels (e.g. `fiaas/bootstrap`). Returns the stored object, or `None` when
/// it was stored but its answer cannot be read back (an Application nested deeper than
/// serde_json's recursion limit). An answer that is late or refused under load is asked again,
/// up to five times.
pub async fn put_labelled(
    client: &Client,
    namespace: &str,
    name: &str,
    id: &str,
    labels: &[(&str, &str)],
    config: Value,
) -> Option<DynamicObject> {
    let mut all_labels = serde_json::Map::new();
    all_labels.insert("fiaas/deployment_id".to_owned(), json!(id));
    for (key, value) in labels {
        all_labels.insert((*key).to_owned(), json!(value));
    }
    let body = json!({"apiVersion": "fiaas.schibsted.io/v1", "kind": "Application",
        "metadata": {"name": name, "labels": all_labels},
        "spec": {"application": name, "image": format!("example/{name}:{id}"), "config": config}});
    let applications = api(client, namespace);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let written = applications
            .patch(
                name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&body),
            )
            .await;
        match written {
            Ok(stored) => return Some(stored),
            Err(kube::Error::SerdeError(_)) => return None,
            Err(e) if attempt < 5 => {
                eprintln!("write Application {name}, attempt {attempt}: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("write Application {name}: {e}"),
        }
    }
}
