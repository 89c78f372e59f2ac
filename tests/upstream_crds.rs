//! Installing the upstream daemon's CRDs (`fixtures/upstream_crds/`, captured from the Python
//! daemon) in place of the project's for a test, as on a cluster cut over from the Python
//! daemon, and putting the project's back afterwards, even when the test panics.
//!
//! The swap affects the whole test cluster, so a test using it lives in a test binary of its
//! own: cargo runs test binaries one after the other.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::load_yaml;

/// Puts the project's CRDs (`deploy/crds.yaml`) back when dropped: for tests that install other
/// definitions (the upstream's, or the validating ones of `--crd-validation`).
pub struct RestoreProjectCrds(());

impl RestoreProjectCrds {
    /// A guard to take before changing the CRDs.
    pub fn new() -> Self {
        RestoreProjectCrds(())
    }
}

impl Default for RestoreProjectCrds {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RestoreProjectCrds {
    fn drop(&mut self) {
        let crds = concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/crds.yaml");
        // Server-side apply under the daemon's field manager, as the daemon installs them.
        let status = std::process::Command::new("kubectl")
            .args(["apply", "--server-side", "--force-conflicts"])
            .args(["--field-manager", "fiaas-deploy-daemon", "-f", crds])
            .stdout(std::process::Stdio::null())
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "could not restore the project's CRDs from {crds}"
        );
    }
}

/// Replace the cluster's Application and ApplicationStatus CRDs by the upstream's `v1`
/// definitions (no `status.conditions`); the returned guard restores the project's.
pub async fn install(client: &Client) -> RestoreProjectCrds {
    let guard = RestoreProjectCrds::new();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in ["applications-v1.yaml", "application-statuses-v1.yaml"] {
        let upstream: CustomResourceDefinition =
            serde_json::from_value(load_yaml(&format!("upstream_crds/{file}")))
                .expect("an upstream CRD");
        let name = upstream.metadata.name.clone().unwrap_or_default();
        let mut current = api.get(&name).await.expect("the installed CRD");
        // A whole replacement, as the upstream daemon writes its CRDs: no field of the
        // project's definition (such as status.conditions) survives.
        current.spec = upstream.spec;
        api.replace(&name, &PostParams::default(), &current)
            .await
            .unwrap_or_else(|e| panic!("install the upstream {name}: {e}"));
    }
    let applications = api
        .get("applications.fiaas.schibsted.io")
        .await
        .expect("the Application CRD");
    let status_fields = applications.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| s.properties.as_ref())
        .and_then(|p| p.get("status"))
        .and_then(|s| s.properties.clone())
        .unwrap_or_default();
    assert!(
        !status_fields.contains_key("conditions"),
        "the upstream's schema is installed"
    );
    // The API server serves a new schema a moment after it is stored.
    tokio::time::sleep(Duration::from_secs(3)).await;
    guard
}
