//! Planning a deploy: the applier's own requests with every write dry-run.

use fiaas_spec::AppSpec;
use fiaas_transform::TransformSettings;
use kube::api::{Api, ApiResource, DynamicObject};
use serde_json::Value;

use super::{Applier, DeployOptions, DeployReport};
use crate::K8sError;

/// One object of a planned deploy ([`Applier::plan`]): as it is, and as the deploy would leave it.
#[derive(Clone, Debug)]
pub struct PlannedObject {
    /// How the object is addressed (API group, version, kind, plural).
    pub resource: ApiResource,
    /// The object's name.
    pub name: String,
    /// The live object; `None` when the deploy would create it.
    pub live: Option<Value>,
    /// The API server's answer to the dry-run write; `None` when the deploy would delete the
    /// object.
    pub planned: Option<Value>,
}

impl Applier {
    /// What [`Applier::deploy`] would do, without doing it: the same requests in the same order,
    /// every write sent with `dryRun=All`, so the API server validates, defaults and merges each
    /// object under the same field manager (conflicts forced) without storing it. The report's
    /// `planned` holds each object as it is and as it would be; the pruning decisions are the
    /// deploy's own.
    ///
    /// Two follow-up writes of a deploy cannot be chained onto a dry run, so the plan shows the
    /// first write's answer: an object still carrying the Python daemon's field ownership keeps
    /// the fields fiaas no longer sets (the deploy takes them over and applies again, see
    /// `fiaas-k8s/src/cutover.rs`), and an object with repeated list-map keys shows the merge
    /// patch that rewrites it.
    pub async fn plan(
        &self,
        app: &AppSpec,
        config: &TransformSettings,
        options: DeployOptions<'_>,
    ) -> Result<DeployReport, K8sError> {
        let dry = Applier {
            dry_run: true,
            ..self.clone()
        };
        dry.deploy(app, config, options).await
    }

    /// The dry-run write of `body` and the live object it was made against.
    pub(super) async fn plan_body(
        &self,
        api: &Api<DynamicObject>,
        resource: &ApiResource,
        name: &str,
        body: &Value,
        report: &mut DeployReport,
    ) -> Result<DynamicObject, K8sError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let live = api
                .get_opt(name)
                .await
                .map_err(|source| K8sError::api("get", &resource.kind, name, source))?;
            let planned = self.write_body(api, resource, name, body).await?;
            // A controller may write the object between the read and the dry run (a new
            // Deployment's revision annotation and status), and a dry run keeps the version
            // it started from: the two sides are read again until they are of one version.
            let same_version = live
                .as_ref()
                .is_none_or(|l| l.metadata.resource_version == planned.metadata.resource_version);
            if same_version || attempt == 3 {
                report.planned.push(PlannedObject {
                    resource: resource.clone(),
                    name: name.to_owned(),
                    live: live.map(to_value),
                    planned: Some(to_value(planned.clone())),
                });
                return Ok(planned);
            }
        }
    }
}

/// An API object as JSON; serialising one cannot fail (string keys, plain values).
pub(super) fn to_value(object: impl serde::Serialize) -> Value {
    serde_json::to_value(object).unwrap_or(Value::Null)
}
